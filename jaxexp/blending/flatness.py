"""Why the score is flat (:func:`diagnose`): integer targets, predictions on a
coarse lattice (:func:`common_lattice`), few distinct prediction values,
near-duplicate models, clipping, rounding and the score lattice it makes,
thresholded/argmax metrics, and scores rounded for display; with the rows that
change between two tied weightings (:func:`rows_changed`)."""

from __future__ import annotations

import numpy as np

from jaxexp.blending import score as scoremod
from jaxexp.blending.data import BlendData
from jaxexp.blending.stats import TIE_RTOL, fmt_w

LATTICE_DECIMALS = 6  # a common lattice of the predictions is looked for down to q = 1e-6 (times an integer)
LATTICE_COARSE = 1e-4  # ... and called coarse when q >= this x the predictions' standard deviation
CORR_DUPLICATE = 0.999  # model pairs correlating above this are near-duplicates


def _distinct(x: np.ndarray) -> int:
    return len(np.unique(x))


def common_lattice(x, max_decimals: int = LATTICE_DECIMALS) -> float | None:
    """The largest q = m / 10**d (d <= ``max_decimals``, m a whole number) of which
    every value of ``x`` is an integer multiple, or None (zeros lie on any lattice).

    Predictions written with two decimals give q = 0.01 (or 0.05, 0.25 ...: the
    greatest common divisor of the scaled values); full-precision floats give None."""
    x = np.asarray(x, np.float64).ravel()
    x = x[x != 0]
    if not len(x) or not np.isfinite(x).all():
        return None
    head = x[:1000]  # most floats fail on the first values: no full pass for them
    for d in range(max_decimals + 1):
        if np.abs(head * 10.0**d - np.round(head * 10.0**d)).max() > 1e-6:
            continue
        scaled = x * 10.0**d
        whole = np.round(scaled)
        if np.abs(whole).max() >= 2.0**52:
            return None
        if np.abs(scaled - whole).max() <= 1e-6:
            return float(np.gcd.reduce(np.abs(whole).astype(np.int64))) / 10.0**d
    return None


def _score_lattice(metric: str, unit: float, n: int) -> tuple[str, float]:
    """(name, quantum) of the score when every per-row error is a multiple of ``unit``."""
    return ("MAE", unit / n) if metric == "mae" else ("MSE", unit * unit / n)


def diagnose(
    data: BlendData,
    metric: str,
    post: scoremod.Postprocess,
    w_best: np.ndarray,
    w_tie_far: np.ndarray | None,
    n_ties: int,
    n_display: int,
    decimals: int,
    n_points: int = 0,
    n_values: int = 0,
    step: float | None = None,
    listed: tuple | None = None,
) -> dict:
    """Why the score is flat: {"mechanisms": [short names], "findings": [sentences]}.

    Every mechanism it can see is named: integer targets (regression metrics),
    predictions on a coarse lattice (a common q of all predictions,
    :func:`common_lattice`, at least ``LATTICE_COARSE`` x their standard
    deviation), few distinct prediction values, near-duplicate models,
    clipping, rounding of the blend and the score lattice it makes, a
    thresholded/argmax metric, and a score rounded for display (rounding to
    ``decimals`` merges distinct scores: more grid weightings show the best's
    displayed score than tie it exactly, or listed weightings that show one
    score differ in float64).

    ``w_tie_far``: the exactly tied grid weighting farthest from ``w_best``;
    ``step``: the grid step (for the score lattice of lattice predictions);
    ``listed``: (labels, (L, K) weights) of the listed weightings.
    """
    q = common_lattice(data.preds)
    spread = float(np.std(data.preds))
    lattice = q is not None and (spread == 0 or q >= LATTICE_COARSE * spread)
    parts = [  # (findings, mechanisms) of each property of the data and the metric
        _targets(data, metric, post, lattice),
        _coarse_predictions(data),
        _lattice(data, metric, post, q, spread, step) if lattice else ([], []),
        _duplicates(data),
        _clipping(data, post, w_best),
        _rounding_lattice(data, metric, post, n_points, n_values),
        _piecewise_constant(data, metric, post),
    ]
    findings = [f for part, _ in parts for f in part]
    mech = [m for _, part in parts for m in part]
    explains = [m for m in mech if m != "integer targets"]  # integer targets alone make no tie
    if w_tie_far is not None and n_ties > 1:
        changed = rows_changed(data, metric, post, w_best, w_tie_far)
        findings.append(
            f"{n_ties} grid weightings tie exactly (float64); between {fmt_w(w_best)} and {fmt_w(w_tie_far)} "
            f"{changed} of {data.n} rows {change_noun(metric, data.n_classes, post.active)}"
        )
        if not explains:
            mech.append("flat piece of a piecewise-linear metric")
    display = _display_rounding(n_ties, n_display, decimals)
    if display:
        findings.append(display)
        mech.append("score rounded for display")
    merged = _display_merged(data, metric, post, listed, decimals)
    if merged:
        findings.append(merged)
        mech.append("score rounded for display")
    if n_ties <= 1 and n_display <= 1 and not explains and not merged:
        findings.append("the best grid point is unique: no plateau at this step")
    return {"mechanisms": list(dict.fromkeys(mech)), "findings": findings}


