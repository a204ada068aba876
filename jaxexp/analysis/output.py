"""Files of an analysis: CSV tables, report.md, plots and next_space.yaml,
written atomically (a temporary folder, then renamed into place)."""

from __future__ import annotations

import glob
import math
import os
import shutil
import sys
import tempfile

import numpy as np
import pandas as pd

from jaxexp.analysis import core, nextspace, plots
from jaxexp.analysis.importance import __doc__ as _IMPORTANCE_DOC
from jaxexp.errors import ConfigError
from jaxexp.webreport import analysis as webanalysis

TABLES = (
    "continuous.csv",
    "boolean.csv",
    "categorical.csv",
    "elites.csv",
    "ranges.csv",
    "boundaries.csv",
    "importance.csv",
    "changes.csv",
)
# Files of an earlier analysis in the same folder that a new one replaces or removes.
_OURS = (
    *TABLES,
    "report.md",
    "report.html",
    "next_space.yaml",
    "metric_vs_params.png",
    "parallel.png",
    "importance.png",
    "lineage.png",
)
_OURS_GLOBS = ("contour_*__*.csv", "contour_*__*.png")


def _f(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, (float, np.floating)):
        return f"{v:.4g}"
    return str(v).replace("|", "\\|")


def md_table(df: pd.DataFrame, columns: list[str] | None = None, max_rows: int = 50) -> str:
    if df is None or df.empty:
        return "(none)"
    df = df[columns] if columns else df
    lines = ["| " + " | ".join(map(str, df.columns)) + " |", "|" + "---|" * len(df.columns)]
    for _, row in df.head(max_rows).iterrows():
        lines.append("| " + " | ".join(_f(v) for v in row) + " |")
    if len(df) > max_rows:
        lines.append(f"\n({len(df) - max_rows} more rows in the CSV)")
    return "\n".join(lines)


def _seeds_text(c: dict) -> str:
    lo, hi = c["seeds_min"], c["seeds_max"]
    return f"{lo} member(s) each" if lo == hi else f"{lo}-{hi} members each"


def _grouping(a) -> str:
    key = getattr(a, "key", None)
    return f"same `{key}`" if key else "the same parameter values"


def _columns_text(a) -> str:
    """Which columns were read as ids and seeds (never parameters)."""
    ids, seeds = getattr(a, "ids", []), getattr(a, "seeds", [])
    parts = []
    if ids:
        parts.append(f"ids (never parameters): {', '.join(f'`{c}`' for c in ids)}")
    if seeds:
        parts.append(f"seeds (rows differing only there are one configuration): {', '.join(f'`{c}`' for c in seeds)}")
    if not parts:
        return "Columns: no id or seed column."
    return "Columns: " + "; ".join(parts) + " (`--id`, `--seed`, `--params` name them otherwise)."


def report(a, plot_files: list[str]) -> str:
    """report.md: what was analysed, the proposal with its evidence and rules,
    then every table."""
    out = _intro(a)
    out += _proposal(a)
    out += _importance(a)
    out += _tests(a)
    out += _elites_and_ranges(a)
    out += _figures(a, plot_files)
    return "\n".join(out) + "\n"


def _intro(a) -> list[str]:
    """What was analysed: source, metric, rows and configurations, id and seed
    columns, where the ranges come from, the elites and the notes."""
    c = a.counts
    left = ", ".join(f"{k}: {v}" for k, v in c["excluded"].items()) or "none"
    out = [
        "# Sweep analysis",
        "",
        f"Source: {a.source or 'a table'}. Metric: `{a.metric}` ({'lower' if a.goal == 'min' else 'higher'} is "
        f"better).",
        "",
        f"Rows: {c['rows']}; left out: {left}; usable: {c['usable']}. **Configurations: {c['configurations']}** "
        f"({_seeds_text(c)}): members of one configuration ({_grouping(a)}) are averaged first, so every test "
        "below has n = configurations, not members.",
        "",
        _columns_text(a),
        "",
        (
            "Ranges and kinds: **declared** (the sweep's space)."
            if a.declared
            else "Ranges and kinds: **observed** — no space was given, so each parameter's kind is inferred from "
            "its values and its range is the observed min..max (a boundary hit then means the edge of what was "
            "tried; pass `--space=FILE.yaml` for the declared ranges)."
        ),
        "",
        f"Elites: the top {a.elite_quantile:.0%} of configurations, at least {core.MIN_ELITES}: "
        f"**{c['elites']}** configuration(s).",
    ]
    for note in a.notes:
        out += ["", f"Note: {note}."]
    return out


