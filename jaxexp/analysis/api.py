"""``analyze(table, metric, goal, space)``: every statistic of a sweep, the
elites and the proposed next space, as one ``Analysis``."""

from __future__ import annotations

import dataclasses
import itertools
from typing import NamedTuple

import numpy as np
import pandas as pd

from jaxexp.analysis import columns as colmod
from jaxexp.analysis import core, nextspace
from jaxexp.analysis import dims as dimsmod
from jaxexp.analysis import importance as impmod
from jaxexp.analysis import ranges as rangesmod
from jaxexp.analysis.dims import Dim
from jaxexp.errors import ConfigError

LINEAGE = (("node_id", "parent_id"), ("node", "parent"))  # column pairs that make a lineage tree
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
    ids: list = dataclasses.field(default_factory=list)  # id columns (never parameters)
    seeds: list = dataclasses.field(default_factory=list)  # seed columns (rows differing only there: one config)
    key: str | None = None  # the id column that groups rows into configurations (None: parameter values)

    @property
    def elites(self) -> pd.DataFrame:
        e = self.configs[self.elite_mask].copy()
        e.insert(0, "rank", np.arange(1, len(e) + 1))
        return e


class _Roles(NamedTuple):
    """What the table's columns are (``_roles``)."""

    dims: list[Dim]  # declared parameters that are columns of the table
    extra: list  # other parameter columns (kinds inferred from their values)
    specs: dict  # the declared space's specs by name ({} without a space)
    ids: list  # id columns (never parameters)
    seeds: list  # seed columns (rows differing only there: one configuration)


def _roles(table, rows, metric, space, params, ids, seeds, notes) -> _Roles:
    """(declared dims in the table, other parameter columns, declared specs, id
    columns, seed columns)."""
    ids, seeds = list(ids), list(seeds)
    specs: dict = {}
    dims: list[Dim] = []
    if space is not None and (len(space) if hasattr(space, "__len__") else True):
        declared_dims, specs = dimsmod.dims_from_space(space)
        missing = [d.name for d in declared_dims if d.name not in table.columns]
        if missing:
            notes.append(f"declared but not in the table (carried over unchanged): {', '.join(missing)}")
        clash = [d.name for d in declared_dims if d.name in ids or d.name in seeds]
        if clash:
            raise ConfigError(f"--id/--seed: {clash[0]} is a parameter of --space; name another column")
        moved = [
            d.name
            for d in declared_dims
            if d.name in table.columns and colmod.is_seed_name(d.name) and d.name not in (params or [])
        ]
        if moved:
            seeds = [*seeds, *moved]
            notes.append(
                f"{', '.join(moved)}: declared in the space but read as a seed column (rows differing only there are "
                "one configuration; carried over unchanged); pass --params=NAME to analyse it as a parameter"
            )
        dims = [d for d in declared_dims if d.name in table.columns and d.name not in moved]
        extra = [c for c in (params or []) if c not in specs and c in table.columns]
    elif params is not None:
        extra = list(params)
    else:
        roles = colmod.guess(table, rows, metric, ids, seeds, notes)
        extra, ids, seeds = roles.params, roles.ids, roles.seeds
    clash = [c for c in extra if c in ids or c in seeds]
    if clash:
        raise ConfigError(f"--params: {clash[0]} is also given as an id or seed column; name it once")
    names = [*(d.name for d in dims), *extra]
    for c in table.columns:  # named ids and seeds beside the parameters a format, a space or --params names
        if c != metric and c not in names and c not in ids and c not in seeds:
            if colmod.is_seed_name(c):
                seeds.append(c)
            elif colmod.is_id_name(c):
                ids.append(c)
    return _Roles(dims, extra, specs, ids, seeds)


def _one_row_each(rows: pd.DataFrame, key: str | None, names: list[str]) -> pd.DataFrame:
    """One row per configuration (kinds and levels are inferred over configurations:
    the seeds of one are not repeated values)."""
    try:
        return rows.drop_duplicates([key] if key else names)
    except TypeError:  # unhashable cells (lists in a DataFrame)
        return rows


