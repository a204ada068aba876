"""Sweep analysis (``jaxexp analyze``): per-parameter statistics, elites,
boundary hits, importance and a proposed next search space.

    a = jaxexp.analyze("workdirs/sweep")                               # a jaxexp workdir (also mid-sweep)
    a = jaxexp.analyze("trials.csv", metric="value", goal="min")       # Optuna / W&B / Ray Tune / any CSV
    a = jaxexp.analyze("runs.csv", metric="loss", goal="min", id="trial", seed="rep")  # name ids and seeds
    a = jaxexp.analyze(df, metric="val_mse", goal="min", space=params) # a DataFrame (+ declared space)
    a.continuous, a.boolean, a.categorical, a.elites, a.boundaries, a.importance, a.changes, a.next_space

Modules: ``columns`` (which columns are parameters, ids, seeds, judged by their
values; which rows are one configuration), ``colnames`` (the names that say a
column's role), ``dims`` (parameter kinds and ranges), ``core`` (statistics),
``importance`` (PED-ANOVA), ``nextrules`` (the rules of the next space),
``nextbounds`` (how a bound or a choice's levels move), ``nextspace`` (the next
space as next_space.yaml writes it), ``inputs`` (workdirs, tables, space files),
``output`` (report.md, CSVs, next_space.yaml), ``plots``.
"""

from __future__ import annotations

import os

import pandas as pd

from jaxexp.analysis.api import Analysis, analyze
from jaxexp.analysis.core import bh_adjust
from jaxexp.analysis.inputs import load_table, load_workdir, parse_limits, read_space_file
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
    "parse_limits",
    "read_space_file",
    "write",
]


def load(source, metric: str | None = None, goal: str | None = None, space=None, params=None, id=None, seed=None):
    """The ``inputs.Source`` of a workdir (metric/goal/space from its config) or
    of a CSV table."""
    source = os.fspath(source)
    if os.path.isdir(source):
        if metric or goal or space is not None:
            raise ConfigError(
                "--workdir: metric, goal and space come from the sweep's config; drop --metric/--goal/--space"
            )
        if params is not None or id or seed:
            raise ConfigError(
                "--workdir: parameters, ids and seeds come from the sweep's config and members.csv; "
                "drop --params/--id/--seed"
            )
        return load_workdir(source)
    return load_table(source, metric, goal, space, params=params, ids=id, seeds=seed)


def analyze_source(src, elite_quantile: float = 0.2, limits: dict | None = None) -> Analysis:
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
        ids=src.ids,
        seeds=src.seeds,
        limits=limits,
    )


def analyze_sweep(
    source,
    metric: str | None = None,
    goal: str | None = None,
    space=None,
    out: str | None = None,
    elite_quantile: float = 0.2,
    plots: bool = True,
    params=None,
    id=None,
    seed=None,
    limits: dict | None = None,
) -> Analysis:
    """``jaxexp analyze`` as a function (``jaxexp.analyze``).

    source: a jaxexp workdir, a CSV of trials (``metric`` and ``goal`` needed
    unless the space file names them) or a DataFrame. space: a space file path,
    a mapping or a list of ``jaxexp.search.space.Param``. out: folder for the files
    (none written when None). params: the parameter columns (default: the
    format's, or guessed: ``analysis.columns``). id/seed: id and seed columns
    besides those recognised by name (a name, "a,b" or a list): ids are never
    parameters, rows differing only in a seed are one configuration. limits:
    {parameter: (low, high)} hard limits no proposed expansion passes (None: open).
    Bad or ambiguous input raises ``ConfigError`` (one line).
    """
    if isinstance(source, pd.DataFrame):
        if not metric or not goal:
            raise ConfigError("analyze: a DataFrame needs metric= and goal=")
        declared = read_space_file(space) if isinstance(space, str) else space
        a = analyze(
            source,
            metric,
            goal,
            space=declared,
            params=params,
            elite_quantile=elite_quantile,
            source="a DataFrame",
            ids=id,
            seeds=seed,
            limits=parse_limits(limits),
        )
    else:
        a = analyze_source(load(source, metric, goal, space, params, id, seed), elite_quantile, parse_limits(limits))
    if out:
        write(a, out, plot=plots)
    return a
