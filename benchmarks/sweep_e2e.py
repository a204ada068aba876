#!/usr/bin/env python
"""End to end, whole processes: a jaxexp command against the practice it replaces.

Every variant is one process, timed by the wall clock from spawn to exit: the
Python/JAX/torch imports, loading the data, compiling, training and writing
the outputs are all inside. The variants of a repeat run one after the other
(A, then B, then C; within a workload the baselines first, then jaxexp with a
cold and then a warm compilation cache), so drift in the machine's load hits
all of them; ratios are computed within a repeat and their median reported.

A  192 runs: ``jaxexp sweep --config=benchmarks/configs/digits192.py`` (64 grid
   configurations x 3 seeds) vs benchmarks/baselines/torch_sweep.py, the same
   192 (configuration, seed) runs trained one at a time in a plain PyTorch loop.
B  64 TPE trials: ``jaxexp sweep --config=benchmarks/configs/digits_tpe.py``
   (sweep.strategy="tpe": 4 ask batches of 16 trials, Optuna's TPESampler) vs
   benchmarks/baselines/optuna_tpe.py, Optuna's sequential ``study.optimize``
   loop, 64 trials, each training the PyTorch MLP once; same space.
C  P = 1: ``jaxexp sweep --config=benchmarks/configs/digits_single.py`` (one
   configuration x one seed) vs benchmarks/baselines/jax_single.py, the same
   run as a ``jax.jit`` train step in a Python loop over the batches.

All of them: sklearn's 8x8 digits with jaxexp's split and scaling (checked
identical before timing), an MLP 64-128-128-10 with dropout after each hidden
layer, AdamW, batches of 64 reshuffled every epoch, 30 epochs, the validation
accuracy after every epoch. The PyTorch baselines run twice, with torch's
default intra-op thread count and with one thread (``--torch-threads``).

jaxexp runs with its engine defaults, so its time also covers what the
baselines do not write: Orbax checkpoints every 5 epochs, plots, report.md and
report.html, TensorBoard events (when tensorboardX is installed). "cold": a
fresh empty ``JAXEXP_CACHE_DIR``; "warm": the same cache directory again, a
fresh workdir. jaxexp's own breakdown (WORKDIR/timings.json when present, else
the "Wall time ..." line of report.md) and its best validation accuracy
(members.csv / trials.csv) are recorded beside the baselines' as a check that
the same work was done.

Usage::

    python benchmarks/sweep_e2e.py                      # 3 repeats of A, B, C (~5 min a repeat on 2 quiet cores)
    python benchmarks/sweep_e2e.py --quick --repeats 1  # smoke run: 3 epochs, fewer runs (a few minutes)
    python benchmarks/sweep_e2e.py --only A,C --repeats 2 --out /tmp/e2e.json
    python benchmarks/sweep_e2e.py --torch-threads default   # only torch's default thread count

The parent process imports neither JAX nor torch; it starts the processes,
prints a table and writes JSON (default benchmarks/results/sweep_e2e.json;
--quick: benchmarks/results/sweep_e2e_quick.json), after every process.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import glob
import importlib.metadata
import importlib.util
import json
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import provenance  # benchmarks/ is on sys.path when run as a script

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BASELINES = os.path.join(HERE, "baselines")
CONFIGS = os.path.join(HERE, "configs")
DEFAULT_OUT = os.path.join(HERE, "results", "sweep_e2e.json")
QUICK_OUT = os.path.join(HERE, "results", "sweep_e2e_quick.json")
SUSPECT_CORES = 0.25  # cores taken by other processes (+ host steal) during a run above which it is suspect

WORKLOADS = {
    "A": {
        "title": "192 runs: 64 grid configurations x 3 seeds",
        "config": "digits192.py",
        "baseline": "torch_sweep.py",
        "needs": ("torch",),
        "full": {"epochs": 30, "seeds": 3},
        "quick": {"epochs": 3, "seeds": 1},
    },
    "B": {
        "title": "64 TPE trials: 4 ask batches of 16 vs Optuna's sequential loop",
        "config": "digits_tpe.py",
        "baseline": "optuna_tpe.py",
        "needs": ("torch", "optuna"),
        "full": {"epochs": 30, "batches": 4, "slots": 16},
        "quick": {"epochs": 3, "batches": 2, "slots": 8},
    },
    "C": {
        "title": "P=1: one configuration x one seed",
        "config": "digits_single.py",
        "baseline": "jax_single.py",
        "needs": (),
        "full": {"epochs": 30},
        "quick": {"epochs": 3},
    },
}
EXTRAS = {"torch": "pip install 'jaxexp[bench]' (torch==2.13.0)", "optuna": "pip install 'jaxexp[tpe]' (optuna)"}
# Every variant needs these in the jaxexp environment (the parent checks before anything runs).
COMMON_NEEDS = ("jax", "flax", "optax", "sklearn")

NOTES = [
    "A: the baseline trains the same 64 grid configurations x 3 seeds as jaxexp (the issue's 'Optuna-chosen "
    "configurations x 3 seeds'); the same configurations make the comparison fairer: identical work, only the "
    "way it is run differs.",
    "B: jaxexp's TPE asks 16 trials per batch (4 batches), Optuna's loop asks one at a time and sees every result "
    "before the next ask; the sampler and space are the same (TPESampler(seed=0), default settings), the "
    "trials they choose are not. Trial values: the best validation accuracy of a run (jaxexp: of its one seed).",
    "C: jax_single.py is plain JAX as it comes (one CPU device, no persistent compilation cache); jaxexp splits "
    "the CPU into one XLA device per core and uses its compilation cache (cold: empty).",
    "jaxexp runs with its engine defaults: its wall time includes Orbax checkpoints every engine.segment_epochs, "
    "plots, report.md/report.html and TensorBoard events, which the baselines do not write (they write runs.csv, "
    "history.csv and summary.json).",
    "torch's default intra-op thread count is the number of cores; while other processes take a core, its "
    "OpenMP threads wait on each other and single runs can take many times longer (compare the baselines' run_s_max "
    "and mean with the median); the 1-thread rows are the steadier reference.",
    "The baselines' MLP uses flax's initialisation (LeCun-normal kernels, zero biases); dropout masks come from "
    "torch's / jax.random's generators, jaxexp's from its counter-based hash: results match in distribution, "
    "not bit for bit.",
]


# ----------------------------------------------------------------------------- helpers


def _ncpu() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _version(pkg: str) -> str | None:
    try:
        return importlib.metadata.version(pkg)
    except importlib.metadata.PackageNotFoundError:
        return None


def _machine() -> dict:
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            model = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "")
    except OSError:
        pass
    pkgs = ("jax", "jaxlib", "flax", "optax", "torch", "optuna", "scikit-learn", "numpy", "orbax-checkpoint")
    return {
        "cpu_model": model,
        "cpu_count": os.cpu_count(),
        "cpus_available": _ncpu(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": {p: _version(p) for p in pkgs},
        "env": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "XLA_FLAGS") if k in os.environ},
    }


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def _fmt(v, spec: str = ".3g", empty: str = "-") -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return empty
    return format(v, spec)


def _write_json(report: dict, path: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(report, f, indent=1, default=str)
        f.write("\n")
    os.replace(tmp, path)


def _env(cache_dir: str | None = None) -> dict:
    """The environment of a timed process: the caller's, without settings that would change what is measured."""
    env = dict(os.environ)
    for k in ("XLA_FLAGS", "JAXEXP_NO_CPU_SPLIT", "JAX_COMPILATION_CACHE_DIR", "JAXEXP_CACHE_DIR"):
        env.pop(k, None)
    if cache_dir:
        env["JAXEXP_CACHE_DIR"] = cache_dir
    env.setdefault("PYTHONHASHSEED", "0")
    return env


