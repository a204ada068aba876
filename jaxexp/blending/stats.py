"""Plateaus (with exact float64 ties), paired bootstrap, and cross-fitted (held-out)
blends. Why a plateau is flat is in :mod:`jaxexp.blending.flatness`."""

from __future__ import annotations

import dataclasses

import numpy as np

from jaxexp.blending import score as scoremod
from jaxexp.blending.data import BlendData

TIE_RTOL = 1e-12  # float64 scores this close (relative) are exact ties
# The plateau boundary is inclusive: a weighting scoring best + eps (in decimal
# arithmetic) is in, although float64 may round the difference a hair above eps.
PLATEAU_RTOL = TIE_RTOL  # slack on top of eps: PLATEAU_RTOL * max(1, |best|)
MAX_BLOCKS = 20_000  # bootstrap units: rows, groups, or random blocks of rows


def fmt_w(w, names=None) -> str:
    """50/30/20-style percentages (up to 2 decimals)."""
    return "/".join(f"{100 * v:.2f}".rstrip("0").rstrip(".") for v in np.asarray(w))


def plateau_tol(best: float) -> float:
    """Float tolerance added to eps at the plateau boundary (see PLATEAU_RTOL)."""
    return PLATEAU_RTOL * max(1.0, abs(float(best)))


def plateau(w: np.ndarray, scores: np.ndarray, metric: str, eps: float) -> dict:
    """Grid points within ``eps`` of the best, boundary included: a weighting is
    in when ``sign * (score - best) <= eps + PLATEAU_RTOL * max(1, |best|)``, so
    one that scores exactly best + eps is in even when float64 rounds the
    difference above eps. Returns mask, count, fraction, per-weight extent."""
    sign = scoremod.goal_sign(metric)
    best = float(np.min(sign * scores) * sign)
    mask = sign * (scores - best) <= eps + plateau_tol(best)
    sub = w[mask]
    return {
        "eps": eps,
        "best": best,
        "mask": mask,
        "count": int(mask.sum()),
        "fraction": float(mask.mean()),
        "lo": sub.min(axis=0),
        "hi": sub.max(axis=0),
    }


def exact_ties(data: BlendData, w: np.ndarray, scores: np.ndarray, metric: str, post, slack: float, **kw) -> dict:
    """Re-scores every weighting within ``slack`` of the best in float64 and
    returns {"mask" (G,), "count", "best64", "scores64" of those candidates}."""
    sign = scoremod.goal_sign(metric)
    best = np.min(sign * scores) * sign
    cand = np.flatnonzero(sign * (scores - best) <= slack)
    s64 = scoremod.score(data, w[cand], metric, post, **{**kw, "dtype": "float64"})
    best64 = np.min(sign * s64) * sign
    tie = np.abs(s64 - best64) <= TIE_RTOL * max(1.0, abs(best64))
    mask = np.zeros(len(w), bool)
    mask[cand[tie]] = True
    return {"mask": mask, "count": int(tie.sum()), "best64": float(best64), "index": cand, "scores64": s64}


def units(data: BlendData, seed: int = 0, max_blocks: int = MAX_BLOCKS) -> tuple[np.ndarray, int, str]:
    """Bootstrap units per row: groups if given, else rows, else (N > max_blocks)
    a fixed random partition of the rows into max_blocks blocks (for independent
    rows, resampling random blocks gives the same variance as resampling rows)."""
    if data.groups is not None:
        return data.groups, int(data.groups.max()) + 1, "groups"
    n = data.n
    if n <= max_blocks:
        return np.arange(n), n, "rows"
    perm = np.random.default_rng(seed).permutation(n)
    ids = np.empty(n, np.int64)
    ids[perm] = np.arange(n) % max_blocks
    return ids, max_blocks, f"{max_blocks} random blocks of rows"


def unit_sums(data: BlendData, w: np.ndarray, metric: str, post, ids: np.ndarray, m: int, chunk: int = 8):
    """Per-unit sums of r * loss (M, C) and of r (M,), float64."""
    r = data.weights_or_ones()
    out = np.empty((m, len(w)))
    for i in range(0, len(w), chunk):
        loss = scoremod.data_losses(data, w[i : i + chunk], metric, post) * r[:, None]
        for j in range(loss.shape[1]):
            out[:, i + j] = np.bincount(ids, loss[:, j], minlength=m)
    return out, np.bincount(ids, r, minlength=m)