def _infer_conditions(rows: pd.DataFrame, dims: list[Dim], notes: list) -> list[Dim]:
    """Inferred parameters that are NaN exactly where a choice parameter (never NaN)
    is outside some of its values get ``when: {parent: [those values]}`` (a conditional
    space exported by Optuna or W&B leaves inactive parameters empty)."""
    parents = [d for d in dims if d.levels and rows[d.name].notna().all()]
    out = []
    for d in dims:
        act = rows[d.name].notna()
        if not d.when and not act.all() and act.any():
            for p in parents:
                keys = rows[p.name].map(core.level_key)
                on, off = set(keys[act]), set(keys[~act])
                if p.name == d.name or not off or on & off:
                    continue
                values = [dimsmod.plain(v) for v in p.levels if core.level_key(v) in on]
                d = d._replace(when={p.name: values})
                notes.append(f"{d.name}: set only where {p.name} is {', '.join(map(str, values))}: read as a condition")
                break
        out.append(d)
    return out


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
    ids=None,
    seeds=None,
    limits: dict | None = None,
) -> Analysis:
    """Analyses one table (one row per trial/member).

    space: a declared space (a space-file mapping, ``config.sweep.space``, or a
    list of ``jaxexp.search.space.Param``) giving kinds and ranges; without it kinds are
    inferred and ranges observed. params: columns to analyse besides the declared
    ones (without a space: all of them; default: guessed, ``columns.guess``).
    ids/seeds: id and seed columns (a name, "a,b" or a list) besides those
    recognised (``columns``). limits: {parameter: (low, high)} hard limits no
    expansion passes (None: no limit on that side). method/num_samples/space_metric:
    written into next_space.yaml.
    """
    goal, explicit_ids, seeds, params = _checked(table, metric, goal, elite_quantile, ids, seeds, params)
    notes = list(notes)
    rows, counts = core.usable_rows(table, metric)
    roles = _roles(table, rows, metric, space, params, explicit_ids, seeds, notes)
    dims, key = _analysed_dims(rows, metric, roles, params, explicit_ids, notes)
    configs, elite_mask = _configurations(rows, dims, metric, goal, key, counts, elite_quantile, source)
    tables = _tables(configs, dims, metric, goal, elite_mask, elite_quantile)
    n = len(configs)
    declared = bool(roles.specs)
    changes, nxt = nextspace.propose(
        dims,
        roles.specs,
        nextspace._Stats(
            tables["continuous"], tables["boolean"], tables["categorical"], tables["ranges"], tables["boundaries"]
        ),
        _fixes(configs, dims, metric, goal, elite_mask),
        space_metric or metric,
        goal,
        method or "random",
        num_samples if declared else (num_samples or n),
        notes,
        n_configs=n,
        limits=limits,
    )
    return Analysis(
        metric=metric,
        goal=goal,
        dims=dims,
        configs=configs,
        elite_mask=elite_mask,
        **tables,
        changes=changes,
        next_space=nxt,
        counts=counts,
        elite_quantile=elite_quantile,
        declared=declared,
        source=source,
        notes=notes,
        lineage=_lineage(table, metric),
        ids=roles.ids,
        seeds=roles.seeds,
        key=key,
    )


_NOT_IN_TABLE = (
    "--space: none of its parameters is a column of the table; name them as the table does "
    "(e.g. lr for Optuna's params_lr, train.lr for W&B's config.train.lr)"
)


def _checked(table, metric, goal, elite_quantile, ids, seeds, params) -> tuple[str, list, list, list | None]:
    """The goal ("min" | "max") and the named id, seed and parameter columns,
    checked against the table (one-line errors)."""
    goal = core.normalize_goal(goal)
    if not 0 < elite_quantile < 1:
        raise ConfigError(f"--elite_quantile: must be in (0, 1), got {elite_quantile}")
    if metric not in table.columns:
        raise ConfigError(f"--metric: no column {metric!r} in the table; pass --metric=COLUMN")
    explicit_ids = colmod.names(ids, "--id", table, metric)
    seeds = colmod.names(seeds, "--seed", table, metric)
    both = [c for c in explicit_ids if c in seeds]
    if both:
        raise ConfigError(f"--id/--seed: {both[0]} is given as both; a column is an id or a seed")
    if params is not None:
        params = colmod.names(params, "--params", table, metric)
    return goal, explicit_ids, seeds, params