def _jaxexp_cmd() -> list[str]:
    """The console script next to this interpreter (what a user runs), else ``python -m jaxexp.main``."""
    script = os.path.join(os.path.dirname(sys.executable), "jaxexp")
    return [script] if os.path.exists(script) else [sys.executable, "-m", "jaxexp.main"]


def run_process(cmd: list[str], env: dict, log_path: str, timeout: float) -> dict:
    """Runs one process, timed from spawn to exit; its CPU time and peak RSS from wait4."""
    load = _loadavg()
    sys0 = provenance.system_cpu()
    with open(log_path, "w") as log:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        killed = []
        timer = threading.Timer(timeout, lambda: (killed.append(True), proc.kill()))
        timer.start()
        try:
            _, status, ru = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    sys1 = provenance.system_cpu()
    cpu = ru.ru_utime + ru.ru_stime
    out = {
        "wall_s": wall,
        "rc": proc.returncode,
        "loadavg_before": load,
        "cpu_s": cpu,
        "cpu_util": cpu / wall if wall > 0 else float("nan"),
        "maxrss_mb": ru.ru_maxrss / 1024.0,
        "log": log_path,
    }
    if sys0 and sys1 and wall > 0:
        other = max(0.0, (sys1["busy_s"] - sys0["busy_s"]) - cpu) / wall
        steal = (sys1["steal_s"] - sys0["steal_s"]) / wall
        out.update(other_load=other, steal_load=steal, contention=other + steal)
    if killed:
        out["error"] = f"timed out after {timeout:.0f}s"
    elif proc.returncode != 0:
        out["error"] = f"exit status {proc.returncode}"
    if "error" in out:
        with open(log_path, errors="replace") as f:
            out["log_tail"] = f.read()[-3000:]
    return out


