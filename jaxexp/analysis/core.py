"""Per-parameter statistics of a sweep: pure functions over one table.

Input: one row per trial/member with parameter columns and a metric column
(optionally ids, seeds and ``status``: ``columns``). Rows whose status is not ok
(diverged, failed, pruned) or whose metric is not finite are left out and
counted. Members of one configuration (same configuration id, ``columns.config_key``,
or, without one, the same parameter values) are averaged first: seeds of one
configuration are not independent samples of the parameters' effect, so every
test below has n = configurations.

Tests (two-sided): numeric parameters, Spearman's rho (``scipy.stats.spearmanr``
via ``jaxexp.stats.correlation``); booleans, True minus False with Welch's
t-test (unequal variances) and its 95% interval; levels (categorical and
numeric choices), per-level mean with a 95% t-interval, best vs worst level
(Welch) and Kruskal-Wallis across levels. Benjamini-Hochberg adjusted p-values
(``p_bh``) are computed over all per-parameter tests together (Spearman,
boolean Welch, Kruskal-Wallis). A conditional parameter is analysed only on
rows where it is active (its cell is not NaN).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats as sps

from jaxexp import stats
from jaxexp.analysis.dims import Dim, as_bool_column, hashable, match_level
from jaxexp.errors import ConfigError

OK_STATUS = {"ok", "complete", "finished"}  # jaxexp, Optuna (COMPLETE), W&B (finished)
MIN_CONFIGS = 5  # fewer usable configurations: no analysis
MIN_ELITES = 3
# Outer share of a range that counts as "at the bound". Not 10%: elites are the top
# 20%, so even a perfect monotone trend puts only half of them in the outer 10% of a
# continuous range, and a 10% zone with a 50% share would be at chance on the
# clearest trend. An optimum in the middle puts none there.
ZONE = 0.20
BOUNDARY_SHARE = 0.5  # elites' share in that zone needed for a boundary hit
BOUNDARY_ALPHA = 0.05  # ... and its one-sided hypergeometric p below this


def goal_sign(goal: str) -> float:
    """+1 where smaller is better."""
    return 1.0 if goal == "min" else -1.0


def normalize_goal(goal: str | None, where: str = "--goal") -> str:
    g = str(goal or "").strip().lower()
    if g in ("min", "minimize", "minimise"):
        return "min"
    if g in ("max", "maximize", "maximise"):
        return "max"
    raise ConfigError(f"{where}: must be min or max (minimize/maximize accepted), got {goal!r}")


def bh_adjust(p) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (NaN stays NaN and is not counted):
    p_(i) * m / i, made monotone from the largest down, capped at 1."""
    p = np.asarray(p, np.float64)
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    m = int(ok.sum())
    if m == 0:
        return out
    ps = p[ok]
    order = np.argsort(ps, kind="stable")
    ranked = ps[order] * m / np.arange(1, m + 1)
    ranked = np.minimum.accumulate(ranked[::-1])[::-1]
    adj = np.empty(m)
    adj[order] = np.minimum(ranked, 1.0)
    out[ok] = adj
    return out


# ----------------------------------------------------------------------------- trials -> configurations


def normalize_column(d: Dim, col: pd.Series) -> pd.Series:
    """The column as the analysis reads it: floats for numeric dims, True/False
    for booleans, declared levels for categoricals; NaN where inactive."""
    if d.kind == "numeric":
        num = pd.to_numeric(col, errors="coerce")
        bad = col.notna() & num.isna()
        if bad.any():
            raise ConfigError(
                f"{d.name}: declared numeric but holds {col[bad].iloc[0]!r}; fix the column or the space's spec"
            )
        return num.astype(np.float64)
    if d.kind == "boolean":
        b = as_bool_column(col)
        if b is None:
            bad = col.dropna().iloc[0] if col.notna().any() else None
            raise ConfigError(f"{d.name}: declared True/False but holds {bad!r}; fix the column or the space's spec")
        return b
    if d.declared:
        return col.map(lambda v: match_level(v, d.levels), na_action="ignore").astype(object)
    return col.map(str, na_action="ignore").astype(object)


def usable_rows(table: pd.DataFrame, metric: str) -> tuple[pd.DataFrame, dict]:
    """(rows with status ok and a finite metric, counts of what was left out)."""
    value = pd.to_numeric(table[metric], errors="coerce")
    keep = np.ones(len(table), bool)
    counts = {"rows": len(table), "excluded": {}}
    if "status" in table.columns:
        status = table["status"].astype(str).str.strip().str.lower()
        bad = ~status.isin(OK_STATUS)
        for s, n in status[bad].value_counts().items():
            counts["excluded"][f"status {s}"] = int(n)
        keep &= ~bad.to_numpy()
    nonfinite = keep & ~np.isfinite(value.to_numpy(np.float64))
    if nonfinite.any():
        counts["excluded"]["metric not finite"] = int(nonfinite.sum())
    keep &= ~nonfinite
    out = table[keep].copy()
    out[metric] = value[keep].astype(np.float64)
    counts["usable"] = int(keep.sum())
    return out, counts


