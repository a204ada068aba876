"""Host side of a sweep: compile per bucket, run chunks segment by segment.

Everything here is I/O and bookkeeping; the numbers come from the pure
functions in ``jaxexp.train``, run as ``jit(vmap(...))`` with the population
axis sharded over the local devices (mesh axis ``"pop"``).
"""

from __future__ import annotations

import collections
import math
import sys
import time
from collections.abc import Callable

import jax
import ml_collections
import numpy as np
import pandas as pd
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxexp import config as cfgmod
from jaxexp import population, results, train
from jaxexp.errors import ConfigError
from jaxexp.tasks import METRICS, kind_of, load_task

# Number of times each compiled function was traced in this process (tests
# assert it to catch recompiles).
TRACE_COUNTS: collections.Counter = collections.Counter()

_PROGRAMS: dict = {}

# Working set per vmapped group on one device: about an L2 cache. Calibrated
# with benchmarks/throughput.py on a 2-core EPYC (2 MiB L2 per core).
_GROUP_CACHE_BYTES = 4 << 20


def devices(num_devices: int = 0) -> list:
    """The local devices a population is sharded over (0 = all)."""
    local = jax.local_devices()
    if num_devices > len(local):
        raise ConfigError(
            f"engine.num_devices: {num_devices} requested but only {len(local)} local device(s); use 0 for all"
        )
    return local[: num_devices or len(local)]


