#!/usr/bin/env python
"""Population MLP training: vmap of per-member flax Dense vs an explicitly batched einsum formulation.

One timed call = one ``lax.scan`` of S optimizer steps for the whole population
(MSE regression, 16 input features, batch 128, hidden (64, 64) and (256, 256),
per-member learning rate and weight decay, AdamW written as
``optax.scale_by_adam`` followed by ``p -= lr[p] * (u + wd[p] * p)``, which is
what ``optax.adamw`` computes, with the per-member factors broadcast by hand).
Each member draws its own minibatch rows of one shared dataset every step (a
gather, as the engine does after its per-member shuffle). Variants:

(a) ``vmap``: ``vmap`` over members of a per-member scan whose step uses a
    flax.linen MLP of ``nn.Dense`` layers (models.py without dropout);
(b) ``einsum``: parameters stored as stacked arrays W [P, in, out], b [P, out];
    forward ``jnp.einsum('pbi,pio->pbo')``; gradient ``jax.grad`` of the sum of
    the per-member losses; one scan over steps of the batched step;
(c) ``vmap+map`` / ``einsum+map``: (a) / (b) run ``group`` members at a time
    inside ``lax.map``, as ``jaxexp.run.programs.Compiled`` does on CPU (group from
    the engine's rule: a ~4 MiB working set per group, a divisor of the
    per-device count).

Every variant runs as the engine does: ``jit(shard_map(...))`` with the
population split over the local XLA devices (importing jaxexp splits the CPU
into one device per core). All variants get the same initial parameters, data
and minibatch indices; the final parameters of every variant are checked
against (a) (``allclose``, rtol 1e-4). Compile time (lower + compile) is
reported separately; run time is the median of ``--repeats`` calls, the
variants of a case interleaved call by call.

Useful FLOPs per step: 3 x 2 B sum(in*out) per member (forward + backward);
reported as GFLOP/s and as a fraction of the f32 matmul peak measured in the
same run (jitted 2048^3 matmuls: one on one device, and one per device at once;
the larger counts). Finally, for the faster formulation at hidden (64, 64),
P = 256, a profile: the optimized HLO's ops by kind, and the XLA CPU thunks'
exclusive time from a ``jax.profiler`` trace, grouped into matmuls, the Adam
update, the minibatch gather and the rest.

Usage::

    python benchmarks/formulation.py            # full (~5 min on 2 cores)
    python benchmarks/formulation.py --quick    # smoke run (< 30 s)

Writes a table to stdout and ``benchmarks/results/formulation.json``
(``formulation_quick.json`` with --quick).
"""

from __future__ import annotations

import argparse
import collections
import datetime
import glob
import math
import os
import re
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)

import provenance  # noqa: E402  (git state, machine load)
import throughput  # noqa: E402  (machine description, contention, JSON writer)

import jaxexp  # noqa: E402,F401  (splits the CPU into one XLA device per core before JAX starts)
from jaxexp.run import programs  # noqa: E402

N_FEATURES, N_OUT, BATCH, N_TRAIN = 16, 1, 128, 4096
B1, B2, EPS = 0.9, 0.999, 1e-8
RTOL, ATOL = 1e-4, 1e-6
QUIET = 0.25  # a call is "quiet" when other processes took fewer cores than this meanwhile
# (hidden, P values, S). (256, 256) does 13x the FLOPs of (64, 64) per member-step: S = 25 keeps one call at
# ~1-5 s (the per-step rate does not depend on S); its P = 1024 (~1.4 TFLOP a call) only with --big.
FULL_CASES = [((64, 64), (64, 256, 1024), 100), ((256, 256), (64, 256), 25)]
QUICK_CASES = [((64, 64), (32,), 20)]
VARIANTS = ("vmap", "einsum", "vmap+map", "einsum+map")
PROFILE_CASE = ((64, 64), 256)


def layer_sizes(hidden) -> list[tuple[int, int]]:
    widths = [N_FEATURES, *hidden, N_OUT]
    return list(zip(widths[:-1], widths[1:]))


def flops_per_member_step(hidden) -> float:
    return 3 * 2 * BATCH * sum(i * o for i, o in layer_sizes(hidden))


