"""A sweep's workdir: the result files a run writes (and a resume checks for), and the
lock the writing process holds."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time

from jaxexp.errors import ConfigError

RESULT_FILES = (
    "config.json",
    "members.csv",
    "history.csv",
    "summary.csv",
    "comparison.csv",
    "group_comparison.csv",
    "groups.csv",
    "group_history.csv",
    "rungs.csv",
    "pbt.csv",
    "report.md",
    "report.html",
    "timings.json",
)

LOCK_FILE = ".jaxexp.lock"  # held by the process writing into the workdir: {"host", "pid", "started"}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def _holder(path: str) -> dict | None:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


@contextlib.contextmanager
def lock(workdir: str, notice=lambda msg: print(f"jaxexp: {msg}", file=sys.stderr, flush=True)):
    """Holds the workdir's lock while a run writes into it.

    A second writer is refused with one line naming the holder. A lock whose
    process is gone (same host, no such PID) is taken over with a one-line
    notice; one held on another host is refused unless that is removed by hand.
    Readers (analyze, inspect, export, ``Results`` loaders) take no lock.
    """
    os.makedirs(workdir, exist_ok=True)
    path = os.path.join(workdir, LOCK_FILE)
    me = {"host": socket.gethostname(), "pid": os.getpid(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            held = _holder(path) or {}
            stale = held.get("host") == me["host"] and isinstance(held.get("pid"), int) and not _alive(held["pid"])
            if not stale:
                who = f"process {held.get('pid', '?')} on {held.get('host', '?')} since {held.get('started', '?')}"
                raise ConfigError(
                    f"workdir: {workdir} is in use by {who}; wait for that run, choose another --workdir, or "
                    f"remove {path} if no run is using it"
                ) from None
            notice(f"taking over the stale lock of process {held['pid']} (no longer running) in {workdir}")
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)
            continue
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(me, f)
        except OSError:  # e.g. a full disk: an empty lock file would refuse the same command run again
            with contextlib.suppress(OSError):
                os.remove(path)
            raise
        break
    else:
        raise ConfigError(f"workdir: could not take the lock {path}; remove it if no run is using it")
    try:
        yield
    finally:
        if (_holder(path) or {}).get("pid") == me["pid"]:
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)
