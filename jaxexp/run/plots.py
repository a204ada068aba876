"""PNG plots of a sweep, written next to report.md (matplotlib, Agg backend).

Every configuration has one colour in every plot (``jaxexp.run.colors.config_colors``:
by rank in ``res.summary``), the same as in the HTML report.

The figures read a ``View`` (or the Results themselves): tables and labels only, no
config and no JAX, so ``jaxexp.run.plot_worker`` can draw them in a helper process.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pandas as pd

from jaxexp.run.colors import config_colors

_MAX_LINES = 8  # configurations drawn per plot (the best ones)
_SEED_STYLE = {"alpha": 0.3, "lw": 0.7}  # one thin line per seed under the configuration's mean
_LOSS_NAMES = {"loss", "mse", "nll", "ce", "xent", "cross_entropy", "crossentropy", "log_loss", "logloss"}
_VAL_PREFIXES = ("val_", "valid_", "validation_", "eval_", "test_", "val/", "valid/", "eval/")


def _figure(**kw):
    """A figure that is not registered with pyplot (no global state, no display)."""
    from matplotlib.figure import Figure

    return Figure(**kw)


@dataclasses.dataclass
class View:
    """What the sweep figures read of a Results (picklable, without JAX): the
    tables, the selection metric and goal, and the legend labels of the drawn
    configurations."""

    history: pd.DataFrame
    members: pd.DataFrame  # member, config_id
    summary: pd.DataFrame
    groups: pd.DataFrame
    metric: str
    goal: str
    labels: dict  # {config_id: Results.label(config_id)} of the drawn configurations

    def label(self, config_id: int) -> str:
        return self.labels[config_id]


def view(res) -> View:
    """The View of ``res`` (a Results)."""
    return View(
        history=res.history,
        members=res.members[["member", "config_id"]],
        summary=res.summary,
        groups=res.groups,
        metric=res.metric,
        goal=res.goal,
        labels={c: res.label(c) for c in _top_configs(res)},
    )


def _top_configs(res) -> list:
    return res.summary["config_id"].head(_MAX_LINES).tolist()


def _labels(res, ids) -> dict:
    """{config_id: legend label}; a random sweep may draw one configuration twice."""
    labels = {c: res.label(c) for c in ids}
    names = list(labels.values())
    return {c: f"{lab} (config {c})" if names.count(lab) > 1 else lab for c, lab in labels.items()}


def _core(name: str) -> str:
    """``val_mse`` -> ``mse``: a validation metric's name without its split prefix."""
    low = name.lower()
    for p in _VAL_PREFIXES:
        if low.startswith(p):
            return low[len(p) :]
    return low


def loss_partner(res, h: pd.DataFrame | None = None) -> str | None:
    """The validation column that measures the same quantity as train_loss, shown
    on one axis with it: the selection metric when it is that quantity (``val_loss``,
    or e.g. ``val_mse`` equal to ``val_loss`` row by row, or a loss-named metric of
    train_loss's magnitude when there is no ``val_loss``), else ``val_loss``, else None."""
    h = res.history if h is None else h
    metric = res.metric
    if metric not in h.columns or "train_loss" not in h.columns or metric == "train_loss":
        return "val_loss" if "val_loss" in h.columns and metric == "train_loss" else None
    m = h[metric].to_numpy(float)
    if _core(metric) == "loss":
        return metric
    if "val_loss" in h.columns:
        v = h["val_loss"].to_numpy(float)
        ok = np.isfinite(m) & np.isfinite(v)
        if ok.any() and np.allclose(m[ok], v[ok], rtol=1e-6, atol=1e-12):
            return metric
        return "val_loss"
    if _core(metric) in _LOSS_NAMES:
        t = h["train_loss"].to_numpy(float)
        ok = np.isfinite(m) & np.isfinite(t) & (m > 0) & (t > 0)
        if ok.any() and abs(np.log10(np.median(m[ok]) / np.median(t[ok]))) < 0.5:  # same scale: within ~3x
            return metric
    return None