def aggregate_seeds(rows: pd.DataFrame, dims: list[Dim], metric: str, key: str | None = None) -> pd.DataFrame:
    """One row per configuration: the parameters, the mean metric over its
    members (``metric``), ``n_seeds`` and ``metric_std`` (sample std, NaN for one).

    Configurations are the rows sharing a ``key`` column's value (a configuration
    id, ``columns.config_key``), else the rows with equal parameter values.
    """
    names = [d.name for d in dims]
    keys = [key] if key else names
    if not keys:
        raise ConfigError("parameters: none to analyse; the table has no parameter column that varies")
    # NaN keys (inactive conditional parameters) are real groups, not dropped rows
    g = rows.groupby(keys, sort=False, dropna=False)
    out = pd.DataFrame({metric: g[metric].mean(), "n_seeds": g[metric].size(), "metric_std": g[metric].std(ddof=1)})
    others = [n for n in names if n not in keys]
    if others:
        out = g[others].first().join(out)  # first non-NaN: members of a configuration agree
    out = out.reset_index()
    cols = [*([key] if key else []), *names, metric, "n_seeds", "metric_std"]
    return out[cols]


def sort_best_first(configs: pd.DataFrame, metric: str, goal: str) -> pd.DataFrame:
    return configs.sort_values(metric, ascending=(goal == "min"), kind="stable").reset_index(drop=True)


def n_elites(n: int, quantile: float) -> int:
    """Top ``quantile`` of n configurations, at least MIN_ELITES (at most n)."""
    return min(n, max(MIN_ELITES, math.ceil(quantile * n - 1e-9)))


# ----------------------------------------------------------------------------- per-parameter tests


def _better(sign: float, slope: float) -> str:
    if not np.isfinite(slope) or slope == 0:
        return ""
    return "higher" if sign * slope < 0 else "lower"


def continuous(configs: pd.DataFrame, dims: list[Dim], metric: str, goal: str) -> pd.DataFrame:
    """Spearman rho and its p-value of every numeric parameter against the metric
    (one row per parameter; n = configurations where it is active)."""
    rows = []
    for d in dims:
        if d.kind != "numeric":
            continue
        act = configs[d.name].notna()
        c = stats.correlation(configs.loc[act, d.name], configs.loc[act, metric])
        rows.append(
            {
                "parameter": d.name,
                "n": int(act.sum()),
                "members": int(configs.loc[act, "n_seeds"].sum()),
                "rho": c["spearman_rho"],
                "p": c["spearman_p"],
                "pearson_r": c["pearson_r"],
                "better": _better(goal_sign(goal), c["spearman_rho"]),
                "scale": "log" if d.log else "linear",
                "when": _when_text(d),
            }
        )
    return pd.DataFrame(rows, columns=_CONT_COLS)


_CONT_COLS = ["parameter", "n", "members", "rho", "p", "pearson_r", "better", "scale", "when"]


def _when_text(d: Dim) -> str:
    return "; ".join(f"{k} in {v}" for k, v in d.when.items())


def boolean(configs: pd.DataFrame, dims: list[Dim], metric: str, goal: str) -> pd.DataFrame:
    """True vs False: per-level mean and 95% t-interval, the difference of means
    (True - False) with its Welch interval and p-value, and the relative effect
    |difference| / |mean(False)| in percent."""
    rows = []
    for d in dims:
        if d.kind != "boolean":
            continue
        col = configs[d.name]
        t = configs.loc[col.map(lambda v: v is True or v is np.True_, na_action="ignore").fillna(False), metric]
        f = configs.loc[col.map(lambda v: v is False or v is np.False_, na_action="ignore").fillna(False), metric]
        it, if_, w = stats.interval(t), stats.interval(f), stats.welch(t, f)
        rows.append(
            {
                "parameter": d.name,
                "n_true": it["n"],
                "n_false": if_["n"],
                "mean_true": it["mean"],
                "ci_true_low": it["ci_low"],
                "ci_true_high": it["ci_high"],
                "mean_false": if_["mean"],
                "ci_false_low": if_["ci_low"],
                "ci_false_high": if_["ci_high"],
                "diff": w["diff"],
                "diff_ci_low": w["diff_ci_low"],
                "diff_ci_high": w["diff_ci_high"],
                "p": w["p_value"],
                "effect_pct": _rel(w["diff"], if_["mean"]),
                "better": "" if not np.isfinite(w["diff"]) or w["diff"] == 0 else str(goal_sign(goal) * w["diff"] < 0),
                "when": _when_text(d),
            }
        )
    return pd.DataFrame(rows, columns=_BOOL_COLS)


