"""report.html of a sweep: the summary (report.md), a sortable/filterable member
table, per-epoch curves (thin per member, mean +- std band per configuration,
best epoch starred) and metric-vs-parameter views whose points show the
member's configuration on hover. Colours: ``jaxexp.run.colors.config_colors``."""

from __future__ import annotations

import numpy as np
import pandas as pd

from jaxexp.run.colors import config_colors
from jaxexp.webreport import page, svg

_MAX_CONFIGS = 8  # configurations drawn in the curves (the best ones)
_MAX_PARAMS = 12  # metric-vs-parameter charts


def _member_tips(res) -> dict[int, str]:
    cols = res.shown_params
    tips = {}
    for rec in res.members.to_dict("records"):
        lines = [f"member {rec['member']} (configuration {rec['config_id']}, seed {rec['seed']}, {rec['status']})"]
        lines += [f"{c} = {page.fmt(rec[c])}" for c in cols if c in rec]
        best = rec.get(f"best_{res.metric}")
        lines.append(f"best {res.metric} = {page.fmt(best)} at epoch {page.fmt(rec.get('best_epoch'))}")
        tips[int(rec["member"])] = "\n".join(lines)
    return tips


def members_table(res) -> str:
    m, metric = res.members, res.metric
    first = [
        "member",
        "config_id",
        "seed",
        *res.shown_params,
        "status",
        f"best_{metric}",
        "best_epoch",
        f"final_{metric}",
        "epochs_run",
    ]
    rest = [c for c in m.columns if c.startswith(("best_", "final_", "init_")) and c not in first]
    cols = [c for c in dict.fromkeys(first + rest + ["pruned_epoch", "diverged_epoch"]) if c in m.columns]
    return page.table(m[cols], "member-table", member_col="member")


def _curve_columns(res) -> list[str]:
    h = res.history
    cols = [res.metric, "train_loss"]
    if "lr" in h and h.groupby("member")["lr"].nunique().max() > 1:
        cols.append("lr")
    return [c for c in dict.fromkeys(cols) if c in h]


def curves(res) -> str:
    colors, tips = config_colors(res), _member_tips(res)
    h = res.history[~res.history["diverged"].astype(bool)].merge(res.members[["member", "config_id"]], on="member")
    top = res.summary["config_id"].head(_MAX_CONFIGS).tolist()
    h = h[h["config_id"].isin(top)]
    if h.empty:
        return ""
    charts = []
    for col in _curve_columns(res):
        lo, hi, log = svg.span(h[col])
        chart = svg.Chart(svg.span(h["epoch"], False), (lo, hi, log), "epoch", col)
        for cid in top:
            part = h[h["config_id"] == cid]
            if part.empty:
                continue
            color, label = colors[cid], res.label(cid)
            for mid, mh in part.groupby("member"):
                chart.line(mh["epoch"], mh[col], color, 0.8, 0.35, tips.get(int(mid)), int(mid))
            g = part.groupby("epoch")[col]
            mean, std = g.mean(), g.std().fillna(0.0)
            chart.band(mean.index, mean - std, mean + std, color)
            chart.line(mean.index, mean.values, color, 2.2, 1.0, f"configuration {cid}: {label} (mean over seeds)")
            if col == res.metric and mean.notna().any():
                best = mean.idxmin() if res.config.goal == "min" else mean.idxmax()
                chart.point(
                    best,
                    mean[best],
                    color,
                    shape="star",
                    tip=f"{label}: best mean {col} {mean[best]:.5g} at epoch {best}",
                )
        charts.append(
            f"<figure>{chart.svg()}<figcaption>{page.esc(col)}: thin = one member, thick = mean over seeds, "
            "band = mean ± std, ★ = best epoch of the mean</figcaption></figure>"
        )
    key = "".join(f'<span><i style="background:{colors[c]}"></i>{page.esc(res.label(c))}</span>' for c in top)
    return f'<div class="key">{key}</div><div class="charts">{"".join(charts)}</div>'


def _axis(values: pd.Series) -> tuple[tuple, list | None, np.ndarray]:
    """(x range, categories or None, x positions) of a parameter column."""
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    if numeric:
        x = values.to_numpy(float)
        return svg.span(x), None, x
    cats = sorted(values.dropna().astype(str).unique().tolist())
    pos = values.astype(str).map({c: i for i, c in enumerate(cats)}).to_numpy(float)
    return (0.0, 1.0, False), cats, pos


def metric_vs_params(res) -> str:
    m = res.members[res.members["status"] != "diverged"]
    col = f"best_{res.metric}"
    params = [p for p in res.shown_params if p in m][:_MAX_PARAMS]
    if m.empty or not params or col not in m:
        return ""
    colors, tips = config_colors(res), _member_tips(res)
    y = svg.span(m[col])
    rng = np.random.default_rng(0)
    charts = []
    for p in params:
        xr, cats, xs = _axis(m[p])
        if cats is not None:
            xs = xs + rng.uniform(-0.15, 0.15, len(xs))  # jitter within a category
        chart = svg.Chart(xr, y, p, col, xcats=cats)
        for x, v, mid, cid in zip(xs, m[col], m["member"], m["config_id"]):
            chart.point(x, v, colors.get(int(cid), "#777"), tip=tips.get(int(mid)), member=int(mid))
        charts.append(f"<figure>{chart.svg()}<figcaption>{page.esc(col)} vs {page.esc(p)}</figcaption></figure>")
    return f'<div class="charts">{"".join(charts)}</div>'


def render(res, report_md: str, directory: str, png_names: list[str]) -> str:
    """The whole report.html of a sweep."""
    n = len(res.members)
    sections = [
        page.section("summary", "Summary", page.markdown(report_md)),
        page.section(
            "members",
            "Members",
            members_table(res),
            f"{n} members; click a column to sort, type to filter; hover a row to find the member in the charts.",
        ),
    ]
    c = curves(res)
    if c:
        sections.append(page.section("curves", "Curves", c, f"The best {_MAX_CONFIGS} configurations; hover a line."))
    mv = metric_vs_params(res)
    if mv:
        sections.append(
            page.section("params", "Metric vs parameters", mv, "One point per member; hover for its configuration.")
        )
    gc = getattr(res, "group_comparison", pd.DataFrame())
    if not gc.empty:
        sections.append(
            page.section(
                "group-comparison",
                "Per-group comparison",
                page.table(gc, "group-comparison-table"),
                "group_comparison.csv: every recipe minus the baseline per group; q: Benjamini-Hochberg over "
                "the groups of each recipe (bh_tests); noise_floor: the group's floor where the task knows it.",
            )
        )
    sections.append(page.png_section(directory, png_names))
    return page.document(f"{res.config.name}: sweep report", [s for s in sections if s])
