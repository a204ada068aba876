"""Seed statistics: intervals, correlations and recipe comparisons (scipy).

Only ``scipy.special`` is imported (the distribution functions scipy.stats itself
calls): importing ``scipy.stats`` costs ~0.3 s, 2% of a 192-run sweep's wall time.

All intervals are two-sided 95% Student-t intervals over seeds; comparisons
between recipes use Welch's t-test (unequal variances: recipes differ in how
stable they are, so a pooled variance would be wrong).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

LEVEL = 0.95


def interval(values) -> dict:
    """n, mean, sample std, min, max and the 95% t-interval of the mean."""
    x = np.asarray(values, np.float64)
    x = x[np.isfinite(x)]
    n = len(x)
    out = {"n": n, "mean": np.nan, "std": np.nan, "min": np.nan, "max": np.nan, "ci_low": np.nan, "ci_high": np.nan}
    if n == 0:
        return out
    out.update(mean=x.mean(), min=x.min(), max=x.max())
    if n >= 2:
        sd = x.std(ddof=1)
        half = _t_ppf(0.5 + LEVEL / 2, n - 1) * sd / math.sqrt(n)
        out.update(std=sd, ci_low=x.mean() - half, ci_high=x.mean() + half)
    return out


def correlation(x, y) -> dict:
    """Pearson r and Spearman rho with their two-sided p-values (NaN below 3 pairs
    or for a constant input)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    nan = {"n": int(len(x)), "pearson_r": np.nan, "pearson_p": np.nan, "spearman_rho": np.nan, "spearman_p": np.nan}
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return nan
    r, p = _pearson(x, y)
    rho, sp = _spearman(x, y)
    return {"n": int(len(x)), "pearson_r": r, "pearson_p": p, "spearman_rho": rho, "spearman_p": sp}


def welch(a, b) -> dict:
    """mean(a) - mean(b), its 95% Welch interval and the two-sided p-value."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    out = {"diff": np.nan, "diff_ci_low": np.nan, "diff_ci_high": np.nan, "p_value": np.nan}
    if len(a) == 0 or len(b) == 0:
        return out
    out["diff"] = a.mean() - b.mean()
    if len(a) < 2 or len(b) < 2:
        return out
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = math.sqrt(va + vb)
    if se == 0:
        return out
    dof = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = _t_ppf(0.5 + LEVEL / 2, dof) * se
    p = 2 * _t_sf(abs(out["diff"]) / se, dof)
    out.update(diff_ci_low=out["diff"] - half, diff_ci_high=out["diff"] + half, p_value=p)
    return out


def bh_adjust(p_values) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q-values) of one family of tests.

    NaN p-values (no test: too few seeds, zero variance) stay NaN and are not
    counted: the family is the finite p-values. q_(i) = min over j >= i of
    p_(j) * m / j (sorted ascending), capped at 1; scipy's
    ``false_discovery_control(p, method="bh")`` on the finite values.
    """
    p = np.asarray(p_values, np.float64)
    q = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    m = len(ok)
    if m == 0:
        return q
    order = ok[np.argsort(p[ok], kind="stable")]
    scaled = p[order] * m / np.arange(1, m + 1)
    q[order] = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)
    return q


def compare(members: pd.DataFrame, by: str, column: str, baseline, labels: list) -> pd.DataFrame:
    """One row per label (in ``labels`` order, also for a label without any
    member, e.g. all diverged): the seed interval of ``column`` and its Welch
    difference to the ``baseline`` label."""
    base = members.loc[members[by] == baseline, column]
    rows = []
    for label in labels:
        part = members.loc[members[by] == label, column]
        row = {by: label, "baseline": label == baseline, **interval(part)}
        row.update(welch(part, base) if label != baseline else {"diff": 0.0 if len(part) else np.nan})
        rows.append(row)
    return pd.DataFrame(rows)


def _special():
    from scipy import special  # imported on first use: `import jaxexp` does not load scipy

    return special


def _t_ppf(q: float, dof: float) -> float:
    """Student-t quantile: ``scipy.stats.t.ppf(q, dof)`` (the same special function)."""
    return float(_special().stdtrit(dof, q))


def _t_sf(t: float, dof: float) -> float:
    """Student-t upper tail: ``scipy.stats.t.sf(t, dof)`` (the same special function)."""
    return float(_special().stdtr(dof, -t))


def _pearson(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """``scipy.stats.pearsonr``: r and its two-sided p-value under bivariate normality
    (r is Beta(n/2 - 1, n/2 - 1) on [-1, 1]); x, y: [n] float64, n >= 3, not constant."""
    n = len(x)
    xm, ym = x - x.mean(), y - y.mean()
    # scaled by the largest deviation first, as scipy does (no overflow or underflow of the squares)
    xm, ym = xm / np.abs(xm).max(), ym / np.abs(ym).max()
    r = float(np.clip(np.dot(xm / np.linalg.norm(xm), ym / np.linalg.norm(ym)), -1.0, 1.0))
    a = n / 2 - 1
    p = 2 * float(_special().betainc(a, a, (1 - abs(r)) / 2))  # 2 x the Beta CDF at -|r| (mapped to [0, 1])
    return r, min(p, 1.0)


def _spearman(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """``scipy.stats.spearmanr``: Pearson's r of the average ranks, and its two-sided
    p-value from Student's t with n - 2 degrees of freedom; x, y: [n], not constant."""
    rx, ry = (pd.Series(v).rank(method="average").to_numpy(np.float64) for v in (x, y))
    rho = float(np.corrcoef(rx, ry)[0, 1])
    dof = len(x) - 2
    with np.errstate(divide="ignore"):
        t = rho * math.sqrt(dof / ((rho + 1.0) * (1.0 - rho))) if abs(rho) < 1 else math.inf
    return rho, 2 * _t_sf(abs(t), dof)
