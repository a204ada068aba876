"""Sweep analysis (``jaxexp analyze``): per-parameter statistics, elites,
boundary hits, importance and a proposed next search space.

    a = jaxexp.analyze("workdirs/sweep")                               # a jaxexp workdir (also mid-sweep)
    a = jaxexp.analyze("trials.csv", metric="value", goal="min")       # Optuna / W&B / any CSV
    a = jaxexp.analyze(df, metric="val_mse", goal="min", space=params) # a DataFrame (+ declared space)
    a.continuous, a.boolean, a.categorical, a.elites, a.boundaries, a.importance, a.changes, a.next_space

Modules: ``dims`` (parameter kinds and ranges), ``core`` (statistics),
``importance`` (PED-ANOVA), ``nextspace`` (the rules), ``inputs`` (workdirs,
tables, space files), ``output`` (report.md, CSVs, next_space.yaml), ``plots``.
"""

from __future__ import annotations

import os

import pandas as pd

from jaxexp.analysis.api import Analysis, analyze
from jaxexp.analysis.core import bh_adjust
from jaxexp.analysis.inputs import load_table, load_workdir, read_space_file
from jaxexp.analysis.nextspace import RULES
from jaxexp.analysis.output import write
from jaxexp.errors import ConfigError

__all__ = [
    "RULES",
    "Analysis",
    "analyze",
    "analyze_source",
    "analyze_sweep",
    "bh_adjust",
    "load",
    "load_table",
    "load_workdir",
    "read_space_file",
    "write",
]


def load(source, metric: str | None = None, goal: str | None = None, space=None):
    """The ``inputs.Source`` of a workdir (metric/goal/space from its config) or
    of a CSV table."""
    source = os.fspath(source)
    if os.path.isdir(source):
        if metric or goal or space is not None:
            raise ConfigError(
                "--workdir: metric, goal and space come from the sweep's config; drop --metric/--goal/--space"
            )
        return load_workdir(source)
    return load_table(source, metric, goal, space)


def analyze_source(src, elite_quantile: float = 0.2) -> Analysis:
    """``analyze`` of a loaded workdir or table (``load``, ``load_workdir``, ``load_table``)."""
    return analyze(
        src.table,
        src.metric,
        src.goal,
        space=src.space,
        params=src.params,
        elite_quantile=elite_quantile,
        method=src.method,
        num_samples=src.num_samples,
        space_metric=src.space_metric,
        source=src.source,
        notes=src.notes,
    )


def analyze_sweep(
    source,
    metric: str | None = None,
    goal: str | None = None,
    space=None,
    out: str | None = None,
    elite_quantile: float = 0.2,
    plots: bool = True,
) -> Analysis:
    """``jaxexp analyze`` as a function (``jaxexp.analyze``).

    source: a jaxexp workdir, a CSV of trials (``metric`` and ``goal`` needed
    unless the space file names them) or a DataFrame. space: a space file path,
    a mapping or a list of ``jaxexp.space.Param``. out: folder for the files
    (none written when None). Bad input raises ``ConfigError`` (one line).
    """
    if isinstance(source, pd.DataFrame):
        if not metric or not goal:
            raise ConfigError("analyze: a DataFrame needs metric= and goal=")
        declared = read_space_file(space) if isinstance(space, str) else space
        a = analyze(source, metric, goal, space=declared, elite_quantile=elite_quantile, source="a DataFrame")
    else:
        a = analyze_source(load(source, metric, goal, space), elite_quantile)
    if out:
        write(a, out, plot=plots)
    return a