def engine_group(hidden, local: int) -> int:
    """``programs.Compiled.group_for`` on CPU, with ``train.make_program``'s member_bytes estimate."""
    n_params = sum(i * o + o for i, o in layer_sizes(hidden))
    member_bytes = 4 * (5 * n_params + 3 * BATCH * (N_FEATURES + sum(hidden) + N_OUT))
    target = min(local, max(1, programs._GROUP_CACHE_BYTES // member_bytes))
    divisor = max(g for g in range(1, target + 1) if local % g == 0)
    return divisor if 2 * divisor >= target else target


# --------------------------------------------------------------------------------------------------------------
# The formulations


def build(hidden, steps: int, population: int, seed: int = 0):
    """Shared inputs (params, lr, wd, idx, x, y) and the per-variant functions of one case."""
    import flax.linen as nn
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax

    class MLP(nn.Module):
        hidden: tuple

        @nn.compact
        def __call__(self, x):
            for w in self.hidden:
                x = nn.relu(nn.Dense(w)(x))
            return nn.Dense(N_OUT)(x)

    model = MLP(tuple(hidden))
    adam = optax.scale_by_adam(b1=B1, b2=B2, eps=EPS)
    n_layers = len(hidden) + 1

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N_TRAIN, N_FEATURES)).astype(np.float32)
    w_true = rng.standard_normal((N_FEATURES, N_OUT)).astype(np.float32) / 4
    y = (np.sin(x @ w_true) + 0.1 * rng.standard_normal((N_TRAIN, N_OUT))).astype(np.float32)
    idx = rng.integers(0, N_TRAIN, size=(population, steps, BATCH), dtype=np.int32)
    lr = (10.0 ** rng.uniform(-4, -2, size=population)).astype(np.float32)
    wd = (10.0 ** rng.uniform(-5, -3, size=population)).astype(np.float32)
    keys = jax.random.split(jax.random.key(seed), population)
    params = jax.jit(jax.vmap(lambda k: model.init(k, jnp.zeros((1, N_FEATURES)))["params"]))(keys)
    params = jax.tree.map(np.asarray, params)
    # Same tree for both formulations: the vmapped flax params ARE the stacked arrays {Dense_i: {kernel, bias}}.
    assert params["Dense_0"]["kernel"].shape == (population, N_FEATURES, hidden[0])

    def mse(pred, yb):
        return jnp.mean((pred - yb) ** 2)

    # (a) one member; vmapped over the population below
    def member_segment(p, lr_m, wd_m, idx_m, x, y):
        def step(carry, ib):
            p, opt = carry
            xb, yb = x[ib], y[ib]
            loss, g = jax.value_and_grad(lambda q: mse(model.apply({"params": q}, xb), yb))(p)
            u, opt = adam.update(g, opt)
            p = jax.tree.map(lambda w, d: w - lr_m * (d + wd_m * w), p, u)
            return (p, opt), loss

        (p, _), losses = jax.lax.scan(step, (p, adam.init(p)), idx_m)
        return p, losses

    def vmap_segment(p, lr, wd, idx, x, y):
        return jax.vmap(member_segment, in_axes=(0, 0, 0, 0, None, None))(p, lr, wd, idx, x, y)

    # (b) the whole (local) population at once
    def forward(p, xb):
        h = xb
        for i in range(n_layers):
            layer = p[f"Dense_{i}"]
            h = jnp.einsum("pbi,pio->pbo", h, layer["kernel"]) + layer["bias"][:, None, :]
            if i < n_layers - 1:
                h = nn.relu(h)
        return h

    def per_member(v, leaf):
        return v.reshape((-1,) + (1,) * (leaf.ndim - 1))

    def einsum_segment(p, lr, wd, idx, x, y):
        def losses_fn(q, xb, yb):
            per = jnp.mean((forward(q, xb) - yb) ** 2, axis=(1, 2))
            return jnp.sum(per), per

        def step(carry, ib):  # ib [P, B]
            p, opt = carry
            xb, yb = x[ib], y[ib]
            g, loss = jax.grad(losses_fn, has_aux=True)(p, xb, yb)
            u, opt = adam.update(g, opt)
            p = jax.tree.map(lambda w, d: w - per_member(lr, w) * (d + per_member(wd, w) * w), p, u)
            return (p, opt), loss

        (p, _), losses = jax.lax.scan(step, (p, adam.init(p)), jnp.swapaxes(idx, 0, 1))
        return p, jnp.swapaxes(losses, 0, 1)  # [P, S] like vmap_segment

    def grouped(fn, group):
        """``fn`` over the local population ``group`` members at a time (lax.map over groups)."""

        def local(p, lr, wd, idx, x, y):
            n = lr.shape[0]
            assert n % group == 0, (n, group)
            split = lambda a: a.reshape((n // group, group) + a.shape[1:])  # noqa: E731
            out = jax.lax.map(lambda a: fn(*a, x, y), jax.tree.map(split, (p, lr, wd, idx)))
            return jax.tree.map(lambda a: a.reshape((n,) + a.shape[2:]), out)

        return local

    def map_vmap(group):
        # Exactly the engine's form: lax.map(per-member fn, batch_size=group) (lax.map vmaps inside groups).
        def local(p, lr, wd, idx, x, y):
            return jax.lax.map(lambda a: member_segment(*a, x, y), (p, lr, wd, idx), batch_size=group)

        return local

    inputs = {"params": params, "lr": lr, "wd": wd, "idx": idx, "x": x, "y": y}
    return inputs, {
        "vmap": lambda group: vmap_segment,
        "einsum": lambda group: einsum_segment,
        "vmap+map": map_vmap,
        "einsum+map": lambda group: grouped(einsum_segment, group),
    }


def _mesh():
    import jax
    import numpy as np
    from jax.sharding import Mesh

    return Mesh(np.array(jax.local_devices()), ("pop",))


def sharded(local_fn):
    """jit(shard_map(local_fn)) over all local devices, population axis sharded (as programs.Compiled)."""
    import jax
    from jax.sharding import PartitionSpec

    pop, rep = PartitionSpec("pop"), PartitionSpec()
    return jax.jit(jax.shard_map(local_fn, mesh=_mesh(), in_specs=(pop, pop, pop, pop, rep, rep), out_specs=(pop, pop)))


def place(inputs: dict) -> tuple:
    """The arguments (params, lr, wd, idx, x, y) on the devices: population axis sharded, data replicated."""
    import jax
    from jax.sharding import NamedSharding, PartitionSpec

    pop, rep = NamedSharding(_mesh(), PartitionSpec("pop")), NamedSharding(_mesh(), PartitionSpec())
    return (
        jax.device_put(inputs["params"], pop),
        jax.device_put(inputs["lr"], pop),
        jax.device_put(inputs["wd"], pop),
        jax.device_put(inputs["idx"], pop),
        jax.device_put(inputs["x"], rep),
        jax.device_put(inputs["y"], rep),
    )


# --------------------------------------------------------------------------------------------------------------
# Measurements


def peak_kernels() -> dict:
    """name -> (call returning an array, FLOPs): jitted 2048^3 f32 matmuls, on one device and one per device."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    from jax.sharding import NamedSharding, PartitionSpec

    n, devs = 2048, jax.local_devices()
    rng = np.random.default_rng(0)
    single = jax.device_put(rng.standard_normal((n, n), np.float32), devs[0])
    sh = NamedSharding(_mesh(), PartitionSpec("pop"))
    split = jax.device_put(rng.standard_normal((len(devs), n, n), np.float32), sh)
    f1 = jax.jit(jnp.dot)
    fk = jax.jit(lambda a: jnp.einsum("bij,bjk->bik", a, a), out_shardings=sh)
    kernels = {"single": (lambda: f1(single, single), 2.0 * n**3), "split": (lambda: fk(split), len(devs) * 2.0 * n**3)}
    for call, _ in kernels.values():
        call().block_until_ready()
    return kernels


def time_peak(kernels: dict, name: str, reps: int = 2) -> float:
    call, flops = kernels[name]
    t = time.perf_counter()
    for _ in range(reps):
        r = call()
    r.block_until_ready()
    return reps * flops / (time.perf_counter() - t)


def matmul_peak(kernels: dict, repeats: int) -> dict:
    """Median GFLOP/s over ``repeats`` timed groups of 4 matmuls, per kernel; gflops = the larger median."""
    out = {"n": 2048, "devices": len(kernels["split"][0]().sharding.device_set)}
    for name in kernels:
        rates = [time_peak(kernels, name, 4) for _ in range(repeats)]
        out[f"{name}_gflops_median"] = statistics.median(rates) / 1e9
        out[f"{name}_gflops_best"] = max(rates) / 1e9
    out["gflops"] = max(out["single_gflops_median"], out["split_gflops_median"])
    return out


def normalized_hlo(exe) -> list[str]:
    """The optimized HLO's instructions with names and metadata stripped, sorted (equal = same program)."""
    lines = []
    for ln in exe.as_text().splitlines():
        if not re.match(r"^\s*(ROOT )?%", ln):
            continue
        ln = re.sub(r"metadata=\{[^}]*\}|, stack_frame_id=\d+", "", ln)
        ln = re.sub(r"%[\w.\-]+|region_[\d.]+|\b[a-z_]+\.\d+(?=:)", "N", ln)
        lines.append(ln.strip())
    return sorted(lines)


def _now_cpu() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def run_case(hidden, population: int, steps: int, repeats: int, variants, kernels, log) -> dict:
    import jax
    import numpy as np

    n_dev = len(jax.local_devices())
    local = population // n_dev
    group = engine_group(hidden, local)
    inputs, makers = build(hidden, steps, population)
    case = {"hidden": list(hidden), "P": population, "S": steps, "group": group, "local_P": local, "variants": {}}
    args, execs, hlos = place(inputs), {}, {}
    for v in variants:
        fn = sharded(makers[v](group))
        t = time.perf_counter()
        exe = fn.lower(*args).compile()
        compile_s = time.perf_counter() - t
        t = time.perf_counter()
        params, losses = exe(*args)
        jax.block_until_ready((params, losses))
        first_s = time.perf_counter() - t
        execs[v] = exe
        hlos[v] = normalized_hlo(exe)
        case["variants"][v] = {"compile_s": compile_s, "first_run_s": first_s, "times": [], "contention": []}
        case["variants"][v]["_out"] = jax.tree.map(np.asarray, (params, losses))
        log(f"  {v:<11} compile {compile_s:5.2f}s  first run {first_s:6.3f}s")
    # correctness: every variant's final parameters and per-step losses against (a), member by member.
    # (b) must match (a) for every member. The grouped variants (c) are another program (dots over `group`
    # members instead of the local population), so their float rounding differs; after ~20 steps their params
    # still agree to ~1e-7, but over S = 100 Adam steps at lr up to 1e-2 a few members amplify a rounding
    # difference (measured: 2-3 of 256 members by ~5e-3): up to 3% of members may differ there.
    ref_p, ref_l = case["variants"][variants[0]]["_out"]
    for v in variants:
        p, losses = case["variants"][v].pop("_out")
        pairs = [*zip(jax.tree.leaves(p), jax.tree.leaves(ref_p)), (losses, ref_l)]
        close = np.all(
            [np.isclose(a, b, rtol=RTOL, atol=ATOL).reshape(population, -1).all(1) for a, b in pairs], axis=0
        )
        max_abs = max(float(np.max(np.abs(a - b))) for a, b in pairs[:-1])
        r = case["variants"][v]
        r["max_abs_param_diff_vs_a"] = max_abs
        r["bitwise_equal_vs_a"] = all(np.array_equal(a, b) for a, b in pairs)
        r["members_not_allclose_vs_a"] = int((~close).sum())
        allowed = 0 if v in ("vmap", "einsum") else math.ceil(0.03 * population)
        assert r["members_not_allclose_vs_a"] <= allowed, (
            f"{v} differs from {variants[0]} ({hidden}, P={population}): {r['members_not_allclose_vs_a']} "
            f"members not allclose(rtol={RTOL}, atol={ATOL}), max |diff| {max_abs:.3g}"
        )
    if "vmap" in hlos and "einsum" in hlos:
        case["same_hlo_vmap_einsum"] = hlos["vmap"] == hlos["einsum"]
    if "vmap+map" in hlos and "einsum+map" in hlos:
        case["same_hlo_vmap_einsum_map"] = hlos["vmap+map"] == hlos["einsum+map"]
    log(
        f"  identical optimized HLO: vmap/einsum {case.get('same_hlo_vmap_einsum')}, "
        f"+map {case.get('same_hlo_vmap_einsum_map')}"
    )
    # interleaved timing, the matmul peak measured alongside (same conditions as the case); short calls get
    # more repeats (cheap, and the median of short calls suffers more from another process's bursts)
    if max(r["first_run_s"] for r in case["variants"].values()) < 1.0:
        repeats = max(repeats, 7)
    case["repeats"] = repeats
    peak_rates = {name: [] for name in kernels}
    for _ in range(repeats):
        for name in kernels:
            peak_rates[name].append(time_peak(kernels, name))
        for v in variants:
            sys0, cpu0 = provenance.system_cpu(), _now_cpu()
            t = time.perf_counter()
            jax.block_until_ready(execs[v](*args))
            wall = time.perf_counter() - t
            c = throughput._contention(sys0, provenance.system_cpu(), cpu0, _now_cpu(), wall)
            case["variants"][v]["times"].append(wall)
            case["variants"][v]["contention"].append(c.get("contention"))
    case["case_peak_gflops"] = max(statistics.median(r) for r in peak_rates.values()) / 1e9
    case["case_peak_gflops_by_kernel"] = {k: statistics.median(r) / 1e9 for k, r in peak_rates.items()}
    fps = flops_per_member_step(hidden)
    for v in variants:
        r = case["variants"][v]
        # median of the calls during which other processes took < QUIET cores, when there are >= 2 of them
        quiet = [t for t, c in zip(r["times"], r["contention"]) if (c or 0.0) < QUIET]
        r["quiet_calls"] = len(quiet)
        r["run_s"] = statistics.median(quiet if len(quiet) >= 2 else r["times"])
        r["member_steps_per_s"] = population * steps / r["run_s"]
        r["gflops"] = population * steps * fps / r["run_s"] / 1e9
        used = [c or 0.0 for t, c in zip(r["times"], r["contention"]) if len(quiet) < 2 or (c or 0.0) < QUIET]
        r["max_contention"] = max(used)
        r["case_peak_fraction"] = r["gflops"] / case["case_peak_gflops"]
        log(f"  {v:<11} run {r['run_s']:7.3f}s (median of {repeats})   {r['gflops']:6.2f} GFLOP/s")
    base = case["variants"][variants[0]]["run_s"]
    for v in variants:
        case["variants"][v]["speedup_vs_a"] = base / case["variants"][v]["run_s"]
    # ratio measured side by side: per-repeat ratio einsum/vmap, median
    ts = case["variants"]

    def paired(a: str, b: str) -> float:
        """Median over repeats of time(a) / time(b), from calls made back to back (quiet pairs when >= 2)."""
        pairs = list(zip(ts[a]["times"], ts[b]["times"], ts[a]["contention"], ts[b]["contention"]))
        quiet = [(x, y) for x, y, cx, cy in pairs if max(cx or 0.0, cy or 0.0) < QUIET]
        return statistics.median(x / y for x, y in (quiet if len(quiet) >= 2 else [p[:2] for p in pairs]))

    if "vmap" in variants and "einsum" in variants:
        case["einsum_speedup_paired"] = paired("vmap", "einsum")
    if "vmap+map" in variants and "einsum+map" in variants:
        case["einsum_map_speedup_paired"] = paired("vmap+map", "einsum+map")
    if "vmap" in variants and "vmap+map" in variants:
        case["map_speedup_paired"] = paired("vmap", "vmap+map")
    return case


# --------------------------------------------------------------------------------------------------------------
# Profile


def _hlo_kinds(hlo: str) -> tuple[dict, dict]:
    """From the optimized HLO: instruction name -> kind ('matmul ...', 'gather', 'adam', ...), and -> a short
    description (shape and the tail of its op_name)."""
    comps, cur = {}, None
    for line in hlo.splitlines():
        m = re.match(r"^(?:ENTRY )?%?([\w.\-]+) .*\{\s*$", line)
        if m and not line.startswith(" "):
            cur = m.group(1)
            comps[cur] = []
        elif cur is not None and line.strip() and not line.startswith("}"):
            comps[cur].append(line.strip())

    def body_ops(comp, seen=()):
        ops = collections.Counter()
        for ln in comps.get(comp, []):
            m = re.match(r"(?:ROOT )?%?[\w.\-]+ = \S+ ([\w\-]+)\(", ln)
            if m:
                ops[m.group(1)] += 1
            for sub in re.findall(r"calls=%?([\w.\-]+)", ln):
                if sub not in seen:
                    ops.update(body_ops(sub, (*seen, sub)))
        return ops

    kinds, desc = {}, {}
    for lines in comps.values():
        for ln in lines:
            m = re.match(r"(?:ROOT )?%?([\w.\-]+) = (\S+) ([\w\-]+)\(", ln)
            if not m:
                continue
            name, shape, op = m.groups()
            where = re.search(r'op_name="([^"]*)"', ln)
            tail = "/".join(where.group(1).split("/")[-3:]) if where else ""
            desc[name] = f"{shape.split('{')[0]} {tail}".strip()
            inner = collections.Counter({op: 1})
            for sub in re.findall(r"calls=%?([\w.\-]+)", ln):
                inner.update(body_ops(sub))
            if op in ("while", "call", "conditional"):
                kinds[name] = "control"
            elif inner["dot"] or inner["convolution"]:
                kinds[name] = "matmul (YNNPACK fusion)" if "__ynn_fusion" in ln else "matmul (XLA dot)"
            elif inner["gather"]:
                kinds[name] = "gather"
            elif inner["sqrt"] or inner["rsqrt"]:
                kinds[name] = "adam"
            elif op in ("copy", "transpose", "bitcast", "tuple", "get-tuple-element", "parameter", "constant"):
                kinds[name] = "copy/plumbing"
            else:
                kinds[name] = "elementwise/reduce"
    return kinds, desc


def profile(hidden, population: int, steps: int, variant: str, log) -> dict:
    import jax

    inputs, makers = build(hidden, steps, population)
    args = place(inputs)
    exe = sharded(makers[variant](1)).lower(*args).compile()
    hlo = exe.as_text()
    kinds, desc = _hlo_kinds(hlo)
    op_counts = collections.Counter()
    for m in re.finditer(r"= \S+ ([\w\-]+)\(", hlo):
        op_counts[m.group(1)] += 1
    fusion_kinds = collections.Counter(re.findall(r"kind=(k\w+)", hlo))
    jax.block_until_ready(exe(*args))
    out = {
        "hidden": list(hidden),
        "P": population,
        "S": steps,
        "variant": variant,
        "hlo_ops": dict(op_counts.most_common(20)),
        "fusion_kinds": dict(fusion_kinds),
        "hlo_top_level_kinds": dict(collections.Counter(kinds.values())),
    }
    with tempfile.TemporaryDirectory() as d:
        jax.profiler.start_trace(d)
        t = time.perf_counter()
        jax.block_until_ready(exe(*args))
        traced_wall = time.perf_counter() - t
        jax.profiler.stop_trace()
        files = glob.glob(os.path.join(d, "**", "*.xplane.pb"), recursive=True)
        data = jax.profiler.ProfileData.from_file(files[0])
        by_name = collections.Counter()
        n_threads = 0
        for plane in data.planes:
            if plane.name != "/host:CPU":
                continue
            for line in plane.lines:
                if "XLA" not in line.name:  # thunks run on the XLA Eigen pool and PjRt client threads
                    continue
                evs = sorted(
                    (
                        e
                        for e in line.events
                        if not e.name.startswith(("end:", "ThreadpoolListener", "Slinky"))
                        and "wait" not in e.name.lower()
                    ),  # waiting (PjRt thread while the pool works) is no work
                    key=lambda e: (e.start_ns, -e.duration_ns),
                )
                if not evs:
                    continue
                n_threads += 1
                stack = []  # exclusive time: subtract children that nest inside a parent on the same thread
                for e in evs:
                    while stack and e.start_ns >= stack[-1][1]:
                        stack.pop()
                    if stack:
                        by_name[stack[-1][0]] -= e.duration_ns
                    by_name[e.name] += e.duration_ns
                    stack.append((e.name, e.end_ns))
    by_kind = collections.Counter()
    for name, ns in by_name.items():
        base = name.split(":")[0].strip()
        by_kind[kinds.get(base, "other (runtime)")] += ns
    total = sum(v for v in by_kind.values() if v > 0)
    out.update(
        traced_wall_s=traced_wall,
        xla_threads=n_threads,
        thunk_s_total=total / 1e9,
        time_fraction_by_kind={k: v / total for k, v in by_kind.most_common() if v > 0},
        top_thunks=[
            (k, v / 1e9, kinds.get(k.split(":")[0].strip(), "?"), desc.get(k.split(":")[0].strip(), ""))
            for k, v in by_name.most_common(12)
        ],
    )
    log(f"  profile: {out['time_fraction_by_kind']}")
    return out


# --------------------------------------------------------------------------------------------------------------
# Report


def table(rep: dict) -> str:
    pk = rep["peak"]
    lines = [
        f"machine: {rep['machine']['cpu_model']}, {rep['machine']['cpus_available']} cores, jax "
        f"{rep['jax_version']} ({rep['backend']}, {pk['devices']} XLA devices); f32 matmul peak "
        f"{pk['gflops']:.1f} GFLOP/s (2048^3 jnp.dot: one device {pk['single_gflops_median']:.1f}, "
        f"one per device {pk['split_gflops_median']:.1f}; medians; better of start "
        f"{rep['peak_start']['gflops']:.1f} / end {rep['peak_end']['gflops']:.1f})",
        "",
        f"{'variant':<11} {'hidden':<10} {'P':>5} {'S':>4} {'group':>5} {'compile s':>9} {'run s':>8}"
        f" {'steps*mem/s':>11} {'GFLOP/s':>8} {'% peak':>6} {'%casepk':>7} {'vs (a)':>6} {'other':>5}",
    ]
    lines.append("-" * len(lines[-1]))
    for c in rep["cases"]:
        for v, r in c["variants"].items():
            grp = c["group"] if v.endswith("+map") else c["local_P"]
            lines.append(
                f"{v:<11} {'x'.join(map(str, c['hidden'])):<10} {c['P']:>5} {c['S']:>4} {grp:>5} {r['compile_s']:>9.2f}"
                f" {r['run_s']:>8.3f} {r['member_steps_per_s']:>11.3g} {r['gflops']:>8.2f}"
                f" {100 * r['gflops'] / pk['gflops']:>6.1f} {100 * r['case_peak_fraction']:>7.1f}"
                f" {r['speedup_vs_a']:>6.2f} {r['max_contention']:>5.2f}"
            )
        paired = [f"einsum/vmap x{c['einsum_speedup_paired']:.3f}"] if "einsum_speedup_paired" in c else []
        if "einsum_map_speedup_paired" in c:
            paired.append(f"einsum+map/vmap+map x{c['einsum_map_speedup_paired']:.3f}")
        if "map_speedup_paired" in c:
            paired.append(f"vmap+map/vmap x{c['map_speedup_paired']:.3f}")
        if paired:
            same = (c.get("same_hlo_vmap_einsum"), c.get("same_hlo_vmap_einsum_map"))
            lines.append(
                f"{'':<11} paired per-repeat speedups (median): {', '.join(paired)};"
                f" identical optimized HLO: {same[0]}, +map {same[1]}"
            )
        vs = c["variants"]
        lines.append(
            f"{'':<11} vs vmap: einsum bitwise equal {vs.get('einsum', {}).get('bitwise_equal_vs_a')}; members not "
            "allclose: "
            + ", ".join(
                f"{v} {r['members_not_allclose_vs_a']} (max |diff| {r['max_abs_param_diff_vs_a']:.1g})"
                for v, r in vs.items()
                if v != "vmap"
            )
        )
    lines += [
        "",
        f"one call = lax.scan of S AdamW steps, batch {BATCH}, {N_FEATURES} features, MSE; "
        f"run s = median of {rep['args']['repeats']} (7 when a call is < 1 s) interleaved calls; compile = "
        "lower+compile. group = members "
        "vmapped together per device (engine rule for +map; the whole local population otherwise). GFLOP/s counts "
        "3 x 2B sum(in*out) per member-step; % peak: of the machine's peak above; %casepk: of the peak timed "
        "interleaved with the case's own calls (same contention). vs (a) = run-s ratio to vmap. other = max cores "
        "other processes took during a timed call (run s uses only calls with other < 0.25 when >= 2 were; "
        "else all, and the row is suspect). Final params and losses of einsum allclose to "
        f"vmap for every member (rtol {RTOL:g}, atol {ATOL:g}; asserted); +map: all but <= 3% of members "
        "(another program: rounding differs; see JSON members_not_allclose_vs_a).",
    ]
    prof = rep.get("profile")
    if prof:
        frac = ", ".join(f"{k} {100 * v:.0f}%" for k, v in prof["time_fraction_by_kind"].items())
        lines += [
            "",
            f"profile ({prof['variant']}, hidden {'x'.join(map(str, prof['hidden']))}, P={prof['P']}): "
            f"XLA thunk time by kind: {frac}",
            f"  HLO ops: {prof['hlo_ops']}; fusions: {prof['fusion_kinds']}",
            f"  thunk time {prof['thunk_s_total']:.2f} s over {prof['xla_threads']} XLA threads for one "
            f"{prof['traced_wall_s']:.2f} s call; top thunks (s, kind, shape and op):",
            *(f"    {n:<28} {s:6.3f}  {k:<24} {d}" for n, s, k, d in prof["top_thunks"][:10]),
        ]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="hidden (64, 64), P = 32, S = 20 (< 30 s)")
    ap.add_argument("--steps", type=int, default=None, help="optimizer steps per call, every case (default: per case)")
    ap.add_argument("--repeats", type=int, default=3, help="timed calls per variant (default 3)")
    ap.add_argument("--big", action="store_true", help="also hidden (256, 256) at P = 1024 (~+4 min)")
    ap.add_argument("--no-profile", action="store_true")
    ap.add_argument("--out", default=None, help="JSON path (default benchmarks/results/formulation[_quick].json)")
    args = ap.parse_args(argv)
    repeats = args.repeats
    cases = [
        (h, ps + ((1024,) if args.big and h == (256, 256) else ()), args.steps or s)
        for h, ps, s in (QUICK_CASES if args.quick else FULL_CASES)
    ]
    out = args.out or os.path.join(HERE, "results", "formulation_quick.json" if args.quick else "formulation.json")

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    t_start = time.perf_counter()
    import jax

    rep = {
        "benchmark": "benchmarks/formulation.py",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "args": {"repeats": repeats, "quick": args.quick, "cases": cases},
        "machine": throughput._machine(),
        "cpu_count": os.cpu_count(),
        "jax_version": jax.__version__,
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.local_devices()],
        "git": throughput._git_state(),
        "cases": [],
    }
    log("f32 matmul peak ...")
    kernels = peak_kernels()
    peak_repeats = 2 if args.quick else 5
    rep["peak_start"] = matmul_peak(kernels, peak_repeats)
    log(f"  {rep['peak_start']['gflops']:.1f} GFLOP/s")
    for hidden, pops, steps in cases:
        for population in pops:
            log(f"[hidden {hidden} P {population}]")
            case = run_case(hidden, population, steps, repeats, VARIANTS, kernels, log)
            rep["cases"].append(case)
            throughput._write_json(rep, out)
    rep["peak_end"] = matmul_peak(kernels, peak_repeats)
    # the machine's peak: the better of the start and end measurements (each a median), so a contended moment
    # does not lower it; each case also records the peak measured interleaved with its own calls
    rep["peak"] = max(rep["peak_start"], rep["peak_end"], key=lambda d: d["gflops"])
    peak = rep["peak"]["gflops"]
    for c in rep["cases"]:
        for r in c["variants"].values():
            r["peak_fraction"] = r["gflops"] / peak
    if not args.no_profile:  # the formulations compile to the same HLO (checked above): profile the faster one
        (hidden, population) = ((64, 64), 32) if args.quick else PROFILE_CASE
        steps = next(s for h, _, s in cases if h == hidden)
        match = [c for c in rep["cases"] if tuple(c["hidden"]) == hidden and c["P"] == population]
        faster = (
            "einsum"
            if match and match[0]["variants"]["einsum"]["run_s"] < match[0]["variants"]["vmap"]["run_s"]
            else "vmap"
        )
        log(f"profile of {faster} at hidden {hidden} P {population} ...")
        rep["profile"] = profile(hidden, population, steps, faster, log)
    rep["total_wall_s"] = time.perf_counter() - t_start
    rep["table"] = table(rep)
    throughput._write_json(rep, out)
    print(rep["table"])
    print(f"\nwrote {out} ({rep['total_wall_s']:.0f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
