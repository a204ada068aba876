"""Which jaxexp a benchmark measured, and how busy the machine was: recorded in every
benchmark's JSON.

Imported by the scripts beside it (run as ``python benchmarks/NAME.py``, so this
folder is on ``sys.path``)."""

from __future__ import annotations

import hashlib
import os
import subprocess


def git_state(root: str) -> dict:
    """HEAD plus a hash of uncommitted changes under jaxexp/ and its untracked files
    (read-only git; empty values where git is not available)."""

    def git(*a: str) -> str:
        try:
            return subprocess.run(["git", *a], cwd=root, capture_output=True, text=True, timeout=30).stdout
        except (OSError, subprocess.SubprocessError):
            return ""

    diff = git("diff", "HEAD", "--", "jaxexp")
    return {
        "commit": git("rev-parse", "HEAD").strip(),
        "jaxexp_dirty_files": git("status", "--porcelain", "--", "jaxexp").splitlines(),
        "jaxexp_diff_sha1": hashlib.sha1(diff.encode()).hexdigest() if diff else None,
        "jaxexp_untracked": git("ls-files", "--others", "--exclude-standard", "--", "jaxexp").split(),
    }


def system_cpu() -> dict | None:
    """Machine-wide busy and steal CPU seconds from /proc/stat (None off Linux)."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    tick = os.sysconf("SC_CLK_TCK")
    busy = v[0] + v[1] + v[2] + v[5] + v[6]  # user nice system irq softirq
    return {"busy_s": busy / tick, "steal_s": (v[7] if len(v) > 7 else 0) / tick}
