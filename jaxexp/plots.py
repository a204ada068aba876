"""PNG plots of a sweep, written next to report.md (matplotlib, Agg backend)."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from jaxexp import config as cfgmod

_MAX_LINES = 8  # configurations drawn per plot (the best ones)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, never a display
    import matplotlib.pyplot as plt

    return plt


def _top_configs(res) -> list:
    return res.summary["config_id"].head(_MAX_LINES).tolist()


def history(res, path: str) -> None:
    """Train loss and the selection metric per epoch: mean over seeds with a min-max band."""
    plt = _pyplot()
    h = res.history[~res.history["diverged"]].merge(res.members[["member", "config_id"]], on="member")
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, col in zip(axes, ["train_loss", res.metric]):
        for cid in _top_configs(res):
            part = h[h["config_id"] == cid].groupby("epoch")[col]
            mean, lo, hi = part.mean(), part.min(), part.max()
            (line,) = ax.plot(mean.index, mean.values, label=res.label(cid))
            ax.fill_between(mean.index, lo.values, hi.values, color=line.get_color(), alpha=0.2)
        if (h[col] > 0).all():  # curricula and early epochs span decades
            ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel(col)
        ax.set_title(f"{col}: mean over seeds, band = min..max")
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def scatter(res, path: str) -> bool:
    """Predicted vs true on the validation split for the best member, in the
    task's original units: log and linear axes. False unless the workload
    predicts one real-valued target per row (a regression)."""

    finished = res.members[res.members["member"].isin(list(res.best_params)) & (res.members["status"] != "diverged")]
    if finished.empty:
        return False
    col = f"best_{res.metric}"
    best = int(finished.loc[finished[col].idxmin() if res.config.goal == "min" else finished[col].idxmax(), "member"])
    cfg = res.member_config(best)
    wl = cfgmod.workload_of(cfg)
    info = wl.dataset(cfg).info
    if wl.predict is None or best not in res.best_params:
        return False
    y, p = res.predict(best)
    if y.ndim != 2 or p.shape != y.shape or not np.issubdtype(y.dtype, np.floating):
        return False
    mean, std = np.asarray(info.get("target_mean", [0.0])), np.asarray(info.get("target_std", [1.0]))
    y, p = (y * std + mean)[:, 0], (p * std + mean)[:, 0]
    finite = np.isfinite(y) & np.isfinite(p)  # padded entries (NaN) of a workload's predictions
    if not finite.any():
        return False
    y, p = y[finite], p[finite]
    if info.get("target_units") == "log2":  # targets are log2(value)
        views = [("value (log axes)", 2.0**y, 2.0**p, "log"), ("value", 2.0**y, 2.0**p, "linear")]
    else:
        views = [("value", y, p, "linear")]
        if (y > 0).all() and (p > 0).all():
            views.append(("value (log axes)", y, p, "log"))
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(views), figsize=(5 * len(views), 4.5), squeeze=False)
    for ax, (name, yy, pp, scale) in zip(axes[0], views):
        ax.scatter(yy, pp, s=6, alpha=0.5)
        lo, hi = min(yy.min(), pp.min()), max(yy.max(), pp.max())
        ax.plot([lo, hi], [lo, hi], "k--", lw=1)
        ax.set_xscale(scale)
        ax.set_yscale(scale)
        ax.set_xlabel(f"true {name}")
        ax.set_ylabel(f"predicted {name}")
        ax.set_title(f"member {best}, best epoch, validation")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def group_metric(res) -> str:
    """The per-group column shown: the selection metric, or val_loss when that is
    not a per-group metric (e.g. train_loss)."""
    return res.metric if res.metric in res.groups.columns else "val_loss"


def group_table(res) -> pd.DataFrame:
    """Mean per-group metric at the best epoch: rows = groups, columns = configurations."""
    col = group_metric(res)
    g = res.groups.merge(res.members[["member", "config_id"]], on="member")
    g = g[g["config_id"].isin(_top_configs(res))]
    table = g.pivot_table(index="group", columns="config_id", values=col, aggfunc="mean", sort=False)
    labels = [res.label(c) for c in table.columns]
    # a random sweep may draw one configuration twice: keep the bars apart
    table.columns = [f"{lab} (config {c})" if labels.count(lab) > 1 else lab for lab, c in zip(labels, table.columns)]
    return table


def groups(res, path: str) -> None:
    """Bar chart of ``group_table``."""
    plt = _pyplot()
    table = group_table(res)
    fig, ax = plt.subplots(figsize=(max(6, 0.6 * len(table) * max(1, table.shape[1]) / 2), 4))
    width = 0.8 / max(1, table.shape[1])
    x = np.arange(len(table))
    for i, name in enumerate(table.columns):
        ax.bar(x + i * width, table[name].values, width, label=name)
    ax.set_xticks(x + 0.4 - width / 2, table.index, rotation=45, ha="right")
    ax.set_ylabel(f"{group_metric(res)} at best epoch (mean over seeds)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_all(res, directory: str, warn=None) -> list[str]:
    """Writes every plot that applies; returns the file names. A plot that
    fails is reported through ``warn`` and skipped; the others are written."""
    plots = {"history.png": history, "scatter.png": scatter, "groups.png": groups}
    if res.history[~res.history["diverged"]].empty:
        return []
    if res.groups.empty:
        del plots["groups.png"]
    written = []
    for name, fn in plots.items():
        try:
            if fn(res, os.path.join(directory, name)) is not False:
                written.append(name)
        except Exception as e:  # a plot must never cost the results or the other plots
            if warn is not None:
                warn(f"{name} not written: {type(e).__name__}: {e}")
    return written
