"""The Task record every task source returns, and its checks."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from jaxexp.errors import DataError

KINDS = ("regression", "classification")

# Per-epoch metrics a task kind reports (history.csv columns besides epoch/member).
METRICS = {
    "regression": ("train_loss", "val_loss", "val_mse", "val_mae"),
    "classification": ("train_loss", "val_loss", "val_accuracy"),
}


class Task(NamedTuple):
    """Train/validation arrays shared by every member of a bucket.

    x_*: float32 [n, features]. y_*: float32 [n, outputs] (regression) or
    int32 [n] class ids (classification).
    """

    name: str
    kind: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    n_outputs: int
    info: dict
    # Example groups (per-group metrics, curriculum weights): int32 ids [n] into
    # group_names; group_levels[g] is 0 easy, 1 medium, 2 hard. One group "all" by default.
    g_train: np.ndarray | None = None
    g_val: np.ndarray | None = None
    group_names: tuple[str, ...] = ("all",)
    group_levels: tuple[int, ...] = (0,)

    @property
    def n_features(self) -> int:
        return self.x_train.shape[1]

    @property
    def n_groups(self) -> int:
        return len(self.group_names)

    @property
    def groups(self) -> tuple[np.ndarray, np.ndarray]:
        """(train, val) group ids, zeros for an ungrouped task."""
        if self.g_train is None:
            return np.zeros(len(self.x_train), np.int32), np.zeros(len(self.x_val), np.int32)
        return self.g_train, self.g_val


def standardize(task: Task) -> Task:
    """Z-scores features (and regression targets) with training statistics.

    A task with ``info["target_units"]`` keeps its target scale (only centres
    it), so its MSE stays in those units (the grouped task's log2-MSE).
    """

    def z(train, val):
        mu, sd = train.mean(0), train.std(0)
        sd = np.where(sd > 0, sd, 1.0)
        return ((train - mu) / sd).astype(np.float32), ((val - mu) / sd).astype(np.float32)

    x_train, x_val = z(task.x_train, task.x_val)
    y_train, y_val = task.y_train, task.y_val
    info = dict(task.info)
    if task.kind == "regression":
        info["target_mean"] = task.y_train.mean(0).tolist()
        if info.get("target_units"):
            mu = task.y_train.mean(0)
            y_train, y_val = (task.y_train - mu).astype(np.float32), (task.y_val - mu).astype(np.float32)
            info["target_std"] = [1.0] * task.y_train.shape[1]
        else:
            y_train, y_val = z(task.y_train, task.y_val)
            info["target_std"] = task.y_train.std(0).tolist()
    return task._replace(x_train=x_train, y_train=y_train, x_val=x_val, y_val=y_val, info=info)


MAX_MAGNITUDE = 1e18  # float32 squares overflow above ~1.8e19: standardising would zero the column


def _check_magnitude(name: str, what: str, a: np.ndarray) -> None:
    """Values too large for float32 statistics (e.g. a 1e30 "missing" sentinel)."""
    big = np.abs(a) >= MAX_MAGNITUDE
    if big.any():
        at = np.argwhere(big)[0]
        where = f"row {at[0]}" + (f", column {at[1]}" if len(at) > 1 else "")
        raise DataError(
            f"{name}: {what} has |value| >= {MAX_MAGNITUDE:.0e} ({float(a[tuple(at)]):.3g} at {where}): too large "
            "for float32 training (a sentinel for missing values?); clean or rescale the data"
        )


def make_task(name: str, kind: str, x_train, y_train, x_val, y_val, info=None, n_classes=None) -> Task:
    """Builds a Task from arrays after checking shapes, dtypes and finiteness."""
    if kind not in KINDS:
        raise DataError(f"task.kind: unknown kind {kind!r}; use 'regression' or 'classification'")
    arrays = {}
    for split, x, y in (("train", x_train, y_train), ("val", x_val, y_val)):
        for what, a in (("x", x), ("y", y)):
            if np.iscomplexobj(a):  # a cast to float32 would drop the imaginary part silently
                raise DataError(
                    f"{name}: {what}_{split} is complex; give real numbers (e.g. real and imaginary columns)"
                )
        try:
            x = np.asarray(x, dtype=np.float32)
        except (TypeError, ValueError):
            raise DataError(f"{name}: x_{split} is not numeric; encode features as numbers") from None
        if x.ndim == 1:
            x = x[:, None]
        if x.ndim != 2:
            raise DataError(f"{name}: x_{split} must be 2-D [rows, features], got shape {x.shape}")
        y = np.asarray(y)
        if not (np.issubdtype(y.dtype, np.number) or y.dtype == bool):
            raise DataError(f"{name}: y_{split} is not numeric ({y.dtype}); encode labels as integers 0..C-1")
        if y.shape[0] != x.shape[0]:
            raise DataError(
                f"{name}: x_{split} has {x.shape[0]} rows but y_{split} has {y.shape[0]}; give one target per row"
            )
        if x.shape[0] == 0:
            raise DataError(f"{name}: the {split} split is empty")
        if not np.isfinite(x).all():
            bad = np.argwhere(~np.isfinite(x))[0]
            raise DataError(f"{name}: x_{split} has NaN/inf (first at row {bad[0]}, feature {bad[1]}); clean the data")
        _check_magnitude(name, f"x_{split}", x)
        if kind == "classification":
            if y.ndim != 1:
                raise DataError(f"{name}: classification targets must be 1-D class ids, got shape {y.shape}")
            if not np.isfinite(y.astype(np.float64)).all() or (y != np.round(y)).any() or (y < 0).any():
                raise DataError(f"{name}: classification targets must be integer class ids >= 0")
            y = y.astype(np.int32)
        else:
            y = np.asarray(y, dtype=np.float32)
            if y.ndim == 1:
                y = y[:, None]
            if not np.isfinite(y).all():
                bad = int(np.argwhere(~np.isfinite(y))[0][0])
                raise DataError(f"{name}: y_{split} has NaN/inf (first at row {bad}); clean the data")
            _check_magnitude(name, f"y_{split}", y)
        arrays[split] = (x, y)
    (xt, yt), (xv, yv) = arrays["train"], arrays["val"]
    if xt.shape[1] != xv.shape[1]:
        raise DataError(f"{name}: train has {xt.shape[1]} features but val has {xv.shape[1]}")
    if kind == "classification":
        n_out = int(n_classes or max(yt.max(), yv.max()) + 1)
        if n_out < 2:
            raise DataError(f"{name}: classification needs at least 2 classes")
    else:
        if yt.shape[1] != yv.shape[1]:
            raise DataError(f"{name}: train has {yt.shape[1]} targets but val has {yv.shape[1]}")
        n_out = yt.shape[1]
    return Task(name, kind, xt, yt, xv, yv, n_out, dict(info or {}))


def split_indices(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic shuffled (train, val) row indices."""
    if not 0.0 < val_fraction < 1.0:
        raise DataError(f"task.val_fraction: must be in (0, 1), got {val_fraction}")
    perm = np.random.default_rng(seed).permutation(n)
    n_val = max(1, int(round(n * val_fraction)))
    if n_val >= n:
        raise DataError(f"task.val_fraction: leaves no training rows for {n} rows")
    return perm[n_val:], perm[:n_val]


def split(x: np.ndarray, y: np.ndarray, val_fraction: float, seed: int):
    """Deterministic shuffled train/val split."""
    t, v = split_indices(len(x), val_fraction, seed)
    return x[t], y[t], x[v], y[v]


def with_groups(task: Task, g_train, g_val, medium: str = "", hard: str = "", field: str = "task.group") -> Task:
    """Attaches per-example group labels (any values; named by their string form)
    and difficulty levels (comma-separated group names; the rest are easy)."""
    g_train, g_val = np.asarray(g_train).astype(str), np.asarray(g_val).astype(str)
    if len(g_train) != len(task.x_train) or len(g_val) != len(task.x_val):
        raise DataError(f"{field}: one group label per row is needed ({len(g_train)}/{len(task.x_train)} train)")
    names = tuple(sorted(set(g_train) | set(g_val)))
    levels = [0] * len(names)
    for level, spec, level_field in ((1, medium, "task.medium_groups"), (2, hard, "task.hard_groups")):
        for name in [s.strip() for s in spec.split(",") if s.strip()]:
            if name not in names:
                raise DataError(f"{level_field}: no group {name!r} in the data (groups: {', '.join(names[:20])})")
            levels[names.index(name)] = level
    code = {n: i for i, n in enumerate(names)}
    return task._replace(
        g_train=np.asarray([code[g] for g in g_train], np.int32),
        g_val=np.asarray([code[g] for g in g_val], np.int32),
        group_names=names,
        group_levels=tuple(levels),
    )