# ----------------------------------------------------------------------------- reading the outputs

# report.md's timing sentence: "Wall time 17.4 s: compile 3.8 s (...), init 2.5 s, ..." (older jaxexp) or
# "Training run 3.3 s: compile 2.3 s, init compile 0.7 s, ...; besides: startup 1.2 s, data 0.6 s, ..." (newer).
_WALL_LINE = re.compile(r"(?:Wall time|Training run) [^\n]*")
_PART = re.compile(r"([A-Za-z][A-Za-z ]*?) (\d+(?:\.\d+)?) s\b")


def parse_wall_line(text: str) -> dict:
    """report.md's timing sentence -> {phase_s: seconds} (and compile_cache_hits)."""
    m = _WALL_LINE.search(text)
    if not m:
        return {}
    line = m.group(0)
    out = {re.sub(r"\W+", "_", name.strip().lower()) + "_s": float(v) for name, v in _PART.findall(line)}
    hits = re.search(r"(\d+) program\(s\) loaded from the compilation cache", line)
    if hits:
        out["compile_cache_hits"] = int(hits.group(1))
    return out


def engine_seconds(breakdown: dict) -> float | None:
    """The engine's part of a jaxexp run (compile, init, training, checkpoints): timings.json's total_s,
    or report.md's "Training run" / "Wall time" seconds."""
    for key in ("total_s", "training_run_s", "wall_time_s"):
        if isinstance(breakdown.get(key), (int, float)):
            return float(breakdown[key])
    return None


def jaxexp_breakdown(run_dir: str) -> dict:
    """WORKDIR/timings.json when the engine writes one, else the parsed report.md line."""
    path = os.path.join(run_dir, "timings.json")
    if os.path.exists(path):
        try:
            with open(path) as f:
                return {"source": "timings.json", **json.load(f)}
        except (OSError, ValueError) as e:
            return {"source": "timings.json", "error": str(e)}
    path = os.path.join(run_dir, "report.md")
    if os.path.exists(path):
        with open(path) as f:
            return {"source": "report.md", **parse_wall_line(f.read())}
    return {}


def _read_csv(path: str) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _floats(rows: list[dict], col: str) -> list[float]:
    out = []
    for r in rows:
        try:
            v = float(r.get(col, ""))
        except ValueError:
            continue
        if math.isfinite(v):
            out.append(v)
    return out


def _acc_stats(values: list[float], n: int) -> dict:
    return {
        "best_val_accuracy_max": max(values) if values else None,
        "best_val_accuracy_mean": statistics.fmean(values) if values else None,
        "runs_with_result": len(values),
        "runs": n,
    }