_BOOL_COLS = [
    "parameter",
    "n_true",
    "n_false",
    "mean_true",
    "ci_true_low",
    "ci_true_high",
    "mean_false",
    "ci_false_low",
    "ci_false_high",
    "diff",
    "diff_ci_low",
    "diff_ci_high",
    "p",
    "effect_pct",
    "better",
    "when",
]


def _rel(diff: float, ref: float) -> float:
    """100 * |diff| / |ref| (NaN when undefined)."""
    if not (np.isfinite(diff) and np.isfinite(ref)) or ref == 0:
        return np.nan
    return 100.0 * abs(diff) / abs(ref)


def level_key(v) -> str:
    """A level's label in tables (and the key grouping a column's values)."""
    v = hashable(v)
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _levels(d: Dim, col: pd.Series) -> list:
    """The levels present in a column, declared order first."""
    present = col.dropna()
    keys = present.map(level_key)
    order = [lv for lv in d.levels if level_key(lv) in set(keys)] if d.levels else []
    seen = {level_key(v) for v in order}
    extra = sorted({k for k in keys if k not in seen})
    return [level_key(v) for v in order] + extra


def categorical(configs: pd.DataFrame, dims: list[Dim], metric: str, goal: str, elite_mask) -> pd.DataFrame:
    """Per level (of categoricals and numeric choices): n, mean, 95% t-interval,
    elites at that level; per parameter (repeated on its rows): best and worst
    level by mean, best minus worst (Welch p) and Kruskal-Wallis across levels."""
    sign = goal_sign(goal)
    rows = []
    for d in dims:
        if not (d.kind == "categorical" or (d.kind == "numeric" and d.choice)):
            continue
        col = configs[d.name]
        keys = col.map(level_key, na_action="ignore")
        levels = _levels(d, col)
        per = []
        for lv in levels:
            sel = (keys == lv).to_numpy()
            iv = stats.interval(configs.loc[sel, metric])
            per.append(
                {"level": lv, **iv, "elites": int((sel & elite_mask).sum()), "_values": configs.loc[sel, metric]}
            )
        scored = [r for r in per if r["n"] > 0]
        scored.sort(key=lambda r: sign * r["mean"])
        best, worst = (scored[0], scored[-1]) if scored else (None, None)
        w = stats.welch(best["_values"], worst["_values"]) if best is not None and len(scored) > 1 else {}
        groups = [r["_values"].to_numpy() for r in scored if r["n"] > 0]
        try:
            kw_p = sps.kruskal(*groups).pvalue if len(groups) > 1 else np.nan
        except ValueError:  # every value identical
            kw_p = np.nan
        for rank, r in enumerate(scored, 1):
            r["rank"] = rank
        for r in per:
            rows.append(
                {
                    "parameter": d.name,
                    "level": r["level"],
                    "n": r["n"],
                    "mean": r["mean"],
                    "std": r["std"],
                    "ci_low": r["ci_low"],
                    "ci_high": r["ci_high"],
                    "elites": r["elites"],
                    "rank": r.get("rank", np.nan),
                    "best_level": best["level"] if best else "",
                    "worst_level": worst["level"] if worst else "",
                    "best_vs_worst_diff": w.get("diff", np.nan),
                    "best_vs_worst_p": w.get("p_value", np.nan),
                    "best_vs_worst_effect_pct": _rel(w.get("diff", np.nan), worst["mean"]) if worst else np.nan,
                    "kruskal_p": kw_p,
                    "when": _when_text(d),
                }
            )
    return pd.DataFrame(rows, columns=_CAT_COLS)


_CAT_COLS = [
    "parameter",
    "level",
    "n",
    "mean",
    "std",
    "ci_low",
    "ci_high",
    "elites",
    "rank",
    "best_level",
    "worst_level",
    "best_vs_worst_diff",
    "best_vs_worst_p",
    "best_vs_worst_effect_pct",
    "kruskal_p",
    "when",
]


def add_bh(cont: pd.DataFrame, boo: pd.DataFrame, cat: pd.DataFrame) -> int:
    """Adds ``p_bh`` (continuous, boolean) and ``kruskal_p_bh`` (categorical):
    one Benjamini-Hochberg family of every per-parameter test. Returns m."""
    cat_p = cat.drop_duplicates("parameter")[["parameter", "kruskal_p"]]
    ps = np.concatenate([cont["p"].to_numpy(float), boo["p"].to_numpy(float), cat_p["kruskal_p"].to_numpy(float)])
    adj = bh_adjust(ps)
    n1, n2 = len(cont), len(boo)
    cont.insert(cont.columns.get_loc("p") + 1, "p_bh", adj[:n1])
    boo.insert(boo.columns.get_loc("p") + 1, "p_bh", adj[n1 : n1 + n2])
    cat["kruskal_p_bh"] = cat["parameter"].map(dict(zip(cat_p["parameter"], adj[n1 + n2 :])))
    return int(np.isfinite(ps).sum())


# ----------------------------------------------------------------------------- elites, ranges, boundaries
