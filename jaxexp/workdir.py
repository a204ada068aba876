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


WRITING_PREFIX = ".writing-"  # a results write in progress: a temporary folder, renamed away at its end


def unfinished_writes(workdir: str) -> list[str]:
    """The temporary folders of results writes that did not finish (their process died)."""
    try:
        names = os.listdir(workdir)
    except OSError:
        return []
    return sorted(n for n in names if n.startswith(WRITING_PREFIX) and os.path.isdir(os.path.join(workdir, n)))


def _holder(path: str) -> dict | None:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _stale(path: str, held: dict | None, me: dict) -> bool:
    """A lock whose process is gone: same host and no such PID, or (written by an older
    version, killed between creating and filling it) unreadable and over a minute old."""
    if held is None:
        try:
            return time.time() - os.path.getmtime(path) > 60
        except OSError:
            return True
    return held.get("host") == me["host"] and isinstance(held.get("pid"), int) and not _alive(held["pid"])


def _create(path: str, me: dict) -> bool:
    """Creates the lock file with its content in one step (written to a private file,
    then hard-linked into place: a kill never leaves an empty lock); False if it exists."""
    tmp = f"{path}.{me['pid']}.tmp"
    try:
        with open(tmp, "w") as f:
            json.dump(me, f)
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    finally:
        with contextlib.suppress(OSError):
            os.remove(tmp)


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
        if _create(path, me):
            break
        held = _holder(path)
        if not _stale(path, held, me):
            held = held or {}
            who = f"process {held.get('pid', '?')} on {held.get('host', '?')} since {held.get('started', '?')}"
            raise ConfigError(
                f"workdir: {workdir} is in use by {who}; wait for that run, choose another --workdir, or "
                f"remove {path} if no run is using it"
            )
        whose = f"process {held['pid']} (no longer running)" if held else "an unreadable lock file"
        notice(f"taking over the stale lock of {whose} in {workdir}")
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)
    else:
        raise ConfigError(f"workdir: could not take the lock {path}; remove it if no run is using it")
    try:
        yield
    finally:
        if (_holder(path) or {}).get("pid") == me["pid"]:
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)
