"""The compiled programs of a bucket: ``jit(vmap(init))``, refill and the sharded
segment, compiled ahead of time per population size (so compile time and memory
are measured, not guessed); devices and the memory budget they are sized to."""

from __future__ import annotations

import collections
import math
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxexp import config as cfgmod
from jaxexp.core import train
from jaxexp.errors import ConfigError
from jaxexp.run import distributed, population

# Number of times each compiled function was traced in this process (tests
# assert it to catch recompiles).
TRACE_COUNTS: collections.Counter = collections.Counter()

_PROGRAMS: dict = {}

# Working set per vmapped group on one device: about an L2 cache. Calibrated
# with benchmarks/throughput.py on a 2-core EPYC (2 MiB L2 per core).
_GROUP_CACHE_BYTES = 4 << 20
_MIN_GROUP = 4  # smaller automatic groups run one member at a time (group_for)


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


class Compiled:
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
        # Init and refill run once per member: on CPU they are compiled without XLA's
        # backend optimisations (measured on the digits MLP, P=192: compile 1.60 s ->
        # 0.57 s, run 0.10 s -> 0.27 s), so starting a sweep costs a fraction of the
        # segment's compile.
        quick = {"xla_backend_optimization_level": 0} if devs[0].platform == "cpu" else None
        self.init = jax.jit(init, out_shardings=self.pop, compiler_options=quick)
        self.refill = jax.jit(refill, out_shardings=self.pop, donate_argnums=0, compiler_options=quick)
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
        self._init_sizes: set = set()  # (program, size) pairs compiled by ``compile_init``
        self._executables: dict[int, jax.stages.Compiled] = {}
        self.compile_s: dict[int, float] = {}  # measured segment compile time per population size
        self.memory: dict[int, int] = {}  # measured peak bytes per device of the segment, per size

    def compile_init(self, which: str, args: tuple, size: int, timings: dict) -> None:
        """Compiles ``init`` or ``refill`` for ``args`` before its first call (once per
        size; the call then finds it compiled), so its compile time is measured apart
        from its run: ``timings["init_compile_s"]``."""
        if (which, size) not in self._init_sizes:
            t = time.perf_counter()
            getattr(self, which).lower(*args).compile()
            timings["init_compile_s"] += time.perf_counter() - t
            self._init_sizes.add((which, size))

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
            auto = _GROUP_CACHE_BYTES // self.program.member_bytes
            # Under _MIN_GROUP per cache budget a member's step already fills the core:
            # vmapping 2-3 of them only slows each (batched dots; measured, CNN example,
            # 1 core: 2 per group 400 us per member-step, 1 per group 310 us).
            auto = auto if auto >= _MIN_GROUP else 1
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


def compiled(
    bucket: population.Bucket, dataset, segment_epochs: int, devs: list, group_size: int, monitor: tuple[str, str]
) -> Compiled:
    cfgs = [m.config for m in bucket.members]
    off = off_fields(cfgs)
    key = (bucket.key, segment_epochs, tuple(d.id for d in devs), group_size, off, monitor)
    if key not in _PROGRAMS:
        program = train.make_program(cfgs[0], dataset, segment_epochs, off, monitor)
        _PROGRAMS[key] = Compiled(program, dataset, cfgs[0], devs, group_size)
    return _PROGRAMS[key]
