"""Where a sweep's wall time goes: the phases recorded in ``Results.timings`` (seconds),
written to ``WORKDIR/timings.json`` and summarised in report.md.

Phases, in order: ``startup_s`` (process start to the sweep's first line: Python, imports,
the config; command line only), ``data_s`` (loading the workload's data), ``checks_s``
(abstract checks of every bucket's functions and values), ``compile_s`` (training
segments) and ``init_compile_s`` (init/refill programs), ``init_s`` (running them),
``segments_s`` (training), ``checkpoint_s`` (the blocking part of the saves: the copy to
host memory) and ``checkpoint_wait_s`` (waiting for the last background save),
``assemble_s`` (result tables), ``plots_s`` (the run's time on the PNG plots: with
``jaxexp sweep``'s helper process drawing them beside the run, only preparing them and
waiting for it; ``jaxexp.run.plot_worker``), ``tensorboard_s``, ``html_s`` and
``files_s`` (the other files). ``total_s`` is the engine's part (compile to the last
checkpoint); ``wall_s`` the whole call (from process start on the command line).
"""

from __future__ import annotations

import collections.abc
import contextlib
import dataclasses
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

COUNTS = (
    "total_s",  # the engine's part: compile to the last checkpoint
    "wall_s",  # the whole call (from process start on the command line)
    "bucket_s",  # inside the buckets' queues
    "group_size",  # members vmapped together per device
    "slots",  # the largest number of resident slots
    "segment_memory_mb",  # the compiled segment's measured memory at that size
    "refills",  # queued members started in freed slots
    "compactions",  # moves into a smaller slot count
    "pruned",  # members stopped by successive halving
    "member_epochs_computed",  # slots x epochs run, padding included
    "compile_cache_hits",
    "compile_cache_misses",
    "resumed_from_step",  # the checkpoint step a resumed run continued from
)


@dataclasses.dataclass
class Timings(collections.abc.MutableMapping):
    """Where a sweep's wall time went: ``PHASES`` and ``COUNTS``, each None until recorded.

    Read as attributes (``t.segments_s``) or as the mapping of the recorded ones
    (``t["segments_s"]``, ``dict(t)``: timings.json). Only these names can be set: a
    misspelt phase is an error, not a silent new key."""

    startup_s: float | None = None
    data_s: float | None = None
    checks_s: float | None = None
    compile_s: float | None = None
    init_compile_s: float | None = None
    init_s: float | None = None
    segments_s: float | None = None
    checkpoint_s: float | None = None
    checkpoint_wait_s: float | None = None
    assemble_s: float | None = None
    plots_s: float | None = None
    tensorboard_s: float | None = None
    html_s: float | None = None
    files_s: float | None = None
    total_s: float | None = None
    wall_s: float | None = None
    bucket_s: float | None = None
    group_size: int | None = None
    slots: int | None = None
    segment_memory_mb: float | None = None
    refills: int | None = None
    compactions: int | None = None
    pruned: int | None = None
    member_epochs_computed: int | None = None
    compile_cache_hits: int | None = None
    compile_cache_misses: int | None = None
    resumed_from_step: int | None = None

    @classmethod
    def of(cls, values: dict) -> Timings:
        """From the engine's accumulated dict (unknown names: KeyError)."""
        t = cls()
        for k, v in values.items():
            t[k] = v
        return t

    def __getitem__(self, key: str):
        v = getattr(self, key, None) if key in _FIELDS else None
        if v is None:
            raise KeyError(key)
        return v

    def __setitem__(self, key: str, value) -> None:
        if key not in _FIELDS:
            raise KeyError(f"{key!r} is not a timing; the timings are {', '.join(_FIELDS)}")
        if value is not None and key in _INTS:
            value = int(value)
        setattr(self, key, value)

    def __delitem__(self, key: str) -> None:
        self[key] = None

    def __iter__(self):
        return (k for k in _FIELDS if getattr(self, k) is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)


_FIELDS = tuple(f.name for f in dataclasses.fields(Timings))
_INTS = tuple(f.name for f in dataclasses.fields(Timings) if f.type == "int | None")
assert set(_FIELDS) == set(PHASES) | set(COUNTS)

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
