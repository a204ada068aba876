"""Labels placed next to points on a matplotlib axes without overlapping the
points, each other or the axes' edges (greedy, in order)."""

from __future__ import annotations

import numpy as np


def point_boxes(ax, xs, ys, radius: float = 3.5) -> list:
    """Display boxes (``radius`` points around each point) that labels keep clear of."""
    from matplotlib.transforms import Bbox

    r = radius * ax.figure.dpi / 72
    return [Bbox.from_extents(px - r, py - r, px + r, py + r) for px, py in ax.transData.transform(np.c_[xs, ys])]


def label_points(ax, xs, ys, texts, renderer, taken: list, fontsize: float = 7) -> list[bool]:
    """Writes ``texts[i]`` next to point i where it overlaps nothing in ``taken``
    (display boxes: the points, earlier labels; each label placed is added) and
    stays inside the axes: greedy, in order, a few directions at growing
    distances, with a leader line when far. Returns, per point, whether a place
    was found (a point without one is not labelled)."""
    from matplotlib.text import Text

    inside = ax.get_window_extent(renderer)
    angles = np.deg2rad([0, 180, 45, 135, -45, -135, 90, -90, 22, 158, -22, -158, 68, 112, -68, -112])
    offsets = [(d * np.cos(g), d * np.sin(g)) for d in (5, 11, 18, 27, 38, 52, 68) for g in angles]
    found = []
    for (x, y), text in zip(zip(xs, ys), texts):
        ok = False
        for dx, dy in offsets:
            ha = "left" if dx > 1 else "right" if dx < -1 else "center"
            va = "bottom" if dy > 1 else "top" if dy < -1 else "center"
            far = np.hypot(dx, dy) > 12
            ann = ax.annotate(
                text,
                (x, y),
                xytext=(dx, dy),
                textcoords="offset points",
                ha=ha,
                va=va,
                fontsize=fontsize,
                zorder=7,
                arrowprops={"arrowstyle": "-", "lw": 0.5, "color": "0.15", "shrinkA": 0, "shrinkB": 2} if far else None,
                bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.7},
            )
            ann.update_positions(renderer)
            bb = Text.get_window_extent(ann, renderer).expanded(1.04, 1.1)
            fits = inside.x0 <= bb.x0 and bb.x1 <= inside.x1 and inside.y0 <= bb.y0 and bb.y1 <= inside.y1
            if fits and not any(bb.overlaps(t) for t in taken):
                taken.append(bb)
                ok = True
                break
            ann.remove()
        found.append(ok)
    return found
