#!/usr/bin/env python
"""Baseline of benchmarks/sweep_e2e.py workload A: the 192 runs of
benchmarks/configs/digits192.py (64 grid configurations x 3 seeds) trained one
at a time in a plain PyTorch loop, the way a sweep is run without jaxexp.

Same data (digits_data.digits: jaxexp's split and scaling), network, optimizer,
batch size and epochs as jaxexp (see torch_mlp.py). torch keeps its default
intra-op thread count unless --threads is given (recorded in summary.json).
Writes OUT/runs.csv (one row per run: config, seed, best/final validation
accuracy), OUT/history.csv (per epoch) and OUT/summary.json.

    python benchmarks/baselines/torch_sweep.py --out /tmp/torch_sweep
    python benchmarks/baselines/torch_sweep.py --epochs 3 --seeds 1 --out /tmp/quick
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

T_START = time.perf_counter()

import digits_data  # noqa: E402
import torch  # noqa: E402
import torch_mlp  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--epochs", type=int, default=digits_data.EPOCHS)
    p.add_argument("--seeds", type=int, default=3, help="seeds per configuration")
    p.add_argument("--configs", type=int, default=0, help="only the first N grid configurations (0 = all 64)")
    p.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0 = torch's default)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    t_import = time.perf_counter() - T_START
    data = torch_mlp.tensors(digits_data.digits())
    t_data = time.perf_counter() - T_START - t_import
    configs = digits_data.grid()
    if args.configs:
        configs = configs[: args.configs]
    rows, history = [], []
    t_train = time.perf_counter()
    for config_id, cfg in enumerate(configs):
        for seed in range(args.seeds):
            # one seed per (configuration, seed) run, as jaxexp gives every member its own key
            r = torch_mlp.train_run(
                data, cfg["lr"], cfg["weight_decay"], cfg["dropout"], args.epochs, 1000 * config_id + seed
            )
            member = config_id * args.seeds + seed
            rows.append(
                {
                    "member": member,
                    "config_id": config_id,
                    "seed": seed,
                    **cfg,
                    **{k: v for k, v in r.items() if k != "history"},
                }
            )
            history += [{"member": member, **h} for h in r["history"]]
            if len(rows) % 16 == 0:  # progress (a line every 16 runs)
                print(f"{len(rows)} runs, {time.perf_counter() - t_train:.1f}s", flush=True)
    train_s = time.perf_counter() - t_train
    run_s = [r["run_s"] for r in rows]
    summary = {
        "runs": len(rows),
        "configs": len(configs),
        "seeds": args.seeds,
        "epochs": args.epochs,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "import_s": t_import,
        "data_s": t_data,
        "train_s": train_s,
        "run_s_median": statistics.median(run_s),
        "run_s_min": min(run_s),
        "run_s_max": max(run_s),
        **digits_data.run_stats(rows),
    }
    t = time.perf_counter()
    digits_data.write_results(args.out, rows, history, summary)
    summary["write_s"] = time.perf_counter() - t
    summary["total_in_process_s"] = time.perf_counter() - T_START
    digits_data.write_results(args.out, [], [], summary)  # summary.json again, with the write time
    print(
        f"wrote {os.path.join(args.out, 'runs.csv')}: {len(rows)} runs in {train_s:.1f}s "
        f"({summary['run_s_median']:.3f}s/run, {summary['torch_threads']} torch threads); "
        f"best val_accuracy {summary['max_best_val_accuracy']:.4f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
