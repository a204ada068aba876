"""Parameter importance: PED-ANOVA (Watanabe, Bansal & Hutter, IJCAI 2023).

Why PED-ANOVA and not an fANOVA-style variance decomposition: fANOVA fits a
random-forest surrogate (an extra dependency, slow, and unstable with the
tens of trials a sweep usually has) and measures importance over the *whole*
space, including regions nobody cares about. PED-ANOVA needs no surrogate: it
asks how differently the top quantile of trials is distributed than all trials,
parameter by parameter, which is the question a next search space answers (it
is what Optuna's ``PedAnovaImportanceEvaluator`` and Optuna Dashboard compute).
It works per parameter on the rows where that parameter is active, so
conditional parameters are handled like the rest of this analysis.

importance(x_d) = sum over a grid of p_all(x) * (p_top(x) / p_all(x) - 1)^2,
the Pearson divergence between the parameter's distribution in the top
quantile (``elite_quantile``, at least 3 trials) and in all trials. Each
density is a Parzen (kernel) estimate on a 50-point grid over the range (on the
log scale for log ranges; one point per integer or per level where fewer):
Gaussian kernels with Scott's-rule bandwidth (at least half a grid step), plus
one prior kernel (mean at the centre, std the grid's width) of weight 1, as
Optuna does; levels are counted with that prior weight spread evenly.
Importances are normalised to sum to 1; ``pearson_divergence`` is the raw value.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats as sps

from jaxexp.analysis import core
from jaxexp.analysis.dims import Dim, to_scale

N_STEPS = 50
PRIOR_WEIGHT = 1.0


def grid_indices(d: Dim, x: np.ndarray, lo: float, hi: float) -> tuple[np.ndarray, int, bool]:
    """(grid index of each value, grid size, categorical?) of a parameter's values."""
    if d.kind != "numeric" or d.choice:
        keys = pd.Series(x).map(core.level_key)
        levels = [core.level_key(v) for v in d.levels] if d.levels else sorted(keys.unique())
        levels += sorted(set(keys) - set(levels))
        pos = {k: i for i, k in enumerate(levels)}
        return keys.map(pos).to_numpy(np.int64), len(levels), True
    if d.integer and not d.log and hi - lo + 1 <= N_STEPS:
        return np.round(x - lo).astype(np.int64), int(hi - lo + 1), False
    s = to_scale(d, x)
    s_lo, s_hi = to_scale(d, [lo, hi])
    if s_hi <= s_lo:
        return np.zeros(len(x), np.int64), 1, False
    idx = np.round((s - s_lo) / (s_hi - s_lo) * (N_STEPS - 1))
    return np.clip(idx, 0, N_STEPS - 1).astype(np.int64), N_STEPS, False


def parzen_pdf(idx: np.ndarray, n_steps: int, categorical: bool) -> np.ndarray:
    """Discrete density over ``n_steps`` grid points of observations at ``idx``."""
    counts = np.bincount(idx, minlength=n_steps).astype(np.float64)
    n = counts.sum()
    if categorical or n_steps == 1:
        return (counts + PRIOR_WEIGHT / n_steps) / (n + PRIOR_WEIGHT)
    grid = np.arange(n_steps, dtype=np.float64)
    obs = np.repeat(grid, counts.astype(np.int64))
    sd = obs.std(ddof=1) if n > 1 else 0.0
    iqr = np.subtract(*np.percentile(obs, [75, 25])) if n > 1 else 0.0
    spread = min(iqr / 1.34, sd) if iqr > 0 else sd
    sigma = max(1.059 * spread * n ** (-0.2), 0.5 / 1.64)  # Scott's rule; >= half a step within 1.64 sigma

    def kernel(mu: float, s: float) -> np.ndarray:
        k = sps.norm.pdf(grid, mu, s)
        return k / k.sum()  # truncated to the grid and renormalised

    mus = grid[counts > 0]
    mix = sum(w * kernel(m, sigma) for m, w in zip(mus, counts[counts > 0]))
    mix = mix + PRIOR_WEIGHT * kernel((n_steps - 1) / 2, float(n_steps))
    return mix / (n + PRIOR_WEIGHT)


def pearson_divergence(p_top: np.ndarray, p_all: np.ndarray) -> float:
    p_top, p_all = p_top + 1e-12, p_all + 1e-12
    return float(p_all @ ((p_top / p_all - 1.0) ** 2))


def ped_anova(configs: pd.DataFrame, dims: list[Dim], metric: str, goal: str, quantile: float) -> pd.DataFrame:
    """One row per parameter: importance (normalised), pearson_divergence, n
    (configurations where active) and n_top (the top quantile of those)."""
    sign = core.goal_sign(goal)
    rows = []
    for d in dims:
        act = configs[d.name].notna().to_numpy()
        part = configs[act]
        n = len(part)
        row = {"parameter": d.name, "n": n, "n_top": 0, "pearson_divergence": np.nan}
        if n >= core.MIN_CONFIGS:
            k = core.n_elites(n, quantile)
            order = np.argsort(sign * part[metric].to_numpy(float), kind="stable")
            x = part[d.name].to_numpy()
            if d.kind == "numeric" and not d.choice:
                x = x.astype(np.float64)
                lo, hi = (d.low, d.high) if d.bounded else (float(x.min()), float(x.max()))
            else:
                lo = hi = math.nan
            idx, steps, cat = grid_indices(d, x, lo, hi)
            div = pearson_divergence(parzen_pdf(idx[order[:k]], steps, cat), parzen_pdf(idx, steps, cat))
            row.update(n_top=k, pearson_divergence=div)
        rows.append(row)
    out = pd.DataFrame(rows, columns=["parameter", "n", "n_top", "pearson_divergence"])
    total = out["pearson_divergence"].sum(min_count=1)
    out.insert(1, "importance", out["pearson_divergence"] / total if total and total > 0 else np.nan)
    out = out.sort_values("importance", ascending=False, na_position="last", kind="stable").reset_index(drop=True)
    out.insert(2, "rank", np.arange(1, len(out) + 1))
    return out
