"""Plots of an analysis (matplotlib, Agg backend): metric vs each parameter,
parallel coordinates, contours of the top pairs, and a lineage tree for
mutation runs. Each function writes one PNG."""

from __future__ import annotations

import math
import os
import re

import numpy as np
import pandas as pd

from jaxexp.analysis import core
from jaxexp.analysis.dims import from_scale, to_scale
from jaxexp.analysis.lineage import lineage_layout


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)


def _positions(d, col: pd.Series) -> tuple[np.ndarray, list | None]:
    """x positions of a column's values (level index for levels) and tick labels."""
    if d.kind == "numeric" and not d.choice:
        return col.to_numpy(float), None
    keys = col.map(core.level_key, na_action="ignore")
    levels = core._levels(d, col)
    pos = {k: i for i, k in enumerate(levels)}
    return keys.map(pos).to_numpy(float), levels


def metric_vs_params(a, path: str) -> None:
    """One panel per parameter: metric per configuration, elites in red,
    Spearman rho (numeric) or Kruskal/Welch p (levels) in the title."""
    plt = _pyplot()
    n = len(a.dims)
    cols = min(4, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.2 * rows), squeeze=False)
    cont = a.continuous.set_index("parameter")
    boo = a.boolean.set_index("parameter")
    cat = a.categorical.drop_duplicates("parameter").set_index("parameter")
    y = a.configs[a.metric].to_numpy(float)
    for ax, d in zip(axes.flat, a.dims):
        col = a.configs[d.name]
        act = col.notna().to_numpy()
        x, labels = _positions(d, col)
        ax.scatter(x[act & ~a.elite_mask], y[act & ~a.elite_mask], s=12, alpha=0.6, label="all")
        ax.scatter(x[act & a.elite_mask], y[act & a.elite_mask], s=16, color="red", label="elites")
        if labels is not None:
            ax.set_xticks(range(len(labels)), labels, rotation=30, fontsize=7)
        elif d.log:
            ax.set_xscale("log")
        if d.name in cont.index:
            r = cont.loc[d.name]
            title = f"rho={r['rho']:+.2f} p={r['p']:.2g}"
        elif d.name in boo.index:
            title = f"Welch p={boo.loc[d.name, 'p']:.2g}"
        elif d.name in cat.index:
            title = f"Kruskal p={cat.loc[d.name, 'kruskal_p']:.2g}"
        else:
            title = ""
        ax.set_title(f"{d.name}\n{title}", fontsize=9)
        ax.set_ylabel(a.metric, fontsize=8)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _axis_ticks(d, col: pd.Series, lo_hi: tuple | None) -> list[tuple[float, str]]:
    """(position in [0, 1], label in the parameter's units) for one axis of the
    parallel-coordinates plot: low, middle and high of a range (geometric middle
    for log ranges), or every level (at most 8; else the first, middle and last)."""
    if lo_hi is not None:
        lo, hi = lo_hi
        s_lo, s_hi = (float(v) for v in to_scale(d, [lo, hi]))
        if not s_hi > s_lo:
            return [(0.0, f"{lo:.3g}")]
        return [(t, f"{from_scale(d, s_lo + t * (s_hi - s_lo)):.3g}") for t in (0.0, 0.5, 1.0)]
    _, labels = _positions(d, col)
    n = len(labels)
    keep = range(n) if n <= 8 else sorted({0, n // 2, n - 1})
    return [(i / max(1, n - 1), str(labels[i])) for i in keep]


def parallel(a, path: str) -> None:
    """Parallel coordinates: each parameter scaled to [0, 1] over its range (log
    scale for log ranges, level index for levels) with its values in its own
    units on the axis, lines coloured by the metric (colour bar; dark = better),
    elites drawn on top in red; inactive parameters leave a gap."""
    plt = _pyplot()
    from matplotlib.colors import Normalize

    cols, ticks = [], []
    for d in a.dims:
        col = a.configs[d.name]
        if d.kind == "numeric" and not d.choice:
            lo, hi = (d.low, d.high) if d.bounded else (col.min(), col.max())
            s = to_scale(d, col.to_numpy(float))
            s_lo, s_hi = to_scale(d, [lo, hi])
            cols.append((s - s_lo) / (s_hi - s_lo) if s_hi > s_lo else np.zeros(len(s)))
            ticks.append(_axis_ticks(d, col, (float(lo), float(hi))))
        else:
            x, labels = _positions(d, col)
            cols.append(x / max(1, len(labels) - 1))
            ticks.append(_axis_ticks(d, col, None))
    data = np.stack(cols, axis=1)
    y = a.configs[a.metric].to_numpy(float)
    cmap = plt.get_cmap("viridis" if a.goal == "min" else "viridis_r")  # dark = good either way
    norm = Normalize(np.nanmin(y), np.nanmax(y) if np.nanmax(y) > np.nanmin(y) else np.nanmin(y) + 1)
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(a.dims)) + 1.2, 4.8))
    order = np.argsort(-core.goal_sign(a.goal) * y, kind="stable")
    for i in order:  # worst first, best drawn last
        elite = a.elite_mask[i]
        ax.plot(
            range(len(a.dims)),
            data[i],
            color="red" if elite else cmap(norm(y[i])),
            lw=1.6 if elite else 0.7,
            alpha=0.8,
            zorder=3 if elite else 2,
        )
    for j, axis_ticks in enumerate(ticks):
        ax.axvline(j, color="0.2", lw=0.8, zorder=1)
        for pos, label in axis_ticks:
            ax.plot([j - 0.03, j], [pos, pos], color="0.2", lw=0.8, zorder=1)
            ax.text(
                j + 0.04,
                pos,
                label,
                fontsize=7,
                va="center",
                ha="left",
                zorder=4,
                bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.75},
            )
    ax.set_xticks(
        range(len(a.dims)), [d.name + (" (log)" if d.log else "") for d in a.dims], rotation=30, ha="right", fontsize=8
    )
    ax.set_xlim(-0.15, len(a.dims) - 1 + 0.45)
    ax.set_ylim(-0.05, 1.05)
    ax.set_yticks([])
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    sm = plt.cm.ScalarMappable(norm=norm, cmap=cmap)
    fig.colorbar(sm, ax=ax, pad=0.02, label=f"{a.metric} (mean over seeds; dark = better)")
    ax.set_title(
        f"parallel coordinates: one line per configuration; red = elites (top {a.counts['elites']})", fontsize=10
    )
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def importance(a, path: str) -> bool:
    """Horizontal bars of the PED-ANOVA importance of each parameter (most
    important on top); parameters with too few configurations are listed as
    n/a. False (nothing written) when no parameter has an importance."""
    imp = a.importance
    if imp is None or imp.empty or imp["importance"].notna().sum() == 0:
        return False
    plt = _pyplot()
    imp = imp.sort_values("importance", ascending=True, na_position="first", kind="stable")
    vals = imp["importance"].fillna(0.0).to_numpy(float)
    fig, ax = plt.subplots(figsize=(7, max(2.5, 0.38 * len(imp) + 1.4)))
    ypos = np.arange(len(imp))
    ax.barh(ypos, vals, color="#1f77b4", gid="importance")
    for yy, v, (_, row) in zip(ypos, vals, imp.iterrows()):
        text = (
            f"{v:.2f} (n={int(row['n'])}, top {int(row['n_top'])})"
            if np.isfinite(row["importance"])
            else "n/a (too few)"
        )
        ax.text(v + 0.01, yy, text, va="center", fontsize=7)
    ax.set_yticks(ypos, imp["parameter"], fontsize=8)
    ax.set_xlim(0, max(1.0, vals.max() * 1.35))
    ax.set_xlabel("importance (share of the summed Pearson divergence)")
    ax.set_title(
        f"parameter importance (PED-ANOVA): how differently the top {a.elite_quantile:.0%}\n"
        "of configurations are spread than all of them, per parameter",
        fontsize=9,
    )
    ax.grid(axis="x", alpha=0.3, lw=0.5)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True


