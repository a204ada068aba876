"""Results of a sweep: per-member rows, per-epoch history, per-configuration summary.

Files in a workdir (written by ``jaxexp.run.outputs.write``: into a temporary folder,
then renamed into place):
- ``config.json``: the resolved config;
- ``members.csv``: one row per member (ids, seed, hyperparameters, status
  ``ok``/``diverged``/``stopped``, final and best metrics, best epoch);
- ``history.csv``: one row per (member, epoch);
- ``summary.csv``: one row per configuration: seed statistics (mean, std,
  min, max, 95% CI) and the initial vs best-metric correlation;
- ``comparison.csv``: each recipe (or configuration) against the baseline;
- ``groups.csv`` / ``group_history.csv`` (grouped tasks): per-group metrics of
  every member at its best epoch / at every epoch;
- ``group_comparison.csv`` (grouped tasks): each recipe against the baseline per
  group, with BH-adjusted q-values and the group's noise floor
  (``jaxexp.run.group_compare``);
- ``report.md`` and the plots it lists (``*.png``);
- ``report.html``: the same in one self-contained page with sortable tables and
  interactive charts (``jaxexp.webreport``);
- ``tb/``: TensorBoard event files, one run per member (``jaxexp.run.tensorboard``);
- ``timings.json``: where the wall time went, phase by phase (``jaxexp.run.timing``).
"""

from __future__ import annotations

import dataclasses
import os

import ml_collections
import numpy as np
import pandas as pd

from jaxexp import config as cfgmod
from jaxexp import stats
from jaxexp.errors import ConfigError
from jaxexp.run import group_compare, population, timing
from jaxexp.workdir import RESULT_FILES  # noqa: F401 - part of this module's API

_ID_COLUMNS = population.ID_COLUMNS


@dataclasses.dataclass
class Results:
    """What a sweep returns; the same tables as the workdir files."""

    config: ml_collections.ConfigDict
    members: pd.DataFrame
    history: pd.DataFrame
    summary: pd.DataFrame
    timings: timing.Timings  # where the wall time went (timings.json)
    workdir: str | None = None
    comparison: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)
    groups: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)  # member x group at the best epoch
    group_history: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)
    group_comparison: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)  # recipe x group vs baseline
    best_params: dict = dataclasses.field(default_factory=dict)  # member id -> params (numpy) of its best epoch
    plots: list = dataclasses.field(default_factory=list)  # file names written next to report.md
    rungs: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)  # successive halving decisions
    pbt: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)  # population-based training copies
    stopped_by: int | None = None  # the signal that stopped the run early (2: SIGINT, 15: SIGTERM)

    @property
    def interrupted(self) -> bool:
        """True when the run was stopped early (a signal or KeyboardInterrupt): members
        not finished have status ``stopped`` and keep every epoch they completed."""
        return self.stopped_by is not None

    @property
    def metric(self) -> str:
        return self.config.metric

    @property
    def goal(self) -> str:
        return self.config.goal

    @property
    def params(self) -> list[str]:
        """Swept parameter columns (and ``recipe`` and the fields recipes set)."""
        return [c for c in self.summary.columns if c in self.members.columns and c not in _ID_COLUMNS]

    @property
    def shown_params(self) -> list[str]:
        """``recipe`` and the swept fields: what tells configurations apart."""
        return shown_params(self.config, self.params)

    def label(self, config_id: int) -> str:
        """A short name of a configuration: its recipe and swept values (inactive
        conditional parameters left out)."""
        row = self.summary[self.summary["config_id"] == config_id].iloc[0]
        shown = [
            str(row[p])
            if p == "recipe"
            else f"{p.split('.')[-1]}={row[p]:.3g}"
            if isinstance(row[p], float)
            else f"{p.split('.')[-1]}={row[p]}"
            for p in self.shown_params
            if not population._missing(row[p])
        ]
        return ", ".join(shown) or f"config {config_id}"

    def member_config(self, member: int) -> ml_collections.ConfigDict:
        """The resolved config of one member."""
        row = self.members[self.members["member"] == member]
        if row.empty:
            raise ValueError(f"member: no member {member} in these results")
        return population.resolve(self.config, population.config_rows(self.config, row))[0].config

    def predict(self, member: int, split: str = "val") -> tuple[np.ndarray, np.ndarray]:
        """(targets, predictions) of ``member``'s best parameters on the
        workload's ``split`` ("train" or "val"): its ``predict`` function (the
        built-in MLP: in the task's standardised units)."""
        import jax

        from jaxexp.core import train
        from jaxexp.run import checkpoint

        if member not in self.best_params:
            raise ValueError(f"member: {member} has no saved parameters (it did not finish)")
        if split not in ("train", "val"):
            raise ValueError(f"split: must be 'train' or 'val' (got {split!r})")
        cfg = self.member_config(member)
        wl = cfgmod.workload_of(cfg)
        if wl.predict is None:
            raise ValueError(f"workload {wl.name} defines no predict(model, params, split, hp); add one to predict")
        model, dataset, _ = checkpoint.model_of(cfg)
        hp = train.one_member(cfg, dataset)
        hp.update(epoch=np.int32(0), step=np.int32(0))
        data = dataset.val if split == "val" else dataset.train
        fn = jax.jit(lambda p, d, h: wl.predict(model, p, d, h))
        y, out = fn(self.best_params[member], data, hp)
        return np.asarray(y), np.asarray(out)

    def best_member(self) -> pd.Series:
        """The member with the best ``best_<metric>`` among those neither diverged
        nor pruned (a pruned member's metric comes from fewer epochs)."""
        col = f"best_{self.metric}"
        ok = self.members[~self.members["status"].isin(["diverged", "pruned"])].dropna(subset=[col])
        if ok.empty:
            raise ValueError("no member finished an epoch without diverging")
        idx = ok[col].idxmin() if self.config.goal == "min" else ok[col].idxmax()
        return ok.loc[idx]


