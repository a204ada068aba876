"""The data and the grid the baselines of benchmarks/sweep_e2e.py share (numpy + scikit-learn only).

``digits()`` is jaxexp's ``task.name = "digits"`` rebuilt without jaxexp (so a
baseline process imports neither JAX nor jaxexp): scikit-learn's 8x8 digits,
float32 features, a shuffled split with ``np.random.default_rng(seed)``
(validation share 0.2 -> 359 rows, 1438 for training), features z-scored with
the training mean and std (a zero std counts as 1), as jaxexp.tasks.bundled and
jaxexp.tasks.base do. benchmarks/sweep_e2e.py checks that the arrays are
identical to ``jaxexp.load_task``'s before it times anything.

``GRID`` is benchmarks/configs/digits192.py's space (4 learning rates x 4 weight
decays x 4 dropouts, in jaxexp's grid order: the last parameter varies fastest).
"""

from __future__ import annotations

import csv
import itertools
import json
import os

import numpy as np

# The MLP and its training, as in benchmarks/configs/digits192.py (jaxexp's defaults elsewhere).
HIDDEN = (128, 128)
N_CLASSES = 10
BATCH_SIZE = 64
EPOCHS = 30
B1, B2, EPS = 0.9, 0.999, 1e-8
BASE = {"lr": 1e-3, "weight_decay": 1e-4, "dropout": 0.1}  # jaxexp's defaults / digits192's dropout

GRID_VALUES = {
    "lr": (3e-4, 1e-3, 3e-3, 1e-2),
    "weight_decay": (0.0, 1e-4, 1e-3, 1e-2),
    "dropout": (0.0, 0.1, 0.2, 0.3),
}


def grid() -> list[dict]:
    """The 64 configurations, config_id order (jaxexp orders the space's dotted names:
    model.dropout, train.lr, train.weight_decay; the last varies fastest)."""
    names = ("dropout", "lr", "weight_decay")
    return [dict(zip(names, vals)) for vals in itertools.product(*(GRID_VALUES[n] for n in names))]


def digits(val_fraction: float = 0.2, seed: int = 0) -> dict:
    """{x_train, y_train, x_val, y_val}: float32 features, int64 labels."""
    from sklearn import datasets

    d = datasets.load_digits()
    x, y = np.asarray(d.data, dtype=np.float32), np.asarray(d.target)
    perm = np.random.default_rng(seed).permutation(len(x))
    n_val = max(1, int(round(len(x) * val_fraction)))
    tr, va = perm[n_val:], perm[:n_val]
    x_train, x_val = x[tr], x[va]
    mu, sd = x_train.mean(0), x_train.std(0)
    sd = np.where(sd > 0, sd, 1.0)
    return {
        "x_train": ((x_train - mu) / sd).astype(np.float32),
        "y_train": y[tr].astype(np.int64),
        "x_val": ((x_val - mu) / sd).astype(np.float32),
        "y_val": y[va].astype(np.int64),
    }


def write_results(out_dir: str, rows: list[dict], history: list[dict], summary: dict) -> None:
    """runs.csv (one row per run), history.csv (one row per run and epoch), summary.json."""
    os.makedirs(out_dir, exist_ok=True)
    for name, table in (("runs.csv", rows), ("history.csv", history)):
        if not table:
            continue
        with open(os.path.join(out_dir, name), "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(table[0]))
            w.writeheader()
            w.writerows(table)
    with open(os.path.join(out_dir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
        f.write("\n")


def run_stats(rows: list[dict], key: str = "best_val_accuracy") -> dict:
    vals = np.asarray([r[key] for r in rows], dtype=np.float64)
    return {
        f"max_{key}": float(vals.max()) if len(vals) else float("nan"),
        f"mean_{key}": float(vals.mean()) if len(vals) else float("nan"),
    }
