"""Host side of a sweep: run each bucket's queue of members segment by segment.

Everything here is I/O and bookkeeping; the numbers come from the pure
functions in ``jaxexp.core.train``, compiled per bucket in ``jaxexp.run.programs`` as
``jit(vmap(...))`` with the population axis sharded over the local devices.
Between segments: progress, checkpoints, refill and compaction of slots, and
the in-run strategies of ``jaxexp.search.inrun``.
"""

from __future__ import annotations

import collections
import math
import sys
import time
from collections.abc import Callable
from typing import NamedTuple

import ml_collections
import numpy as np
import pandas as pd

from jaxexp import config as cfgmod
from jaxexp import search
from jaxexp.core import train
from jaxexp.run import bucket, checkpoint, compile_cache, distributed, population, programs, resume, stop
from jaxexp.run.programs import _PROGRAMS, TRACE_COUNTS, Compiled, devices  # noqa: F401 - engine's API before the split
from jaxexp.run.progress import Progress, end_line, print_progress


class RunOutput(NamedTuple):
    """What ``run`` returns (host numpy/pandas)."""

    history: pd.DataFrame  # member, epoch (1-based), metrics, lr, diverged
    group_history: pd.DataFrame  # member, epoch, group, per-group metrics (grouped tasks; else empty)
    finals: dict  # member id -> {"best_params": pytree of numpy, "stop_epoch": int (0 = not early-stopped)}
    initial: dict  # member id -> {val metric: value of the initial parameters}
    timings: dict  # phase -> seconds, count -> number (``jaxexp.run.timing.Timings``)
    rungs: pd.DataFrame  # successive halving decisions: rung, wave, member, value, kept (else empty)
    pbt: pd.DataFrame  # population-based training copies: wave, epoch, member, source, field, old, new
    stopped_by: int | None = None  # the signal that stopped the run early (2: SIGINT / KeyboardInterrupt)
    # a stop signal that came once every member had finished (during the completing save): the
    # results are completed, then the run stops (``resume.deferred_signals``)
    late_signal: int | None = None


def run(
    config: ml_collections.ConfigDict,
    members: list[population.Member],
    progress: Callable[[str], None] | None = print_progress,
    workdir: str | None = None,
    pending: list | None = None,
) -> RunOutput:
    """Trains ``members``.

    Each bucket runs as a queue over a fixed number of resident slots (at most
    ``engine.chunk_size``, and no more than the compiled segment's measured
    memory fits into ``engine.memory_budget``). Between segments the slots of
    finished members (done, early-stopped, diverged) are refilled with queued
    members, initialised on device, without recompiling; once the queue is
    empty, finished slots are dropped instead (``engine.compact``).

    With ``workdir`` (and ``engine.checkpoint``) a checkpoint is saved after
    every segment and a run on a workdir with checkpoints resumes from the
    latest one; SIGINT/SIGTERM then stop at the next segment boundary. Without
    checkpoints a KeyboardInterrupt stops at once. Either way the run returns
    what finished so far, with ``stopped_by`` the signal (members still
    running have no ``finals`` entry). ``pending``: if given, the closing of the
    checkpoint manager (which waits for the last background save) is appended to
    it instead of done here, so the caller can write its outputs meanwhile.
    """
    cache_dir = compile_cache.enable(config.engine.compile_cache)
    cache_before = compile_cache.EVENTS.copy()
    devs = devices(config.engine.num_devices)
    # every process must choose the same slot counts: the smallest budget of any host
    budget = distributed.smallest(programs.memory_budget(config.engine.memory_budget, devs))
    groups = population.buckets(members)
    meter = _meter(config, members, progress)
    out = RunOutput([], [], {}, {}, collections.defaultdict(float), [], [])
    stopped_by = None
    stop_flag: dict = {"signal": None}  # the signal graceful_stop received (read when it stopped at once)
    built = _Buckets(config, groups, devs)
    bucket_program, bucket_arch = built.program, built.arch

    saver = resume.Saver(workdir, config) if workdir is not None and config.engine.checkpoint else None
    resumed = None
    if saver is not None:
        resumed = saver.load(
            bucket_arch,
            lambda b_idx, size: bucket_program(b_idx).abstract_state(size),
            lambda msg: print(f"jaxexp: warning: {msg}", file=sys.stderr),
        )
    if resumed is not None:
        _continue(out, resumed, meter, max(m.config.train.epochs for m in members))
    try:
        with resume.graceful_stop(saver is not None) as stop_flag:
            for b_idx, group in enumerate(groups):
                here = None
                if resumed is not None:
                    pos = resumed.host["bucket"]
                    if b_idx < pos or (b_idx == pos and not resumed.host["in_bucket"]):
                        continue  # finished before the checkpoint
                    here = resumed if b_idx == pos else None
                compiled = bucket_program(b_idx)
                data = distributed.put(train.data_of(compiled.dataset), compiled.replicated)
                ckpt = None
                if saver is not None:
                    ckpt = (saver, {"bucket": b_idx}, bucket_arch(b_idx), stop_flag, b_idx == len(groups) - 1)
                where = f"bucket {b_idx + 1}/{len(groups)}"
                bucket.run_bucket(config, compiled, data, group.members, budget, where, meter, out, ckpt, here)
            if saver is not None and not saver.complete:  # (the last bucket's end usually marked it)
                saver.save(None, out, {"bucket": len(groups), "in_bucket": False, "complete": True}, {}, None)
    except KeyboardInterrupt:
        stopped_by = stop_flag["signal"] or stop.REQUESTED["signal"] or 2  # 15: a SIGTERM
    except bucket.Stop as e:
        stopped_by = e.signum
    finally:
        end_line()
        _close(saver, pending, out.timings)
        if cache_dir:
            out.timings["compile_cache_hits"] = compile_cache.EVENTS["hits"] - cache_before["hits"]
            out.timings["compile_cache_misses"] = compile_cache.EVENTS["misses"] - cache_before["misses"]
    late = stop_flag["signal"] if stopped_by is None else None
    return _tables(out, bucket_program(0).program.metric_names, stopped_by)._replace(late_signal=late)