def prepare_workdir(workdir: str, config: ml_collections.ConfigDict) -> bool:
    """Checks the workdir before any work starts; returns True when the run
    resumes from its checkpoints (see ``jaxexp.run.resume.prepare``)."""
    from jaxexp.run import resume

    check_workdir_path(workdir)
    return resume.prepare(workdir, config)


def check_workdir_path(workdir: str) -> None:
    """A workdir is a directory (or can be made one) that this process can write."""
    if os.path.exists(workdir) and not os.path.isdir(workdir):
        raise ConfigError(f"workdir: {workdir} exists and is not a directory; choose another --workdir")
    existing_dir = os.path.abspath(workdir)
    while not os.path.isdir(existing_dir):  # the nearest ancestor that exists
        existing_dir = os.path.dirname(existing_dir)
    if not os.access(existing_dir, os.W_OK):
        raise ConfigError(f"workdir: cannot write to {workdir}; choose another --workdir")


def _comparison(config, rows: pd.DataFrame, summary: pd.DataFrame, params: list[str]) -> pd.DataFrame:
    """Recipes are compared with the baseline recipe (``sweep.baseline``, else the
    first) when they are the only thing swept; otherwise every configuration with
    the best one (seeds of one configuration are the only valid replicates)."""
    if not len(summary):
        return pd.DataFrame()
    recipes_only = "recipe" in rows.columns and shown_params(config, params) == ["recipe"]
    label = "recipe" if recipes_only else "config_id"
    labels = list(summary[label])
    baseline = (config.sweep.baseline or rows["recipe"].iloc[0]) if recipes_only else labels[0]
    ok = rows[rows["status"] != "diverged"]
    return stats.compare(ok, label, f"best_{config.metric}", baseline, labels)


def assemble(config, table: pd.DataFrame, members: list, output) -> Results:
    """Builds the members, summary, comparison and group tables from a
    ``jaxexp.run.engine.RunOutput``."""
    history, finals = output.history, output.finals
    metric, sign = config.metric, cfgmod.goal_sign(config.goal)
    metric_names = [c for c in history.columns if c not in ("member", "epoch", "diverged", "lr")]
    params = [c for c in table.columns if c not in _ID_COLUMNS]

    rows = table[list(_ID_COLUMNS) + params].copy().reset_index(drop=True)
    by_id = {m.member: m for m in members}
    for path in cfgmod.traced_fields(config):
        if path not in rows.columns:
            rows[path] = [cfgmod.get_path(by_id[i].config, path) for i in rows["member"]]

    g = history.groupby("member", sort=False)
    last = g.tail(1).set_index("member")
    diverged_any = g["diverged"].any()
    first_div = history[history["diverged"]].groupby("member")["epoch"].min()
    good = history[~history["diverged"] & np.isfinite(history[metric])]
    best_idx = (sign * good[metric]).groupby(good["member"]).idxmin()
    best = good.loc[best_idx.values].set_index("member")

    ids = rows["member"]
    rows["epochs_run"] = ids.map(g["epoch"].max()).fillna(0).astype(int)
    stop = pd.Series({k: v["stop_epoch"] for k, v in finals.items()}, dtype="Int64")
    rows["stop_epoch"] = ids.map(stop[stop > 0] if len(stop) else stop).astype("Int64")
    pruned = pd.Series({k: v.get("pruned_epoch", 0) for k, v in finals.items()}, dtype="Int64")
    rows["pruned_epoch"] = ids.map(pruned[pruned > 0] if len(pruned) else pruned).astype("Int64")
    # stopped: did not finish (the sweep was interrupted); early stopping is "ok";
    # pruned: stopped at a successive-halving rung
    rows["status"] = np.select(
        [
            ids.isin(diverged_any.index[diverged_any]).to_numpy(),
            ~ids.isin(list(finals)).to_numpy(),
            rows["pruned_epoch"].notna().to_numpy(),
        ],
        ["diverged", "stopped", "pruned"],
        "ok",
    )
    rows["diverged_epoch"] = ids.map(first_div).astype("Int64")
    rows["best_epoch"] = ids.map(best["epoch"]).astype("Int64")
    for name in metric_names:
        rows[f"best_{name}"] = ids.map(best[name])
    for name in metric_names:
        rows[f"final_{name}"] = ids.map(last[name])
    initial = pd.DataFrame.from_dict(output.initial, orient="index")
    for name in initial.columns:  # validation metrics of the initial parameters ("epoch 0")
        rows[f"init_{name}"] = ids.map(initial[name])
    # peak vs final: how much the metric got worse after its best epoch (>= 0)
    rows["degradation"] = sign * (rows[f"final_{metric}"] - rows[f"best_{metric}"]) + 0.0  # no -0.0

    summary = summarize(rows, params, metric, config.goal)
    comparison = _comparison(config, rows, summary, params)
    groups = _groups_at_best(output.group_history, rows)
    group_comparison = group_compare.build(rows, groups, comparison, metric, members[0].config if members else config)
    return Results(
        config,
        rows,
        history,
        summary,
        timing.Timings.of(output.timings),
        comparison=comparison,
        groups=groups,
        group_history=output.group_history,
        group_comparison=group_comparison,
        best_params={k: v["best_params"] for k, v in finals.items()},
        rungs=output.rungs,
        pbt=output.pbt,
        stopped_by=output.stopped_by,
    )