def read_jaxexp(workdir: str, tpe: bool) -> dict:
    """jaxexp's results: best val_accuracy (max/mean over runs) and its timing breakdown."""
    out: dict = {}
    if tpe:
        path = os.path.join(workdir, "trials.csv")
        if os.path.exists(path):
            rows = _read_csv(path)
            out.update(_acc_stats(_floats(rows, "value"), len(rows)))
        batches = sorted(glob.glob(os.path.join(workdir, "batch_*")), key=lambda p: int(p.rsplit("_", 1)[-1]))
        out["batches"] = [{"batch": os.path.basename(b), **jaxexp_breakdown(b)} for b in batches]
        walls = [engine_seconds(b) for b in out["batches"]]
        if walls and all(w is not None for w in walls):
            out["engine_wall_s"] = sum(walls)
    else:
        path = os.path.join(workdir, "members.csv")
        if os.path.exists(path):
            rows = _read_csv(path)
            out.update(_acc_stats(_floats(rows, "best_val_accuracy"), len(rows)))
        out["breakdown"] = jaxexp_breakdown(workdir)
        if engine_seconds(out["breakdown"]) is not None:
            out["engine_wall_s"] = engine_seconds(out["breakdown"])
    return out


def _after_results(r: dict) -> None:
    """Seconds between the results being written and the process's exit (interpreter shutdown, background
    threads), where jaxexp's timings.json counts its ``wall_s`` from process start."""
    res = r.get("result", {})
    last = res.get("batches", [{}])[-1] if res.get("batches") else res.get("breakdown", {})
    if last.get("source") == "timings.json" and isinstance(last.get("wall_s"), (int, float)) and "startup_s" in last:
        res["reported_wall_s"] = last["wall_s"]
        res["exit_after_results_s"] = r["wall_s"] - last["wall_s"]


def read_baseline(out_dir: str) -> dict:
    path = os.path.join(out_dir, "summary.json")
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        s = json.load(f)
    return {
        "best_val_accuracy_max": s.get("max_best_val_accuracy"),
        "best_val_accuracy_mean": s.get("mean_best_val_accuracy"),
        "summary": s,
    }


# ----------------------------------------------------------------------------- checks before timing

CHECK_SNIPPET = r"""
import importlib.util, json, sys
sys.path.insert(0, {baselines!r})
import numpy as np
import digits_data
import jaxexp

def load(name):
    spec = importlib.util.spec_from_file_location(name[:-3], {configs!r} + "/" + name)
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    return m.get_config()

out = {{}}
cfg = load("digits192.py")
task, mine = jaxexp.load_task(cfg.task), digits_data.digits()
out["data_identical"] = all(np.array_equal(getattr(task, k), mine[k]) for k in mine)
out["data_shapes"] = {{k: list(v.shape) for k, v in mine.items()}}
table = jaxexp.members_table(cfg)
grid = digits_data.grid()
got = [
    {{"dropout": r["model.dropout"], "lr": r["train.lr"], "weight_decay": r["train.weight_decay"]}}
    for r in table.drop_duplicates("config_id").sort_values("config_id").to_dict("records")
]
out["grid_identical"] = got == grid and len(table) == 3 * len(grid)
out["digits192_members"] = len(table)
tpe = load("digits_tpe.py")
space = {{p.name: (p.kind, p.low, p.high) for p in jaxexp.search.space.parse(tpe.sweep.space)}}
want = {{"train.lr": ("log_uniform", 1e-4, 3e-2), "train.weight_decay": ("log_uniform", 1e-5, 1e-1),
        "model.dropout": ("uniform", 0.0, 0.5)}}
out["tpe_space_identical"] = space == want
out["tpe_batches_slots_seeds"] = [tpe.sweep.generations, tpe.sweep.slots, tpe.sweep.seeds]
single = load("digits_single.py")
b = digits_data.BASE
out["single_config_identical"] = (
    (single.train.lr, single.train.weight_decay, single.model.dropout) == (b["lr"], b["weight_decay"], b["dropout"])
    and single.sweep.seeds == 1 and len(jaxexp.members_table(single)) == 1
)
for c in (cfg, tpe, single):
    same = (tuple(c.model.hidden), c.train.batch_size, c.train.epochs, c.train.optimizer, c.model.input_dropout)
    out.setdefault("training_identical", True)
    out["training_identical"] &= same == (digits_data.HIDDEN, digits_data.BATCH_SIZE, digits_data.EPOCHS, "adamw", 0.0)
print(json.dumps(out))
"""


