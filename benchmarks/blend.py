#!/usr/bin/env python
"""Weightings x rows per second of a blend-weight search (MAE, K = 3 models), three ways side by side.

(a) a Python loop over weightings with numpy, what users write:
    ``for w in W: np.abs(y - P @ w).mean()``;
(b) vectorised numpy: ``np.abs(W_chunk @ P.T - y).mean(1)`` over chunks of
    weightings (a 16 MiB block at a time; this orientation and block size were
    the fastest of those tried: 2-3x faster than ``y[:, None] - P @ W_chunk.T``);
(c) jaxexp: ``jaxexp.blending.score.score`` (the path ``jaxexp.blend`` takes):
    one jitted computation, sharded over the local devices, chunked over rows
    and weightings, float32, host-side padding and transfers included.

Rows 1e4, 1e5, 1e6 x simplex grids of 5,151 (1%), 100,128 (1/446) and
1,000,405 (1/1413) weightings. Every (way, rows, G) case is measured for about
``--case-s`` seconds: a case that would take longer is timed on a prefix of its
weightings (the rate does not depend on G once a call is full) and marked
``*`` with the fraction measured; a jaxexp call shorter than half of it is
repeated for about half of it (one 50 ms call is too noisy a sample). jaxexp's
compile is excluded (one untimed call on the same shapes first) and reported
separately.

The machine's limits are measured in the same run: memory bandwidth (numpy
copy of 256 MiB; and a read-only sum), and the float32 matmul peak (jitted
2048^3 matmuls, one per XLA device, as jaxexp runs). The jaxexp kernel is
compute-bound (it reads each row once per call of ~16k weightings), so its
relevant limit is the FLOP peak. FLOPs counted are those the kernel executes
per (weighting, row): the simplex grid sums to one, so the kernel eliminates
the last weight and computes the residual [P_k - P_K, P_K - y] . [w_<K, 1]
(K multiplies, K - 1 adds), then abs and the add into the sum: 2K + 1 = 7 for
K = 3 (the uneliminated [P, y] . [w, -1] would execute 9, but takes longer:
counting those would flatter the fraction). On CPU the kernel is the native
C++ loop of ``jaxexp/blending/native.py`` where a compiler is available; the
XLA form is timed beside it on the largest case.
Baseline (b) is
bound by memory bandwidth: it streams the rows x chunk residual matrix through
memory about 6 times (4 bytes each).

Usage::

    python benchmarks/blend.py            # full (~6-10 min on 2 cores)
    python benchmarks/blend.py --quick    # rows 1e4, 1e5 x G 5,151 and 100,128 (~1-2 min)
    python benchmarks/blend.py --rows 100000 --grids 100 --out /tmp/b.json

Writes a table to stdout and ``benchmarks/results/blend.json``
(``blend_quick.json`` with --quick).
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import resource
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402
import provenance  # noqa: E402  (git state, machine load)
import throughput  # noqa: E402  (machine description, contention, JSON writer)

import jaxexp  # noqa: E402,F401  (splits the CPU into one XLA device per core before JAX starts)
from jaxexp.blending import data as datamod  # noqa: E402
from jaxexp.blending import grid as gridmod  # noqa: E402
from jaxexp.blending import native  # noqa: E402
from jaxexp.blending import score as scoremod  # noqa: E402

K = 3
FLOPS_PER_ELEMENT = 2 * K + 1  # executed: see the docstring
B_BYTES_PER_ELEMENT = 6 * 4
FULL_ROWS, FULL_GRIDS = [10_000, 100_000, 1_000_000], [100, 446, 1413]
QUICK_ROWS, QUICK_GRIDS = [10_000, 100_000], [100, 446]
TARGET_FRACTION = 0.5


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class _Meter:
    """Wall time plus the cores other processes took meanwhile."""

    def __enter__(self):
        self.sys0, self.cpu0, self.t0 = provenance.system_cpu(), _cpu_s(), time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.t0
        c = throughput._contention(self.sys0, provenance.system_cpu(), self.cpu0, _cpu_s(), self.wall)
        self.contention = c.get("contention")


def bandwidth() -> dict:
    a = np.ones(64 << 20, np.float32)  # 256 MiB
    b = np.empty_like(a)
    copy, read = 0.0, 0.0
    for _ in range(5):
        t = time.perf_counter()
        np.copyto(b, a)
        copy = max(copy, 2 * a.nbytes / (time.perf_counter() - t))
        t = time.perf_counter()
        a.sum()
        read = max(read, a.nbytes / (time.perf_counter() - t))
    return {"copy_gbs": copy / 1e9, "read_gbs": read / 1e9, "gbs": max(copy, read) / 1e9}


def matmul_peak() -> dict:
    """The f32 matmul peak: jitted (one 2048^3 matmul per XLA device) and numpy."""
    jx = throughput.case_peak({"mode": "split", "reps": 4, "trials": 5})
    n = 2048
    x = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    x @ x
    t = time.perf_counter()
    x @ x
    numpy_gflops = 2.0 * n**3 / (time.perf_counter() - t) / 1e9
    return {"jax_devices": jx["devices"], "jax_gflops": jx["gflops"], "numpy_gflops": numpy_gflops}


def _problem(n_rows: int) -> datamod.BlendData:
    rng = np.random.default_rng(0)
    y = rng.normal(size=n_rows) * 3 + 10
    p = y[:, None] + rng.normal(size=(n_rows, K)) * [1.0, 1.2, 2.0]
    return datamod.from_arrays(y.astype(np.float32), p.astype(np.float32), ["a", "b", "c"])


def _prefix(rate_guess: float, n_rows: int, g: int, case_s: float, multiple: int = 1) -> int:
    want = max(multiple, int(rate_guess * case_s / n_rows) // multiple * multiple)
    return min(g, want)


def way_loop(d, w, case_s: float) -> dict:
    y, p = d.y.astype(np.float32), d.preds.astype(np.float32)
    wf = w.astype(np.float32)
    t = time.perf_counter()
    for i in range(min(16, len(w))):  # probe
        np.abs(y - p @ wf[i]).mean()
    probe = max(time.perf_counter() - t, 1e-6) / min(16, len(w))
    m = min(len(w), max(16, int(case_s / probe)))
    out = np.empty(m)
    with _Meter() as mt:
        for i in range(m):
            out[i] = np.abs(y - p @ wf[i]).mean()
    return {"measured_g": m, "seconds": mt.wall, "rate": m * len(y) / mt.wall, "contention": mt.contention}


def way_numpy(d, w, case_s: float) -> dict:
    y, pt = d.y.astype(np.float32), np.ascontiguousarray(d.preds.T.astype(np.float32))
    wf = w.astype(np.float32)
    cg = max(8, (4 << 20) // len(y))  # 16 MiB float32 block of weightings x rows

    def run(sub):
        return np.concatenate([np.abs(sub[i : i + cg] @ pt - y).mean(1) for i in range(0, len(sub), cg)])

    t = time.perf_counter()
    run(wf[: min(cg, len(w))])
    probe = (time.perf_counter() - t) / min(cg, len(w))
    m = min(len(w), max(min(cg, len(w)), int(case_s / max(probe, 1e-9)) // cg * cg))
    with _Meter() as mt:
        run(wf[:m])
    return {"measured_g": m, "seconds": mt.wall, "rate": m * len(y) / mt.wall, "contention": mt.contention}


def way_jaxexp(d, w, case_s: float, dtype: str = "float32", metric: str = "mae") -> dict:
    small = w[: min(len(w), 4096)]
    t = time.perf_counter()
    scoremod.score(d, small, metric, dtype=dtype)  # compiles the small-call shape
    first = time.perf_counter() - t
    t = time.perf_counter()
    scoremod.score(d, small, metric, dtype=dtype)
    compile_s = max(0.0, first - (time.perf_counter() - t))
    probe_w = w[: min(len(w), 65536)]
    scoremod.score(d, probe_w, metric, dtype=dtype)  # compiles the full-call shape, if different
    t = time.perf_counter()
    scoremod.score(d, probe_w, metric, dtype=dtype)
    rate_guess = len(probe_w) * d.n / (time.perf_counter() - t)
    m = _prefix(rate_guess, d.n, len(w), case_s, multiple=min(len(w), 16384))
    t = time.perf_counter()
    scoremod.score(d, w[:m], metric, dtype=dtype)  # same shapes as the timed calls
    repeats = max(1, round(case_s / 2 / (time.perf_counter() - t)))  # a short case is timed over several calls
    with _Meter() as mt:
        for _ in range(repeats):
            scoremod.score(d, w[:m], metric, dtype=dtype)
    return {
        "measured_g": m,
        "repeats": repeats,
        "seconds": mt.wall,
        "rate": repeats * m * d.n / mt.wall,
        "compile_s": compile_s,
        "contention": mt.contention,
        "dtype": dtype,
        "metric": metric,
    }


def _fmt(v, spec=".3g") -> str:
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else format(v, spec)


def table(rep: dict) -> str:
    peak, bw = rep["peak"]["flops_gflops"], rep["bandwidth"]["gbs"]
    lines = [
        f"machine: {rep['machine']['cpu_model']}, {rep['machine']['cpus_available']} cores; "
        f"f32 matmul peak {peak:.1f} GFLOP/s (the higher of start and end; {rep['peak']['jax_devices']} XLA "
        f"devices; numpy {rep['peak']['numpy_gflops']:.1f} at the start); memory bandwidth {bw:.1f} GB/s (copy "
        f"{rep['bandwidth']['copy_gbs']:.1f}, read {rep['bandwidth']['read_gbs']:.1f})",
        f"kernel: {rep['kernel'].get('native', 'XLA form')}",
        "",
        f"{'rows':>9} {'G':>10}  {'(a) loop':>14} {'(b) numpy':>14} {'(c) jaxexp':>14}  {'c/a':>7} {'c/b':>6}"
        f"  {'c GFLOP/s':>9} {'%peak':>6}  {'b GB/s':>7} {'b %bw':>6}  {'compile':>7} {'other':>5}",
    ]
    lines.append("-" * len(lines[-1]))
    for c in rep["cases"]:
        cells = []
        for way in ("a", "b", "c"):
            r = c.get(way)
            if r is None:
                cells.append(f"{'-':>14}")
                continue
            star = "" if r["measured_g"] == c["G"] else f"*{100 * r['measured_g'] / c['G']:.0f}%"
            cells.append(f"{r['rate']:>10.3g}{star:>4}" if star else f"{r['rate']:>14.3g}")
        a, b, cc = (c.get(k, {}).get("rate") for k in ("a", "b", "c"))
        other = max((c.get(k, {}).get("contention") or 0.0) for k in ("a", "b", "c"))
        lines.append(
            f"{c['rows']:>9,} {c['G']:>10,}  {' '.join(cells)}  {_fmt(cc / a if a and cc else None, '.0f'):>7}"
            f" {_fmt(cc / b if b and cc else None, '.1f'):>6}  {_fmt(c.get('c_gflops'), '.1f'):>9}"
            f" {_fmt(100 * c.get('c_peak_fraction', math.nan), '.1f'):>6}"
            f"  {_fmt(c.get('b_gbs'), '.1f'):>7} {_fmt(100 * c.get('b_bw_fraction', math.nan), '.0f'):>6}"
            f"  {_fmt(c.get('c', {}).get('compile_s'), '.2f'):>7} {_fmt(other, '.2f'):>5}"
        )
    for x in rep.get("extra", []):
        lines.append(
            f"  extra: {x['label']}: {x['rate']:.3g} weightings x rows/s" + (f" ({x['note']})" if x.get("note") else "")
        )
    lines += [
        "",
        "rates: weightings x rows per second (MAE, K=3, float32). * = timed on that share of the weightings "
        f"(~{rep['args']['case_s']:g} s per case; the rate does not depend on G once a call is full). "
        f"c GFLOP/s counts the {FLOPS_PER_ELEMENT} FLOPs the kernel executes per (weighting, row); %peak is of "
        "the f32 matmul peak (the relevant limit: the kernel is compute-bound; the peak counts the two FMA pipes "
        "only, and the abs and add can run on other pipes beside them, so a fraction can pass 100%). "
        f"b GB/s counts {B_BYTES_PER_ELEMENT} bytes of residual traffic per element (the limit of (b) is "
        "memory bandwidth). compile: jaxexp's first call minus its second (same shapes). "
        "other: cores other processes took during the case (numbers are suspect when > 0.25).",
        "",
        f"target: jaxexp >= {100 * TARGET_FRACTION:.0f}% of the relevant limit (FLOP peak), median over cases: "
        f"{100 * rep['median_peak_fraction']:.1f}% (best {100 * rep['best_peak_fraction']:.1f}%) -> "
        f"{'PASS' if rep['median_peak_fraction'] >= TARGET_FRACTION else 'FAIL'}",
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="rows 1e4, 1e5 x G 5,151 and 100,128")
    ap.add_argument("--rows", default=None, help="comma list of row counts")
    ap.add_argument("--grids", default=None, help="comma list of grid units n (step 1/n; G = C(n+2, 2))")
    ap.add_argument("--case-s", type=float, default=None, help="seconds per (way, case) (default 8; quick 3)")
    ap.add_argument("--out", default=None, help="JSON path (default benchmarks/results/blend[_quick].json)")
    args = ap.parse_args(argv)
    rows = [int(float(r)) for r in args.rows.split(",")] if args.rows else (QUICK_ROWS if args.quick else FULL_ROWS)
    grids = [int(g) for g in args.grids.split(",")] if args.grids else (QUICK_GRIDS if args.quick else FULL_GRIDS)
    case_s = args.case_s or (3.0 if args.quick else 8.0)
    out = args.out or os.path.join(HERE, "results", "blend_quick.json" if args.quick else "blend.json")

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    t_start = time.perf_counter()
    import jax

    rep = {
        "benchmark": "benchmarks/blend.py",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "args": {"rows": rows, "grids": grids, "case_s": case_s, "quick": args.quick},
        "machine": throughput._machine(),
        "devices": [str(d) for d in jax.local_devices()],
        "git": throughput._git_state(),
        "kernel": {
            "native": native.status(),
            "row_block": scoremod.FUSED_ROW_BLOCK,
            "g_block": scoremod.G_BLOCK,
            "flops_per_element": FLOPS_PER_ELEMENT,
        },
    }
    log("memory bandwidth ...")
    rep["bandwidth"] = bandwidth()
    log("f32 matmul peak ...")
    rep["peak"] = matmul_peak()
    rep["peak"]["flops_gflops"] = max(rep["peak"]["jax_gflops"], rep["peak"]["numpy_gflops"])
    peak, bw = rep["peak"]["flops_gflops"] * 1e9, rep["bandwidth"]["gbs"] * 1e9
    log(f"  peak {peak / 1e9:.1f} GFLOP/s, bandwidth {bw / 1e9:.1f} GB/s")
    cons = gridmod.make_constraints(["a", "b", "c"])
    rep["cases"] = []
    for n_units in grids:
        w = gridmod.simplex_grid(cons, 1.0 / n_units)
        for n_rows in rows:
            d = _problem(n_rows)
            case = {"rows": n_rows, "G": len(w), "step": f"1/{n_units}"}
            for way, fn in (("a", way_loop), ("b", way_numpy), ("c", way_jaxexp)):
                log(f"[rows {n_rows:,} G {len(w):,}] ({way}) ...")
                case[way] = fn(d, w, case_s)
                log(f"  {case[way]['rate']:.3g} weightings x rows/s over {case[way]['measured_g']:,} weightings")
            case["b_gbs"] = case["b"]["rate"] * B_BYTES_PER_ELEMENT / 1e9
            case["b_bw_fraction"] = case["b"]["rate"] * B_BYTES_PER_ELEMENT / bw
            case["c_over_a"] = case["c"]["rate"] / case["a"]["rate"]
            case["c_over_b"] = case["c"]["rate"] / case["b"]["rate"]
            rep["cases"].append(case)
            throughput._write_json(rep, out)
    # Informational: the XLA form (no native kernel), the float64 kernel and MSE's Gram form on the largest case.
    d, w = _problem(rows[-1]), gridmod.simplex_grid(cons, 1.0 / grids[-1])
    rep["extra"] = []
    log("extra: XLA form, float64 kernel, MSE Gram form ...")
    if native.available():
        saved, native._STATE = native._STATE, {"ok": False, "why": "benchmark: the XLA form"}
        rx = way_jaxexp(d, w, case_s)
        native._STATE = saved
        rep["extra"].append({"label": f"jaxexp MAE, XLA form (no native kernel), rows {d.n:,}", **rx})
    r64 = way_jaxexp(d, w, case_s, dtype="float64")
    rep["extra"].append({"label": f"jaxexp MAE float64, rows {d.n:,}", **r64})
    with _Meter() as mt:
        scoremod.score(d, w, "mse")
    rep["extra"].append(
        {
            "label": f"jaxexp MSE (Gram form), rows {d.n:,}, G {len(w):,}",
            "rate": len(w) * d.n / mt.wall,
            "seconds": mt.wall,
            "note": "O(N K^2 + G K^2): no rows x G work at all",
        }
    )
    # The peak again at the end, and the higher of the two: a peak measured in a
    # slow moment (this is a shared VM) would flatter every fraction.
    log("f32 matmul peak, again ...")
    end = matmul_peak()
    rep["peak"]["end_gflops"] = max(end["jax_gflops"], end["numpy_gflops"])
    rep["peak"]["flops_gflops"] = max(rep["peak"]["flops_gflops"], rep["peak"]["end_gflops"])
    for case in rep["cases"]:
        case["c_gflops"] = case["c"]["rate"] * FLOPS_PER_ELEMENT / 1e9
        case["c_peak_fraction"] = case["c"]["rate"] * FLOPS_PER_ELEMENT / (rep["peak"]["flops_gflops"] * 1e9)
    rep["best_peak_fraction"] = max(c["c_peak_fraction"] for c in rep["cases"])
    rep["median_peak_fraction"] = float(np.median([c["c_peak_fraction"] for c in rep["cases"]]))
    rep["total_wall_s"] = time.perf_counter() - t_start
    rep["table"] = table(rep)
    throughput._write_json(rep, out)
    print(rep["table"])
    print(f"\nwrote {out} ({rep['total_wall_s']:.0f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
