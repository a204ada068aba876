#!/usr/bin/env python
"""Baseline of benchmarks/sweep_e2e.py workload B: Optuna's TPESampler in its
usual sequential loop (``study.optimize``), each trial training the PyTorch MLP
of torch_mlp.py once (one seed), the value its best validation accuracy.

The search space is benchmarks/configs/digits_tpe.py's (jaxexp's
sweep.strategy="tpe" run it is compared with): lr log-uniform [1e-4, 3e-2],
weight_decay log-uniform [1e-5, 1e-1], dropout uniform [0, 0.5]; the sampler is
seeded like jaxexp's (``TPESampler(seed=0)``, default settings). Writes
OUT/trials.csv (``study.trials_dataframe()``), OUT/runs.csv, OUT/history.csv and
OUT/summary.json.

    python benchmarks/baselines/optuna_tpe.py --out /tmp/optuna_tpe
    python benchmarks/baselines/optuna_tpe.py --trials 16 --epochs 3 --out /tmp/quick
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

T_START = time.perf_counter()

import digits_data  # noqa: E402
import optuna  # noqa: E402
import torch  # noqa: E402
import torch_mlp  # noqa: E402

# benchmarks/configs/digits_tpe.py's space
SPACE = {
    "lr": (1e-4, 3e-2, True),
    "weight_decay": (1e-5, 1e-1, True),
    "dropout": (0.0, 0.5, False),
}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--trials", type=int, default=64)
    p.add_argument("--epochs", type=int, default=digits_data.EPOCHS)
    p.add_argument("--seed", type=int, default=0, help="TPESampler seed")
    p.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0 = torch's default)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    t_import = time.perf_counter() - T_START
    data = torch_mlp.tensors(digits_data.digits())
    t_data = time.perf_counter() - T_START - t_import
    rows, history = [], []

    def objective(trial: optuna.Trial) -> float:
        cfg = {name: trial.suggest_float(name, lo, hi, log=log) for name, (lo, hi, log) in SPACE.items()}
        r = torch_mlp.train_run(data, cfg["lr"], cfg["weight_decay"], cfg["dropout"], args.epochs, trial.number)
        rows.append({"number": trial.number, **cfg, **{k: v for k, v in r.items() if k != "history"}})
        history.extend({"number": trial.number, **h} for h in r["history"])
        if len(rows) % 16 == 0:  # progress (a line every 16 trials)
            print(f"{len(rows)} trials, {time.perf_counter() - t_opt:.1f}s", flush=True)
        return r["best_val_accuracy"]

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=args.seed))
    t_opt = time.perf_counter()  # read by objective's progress line
    study.optimize(objective, n_trials=args.trials)
    optimize_s = time.perf_counter() - t_opt
    train_s = sum(r["run_s"] for r in rows)
    summary = {
        "trials": len(rows),
        "epochs": args.epochs,
        "sampler": f"TPESampler(seed={args.seed})",
        "optuna": optuna.__version__,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "import_s": t_import,
        "data_s": t_data,
        "optimize_s": optimize_s,
        "train_s": train_s,
        "sampler_s": optimize_s - train_s,  # ask/tell and Optuna's bookkeeping between trials
        "run_s_median": statistics.median(r["run_s"] for r in rows),
        "best_value": study.best_value,
        "best_params": study.best_params,
        **digits_data.run_stats(rows),
    }
    t = time.perf_counter()
    os.makedirs(args.out, exist_ok=True)
    try:
        study.trials_dataframe().to_csv(os.path.join(args.out, "trials.csv"), index=False)
    except ImportError:  # trials_dataframe needs pandas; runs.csv holds the same trials
        pass
    digits_data.write_results(args.out, rows, history, summary)
    summary["write_s"] = time.perf_counter() - t
    summary["total_in_process_s"] = time.perf_counter() - T_START
    digits_data.write_results(args.out, [], [], summary)
    print(
        f"wrote {os.path.join(args.out, 'trials.csv')}: {len(rows)} trials in {optimize_s:.1f}s "
        f"(training {train_s:.1f}s, sampler {summary['sampler_s']:.1f}s); best value {study.best_value:.4f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
