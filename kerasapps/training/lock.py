"""One training run per workdir: an OS-level lock held for the length of the run.

``<workdir>/.kerasapps.lock`` names the process holding it (PID, host, command). The
lock itself is ``fcntl.flock`` on that file, which the operating system releases when
the process ends however it ends (kill -9 included): a lock file left by a killed run
is stale, and the next run takes it over. A second run while the first is alive is
refused with one message naming the first. (``flock`` is local to one machine: on a
network filesystem shared by several hosts it may not exclude runs on other hosts.)

Example::

    lock = hold_workdir_lock(workdir)   # UsageError if another live run holds it
    ...                                 # train
    lock.release()                      # or leave it to the process's exit
"""

from __future__ import annotations

import atexit
import errno
import fcntl
import json
import os
import pathlib
import socket
import sys
import tempfile
import time

from kerasapps.errors import UsageError

LOCK_NAME = ".kerasapps.lock"


def check_writable_dir(path, what: str) -> pathlib.Path:
    """Create ``path`` if needed and prove a file can be written in it; UsageError naming
    the path and the reason otherwise (before any training, not after it)."""
    path = pathlib.Path(path)
    if path.exists() and not path.is_dir():
        raise UsageError(f"{what} {path} is not writable: it is a file, not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-check-"):
            pass
    except OSError as exc:
        raise UsageError(f"{what} {path} is not writable: {exc.strerror or exc}") from None
    return path


class WorkdirLock:
    """An exclusive ``flock`` on ``<workdir>/.kerasapps.lock``; see the module docstring."""

    def __init__(self, workdir):
        self.path = pathlib.Path(workdir) / LOCK_NAME
        self._fd = None
        self.previous = None  # what a stale lock file said, when one was taken over

    def acquire(self) -> "WorkdirLock":
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise UsageError(f"cannot create the lock file {self.path}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _read_holder(fd)
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise UsageError(f"cannot lock {self.path}: {exc.strerror or exc}") from None
            raise UsageError(
                f"workdir {self.path.parent} is in use by another run ({_describe(holder)}); wait for it to "
                "finish, stop it, or choose another --workdir"
            ) from None
        self.previous = _read_holder(fd)
        record = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                  "command": " ".join([os.path.basename(sys.argv[0]), *sys.argv[1:]])}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(record) + "\n").encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        """Empty the lock file (a clean end leaves no stale record) and release the lock."""
        if self._fd is not None:
            try:
                os.ftruncate(self._fd, 0)
            except OSError:
                pass
            os.close(self._fd)  # closing the only descriptor releases the flock
            self._fd = None

    __del__ = release  # the run object that holds it is gone: so is the run


def _read_holder(fd) -> dict | None:
    try:
        data = os.pread(fd, 4096, 0)
        holder = json.loads(data.decode()) if data.strip() else None
    except (OSError, ValueError):
        return None
    return holder if isinstance(holder, dict) else None


def _describe(holder: dict | None) -> str:
    if not holder:
        return "a process that has not written its name yet"
    return f"PID {holder.get('pid')} on host {holder.get('host')}, since {holder.get('started')}: {holder.get('command')}"


def hold_workdir_lock(workdir) -> WorkdirLock:
    """Take the workdir's lock for this process (held until ``release()`` or exit); say so when
    a killed run's stale lock is taken over."""
    lock = WorkdirLock(workdir).acquire()
    atexit.register(lock.release)
    if lock.previous and lock.previous.get("pid") != os.getpid():
        print(f"taking over the stale lock of a run that ended without releasing it ({_describe(lock.previous)})",
              file=sys.stderr, flush=True)
    return lock
