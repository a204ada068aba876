"""report.html of a blend-weight search: the report, the best weightings as a
sortable table, and the score over the simplex (three models: a ternary map
with gridlines, ticks and labelled listed weightings; otherwise the best score
against each model's weight). Hover any point for its weights and score."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from jaxexp.run.colors import TAB10
from jaxexp.webreport import page, svg

_TOP_ROWS = 500  # rows of the table (scores.csv has them all)
_MAX_POINTS = 4000  # grid points drawn on the ternary map
_SIZE = 520  # ternary map width (px)


def _tip(row, names: list[str], metric: str) -> str:
    w = ", ".join(f"{n} {row[n]:.4g}" for n in names)
    return f"{row.get('label') or row.get('source')}: {w}\n{metric} = {row['score']:.6g} (rank {row['rank']})"


def _xy(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Barycentric -> pixels: names[0] bottom left, names[1] bottom right, names[2] top."""
    w = np.atleast_2d(w)
    side, pad = _SIZE - 120, 60
    x = pad + side * (w[:, 1] + 0.5 * w[:, 2])
    y = pad - 20 + side * math.sqrt(3) / 2 * (1 - w[:, 2])
    return x, y


def _grid_lines(names: list[str]) -> list[str]:
    out = []
    for k in range(1, 10):
        t = k / 10
        for i in range(3):  # the line where weight i equals t
            a, b = np.zeros(3), np.zeros(3)
            a[i] = b[i] = t
            a[(i + 1) % 3], b[(i + 2) % 3] = 1 - t, 1 - t
            (x1, x2), (y1, y2) = _xy(np.stack([a, b]))
            out.append(
                f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" '
                'stroke="#000" stroke-opacity="0.3" stroke-width="0.7"/>'
            )
            if k % 2 == 0:
                out.append(f'<text x="{x1 + 3:.1f}" y="{y1 - 3:.1f}" fill="#555">{names[i][:6]} {t:.1f}</text>')
    return out


def ternary(df: pd.DataFrame, names: list[str], metric: str, good_high: bool) -> str:
    grid = df[df["source"] == "grid"]
    if len(grid) > _MAX_POINTS:  # the best rows always, an even sample of the rest
        rest = grid.iloc[200:]
        grid = pd.concat([grid.iloc[:200], rest.iloc[np.linspace(0, len(rest) - 1, _MAX_POINTS - 200).astype(int)]])
    scores = grid["score"].to_numpy(float)
    med = float(np.nanmedian(scores))
    clipped = np.clip(scores, med, None) if good_high else np.clip(scores, None, med)
    colours = svg.colour_scale(clipped, good_high)
    x, y = _xy(grid[names].to_numpy(float))
    marks = [
        f'<polygon points="{" ".join(f"{a:.1f},{b:.1f}" for a, b in zip(*_xy(np.eye(3))))}" fill="#fff" stroke="#333"/>'
    ]
    # records, not iterrows: each row Series would deep-copy the frame's attrs (the whole summary)
    for row, px, py, c in zip(grid.to_dict("records"), x, y, colours):
        marks.append(
            f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3" fill="{c}" data-tip="{page.esc(_tip(row, names, metric))}"/>'
        )
    marks += _grid_lines(names)  # over the points, so they stay visible
    special = df[df["source"] != "grid"]
    for row, px, py in zip(special.to_dict("records"), *_xy(special[names].to_numpy(float))):
        colour = {"exact": "orange", "refined": "red"}.get(row["source"], "magenta")
        marks.append(
            f'<circle cx="{px:.1f}" cy="{py:.1f}" r="5" fill="none" stroke="{colour}" stroke-width="2" '
            f'data-tip="{page.esc(_tip(row, names, metric))}"/>'
        )
        marks.append(f'<text x="{px + 6:.1f}" y="{py - 5:.1f}">{page.esc(str(row["label"])[:24])}</text>')
    bx, by = _xy(df.iloc[[0]][names].to_numpy(float))
    marks.append(
        f'<text x="{bx[0] - 6:.1f}" y="{by[0] + 5:.1f}" font-size="16" fill="red" '
        f'data-tip="{page.esc(_tip(df.iloc[:1].to_dict("records")[0], names, metric))}">★</text>'
    )
    corners = _xy(np.eye(3))
    for name, cx, cy, dy in zip(names, *corners, (16, 16, -8)):
        marks.append(
            f'<text x="{cx:.1f}" y="{cy + dy:.1f}" text-anchor="middle" font-weight="bold">{page.esc(name)} = 1</text>'
        )
    key = svg.colour_key(
        float(np.nanmin(clipped)), float(np.nanmax(clipped)), good_high, f"{metric} (colour clipped at the median)"
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_SIZE}" height="{_SIZE - 60}">{"".join(marks)}</svg>'
        f'{key}<p class="note">★ best; circled: listed (magenta), the solver\'s point (orange; its label says which '
        "problem it is the optimum of), refined (red). "
        "Gridlines every 0.1 of each weight.</p>"
    )


def profiles(df: pd.DataFrame, names: list[str], metric: str, good_high: bool) -> str:
    grid = df[df["source"] == "grid"]
    if grid.empty:
        return ""
    chart = svg.Chart((0.0, 1.0, False), svg.span(grid["score"], False), "weight of the model", f"best {metric}")
    for i, n in enumerate(names):
        best = grid.groupby(grid[n].round(6))["score"]
        best = best.max() if good_high else best.min()
        colour = TAB10[i % len(TAB10)]
        chart.line(best.index, best.values, colour, 2.0, 1.0, f"{n}: best {metric} at each weight of {n}")
        for w, s in best.items():
            chart.point(w, s, colour, 2.5, tip=f"{n} = {w:.4g}: best {metric} {s:.6g}")
    key = "".join(
        f'<span><i style="background:{TAB10[i % len(TAB10)]}"></i>{page.esc(n)}</span>' for i, n in enumerate(names)
    )
    return f'<div class="key">{key}</div><figure>{chart.svg()}</figure>'


def render(
    df: pd.DataFrame,
    names: list[str],
    metric: str,
    good_high: bool,
    report_md: str,
    directory: str,
    png_names: list[str],
) -> str:
    """The whole report.html of a blend; ``df`` is the scores table, best first."""
    names = list(names)
    on_simplex = len(names) == 3 and np.allclose(df[names].sum(axis=1), 1) and (df[names].to_numpy() >= -1e-12).all()
    view = (
        ternary(df, names, metric, good_high)
        if on_simplex and (df["source"] == "grid").sum() >= 3
        else profiles(df, names, metric, good_high)
    )
    top = df.head(_TOP_ROWS)
    sections = [
        page.section("summary", "Summary", page.markdown(report_md)),
        page.section("map", "Score over the weightings", view, "Hover a point for its weights and score.")
        if view
        else "",
        page.section(
            "weightings",
            "Best weightings",
            page.table(top, "weighting-table"),
            f"The best {len(top)} of {len(df)} scored weightings (all of them in scores.csv).",
        ),
        page.png_section(directory, png_names),
    ]
    return page.document(f"blend of {', '.join(names)}: {metric}", [s for s in sections if s])