def preflight_checks(timeout: float) -> dict:
    """Data, grid, TPE space and training settings of the baselines against jaxexp's configs (a subprocess)."""
    code = CHECK_SNIPPET.format(baselines=BASELINES, configs=CONFIGS)
    env = _env()
    env["JAXEXP_NO_CPU_SPLIT"] = "1"
    try:
        p = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f}s"}
    if p.returncode != 0:
        return {"error": f"exit status {p.returncode}", "stderr_tail": p.stderr[-2000:]}
    return json.loads(p.stdout.strip().splitlines()[-1])


def missing_packages(names) -> list[str]:
    return [n for n in names if importlib.util.find_spec(n) is None]


# ----------------------------------------------------------------------------- the variants


def variants(workload: str, spec: dict, torch_threads: list[int]) -> list[dict]:
    """[{name, label, kind, baseline?, cache?}] in run order: baselines, then jaxexp cold, warm."""
    out = []
    if workload in ("A", "B"):
        for t in torch_threads:
            what = "torch loop" if workload == "A" else "optuna+torch"
            out.append(
                {
                    "name": f"baseline_t{t}" if t else "baseline",
                    "label": f"{what}, " + (f"{t} thread" + ("s" if t > 1 else "") if t else "default threads"),
                    "short": ("torch" if workload == "A" else "optuna") + (f" {t}thr" if t else " default-thr"),
                    "kind": "baseline",
                    "threads": t,
                }
            )
    else:
        out.append(
            {
                "name": "baseline",
                "label": "JAX jit step, Python loop",
                "short": "jax loop",
                "kind": "baseline",
                "threads": 0,
            }
        )
    out.append({"name": "jaxexp_cold", "label": "jaxexp, cold compile cache", "kind": "jaxexp", "cache": "cold"})
    out.append({"name": "jaxexp_warm", "label": "jaxexp, warm compile cache", "kind": "jaxexp", "cache": "warm"})
    return out


def baseline_cmd(workload: str, spec: dict, out_dir: str, threads: int) -> list[str]:
    cmd = [sys.executable, os.path.join(BASELINES, WORKLOADS[workload]["baseline"]), "--out", out_dir]
    cmd += ["--epochs", str(spec["epochs"])]
    if workload == "A":
        cmd += ["--seeds", str(spec["seeds"])]
    elif workload == "B":
        cmd += ["--trials", str(spec["batches"] * spec["slots"])]
    if threads and workload in ("A", "B"):
        cmd += ["--threads", str(threads)]
    return cmd


def jaxexp_cmd(workload: str, spec: dict, workdir: str, quick: bool) -> list[str]:
    cmd = [*_jaxexp_cmd(), "sweep", f"--config={os.path.join(CONFIGS, WORKLOADS[workload]['config'])}"]
    cmd.append(f"--workdir={workdir}")
    if quick:
        cmd.append(f"--config.train.epochs={spec['epochs']}")
        if workload == "A":
            cmd.append(f"--config.sweep.seeds={spec['seeds']}")
        elif workload == "B":
            cmd += [f"--config.sweep.generations={spec['batches']}", f"--config.sweep.slots={spec['slots']}"]
    return cmd


def units(workload: str, spec: dict) -> int:
    """Training runs per process."""
    if workload == "A":
        return 64 * spec["seeds"]
    if workload == "B":
        return spec["batches"] * spec["slots"]
    return 1


# ----------------------------------------------------------------------------- summary and table