def contour(a, pair: tuple, path: str) -> None:
    """Binned mean metric over a pair (heatmap) with the configurations on top."""
    plt = _pyplot()
    table = a.contours[pair]
    pa, pb = pair
    grid = table.pivot_table(index=f"{pb}_bin", columns=f"{pa}_bin", values=f"mean_{a.metric}", sort=False)
    grid = grid.reindex(index=list(dict.fromkeys(table[f"{pb}_bin"])), columns=list(dict.fromkeys(table[f"{pa}_bin"])))
    fig, ax = plt.subplots(figsize=(6, 4.8))
    im = ax.imshow(
        grid.to_numpy(float), origin="lower", aspect="auto", cmap="viridis_r" if a.goal == "min" else "viridis"
    )
    ax.set_xticks(range(grid.shape[1]), grid.columns, rotation=30, fontsize=7)
    ax.set_yticks(range(grid.shape[0]), grid.index, fontsize=7)
    ax.set_xlabel(pa)
    ax.set_ylabel(pb)
    ax.set_title(f"mean {a.metric} per bin (blank: no trial)")
    fig.colorbar(im, ax=ax)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def lineage(a, path: str) -> None:
    """Mutation tree: one column per generation (integers), a node per
    configuration labelled with its id, its mutation and its metric (coloured by
    the metric), failed nodes as grey crosses, the best node ringed, an edge
    from each parent to its child."""
    plt = _pyplot()
    t = lineage_layout(a)
    n_gen = int(t["generation"].max()) + 1
    n_rows = int(t["row"].max()) + 1
    longest = max(len(s) for s in t["label"])
    col_w = max(1.6, 0.065 * longest + 0.5)  # inches per generation: the node and its label
    fig, ax = plt.subplots(figsize=(min(60, col_w * n_gen + 1.8), min(60, max(3.5, 0.32 * n_rows + 1.6))))
    pos = {n: (g, r) for n, g, r in zip(t["node_id"], t["generation"], t["row"])}
    for n, p in zip(t["node_id"], t["parent_id"]):
        if p in pos:
            (x0, y0), (x1, y1) = pos[p], pos[n]
            ax.plot([x0, x1], [y0, y1], color="0.65", lw=0.8, zorder=1)
    sc = _lineage_nodes(ax, t, a.metric, a.goal)
    for g, r, label, failed in zip(t["generation"], t["row"], t["label"], t["failed"]):
        ax.annotate(
            label,
            (g, r),
            xytext=(7, 0),
            textcoords="offset points",
            va="center",
            fontsize=7,
            color="0.45" if failed else "black",
            zorder=5,
            bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.85},
        )
    fig.colorbar(sc, ax=ax, pad=0.01, label=f"{a.metric} ({'lower' if a.goal == 'min' else 'higher'} is better)")
    _lineage_axes(ax, a.metric, n_gen, n_rows)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _lineage_nodes(ax, t: pd.DataFrame, metric: str, goal: str):
    """The nodes of ``lineage_layout``'s table ``t``: finished ones coloured by
    the metric (the returned scatter, for the colour bar), failed ones as grey
    crosses, the best ringed in red."""
    ok = t[~t["failed"]]
    bad = t[t["failed"]]
    cmap = "viridis_r" if goal == "min" else "viridis"
    sc = ax.scatter(
        ok["generation"],
        ok["row"],
        c=ok[metric].astype(float),
        cmap=cmap,
        s=45,
        zorder=3,
        edgecolors="0.2",
        linewidths=0.4,
    )
    if len(bad):
        ax.scatter(
            bad["generation"],
            bad["row"],
            marker="X",
            s=60,
            c="0.55",
            edgecolors="black",
            linewidths=0.5,
            zorder=3,
            label=f"failed ({len(bad)})",
        )
    if len(ok):
        values = ok[metric].astype(float)
        best = ok.loc[values.idxmin() if goal == "min" else values.idxmax()]
        ax.scatter(
            [best["generation"]],
            [best["row"]],
            s=220,
            facecolors="none",
            edgecolors="red",
            linewidths=1.5,
            zorder=4,
            label=f"best (#{best['node_id']})",
        )
    return sc


