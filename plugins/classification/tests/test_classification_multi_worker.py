"""The documented `kerasapps launch --workers 2 classification` (docs/cluster.md), tiny: two real
worker processes train identical replicas and the chief exports once.
(Moved from tests/test_multi_worker.py, whose launches now train the core's fake task.)"""

import json

import pytest

from tests.conftest import launch as _launch, process_alive as _alive, worker_checksums as _checksums

pytest.importorskip("kerasapps_classification")


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