def _proposal(a) -> list[str]:
    """The proposed next space, change by change, and the rules behind it."""
    return [
        "",
        "## Proposed next space (`next_space.yaml`)",
        "",
        md_table(a.changes),
        "",
        "### Rules used",
        "",
        *[f"{i}. {r}" for i, r in enumerate(nextspace.RULES, 1)],
    ]


def _importance(a) -> list[str]:
    """PED-ANOVA importance: how it is computed (the importance module's doc) and the table."""
    return [
        "",
        "## Parameter importance (PED-ANOVA)",
        "",
        "\n\n".join(" ".join(par.split()) for par in _IMPORTANCE_DOC.split("\n\n")[1:]),
        "",
        md_table(a.importance),
    ]


def _tests(a) -> list[str]:
    """The per-parameter tests: Spearman (numeric), Welch (booleans), per-level
    means and Kruskal-Wallis (levels)."""
    return [
        "",
        "## Numeric parameters: Spearman rho",
        "",
        f"Spearman's rank correlation of each numeric parameter with `{a.metric}` over the configurations where it "
        "is active (`better`: which direction of the parameter improves the metric). `p_bh`: Benjamini-Hochberg "
        f"adjusted p over all {a.bh_tests} per-parameter tests of this report (Spearman, boolean Welch, "
        "Kruskal-Wallis).",
        "",
        md_table(a.continuous),
        "",
        "## Booleans: True vs False",
        "",
        "Mean and 95% t-interval per value; `diff` = mean(True) - mean(False) with its Welch interval and "
        "p-value; `effect_pct` = |diff| / |mean(False)|.",
        "",
        md_table(a.boolean),
        "",
        "## Levels: per-level mean, best vs worst",
        "",
        "Categorical parameters and numeric choices: mean and 95% t-interval per level, elites at each level; best "
        "vs worst level by mean (Welch p) and Kruskal-Wallis across levels (its BH-adjusted p: `kruskal_p_bh`).",
        "",
        md_table(
            a.categorical,
            ["parameter", "level", "n", "mean", "ci_low", "ci_high", "elites", "rank", "kruskal_p", "kruskal_p_bh"],
        ),
        "",
        md_table(
            a.categorical.drop_duplicates("parameter"),
            [
                "parameter",
                "best_level",
                "worst_level",
                "best_vs_worst_diff",
                "best_vs_worst_p",
                "best_vs_worst_effect_pct",
            ],
        )
        if len(a.categorical)
        else "",
    ]


def _elites_and_ranges(a) -> list[str]:
    """The elites, the empirical ranges (all vs elites) and the boundary hits."""
    return [
        "",
        "## Elites",
        "",
        md_table(a.elites),
        "",
        "## Empirical ranges: all configurations vs elites",
        "",
        md_table(a.ranges),
        "",
        "## Boundary hits",
        "",
        f"A side is a hit when at least {core.BOUNDARY_SHARE:.0%} of the elites (where the parameter is active) lie "
        f"in the outer {core.ZONE:.0%} of the range on that side (log scale for log ranges) and the one-sided "
        f"hypergeometric p of that many elites there, given how many of all configurations are there, is below "
        f"{core.BOUNDARY_ALPHA}. An interior optimum puts the elites in the middle and never fires.",
        "",
        md_table(a.boundaries),
    ]


