"""Start a multi-worker training job on this machine: N processes, one ``TF_CONFIG`` each.

This is for trying ``--strategy multi-worker`` locally and for tests; on a cluster
every host runs ``kerasapps run TASK --strategy multi-worker`` with its own
``TF_CONFIG`` (docs/cluster.md).

Each worker runs in its own process group, so that stopping it stops everything it
started; a worker waiting for a dead peer ignores SIGTERM, so stragglers get SIGKILL.

Example::

    code = launch_workers(2, ["run", "classification", "--epochs", "2"])   # 0 when all succeeded
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

STOP_GRACE_SECONDS = 5.0


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct TCP ports free on ``host`` right now (held open together, so distinct)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((host, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def worker_tf_configs(count: int, host: str = "127.0.0.1") -> list[dict]:
    """The ``TF_CONFIG`` of each of ``count`` workers on ``host``; worker 0 is the chief."""
    cluster = {"worker": [f"{host}:{port}" for port in free_ports(count, host)]}
    return [{"cluster": cluster, "task": {"type": "worker", "index": index}} for index in range(count)]


def _stream(index: int, pipe, out, lock) -> None:
    prefix = f"[worker {index}] "
    for line in iter(pipe.readline, ""):
        with lock:
            out.write(prefix + line if line.endswith("\n") else prefix + line + "\n")
            out.flush()
    pipe.close()


def _stop(processes, grace: float = STOP_GRACE_SECONDS) -> None:
    """SIGTERM every live worker's process group, then SIGKILL what is left after ``grace`` s."""
    live = [p for p in processes if p.poll() is None]
    for process in live:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace
    for process in live:
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    for process in processes:
        try:
            os.killpg(process.pid, signal.SIGKILL)  # also reaps anything the worker started
        except (ProcessLookupError, PermissionError):
            pass
        process.wait()


def launch_workers(count: int, command: list[str], *, out=None, env: dict | None = None,
                   poll_seconds: float = 0.2) -> int:
    """Run ``kerasapps COMMAND --strategy multi-worker`` as ``count`` local workers.

    Streams each worker's output prefixed with ``[worker i]``. If a worker fails, the
    others cannot finish (they wait for it in the next all-reduce), so all are stopped.
    Returns the chief's (worker 0's) exit status when it finished by itself, else the
    status of the first worker that failed; 130 on Ctrl-C. Never leaves a worker behind.
    """
    out = out or sys.stdout
    lock = threading.Lock()
    processes, threads = [], []
    base_env = dict(os.environ, **(env or {}))
    base_env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    base_env["PYTHONUNBUFFERED"] = "1"
    try:
        for index, tf_config in enumerate(worker_tf_configs(count)):
            process = subprocess.Popen(
                [sys.executable, "-m", "kerasapps", *command, "--strategy", "multi-worker"],
                env=dict(base_env, TF_CONFIG=json.dumps(tf_config)),
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
                start_new_session=True,  # its own process group: killpg stops all it started
            )
            processes.append(process)
            with lock:
                out.write(f"[launch] worker {index}: pid {process.pid}, {tf_config['cluster']['worker'][index]}\n")
                out.flush()
            thread = threading.Thread(target=_stream, args=(index, process.stdout, out, lock), daemon=True)
            thread.start()
            threads.append(thread)
        first_failure = None
        while True:
            codes = [p.poll() for p in processes]
            failed = [(i, c) for i, c in enumerate(codes) if c not in (None, 0)]
            if failed:
                first_failure = failed[0]
                break
            if all(c == 0 for c in codes):
                break
            time.sleep(poll_seconds)
        if first_failure is not None:
            index, code = first_failure
            with lock:
                out.write(f"[launch] worker {index} exited with status {code}; stopping the others\n")
                out.flush()
        _stop(processes)
        for thread in threads:
            thread.join(timeout=5)
        chief = processes[0].returncode
        if first_failure is None or (first_failure[0] == 0):
            status = chief
        else:
            status = first_failure[1]
        with lock:
            codes = ", ".join(f"worker {i}: {p.returncode}" for i, p in enumerate(processes))
            out.write(f"[launch] exit statuses: {codes}\n")
            out.flush()
        return status if status >= 0 else 128 - status  # a signal -N reads as 128+N, as in shells
    except KeyboardInterrupt:
        _stop(processes)
        return 130