def _lineage_axes(ax, metric: str, n_gen: int, n_rows: int) -> None:
    """Generations along the top, generation 0 at the top left, rows downwards;
    the legend below and the title."""
    ax.set_xticks(range(n_gen), [str(g) for g in range(n_gen)])
    ax.set_xlim(-0.3, n_gen - 0.05)
    ax.set_ylim(n_rows - 0.4, -0.6)  # generation 0 at the top, rows downwards
    ax.set_yticks([])
    ax.xaxis.tick_top()
    ax.xaxis.set_label_position("top")
    ax.set_xlabel("generation")
    for side in ("left", "right", "bottom"):
        ax.spines[side].set_visible(False)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=2, fontsize=7, frameon=False, markerscale=0.7)
    ax.set_title(f"lineage: parent -> child; each node: #id, its mutation, {metric}", fontsize=10)


def write_all(a, directory: str, warn=None) -> list[str]:
    """Writes every plot that applies; a plot that fails is skipped with a warning."""
    jobs = {
        "metric_vs_params.png": lambda p: metric_vs_params(a, p),
        "parallel.png": lambda p: parallel(a, p),
        "importance.png": lambda p: importance(a, p),
    }
    for pair in a.contours:
        jobs[f"contour_{safe_name(pair[0])}__{safe_name(pair[1])}.png"] = lambda p, pair=pair: contour(a, pair, p)
    if a.lineage is not None:
        jobs["lineage.png"] = lambda p: lineage(a, p)
    written = []
    for name, fn in jobs.items():
        try:
            if fn(os.path.join(directory, name)) is not False:
                written.append(name)
        except Exception as e:  # a plot must never cost the tables or the other plots
            if warn is not None:
                warn(f"{name} not written: {type(e).__name__}: {e}")
    return written