def _figures(a, plot_files: list[str]) -> list[str]:
    """The pairs' binned tables (and their plots), the other plots, and a note
    when there is no lineage tree."""
    out = []
    if a.contours:
        out += ["", "## Pairs (binned mean metric)", ""]
        for pa, pb in a.contours:
            name = f"contour_{plots.safe_name(pa)}__{plots.safe_name(pb)}"
            out.append(
                f"- `{pa}` x `{pb}`: `{name}.csv`" + (f", ![{name}]({name}.png)" if f"{name}.png" in plot_files else "")
            )
    if plot_files:
        out += ["", "## Plots", ""]
        out += [f"![{p}]({p})" for p in plot_files if not p.startswith("contour_")]
    if a.lineage is None:
        out += ["", "No `node_id`/`parent_id` columns: no lineage tree (mutation runs only)."]
    return out


def next_space_yaml(a) -> str:
    import yaml

    header = (
        "# Proposed by `jaxexp analyze` (see report.md: every change has one line of evidence).\n"
        f"# Source: {a.source}\n"
    )
    return header + yaml.safe_dump(a.next_space, sort_keys=False, default_flow_style=None, width=120)


def prepare_out(out: str) -> None:
    if os.path.exists(out) and not os.path.isdir(out):
        raise ConfigError(f"--out: {out} exists and is not a directory; choose another --out")
    if any(os.path.isfile(os.path.join(out, f)) for f in ("members.csv", "config.json")):
        raise ConfigError(
            f"--out: {out} is a sweep's workdir (its report.md would be replaced); use {os.path.join(out, 'analysis')}"
        )
    parent = os.path.abspath(out)
    while not os.path.isdir(parent):
        parent = os.path.dirname(parent)
    if not os.access(parent, os.W_OK):
        raise ConfigError(f"--out: cannot write to {out}; choose another --out")


def write(a, out: str, plot: bool = True, warn=None) -> list[str]:
    """Writes every file into ``out`` (created if missing; an earlier analysis
    there is replaced); returns the file names. Files are written into a
    temporary folder first, so an error leaves the old set."""
    prepare_out(out)
    warn = warn or (lambda msg: print(f"jaxexp: warning: {msg}", file=sys.stderr))
    texts = {
        "continuous.csv": a.continuous.to_csv(index=False),
        "boolean.csv": a.boolean.to_csv(index=False),
        "categorical.csv": a.categorical.to_csv(index=False),
        "elites.csv": a.elites.to_csv(index=False),
        "ranges.csv": a.ranges.to_csv(index=False),
        "boundaries.csv": a.boundaries.to_csv(index=False),
        "importance.csv": a.importance.to_csv(index=False),
        "changes.csv": a.changes.to_csv(index=False),
        "next_space.yaml": next_space_yaml(a),
    }
    for pa, pb in a.contours:
        texts[f"contour_{plots.safe_name(pa)}__{plots.safe_name(pb)}.csv"] = a.contours[(pa, pb)].to_csv(index=False)
    os.makedirs(out, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=out, prefix=".writing-")
    try:
        figures = plots.write_all(a, tmp, warn) if plot else []
        texts["report.md"] = report(a, figures)
        texts["report.html"] = webanalysis.render(a, texts["report.md"], tmp, figures)
        for name, text in texts.items():
            with open(os.path.join(tmp, name), "w") as f:
                f.write(text)
        written = [*texts, *figures]
        stale = [n for n in _OURS if n not in written]
        stale += [os.path.basename(p) for g in _OURS_GLOBS for p in glob.glob(os.path.join(out, g))]
        for name in set(stale) - set(written):
            path = os.path.join(out, name)
            if os.path.isfile(path):
                os.remove(path)
        for name in written:
            os.replace(os.path.join(tmp, name), os.path.join(out, name))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return written
