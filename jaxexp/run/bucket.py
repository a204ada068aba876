"""One bucket's members trained over resident slots (``run_bucket``): refills,
segments, in-run rules, finished members, compaction, checkpoints."""

from __future__ import annotations

import time

import jax
import numpy as np
import pandas as pd

from jaxexp import config as cfgmod
from jaxexp import search
from jaxexp.core import train
from jaxexp.run import distributed
from jaxexp.run.programs import Compiled
from jaxexp.run.progress import Progress
from jaxexp.run.slots import SlotQueue, best_of, history_frames
from jaxexp.search import inrun
from jaxexp.search.protocol import Boundary


class Stop(Exception):
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


def run_bucket(config, compiled: Compiled, data, part, budget, where, meter: Progress, out, ckpt, resumed) -> None:
    """Trains one bucket's members ``part``; appends history frames and finished
    members to ``out``. The members train in resident slots (``jaxexp.run.slots.SlotQueue``). A slot
    whose member has finished takes the next queued member before the next
    segment; with the queue empty, finished members' slots are dropped into a
    smaller padded size class (``engine.compact``). The in-run rules
    (``jaxexp.search.IN_RUN_RULES``: successive halving prunes members at rungs,
    population-based training copies members into others) act between segments.
    ckpt: None, or (saver, position, architecture record, stop flag, last bucket of the
    run): a checkpoint is saved after a segment when one is due. resumed: a ``resume.Resumed`` of
    this bucket to continue from.
    """
    timings = out.timings
    ids = np.asarray([m.member for m in part], np.int64)
    epochs = np.asarray([m.config.train.epochs for m in part])
    program = compiled.program
    sign = cfgmod.goal_sign(config.goal)
    t0 = time.perf_counter()
    state = hp = None
    if resumed is None:
        q = SlotQueue.fresh(compiled.slots_for(len(part), config.engine.chunk_size, budget, timings), epochs)
    else:
        q, state = SlotQueue.restore(resumed.host, epochs), resumed.state
    overrides = inrun.pbt_overrides(out, ids)  # {index into part: {field: value}} (rebuilt on resume)
    rules = [rule(config, part, ids, out, overrides) for rule in search.in_run_rules() if rule.enabled(config)]
    _note_size(compiled, len(q.slot), timings)
    while True:
        fill = q.refill()
        if len(fill):
            timings["refills"] += state is not None
            state, hp = _start(
                config, compiled, part, q.slot, q.limit, overrides, fill, state, data, out.initial, timings
            )
        elif hp is None:
            hp = compiled.encode(part, q.slot, q.limit, overrides)
        if q.done.all():
            break
        segment = compiled.segment_executable(len(q.slot), timings)
        t = time.perf_counter()
        state, m = segment(state, hp, data)
        m = distributed.to_host(m)  # the one host sync per segment
        seg_wall = time.perf_counter() - t
        timings["segments_s"] += seg_wall
        timings["member_epochs_computed"] += len(q.slot) * m["active"].shape[1]
        real, who = q.running()
        m = {k: v[real] for k, v in m.items()}
        _log(out, m, ids[who], program, compiled.dataset.groups)
        active = m["active"]  # [n, E]
        epoch_now = m["epoch"][:, -1] + active[:, -1]
        finished = m["diverged"][:, -1] | m["stopped"][:, -1] | (epoch_now >= q.limit[who])
        q.wave += 1
        b = Boundary(ids[who], who, real, len(q.slot), epoch_now, active, sign * m[config.metric], finished, q.wave)
        pruned, src = _apply_rules(rules, b, q, out)
        finished |= pruned
        if src is not None:
            state = compiled.exploit(state, src)
        if pruned.any() or src is not None:
            hp = None  # re-encoded: a pruned member still in its slot stops; PBT's new hyperparameters
        newly = finished & ~q.done[who]
        if newly.any():
            _finished(compiled, state, real[newly], ids[who[newly]], epoch_now[newly], pruned[newly], out)
            timings["pruned"] += int((newly & pruned).sum())
            meter.total -= int((epochs[who[newly]] - epoch_now[newly]).sum())  # early stops shorten the sweep
        q.done[who[finished]] = True
        best = best_of(m, ids[who], config.metric, sign)
        counts = (int(active.sum()), int(newly.sum()), int((newly & m["diverged"][:, -1]).sum()))
        where_now = f"{where} slots {len(q.slot)} queued {len(part) - q.queued}"
        meter.update(where_now, int(epoch_now.max()), int(epochs.max()), *counts, best, timings["segments_s"])
        per_slot_epoch = seg_wall / (len(q.slot) * active.shape[1])
        keep = _compaction(config.engine.compact, compiled, q, real, finished, epochs[who] - epoch_now, per_slot_epoch)
        if keep is not None:
            state = compiled.take(state, keep)
            hp = None if hp is None else compiled.take(hp, keep)
            timings["compactions"] += 1
        if hp is None and q.empty:  # pruned or PBT: no refill to re-encode them
            hp = compiled.encode(part, q.slot, q.limit, overrides)
        if ckpt is not None:
            _checkpoint(ckpt, q, state, out, best, timings)
    timings["bucket_s"] += time.perf_counter() - t0