def _meter(config, members, progress) -> Progress:
    """The progress line of a run (process 0 reports)."""
    total_work = sum(m.config.train.epochs for m in members)  # member-epochs (early stops subtract theirs)
    report = progress if config.engine.progress and distributed.is_primary() else None
    return Progress(config.name, len(members), total_work, config.metric, config.goal, report)


def _close(saver, pending: list | None, timings: dict) -> None:
    """Closes the checkpoints: now (waiting for the last background save), or by the
    caller after its own work when ``pending`` is given."""
    if saver is not None and pending is not None:
        pending.append(saver.close)
    elif saver is not None:
        t = time.perf_counter()
        saver.close()
        timings["checkpoint_wait_s"] += time.perf_counter() - t


def program_for(config, bucket: population.Bucket, devs: list) -> Compiled:
    """The compiled programs of a bucket (built once per process: cached by
    ``programs.compiled``; the checks before a run build the same ones)."""
    dataset = cfgmod.workload_of(config).dataset(bucket.members[0].config)
    max_epochs = max(m.config.train.epochs for m in bucket.members)
    seg = population.segment_length(max_epochs, config.engine.segment_epochs)
    needed = (e for rule in search.in_run_rules() if rule.enabled(config) for e in rule.epochs(config))
    seg = math.gcd(seg, *needed)  # the in-run rules act on segment boundaries
    # One member alone: one device (no padded copy training beside it). Other sizes keep
    # every device, so buckets of different sizes share programs (TPE batches, trees).
    used = devs[:1] if len(bucket.members) == 1 and not distributed.multiprocess() else devs
    return programs.compiled(bucket, dataset, seg, used, config.engine.group_size, (config.metric, config.goal))


class _Buckets:
    """The compiled programs and architecture records of a run's buckets."""

    def __init__(self, config, groups: list, devs) -> None:
        self.config, self.groups, self.devs = config, groups, devs

    def program(self, b_idx: int) -> Compiled:
        return program_for(self.config, self.groups[b_idx], self.devs)

    def arch(self, b_idx: int) -> dict:
        """The architecture record of a bucket's population."""
        compiled, part = self.program(b_idx), self.groups[b_idx].members
        return checkpoint.architecture(
            part[0].config, compiled.program.model, compiled.program.sample, [m.member for m in part]
        )


def _continue(out: RunOutput, resumed, meter: Progress, max_epochs: int) -> None:
    """Puts what a checkpoint holds (history, logs, finished members) into ``out``."""
    out.history[:], out.group_history[:], out.rungs[:], out.pbt[:], finals, initial = resume.unpack(
        resumed.results, resumed.host
    )
    out.finals.update(finals)
    out.initial.update(initial)
    out.timings["resumed_from_step"] = resumed.step
    meter.resumed(resumed.step, out.history, finals, max_epochs)


def _tables(out: RunOutput, metrics: tuple[str, ...], stopped_by: int | None) -> RunOutput:
    """The run's output with its frames concatenated (typed empty tables when none)."""
    empty = pd.DataFrame(
        {"member": pd.Series(dtype=np.int64), "epoch": pd.Series(dtype=np.int64)}
        | {m: pd.Series(dtype=np.float64) for m in metrics}
        | {"lr": pd.Series(dtype=np.float64), "diverged": pd.Series(dtype=bool)}
    )
    history = pd.concat(out.history, ignore_index=True) if out.history else empty
    group_history = pd.concat(out.group_history, ignore_index=True) if out.group_history else pd.DataFrame()
    rungs = pd.concat(out.rungs, ignore_index=True) if out.rungs else pd.DataFrame()
    pbt = pd.concat(out.pbt, ignore_index=True) if out.pbt else pd.DataFrame()
    return RunOutput(history, group_history, out.finals, out.initial, dict(out.timings), rungs, pbt, stopped_by)
