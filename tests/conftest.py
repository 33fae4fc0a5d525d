"""Shared helpers: run the real `kerasapps` CLI in a subprocess, as a user would."""

import os
import pathlib
import re
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from kerasapps.testing import reset_keras_precision, run_cli

ROOT = pathlib.Path(__file__).resolve().parents[1]
# Small enough for 2 CPU cores: one epoch of a few hundred 32x32 images.
# The fake task plugin of the core's tests (tests/plugins/kerasapps_fake.py): `cli(*FAKE, "run", "fake", env=FAKE_ENV)`.
FAKE = ["-p", "kerasapps_fake"]
FAKE_ENV = {"PYTHONPATH": str(ROOT / "tests" / "plugins")}
TINY = ["--epochs", "1", "--batch-size", "32", "--set", "train_examples=256", "--set", "eval_examples=64",
        "--set", "image_size=32"]


def cli(*args, cwd=None, env=None, timeout=600, check=None):
    """Run `python -m kerasapps ...`; returns CompletedProcess (text). (kerasapps.testing.run_cli.)"""
    return run_cli(*args, cwd=cwd, env=env, timeout=timeout, check=check)


def make_distribution(site, dist, module, body, entry_name=None):
    """A minimal installed distribution (dist-info + module) on a folder put on PYTHONPATH."""
    info = site / f"{dist}-1.2.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.2\n")
    (info / "entry_points.txt").write_text(f"[kerasapps]\n{entry_name or module} = {module}\n")
    (site / f"{module}.py").write_text(textwrap.dedent(body))


@pytest.fixture(autouse=True)
def _float32_after_each_test():
    """Runs in-process pick a precision (mixed_bfloat16 on CPUs with bfloat16 instructions) and keep it as Keras's
    global policy, as a script would; the next test in the same process starts from float32."""
    yield
    reset_keras_precision()


@pytest.fixture
def workspace(tmp_path):
    """A scratch folder to run commands in (runs/ and saved_models/ land here)."""
    return tmp_path


def launch(workspace, *args, prefix=(), env=None, on_line=None, timeout=420):
    """Run `kerasapps [PREFIX] launch ARGS` in ``workspace``; returns (exit status, output lines, worker pids).
    ``on_line(line, pids)`` sees each output line as it comes (to signal or kill mid-run)."""
    process = subprocess.Popen([sys.executable, "-m", "kerasapps", *prefix, "launch", *map(str, args)], cwd=workspace,
                               env=env or dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines, pids = [], {}
    deadline = time.monotonic() + timeout
    try:
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            match = re.match(r"\[launch\] worker (\d+): pid (\d+)", line)
            if match:
                pids[int(match.group(1))] = int(match.group(2))
            if on_line:
                on_line(line, pids)
            assert time.monotonic() < deadline, "launch took too long:\n" + "\n".join(lines[-40:])
        return process.wait(timeout=60), lines, pids
    finally:
        if process.poll() is None:
            process.kill()


def process_alive(pid) -> bool:
    """Whether ``pid`` still runs (a zombie has exited; only its parent's wait is missing)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(")")[-1].split()[0] != "Z"


def worker_checksums(lines) -> dict:
    """{worker index: final weights checksum} from a launch's output lines."""
    return {int(m.group(1)): m.group(2) for line in lines
            if (m := re.match(r"\[worker (\d+)\] final weights checksum: (\w+)", line))}


def kill_at_checkpoint(workspace, args, marker="ckpt-", checkpoint="runs/classification/backup/checkpoint",
                       timeout=300) -> int:
    """Run `kerasapps ARGS` in ``workspace``, ``kill -9`` it once the backup's ``checkpoint`` file
    names ``marker``, and return the last epoch the backup holds."""
    process = subprocess.Popen([sys.executable, "-m", "kerasapps", *args], cwd=workspace,
                               env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    state = pathlib.Path(workspace) / checkpoint
    deadline = time.time() + timeout
    try:
        while time.time() < deadline and process.poll() is None:
            if state.exists() and marker in state.read_text():
                break
            time.sleep(0.05)
        assert process.poll() is None, "run ended before it could be killed"
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    return int(state.read_text().split('model_checkpoint_path: "ckpt-')[1].split('"')[0])
