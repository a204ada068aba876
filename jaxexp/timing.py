"""Where a sweep's wall time goes: the phases recorded in ``Results.timings`` (seconds),
written to ``WORKDIR/timings.json`` and summarised in report.md.

Phases, in order: ``startup_s`` (process start to the sweep's first line: Python, imports,
the config; command line only), ``data_s`` (loading the workload's data), ``checks_s``
(abstract checks of every bucket's functions and values), ``compile_s`` (training
segments) and ``init_compile_s`` (init/refill programs), ``init_s`` (running them),
``segments_s`` (training), ``checkpoint_s`` (the blocking part of the saves: the copy to
host memory) and ``checkpoint_wait_s`` (waiting for the last background save),
``assemble_s`` (result tables), ``plots_s``, ``tensorboard_s``, ``html_s`` and
``files_s`` (the other files). ``total_s`` is the engine's part (compile to the last
checkpoint); ``wall_s`` the whole call (from process start on the command line).
"""

from __future__ import annotations

import contextlib
import os
import time

PHASES = (
    "startup_s",
    "data_s",
    "checks_s",
    "compile_s",
    "init_compile_s",
    "init_s",
    "segments_s",
    "checkpoint_s",
    "checkpoint_wait_s",
    "assemble_s",
    "plots_s",
    "tensorboard_s",
    "html_s",
    "files_s",
)

FROM_PROCESS_START = {"on": False}  # set by the command line: wall_s counts from process start


def process_seconds() -> float | None:
    """Seconds since this process started (Linux ``/proc``), else None."""
    try:
        with open("/proc/self/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return max(0.0, uptime - int(fields[19]) / os.sysconf("SC_CLK_TCK"))  # field 22: starttime
    except (OSError, ValueError, IndexError):
        return None


@contextlib.contextmanager
def phase(timings: dict, key: str):
    """Adds the block's wall time to ``timings[key]``."""
    t = time.perf_counter()
    try:
        yield
    finally:
        timings[key] = timings.get(key, 0.0) + time.perf_counter() - t


def breakdown(timings: dict) -> str:
    """One line: each recorded phase with its share of ``wall_s``."""
    wall = timings.get("wall_s") or sum(timings.get(k, 0.0) for k in PHASES) or float("nan")
    parts = [
        f"{k[:-2].replace('_', ' ')} {timings[k]:.2f} s ({100 * timings[k] / wall:.0f}%)"
        for k in PHASES
        if timings.get(k)
    ]
    return f"wall {wall:.2f} s: " + ", ".join(parts)
