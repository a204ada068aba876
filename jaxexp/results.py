"""Results of a sweep: per-member rows, per-epoch history, per-configuration summary.

Files in a workdir (each written atomically: temp file, then rename):
- ``config.json``: the resolved config;
- ``members.csv``: one row per member (ids, seed, hyperparameters, status
  ``ok``/``diverged``/``stopped``, final and best metrics, best epoch);
- ``history.csv``: one row per (member, epoch);
- ``summary.csv``: one row per configuration, mean/std over its seeds;
- ``report.md``: the best configurations and members.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile

import ml_collections
import numpy as np
import pandas as pd

from jaxexp import config as cfgmod
from jaxexp import report
from jaxexp.errors import ConfigError

RESULT_FILES = ("config.json", "members.csv", "history.csv", "summary.csv", "report.md")
_ID_COLUMNS = ("member", "config_id", "seed")


@dataclasses.dataclass
class Results:
    """What a sweep returns; the same tables as the workdir files."""

    config: ml_collections.ConfigDict
    members: pd.DataFrame
    history: pd.DataFrame
    summary: pd.DataFrame
    timings: dict
    workdir: str | None = None

    @property
    def interrupted(self) -> bool:
        """True when the run was stopped early (KeyboardInterrupt): members not
        finished have status ``stopped`` and keep every epoch they completed."""
        return bool(self.timings.get("interrupted"))

    @property
    def metric(self) -> str:
        return self.config.metric

    @property
    def params(self) -> list[str]:
        """Swept parameter columns."""
        return [c for c in self.summary.columns if c in self.members.columns and c not in _ID_COLUMNS]

    def best_member(self) -> pd.Series:
        """The non-diverged member with the best ``best_<metric>``."""
        col = f"best_{self.metric}"
        ok = self.members[self.members["status"] != "diverged"].dropna(subset=[col])
        if ok.empty:
            raise ValueError("no member finished an epoch without diverging")
        idx = ok[col].idxmin() if self.config.goal == "min" else ok[col].idxmax()
        return ok.loc[idx]


def prepare_workdir(workdir: str, config: ml_collections.ConfigDict) -> None:
    """Refuses a workdir holding results (unless overwrite) before any work starts."""
    if os.path.exists(workdir) and not os.path.isdir(workdir):
        raise ConfigError(f"workdir: {workdir} exists and is not a directory; choose another --workdir")
    existing = [f for f in RESULT_FILES if os.path.exists(os.path.join(workdir, f))]
    if existing and not config.engine.overwrite:
        raise ConfigError(
            f"workdir: {workdir} already holds results ({', '.join(existing)}); "
            "choose another --workdir or pass --config.engine.overwrite=True"
        )
    existing_dir = os.path.abspath(workdir)
    while not os.path.isdir(existing_dir):  # the nearest ancestor that exists
        existing_dir = os.path.dirname(existing_dir)
    if not os.access(existing_dir, os.W_OK):
        raise ConfigError(f"workdir: cannot write to {workdir}; choose another --workdir")


def assemble(config, table: pd.DataFrame, members: list, history: pd.DataFrame, timings: dict) -> Results:
    """Builds the members and summary tables from the per-epoch history."""
    metric, sign = config.metric, cfgmod.goal_sign(config.goal)
    metric_names = [c for c in history.columns if c not in ("member", "epoch", "diverged")]
    params = [c for c in table.columns if c not in _ID_COLUMNS]

    rows = table[list(_ID_COLUMNS) + params].copy().reset_index(drop=True)
    by_id = {m.member: m for m in members}
    for path in cfgmod.TRACED:
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
    planned = np.asarray([by_id[i].config.train.epochs for i in ids])
    # stopped: did not finish its epochs (the sweep was interrupted)
    rows["status"] = np.select(
        [ids.isin(diverged_any.index[diverged_any]).to_numpy(), rows["epochs_run"].to_numpy() < planned],
        ["diverged", "stopped"],
        "ok",
    )
    rows["diverged_epoch"] = ids.map(first_div).astype("Int64")
    rows["best_epoch"] = ids.map(best["epoch"]).astype("Int64")
    for name in metric_names:
        rows[f"best_{name}"] = ids.map(best[name])
    for name in metric_names:
        rows[f"final_{name}"] = ids.map(last[name])

    summary = summarize(rows, params, metric, config.goal)
    return Results(config, rows, history, summary, timings)


def summarize(rows: pd.DataFrame, params: list[str], metric: str, goal: str) -> pd.DataFrame:
    """One row per configuration: seeds, diverged count, mean/std of best and final metric.

    std is the sample std over seeds (ddof=1; NaN for one seed).
    """
    agg = {
        "seeds": ("seed", "count"),
        "diverged": ("status", lambda s: int((s == "diverged").sum())),
        f"best_{metric}_mean": (f"best_{metric}", "mean"),
        f"best_{metric}_std": (f"best_{metric}", "std"),
        f"final_{metric}_mean": (f"final_{metric}", "mean"),
        f"final_{metric}_std": (f"final_{metric}", "std"),
        "best_epoch_mean": ("best_epoch", lambda s: float(s.astype(float).mean())),
    }
    first = {p: (p, "first") for p in params}
    summary = rows.groupby("config_id", sort=True).agg(**first, **agg).reset_index()
    return summary.sort_values(f"best_{metric}_mean", ascending=(goal == "min"), na_position="last").reset_index(
        drop=True
    )


def write(res: Results, workdir: str) -> None:
    """Writes every result file into ``workdir`` (created if missing).

    All files are written into a temporary folder inside ``workdir`` first and
    then renamed into place, so an error while writing leaves the old set.
    """
    os.makedirs(workdir, exist_ok=True)
    texts = {
        "config.json": json.dumps(res.config.to_dict(), indent=2, default=list),
        "members.csv": res.members.to_csv(index=False),
        "history.csv": res.history.to_csv(index=False),
        "summary.csv": res.summary.to_csv(index=False),
        "report.md": report.markdown(res),
    }
    tmp = tempfile.mkdtemp(dir=workdir, prefix=".writing-")
    try:
        for name, text in texts.items():
            with open(os.path.join(tmp, name), "w") as f:
                f.write(text)
        for name in texts:
            os.replace(os.path.join(tmp, name), os.path.join(workdir, name))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    res.workdir = workdir