def bootstrap_from_sums(loss_sums: np.ndarray, r_sums: np.ndarray, metric: str, n_boot: int, seed: int):
    """Paired bootstrap: each replicate resamples units with replacement, the
    same resample for every candidate. Returns replicate scores (B, C)."""
    rng = np.random.default_rng(seed)
    m = len(r_sums)
    out = np.empty((n_boot, loss_sums.shape[1]))
    for i in range(0, n_boot, 64):
        b = min(64, n_boot - i)
        counts = np.stack([np.bincount(rng.integers(m, size=m), minlength=m) for _ in range(b)]).astype(np.float64)
        out[i : i + b] = scoremod.finalize((counts @ loss_sums) / (counts @ r_sums)[:, None], metric)
    return out


def bootstrap(data: BlendData, w: np.ndarray, metric: str, post, n_boot: int = 1000, seed: int = 0) -> np.ndarray:
    """Replicate scores (B, C) of the weightings ``w`` (C, K)."""
    ids, m, _ = units(data, seed)
    return bootstrap_from_sums(*unit_sums(data, w, metric, post, ids, m), metric, n_boot, seed + 1)


def ci(reps: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    a = (1 - level) / 2
    return float(np.quantile(reps, a)), float(np.quantile(reps, 1 - a))


def p_beats(a: np.ndarray, b: np.ndarray, metric: str) -> float:
    """P(A scores better than B) over paired replicates (ties count half)."""
    d = scoremod.goal_sign(metric) * (a - b)
    return float(np.mean(d < 0) + 0.5 * np.mean(d == 0))


def make_folds(data: BlendData, n_folds: int, seed: int = 0) -> np.ndarray:
    """Fold id per row: the data's fold column, else a random split (by group
    when groups are given, so no group straddles two folds)."""
    if data.folds is not None:
        return data.folds
    rng = np.random.default_rng(seed)
    if data.groups is not None:
        g = int(data.groups.max()) + 1
        return (rng.permutation(g) % n_folds)[data.groups]
    return rng.permutation(data.n) % n_folds


@dataclasses.dataclass
class CrossFit:
    folds: int
    per_fold_w: np.ndarray  # (F, K) weights chosen on the other folds
    oof: dict  # name -> out-of-fold score (over all rows)
    reps: dict  # name -> bootstrap replicates of the out-of-fold score
    source: str


def cross_fit(
    data: BlendData,
    w_grid: np.ndarray,
    metric: str,
    post,
    folds: np.ndarray,
    n_boot: int = 1000,
    seed: int = 0,
    **score_kw,
) -> CrossFit:
    """Weights tuned on all folds but one (grid best), scored on the held-out
    fold; likewise the best single model (chosen on the other folds) and the
    equal blend. Out-of-fold predictions of all rows are pooled into one score."""
    k, sign = data.k, scoremod.goal_sign(metric)
    r = data.weights_or_ones()
    eye, equal = np.eye(k), np.full((1, k), 1.0 / k)
    fold_ids = np.unique(folds)
    tuned, single = np.empty((data.n, k)), np.empty((data.n, k))
    chosen = []
    for f in fold_ids:
        train = folds != f
        s = scoremod.score(data, w_grid, metric, post, row_weights=r * train, **score_kw)
        wt = w_grid[int(np.argmin(sign * s))]
        s1 = scoremod.score_numpy(dataclasses.replace(data, row_weights=r * train), eye, metric, post)
        held = ~train
        tuned[held], single[held] = wt, eye[int(np.argmin(sign * s1))]
        chosen.append(wt)
    # Per-row OOF loss of each strategy: the row's own weights.
    ids, m, source = units(data, seed)
    eff = data.weights_or_ones()
    cands = {"tuned blend (grid best per fold)": tuned, "best single model (per fold)": single}
    cands["equal blend"] = np.broadcast_to(equal, (data.n, k))
    for i, name in enumerate(data.names):
        cands[f"{name} alone"] = np.broadcast_to(eye[i], (data.n, k))
    sums = np.empty((m, len(cands)))
    for j, wr in enumerate(cands.values()):
        loss = scoremod.own_losses(data, wr, metric, post) * eff
        sums[:, j] = np.bincount(ids, loss, minlength=m)
    r_sums = np.bincount(ids, eff, minlength=m)
    point = scoremod.finalize(sums.sum(0) / r_sums.sum(), metric)
    reps = bootstrap_from_sums(sums, r_sums, metric, n_boot, seed + 2)
    names = list(cands)
    return CrossFit(
        len(fold_ids),
        np.asarray(chosen),
        {n: float(v) for n, v in zip(names, point)},
        {n: reps[:, j] for j, n in enumerate(names)},
        source,
    )
