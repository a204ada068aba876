"""Which jaxexp a benchmark measured: recorded in every benchmark's JSON.

Imported by the scripts beside it (run as ``python benchmarks/NAME.py``, so this
folder is on ``sys.path``)."""

from __future__ import annotations

import hashlib
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
