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
from jaxexp.analysis.dims import to_scale


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


def parallel(a, path: str) -> None:
    """Parallel coordinates: each parameter scaled to [0, 1] over its range (log
    scale for log ranges, level index for levels), lines coloured by the metric,
    elites drawn on top; inactive parameters leave a gap."""
    plt = _pyplot()
    cols = []
    for d in a.dims:
        col = a.configs[d.name]
        if d.kind == "numeric" and not d.choice:
            lo, hi = (d.low, d.high) if d.bounded else (col.min(), col.max())
            s = to_scale(d, col.to_numpy(float))
            s_lo, s_hi = to_scale(d, [lo, hi])
            cols.append((s - s_lo) / (s_hi - s_lo) if s_hi > s_lo else np.zeros(len(s)))
        else:
            x, labels = _positions(d, col)
            cols.append(x / max(1, len(labels) - 1))
    data = np.stack(cols, axis=1)
    y = a.configs[a.metric].to_numpy(float)
    norm = (y - y.min()) / (np.ptp(y) or 1.0)
    if a.goal == "max":
        norm = 1 - norm  # dark = good either way
    cmap = plt.get_cmap("viridis")
    fig, ax = plt.subplots(figsize=(max(6, 1.4 * len(a.dims)), 4.5))
    order = np.argsort(-norm)  # worst first, best drawn last
    for i in order:
        elite = a.elite_mask[i]
        ax.plot(
            range(len(a.dims)), data[i], color="red" if elite else cmap(norm[i]), lw=1.6 if elite else 0.7, alpha=0.8
        )
    ax.set_xticks(range(len(a.dims)), [d.name for d in a.dims], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("position in range (0 = low, 1 = high)")
    ax.set_title(f"parallel coordinates; red = elites (top {a.counts['elites']}); colour: {a.metric}")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


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
    """Mutation tree: x = generation (depth from a root), nodes coloured by the
    metric, an edge from each parent to its child."""
    plt = _pyplot()
    t = a.lineage.copy()
    t["node_id"] = t["node_id"].astype(str)
    t["parent_id"] = t["parent_id"].map(lambda v: "" if pd.isna(v) else str(v))
    parent = dict(zip(t["node_id"], t["parent_id"]))
    depth: dict = {}

    def depth_of(n, seen=()):
        if n in depth:
            return depth[n]
        p = parent.get(n, "")
        depth[n] = 0 if not p or p not in parent or p in seen else depth_of(p, (*seen, n)) + 1
        return depth[n]

    t["depth"] = [depth_of(n) for n in t["node_id"]]
    t["row"] = t.groupby("depth").cumcount()
    pos = {n: (d, r) for n, d, r in zip(t["node_id"], t["depth"], t["row"])}
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * (t["depth"].max() + 1)), max(4, 0.25 * t["row"].max() + 2)))
    for n, p in parent.items():
        if p in pos:
            (x0, y0), (x1, y1) = pos[p], pos[n]
            ax.plot([x0, x1], [y0, y1], color="0.7", lw=0.8, zorder=1)
    sc = ax.scatter(t["depth"], t["row"], c=t[a.metric], cmap="viridis_r" if a.goal == "min" else "viridis", zorder=2)
    fig.colorbar(sc, ax=ax, label=a.metric)
    ax.set_xlabel("generation")
    ax.set_yticks([])
    ax.set_title("lineage (parent -> child)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write_all(a, directory: str, warn=None) -> list[str]:
    """Writes every plot that applies; a plot that fails is skipped with a warning."""
    jobs = {"metric_vs_params.png": lambda p: metric_vs_params(a, p), "parallel.png": lambda p: parallel(a, p)}
    for pair in a.contours:
        jobs[f"contour_{safe_name(pair[0])}__{safe_name(pair[1])}.png"] = lambda p, pair=pair: contour(a, pair, p)
    if a.lineage is not None:
        jobs["lineage.png"] = lambda p: lineage(a, p)
    written = []
    for name, fn in jobs.items():
        try:
            fn(os.path.join(directory, name))
            written.append(name)
        except Exception as e:  # a plot must never cost the tables or the other plots
            if warn is not None:
                warn(f"{name} not written: {type(e).__name__}: {e}")
    return written