def summarize(report: dict) -> None:
    for wl in report["workloads"].values():
        if "skipped" in wl:
            continue
        for v in wl["variants"].values():
            walls = [r["wall_s"] for r in v["runs"] if "error" not in r]
            v["summary"] = (
                {
                    "repeats": len(walls),
                    "median_s": statistics.median(walls),
                    "min_s": min(walls),
                    "max_s": max(walls),
                    "runs_per_s_median": wl["runs_per_process"] / statistics.median(walls),
                }
                if walls
                else {"repeats": 0}
            )
            accs = [r.get("result", {}).get("best_val_accuracy_max") for r in v["runs"]]
            means = [r.get("result", {}).get("best_val_accuracy_mean") for r in v["runs"]]
            accs, means = [a for a in accs if a is not None], [a for a in means if a is not None]
            v["summary"]["best_val_accuracy_max"] = statistics.median(accs) if accs else None
            v["summary"]["best_val_accuracy_mean"] = statistics.median(means) if means else None
            busy = [r.get("contention", 0.0) for r in v["runs"]]
            v["summary"]["contention_max"] = max(busy) if busy else None
            if v["kind"] == "jaxexp":
                eng = [r["result"]["engine_wall_s"] for r in v["runs"] if "engine_wall_s" in r.get("result", {})]
                if eng:
                    v["summary"]["engine_wall_s_median"] = statistics.median(eng)
        ratios = []
        bases = [k for k, v in wl["variants"].items() if v["kind"] == "baseline"]
        jaxs = [k for k, v in wl["variants"].items() if v["kind"] == "jaxexp"]
        for b in bases:
            for j in jaxs:
                per = []
                for rb in wl["variants"][b]["runs"]:
                    rj = next((r for r in wl["variants"][j]["runs"] if r["repeat"] == rb["repeat"]), None)
                    if rj and "error" not in rb and "error" not in rj:
                        per.append(rb["wall_s"] / rj["wall_s"])
                ratios.append(
                    {
                        "baseline": b,
                        "jaxexp": j,
                        "per_repeat": per,
                        "median": statistics.median(per) if per else None,
                    }
                )
        wl["ratios"] = ratios


def table(report: dict) -> str:
    lines = []
    m = report["machine"]
    lines.append(
        f"machine: {m['cpu_model'] or 'cpu'}, {m['cpus_available']} cores available; jax {m['versions']['jax']}, "
        f"torch {m['versions']['torch']}, optuna {m['versions']['optuna']}; repeats {report['args']['repeats']}"
        + (" (--quick)" if report["args"]["quick"] else "")
    )
    hdr = (
        f"{'workload':<10}{'variant':<34}{'runs':>5}{'median s':>10}{'min s':>8}{'max s':>8}"
        f"{'runs/s':>8}{'engine s':>9}{'best acc':>9}{'mean acc':>9}{'other':>7}  ratio baseline/jaxexp"
    )
    lines += ["", hdr, "-" * len(hdr)]
    for name, wl in report["workloads"].items():
        if "skipped" in wl:
            lines.append(f"{name:<10}skipped: {wl['skipped']}")
            continue
        labels = {k: v.get("short", v["label"]) for k, v in wl["variants"].items()}
        for key, v in wl["variants"].items():
            s = v.get("summary", {})
            errs = [r["error"] for r in v["runs"] if "error" in r]
            if not s.get("repeats"):
                lines.append(f"{name:<10}{v['label']:<34}  failed: {errs[0] if errs else 'not run'}")
                continue
            ratio = ""
            if v["kind"] == "jaxexp":
                parts = [
                    f"{labels[r['baseline']]} {_fmt(r['median'], '.2f')}x" for r in wl["ratios"] if r["jaxexp"] == key
                ]
                ratio = "; ".join(parts)
            lines.append(
                f"{name:<10}{v['label']:<34}{wl['runs_per_process']:>5}{_fmt(s['median_s'], '.1f'):>10}"
                f"{_fmt(s['min_s'], '.1f'):>8}{_fmt(s['max_s'], '.1f'):>8}{_fmt(s['runs_per_s_median'], '.2f'):>8}"
                f"{_fmt(s.get('engine_wall_s_median'), '.1f'):>9}"
                f"{_fmt(s.get('best_val_accuracy_max'), '.4f'):>9}{_fmt(s.get('best_val_accuracy_mean'), '.4f'):>9}"
                f"{_fmt(s.get('contention_max'), '.2f'):>7}  {ratio}" + (f"  ({len(errs)} failed)" if errs else "")
            )
        for v in wl["variants"].values():
            sums = [r["result"]["summary"] for r in v["runs"] if "summary" in r.get("result", {})]
            run_s = [x["run_s_median"] for x in sums if isinstance(x.get("run_s_median"), (int, float))]
            mean_s = [x["train_s"] / wl["runs_per_process"] for x in sums if isinstance(x.get("train_s"), (int, float))]
            if v["kind"] == "baseline" and run_s:
                threads = sums[-1].get("torch_threads")
                extra = f"; {threads} torch thread(s)" if threads else ""
                lines.append(
                    f"{'':<10}  {v['label']}: a training run inside the process takes {statistics.median(run_s):.3f} s "
                    f"(median run), {_fmt(statistics.median(mean_s) if mean_s else None, '.3f')} s (mean run){extra}"
                )
    lines.append("")
    lines.append(
        "Wall clock of whole processes, spawn to exit (imports, data, compile, training, outputs). runs: training "
        "runs per process. engine s: jaxexp's engine part (compile, init, training, checkpoints: timings.json "
        "total_s, else report.md's timing line; TPE: summed over batches); the rest of its wall is process start, "
        "imports, data, checks and writing the outputs. best/mean acc: best validation accuracy, the max and the "
        "mean over the runs (median over repeats). other: the most cores other processes (+ host steal) took "
        f"during a repeat of the variant (> {SUSPECT_CORES:g}: noisy). ratio: baseline wall / jaxexp wall, "
        "median of the per-repeat ratios (each within one repeat); > 1 means jaxexp is faster."
    )
    return "\n".join(lines)