def _few(n: int) -> int:
    """At most this many distinct values among ``n`` rows is few (coarse)."""
    return max(2, min(1000, n // 10))


def _targets(data: BlendData, metric: str, post, lattice: bool) -> tuple[list, list]:
    """Integer targets (regression metrics), or targets with few distinct values."""
    y = data.y
    ny = _distinct(y)
    regression = metric in ("mae", "mse", "rmse", "mape") and not data.n_classes
    if regression and np.all(y == np.round(y)):
        why = ""
        if post.round_to > 0 or lattice:
            why = ": with rounded or lattice predictions every per-row error is on a lattice too"
        return [f"targets are integers ({ny} distinct values){why}"], ["integer targets"]
    if ny <= _few(len(y)) and not data.n_classes:  # multiclass: y is all 1 (the true class)
        integer = " (all integers)" if np.all(y == np.round(y)) else ""
        return [f"targets take {ny} distinct values{integer}"], []
    return [], []


def _coarse_predictions(data: BlendData) -> tuple[list, list]:
    """Models whose predictions take few distinct values."""
    findings, mech = [], []
    for i, name in enumerate(data.names):
        nk = _distinct(data.preds[:, i])
        if nk <= _few(data.n):
            findings.append(f"predictions of {name} take {nk} distinct values")
            mech.append("coarse quantisation of predictions")
    return findings, mech


def _lattice(data: BlendData, metric: str, post, q: float, spread: float, step: float | None) -> tuple[list, list]:
    """Every prediction a multiple of ``q`` (coarse against their ``spread``);
    when the targets (and clip bounds) are multiples of q x step too, every grid
    blend's per-row error is, and so the score (the lattice it takes)."""
    y, n = data.y, data.n
    text = f"every model's predictions are multiples of q = {q:g} (standard deviation {spread:.3g})"
    m = round(1.0 / step) if step else 0
    clip_on = [v for v in (post.clip_lo, post.clip_hi) if v is not None]
    unit = q / m if m else 0.0
    units_y = np.append(y, clip_on) / unit if unit > 0 else np.full(1, 0.5)
    on_unit = bool(np.all(np.abs(units_y - np.round(units_y)) <= 1e-6))  # targets (and clip bounds) too
    if (
        on_unit
        and abs(m * step - 1.0) < 1e-9
        and post.round_to == 0
        and metric in ("mae", "mse", "rmse")
        and data.row_weights is None
    ):
        what, quantum = _score_lattice(metric, unit, n)
        text += (
            f", and the targets{' and clip bounds' if clip_on else ''} are multiples of q x step = {unit:g}: at "
            f"step {step:g} every grid blend and per-row error is a multiple of {unit:g}, so the {what} can only "
            f"take multiples of {quantum:.3g}, and distinct weightings can land on the same value"
        )
    return [text], [f"predictions on a coarse lattice (multiples of {q:g})"]


def _duplicates(data: BlendData) -> tuple[list, list]:
    """Model pairs correlating above ``CORR_DUPLICATE``."""
    p, names = data.preds, data.names
    with np.errstate(invalid="ignore", divide="ignore"):  # a constant model has no correlation (NaN)
        corr = np.corrcoef(p.T) if data.n > 1 else np.eye(len(names))
    findings, mech = [], []
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            if np.isfinite(corr[i, j]) and corr[i, j] > CORR_DUPLICATE:
                gap = float(np.mean(np.abs(p[:, i] - p[:, j])))
                findings.append(
                    f"models {names[i]} and {names[j]} correlate at {corr[i, j]:.7f} (mean |difference| {gap:.3g}): "
                    "weight moved between them barely changes the blend"
                )
                mech.append("near-duplicate models")
    return findings, mech


def _clipping(data: BlendData, post, w_best: np.ndarray) -> tuple[list, list]:
    """The share of rows the clip bounds hold at the best weighting."""
    if post.clip_lo is None and post.clip_hi is None:
        return [], []
    blend = data.preds @ w_best
    clipped = np.mean(
        (post.clip_lo is not None and blend <= post.clip_lo) | (post.clip_hi is not None and blend >= post.clip_hi)
    )
    if clipped > 0:
        return [f"{100 * clipped:.1f}% of rows are clipped at the optimum ({post.describe()})"], ["clipping"]
    return [], []


def _rounding_lattice(data: BlendData, metric: str, post, n_points: int, n_values: int) -> tuple[list, list]:
    """Targets and rounded blends on one lattice (so the score is on one), or
    else few distinct scores among the grid's ``n_points``."""
    rq, n = post.round_to, data.n
    on_rq = rq > 0 and np.allclose(data.y / rq, np.round(data.y / rq))
    if on_rq and metric in ("mae", "mse", "rmse") and data.row_weights is None:
        what, lattice_s = _score_lattice(metric, rq, n)
        finding = (
            f"targets and rounded blends are multiples of {rq:g}, so every per-row error is too: the "
            f"{what} can only take multiples of {lattice_s:.3g}, and distinct weightings "
            "land on the same value"
            + (f" (the {n_points:,} grid scores take {n_values:,} distinct values)" if n_points else "")
        )
        return [finding], ["score lattice (integer errors / N)"]
    if n_points and n_values < n_points / 2:
        return [f"the {n_points:,} grid scores take only {n_values:,} distinct values"], []
    return [], []


def _piecewise_constant(data: BlendData, metric: str, post) -> tuple[list, list]:
    """A rounded blend, and accuracy (a threshold or an argmax): the score is
    piecewise constant in the weights."""
    findings, mech = [], []
    if post.round_to > 0:
        findings.append(
            f"blended predictions are {post.describe()}: the score is piecewise constant in the weights, so "
            "neighbouring weightings tie exactly unless some row crosses a rounding boundary"
        )
        mech.append("rounding of the blended prediction")
    if metric == "accuracy" and data.n_classes:
        findings.append(
            f"accuracy takes the argmax of the blended distribution over {data.n_classes} classes: "
            "piecewise constant in the weights"
        )
        mech.append("argmax of the blend (multiclass accuracy)")
    elif metric == "accuracy":
        findings.append("accuracy thresholds the blend at 0.5: piecewise constant in the weights")
        mech.append("thresholded metric (accuracy)")
    return findings, mech


def _display_rounding(n_ties: int, n_display: int, decimals: int) -> str:
    """A sentence when more grid weightings show the best's score at
    ``decimals`` decimals than tie it exactly, else ""."""
    if n_display <= max(n_ties, 1):
        return ""
    if n_ties <= 1:
        return (
            f"no exact ties, but {n_display} grid weightings show the same score at {decimals} decimals: "
            "the differences are below the displayed precision (a score rounded for display)"
        )
    return (
        f"{n_display} grid weightings show the best score at {decimals} decimals but only {n_ties} tie it "
        "exactly (float64): rounding for display merges distinct scores"
    )


def _display_merged(data: BlendData, metric: str, post, listed, decimals: int, max_listed: int = 1000) -> str:
    """A sentence when listed weightings that show one score at ``decimals``
    decimals score differently in float64, else ""."""
    if not listed or listed[1] is None or not 1 < len(listed[1]) <= max_listed:
        return ""
    labels, w = listed
    s = scoremod.score(data, np.asarray(w, np.float64), metric, post, dtype="float64")  # memory-bounded kernel
    shown = np.round(s, decimals)
    for v in np.unique(shown):
        idx = np.flatnonzero(shown == v)
        if len(idx) > 1 and np.ptp(s[idx]) > TIE_RTOL * max(1.0, abs(float(v))):
            some = ", ".join(labels[i] for i in idx[:4]) + (", ..." if len(idx) > 4 else "")
            return (
                f"listed weightings {some} all show {v:.{decimals}f} at {decimals} decimals but score "
                f"{s[idx].min():.10g} to {s[idx].max():.10g} in float64: rounding for display merges distinct scores"
            )
    return ""


def rows_changed(data: BlendData, metric: str, post, a: np.ndarray, b: np.ndarray) -> int:
    """Rows whose (post-processed) prediction differs between weightings ``a``
    and ``b``; for multiclass accuracy, rows right under one and wrong under the other."""
    if metric == "accuracy" and data.margins is not None:
        right = scoremod.data_losses(data, np.stack([a, b]), metric, post)
        return int(np.sum(right[:, 0] != right[:, 1]))
    return int(np.sum(post.apply(data.preds @ a) != post.apply(data.preds @ b)))


def change_noun(metric: str, n_classes: int, post_active: bool) -> str:
    """What ``rows_changed`` counts, after "N of M rows"."""
    if metric == "accuracy" and n_classes:
        return "switch between right and wrong"
    return f"change their {'post-processed ' if post_active else ''}prediction"
