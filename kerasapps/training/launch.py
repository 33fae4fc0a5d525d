"""Start a multi-worker training job on this machine: N processes, one ``TF_CONFIG`` each.

This is for trying ``--strategy multi-worker`` locally and for tests; on a cluster
every host runs ``kerasapps run TASK --strategy multi-worker`` with its own
``TF_CONFIG`` (docs/cluster.md).

Each worker runs in its own process group, so that stopping it stops everything it
started; a worker waiting for a dead peer ignores SIGTERM, so stragglers get SIGKILL.

TensorFlow's gRPC server listens on every interface, whatever address ``TF_CONFIG``
names (docs/reliability.md), and it has no authentication. So on Linux the workers
run in a private network namespace of their own (a user namespace too, so no root is
needed) where the only interface is loopback: their ports cannot be reached from
outside the job. Where the kernel refuses namespaces, ``network="auto"`` warns and
uses the host network; ``network="private"`` refuses instead.

Example::

    code = launch_workers(2, ["run", "classification", "--epochs", "2"])   # 0 when all succeeded
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

from kerasapps.errors import UsageError

STOP_GRACE_SECONDS = 5.0
NETWORK_MODES = ("auto", "private", "host")

# Linux constants (sched.h, linux/sockios.h, net/if.h).
_CLONE_NEWUSER, _CLONE_NEWNET = 0x10000000, 0x40000000
_SIOCGIFFLAGS, _SIOCSIFFLAGS, _IFF_UP = 0x8913, 0x8914, 0x1
_PR_SET_PDEATHSIG = 1


_libc = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def _unshare_network() -> None:
    """Move this process into a new user + network namespace (same uid/gid inside).

    Called between fork and exec, so it loads nothing: libc was opened beforehand.
    """
    libc = _libc
    uid, gid = os.getuid(), os.getgid()
    if libc.unshare(_CLONE_NEWUSER | _CLONE_NEWNET) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    # An unprivileged process may map only its own ids, and only after giving up setgroups.
    for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
        with open(f"/proc/self/{name}", "w") as mapping:
            mapping.write(text)
    # A new namespace's loopback is down; up, it carries 127.0.0.1 and ::1.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH", b"lo", 0).ljust(40, b"\0")
        flags = struct.unpack("16sH", fcntl.ioctl(sock, _SIOCGIFFLAGS, request)[:18])[1]
        fcntl.ioctl(sock, _SIOCSIFFLAGS, struct.pack("16sH", b"lo", flags | _IFF_UP).ljust(40, b"\0"))


def _enter_private_network() -> None:  # preexec_fn: runs in the child, between fork and exec
    _unshare_network()
    # If the outer launcher dies, the inner one is told to stop its workers.
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def private_network_error() -> str | None:
    """Why workers cannot get a private network namespace here, or None when they can."""
    if not sys.platform.startswith("linux"):
        return f"network namespaces are Linux-only (this is {sys.platform})"
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the probe: try it in a throwaway child
        os.close(read)
        try:
            _unshare_network()
            code = 0
        except OSError as error:
            code = error.errno or errno.EPERM
        except BaseException:
            code = errno.EPERM
        os.write(write, str(code).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        code = int(pipe.read() or errno.EPERM)
    os.waitpid(pid, 0)
    if code == 0:
        return None
    return f"the kernel refused a user + network namespace ({os.strerror(code)})"


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


def _stream(prefix: str, pipe, out, lock) -> None:
    """Copy ``pipe``'s lines to ``out``, each after ``prefix``, until it closes."""
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
                   poll_seconds: float = 0.2, network: str = "auto") -> int:
    """Run ``kerasapps COMMAND --strategy multi-worker`` as ``count`` local workers.

    Streams each worker's output prefixed with ``[worker i]``. If a worker fails, the
    others cannot finish (they wait for it in the next all-reduce), so all are stopped.
    Returns the chief's (worker 0's) exit status when it finished by itself, else the
    status of the first worker that failed; 130 on Ctrl-C. Never leaves a worker behind.

    ``network``: "private" runs the workers in a network namespace of their own, where
    only loopback exists (UsageError where the kernel refuses); "host" uses this
    machine's network (their ports listen on every interface); "auto" is private where
    possible, else host with a warning.
    """
    if network not in NETWORK_MODES:
        raise ValueError(f"network must be one of {NETWORK_MODES}, not {network!r}")
    out = out or sys.stdout
    if network != "host":
        reason = private_network_error()
        if reason is None:
            return _launch_in_private_network(count, command, out=out, env=env, poll_seconds=poll_seconds)
        if network == "private":
            raise UsageError(f"cannot give the workers a private network: {reason}; "
                             "use --network host behind a firewall (docs/reliability.md)")
        out.write(f"[launch] warning: {reason}; the workers' ports listen on every network interface "
                  "(see docs/reliability.md)\n")
        out.flush()
    if threading.current_thread() is not threading.main_thread():  # signal handlers are main-thread only
        return _launch_here(count, command, out=out, env=env, poll_seconds=poll_seconds)
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGTERM, _stop_once)  # a terminated launcher stops its workers
    try:
        return _launch_here(count, command, out=out, env=env, poll_seconds=poll_seconds)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _launch_in_private_network(count, command, *, out, env, poll_seconds) -> int:
    """Run the launcher itself inside a new network namespace; the workers it starts share it."""
    request = json.dumps({"count": count, "command": command, "env": env or {}, "poll_seconds": poll_seconds})
    out.write("[launch] workers run in a private network namespace (loopback only)\n")
    out.flush()
    try:
        inner = subprocess.Popen([sys.executable, "-m", "kerasapps.training.launch", request],
                                 preexec_fn=_enter_private_network, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True, bufsize=1)
    except (subprocess.SubprocessError, OSError) as exc:  # the probe passed but the real unshare did not
        raise UsageError(f"could not start the workers in a private network namespace ({exc}); "
                         "use --network host") from None
    forward = threading.Thread(target=_stream, args=("", inner.stdout, out, threading.Lock()), daemon=True)
    forward.start()
    previous = signal.signal(signal.SIGTERM, lambda *_: inner.send_signal(signal.SIGTERM)) \
        if threading.current_thread() is threading.main_thread() else None
    try:
        while True:
            try:
                status = inner.wait()
                break
            except KeyboardInterrupt:  # the inner launcher stops its workers (it heeds the first signal)
                inner.send_signal(signal.SIGINT)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    forward.join(timeout=5)
    return status if status >= 0 else 128 - status


def _launch_here(count, command, *, out, env, poll_seconds) -> int:
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
            thread = threading.Thread(target=_stream, args=(f"[worker {index}] ", process.stdout, out, lock),
                                      daemon=True)
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


def _stop_once(*_):
    # Ctrl-C reaches this launcher both from the terminal and forwarded by the outer one:
    # heed the first, so that stopping the workers is not itself interrupted.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


if __name__ == "__main__":  # the launcher inside the private network namespace
    _request = json.loads(sys.argv[1])
    signal.signal(signal.SIGINT, _stop_once)
    signal.signal(signal.SIGTERM, _stop_once)
    sys.exit(_launch_here(_request["count"], _request["command"], out=sys.stdout, env=_request["env"],
                          poll_seconds=_request["poll_seconds"]))
