"""report.html of an analysis: the report, the configurations as a sortable
table (elites marked), parameter importance bars and metric-vs-parameter views
whose points show the configuration on hover."""

from __future__ import annotations

import numpy as np

from jaxexp.webreport import page, svg
from jaxexp.webreport.sweep import _axis

_MAX_PARAMS = 12


def _tips(a) -> list[str]:
    names = [d.name for d in a.dims]
    out = []
    for i, rec in enumerate(a.configs.to_dict("records")):
        lines = [
            f"configuration {rec.get('config_id', i)}: {a.metric} = {page.fmt(rec[a.metric])}"
            f" (mean of {page.fmt(rec.get('n_seeds'))} seed(s))"
        ]
        lines += [f"{n} = {page.fmt(rec[n])}" for n in names if n in rec]
        out.append("\n".join(lines))
    return out


def metric_vs_params(a) -> str:
    c = a.configs
    good_high = a.goal == "max"
    colours = svg.colour_scale(c[a.metric], good_high)
    tips = _tips(a)
    rng = np.random.default_rng(0)
    charts = []
    for d in a.dims[:_MAX_PARAMS]:
        if d.name not in c:
            continue
        xr, cats, xs = _axis(c[d.name])
        if cats is not None:
            xs = xs + rng.uniform(-0.15, 0.15, len(xs))
        chart = svg.Chart(xr, svg.span(c[a.metric]), d.name, a.metric, xcats=cats)
        for x, v, col, tip, elite in zip(xs, c[a.metric], colours, tips, a.elite_mask):
            chart.point(x, v, col, r=4.5 if elite else 3.0, tip=("elite\n" if elite else "") + tip)
        charts.append(
            f"<figure>{chart.svg()}<figcaption>{page.esc(a.metric)} vs {page.esc(d.name)}</figcaption></figure>"
        )
    m = c[a.metric].to_numpy(float)
    key = svg.colour_key(float(np.nanmin(m)), float(np.nanmax(m)), good_high, a.metric) if len(m) else ""
    return f'{key}<div class="charts">{"".join(charts)}</div>'


def render(a, report_md: str, directory: str, png_names: list[str]) -> str:
    """The whole report.html of an analysis."""
    configs = a.configs.copy()
    configs.insert(0, "elite", a.elite_mask)
    imp = a.importance.dropna(subset=["importance"]) if "importance" in a.importance else a.importance
    sections = [page.section("summary", "Summary", page.markdown(report_md))]
    if len(imp):
        sections.append(
            page.section(
                "importance",
                "Parameter importance",
                svg.bars(
                    imp["parameter"].astype(str).tolist(),
                    imp["importance"].astype(float).tolist(),
                    xlabel="PED-ANOVA importance (share of the total)",
                ),
            )
        )
    sections += [
        page.section(
            "configurations",
            "Configurations",
            page.table(configs, "configuration-table"),
            f"{len(configs)} configurations (seed means), best first; click a column to sort, type to filter.",
        ),
        page.section(
            "params",
            "Metric vs parameters",
            metric_vs_params(a),
            "One point per configuration, larger for elites; hover for its values.",
        ),
        page.png_section(directory, png_names),
    ]
    return page.document(f"analysis of {a.source or 'a table'}: {a.metric}", [s for s in sections if s])
