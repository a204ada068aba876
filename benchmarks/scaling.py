#!/usr/bin/env python
"""How jaxexp scales: population size, device count, processes, memory-sized queues.

One run measures, each case in its own subprocess (cold compiles, its own
``XLA_FLAGS``, its own peak RSS):

(A) population P = 1 .. 4096 on the host's default devices (jaxexp splits the
    CPU into one XLA device per core), and P = 4096 again with an
    ``engine.memory_budget`` that forces a queue through fewer slots;
(B) P = 1024 on 1, 2, 4 and 8 forced CPU devices (on the same cores);
(C) P = 1024 in 1 process with 2 devices vs 2 processes with 1 device each
    (``jax.distributed`` over gloo on localhost).

Every case runs ``jaxexp.sweep`` twice in the same process: the first call
compiles (compile s = the engine's measured compile + init time), the second
is the steady state (runs/s = P / its wall time). Useful FLOP/s count the
matmuls of training (forward + backward = 3 x forward) and of the per-epoch
validation pass, and are divided by the f32 matmul peak measured in its own
subprocess on the same machine.

Usage::

    python benchmarks/scaling.py            # full run (~8 min on 2 cores)
    python benchmarks/scaling.py --quick    # smoke run (< 1.5 min)

Writes ``benchmarks/results/scaling.json`` (``scaling_quick.json``) and prints
a table. The parent process imports neither JAX nor jaxexp.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

WORKLOAD = {
    "title": "MLP 16-64-1 regression, 4096 rows, batch 128, dropout 0.1, AdamW",
    "n_features": 16,
    "n_train": 4096,
    "n_val": 512,
    "hidden": [64],
    "batch_size": 128,
    "epochs": 10,
}
# Targets of issue 8 (CPU part; the GPU ones need a GPU).
P1024_WITHIN = 0.10  # runs/s per device at P=1024 within 10% of the best P
EIGHT_VS_ONE_MIN = 1.0  # 8 forced CPU devices not slower than 1


def flops_per_run(w: dict) -> float:
    """Useful matmul FLOPs of one member's whole run."""
    widths = [w["n_features"], *w["hidden"], 1]
    macs = sum(a * b for a, b in zip(widths, widths[1:]))
    steps = w["n_train"] // w["batch_size"]
    train = 3 * 2 * w["batch_size"] * macs * steps  # forward + backward
    val = 2 * w["n_val"] * macs
    return float(w["epochs"] * (train + val))


# ----------------------------------------------------------------------------- child side


def _config(jaxexp, w: dict, population: int, budget: str):
    c = jaxexp.default_config()
    c.name = "scaling"
    c.metric = "val_mse"
    c.task.name = "regression"
    c.task.n_features = w["n_features"]
    c.task.n_train = w["n_train"]
    c.task.n_val = w["n_val"]
    c.model.hidden = tuple(w["hidden"])
    c.model.dropout = 0.1
    c.train.batch_size = w["batch_size"]
    c.train.epochs = w["epochs"]
    c.sweep.seeds = population
    c.engine.progress = False
    c.engine.compile_cache = "off"  # cold compiles are part of what is measured
    c.engine.memory_budget = budget
    return c


def case_sweep(spec: dict) -> dict:
    if spec.get("distributed"):
        from jaxexp.run import distributed

        distributed.initialize(spec["coordinator"], spec["num_processes"], spec["process_id"])
    import jax

    import jaxexp

    cfg = _config(jaxexp, spec["workload"], spec["population"], spec.get("budget", "0.75"))
    t = time.perf_counter()
    first = jaxexp.sweep(cfg)
    first_s = time.perf_counter() - t
    t = time.perf_counter()
    second = jaxexp.sweep(cfg)
    steady_s = time.perf_counter() - t
    assert len(second.members) == spec["population"] and second.members["best_val_mse"].notna().all()
    ft = first.timings
    return {
        "population": spec["population"],
        "devices": len(jax.devices()),
        "processes": jax.process_count(),
        "first_s": first_s,
        "steady_s": steady_s,
        "runs_per_s": spec["population"] / steady_s,
        "compile_s": ft.get("compile_s", 0.0) + ft.get("init_s", 0.0) - second.timings.get("init_s", 0.0),
        "slots": int(ft.get("slots", 0)),
        "refills": int(ft.get("refills", 0)),
        "segment_memory_mb_per_device": ft.get("segment_memory_mb", float("nan")),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "budget": spec.get("budget", "0.75"),
    }