# ----------------------------------------------------------------------------- main


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--repeats", type=int, default=3, help="repeats of every variant, interleaved (default 3)")
    p.add_argument("--quick", action="store_true", help="smoke run: 3 epochs, A 64x1 runs, B 2 batches of 8")
    p.add_argument("--only", default="A,B,C", help="comma list of workloads A, B, C (default all)")
    p.add_argument(
        "--torch-threads",
        default="default,1",
        help="the PyTorch baselines' thread counts, comma list; 'default' = torch's own (default: default,1)",
    )
    p.add_argument(
        "--out",
        default=None,
        help=f"JSON path (default {os.path.relpath(DEFAULT_OUT, ROOT)}; --quick: {os.path.relpath(QUICK_OUT, ROOT)})",
    )
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds before a process is killed")
    p.add_argument(
        "--retries",
        type=int,
        default=1,
        help="reruns of a process that failed (e.g. while jaxexp/ was being edited); cold ones with a fresh cache",
    )
    p.add_argument("--keep", default="", help="keep the workdirs and logs in this folder (default: a temp folder)")
    args = p.parse_args(argv)
    if args.repeats < 1:
        p.error("--repeats: must be >= 1")
    only = [w.strip().upper() for w in args.only.split(",") if w.strip()]
    for w in only:
        if w not in WORKLOADS:
            p.error(f"--only: unknown workload {w!r}; use A, B, C")
    try:
        threads = [0 if t.strip() == "default" else int(t) for t in args.torch_threads.split(",") if t.strip()]
    except ValueError:
        p.error("--torch-threads: a comma list of 'default' and positive integers")
    if not threads or any(t < 0 for t in threads):
        p.error("--torch-threads: a comma list of 'default' and positive integers")
    out_path = args.out or (QUICK_OUT if args.quick else DEFAULT_OUT)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    missing_common = missing_packages(COMMON_NEEDS)
    if missing_common:
        log(f"sweep_e2e: missing {', '.join(missing_common)} (pip install 'jaxexp[data]'); nothing to run")
        return 2

    report = {
        "benchmark": "benchmarks/sweep_e2e.py",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "args": {
            "repeats": args.repeats,
            "quick": args.quick,
            "only": only,
            "torch_threads": ["default" if t == 0 else t for t in threads],
        },
        "machine": _machine(),
        "git": provenance.git_state(ROOT),
        "jaxexp_command": _jaxexp_cmd(),
        "notes": list(NOTES),
        "workloads": {},
    }
    t_start = time.perf_counter()
    log("checking that the baselines' data, grid, space and training match jaxexp's configs ...")
    checks = preflight_checks(min(args.timeout, 600.0))
    report["checks"] = checks
    bad = [k for k, v in checks.items() if isinstance(v, bool) and not v] or (["error"] if "error" in checks else [])
    if bad:
        log(f"sweep_e2e: warning: checks failed: {', '.join(bad)}: {json.dumps(checks)[:1500]}")
        report["notes"].append(f"CHECKS FAILED: {', '.join(bad)} (the baselines may not do the same work)")
    else:
        log("  ok: " + ", ".join(k for k, v in checks.items() if v is True))

    plans = {}
    for w in only:
        spec = WORKLOADS[w]["quick" if args.quick else "full"]
        entry = {"title": WORKLOADS[w]["title"], "spec": spec, "runs_per_process": units(w, spec)}
        miss = missing_packages(WORKLOADS[w]["needs"])
        if miss:
            entry["skipped"] = "; ".join(f"{m} is not installed ({EXTRAS[m]})" for m in miss)
            log(f"workload {w} skipped: {entry['skipped']}")
        else:
            entry["variants"] = {
                v["name"]: {**v, "runs": []} for v in variants(w, spec, threads if w in ("A", "B") else [0])
            }
        report["workloads"][w] = entry
        plans[w] = spec

    tmp = args.keep or tempfile.mkdtemp(prefix="jaxexp-e2e-")
    os.makedirs(tmp, exist_ok=True)
    report["scratch"] = tmp
    try:
        for rep in range(args.repeats):
            for w in only:
                entry = report["workloads"][w]
                if "skipped" in entry:
                    continue
                spec = plans[w]
                cache = os.path.join(tmp, f"cache_{w}_{rep}")
                shutil.rmtree(cache, ignore_errors=True)
                for key, v in entry["variants"].items():
                    failed = []
                    for attempt in range(args.retries + 1):
                        run_dir = os.path.join(tmp, f"{w}_{key}_{rep}" + (f"_retry{attempt}" if attempt else ""))
                        shutil.rmtree(run_dir, ignore_errors=True)
                        if v["kind"] == "baseline":
                            cmd, env = baseline_cmd(w, spec, run_dir, v["threads"]), _env()
                        else:
                            cmd, env = jaxexp_cmd(w, spec, run_dir, args.quick), _env(cache)
                            if v["cache"] == "cold":
                                shutil.rmtree(cache, ignore_errors=True)
                                os.makedirs(cache)
                        again = f" (retry {attempt})" if attempt else ""
                        log(f"[repeat {rep + 1}/{args.repeats}] {w} {v['label']}{again} (load {_loadavg()}) ...")
                        r = run_process(cmd, env, run_dir + ".log", args.timeout)
                        r["repeat"] = rep
                        r["cmd"] = [os.path.relpath(c, ROOT) if c.startswith(ROOT) else c for c in cmd]
                        if "error" not in r:
                            r["result"] = (
                                read_baseline(run_dir) if v["kind"] == "baseline" else read_jaxexp(run_dir, w == "B")
                            )
                            _after_results(r)
                            break
                        log(f"  failed: {r['error']}\n{r.get('log_tail', '')[-1500:]}")
                        failed.append(r)
                    if failed and "error" not in r:
                        r["failed_attempts"] = failed
                    v["runs"].append(r)
                    acc = r.get("result", {}).get("best_val_accuracy_max")
                    status = r.get("error") or f"best val_accuracy {_fmt(acc, '.4f')}"
                    busy = r.get("contention", 0.0)
                    log(
                        f"  {r['wall_s']:.1f}s, cpu {r['cpu_util']:.2f} cores, rss {r['maxrss_mb']:.0f} MB, "
                        f"other {busy:.2f} cores; {status}"
                        + (" (noisy: other processes were busy)" if busy > SUSPECT_CORES else "")
                    )
                    summarize(report)
                    _write_json(report, out_path)
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    git_end = provenance.git_state(ROOT)
    if git_end != report["git"]:
        report["git_at_end"] = git_end
        report["notes"].append("jaxexp/ changed while the benchmark ran (git / git_at_end)")
        log("warning: jaxexp/ changed while the benchmark ran (see git / git_at_end in the JSON)")
    summarize(report)
    report["total_wall_s"] = time.perf_counter() - t_start
    report["table"] = table(report)
    _write_json(report, out_path)
    print(report["table"])
    print(f"\nwrote {out_path} ({report['total_wall_s']:.0f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