def _log_scale(values: np.ndarray) -> bool:
    """Log axis for positive values spanning more than a decade (curricula, early epochs)."""
    v = values[np.isfinite(values)]
    return len(v) > 0 and (v > 0).all() and v.max() / v.min() > 10


def _best_epoch(mean: pd.Series, goal: str):
    """(epoch, value) where the mean over seeds is best."""
    m = mean.dropna()
    if m.empty:
        return None
    e = m.idxmin() if goal == "min" else m.idxmax()
    return e, m[e]


def _panels(res, h: pd.DataFrame) -> list[list[tuple[str, str]]]:
    """[(column, line style), ...] per panel of history.png: train_loss (dashed)
    with its validation partner (solid) on one axis, then the selection metric
    when it is another quantity."""
    metric = res.metric
    partner = loss_partner(res, h) if "train_loss" in h.columns else None
    panels = []
    if "train_loss" in h.columns:
        panels.append([("train_loss", "--"), (partner, "-")] if partner else [("train_loss", "-")])
    if metric not in {"train_loss", partner}:
        panels.append([(metric, "-")])
    return panels


def history_figure(res):
    """history.png: the figure of ``history``. Each configuration (the best ``_MAX_LINES``)
    in its ``config_colors`` colour: a thin line per seed (validation curves),
    the mean over seeds on top, a star where the mean selection metric is best.
    train_loss (dashed) and the validation column of the same quantity (solid)
    share one axis; a selection metric of another quantity gets its own panel."""
    from matplotlib.lines import Line2D

    h = res.history[~res.history["diverged"]].merge(res.members[["member", "config_id"]], on="member")
    metric, goal = res.metric, res.goal
    panels = _panels(res, h)
    colors = config_colors(res)
    ids = _top_configs(res)
    labels = _labels(res, ids)
    fig = _figure(figsize=(6.5 * len(panels) + 2.2, 4.6), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    better = "lower" if goal == "min" else "higher"
    for ax, cols in zip(axes, panels):
        for col, style in cols:
            for cid in ids:
                part = h[h["config_id"] == cid]
                color = colors.get(int(cid), "0.4")
                for member, seed in part.groupby("member") if style == "-" else ():  # train: the mean only
                    ax.plot(seed["epoch"], seed[col], color=color, gid=f"seed:{cid}:{member}", **_SEED_STYLE)
                mean = part.groupby("epoch")[col].mean()
                ax.plot(mean.index, mean.values, ls=style, lw=1.8, color=color, gid=f"mean:{cid}:{col}")
                best = _best_epoch(mean, goal) if col == metric else None
                if best is not None:
                    ax.plot(
                        *best, marker="*", ms=13, color=color, mec="k", mew=0.6, ls="none", zorder=5, gid=f"best:{cid}"
                    )
        if _log_scale(h[[c for c, _ in cols]].to_numpy(float).ravel()):
            ax.set_yscale("log")
        ax.set_xlabel("epoch")
        names = [c for c, _ in cols]
        if len(names) == 2:
            ax.set_ylabel(f"{names[0]} (dashed), {names[1]} (solid)")
            note = f"{better} is better" if names[1] == metric else f"selection metric {metric}: next panel"
            ax.set_title(f"train vs validation, one quantity ({note})", fontsize=10)
        elif names[0] == metric:
            ax.set_ylabel(metric)
            ax.set_title(f"{metric}: selection metric, {better} is better", fontsize=10)
        else:
            ax.set_ylabel(names[0])
            ax.set_title(f"{names[0]} (another quantity than {metric})", fontsize=10)
        ax.grid(alpha=0.3, lw=0.5)
        ax.xaxis.get_major_locator().set_params(integer=True)

    handles = [Line2D([], [], color=colors.get(int(c), "0.4"), lw=2, label=labels[c]) for c in ids]
    handles += [
        Line2D([], [], color="0.3", lw=1.8, label="mean over seeds"),
        Line2D([], [], color="0.3", label="one seed", **_SEED_STYLE),
        Line2D([], [], color="0.3", ls="none", marker="*", ms=11, mec="k", mew=0.6, label=f"best mean {metric}"),
    ]
    if any(len(cols) == 2 for cols in panels):
        handles.append(Line2D([], [], color="0.3", ls="--", lw=1.2, label="train_loss (mean)"))
    n_seeds = h.groupby("config_id")["member"].nunique()
    seeds = f"{n_seeds.min()}" if n_seeds.min() == n_seeds.max() else f"{n_seeds.min()}-{n_seeds.max()}"
    more = f"; the best {len(ids)} of {len(res.summary)} configurations" if len(res.summary) > len(ids) else ""
    fig.suptitle(f"history: {seeds} seed(s) per configuration, diverged epochs left out{more}", fontsize=10)
    fig.legend(handles=handles, loc="outside right center", fontsize=7, frameon=False)
    return fig


def scatter_data(res) -> dict | None:
    """What scatter.png shows: predicted vs true on the validation split for the
    best member, in the task's original units, as ``{"member", "views": [(name,
    true, predicted, axis scale)]}``. None unless the workload predicts one
    real-valued target per row (a regression). Runs the member's model (JAX)."""
    from jaxexp import config as cfgmod

    finished = res.members[res.members["member"].isin(list(res.best_params)) & (res.members["status"] != "diverged")]
    if finished.empty:
        return None
    col = f"best_{res.metric}"
    best = int(finished.loc[finished[col].idxmin() if res.goal == "min" else finished[col].idxmax(), "member"])
    cfg = res.member_config(best)
    wl = cfgmod.workload_of(cfg)
    info = wl.dataset(cfg).info
    if wl.predict is None or best not in res.best_params:
        return None
    y, p = res.predict(best)
    if y.ndim != 2 or p.shape != y.shape or not np.issubdtype(y.dtype, np.floating):
        return None
    mean, std = np.asarray(info.get("target_mean", [0.0])), np.asarray(info.get("target_std", [1.0]))
    y, p = (y * std + mean)[:, 0], (p * std + mean)[:, 0]
    finite = np.isfinite(y) & np.isfinite(p)  # padded entries (NaN) of a workload's predictions
    if not finite.any():
        return None
    y, p = y[finite], p[finite]
    if info.get("target_units") == "log2":  # targets are log2(value)
        views = [("value (log axes)", 2.0**y, 2.0**p, "log"), ("value", 2.0**y, 2.0**p, "linear")]
    else:
        views = [("value", y, p, "linear")]
        if (y > 0).all() and (p > 0).all():
            views.append(("value (log axes)", y, p, "log"))
    return {"member": best, "views": views}


def scatter_figure(data: dict):
    """The figure of ``scatter_data``: one panel per view, the diagonal dashed."""
    views = data["views"]
    fig = _figure(figsize=(5 * len(views), 4.5), layout="tight")
    axes = fig.subplots(1, len(views), squeeze=False)
    for ax, (name, yy, pp, scale) in zip(axes[0], views):
        ax.scatter(yy, pp, s=6, alpha=0.5)
        lo, hi = min(yy.min(), pp.min()), max(yy.max(), pp.max())
        ax.plot([lo, hi], [lo, hi], "k--", lw=1)
        ax.set_xscale(scale)
        ax.set_yscale(scale)
        ax.set_xlabel(f"true {name}")
        ax.set_ylabel(f"predicted {name}")
        ax.set_title(f"member {data['member']}, best epoch, validation")
    return fig


def group_metric(res) -> str:
    """The per-group column shown: the selection metric, or val_loss when that is
    not a per-group metric (e.g. train_loss)."""
    return res.metric if res.metric in res.groups.columns else "val_loss"


def _group_ids(res) -> pd.DataFrame:
    """Mean per-group metric at the best epoch: rows = groups, columns = config ids
    (the best ``_MAX_LINES`` configurations, best first)."""
    col = group_metric(res)
    ids = _top_configs(res)
    g = res.groups.merge(res.members[["member", "config_id"]], on="member")
    g = g[g["config_id"].isin(ids)]
    table = g.pivot_table(index="group", columns="config_id", values=col, aggfunc="mean", sort=False)
    return table[[c for c in ids if c in table.columns]]


def group_table(res) -> pd.DataFrame:
    """Mean per-group metric at the best epoch: rows = groups, columns = configurations
    (labelled, best first)."""
    table = _group_ids(res)
    labels = _labels(res, table.columns)
    return table.set_axis([labels[c] for c in table.columns], axis=1)


def groups_figure(res):
    """groups.png: the figure of ``groups``: one bar per configuration and group, in the
    configuration's ``config_colors`` colour."""
    table = _group_ids(res)
    labels = _labels(res, table.columns)
    colors = config_colors(res)
    n = max(1, table.shape[1])
    fig = _figure(figsize=(max(6, 0.6 * len(table) * n / 2) + 2.2, 4), layout="constrained")
    ax = fig.subplots()
    width = 0.8 / n
    x = np.arange(len(table))
    for i, cid in enumerate(table.columns):
        ax.bar(
            x + i * width,
            table[cid].values,
            width,
            label=labels[cid],
            color=colors.get(int(cid), "0.4"),
            gid=f"bars:{cid}",
        )
    ax.set_xticks(x + 0.4 - width / 2, table.index, rotation=45, ha="right")
    if _log_scale(table.to_numpy(float).ravel()):
        ax.set_yscale("log")
    ax.set_ylabel(f"{group_metric(res)} at best epoch (mean over seeds)")
    ax.grid(axis="y", alpha=0.3, lw=0.5)
    fig.legend(loc="outside right center", fontsize=7, frameon=False)
    return fig


def draw(v: View, scatter: dict | None, directory: str, warn=None, alive=None) -> list[str]:
    """Writes every plot that applies to ``v`` (and ``scatter``: a ``scatter_data``)
    into ``directory``; returns the file names. A plot that fails is reported
    through ``warn`` and skipped; the others are written. ``alive``: checked before
    each figure; False stops the drawing (the helper of a command that is gone)."""
    if v.history[~v.history["diverged"]].empty:
        return []
    figures = {"history.png": lambda: history_figure(v)}
    if scatter is not None:
        figures["scatter.png"] = lambda: scatter_figure(scatter)
    if not v.groups.empty:
        figures["groups.png"] = lambda: groups_figure(v)
    written = []
    for name, figure in figures.items():
        if alive is not None and not alive():
            break
        try:
            figure().savefig(os.path.join(directory, name), dpi=100)
            written.append(name)
        except Exception as e:  # a plot must never cost the results or the other plots
            if warn is not None:
                warn(f"{name} not written: {type(e).__name__}: {e}")
    return written


def prepare(res, warn=None) -> tuple[View, dict | None] | None:
    """The arguments of ``draw`` for ``res`` (a Results): its View and scatter data
    (computed here: they need the config and JAX); None when nothing is drawn."""
    if res.history[~res.history["diverged"]].empty:
        return None
    try:
        data = scatter_data(res)
    except Exception as e:  # as in draw: one plot lost, never the others
        data = None
        if warn is not None:
            warn(f"scatter.png not written: {type(e).__name__}: {e}")
    return view(res), data


def write_all(res, directory: str, warn=None) -> list[str]:
    """Writes every plot of ``res`` (a Results) that applies; see ``draw``."""
    args = prepare(res, warn)
    return [] if args is None else draw(*args, directory, warn)


def warm_up() -> None:
    """Imports matplotlib and draws one small figure (fonts, text layout), so that
    the first real plot does not pay for them."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = _figure(figsize=(2, 2))
    fig.subplots().set_title("warm-up")
    FigureCanvasAgg(fig).draw()