def shown_params(config, params: list[str]) -> list[str]:
    """The parameter columns that tell configurations apart in tables and plots:
    ``recipe`` and the swept fields, without the fields recipes set."""
    set_by_recipes = {f for r in population.recipes(config).values() for f in r}
    return [p for p in params if p not in set_by_recipes]


def _groups_at_best(group_history: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    """Per-group metrics of every member at its best epoch."""
    if group_history.empty:
        return pd.DataFrame()
    best = rows[["member", "best_epoch"]].dropna().astype({"best_epoch": np.int64})
    return group_history.merge(best, left_on=["member", "epoch"], right_on=["member", "best_epoch"]).drop(
        columns="best_epoch"
    )


def summarize(rows: pd.DataFrame, params: list[str], metric: str, goal: str) -> pd.DataFrame:
    """One row per configuration: seed statistics of the best and final metric.

    std is the sample std over seeds (ddof=1; NaN for one seed); ci95 is the
    Student-t interval of the mean; init_vs_best_* is the correlation over
    seeds between the initial parameters' metric and the best one (NaN below 3
    seeds, or when the metric is not a validation metric). Members pruned by
    successive halving are counted but left out of the statistics (their
    metrics come from fewer epochs).
    """
    out = []
    # status compared once for all rows (not per configuration, on pandas' Arrow strings)
    status = rows["status"].to_numpy(dtype=object)
    diverged, pruned = status == "diverged", status == "pruned"
    for config_id, where in rows.groupby("config_id", sort=True).indices.items():
        part = rows.iloc[where]
        ok = part[~(diverged[where] | pruned[where])]
        row = {"config_id": config_id, **{p: part[p].iloc[0] for p in params}}
        row.update(seeds=len(part), diverged=int(diverged[where].sum()), pruned=int(pruned[where].sum()))
        best = stats.interval(ok[f"best_{metric}"])
        for k in ("mean", "std", "min", "max", "ci_low", "ci_high"):
            row[f"best_{metric}_{k}"] = best[k]
        final = stats.interval(ok[f"final_{metric}"])
        row[f"final_{metric}_mean"], row[f"final_{metric}_std"] = final["mean"], final["std"]
        row["best_epoch_mean"] = float(ok["best_epoch"].astype(float).mean()) if len(ok) else np.nan
        row["degradation_mean"] = float(ok["degradation"].mean()) if len(ok) else np.nan
        init = ok[f"init_{metric}"] if f"init_{metric}" in ok else np.full(len(ok), np.nan)
        corr = stats.correlation(init, ok[f"best_{metric}"])
        row["init_vs_best_r"], row["init_vs_best_p"] = corr["pearson_r"], corr["pearson_p"]
        row["init_vs_best_rho"], row["init_vs_best_rho_p"] = corr["spearman_rho"], corr["spearman_p"]
        out.append(row)
    summary = pd.DataFrame(out)
    if summary.empty:
        return summary
    return summary.sort_values(f"best_{metric}_mean", ascending=(goal == "min"), na_position="last").reset_index(
        drop=True
    )
