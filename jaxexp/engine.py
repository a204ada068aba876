"""Host side of a sweep: compile per bucket, run each bucket's queue segment by segment.

Everything here is I/O and bookkeeping; the numbers come from the pure
functions in ``jaxexp.train``, run as ``jit(vmap(...))`` with the population
axis sharded over the local devices (mesh axis ``"pop"``).
"""

from __future__ import annotations

import collections
import math
import os
import sys
import time
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pandas as pd
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxexp import (
    checkpoint,
    compile_cache,
    cpu,
    distributed,
    population,
    results,
    resume,
    space,
    spacefile,
    strategies,
    train,
    workload,
)
from jaxexp import config as cfgmod
from jaxexp.errors import ConfigError

# Number of times each compiled function was traced in this process (tests
# assert it to catch recompiles).
TRACE_COUNTS: collections.Counter = collections.Counter()

_PROGRAMS: dict = {}

# Working set per vmapped group on one device: about an L2 cache. Calibrated
# with benchmarks/throughput.py on a 2-core EPYC (2 MiB L2 per core).
_GROUP_CACHE_BYTES = 4 << 20


def devices(num_devices: int = 0) -> list:
    """The devices a population is sharded over: the first ``num_devices`` local
    ones (0 = all); in a multi-process run every process's devices."""
    if distributed.multiprocess():
        if num_devices:
            raise ConfigError(
                f"engine.num_devices: {num_devices} in a multi-process run; use 0 (every device of every process)"
            )
        return jax.devices()
    local = jax.local_devices()
    if num_devices > len(local):
        raise ConfigError(
            f"engine.num_devices: {num_devices} requested but only {len(local)} local device(s); use 0 for all"
        )
    return local[: num_devices or len(local)]


def device_memory(dev) -> int | None:
    """Bytes of memory of one device: the allocator's limit on accelerators; on
    CPU the host's physical memory shared by its local CPU devices."""
    stats = dev.memory_stats() if hasattr(dev, "memory_stats") else None
    if stats and stats.get("bytes_limit"):
        return int(stats["bytes_limit"])
    if dev.platform == "cpu":
        try:
            total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError, AttributeError):
            return None
        return total // max(1, sum(d.platform == "cpu" for d in jax.local_devices()))
    return None


_UNITS = {"": 1, "b": 1, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40, "kb": 10**3, "mb": 10**6, "gb": 10**9}


def memory_budget(setting: str, devs: list) -> int | None:
    """``engine.memory_budget`` -> bytes per device, or None for no limit.

    "off"; a fraction of the device's memory ("0.75"); or an amount per device
    ("512MiB", "8GiB", "2e9").
    """
    text = str(setting).strip().lower().replace(" ", "")
    if text in ("off", "none", ""):
        return None
    fix = "use a fraction of device memory like 0.75, an amount per device like 8GiB, or off"
    unit = text.lstrip("0123456789.e+-")
    number = text[: len(text) - len(unit)]
    try:
        value = float(number)
    except ValueError:
        raise ConfigError(f"engine.memory_budget: cannot read {setting!r}; {fix}") from None
    if unit not in _UNITS or value <= 0:
        raise ConfigError(f"engine.memory_budget: cannot read {setting!r}; {fix}")
    if unit == "" and value <= 1:
        memory = device_memory(next(d for d in devs if d.process_index == jax.process_index()))
        return None if memory is None else int(value * memory)
    return int(value * _UNITS[unit])


