"""``analyze(table, metric, goal, space)``: every statistic of a sweep, the
elites and the proposed next space, as one ``Analysis``."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pandas as pd

from jaxexp.analysis import core, nextspace
from jaxexp.analysis import dims as dimsmod
from jaxexp.analysis import importance as impmod
from jaxexp.analysis import ranges as rangesmod
from jaxexp.analysis.dims import Dim
from jaxexp.errors import ConfigError

# Columns that identify or describe a row, never parameters.
RESERVED = {"member", "config_id", "seed", "status", "number", "metric_std", "n_seeds"}
LINEAGE = (("node_id", "parent_id"), ("node", "parent"))  # column pairs that make a lineage tree
RESERVED |= {c for pair in LINEAGE for c in pair} | {"generation", "mutation", "hypothesis"}
TOP_PAIRS = 3  # contour tables/plots for the pairs among the 3 most important parameters


@dataclasses.dataclass
class Analysis:
    """Everything ``jaxexp analyze`` computes; ``write`` turns it into files."""

    metric: str  # the table's metric column
    goal: str  # "min" | "max"
    dims: list[Dim]
    configs: pd.DataFrame  # one row per configuration, best first: parameters, metric (seed mean), n_seeds
    elite_mask: np.ndarray  # over ``configs`` rows
    continuous: pd.DataFrame
    boolean: pd.DataFrame
    categorical: pd.DataFrame
    ranges: pd.DataFrame
    boundaries: pd.DataFrame
    importance: pd.DataFrame
    contours: dict  # (a, b) -> binned table
    changes: pd.DataFrame  # parameter, action, old, new, evidence
    next_space: dict
    counts: dict
    elite_quantile: float
    bh_tests: int
    declared: bool  # ranges/kinds from a declared space
    source: str = ""
    notes: list = dataclasses.field(default_factory=list)
    lineage: pd.DataFrame | None = None  # node_id, parent_id, metric[, generation, mutation, status] (trees)

    @property
    def elites(self) -> pd.DataFrame:
        e = self.configs[self.elite_mask].copy()
        e.insert(0, "rank", np.arange(1, len(e) + 1))
        return e


def _candidate_columns(table: pd.DataFrame, metric: str) -> list[str]:
    return [c for c in table.columns if c != metric and c not in RESERVED]


def _dims(table: pd.DataFrame, metric: str, space, params, notes: list) -> tuple[list[Dim], dict, bool]:
    """(analysed dims, declared specs, declared?) for the usable rows."""
    specs: dict = {}
    dims: list[Dim] = []
    if space is not None and (len(space) if hasattr(space, "__len__") else True):
        declared_dims, specs = dimsmod.dims_from_space(space)
        missing = [d.name for d in declared_dims if d.name not in table.columns]
        if missing:
            notes.append(f"declared but not in the table (carried over unchanged): {', '.join(missing)}")
        dims = [d for d in declared_dims if d.name in table.columns]
        extra = [c for c in (params or []) if c not in specs and c in table.columns]
    else:
        extra = list(params) if params is not None else _candidate_columns(table, metric)
    constant = []
    for name in extra:
        d = dimsmod.infer_dim(name, table[name])
        if d is None:
            constant.append(name)
        else:
            dims.append(d)
    if constant and params is None and not specs:
        notes.append(f"constant, not analysed: {', '.join(constant)}")
    return dims, specs, bool(specs)


def analyze(
    table: pd.DataFrame,
    metric: str,
    goal: str,
    space=None,
    params: list[str] | None = None,
    elite_quantile: float = 0.2,
    method: str | None = None,
    num_samples: int = 0,
    space_metric: str | None = None,
    source: str = "",
    notes: list | tuple = (),
) -> Analysis:
    """Analyses one table (one row per trial/member).

    space: a declared space (a space-file mapping, ``config.sweep.space``, or a
    list of ``jaxexp.space.Param``) giving kinds and ranges; without it kinds are
    inferred and ranges observed. params: columns to analyse besides the declared
    ones (without a space: all of them; default every column but the metric and
    ``RESERVED``). method/num_samples/space_metric: written into next_space.yaml.
    """
    goal = core.normalize_goal(goal)
    if not 0 < elite_quantile < 1:
        raise ConfigError(f"--elite_quantile: must be in (0, 1), got {elite_quantile}")
    if metric not in table.columns:
        raise ConfigError(f"--metric: no column {metric!r} in the table; pass --metric=COLUMN")
    notes = list(notes)
    rows, counts = core.usable_rows(table, metric)
    dims, specs, declared = _dims(rows, metric, space, params, notes)
    if not dims and specs:
        raise ConfigError(
            "--space: none of its parameters is a column of the table; name them as the table does "
            "(e.g. lr for Optuna's params_lr, train.lr for W&B's config.train.lr)"
        )
    if not dims:
        raise ConfigError("parameters: no parameter column varies across the usable rows; nothing to analyse")
    for d in dims:
        rows[d.name] = core.normalize_column(d, rows[d.name])
    configs = core.sort_best_first(core.aggregate_seeds(rows, dims, metric), metric, goal)
    counts["configurations"] = n = len(configs)
    counts["seeds_min"], counts["seeds_max"] = int(configs["n_seeds"].min() or 0), int(configs["n_seeds"].max() or 0)
    if n < core.MIN_CONFIGS:
        left = ", ".join(f"{k}: {v}" for k, v in counts["excluded"].items()) or "none"
        raise ConfigError(
            f"{source or 'table'}: only {n} usable configuration(s) ({counts['usable']} usable of {counts['rows']} "
            f"rows; left out: {left}); the analysis needs at least {core.MIN_CONFIGS}"
        )
    k = core.n_elites(n, elite_quantile)
    elite_mask = np.arange(n) < k
    counts["elites"] = k

    cont = core.continuous(configs, dims, metric, goal)
    boo = core.boolean(configs, dims, metric, goal)
    cat = core.categorical(configs, dims, metric, goal, elite_mask)
    m = core.add_bh(cont, boo, cat)
    rng = rangesmod.ranges(configs, dims, elite_mask)
    bnd = rangesmod.boundaries(configs, dims, elite_mask)
    imp = impmod.ped_anova(configs, dims, metric, goal, elite_quantile)
    contours = _contours(configs, dims, imp, metric, goal)
    fixes = {
        d.name: rangesmod.top_level_check(configs, d, metric, goal, elite_mask)
        for d in dims
        if d.kind != "numeric" or d.choice
    }
    st = nextspace._Stats(cont, boo, cat, rng, bnd)
    changes, nxt = nextspace.propose(
        dims,
        specs,
        st,
        fixes,
        space_metric or metric,
        goal,
        method or "random",
        num_samples if declared else (num_samples or n),
        notes,
        n_configs=n,
    )
    lineage = None
    pair = next((pair for pair in LINEAGE if set(pair) <= set(table.columns)), None)
    if pair is not None:
        # every node, failed ones included (the plot marks them), with what the tree records about it
        extra = [c for c in ("generation", "mutation", "status") if c in table.columns]
        lineage = (
            table[[*pair, metric, *extra]]
            .set_axis(["node_id", "parent_id", metric, *extra], axis=1)
            .reset_index(drop=True)
        )
    return Analysis(
        metric=metric,
        goal=goal,
        dims=dims,
        configs=configs,
        elite_mask=elite_mask,
        continuous=cont,
        boolean=boo,
        categorical=cat,
        ranges=rng,
        boundaries=bnd,
        importance=imp,
        contours=contours,
        changes=changes,
        next_space=nxt,
        counts=counts,
        elite_quantile=elite_quantile,
        bh_tests=m,
        declared=declared,
        source=source,
        notes=notes,
        lineage=lineage,
    )


def _contours(configs, dims, imp, metric, goal) -> dict:
    """Binned tables for the pairs among the most important parameters."""
    by = {d.name: d for d in dims}
    top = [p for p in imp.dropna(subset=["importance"])["parameter"] if p in by][:TOP_PAIRS]
    out = {}
    for a, b in itertools.combinations(top, 2):
        both = configs[a].notna() & configs[b].notna()
        if both.sum() >= core.MIN_CONFIGS:
            out[(a, b)] = rangesmod.contour(configs, by[a], by[b], metric, goal)
    return out
