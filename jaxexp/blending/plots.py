"""Plots of a blend-weight search (matplotlib's object API: no display, no pyplot state).

- K = 3 on the simplex: ``ternary.png``, a heatmap of the score over the
  triangle with the plateau outlined, exact ties dotted, the grid best, the
  exact optimum and the listed weightings marked.
- otherwise: ``profiles.png``, for each model the best score over all grid
  points with that model's weight fixed (a profile curve).
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.tri import Triangulation

from jaxexp.blending.score import goal_sign


def save(fig: Figure, path: str) -> None:
    fig.savefig(path, dpi=110, format="png")


def _xy(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Barycentric (G, 3) -> Cartesian: model 0 bottom left, 1 bottom right, 2 top."""
    w = np.atleast_2d(w)
    return w[:, 1] + 0.5 * w[:, 2], (np.sqrt(3) / 2) * w[:, 2]


def ternary(names, w, scores, metric, plateau_mask, tie_mask, best_w, opt_w, labels, w_list) -> Figure:
    fig = Figure(figsize=(7.5, 6.5))
    ax = fig.add_subplot()
    x, y = _xy(w)
    sign = goal_sign(metric)
    best = np.min(sign * scores) * sign
    far = np.quantile(scores, 0.5 if sign > 0 else 0.5)
    lo, hi = (best, far) if sign > 0 else (far, best)
    tri = Triangulation(x, y)
    pc = ax.tripcolor(tri, scores, shading="gouraud", cmap="viridis_r" if sign > 0 else "viridis", vmin=lo, vmax=hi)
    fig.colorbar(pc, ax=ax, shrink=0.8, label=f"{metric} (colour clipped at the median)")
    if plateau_mask.any() and not plateau_mask.all():
        ax.tricontour(tri, plateau_mask.astype(float), levels=[0.5], colors="white", linewidths=1.5)
    ax.scatter(x[tie_mask], y[tie_mask], s=4, c="black", label=f"exact ties with the best ({int(tie_mask.sum())})")
    bx, by = _xy(best_w)
    ax.scatter(bx, by, marker="*", s=180, c="red", edgecolors="white", label="grid best", zorder=5)
    if opt_w is not None:
        ox, oy = _xy(np.asarray(opt_w))
        ax.scatter(ox, oy, marker="X", s=110, c="orange", edgecolors="black", label="exact optimum", zorder=6)
    if w_list is not None and len(w_list):
        lx, ly = _xy(w_list)
        ax.scatter(lx, ly, s=18, facecolors="none", edgecolors="magenta", label="listed weightings", zorder=4)
    ax.plot([0, 1, 0.5, 0], [0, 0, np.sqrt(3) / 2, 0], c="k", lw=0.8)
    for (cx, cy), name, ha in zip([(0, 0), (1, 0), (0.5, np.sqrt(3) / 2)], names, ("right", "left", "center")):
        ax.annotate(name, (cx, cy), xytext=(0, -12 if cy == 0 else 6), textcoords="offset points", ha=ha)
    ax.set_aspect("equal")
    ax.set_axis_off()
    ax.set_title("Score of every weighting (white line: plateau within eps)", pad=22)
    ax.legend(loc="upper left", fontsize=8, framealpha=0.8)
    return fig


def profiles(names, w, scores, metric, best_w, opt_w) -> Figure:
    fig = Figure(figsize=(7.5, 4.8))
    ax = fig.add_subplot()
    sign = goal_sign(metric)
    for i, name in enumerate(names):
        vals, inv = np.unique(np.round(w[:, i], 9), return_inverse=True)
        prof = np.full(len(vals), np.inf)
        np.minimum.at(prof, inv, sign * scores)
        (line,) = ax.plot(vals, sign * prof, label=name)
        if opt_w is not None:
            ax.axvline(opt_w[i], color=line.get_color(), ls=":", lw=0.8)
    ax.axhline(np.min(sign * scores) * sign, color="k", lw=0.6, ls="--", label="grid best")
    ax.set_xlabel("weight of the model (others optimised over the grid)")
    ax.set_ylabel(f"best {metric}")
    ax.set_title("Profile: best score with one weight fixed (dotted: exact optimum)")
    ax.legend(fontsize=8)
    return fig


def figures(data, w, scores, metric, plateau_mask, tie_mask, summary, labels, w_list) -> dict:
    best_w = np.asarray(summary["grid_best"]["w"])
    opt_w = summary["exact"].get("w")
    on_simplex = data.k == 3 and np.allclose(w.sum(1), 1) and (w >= -1e-12).all()
    if on_simplex and len(w) >= 3:
        return {
            "ternary.png": ternary(data.names, w, scores, metric, plateau_mask, tie_mask, best_w, opt_w, labels, w_list)
        }
    return {"profiles.png": profiles(data.names, w, scores, metric, best_w, opt_w)}