def case_peak(spec: dict) -> dict:
    """f32 matmul peak: one 2048^3 matmul per device (one device per core), best of 5."""
    sys.path.insert(0, HERE)
    import throughput

    import jaxexp  # noqa: F401  (splits the CPU into one device per core, as the sweeps run)

    peak = throughput.case_peak({"mode": "split", "reps": 3, "trials": 5})
    return {"devices": peak["devices"], "gflops": peak["gflops"]}


def child_main(spec_json: str, out_path: str) -> None:
    spec = json.loads(spec_json)
    result = case_peak(spec) if spec["kind"] == "peak" else case_sweep(spec)
    if spec.get("process_id", 0) == 0:
        with open(out_path, "w") as f:
            json.dump(result, f)


# ----------------------------------------------------------------------------- parent side


def _env(devices: int | None) -> dict:
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""), JAX_PLATFORMS="cpu")
    env.pop("XLA_FLAGS", None)
    if devices:
        env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_case(spec: dict, devices: int | None, timeout: float, processes: int = 1) -> dict:
    """Runs one case in ``processes`` subprocesses; returns process 0's result."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "result.json")
        port = _free_port()
        procs = []
        for i in range(processes):
            s = dict(spec)
            if processes > 1:
                s.update(distributed=True, coordinator=f"127.0.0.1:{port}", num_processes=processes, process_id=i)
            cmd = [sys.executable, os.path.abspath(__file__), "--child", json.dumps(s), out]
            procs.append(
                subprocess.Popen(cmd, env=_env(devices), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            )
        t = time.perf_counter()
        logs = []
        for p in procs:
            try:
                logs.append(p.communicate(timeout=max(1.0, timeout - (time.perf_counter() - t)))[0])
            except subprocess.TimeoutExpired:
                for q in procs:
                    q.kill()
                return {"error": f"timeout after {timeout:.0f} s"}
        if any(p.returncode for p in procs) or not os.path.exists(out):
            tail = "\n".join(line for log in logs for line in log.splitlines()[-5:])
            return {"error": f"exit codes {[p.returncode for p in procs]}: {tail[-800:]}"}
        with open(out) as f:
            return json.load(f)


def _fmt(v, spec=".3g") -> str:
    return "-" if v is None or (isinstance(v, float) and v != v) else format(v, spec)


def table(report: dict) -> str:
    head = "| case | P | devices | processes | slots | compile s | runs/s | runs/s/device | GFLOP/s | % of peak |"
    lines = [head, "|" + "---|" * 10]
    for r in report["cases"]:
        if "error" in r:
            lines.append(f"| {r['case']} | {r.get('population', '')} | error: {r['error'][:80]} |")
            continue
        lines.append(
            f"| {r['case']} | {r['population']} | {r['devices']} | {r['processes']} | {r['slots']} | "
            f"{_fmt(r['compile_s'])} | {_fmt(r['runs_per_s'])} | {_fmt(r['runs_per_s_per_device'])} | "
            f"{_fmt(r['useful_gflops'])} | {_fmt(100 * r['peak_fraction'], '.1f')} |"
        )
    lines.append("")
    for t in report["targets"]:
        lines.append(f"- {t['status']}: {t['name']}: {t['detail']}")
    return "\n".join(lines)


def targets(report: dict) -> list[dict]:
    ok = [r for r in report["cases"] if "error" not in r]
    out = []
    pop = [r for r in ok if r["case"] == "population"]
    at = next((r for r in pop if r["population"] == 1024), None)
    if at and pop:
        best = max(pop, key=lambda r: r["runs_per_s_per_device"])
        ratio = at["runs_per_s_per_device"] / best["runs_per_s_per_device"]
        out.append(
            {
                "name": "runs/s per device at P=1024 within 10% of the best P",
                "status": "PASS" if ratio >= 1 - P1024_WITHIN else "FAIL",
                "measured": ratio,
                "detail": f"{ratio:.2f} of the best (P={best['population']}: "
                f"{best['runs_per_s_per_device']:.3g} runs/s/device)",
            }
        )
    dev = {r["devices"]: r for r in ok if r["case"] == "devices"}
    if 1 in dev and 8 in dev:
        ratio = dev[8]["runs_per_s"] / dev[1]["runs_per_s"]
        out.append(
            {
                "name": "8 forced CPU devices not slower than 1 (same cores)",
                "status": "PASS" if ratio >= EIGHT_VS_ONE_MIN else "FAIL",
                "measured": ratio,
                "detail": f"{ratio:.2f}x ({dev[8]['runs_per_s']:.3g} vs {dev[1]['runs_per_s']:.3g} runs/s)",
            }
        )
    procs = {r["processes"]: r for r in ok if r["case"] == "processes"}
    if 1 in procs and 2 in procs:
        ratio = procs[2]["runs_per_s"] / procs[1]["runs_per_s"]
        out.append(
            {
                "name": "2 processes x 1 device vs 1 process x 2 devices (informational)",
                "status": "INFO",
                "measured": ratio,
                "detail": f"{ratio:.2f}x",
            }
        )
    out.append(
        {
            "name": "GPU: >= 200x a PyTorch per-run loop, >= 40% of matmul peak at large P",
            "status": "NOT MEASURED",
            "measured": None,
            "detail": "no GPU was lent to this task",
        }
    )
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="small sizes, a smoke run")
    p.add_argument("--out", default=None, help="JSON path (default benchmarks/results/scaling[_quick].json)")
    p.add_argument("--child", nargs=2, metavar=("SPEC", "OUT"), help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child:
        child_main(*a.child)
        return 0
    w = dict(WORKLOAD)
    if a.quick:
        w["epochs"] = 2
        sizes, big, dev_p, budget_p = [1, 16, 256], 256, 256, 256
    else:
        sizes, big, dev_p, budget_p = [1, 4, 16, 64, 256, 1024, 4096], 1024, 1024, 4096
    out_path = a.out or os.path.join(HERE, "results", "scaling_quick.json" if a.quick else "scaling.json")
    plan = [("population", {"population": n}, None, 1) for n in sizes]
    # a queue: a budget of half what the full population measured
    plan.append(("queue", {"population": budget_p, "budget": "HALF"}, None, 1))
    plan += [("devices", {"population": dev_p}, d, 1) for d in (1, 2, 4, 8)]
    plan += [("processes", {"population": big}, 2, 1), ("processes", {"population": big}, 1, 2)]

    print("measuring the f32 matmul peak ...", flush=True)
    peak = run_case({"kind": "peak"}, None, 300)
    peak_flops = peak.get("gflops", float("nan")) * 1e9
    fpr = flops_per_run(w)
    report = {
        "benchmark": "scaling",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "workload": w,
        "flops_per_run": fpr,
        "peak": peak,
        "cases": [],
    }
    by_p = {}
    for case, spec, devices, processes in plan:
        spec = {"kind": "sweep", "workload": w, **spec}
        if spec.get("budget") == "HALF":
            full = by_p.get(spec["population"])
            if full is None or full.get("error"):
                continue
            per_device = full["segment_memory_mb_per_device"] * 2**20
            spec["budget"] = f"{int(per_device / 2)}B"
        label = f"{case}: P={spec['population']} devices={devices or 'default'} processes={processes}"
        print(f"{label} ...", flush=True)
        r = run_case(spec, devices, 900, processes)
        r["case"] = case
        r.setdefault("population", spec["population"])
        if "error" not in r:
            r["runs_per_s_per_device"] = r["runs_per_s"] / r["devices"]
            r["useful_gflops"] = r["runs_per_s"] * fpr / 1e9
            r["peak_fraction"] = r["runs_per_s"] * fpr / peak_flops
            print(f"  {r['runs_per_s']:.3g} runs/s, compile {r['compile_s']:.2f} s, slots {r['slots']}", flush=True)
        else:
            print(f"  {r['error']}", flush=True)
        if case == "population":
            by_p[spec["population"]] = r
        report["cases"].append(r)
    report["targets"] = targets(report)
    os.makedirs(os.path.dirname(out_path), exist_ok=True)
    with open(out_path, "w") as f:
        json.dump(report, f, indent=1)
    print()
    print(f"{w['title']}, {w['epochs']} epochs; matmul peak {peak.get('gflops', float('nan')):.1f} GFLOP/s")
    print(table(report))
    print(f"\nwrote {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
