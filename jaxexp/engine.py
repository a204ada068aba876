"""Host side of a sweep: run each bucket's queue of members segment by segment.

Everything here is I/O and bookkeeping; the numbers come from the pure
functions in ``jaxexp.train``, compiled per bucket in ``jaxexp.programs`` as
``jit(vmap(...))`` with the population axis sharded over the local devices.
Between segments: progress, checkpoints, refill and compaction of slots, and
the in-run strategies of ``jaxexp.inrun``.
"""

from __future__ import annotations

import collections
import math
import sys
import time
from collections.abc import Callable
from typing import NamedTuple

import jax
import ml_collections
import numpy as np
import pandas as pd

from jaxexp import checkpoint, compile_cache, distributed, inrun, population, programs, resume, train
from jaxexp import config as cfgmod
from jaxexp.programs import _PROGRAMS, TRACE_COUNTS, Compiled, devices  # noqa: F401 - engine's API before the split
from jaxexp.progress import Progress, end_line, print_progress


class RunOutput(NamedTuple):
    """What ``run`` returns (host numpy/pandas)."""

    history: pd.DataFrame  # member, epoch (1-based), metrics, lr, diverged
    group_history: pd.DataFrame  # member, epoch, group, per-group metrics (grouped tasks; else empty)
    finals: dict  # member id -> {"best_params": pytree of numpy, "stop_epoch": int (0 = not early-stopped)}
    initial: dict  # member id -> {val metric: value of the initial parameters}
    timings: dict
    rungs: pd.DataFrame  # successive halving decisions: rung, wave, member, value, kept (else empty)
    pbt: pd.DataFrame  # population-based training copies: wave, epoch, member, source, field, old, new


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
    what finished so far, with ``timings["interrupted"] = 1`` (members still
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
    total_work = sum(m.config.train.epochs for m in members)  # member-epochs (early stops subtract theirs)
    meter = Progress(
        config.name,
        len(members),
        total_work,
        config.metric,
        config.goal,
        progress if config.engine.progress and distributed.is_primary() else None,
    )
    out = RunOutput([], [], {}, {}, collections.defaultdict(float), [], [])
    monitor = (config.metric, config.goal)

    def bucket_program(b_idx: int) -> Compiled:
        bucket = groups[b_idx]
        dataset = cfgmod.workload_of(config).dataset(bucket.members[0].config)
        max_epochs = max(m.config.train.epochs for m in bucket.members)
        seg = population.segment_length(max_epochs, config.engine.segment_epochs)
        seg = math.gcd(seg, *config.sweep.halving_rungs, config.sweep.pbt_interval)  # on segment boundaries
        # One member alone: one device (no padded copy training beside it). Other sizes keep
        # every device, so buckets of different sizes share programs (TPE batches, trees).
        used = devs[:1] if len(bucket.members) == 1 and not distributed.multiprocess() else devs
        return programs.compiled(bucket, dataset, seg, used, config.engine.group_size, monitor)

    def bucket_arch(b_idx: int) -> dict:
        """The architecture record of a bucket's population."""
        compiled, part = bucket_program(b_idx), groups[b_idx].members
        return checkpoint.architecture(
            part[0].config, compiled.program.model, compiled.program.sample, [m.member for m in part]
        )

    saver = resume.Saver(workdir, config) if workdir is not None and config.engine.checkpoint else None
    resumed = None
    if saver is not None:
        resumed = saver.load(
            bucket_arch,
            lambda b_idx, size: bucket_program(b_idx).abstract_state(size),
            lambda msg: print(f"jaxexp: warning: {msg}", file=sys.stderr),
        )
    if resumed is not None:
        out.history[:], out.group_history[:], out.rungs[:], out.pbt[:], finals, initial = resume.unpack(
            resumed.results, resumed.host
        )
        out.finals.update(finals)
        out.initial.update(initial)
        out.timings["resumed_from_step"] = resumed.step
        meter.resumed(resumed.step, out.history, finals, max(m.config.train.epochs for m in members))
    try:
        with resume.graceful_stop(saver is not None) as stop:
            for b_idx, bucket in enumerate(groups):
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
                    ckpt = (saver, {"bucket": b_idx}, bucket_arch(b_idx), stop)
                where = f"bucket {b_idx + 1}/{len(groups)}"
                _run_bucket(config, compiled, data, bucket.members, budget, where, meter, out, ckpt, here)
            if saver is not None and (resumed is None or not resumed.host.get("complete")):
                saver.save(None, out, {"bucket": len(groups), "in_bucket": False, "complete": True}, {}, None)
    except KeyboardInterrupt:
        out.timings["interrupted"] = 1
    except _Stop as e:
        out.timings["interrupted"] = 1
        out.timings["signal"] = e.signum
    finally:
        end_line()
        if saver is not None and pending is not None:
            pending.append(saver.close)  # the caller waits for the last save after its own work
        elif saver is not None:
            t = time.perf_counter()
            saver.close()  # waits for the last background save
            out.timings["checkpoint_wait_s"] += time.perf_counter() - t
        if cache_dir:
            out.timings["compile_cache_hits"] = compile_cache.EVENTS["hits"] - cache_before["hits"]
            out.timings["compile_cache_misses"] = compile_cache.EVENTS["misses"] - cache_before["misses"]
    metrics = bucket_program(0).program.metric_names
    empty = pd.DataFrame(
        {"member": pd.Series(dtype=np.int64), "epoch": pd.Series(dtype=np.int64)}
        | {m: pd.Series(dtype=np.float64) for m in metrics}
        | {"lr": pd.Series(dtype=np.float64), "diverged": pd.Series(dtype=bool)}
    )
    history = pd.concat(out.history, ignore_index=True) if out.history else empty
    group_history = pd.concat(out.group_history, ignore_index=True) if out.group_history else pd.DataFrame()
    rungs = pd.concat(out.rungs, ignore_index=True) if out.rungs else pd.DataFrame()
    pbt = pd.concat(out.pbt, ignore_index=True) if out.pbt else pd.DataFrame()
    return RunOutput(history, group_history, out.finals, out.initial, dict(out.timings), rungs, pbt)


class _Stop(Exception):
    """A SIGINT/SIGTERM asked to stop; raised after the segment's checkpoint."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _start(config, compiled: Compiled, part, slot, limit, overrides, fill, state, data, initial: dict, timings):
    """Starts the members now in slots ``fill`` (every slot when ``state`` is
    None); records their initial metrics. Returns (state, hparams)."""
    hp = compiled.encode(part, slot, limit, overrides)
    padded = [part[s] for s in np.maximum(slot, 0)]
    seeds = np.asarray([m.seed for m in padded], np.uint32)
    ids = np.asarray([m.member for m in padded], np.uint32)
    if state is None:
        args = (np.uint32(config.seed), seeds, ids, hp, data)
        compiled.compile_init("init", args, len(slot), timings)
        t = time.perf_counter()
        state = compiled.init(*args)
    else:
        mask = np.zeros(len(slot), bool)
        mask[fill] = True
        args = (state, distributed.put(mask, compiled.pop), np.uint32(config.seed), seeds, ids, hp, data)
        compiled.compile_init("refill", args, len(slot), timings)
        t = time.perf_counter()
        state = compiled.refill(*args)
    evals = distributed.to_host(state.init_eval)
    timings["init_s"] += time.perf_counter() - t
    for s in fill:
        initial[part[slot[s]].member] = {name: float(v[s]) for name, v in evals.items()}
    return state, hp


def _run_bucket(
    config, compiled: Compiled, data, part, budget, where, meter: Progress, out: RunOutput, ckpt, resumed
) -> None:
    """Trains one bucket's members ``part``; appends history frames and finished
    members to ``out``.

    ``slot[s]`` is the index into ``part`` of the member in slot s, or -1 (no
    member); ``queued`` is the index of the first member not started yet. A slot
    whose member has finished takes the next queued member before the next
    segment; with the queue empty, finished members' slots are dropped into a
    smaller padded size class (``engine.compact``). Successive halving prunes
    members at rungs (``inrun.halving``) and population-based training copies
    members into others (``inrun.pbt``) between segments.
    ckpt: None, or (saver, position, architecture record, stop flag): a
    checkpoint is saved after every segment. resumed: a ``resume.Resumed`` of
    this bucket to continue from.
    """
    timings = out.timings
    ids = np.asarray([m.member for m in part], np.int64)
    epochs = np.asarray([m.config.train.epochs for m in part])
    max_epoch = int(epochs.max())
    program = compiled.program
    metric_names = program.metric_names
    sign = cfgmod.goal_sign(config.goal)

    rungs, eta = tuple(config.sweep.halving_rungs), config.sweep.halving_eta
    t0 = time.perf_counter()
    state = hp = None
    if resumed is None:
        size = compiled.slots_for(len(part), config.engine.chunk_size, budget, timings)
        slot, done, queued = np.full(size, -1), np.zeros(len(part), bool), 0
        limit, wave = epochs.copy(), 0  # epoch each member may train to (its rung once pruned); segments run
    else:
        slot, done = np.asarray(resumed.host["slot"]), np.asarray(resumed.host["done"], bool)
        queued, state = int(resumed.host["queued"]), resumed.state
        limit, wave = np.asarray(resumed.host["limit"], epochs.dtype), int(resumed.host["wave"])
    seen, overrides = inrun.strategy_records(out, ids, rungs, sign)
    timings["slots"] = max(timings.get("slots", 0), len(slot))
    compiled.segment_executable(len(slot), timings)
    if len(slot) in compiled.memory:  # of the size that runs (not of sizes measured over budget)
        mb = compiled.memory[len(slot)] / 2**20
        timings["segment_memory_mb"] = max(timings.get("segment_memory_mb", 0.0), mb)
    while True:
        free = np.nonzero((slot < 0) | done[np.maximum(slot, 0)])[0]
        if queued < len(part) and len(free):
            fill = free[: len(part) - queued]
            slot[fill] = np.arange(queued, queued + len(fill))
            queued += len(fill)
            timings["refills"] += state is not None
            state, hp = _start(config, compiled, part, slot, limit, overrides, fill, state, data, out.initial, timings)
        elif hp is None:
            hp = compiled.encode(part, slot, limit, overrides)
        if done.all():
            break
        segment = compiled.segment_executable(len(slot), timings)
        t = time.perf_counter()
        state, m = segment(state, hp, data)
        m = distributed.to_host(m)  # the one host sync per segment
        seg_wall = time.perf_counter() - t
        timings["segments_s"] += seg_wall
        timings["member_epochs_computed"] += len(slot) * m["active"].shape[1]
        real = np.nonzero(slot >= 0)[0]
        who = slot[real]  # indices into part
        m = {k: v[real] for k, v in m.items()}
        active = m["active"]  # [n, E]
        mi, ei = np.nonzero(active)
        block = {"member": ids[who][mi], "epoch": m["epoch"][mi, ei].astype(np.int64) + 1}
        for name in (*metric_names, "lr"):
            block[name] = m[name][mi, ei].astype(np.float64)
        block["diverged"] = m["diverged"][mi, ei]
        out.history.append(pd.DataFrame(block))
        if program.group_metric_names:
            g = len(compiled.dataset.groups)
            gblock = {
                "member": np.repeat(block["member"], g),
                "epoch": np.repeat(block["epoch"], g),
                "group": np.tile(np.asarray(compiled.dataset.groups), len(mi)),
            }
            for name in program.group_metric_names:
                gblock[name] = m[f"group_{name}"][mi, ei].reshape(-1).astype(np.float64)
            out.group_history.append(pd.DataFrame(gblock))

        epoch_now = m["epoch"][:, -1] + active[:, -1]
        finished = m["diverged"][:, -1] | m["stopped"][:, -1] | (epoch_now >= limit[who])
        wave += 1
        signed = sign * m[config.metric]
        pruned, log = inrun.halving(rungs, eta, seen, epoch_now, active, signed, finished, ids[who])
        if log:
            out.rungs.append(pd.DataFrame(log).assign(wave=wave, value=lambda d: sign * d["value"]))
        if pruned.any():
            limit[who[pruned]] = epoch_now[pruned]
            finished |= pruned
            hp = None  # re-encoded below: a pruned member still in its slot stops training
        if config.sweep.pbt_interval:
            src, log = inrun.pbt(
                config, part, real, who, ids, overrides, len(slot), epoch_now, active, signed, finished, wave
            )
            if log:
                state = compiled.exploit(state, src)
                out.pbt.append(pd.DataFrame(log))
                hp = None
        newly = finished & ~done[who]
        if newly.any():
            _collect_finals(compiled, state, real[newly], ids[who[newly]], out.finals)
            for k in np.nonzero(newly & pruned)[0]:
                out.finals[int(ids[who[k]])]["pruned_epoch"] = int(epoch_now[k])
            timings["pruned"] += int((newly & pruned).sum())
            meter.total -= int((epochs[who[newly]] - epoch_now[newly]).sum())  # early stops shorten the sweep
        done[who[finished]] = True
        vals = np.where(active & ~m["diverged"], sign * m[config.metric], np.inf)
        best = None
        if np.isfinite(vals).any():
            i, j = np.unravel_index(np.argmin(vals), vals.shape)
            best = (float(m[config.metric][i, j]), int(ids[who[i]]))
        meter.update(
            f"{where} slots {len(slot)} queued {len(part) - queued}",
            int(epoch_now.max()),
            max_epoch,
            int(active.sum()),
            int(newly.sum()),
            int((newly & m["diverged"][:, -1]).sum()),
            best,
            timings["segments_s"],
        )
        alive = real[~finished]
        size = compiled.size_class(len(alive)) if len(alive) else len(slot)
        per_slot_epoch = seg_wall / (len(slot) * active.shape[1])
        left = epochs[who] - epoch_now
        if (
            queued == len(part)
            and size < len(slot)
            and _compaction_pays(config.engine.compact, compiled, size, len(slot), per_slot_epoch, left, finished)
        ):
            keep = np.concatenate([alive, np.full(size - len(alive), alive[0])])
            state = compiled.take(state, keep)
            hp = None if hp is None else compiled.take(hp, keep)
            slot = np.concatenate([slot[alive], np.full(size - len(alive), -1)])
            timings["compactions"] += 1
        if hp is None and queued == len(part):  # pruned or PBT: no refill to re-encode them
            hp = compiled.encode(part, slot, limit, overrides)
        if ckpt is not None:
            saver, position, arch, stop = ckpt
            t = time.perf_counter()
            in_bucket = not done.all()
            position = {
                **position,
                "in_bucket": in_bucket,
                "slot": slot.tolist(),
                "done": done.tolist(),
                "queued": queued,
                "limit": limit.tolist(),
                "wave": wave,
            }
            saver.save(state if in_bucket else None, out, position, arch, None if best is None else best[0])
            timings["checkpoint_s"] += time.perf_counter() - t
            if distributed.any_process(stop["signal"] is not None):  # all processes stop together
                raise _Stop(stop["signal"] or 15)
    timings["bucket_s"] += time.perf_counter() - t0


def _compaction_pays(mode, compiled, size: int, current: int, per_slot_epoch: float, left, finished) -> bool:
    """Whether dropping from ``current`` to ``size`` slots saves more time than it costs.

    Saved: the freed slots' share of the remaining epochs (``left``: epochs
    each member still has; seconds per slot-epoch measured on the segment just
    run). Cost: compiling the smaller size, if not compiled yet, estimated by
    this bucket's slowest compile so far.
    """
    if mode != "auto":
        return mode == "always"
    if size in compiled._executables:
        return True
    saved = (current - size) * int(left[~finished].max()) * per_slot_epoch
    return saved > max(compiled.compile_s.values(), default=0.0)


def _collect_finals(compiled: Compiled, state: train.TrainState, slots, member_ids, finals: dict) -> None:
    """Copies the best parameters and stop epoch of finished members to the host
    (of every process)."""
    params, stop = jax.device_get(compiled.gather((state.best_params, state.monitor.stop_epoch), np.asarray(slots)))
    for k, member in enumerate(member_ids):
        finals[int(member)] = {
            "best_params": jax.tree.map(lambda a, k=k: np.array(a[k]), params),
            "stop_epoch": int(stop[k]),
        }
