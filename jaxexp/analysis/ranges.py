"""Where the elites sit in each parameter's range: ranges, boundary hits (with their
hypergeometric test), the top level of a choice, and 2-D bins for contours."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as sps

from jaxexp import stats
from jaxexp.analysis.core import BOUNDARY_ALPHA, BOUNDARY_SHARE, MIN_ELITES, ZONE, _levels, goal_sign, level_key
from jaxexp.analysis.dims import Dim, to_scale


def _share(d: Dim, x: np.ndarray) -> float:
    """Fraction of the range [low, high] (on the parameter's scale) that x spans."""
    if len(x) == 0 or not d.bounded or d.high == d.low:
        return np.nan
    if d.choice:  # levels: the span in level positions
        idx = [_level_index(d, v) for v in x]
        return (max(idx) - min(idx)) / max(1, len(d.levels) - 1) if None not in idx else np.nan
    s = to_scale(d, x)
    lo, hi = to_scale(d, [d.low, d.high])
    return float((s.max() - s.min()) / (hi - lo))


def _level_index(d: Dim, v) -> int | None:
    nums = sorted(float(lv) for lv in d.levels)
    try:
        return nums.index(float(v))
    except ValueError:
        return None


def _counts_text(values: pd.Series) -> str:
    vc = values.map(level_key).value_counts()
    return ", ".join(f"{k}:{n}" for k, n in vc.items())


def ranges(configs: pd.DataFrame, dims: list[Dim], elite_mask: np.ndarray) -> pd.DataFrame:
    """Empirical ranges of all configurations vs the elites (active rows only)."""
    rows = []
    for d in dims:
        col = configs[d.name]
        act = col.notna().to_numpy()
        el = act & elite_mask
        row = {
            "parameter": d.name,
            "kind": d.kind + (" (levels)" if d.kind == "numeric" and d.choice else ""),
            "range_source": "declared" if d.declared else "observed",
            "range_low": d.low if d.kind == "numeric" else np.nan,
            "range_high": d.high if d.kind == "numeric" else np.nan,
            "scale": "log" if d.log else "linear",
            "n": int(act.sum()),
            "elites": int(el.sum()),
        }
        if d.kind == "numeric":
            x, xe = col[act].to_numpy(float), col[el].to_numpy(float)
            row.update(
                all_min=x.min() if len(x) else np.nan,
                all_max=x.max() if len(x) else np.nan,
                elite_min=xe.min() if len(xe) else np.nan,
                elite_max=xe.max() if len(xe) else np.nan,
                elite_median=float(np.median(xe)) if len(xe) else np.nan,
                elite_span_pct=100 * _share(d, xe),
            )
        if d.choice or d.kind != "numeric":
            row.update(all_levels=_counts_text(col[act]), elite_levels=_counts_text(col[el]))
        rows.append(row)
    cols = [
        "parameter",
        "kind",
        "range_source",
        "range_low",
        "range_high",
        "scale",
        "n",
        "elites",
        "all_min",
        "all_max",
        "elite_min",
        "elite_max",
        "elite_median",
        "elite_span_pct",
        "all_levels",
        "elite_levels",
    ]
    return pd.DataFrame(rows).reindex(columns=cols)


def boundary_test(d: Dim, x_all: np.ndarray, x_elite: np.ndarray) -> list[dict]:
    """Are the elites piled at a bound of the range? One row per side.

    "At the bound" = in the outer ``ZONE`` (20%) of the range on the
    parameter's scale (log for log distributions); for levels, the extreme level
    (and any other in that zone). A hit needs both: at least ``BOUNDARY_SHARE``
    (50%) of the elites there, and more than chance puts there: the one-sided
    hypergeometric p (drawing that many elites from all configurations, given
    how many of them are at the bound) below ``BOUNDARY_ALPHA`` (0.05). A sweep
    that put many trials at the bound (a grid) therefore needs more elites
    there, and an interior optimum (elites in the middle) never fires.
    """
    if not d.bounded or d.high <= d.low or len(x_elite) < MIN_ELITES:
        return []
    s_all, s_el = to_scale(d, x_all), to_scale(d, x_elite)
    lo, hi = to_scale(d, [d.low, d.high])
    width = ZONE * (hi - lo)
    out = []
    for side, bound, in_zone in (
        ("low", d.low, lambda s: s <= lo + width),
        ("high", d.high, lambda s: s >= hi - width),
    ):
        a, e = int(in_zone(s_all).sum()), int(in_zone(s_el).sum())
        n, k = len(s_all), len(s_el)
        p = float(sps.hypergeom.sf(e - 1, n, a, k)) if e > 0 else 1.0
        edge = lo + width if side == "low" else hi - width
        out.append(
            {
                "parameter": d.name,
                "side": side,
                "bound": bound,
                "zone": f"{'<=' if side == 'low' else '>='} {float(np.exp(edge) if d.log else edge):.4g}",
                "elites_at": e,
                "elites": k,
                "elite_share": e / k,
                "all_at": a,
                "all": n,
                "all_share": a / n if n else np.nan,
                "p": p,
                "hit": bool(e / k >= BOUNDARY_SHARE and p < BOUNDARY_ALPHA),
            }
        )
    return out


def boundaries(configs: pd.DataFrame, dims: list[Dim], elite_mask: np.ndarray) -> pd.DataFrame:
    rows = []
    for d in dims:
        if d.kind != "numeric":
            continue
        col = configs[d.name]
        act = col.notna().to_numpy()
        rows += boundary_test(d, col[act].to_numpy(float), col[act & elite_mask].to_numpy(float))
    cols = ["parameter", "side", "bound", "zone", "elites_at", "elites", "elite_share", "all_at", "all", "all_share"]
    return pd.DataFrame(rows, columns=[*cols, "p", "hit"])


# ----------------------------------------------------------------------------- fix checks, contours


def top_level_check(configs: pd.DataFrame, d: Dim, metric: str, goal: str, elite_mask) -> dict | None:
    """When every active elite (>= MIN_ELITES) shares one level L: L vs the
    other levels, mean metric, Welch p and the relative effect (positive: L is
    better) used by the FIX rule. None otherwise."""
    col = configs[d.name]
    act = col.notna().to_numpy()
    keys = col.map(level_key, na_action="ignore")
    el = keys[act & elite_mask]
    if len(el) < MIN_ELITES or el.nunique() != 1:
        return {"shared": False, "elites": len(el), "level": None} if len(el) else None
    level = el.iloc[0]
    at = (keys == level).to_numpy() & act
    rest = act & ~at
    w = stats.welch(configs.loc[at, metric], configs.loc[rest, metric])
    mean_rest = configs.loc[rest, metric].mean() if rest.any() else np.nan
    gain = -goal_sign(goal) * w["diff"] / abs(mean_rest) if np.isfinite(mean_rest) and mean_rest != 0 else np.nan
    value = next((lv for lv in d.levels if level_key(lv) == level), level) if d.levels else level
    return {
        "shared": True,
        "elites": len(el),
        "level": level,
        "value": value,
        "mean_at": configs.loc[at, metric].mean(),
        "mean_rest": mean_rest,
        "n_rest": int(rest.sum()),
        "effect": gain,
        "p": w["p_value"],
    }


def bins(d: Dim, col: pd.Series, n_bins: int = 5) -> tuple[pd.Series, list[tuple]]:
    """(bin label per row, [(label, low, high)]) of a column: equal-width bins on
    the parameter's scale over its range for continuous ranges, one bin per level
    otherwise (and for numeric columns with few distinct values)."""
    present = col.dropna()
    if d.kind != "numeric" or d.choice or present.nunique() <= n_bins:
        labels = _levels(d, col)
        return col.map(level_key, na_action="ignore"), [(lv, np.nan, np.nan) for lv in labels]
    lo, hi = (d.low, d.high) if d.bounded else (present.min(), present.max())
    s_lo, s_hi = to_scale(d, [lo, hi])
    edges = np.linspace(s_lo, s_hi, n_bins + 1)
    s = pd.Series(np.nan, index=col.index)
    s[present.index] = to_scale(d, present.to_numpy(float))
    idx = np.clip(np.searchsorted(edges, s.to_numpy(), side="right") - 1, 0, n_bins - 1)
    spec = []
    for i in range(n_bins):
        a, b = (float(np.exp(edges[i])), float(np.exp(edges[i + 1]))) if d.log else (edges[i], edges[i + 1])
        spec.append((f"{a:.3g}-{b:.3g}", a, b))
    labels = pd.Series([spec[i][0] for i in idx], index=col.index).where(col.notna())
    return labels, spec


def contour(configs: pd.DataFrame, a: Dim, b: Dim, metric: str, goal: str) -> pd.DataFrame:
    """Binned mean metric over a pair of parameters (rows where both are active):
    one row per (bin of a, bin of b) with n, mean, best and the bins' edges."""
    both = configs[a.name].notna() & configs[b.name].notna()
    part = configs[both]
    la, spec_a = bins(a, part[a.name])
    lb, spec_b = bins(b, part[b.name])
    best = np.min if goal == "min" else np.max
    rows = []
    for ka, a_lo, a_hi in spec_a:
        for kb, b_lo, b_hi in spec_b:
            vals = part.loc[(la == ka) & (lb == kb), metric]
            rows.append(
                {
                    f"{a.name}_bin": ka,
                    f"{a.name}_low": a_lo,
                    f"{a.name}_high": a_hi,
                    f"{b.name}_bin": kb,
                    f"{b.name}_low": b_lo,
                    f"{b.name}_high": b_hi,
                    "n": len(vals),
                    f"mean_{metric}": vals.mean() if len(vals) else np.nan,
                    f"best_{metric}": best(vals) if len(vals) else np.nan,
                }
            )
    return pd.DataFrame(rows)
