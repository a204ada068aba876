"""User data from .npz or .csv files.

- .npz: arrays ``x`` and ``<target>`` (default ``y``), or ``x_train``,
  ``y_train``, ``x_val``, ``y_val``.
- .csv: a header row; ``task.target`` names the target column and
  ``task.features`` the comma-separated feature columns ("" = all others).
Without a validation split (``task.val_path`` or the npz ``*_val`` arrays) a
deterministic ``task.val_fraction`` of the rows is held out.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from jaxexp.errors import DataError
from jaxexp.tasks.base import Task, make_task, split_indices, with_groups


def _read_csv(path: str, features: str, target: str, group: str = "") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    try:
        df = pd.read_csv(path)
    except Exception as e:  # pandas raises many types for malformed files
        raise DataError(f"task.path: cannot read CSV {path!r}: {str(e).splitlines()[0]}") from None
    if target not in df.columns:
        raise DataError(f"task.target: column {target!r} not in {path} (columns: {', '.join(map(str, df.columns))})")
    if group and group not in df.columns:
        raise DataError(f"task.group: column {group!r} not in {path} (columns: {', '.join(map(str, df.columns))})")
    if features:
        cols = [c.strip() for c in features.split(",") if c.strip()]
    else:
        cols = [c for c in df.columns if c not in (target, group)]
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise DataError(
            f"task.features: column(s) {missing} not in {path} (columns: {', '.join(map(str, df.columns))})"
        )
    if not cols:
        raise DataError(f"task.features: {path} has no feature columns besides the target {target!r}")
    x = df[cols]
    if not pd.api.types.is_numeric_dtype(df[target]):
        raise DataError(f"task.target: column {target!r} in {path} is not numeric; encode labels as integers 0..C-1")
    non_numeric = [c for c in cols if not pd.api.types.is_numeric_dtype(x[c])]
    if non_numeric:
        raise DataError(f"task.features: column(s) {non_numeric} in {path} are not numeric; encode them first")
    nan_rows = x.isna().any(axis=1) | df[target].isna()
    if nan_rows.any():
        raise DataError(
            f"{path}: {int(nan_rows.sum())} row(s) have NaN "
            f"(first: data row {int(np.argmax(nan_rows.values))}); clean the data"
        )
    g = df[group].to_numpy() if group else None
    return x.to_numpy(np.float32), df[target].to_numpy(), g


def _read_npz(path: str) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}
    except Exception as e:
        raise DataError(f"task.path: cannot read npz {path!r}: {str(e).splitlines()[0]}") from None


def load(cfg) -> Task:
    """Loads a file task from the ``task`` config section (with ``task.group``:
    per-row group labels, see ``base.with_groups``)."""
    task, g_train, g_val = _load(cfg)
    if not cfg.group:
        return task
    return with_groups(task, g_train, g_val, cfg.medium_groups, cfg.hard_groups)


def _load(cfg):
    path = cfg.path
    if not path:
        raise DataError("task.path: task 'file' needs a data file; set --config.task.path=FILE.npz|FILE.csv")
    paths = [path] + ([cfg.val_path] if cfg.val_path else [])
    for p, field in zip(paths, ("task.path", "task.val_path")):
        if not os.path.isfile(p):
            raise DataError(f"{field}: file not found: {p}")
        if os.path.splitext(p)[1] not in (".npz", ".csv"):
            raise DataError(f"{field}: {p} must end in .npz or .csv")
    name = os.path.basename(path)

    def read(p):
        if p.endswith(".csv"):
            return _read_csv(p, cfg.features, cfg.target, cfg.group)
        arrays = _read_npz(p)
        if "x_train" in arrays:
            return arrays
        for key in ("x", cfg.target, *([cfg.group] if cfg.group else [])):
            if key not in arrays:
                raise DataError(
                    f"task.path: {p} has no array {key!r} (arrays: {', '.join(arrays)}); "
                    f"save x and {cfg.target} (or x_train/y_train/x_val/y_val)"
                )
        return arrays["x"], arrays[cfg.target], arrays[cfg.group] if cfg.group else None

    data = read(path)
    if isinstance(data, dict) and cfg.val_path:
        raise DataError(f"task.val_path: {path} already has x_val/y_val; drop val_path or save x and y only")
    if isinstance(data, dict):
        needed = ("x_train", "y_train", "x_val", "y_val")
        groups = (f"{cfg.group}_train", f"{cfg.group}_val") if cfg.group else ()
        missing = [k for k in needed + groups if k not in data]
        if missing:
            raise DataError(f"task.path: {path} has x_train but lacks {missing}")
        task = make_task(name, cfg.kind, *(data[k] for k in needed))
        return task, *((data[k] for k in groups) if groups else (None, None))
    x, y, g = data
    if cfg.val_path:
        val = read(cfg.val_path)
        if isinstance(val, dict):
            raise DataError(f"task.val_path: {cfg.val_path} must hold x and {cfg.target}, not x_train/x_val splits")
        xv, yv, gv = val
        return make_task(name, cfg.kind, x, y, xv, yv), g, gv
    if len(x) != len(y):
        raise DataError(f"{path}: x has {len(x)} rows but {cfg.target} has {len(y)}")
    t, v = split_indices(len(x), cfg.val_fraction, cfg.seed)
    task = make_task(name, cfg.kind, x[t], y[t], x[v], y[v])
    return task, (g[t] if g is not None else None), (g[v] if g is not None else None)