class _Compiled:
    """jit(vmap(init)) and the sharded segment program of one bucket on one mesh."""

    def __init__(self, program: train.Program, dataset, member_cfg, devs: list, group_size: int):
        self.program, self.dataset, self.member_cfg = program, dataset, member_cfg
        self.n_devices = len(devs)
        self.group_size = group_size  # 0 = auto
        self.mesh = Mesh(np.array(devs), ("pop",))
        self.pop = NamedSharding(self.mesh, PartitionSpec("pop"))
        self.replicated = NamedSharding(self.mesh, PartitionSpec())

        def fresh(base_seed, seeds, ids, hp, data):
            # Parameters member by member (lax.map), the rest vmapped: initialisers draw
            # from jax.random (threefry), which XLA:CPU compiles several times slower
            # batched (measured: a 3-conv flax CNN's init, P=64: 21 s vmapped, 7.7 s mapped).
            params = jax.lax.map(lambda si: program.init_params(base_seed, si[0], si[1]), (seeds, ids))
            return jax.vmap(program.init, in_axes=(None, 0, 0, 0, None, 0))(base_seed, seeds, ids, hp, data, params)

        def init(base_seed, seeds, ids, hp, data):
            TRACE_COUNTS["init"] += 1
            return fresh(base_seed, seeds, ids, hp, data)

        def refill(state, mask, base_seed, seeds, ids, hp, data):
            # New members in the slots where ``mask``; the others keep their state.
            # Every slot's init is computed (one program whatever the number of new
            # members) and selected: a refill never compiles twice per size.
            TRACE_COUNTS["refill"] += 1
            new = fresh(base_seed, seeds, ids, hp, data)
            pick = lambda n, o: jnp.where(mask.reshape(mask.shape + (1,) * (n.ndim - 1)), n, o)  # noqa: E731
            return jax.tree.map(pick, new, state)

        self._fresh = fresh
        self.init = jax.jit(init, out_shardings=self.pop)
        self.refill = jax.jit(refill, out_shardings=self.pop, donate_argnums=0)
        # rows of a population by slot index (compaction); one tiny compile per size pair
        rows = lambda tree, idx: jax.tree.map(lambda a: a[idx], tree)  # noqa: E731
        self.take = jax.jit(rows, out_shardings=self.pop)
        # finished members' rows, replicated: readable by every process
        self.gather = jax.jit(rows, out_shardings=self.replicated)

        def exploit(state, src):
            # slot i takes the parameters and optimizer state of slot src[i] (PBT)
            TRACE_COUNTS["exploit"] += 1
            return state._replace(params=rows(state.params, src), opt_state=rows(state.opt_state, src))

        self.exploit = jax.jit(exploit, out_shardings=self.pop, donate_argnums=0)
        self._executables: dict[int, jax.stages.Compiled] = {}
        self.compile_s: dict[int, float] = {}  # measured segment compile time per population size
        self.memory: dict[int, int] = {}  # measured peak bytes per device of the segment, per size

    def encode(self, part: list, slot: np.ndarray, limit: np.ndarray, overrides: dict) -> dict:
        """Per-slot traced hyperparameters, sharded; a padding slot (-1) gets the
        values of the first member (its results are never read). ``limit``: the
        epoch each member of ``part`` may train to (below ``train.epochs`` once
        pruned); it caps ``train.epochs``, which only a pruned member's own,
        unused, schedule sees. ``overrides``: {index into part: {field: value}}
        set by population-based training."""
        idx = np.maximum(slot, 0)
        hp = train.encode_hparams([part[s].config for s in idx], self.dataset)
        hp["train.epochs"] = np.minimum(hp["train.epochs"], limit[idx]).astype(hp["train.epochs"].dtype)
        for k, s in enumerate(idx):
            for field, value in overrides.get(int(s), {}).items():
                hp[field][k] = value
        return distributed.put(hp, self.pop)

    def _abstract(self, size: int):
        """(state, hparams) of ``size`` slots as ShapeDtypeStructs with the population
        sharding (compile and restore targets; nothing is computed)."""
        hp = train.encode_hparams([self.member_cfg] * size, self.dataset)
        zeros = np.zeros(size, np.uint32)
        shapes = jax.eval_shape(self._fresh, np.uint32(0), zeros, zeros, hp, train.data_of(self.dataset))
        sharded = lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=self.pop)  # noqa: E731
        return jax.tree.map(sharded, shapes), jax.tree.map(sharded, hp)

    def abstract_state(self, size: int):
        return self._abstract(size)[0]

    def size_class(self, n_alive: int) -> int:
        """The padded population size for ``n_alive`` members: devices x a power of 2."""
        per_device = math.ceil(n_alive / self.n_devices)
        return self.n_devices * (1 << max(0, per_device - 1).bit_length())

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

    def segment_executable(self, size: int, timings: dict) -> jax.stages.Compiled:
        """The compiled segment for ``size`` slots (compiled ahead of time once per
        size, so compile time and memory are measured, not guessed)."""
        if size not in self._executables:
            t = time.perf_counter()
            group = self.group_for(size)
            state, hp = self._abstract(size)
            data = jax.tree.map(
                lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=self.replicated), train.data_of(self.dataset)
            )
            exe = self._segment_fn(group).lower(state, hp, data).compile()
            timings["group_size"] = group
            self.compile_s[size] = time.perf_counter() - t
            timings["compile_s"] += self.compile_s[size]
            mem = exe.memory_analysis()
            if mem is not None:  # per device; the donated state is both argument and output
                self.memory[size] = (
                    mem.argument_size_in_bytes
                    + mem.output_size_in_bytes
                    - mem.alias_size_in_bytes
                    + mem.temp_size_in_bytes
                )
            self._executables[size] = exe
        return self._executables[size]

    def _fits(self, size: int, budget: int | None, timings: dict) -> bool:
        self.segment_executable(size, timings)
        need = self.memory.get(size)
        return budget is None or need is None or need <= budget

    def slots_for(self, n_members: int, chunk_size: int, budget: int | None, timings: dict) -> int:
        """Resident slots for a bucket of ``n_members``: at most ``chunk_size``
        (a multiple of the device count), and at most what the compiled segment's
        measured memory fits into ``budget`` bytes per device. The rest of the
        bucket waits in the queue.

        Over budget, the count drops to a size class (devices x a power of 2:
        groups divide evenly, and compaction reuses the compile): a first guess
        from the per-slot share of the measured memory, then a binary search over
        the powers of 2, each candidate compiled and measured.
        """
        n = self.n_devices
        size = population.chunk_layout(n_members, chunk_size, n)[1]
        if self._fits(size, budget, timings):
            return size
        data_bytes = sum(a.nbytes for a in jax.tree.leaves(train.data_of(self.dataset)))
        per_slot = max(self.memory[size] - data_bytes, 1) / (size // n)
        guess = max(1, int(max(budget - data_bytes, 0) // per_slot))
        lo, hi = -1, (size // n - 1).bit_length()  # exponents: 2**lo fits, 2**hi does not (or >= size)
        e = min(guess.bit_length() - 1, hi - 1)
        while lo + 1 < hi:
            if self._fits(n << e, budget, timings):
                lo = e
            else:
                hi = e
            e = (lo + hi) // 2
        if lo < 0:
            raise ConfigError(
                f"engine.memory_budget: one member per device needs {self.memory[n] / 2**20:.1f} MiB of device "
                f"memory, over the budget of {budget / 2**20:.1f} MiB; raise the budget or shrink the model/batch"
            )
        return n << lo


def off_fields(cfgs: list) -> tuple[str, ...]:
    """The ``skippable`` names of the workload's traced hyperparameters that are
    all <= 0 in every member of ``cfgs`` (a model may skip their work, e.g. a
    dropout whose rate is 0), sorted."""
    wl = cfgmod.workload_of(cfgs[0])
    on, names = set(), set()
    for path, h in wl.traced.items():
        if h.skippable:
            names.add(h.skippable)
            values = [cfgmod.get_path(c, path) for c in cfgs]
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and v <= 0 for v in values):
                on.add(h.skippable)
    return tuple(sorted(names - on))


def _compiled(
    bucket: population.Bucket, dataset, segment_epochs: int, devs: list, group_size: int, monitor: tuple[str, str]
) -> _Compiled:
    cfgs = [m.config for m in bucket.members]
    off = off_fields(cfgs)
    key = (bucket.key, segment_epochs, tuple(d.id for d in devs), group_size, off, monitor)
    if key not in _PROGRAMS:
        program = train.make_program(cfgs[0], dataset, segment_epochs, off, monitor)
        _PROGRAMS[key] = _Compiled(program, dataset, cfgs[0], devs, group_size)
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

    def update(
        self, where: str, epoch: int, max_epoch: int, work: int, finished: int, diverged: int, best, train_s: float
    ):
        """``work``: member-epochs just done; ``train_s``: seconds spent in segments
        so far (the ETA excludes compile time, which is paid once)."""
        self.done_work += work
        self.finished += finished
        self.diverged += diverged
        if best is not None and (self.best[1] is None or self.sign * best[0] < self.sign * self.best[0]):
            self.best = best
        if self.report is None:
            return
        elapsed = time.perf_counter() - self.start
        eta = train_s / self.done_work * (self.total - self.done_work) if self.done_work else float("nan")
        best_s = f"{self.best[0]:.5g} (member {self.best[1]})" if self.best[1] is not None else "n/a"
        self.report(
            f"[{self.name}] {where} | epoch {epoch}/{max_epoch} | members done {self.finished}/{self.n}"
            f" (diverged {self.diverged}) | best {self.metric} {best_s} | {elapsed:.1f}s elapsed, ETA {eta:.1f}s"
        )


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
    progress: Callable[[str], None] | None = _print_progress,
    workdir: str | None = None,
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
    running have no ``finals`` entry).
    """
    cache_dir = compile_cache.enable(config.engine.compile_cache)
    cache_before = compile_cache.EVENTS.copy()
    devs = devices(config.engine.num_devices)
    # every process must choose the same slot counts: the smallest budget of any host
    budget = distributed.smallest(memory_budget(config.engine.memory_budget, devs))
    groups = population.buckets(members)
    total_work = sum(m.config.train.epochs for m in members)  # member-epochs (early stops subtract theirs)
    meter = _Progress(
        config.name,
        len(members),
        total_work,
        config.metric,
        config.goal,
        progress if config.engine.progress and distributed.is_primary() else None,
    )
    out = RunOutput([], [], {}, {}, collections.defaultdict(float), [], [])
    monitor = (config.metric, config.goal)

    def bucket_program(b_idx: int) -> _Compiled:
        bucket = groups[b_idx]
        dataset = cfgmod.workload_of(config).dataset(bucket.members[0].config)
        max_epochs = max(m.config.train.epochs for m in bucket.members)
        seg = population.segment_length(max_epochs, config.engine.segment_epochs)
        seg = math.gcd(seg, *config.sweep.halving_rungs, config.sweep.pbt_interval)  # on segment boundaries
        return _compiled(bucket, dataset, seg, devs, config.engine.group_size, monitor)

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
        meter.update("resumed", 0, 0, sum(len(h) for h in out.history), len(finals), 0, None, 0.0)
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
        if saver is not None:
            saver.close()
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


def _start(config, compiled: _Compiled, part, slot, limit, overrides, fill, state, data, initial: dict):
    """Starts the members now in slots ``fill`` (every slot when ``state`` is
    None); records their initial metrics. Returns (state, hparams)."""
    hp = compiled.encode(part, slot, limit, overrides)
    padded = [part[s] for s in np.maximum(slot, 0)]
    seeds = np.asarray([m.seed for m in padded], np.uint32)
    ids = np.asarray([m.member for m in padded], np.uint32)
    if state is None:
        state = compiled.init(np.uint32(config.seed), seeds, ids, hp, data)
    else:
        mask = np.zeros(len(slot), bool)
        mask[fill] = True
        mask = distributed.put(mask, compiled.pop)
        state = compiled.refill(state, mask, np.uint32(config.seed), seeds, ids, hp, data)
    evals = distributed.to_host(state.init_eval)
    for s in fill:
        initial[part[slot[s]].member] = {name: float(v[s]) for name, v in evals.items()}
    return state, hp


def _run_bucket(
    config, compiled: _Compiled, data, part, budget, where, meter: _Progress, out: RunOutput, ckpt, resumed
) -> None:
    """Trains one bucket's members ``part``; appends history frames and finished
    members to ``out``.

    ``slot[s]`` is the index into ``part`` of the member in slot s, or -1 (no
    member); ``queued`` is the index of the first member not started yet. A slot
    whose member has finished takes the next queued member before the next
    segment; with the queue empty, finished members' slots are dropped into a
    smaller padded size class (``engine.compact``). Successive halving prunes
    members at rungs (``_halving``) and population-based training copies
    members into others (``_pbt``) between segments.
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
    seen, overrides = _strategy_records(out, ids, rungs, sign)
    timings["slots"] = max(timings.get("slots", 0), len(slot))
    compiled.segment_executable(len(slot), timings)
    if len(slot) in compiled.memory:  # of the size that runs (not of sizes measured over budget)
        mb = compiled.memory[len(slot)] / 2**20
        timings["segment_memory_mb"] = max(timings.get("segment_memory_mb", 0.0), mb)
    while True:
        free = np.nonzero((slot < 0) | done[np.maximum(slot, 0)])[0]
        if queued < len(part) and len(free):
            t = time.perf_counter()
            fill = free[: len(part) - queued]
            slot[fill] = np.arange(queued, queued + len(fill))
            queued += len(fill)
            timings["refills"] += state is not None
            state, hp = _start(config, compiled, part, slot, limit, overrides, fill, state, data, out.initial)
            timings["init_s"] += time.perf_counter() - t  # includes its compile on first use
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
        pruned, log = _halving(rungs, eta, seen, epoch_now, active, signed, finished, ids[who])
        if log:
            out.rungs.append(pd.DataFrame(log).assign(wave=wave, value=lambda d: sign * d["value"]))
        if pruned.any():
            limit[who[pruned]] = epoch_now[pruned]
            finished |= pruned
            hp = None  # re-encoded below: a pruned member still in its slot stops training
        if config.sweep.pbt_interval:
            src, log = _pbt(
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


def _strategy_records(out: RunOutput, ids, rungs, sign: float) -> tuple[dict, dict]:
    """This bucket's strategy state, rebuilt from the logs (empty on a fresh run):
    the signed metric values recorded at each rung in arrival order, and the
    hyperparameters population-based training gave members ({index into the
    bucket: {field: latest value}})."""
    mine = [f[f["member"].isin(ids)] for f in out.rungs]
    seen = {r: [sign * v for f in mine for v in f.loc[f["rung"] == r, "value"]] for r in rungs}
    index = {int(mid): i for i, mid in enumerate(ids)}
    overrides: dict[int, dict] = {}
    for f in out.pbt:
        for row in f[f["member"].isin(ids)].itertuples():
            overrides.setdefault(index[int(row.member)], {})[row.field] = row.new
    return seen, overrides


def _halving(rungs, eta, seen: dict, epoch_now, active, signed, finished, member_ids) -> tuple[np.ndarray, list]:
    """Members (rows of this segment's outputs) pruned at a rung they reached in
    this segment (``jaxexp.strategies.rung_cut``), and the decisions as log rows
    (rung, member, signed value, kept); records the values in ``seen``."""
    pruned, log = np.zeros(len(epoch_now), bool), []
    for r in rungs:
        # reached r at this segment's last active epoch, and still running
        rows = np.nonzero(active[:, -1] & (epoch_now == r) & ~finished)[0]
        if not len(rows):
            continue
        arriving = {int(member_ids[k]): float(signed[k, -1]) for k in rows}
        keep = strategies.rung_cut(seen[r], arriving, eta)
        seen[r].extend(arriving.values())
        pruned[[k for k in rows if int(member_ids[k]) not in keep]] = True
        log += [{"rung": r, "member": mid, "value": v, "kept": mid in keep} for mid, v in arriving.items()]
    return pruned, log


def _pbt(config, part, real, who, ids, overrides, n_slots, epoch_now, active, signed, finished, wave):
    """One exploit/explore step of population-based training at this segment's end.

    Candidates: running members (rows of this segment's outputs; ``real[k]`` is
    row k's slot, ``who[k]`` its index into ``part``) at a multiple of
    ``sweep.pbt_interval``. Returns (src, log): ``src[slot]`` is the slot whose
    parameters and optimizer state ``slot`` takes (itself if none) and the log
    rows; ``overrides`` gets the losers' new hyperparameters.
    """
    sw = config.sweep
    bounds = {p.name: (p.low, p.high) for p in space.parse(sw.space) if p.kind not in ("fixed", "choice")}
    for field, (lo, hi) in strategies.pbt_fields(config).items():  # else the workload's declared range
        if field not in bounds and (lo is not None or hi is not None):
            bounds[field] = (-math.inf if lo is None else lo, math.inf if hi is None else hi)
    rows = np.nonzero(active[:, -1] & ~finished & (epoch_now % sw.pbt_interval == 0))[0]
    rng = np.random.default_rng([config.seed, wave, 0x9B7])
    pairs = strategies.pbt_pairs({int(k): float(signed[k, -1]) for k in rows}, sw.pbt_fraction, rng)
    src, log = np.arange(n_slots), []
    for loser, winner in sorted(pairs.items()):
        src[real[loser]] = real[winner]
        li, wi = int(who[loser]), int(who[winner])
        for field in sw.pbt_params:
            old = overrides.get(li, {}).get(field, cfgmod.get_path(part[li].config, field))
            base = overrides.get(wi, {}).get(field, cfgmod.get_path(part[wi].config, field))
            new = strategies.pbt_explore(base, sw.pbt_perturb, rng, bounds.get(field), "dropout" in field)
            overrides.setdefault(li, {})[field] = new
            log.append(
                {
                    "wave": wave,
                    "epoch": int(epoch_now[loser]),
                    "member": int(ids[li]),
                    "source": int(ids[wi]),
                    "field": field,
                    "old": float(old),
                    "new": new,
                }
            )
    return src, log


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


def _collect_finals(compiled: _Compiled, state: train.TrainState, slots, member_ids, finals: dict) -> None:
    """Copies the best parameters and stop epoch of finished members to the host
    (of every process)."""
    params, stop = jax.device_get(compiled.gather((state.best_params, state.monitor.stop_epoch), np.asarray(slots)))
    for k, member in enumerate(member_ids):
        finals[int(member)] = {
            "best_params": jax.tree.map(lambda a, k=k: np.array(a[k]), params),
            "stop_epoch": int(stop[k]),
        }


def check_bucket(config, cfgs: list) -> None:
    """Loads a bucket's data and checks its members' values and the workload's
    functions (abstractly: nothing is compiled); raises ConfigError."""
    dataset = cfgmod.workload_of(config).dataset(cfgs[0])
    n_train = workload.n_rows(dataset.train)
    if cfgs[0].train.batch_size > n_train:
        raise ConfigError(
            f"train.batch_size: {cfgs[0].train.batch_size} > {n_train} training rows; use a smaller batch"
        )
    train.encode_hparams(cfgs, dataset)
    train.make_program(cfgs[0], dataset, 1, off_fields(cfgs), (config.metric, config.goal))


def sweep(config: ml_collections.ConfigDict, workdir: str | None = None, progress=_print_progress) -> results.Results:
    """Runs the whole sweep ``config.sweep`` and returns its Results.

    With ``workdir`` the results are also written there (config.json,
    members.csv, history.csv, report.md). ``sweep.space_file``, when set, gives
    the space (and method, num_samples, metric).
    """
    config = spacefile.resolve(config)
    table = population.members_table(config)
    return run_members(config, table, workdir, progress)


def train_config(
    config: ml_collections.ConfigDict, workdir: str | None = None, progress=_print_progress
) -> results.Results:
    """Trains the base config (``sweep.space`` ignored) for ``sweep.seeds`` seeds."""
    config = ml_collections.ConfigDict(config.to_dict())
    config.sweep.space = ml_collections.ConfigDict()
    config.sweep.space_file = ""
    config.sweep.method = "grid"
    return sweep(config, workdir, progress)


def run_members(
    config: ml_collections.ConfigDict, table: pd.DataFrame, workdir: str | None = None, progress=_print_progress
) -> results.Results:
    """Trains the members of ``table`` (columns member, config_id, seed, params...).

    Re-running a single row of a sweep's ``members.csv`` with the sweep's config
    reproduces that member (inactive conditional parameters: empty cells).
    """
    cpu.use_all_cores()  # before JAX's backend starts (a no-op after)
    config = spacefile.resolve(config)  # its metric/goal apply to these members too
    cfgmod.validate_top(config)
    memory_budget(config.engine.memory_budget, devices(config.engine.num_devices))
    members = population.resolve(config, table)
    strategies.check_halving(
        config.sweep.halving_rungs, config.sweep.halving_eta, max(m.config.train.epochs for m in members)
    )
    for bucket in population.buckets(members):  # bad data or functions fail before anything is written
        check_bucket(config, [m.config for m in bucket.members])
    if workdir is not None:
        results.prepare_workdir(workdir, config)
    t0 = time.perf_counter()
    output = run(config, members, progress, workdir)
    output.timings["total_s"] = time.perf_counter() - t0
    out = results.assemble(config, table, members, output)
    if workdir is not None and distributed.is_primary():  # every process holds the same results
        results.write(out, workdir)
    distributed.barrier("jaxexp results written")
    return out
