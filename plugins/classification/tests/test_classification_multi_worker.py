"""The documented `kerasapps launch --workers 2 classification` (docs/cluster.md), tiny: two real
worker processes train identical replicas and the chief exports once.
(Moved from tests/test_multi_worker.py, whose launches now train the core's fake task.)"""

import json
import os
import re
import subprocess
import sys
import time

import pytest

pytest.importorskip("kerasapps_classification")

ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")


def _launch(workspace, *args, timeout=420):
    """Run `kerasapps launch` and return (exit status, output lines, worker pids)."""
    process = subprocess.Popen([sys.executable, "-m", "kerasapps", "launch", *map(str, args)], cwd=workspace, env=ENV,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines, pids = [], {}
    deadline = time.monotonic() + timeout
    try:
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            match = re.match(r"\[launch\] worker (\d+): pid (\d+)", line)
            if match:
                pids[int(match.group(1))] = int(match.group(2))
            assert time.monotonic() < deadline, "launch took too long:\n" + "\n".join(lines[-40:])
        return process.wait(timeout=60), lines, pids
    finally:
        if process.poll() is None:
            process.kill()


def _alive(pid) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie has exited; only its parent's wait is missing.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(")")[-1].split()[0] != "Z"


def _checksums(lines):
    return {int(m.group(1)): m.group(2) for line in lines
            if (m := re.match(r"\[worker (\d+)\] final weights checksum: (\w+)", line))}


def test_launch_two_workers_runs_the_documented_classification_command(tmp_path):
    status, lines, pids = _launch(tmp_path, "--workers", 2, "classification", "--epochs", 2, "--batch-size", 32,
                                  "--set", "train_examples=128", "--set", "eval_examples=32", "--set", "image_size=32",
                                  "--samples", 0)
    output = "\n".join(lines)
    assert status == 0, output[-4000:]
    assert "[launch] exit statuses: worker 0: 0, worker 1: 0" in output
    checksums = _checksums(lines)
    assert set(checksums) == {0, 1} and checksums[0] == checksums[1], checksums
    assert sorted(p.name for p in (tmp_path / "saved_models" / "classification").iterdir()) == ["1"]
    metrics = json.loads((tmp_path / "runs" / "classification" / "metrics.json").read_text())
    assert metrics["strategy"] == "MultiWorkerMirroredStrategy" and metrics["workers"] == 2
    assert [h["epoch"] for h in metrics["history"]] == [1, 2]
    assert "[worker 0] exported: saved_models/classification/1" in output and "[worker 1] exported" not in output
    assert not [pid for pid in pids.values() if _alive(pid)]
