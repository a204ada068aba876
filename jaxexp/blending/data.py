"""Targets and K model predictions for a blend, from .npz/.csv files or arrays.

- .csv: a header row; ``target`` names the target column; the model columns are
  ``models`` (comma list) or every other numeric column except the named
  row-weight, group and fold columns.
- .npz: an array ``<target>`` (N,) and either ``<preds_key>`` (default
  ``preds``) (N, K) with optional ``names`` (K,), or one 1-D array of length N
  per model. Other key names: ``--target=KEY`` (the same flag that names the
  CSV column) and ``--preds_key=KEY``; a mismatch is one line listing the
  arrays found and those flags. For multiclass
  log-loss and accuracy, ``preds`` is (N, K, C) class probabilities and the
  target holds class indices (log-loss is reduced to the true class's
  probability, accuracy to the true class's margins over the others, see
  ``_true_class``).

Every check raises a one-line :class:`~jaxexp.errors.DataError` naming the
field and the fix.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pandas as pd

from jaxexp.blending import npz
from jaxexp.errors import ConfigError, DataError

# name -> (goal, description)
METRICS = {
    "mae": ("min", "mean absolute error"),
    "rmse": ("min", "root mean squared error"),
    "mse": ("min", "mean squared error"),
    "mape": ("min", "mean absolute percentage error (fraction, not %)"),
    "logloss": ("min", "log-loss of blended probabilities (binary, or multiclass from (N, K, C) inputs)"),
    "accuracy": (
        "max",
        "accuracy of blended probabilities (binary: threshold 0.5; multiclass from (N, K, C) inputs: argmax)",
    ),
}


@dataclasses.dataclass(frozen=True)
class BlendData:
    """Validated float64 arrays of one blending problem.

    y: (N,) targets; preds: (N, K) model predictions; names: K model names;
    row_weights: (N,) >= 0 or None; groups, folds: (N,) int codes or None.
    Multiclass ((N, K, C) input): n_classes = C, y = 1 and preds (N, K) each
    model's probability of the row's true class; for accuracy also margins
    (N, C-1, K), the true class's probability minus each other class's in
    ascending class order, and strict (N, C-1), True where that class precedes
    the true one (argmax picks the first maximum, so it must be beaten, not tied).
    """

    y: np.ndarray
    preds: np.ndarray
    names: tuple[str, ...]
    row_weights: np.ndarray | None = None
    groups: np.ndarray | None = None
    folds: np.ndarray | None = None
    source: str = "arrays"
    n_classes: int = 0  # multiclass: preds hold each model's probability of the true class
    margins: np.ndarray | None = None  # multiclass accuracy only
    strict: np.ndarray | None = None

    @property
    def n(self) -> int:
        return len(self.y)

    @property
    def k(self) -> int:
        return self.preds.shape[1]

    def weights_or_ones(self) -> np.ndarray:
        return np.ones(self.n) if self.row_weights is None else self.row_weights


def check_metric(metric: str) -> str:
    m = str(metric).strip().lower().replace("-", "").replace("_", "")
    m = {"logloss": "logloss", "crossentropy": "logloss", "acc": "accuracy"}.get(m, m)
    if m not in METRICS:
        raise ConfigError(f"--metric: unknown metric {metric!r}; use one of {', '.join(METRICS)}")
    return m


def _codes(values, field: str, where: str) -> np.ndarray:
    v = pd.Series(np.asarray(values))
    if v.isna().any():
        raise DataError(f"{field}: {int(v.isna().sum())} missing value(s) in {where}; give every row a value")
    return pd.factorize(v, sort=True)[0].astype(np.int64)


def from_arrays(
    y,
    preds,
    names=None,
    row_weights=None,
    groups=None,
    folds=None,
    metric: str = "mae",
    source: str = "arrays",
) -> BlendData:
    """Validates and converts arrays: y (N,), preds (N, K)."""
    metric = check_metric(metric)
    y = np.asarray(y)
    preds = np.asarray(preds)
    n_classes, argmax = 0, {}
    if preds.ndim == 3:
        y, preds, n_classes, argmax = _true_class(y, preds, metric, source)
    if y.ndim != 1:
        raise DataError(f"--target: targets must be 1-D (N,), got shape {y.shape} in {source}")
    if preds.ndim != 2:
        raise DataError(f"--preds: predictions must be (N, K), got shape {preds.shape} in {source}")
    k = preds.shape[1]
    names = tuple(str(n) for n in names) if names is not None else tuple(f"model_{i}" for i in range(k))
    if len(names) != k:
        raise DataError(f"--models: {len(names)} name(s) for {k} prediction column(s) in {source}")
    if len(set(names)) != k:
        raise DataError(f"--models: duplicate model names {list(names)} in {source}; name each model once")
    if k < 2:
        raise DataError(
            f"--preds: {k} model column ({', '.join(names) or 'none'}) in {source}; a blend needs K >= 2 models"
        )
    if len(preds) != len(y):
        raise DataError(f"--preds: {len(y)} target(s) but {len(preds)} prediction row(s) in {source}; align the rows")
    if len(y) < 2:  # one row: every weighting that fits it exactly ties, and no statistic exists
        raise DataError(f"--preds: {len(y)} row(s) in {source}; a blend needs at least 2 rows")
    for arr, what in ((y, "target"), (preds, "predictions")):
        if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
            raise DataError(f"--preds: {what} in {source} are not numeric ({arr.dtype}); encode them as numbers")
    y = y.astype(np.float64)
    preds = preds.astype(np.float64)
    bad = ~np.isfinite(y) | ~np.isfinite(preds).all(axis=1)
    if bad.any():
        row = int(np.argmax(bad))
        col = "target" if not np.isfinite(y[row]) else names[int(np.argmax(~np.isfinite(preds[row])))]
        raise DataError(
            f"--preds: {int(bad.sum())} row(s) have NaN/inf (first: row {row}, column {col!r}) in {source}; "
            "clean the data"
        )
    extra = {}
    for arr, field, key in ((row_weights, "--row_weights", "row_weights"), (groups, "--groups", "groups")):
        if arr is not None and len(arr) != len(y):
            raise DataError(f"{field}: {len(arr)} value(s) for {len(y)} rows in {source}; one per row")
        extra[key] = arr
    if folds is not None and len(folds) != len(y):
        raise DataError(f"--folds: {len(folds)} value(s) for {len(y)} rows in {source}; one per row")
    if row_weights is not None:
        rw = np.asarray(row_weights, np.float64)
        if not np.isfinite(rw).all() or (rw < 0).any() or rw.sum() <= 0:
            raise DataError(f"--row_weights: weights in {source} must be finite, >= 0 and not all 0")
        extra["row_weights"] = rw
    if groups is not None:
        extra["groups"] = _codes(groups, "--groups", source)
    if folds is not None:
        f = _codes(folds, "--folds", source)
        if f.max() < 1:
            raise DataError(f"--folds: the fold column in {source} has one value; it needs >= 2 folds")
        extra["folds"] = f
    if metric in ("logloss", "accuracy"):
        if not np.isin(y, (0.0, 1.0)).all():
            raise DataError(f"--target: {metric} needs 0/1 targets in {source}; encode the positive class as 1")
        if (preds < 0).any() or (preds > 1).any():
            raise DataError(f"--preds: {metric} needs probabilities in [0, 1] in {source}; pass P(class 1) per model")
    if metric == "mape" and (y == 0).any():
        raise DataError(f"--target: mape is undefined for {int((y == 0).sum())} zero target(s) in {source}; use mae")
    folds = extra.pop("folds", None)
    return BlendData(y, preds, names, source=source, folds=folds, n_classes=n_classes, **extra, **argmax)


def _true_class(y, preds, metric: str, source: str):
    """Multiclass (N, K, C) probabilities -> exact reductions of the same scores.

    A blend of class distributions gives the true class the probability
    ``q_n . w`` with ``q[n, k] = preds[n, k, y_n]``, so the multiclass
    log-loss ``-log(q_n . w)`` is the binary log-loss of ``q`` against targets
    1: returns (ones (N,), q (N, K), C, {}) and everything downstream (grid,
    exact optimum, bootstrap) applies unchanged. For accuracy, the blend's
    argmax is the true class iff ``D[n, j] . w`` (the true class's margin over
    the j-th other class) is > 0 for the classes before it and >= 0 after it;
    the last item is {"margins": D (N, C-1, K), "strict": (N, C-1)} for
    :mod:`jaxexp.blending.multiclass`.
    """
    if metric not in ("logloss", "accuracy"):
        raise DataError(
            f"--preds: (N, K, C) class probabilities in {source} are supported for --metric=logloss or accuracy "
            f"only, not {metric}; pass (N, K) predictions for regression metrics"
        )
    n, k, c = preds.shape
    if c < 2:
        raise DataError(f"--preds: (N, K, C) class probabilities in {source} have C = {c}; a class needs a rival")
    if y.ndim != 1 or len(y) != n:
        raise DataError(f"--target: {y.shape} labels for {n} rows in {source}; give one class index per row")
    if not np.issubdtype(y.dtype, np.integer) and not (np.isfinite(y).all() and (y == np.round(y)).all()):
        raise DataError(f"--target: multiclass labels in {source} must be class indices 0..{c - 1}")
    labels = y.astype(np.int64)
    if labels.min() < 0 or labels.max() >= c:
        raise DataError(
            f"--target: labels in {source} must be in 0..{c - 1} ({c} classes), got {labels.min()}..{labels.max()}"
        )
    if not np.isfinite(preds).all() or (preds < 0).any() or (preds > 1).any():
        raise DataError(f"--preds: class probabilities in {source} must be finite and in [0, 1]")
    sums = preds.sum(axis=2)
    if not np.allclose(sums, 1.0, atol=1e-3):
        row, model = np.unravel_index(np.argmax(np.abs(sums - 1)), sums.shape)
        raise DataError(
            f"--preds: model {model}'s class probabilities sum to {sums[row, model]:.4g} in row {row} of {source}; "
            "each model's row must sum to 1 (softmax outputs)"
        )
    preds = preds.astype(np.float64)
    q = preds[np.arange(n), :, labels]
    if metric == "logloss":
        return np.ones(n), q, c, {}
    j = np.arange(c - 1)[None, :]
    other = j + (j >= labels[:, None])  # (N, C-1): every class but the true one, ascending
    margins = q[:, None, :] - np.take_along_axis(preds.transpose(0, 2, 1), other[:, :, None], axis=1)
    return np.ones(n), q, c, {"margins": margins, "strict": other < labels[:, None]}


def _split_list(s) -> list[str]:
    if s is None:
        return []
    if isinstance(s, str):
        return [c.strip() for c in s.split(",") if c.strip()]
    return [str(c) for c in s]


def from_frame(
    df: pd.DataFrame,
    target: str = "target",
    models=None,
    row_weights: str | None = None,
    groups: str | None = None,
    folds: str | None = None,
    metric: str = "mae",
    source: str = "DataFrame",
) -> BlendData:
    """A table with a target column and one column per model."""
    cols = [str(c) for c in df.columns]
    df = df.set_axis(cols, axis=1)
    if target not in cols:
        raise DataError(f"--target: column {target!r} not in {source} (columns: {', '.join(cols)}); pass --target=NAME")
    special = {c for c in (target, row_weights, groups, folds) if c}
    for field, c in (("--row_weights", row_weights), ("--groups", groups), ("--folds", folds)):
        if c and c not in cols:
            raise DataError(f"{field}: column {c!r} not in {source} (columns: {', '.join(cols)})")
    names = _split_list(models)
    if names:
        missing = [c for c in names if c not in cols]
        if missing:
            raise DataError(f"--models: column(s) {missing} not in {source} (columns: {', '.join(cols)})")
    else:
        names = [c for c in cols if c not in special and pd.api.types.is_numeric_dtype(df[c])]
        for c in cols:  # a model column with a stray text cell must not vanish from the blend
            if c in special or c in names:
                continue
            numbers = pd.to_numeric(df[c], errors="coerce")
            if numbers.notna().mean() >= 0.5:
                bad = int(np.argmax(numbers.isna().to_numpy() & df[c].notna().to_numpy()))
                raise DataError(
                    f"--preds: column {c!r} in {source} is numeric but for {int(numbers.isna().sum())} cell(s) "
                    f"(first: row {bad}, {str(df[c].iloc[bad])[:30]!r}); fix them, or pass --models without it"
                )
    non_numeric = [c for c in names + [target] if not pd.api.types.is_numeric_dtype(df[c])]
    if non_numeric:
        raise DataError(f"--preds: column(s) {non_numeric} in {source} are not numeric; encode them or drop them")
    return from_arrays(
        df[target].to_numpy(),
        df[names].to_numpy(),
        names,
        df[row_weights].to_numpy() if row_weights else None,
        df[groups].to_numpy() if groups else None,
        df[folds].to_numpy() if folds else None,
        metric,
        source,
    )


def load(
    path: str,
    target: str = "target",
    models=None,
    row_weights: str | None = None,
    groups: str | None = None,
    folds: str | None = None,
    metric: str = "mae",
    preds_key: str = "preds",
) -> BlendData:
    """Reads a .csv or .npz file (see the module docstring).

    .npz keys: ``target`` names the target array (as it names the CSV column);
    ``preds_key`` the stacked (N, K) or (N, K, C) predictions (with optional
    ``names``); without that array, one 1-D array per model (``models``, or every
    other 1-D array). Keys that do not match: one line listing the arrays found
    and the flags that map them (--target, --preds_key, --models)."""
    if not path:
        raise DataError("--preds: missing; pass --preds=FILE.csv|FILE.npz (or --demo)")
    if not os.path.isfile(path):
        raise DataError(f"--preds: file not found: {path}")
    ext = os.path.splitext(path)[1]
    if ext == ".csv":
        try:
            df = pd.read_csv(path)
        except Exception as e:  # pandas raises many types for malformed files
            raise DataError(f"--preds: cannot read CSV {path!r}: {str(e).splitlines()[0]}") from None
        if preds_key != "preds":
            raise DataError(f"--preds_key: names an array of an .npz input; {path} is a CSV (use --models)")
        return from_frame(df, target, models, row_weights, groups, folds, metric, path)
    if ext != ".npz":
        raise DataError(f"--preds: {path} must end in .csv or .npz")
    arrays = npz.read(path, target, _split_list(models), row_weights, groups, folds, preds_key)
    return from_arrays(*arrays, metric, path)
