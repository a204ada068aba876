"""Per-group comparison of every recipe with the baseline (``group_comparison.csv``).

On a grouped task ``Results.groups`` holds each member's metric per group at its
best epoch. For every label other than the baseline (the recipes when recipes
are the only thing swept, else the configurations vs the best one: the same
labels as ``comparison.csv``) and every group: the seed means of the baseline
and of the label, their difference (label minus baseline) with its 95% Welch
interval, the two-sided Welch t-test p-value, and the Benjamini-Hochberg
adjusted q-value. The BH family is the groups of one label (one row set per
recipe: "which groups did this recipe change?"); its size is ``bh_tests``.
Diverged and pruned members are left out (as in ``summary.csv``).

Where the task knows it (``Dataset.info["group_noise_floor"]``, one value per
group, e.g. the grouped task's log2-MSE floor), ``noise_floor`` gives the
group's floor; it is an MSE floor, so it is only filled when the compared
column is an MSE (``*mse``). ``level`` is the group's curriculum level
(easy/medium/hard) where the data has one.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from jaxexp import stats

LEVELS = {0: "easy", 1: "medium", 2: "hard"}

COLUMNS = [
    "group",
    "level",
    "metric",
    "baseline_n",
    "baseline_mean",
    "n",
    "mean",
    "diff",
    "diff_ci_low",
    "diff_ci_high",
    "p_value",
    "q_value",
    "bh_tests",
    "noise_floor",
]


def group_column(metric: str, groups: pd.DataFrame) -> str:
    """The per-group column compared: the selection metric, or val_loss when that is
    not a per-group metric (as ``jaxexp.run.plots.group_metric``)."""
    return metric if metric in groups.columns else "val_loss"


def task_groups(config) -> tuple[list[str], dict, dict]:
    """(group names, {group: noise floor}, {group: level name}) of a member
    config's data; the dicts are empty where the task does not know them."""
    from jaxexp import config as cfgmod

    data = cfgmod.workload_of(config).dataset(config)
    names = [str(g) for g in data.groups]
    raw = data.info.get("group_noise_floor")
    floors = {}
    if raw is not None and len(raw) == len(names):
        floors = {n: float(v) for n, v in zip(names, raw)}
    levels = {}
    val = data.val
    if isinstance(val, dict) and "group" in val and "level" in val:
        g, lv = np.asarray(val["group"]), np.asarray(val["level"])
        for i, name in enumerate(names):
            hit = lv[g == i]
            if len(hit):
                levels[name] = LEVELS.get(int(hit[0]), str(int(hit[0])))
    return names, floors, levels


def table(
    members: pd.DataFrame,
    groups: pd.DataFrame,
    by: str,
    baseline,
    labels: list,
    column: str,
    order: list | None = None,
    floors: dict | None = None,
    levels: dict | None = None,
) -> pd.DataFrame:
    """One row per (label != baseline, group), labels in ``labels`` order and
    groups in ``order`` (else their order in ``groups``); see the module doc."""
    floors, levels = floors or {}, levels or {}
    ok = members[~members["status"].isin(["diverged", "pruned"])][["member", by]]
    g = groups[["member", "group", column]].merge(ok, on="member")
    names = list(order) if order else list(dict.fromkeys(groups["group"]))
    names += [n for n in dict.fromkeys(groups["group"]) if n not in names]
    floor_ok = column.endswith("mse")
    values = {key: part[column] for key, part in g.groupby([by, "group"], sort=False)}
    empty = pd.Series(dtype=np.float64)
    rows = []
    for label in labels:
        if label == baseline:
            continue
        block = []
        for name in names:
            base, part = values.get((baseline, name), empty), values.get((label, name), empty)
            bi, pi = stats.interval(base), stats.interval(part)
            row = {by: label, "group": name, "level": levels.get(name, ""), "metric": column}
            row.update(baseline_n=bi["n"], baseline_mean=bi["mean"], n=pi["n"], mean=pi["mean"])
            row.update(stats.welch(part, base))
            row["noise_floor"] = floors.get(name, np.nan) if floor_ok else np.nan
            block.append(row)
        q = stats.bh_adjust([r["p_value"] for r in block])
        tests = int(np.isfinite(q).sum())
        for r, qv in zip(block, q):
            r.update(q_value=qv, bh_tests=tests)
        rows += block
    return pd.DataFrame(rows, columns=[by, *COLUMNS])


def build(members: pd.DataFrame, groups: pd.DataFrame, comparison: pd.DataFrame, metric: str, data_config):
    """The group comparison of a sweep: the labels and baseline of ``comparison``
    (empty unless the task is grouped); ``data_config``: a member's config, for
    the group names, floors and levels of its data."""
    if groups.empty or comparison.empty:
        return pd.DataFrame()
    by = comparison.columns[0]
    baseline = comparison.loc[comparison["baseline"], by].iloc[0]
    order, floors, levels = task_groups(data_config)
    column = group_column(metric, groups)
    return table(members, groups, by, baseline, list(comparison[by]), column, order, floors, levels)