def _log(out, m: dict, member_ids, program, groups) -> None:
    """Appends a segment's history (and per-group history) rows to ``out``."""
    frame, gframe = history_frames(m, member_ids, program.metric_names, program.group_metric_names, groups)
    out.history.append(frame)
    if gframe is not None:
        out.group_history.append(gframe)


def _compaction(mode, compiled: Compiled, q: SlotQueue, real, finished, left, per_slot_epoch: float):
    """With the queue empty, drops the finished members' slots into a smaller size
    class when that pays (``_compaction_pays``); returns the old slot of each new
    slot, or None (no compaction)."""
    alive = real[~finished]
    size = compiled.size_class(len(alive)) if len(alive) else len(q.slot)
    if (
        q.empty
        and size < len(q.slot)
        and _compaction_pays(mode, compiled, size, len(q.slot), per_slot_epoch, left, finished)
    ):
        return q.compact(alive, size)
    return None


def _finished(compiled: Compiled, state, slots, member_ids, epoch_now, pruned, out) -> None:
    """Records members that finished in ``slots``: best parameters, stop epoch, and
    the epoch of those pruned."""
    _collect_finals(compiled, state, slots, member_ids, out.finals)
    for member, epoch in zip(member_ids[pruned], epoch_now[pruned]):
        out.finals[int(member)]["pruned_epoch"] = int(epoch)


def _note_size(compiled: Compiled, size: int, timings: dict) -> None:
    """Compiles the segment of ``size`` slots; records the slot count and its memory."""
    timings["slots"] = max(timings.get("slots", 0), size)
    compiled.segment_executable(size, timings)
    if size in compiled.memory:  # of the size that runs (not of sizes measured over budget)
        timings["segment_memory_mb"] = max(timings.get("segment_memory_mb", 0.0), compiled.memory[size] / 2**20)


def _apply_rules(rules: list, b: Boundary, q: SlotQueue, out) -> tuple[np.ndarray, np.ndarray | None]:
    """Asks each in-run rule in turn (each sees the members the ones before
    pruned as finished); logs their decisions; a pruned member's limit becomes
    its epoch. Returns (pruned [n] bool, the slot copy map or None)."""
    pruned, src = np.zeros(len(b.ids), bool), None
    for rule in rules:
        d = rule.at_boundary(b)
        if d.log:
            getattr(out, rule.log).append(pd.DataFrame(d.log))
        if d.pruned is not None and d.pruned.any():
            pruned |= d.pruned
            q.limit[b.who[d.pruned]] = b.epoch_now[d.pruned]
            b = b._replace(finished=b.finished | d.pruned)
        if d.src is not None:
            src = d.src if src is None else src[d.src]
    return pruned, src


def _checkpoint(ckpt, q: SlotQueue, state, out, best, timings: dict) -> None:
    """Saves the bucket's state after a segment when one is due (``engine.checkpoint_every_s``;
    always at the bucket's end and on a stop signal); a stop signal then stops every process.

    The end of the run's last bucket is also the run's "complete" marker (one save instead
    of a second that would first wait for this one to reach the disk), unless a stop signal
    came first: that run stops as interrupted and the same command completes it. A signal
    during the completing save does not interrupt a run whose every member has finished:
    its result files are completed, then it stops (``engine.RunOutput.late_signal``)."""
    saver, position, arch, stop, last = ckpt
    in_bucket = not q.done.all()
    # collective decisions: every process saves, or none; all stop together
    stopping = distributed.any_process(stop["signal"] is not None)
    position = q.position(position)
    completes = last and not in_bucket and not stopping
    if completes:
        position.update(bucket=position["bucket"] + 1, complete=True)
    if stopping or distributed.any_process(not in_bucket or saver.due()):
        t = time.perf_counter()
        saver.save(state if in_bucket else None, out, position, arch, None if best is None else best[0])
        timings["checkpoint_s"] += time.perf_counter() - t
        stopping = distributed.any_process(stop["signal"] is not None)  # also a signal during the save
    if stopping and not completes:
        raise Stop(stop["signal"] or 15)


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