class _Compiled:
    """jit(vmap(init)) and the sharded segment program of one bucket on one mesh."""

    def __init__(self, program: train.Program, devs: list, group_size: int):
        self.program = program
        self.n_devices = len(devs)
        self.group_size = group_size  # 0 = auto
        self.mesh = Mesh(np.array(devs), ("pop",))
        self.pop = NamedSharding(self.mesh, PartitionSpec("pop"))
        self.replicated = NamedSharding(self.mesh, PartitionSpec())

        def init(base_seed, seeds, ids, hp):
            TRACE_COUNTS["init"] += 1
            return jax.vmap(program.init, in_axes=(None, 0, 0, 0))(base_seed, seeds, ids, hp)

        self.init = jax.jit(init, out_shardings=self.pop)
        self._executables: dict[int, jax.stages.Compiled] = {}

    def group_for(self, size: int) -> int:
        """Members vmapped together on one device (the rest loop via lax.map)."""
        local = size // self.n_devices
        auto = local  # accelerators: the whole local population at once
        if self.mesh.devices.flat[0].platform == "cpu":
            auto = max(1, _GROUP_CACHE_BYTES // self.program.member_bytes)
        target = min(local, self.group_size or auto)
        # Prefer a divisor of the per-device count: a remainder group compiles a
        # second copy of the segment (measured: 2x compile time, slower runs).
        divisor = max(g for g in range(1, target + 1) if local % g == 0)
        return divisor if 2 * divisor >= target else target

    def _segment_fn(self, group: int):
        program, pop, rep = self.program, PartitionSpec("pop"), PartitionSpec()

        def local(state, hp, data):
            # One device's members, ``group`` at a time: a whole segment runs on a
            # cache-sized group before the next group starts, instead of streaming
            # every member's parameters and activations through memory each step.
            return jax.lax.map(lambda sh: program.run_segment(sh[0], sh[1], data), (state, hp), batch_size=group)

        def segment(state, hp, data):
            TRACE_COUNTS["run_segment"] += 1
            return jax.shard_map(local, mesh=self.mesh, in_specs=(pop, pop, rep), out_specs=(pop, pop))(state, hp, data)

        return jax.jit(segment, donate_argnums=0)

    def segment_executable(self, state, hp, data, timings: dict) -> jax.stages.Compiled:
        """The compiled segment for this population size (compiled ahead of time
        once per size, so compile time and memory are measured, not guessed)."""
        size = int(hp["train.lr"].shape[0])
        if size not in self._executables:
            t = time.perf_counter()
            group = self.group_for(size)
            exe = self._segment_fn(group).lower(state, hp, data).compile()
            timings["group_size"] = group
            timings["compile_s"] += time.perf_counter() - t
            mem = exe.memory_analysis()
            if mem is not None:
                total = mem.argument_size_in_bytes + mem.output_size_in_bytes + mem.temp_size_in_bytes
                timings["segment_memory_mb"] = max(timings.get("segment_memory_mb", 0.0), total / 2**20)
            self._executables[size] = exe
        return self._executables[size]


def _compiled(bucket: population.Bucket, task, segment_epochs: int, devs: list, group_size: int) -> _Compiled:
    cfgs = [m.config for m in bucket.members]
    dropout = (any(c.model.input_dropout > 0 for c in cfgs), any(c.model.dropout > 0 for c in cfgs))
    key = (bucket.key, segment_epochs, tuple(d.id for d in devs), group_size, dropout)
    if key not in _PROGRAMS:
        program = train.make_program(cfgs[0], task, segment_epochs, dropout)
        _PROGRAMS[key] = _Compiled(program, devs, group_size)
    return _PROGRAMS[key]


def _print_progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class _Progress:
    """Members done, epoch, best metric so far and ETA, one line per segment."""

    def __init__(self, name, n_members, total_epoch_work, metric, goal, report: Callable | None):
        self.name, self.n, self.total = name, n_members, max(total_epoch_work, 1)
        self.metric, self.sign = metric, cfgmod.goal_sign(goal)
        self.report = report
        self.done_work = 0
        self.finished = 0
        self.diverged = 0
        self.best = (math.inf, None)
        self.start = time.perf_counter()

    def update(self, where: str, epoch: int, max_epoch: int, work: int, finished: int, diverged: int, best):
        self.done_work += work
        self.finished += finished
        self.diverged += diverged
        if best is not None and (self.best[1] is None or self.sign * best[0] < self.sign * self.best[0]):
            self.best = best
        if self.report is None:
            return
        elapsed = time.perf_counter() - self.start
        eta = elapsed / self.done_work * (self.total - self.done_work) if self.done_work else float("nan")
        best_s = f"{self.best[0]:.5g} (member {self.best[1]})" if self.best[1] is not None else "n/a"
        self.report(
            f"[{self.name}] {where} | epoch {epoch}/{max_epoch} | members done {self.finished}/{self.n}"
            f" (diverged {self.diverged}) | best {self.metric} {best_s} | {elapsed:.1f}s elapsed, ETA {eta:.1f}s"
        )


def run(
    config: ml_collections.ConfigDict,
    members: list[population.Member],
    progress: Callable[[str], None] | None = _print_progress,
) -> tuple[pd.DataFrame, dict]:
    """Trains ``members``; returns (history DataFrame, timings).

    history columns: member, epoch (1-based), the task's metrics, diverged.
    A KeyboardInterrupt stops at once and returns what finished so far, with
    ``timings["interrupted"] = 1``: every completed epoch is kept.
    """
    devs = devices(config.engine.num_devices)
    groups = population.buckets(members)
    layout = [population.chunks(b.members, config.engine.chunk_size, len(devs)) for b in groups]
    total_work = sum(max(m.config.train.epochs for m in part) * len(part) for chunks in layout for part, _ in chunks)
    meter = _Progress(
        config.name, len(members), total_work, config.metric, config.goal, progress if config.engine.progress else None
    )
    frames, timings = [], collections.defaultdict(float)
    try:
        for b_idx, (bucket, chunks) in enumerate(zip(groups, layout)):
            task = load_task(bucket.members[0].config.task)
            max_epochs = max(m.config.train.epochs for m in bucket.members)
            seg = population.segment_length(max_epochs, config.engine.segment_epochs)
            compiled = _compiled(bucket, task, seg, devs, config.engine.group_size)
            data = jax.device_put(train.data_of(task), compiled.replicated)
            for c_idx, (part, n_pad) in enumerate(chunks):
                where = f"bucket {b_idx + 1}/{len(groups)} chunk {c_idx + 1}/{len(chunks)}"
                _run_chunk(config, compiled, data, part, n_pad, where, meter, timings, frames)
    except KeyboardInterrupt:
        timings["interrupted"] = 1
    metrics = METRICS[kind_of(members[0].config.task)]
    empty = pd.DataFrame(
        {"member": pd.Series(dtype=np.int64), "epoch": pd.Series(dtype=np.int64)}
        | {m: pd.Series(dtype=np.float64) for m in metrics}
        | {"diverged": pd.Series(dtype=bool)}
    )
    history = pd.concat(frames, ignore_index=True) if frames else empty
    return history, dict(timings)


def _run_chunk(config, compiled: _Compiled, data, part, n_pad, where, meter: _Progress, timings, frames: list) -> None:
    """Trains one chunk, appending one history frame per segment to ``frames``."""
    padded = part + [part[-1]] * n_pad
    hp = jax.device_put(train.encode_hparams([m.config for m in padded]), compiled.pop)
    seeds = np.asarray([m.seed for m in padded], np.uint32)
    ids = np.asarray([m.member for m in padded], np.uint32)
    real = len(part)
    epochs = np.asarray([m.config.train.epochs for m in part])
    max_epoch = int(epochs.max())
    metric_names = compiled.program.metric_names
    sel = metric_names.index(config.metric)
    sign = cfgmod.goal_sign(config.goal)

    t0 = time.perf_counter()
    state = compiled.init(np.uint32(config.seed), seeds, ids, hp)
    jax.block_until_ready(state)
    timings["init_s"] += time.perf_counter() - t0  # includes its compile on first use
    segment = compiled.segment_executable(state, hp, data, timings)
    done = np.zeros(real, bool)
    while not done.all():
        t = time.perf_counter()
        state, m = segment(state, hp, data)
        m = jax.device_get(m)  # the one host sync per segment
        timings["segments_s"] += time.perf_counter() - t
        active = m["active"][:real]  # [P, E]
        mi, ei = np.nonzero(active)
        block = {"member": ids[:real][mi].astype(np.int64), "epoch": m["epoch"][:real][mi, ei].astype(np.int64) + 1}
        for name in metric_names:
            block[name] = m[name][:real][mi, ei].astype(np.float64)
        block["diverged"] = m["diverged"][:real][mi, ei]
        frames.append(pd.DataFrame(block))
        diverged = m["diverged"][:real, -1]
        epoch_now = m["epoch"][:real, -1] + active[:, -1]
        now_done = diverged | (epoch_now >= epochs)
        newly = now_done & ~done
        done = now_done
        vals = np.where(active & ~m["diverged"][:real], sign * m[metric_names[sel]][:real], np.inf)
        best = None
        if np.isfinite(vals).any():
            i, j = np.unravel_index(np.argmin(vals), vals.shape)
            best = (float(m[metric_names[sel]][i, j]), int(ids[i]))
        meter.update(
            where,
            int(epoch_now.max()),
            max_epoch,
            int(active.sum()),
            int(newly.sum()),
            int((newly & diverged).sum()),
            best,
        )
    timings["chunk_s"] += time.perf_counter() - t0


def sweep(config: ml_collections.ConfigDict, workdir: str | None = None, progress=_print_progress) -> results.Results:
    """Runs the whole sweep ``config.sweep`` and returns its Results.

    With ``workdir`` the results are also written there (config.json,
    members.csv, history.csv, report.md).
    """
    table = population.members_table(config)
    return run_members(config, table, workdir, progress)


def train_config(
    config: ml_collections.ConfigDict, workdir: str | None = None, progress=_print_progress
) -> results.Results:
    """Trains the base config (``sweep.space`` ignored) for ``sweep.seeds`` seeds."""
    config = ml_collections.ConfigDict(config.to_dict())
    config.sweep.space = ml_collections.ConfigDict()
    config.sweep.method = "grid"
    return sweep(config, workdir, progress)


def run_members(
    config: ml_collections.ConfigDict, table: pd.DataFrame, workdir: str | None = None, progress=_print_progress
) -> results.Results:
    """Trains the members of ``table`` (columns member, config_id, seed, params...).

    Re-running a single row of a sweep's ``members.csv`` with the sweep's config
    reproduces that member.
    """
    cfgmod.validate_top(config)
    members = population.resolve(config, table)
    for bucket in population.buckets(members):  # bad data fails before anything is written
        cfg = bucket.members[0].config
        n_train = len(load_task(cfg.task).x_train)
        if cfg.train.batch_size > n_train:
            raise ConfigError(
                f"train.batch_size: {cfg.train.batch_size} > {n_train} training rows; use a smaller batch"
            )
    if workdir is not None:
        results.prepare_workdir(workdir, config)
    t0 = time.perf_counter()
    history, timings = run(config, members, progress)
    timings["total_s"] = time.perf_counter() - t0
    out = results.assemble(config, table, members, history, timings)
    if workdir is not None:
        results.write(out, workdir)
    return out