def _analysed_dims(rows, metric, roles: _Roles, params, explicit_ids, notes) -> tuple[list[Dim], str | None]:
    """The parameters analysed: the declared ones in the table, then every other
    parameter column that varies (its kind inferred over one row per
    configuration); their columns normalised in ``rows`` (in place) and, without
    a declared space, conditions inferred. Returns (dims, the id column that
    groups rows into configurations, None: the parameter values)."""
    dims, extra, specs = roles.dims, roles.extra, roles.specs
    if not dims and not extra and specs:
        raise ConfigError(_NOT_IN_TABLE)
    names = [*(d.name for d in dims), *extra]
    key = colmod.config_key(rows, names, roles.ids, roles.seeds, notes, explicit=explicit_ids)
    once = _one_row_each(rows, key, names)
    constant = []
    for name in extra:
        d = dimsmod.infer_dim(name, once[name])
        if d is None:
            constant.append(name)
        else:
            dims.append(nextspace.observed(d))
    if constant and params is None and not specs:
        notes.append(f"constant, not analysed: {', '.join(constant)}")
    if not dims and specs:
        raise ConfigError(_NOT_IN_TABLE)
    if not dims:
        raise ConfigError("parameters: no parameter column varies across the usable rows; nothing to analyse")
    for d in dims:
        rows[d.name] = core.normalize_column(d, rows[d.name])
    if not specs:  # a declared space says which parameters are conditional
        dims = _infer_conditions(rows, dims, notes)
    return dims, key


def _configurations(rows, dims, metric, goal, key, counts, elite_quantile, source) -> tuple[pd.DataFrame, np.ndarray]:
    """One row per configuration (its seeds averaged), best first, and the elite
    mask over them; their numbers go into ``counts``."""
    configs = core.sort_best_first(core.aggregate_seeds(rows, dims, metric, key), metric, goal)
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
    return configs, elite_mask


def _tables(configs, dims, metric, goal, elite_mask, elite_quantile) -> dict:
    """Every statistic over the configurations, by its ``Analysis`` field:
    per-kind tests (BH-adjusted together: ``bh_tests`` of them), ranges,
    boundary hits, importance and the contours of the top pairs."""
    cont = core.continuous(configs, dims, metric, goal)
    boo = core.boolean(configs, dims, metric, goal)
    cat = core.categorical(configs, dims, metric, goal, elite_mask)
    m = core.add_bh(cont, boo, cat)
    rng = rangesmod.ranges(configs, dims, elite_mask)
    bnd = rangesmod.boundaries(configs, dims, elite_mask)
    imp = impmod.ped_anova(configs, dims, metric, goal, elite_quantile)
    return {
        "continuous": cont,
        "boolean": boo,
        "categorical": cat,
        "bh_tests": m,
        "ranges": rng,
        "boundaries": bnd,
        "importance": imp,
        "contours": _contours(configs, dims, imp, metric, goal),
    }


def _fixes(configs, dims, metric, goal, elite_mask) -> dict:
    """The fix rule's check of every parameter with levels (``ranges.top_level_check``)."""
    return {
        d.name: rangesmod.top_level_check(configs, d, metric, goal, elite_mask)
        for d in dims
        if d.kind != "numeric" or d.choice
    }


def _lineage(table, metric) -> pd.DataFrame | None:
    """node_id, parent_id, metric[, generation, mutation, status] of every node
    when the table has a lineage column pair (``LINEAGE``), else None."""
    pair = next((pair for pair in LINEAGE if set(pair) <= set(table.columns)), None)
    if pair is None:
        return None
    # every node, failed ones included (the plot marks them), with what the tree records about it
    extra = [c for c in ("generation", "mutation", "status") if c in table.columns]
    return (
        table[[*pair, metric, *extra]].set_axis(["node_id", "parent_id", metric, *extra], axis=1).reset_index(drop=True)
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
