"""Plots of a blend-weight search (matplotlib's object API: no display, no pyplot state).

- K = 3 on the simplex: ``ternary.png``, a heatmap of the score over the
  triangle with the plateau outlined, exact ties dotted, the grid best, the
  exact optimum and the listed weightings marked.
- otherwise: ``profiles.png``, for each model the best score over all grid
  points with that model's weight fixed (a profile curve).
"""

from __future__ import annotations

import math

import numpy as np
from matplotlib.figure import Figure
from matplotlib.tri import Triangulation

from jaxexp.blending.labels import label_points, point_boxes
from jaxexp.blending.score import goal_sign

GRID_STEP = 0.2  # gridlines and ticks of the full simplex
MAX_NAMED = 15  # listed weightings labelled by name; the others by number, with a key
ZOOM_SPAN = 0.25  # listed weightings closer together than this (triangle side = 1) get a zoomed panel
_H = np.sqrt(3) / 2
# per model (vertex 0 bottom left, 1 bottom right, 2 top): the colour of its tick labels
TICK_COLORS = ("#b2182b", "#2166ac", "#1b7837")


def save(fig: Figure, path: str) -> None:
    fig.savefig(path, dpi=110, format="png")


def _xy(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Barycentric (G, 3) -> Cartesian: model 0 bottom left, 1 bottom right, 2 top."""
    w = np.atleast_2d(w)
    return w[:, 1] + 0.5 * w[:, 2], _H * w[:, 2]


def _gridline(i: int, t: float) -> tuple[np.ndarray, np.ndarray]:
    """The two ends (Cartesian) of the line where model i has weight t: first the
    end on the edge that carries model i's ticks (0: left edge, 1: bottom, 2: right)."""
    a, b = np.zeros(3), np.zeros(3)
    a[i] = b[i] = t
    j, k = {0: (2, 1), 1: (0, 2), 2: (1, 0)}[i]  # a: the other weight on the tick edge; b: the far edge
    a[j], b[k] = 1 - t, 1 - t
    return np.concatenate(_xy(a)), np.concatenate(_xy(b))


def _nice_step(span: float) -> float:
    """A 1-2-5 step giving about six gridlines over ``span``."""
    raw = span / 6
    base = 10 ** np.floor(np.log10(raw))
    return float(next(m * base for m in (1, 2, 5, 10) if m * base >= raw))


def _ticks(t: float) -> np.ndarray:
    return np.round(np.arange(t, 1 - t / 2, t), 10)


def simplex_grid(ax, names, step: float = GRID_STEP) -> None:
    """Gridlines every ``step`` of each weight, tick labels outside the triangle
    (model i's in ``TICK_COLORS[i]``), and the edges named (the weight grows
    along its arrow)."""
    align = {0: ("right", "center"), 1: ("center", "top"), 2: ("left", "center")}
    for i in range(3):
        for t in _ticks(step):
            a, b = _gridline(i, t)
            ax.plot([a[0], b[0]], [a[1], b[1]], color="white", lw=0.6, alpha=0.45, zorder=2)
            d = (a - b) / np.linalg.norm(a - b)
            ax.plot(*np.c_[a, a + 0.025 * d], color="k", lw=0.8, zorder=2)
            ax.text(*(a + 0.035 * d), f"{t:g}", fontsize=7, color=TICK_COLORS[i], ha=align[i][0], va=align[i][1])
    titles = (  # outside each tick edge, along it
        (0.25 - 0.16 * _H, _H / 2 + 0.08, 60, f"← {names[0]} weight"),
        (0.5, -0.12, 0, f"{names[1]} weight →"),
        (0.75 + 0.16 * _H, _H / 2 + 0.08, -60, f"← {names[2]} weight"),
    )
    for i, (x, y, rot, text) in enumerate(titles):
        ax.text(
            x,
            y,
            text,
            rotation=rot,
            ha="center",
            va="center",
            fontsize=8,
            color=TICK_COLORS[i],
            rotation_mode="anchor",
        )


def _zoom_grid(ax, step: float, names) -> None:
    """Gridlines of a zoomed view, each weight's labelled where it leaves the view:
    model 2 (horizontal lines) on the left, model 1 at the bottom, model 0 at the top."""
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    for i in range(3):
        for t in _ticks(step):
            a, b = _gridline(i, t)
            ax.plot([a[0], b[0]], [a[1], b[1]], color="white", lw=0.6, alpha=0.45, zorder=2)
            if i == 2:  # horizontal: y = H t
                y = _H * t
                if y0 < y < y1:
                    ax.text(x0, y, f"{t:g} ", fontsize=7, color=TICK_COLORS[i], ha="right", va="center")
                continue
            yb = y0 if i == 1 else y1
            if abs(b[1] - a[1]) < 1e-12:
                continue
            s = (yb - a[1]) / (b[1] - a[1])
            x = a[0] + s * (b[0] - a[0])
            if 0 <= s <= 1 and x0 < x < x1:
                ax.text(
                    x, yb, f"{t:g}", fontsize=7, color=TICK_COLORS[i], ha="center", va="top" if i == 1 else "bottom"
                )
    ax.set_xlabel(f"{names[1]} weight (bottom labels), {names[0]} weight (top labels)", fontsize=8, labelpad=14)
    ax.set_ylabel(f"{names[2]} weight", fontsize=8, labelpad=22, color=TICK_COLORS[2])


def _label_listed(fig, ax, lx, ly, labels) -> str:
    """Labels the listed weightings in ``ax``: the first ``MAX_NAMED`` by name,
    the others (and any name with no room) by number; returns the key of the
    numbers ("16 micro_n, ..."), "" when none."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    for a in fig.axes:
        a.apply_aspect()  # the final positions (equal aspect) before measuring, without drawing the heatmap
    renderer = canvas.get_renderer()
    n = len(lx)
    named = list(range(min(n, MAX_NAMED)))
    taken = point_boxes(ax, lx, ly)
    ok = label_points(ax, lx[named], ly[named], [labels[i] for i in named], renderer, taken)
    numbered = [i for i, good in zip(named, ok) if not good] + list(range(MAX_NAMED, n))
    if numbered:
        idx = np.array(numbered)
        got = label_points(ax, lx[idx], ly[idx], [str(i + 1) for i in numbered], renderer, taken, fontsize=6.5)
        for i, good in zip(numbered, got):
            if not good:  # no free place: written anyway, on top
                ax.annotate(
                    str(i + 1), (lx[i], ly[i]), xytext=(3, 3), textcoords="offset points", fontsize=6.5, zorder=7
                )
    return ", ".join(f"{i + 1} {labels[i]}" for i in numbered)


MAX_DRAWN = 40_000  # grid points drawn on the triangle (a 0.001 grid has 501,501; the figure ~800 px)


def _thinned(w: np.ndarray) -> np.ndarray:
    """Indices of the grid points on a lattice k times coarser than the grid, with k
    the smallest that leaves at most MAX_DRAWN points (all of them when they fit)."""
    if len(w) <= MAX_DRAWN:
        return np.arange(len(w))
    positive = w[w > 1e-12]
    n = round(1.0 / positive.min()) if positive.size else 1  # grid steps per unit weight
    k = math.ceil(math.sqrt(len(w) / MAX_DRAWN))
    units = np.rint(w * n).astype(np.int64)
    on = np.all(units % k == 0, axis=1)
    return np.nonzero(on)[0] if on.sum() >= 3 else np.arange(len(w))


def ternary(
    names, w, scores, metric, plateau_mask, tie_mask, best_w, opt_w, labels, w_list, opt_name="exact optimum"
) -> Figure:
    """The score over the simplex (see the module doc), gridlines every
    ``GRID_STEP`` with tick labels, and every listed weighting labelled; listed
    weightings closer together than ``ZOOM_SPAN`` are labelled in a zoomed
    panel beside the triangle."""
    lx, ly, labels = _listed_points(labels, w_list)
    zoom = lx is not None and len(lx) >= 2 and max(np.ptp(lx), np.ptp(ly)) < ZOOM_SPAN
    fig, gs = _figure(zoom)
    ax = fig.add_subplot(gs[0])
    x, y = _xy(w)
    keep = _thinned(w)
    panels = [(ax, keep)]
    if zoom:
        view, half, near = _zoom_view(lx, ly, x, y)
        panels.append((fig.add_subplot(gs[1]), near if len(near) >= 3 else keep))
    cmap, lo, hi = _colour_scale(scores, metric)
    handles = {}  # the legend's entries: every panel draws them, the last panel's are shown
    for a, idx in panels:
        t = Triangulation(x[idx], y[idx])
        pc = a.tripcolor(t, scores[idx], shading="gouraud", cmap=cmap, vmin=lo, vmax=hi, zorder=1)
        plateau = plateau_mask[idx]
        if plateau.any() and not plateau.all():
            a.tricontour(t, plateau.astype(float), levels=[0.5], colors="white", linewidths=1.5, zorder=3)
        handles.update(_markers(a, x, y, tie_mask, best_w, opt_w, opt_name, lx, ly))
        a.set_aspect("equal")
    fig.colorbar(pc, cax=fig.add_subplot(gs[-1]), label=f"{metric} (colour clipped at the median)")
    _triangle(ax, names)
    key = ""
    if zoom:
        key = _zoom_panel(fig, ax, panels[1][0], view, half, names, lx, ly, labels)
    elif lx is not None:
        key = _label_listed(fig, ax, lx, ly, labels)
    _titles(fig, metric, list(handles.values()), key)
    return fig


def _listed_points(labels, w_list) -> tuple[np.ndarray | None, np.ndarray | None, list[str]]:
    """The listed weightings (L, 3) in Cartesian coordinates (None, None when
    there are none) and their labels ("#i" for those without one)."""
    labels = list(labels) if labels is not None else []
    if w_list is None or not len(w_list) > 0:
        return None, None, labels
    lx, ly = _xy(np.asarray(w_list, float))
    labels += [f"#{i + 1}" for i in range(len(labels), len(lx))]
    return lx, ly, labels


def _figure(zoom: bool):
    """The figure and its grid: the triangle, the zoomed panel (with ``zoom``)
    and the colour bar."""
    fig = Figure(figsize=(13.5, 7.2) if zoom else (8.5, 7.8))
    gs = fig.add_gridspec(
        1,
        3 if zoom else 2,
        width_ratios=[1, 0.85, 0.035] if zoom else [1, 0.04],
        left=0.04,
        right=0.93 if zoom else 0.88,
        bottom=0.17,
        top=0.92,
        wspace=0.25 if zoom else 0.08,
    )
    return fig, gs


def _zoom_view(lx, ly, x, y) -> tuple[tuple, float, np.ndarray]:
    """The zoomed panel: its view (x0, x1, y0, y1), a square of half side
    ``half`` around the listed weightings (Cartesian), and the indices of the
    grid points (``x``, ``y``) near it."""
    span = max(np.ptp(lx), np.ptp(ly))
    cx, cy = (lx.max() + lx.min()) / 2, (ly.max() + ly.min()) / 2
    half = max(span * 0.75, 0.015)
    view = (cx - half, cx + half, cy - half, cy + half)
    # the full grid near the view (a margin of a few grid steps), not the thinned one
    pad = 2 * half
    near = np.nonzero((np.abs(x - cx) <= half + pad) & (np.abs(y - cy) <= half + pad))[0]
    return view, half, near


def _colour_scale(scores, metric) -> tuple[str, float, float]:
    """(colour map, low, high): from the best score to the median, darker = better."""
    sign = goal_sign(metric)
    best = np.min(sign * scores) * sign
    far = np.quantile(scores, 0.5)
    lo, hi = (best, far) if sign > 0 else (far, best)
    return ("viridis_r" if sign > 0 else "viridis"), lo, hi


def _markers(a, x, y, tie_mask, best_w, opt_w, opt_name, lx, ly) -> dict:
    """The exact ties, grid best, solver's point and listed weightings on one
    panel; returns their legend handles by kind."""
    handles = {}
    handles["ties"] = a.scatter(
        x[tie_mask],
        y[tie_mask],
        s=4,
        c="black",
        zorder=4,
        label=f"exact ties with the best ({int(tie_mask.sum())})",
    )
    bx, by = _xy(best_w)
    handles["best"] = a.scatter(bx, by, marker="*", s=180, c="red", edgecolors="white", label="grid best", zorder=6)
    if opt_w is not None:
        ox, oy = _xy(np.asarray(opt_w))
        handles["opt"] = a.scatter(ox, oy, marker="X", s=110, c="orange", edgecolors="black", label=opt_name, zorder=6)
    if lx is not None:
        handles["listed"] = a.scatter(
            lx,
            ly,
            s=22,
            facecolors="none",
            edgecolors="magenta",
            linewidths=1.2,
            label=f"listed weightings ({len(lx)})",
            zorder=5,
        )
    return handles


def _triangle(ax, names) -> None:
    """The full simplex: its outline, the models at the vertices, gridlines and ticks."""
    ax.plot([0, 1, 0.5, 0], [0, 0, _H, 0], c="k", lw=0.8, zorder=3)
    for (vx, vy), name, ha, dy in zip([(0, 0), (1, 0), (0.5, _H)], names, ("right", "left", "center"), (-4, -4, 6)):
        ax.annotate(
            name,
            (vx, vy),
            xytext=(0, dy),
            textcoords="offset points",
            ha=ha,
            va="top" if dy < 0 else "bottom",
            fontsize=9,
            fontweight="bold",
        )
    simplex_grid(ax, names)
    ax.set_xlim(-0.2, 1.2)
    ax.set_ylim(-0.18, _H + 0.1)
    ax.set_axis_off()


def _zoom_panel(fig, ax, zax, view, half, names, lx, ly, labels) -> str:
    """The zoomed panel ``zax`` on ``view`` (outlined on the triangle ``ax``)
    with its gridlines and the listed weightings labelled; returns the key of
    the numbered labels."""
    zax.set_xlim(*view[:2])
    zax.set_ylim(*view[2:])
    zax.set_xticks([])
    zax.set_yticks([])
    _zoom_grid(zax, _nice_step(2 * half), names)
    zax.set_title("zoom on the listed weightings", fontsize=9, pad=14)
    ax.indicate_inset((view[0], view[2], 2 * half, 2 * half), inset_ax=zax, edgecolor="0.1", lw=0.8)
    return _label_listed(fig, zax, lx, ly, labels)


def _titles(fig, metric, handles: list, key: str) -> None:
    """The title, the legend and the key of the numbered labels."""
    fig.suptitle(
        f"Score of every weighting (white line: plateau within eps; {metric}, "
        f"{'lower' if goal_sign(metric) > 0 else 'higher'} is better)",
        fontsize=11,
    )
    fig.legend(
        handles=handles,
        loc="lower center",
        bbox_to_anchor=(0.5, 0.07),
        ncol=4,
        fontsize=8,
        frameon=False,
    )
    if key:
        import textwrap

        fig.text(0.5, 0.015, "\n".join(textwrap.wrap("listed: " + key, 160)), ha="center", va="bottom", fontsize=7)


def profiles(names, w, scores, metric, best_w, opt_w, opt_name="exact optimum") -> Figure:
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
    ax.set_title(f"Profile: best score with one weight fixed (dotted: {opt_name})")
    ax.legend(fontsize=8)
    return fig


def figures(data, w, scores, metric, plateau_mask, tie_mask, summary, labels, w_list) -> dict:
    best_w = np.asarray(summary["grid_best"]["w"])
    opt_w = summary["exact"].get("w")
    opt_name = summary["exact"].get("name") or "exact optimum"  # what the solver's point is the optimum of
    on_simplex = data.k == 3 and np.allclose(w.sum(1), 1) and (w >= -1e-12).all()
    if on_simplex and len(w) >= 3:
        return {
            "ternary.png": ternary(
                data.names, w, scores, metric, plateau_mask, tie_mask, best_w, opt_w, labels, w_list, opt_name
            )
        }
    return {"profiles.png": profiles(data.names, w, scores, metric, best_w, opt_w, opt_name)}
