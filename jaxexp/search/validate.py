"""``jaxexp validate``: what a sweep would run, checked without running it.

``describe`` checks a jaxexp config's sweep (its space file or ``sweep.space``,
names against the config or workload, member configs, static buckets);
``describe_file`` checks a space file of any project on its own (structure,
ranges, probabilities, conditions and its size; names are not checked).
"""

from __future__ import annotations

import math

import ml_collections

from jaxexp import config as cfgmod
from jaxexp import search
from jaxexp.errors import ConfigError
from jaxexp.run import population
from jaxexp.search import space as spacemod
from jaxexp.search.spacefile import apply, check, check_fields, conflicts

MAX_COUNTED = 20_000  # configurations resolved (about 3 ms each) to count static buckets; more: not counted


def describe(config: ml_collections.ConfigDict, source: str = "") -> tuple[list[str], list[str]]:
    """(report lines, errors) of the sweep ``config`` would run (``jaxexp validate``).

    The report: method, metric, one row per parameter (kind, values or range,
    condition, how many configurations it is active in, traced or static), the
    number of configurations and members, and the number of static buckets
    (compiles), from the resolved member configs of the expansion. Errors: one
    line each, as many as can be found (specs and conditions are all checked
    before the space is expanded; each configuration is resolved separately).
    """
    path = config.sweep.space_file
    config, params, planned, n_grid, errors = _checked(config, path)
    if errors:
        return [], errors
    method, n_samples = config.sweep.method, config.sweep.num_samples
    head = [
        f"config: {source or config.name}" + (f"; space file: {path}" if path else ""),
        (planned and f"{planned[1]}; the counts below are for as many random draws)")
        or (
            f"method: {method}"
            + (f" ({n_samples} samples, seed {config.seed})" if method != "grid" else "")
            + f"; metric: {config.metric} ({config.goal})"
        ),
    ]
    n_configs = n_grid if method == "grid" else n_samples
    rows = None if n_configs > MAX_COUNTED else spacemod.expand(params, method, n_samples, config.seed)
    lines = head + _param_table(params, rows, cfgmod.traced_fields(config))
    if rows is None:
        at_most = " at most (conditions remove some)" if method == "grid" else ""
        lines.append(f"{n_configs} configurations{at_most}; over {MAX_COUNTED}: static buckets not counted")
        return lines, []
    n_configs, n_buckets, errors = _buckets(config)
    if errors:
        return [], errors
    recipes = len(population.recipes(config))
    per = f" ({recipes} recipes x {len(rows)})" if recipes else ""
    seeds = config.sweep.seeds
    lines.append(
        f"{n_configs} configurations{per} x {seeds} seed(s) = {n_configs * seeds} members in "
        f"{n_buckets} static bucket(s) (one compile each: members of a bucket differ only in traced fields)"
    )
    return lines, []


def _checked(config, path: str):
    """The config with its space file applied and, for a search, counted as as many
    random draws as it asks for; (config, params, planned, grid size, errors)."""
    if path:
        spacefile, errors = check(path, config)
        errors = errors or conflicts(config, spacefile)
        if errors:
            return config, [], None, 0, errors
        config = apply(config, spacefile)
    try:
        planned = search.strategy(config.sweep.get("strategy", "sweep")).planned(config)
    except ConfigError as e:
        return config, [], None, 0, [str(e)]
    if planned is not None:
        # a search, not an expansion: the space's ranges are sampled, so count like a random
        # sweep of as many configurations as the search asks for
        config = ml_collections.ConfigDict(config.to_dict())
        config.sweep.method = "random"
        config.sweep.num_samples = planned[0]
    params, errors = spacemod.parse_all(config.sweep.space)
    if not path and not errors:  # a .py config's own sweep.space against the command line's flags
        errors.extend(conflicts(config))
    errors.extend(check_fields(params, "sweep.space", config))
    method, n_samples = config.sweep.method, config.sweep.num_samples
    n_grid = 1
    if method not in spacemod.METHODS:
        errors.append(f"sweep.method: unknown method {method!r}; use one of {', '.join(spacemod.METHODS)}")
    elif method == "grid":
        for p in params:
            try:
                n_grid *= len(spacemod.grid_values(p))
            except ConfigError as e:
                errors.append(str(e))
    elif n_samples < 1:
        errors.append(f"sweep.num_samples: method={method!r} needs num_samples >= 1 (got {n_samples})")
    for check_top in (cfgmod.validate_top, population.recipes):
        try:
            check_top(config)
        except ConfigError as e:
            errors.append(str(e))
    return config, params, planned, n_grid, errors


def _param_table(params, rows, traced) -> list[str]:
    """One aligned line per parameter: kind, values or range, condition, in how many
    of the expanded ``rows`` it is active (``?``: not expanded), traced or static."""
    table = [("parameter", "kind", "values / range", "condition", "active", "field")]
    for p in params:
        kind, shown, cond = spacemod.describe(p)
        active = f"{sum(r[p.name] is not None for r in rows)}/{len(rows)}" if rows is not None else "?"
        table.append((p.name, kind, shown, cond, active, "traced" if p.name in traced else "static"))
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in table]
    if not params:
        lines[-1] = "no swept parameters (the base config only)"
    return lines


def _buckets(config) -> tuple[int, int, list[str]]:
    """(configurations, static buckets, errors) of the expansion, each configuration
    resolved on its own (one seed)."""
    one_seed = ml_collections.ConfigDict(config.to_dict())
    one_seed.sweep.seeds = 1
    configs = population.members_table(one_seed)
    members, errors = [], []
    for i in range(len(configs)):
        try:
            members.extend(population.resolve(config, population.config_rows(config, configs.iloc[[i]])))
        except ConfigError as e:
            if str(e) not in errors:
                errors.append(str(e))
    return len(configs), (len(population.buckets(members)) if not errors else 0), errors


def describe_file(path: str) -> tuple[list[str], list[str]]:
    """(report lines, errors) of a space file on its own (``jaxexp validate FILE.yaml``
    without ``--config``): the space of any project, e.g. a W&B sweep with its own
    parameter names.

    Checked: the file's structure and keys, every spec (ranges, probabilities,
    steps, grid points), the conditions (parents, values, cycles) and, for a grid,
    that every parameter can be gridded. Not checked: the names (no config to check
    them against; the first line says so). The report: method and metric, one row per
    parameter (kind, values or range, condition, in how many configurations it is
    active) and the size: a grid's configurations, or the samples drawn and the
    combinations of the choices. W&B's launch keys (program, command, ...) and
    ``method: bayes`` are accepted and listed as not checked.
    """
    spacefile, errors = check(path, standalone=True)
    if errors:
        return [], errors
    params = spacemod.parse(spacefile.space, f"{path}: parameters")
    method, n = spacefile.method, spacefile.num_samples
    lines = [
        f"space file: {path}; names not checked against a config "
        "(--config=CFG.py checks them against that config or workload and counts static buckets)"
    ]
    if spacefile.ignored:
        lines.append(f"not checked (W&B launch keys): {', '.join(spacefile.ignored)}")
    metric = f"; metric: {spacefile.metric}" + (f" ({spacefile.goal})" if spacefile.goal else "")
    shown = method or "not set (the config's sweep.method applies)"
    lines.append(f"method: {shown}" + (f" ({n} samples)" if n else "") + (metric if spacefile.metric else ""))

    axes = []  # grid points per parameter (None: continuous, not griddable)
    for p in params:
        try:
            axes.append(len(spacemod.grid_values(p)))
        except ConfigError:
            axes.append(None)
    griddable = all(a is not None for a in axes)
    bound = math.prod(a for a in axes if a is not None)
    discrete = [p for p in params if p.kind in ("fixed", "choice")]  # conditions only name these
    bound_discrete = math.prod(len(p.values) for p in discrete)
    combos = (
        f"the choices make {len(spacemod.expand(discrete, 'grid', 0, 0))} combination(s)"
        if bound_discrete <= MAX_COUNTED
        else f"the choices make at most {bound_discrete:,} combinations"
    )
    continuous = len(params) - len(discrete)
    draws = 0
    if method == "grid" or (method is None and griddable):
        basis = "grid"
        rows = spacemod.expand(params, "grid", 0, 0) if bound <= MAX_COUNTED else None
        size = (
            f"size: a grid of {len(rows)} configurations (over the active parameters)"
            if rows is not None
            else f"size: a grid of at most {bound:,} configurations (conditions remove some); over {MAX_COUNTED}: "
            "active counts not made"
        )
        if method is None:
            size += "; as random/sobol: num_samples draws"
    else:
        draws = n if n and n <= MAX_COUNTED and method != "bayes" else 1000
        basis = "random" if method in (None, "bayes") else method
        rows = spacemod.expand(params, basis, draws, 0)
        if method == "bayes":
            what = "W&B's bayes search (its run count is the sweep tool's)"
        else:
            what = f"{n} samples" if n else "num_samples not set (the config's sweep.num_samples applies)"
        size = f"size: {what}; {continuous} continuous parameter(s), {combos}" + (
            "" if draws == n else f"; active: share of {draws} {basis} draws (seed 0)"
        )
    proxy = basis != "grid" and draws != n  # not the configurations themselves: shares of the draws
    table = [("parameter", "kind", "values / range", "condition", "active")]
    for p in params:
        kind, shown, cond = spacemod.describe(p)
        k = sum(r[p.name] is not None for r in rows) if rows is not None else None
        active = "?" if k is None else f"{100 * k / len(rows):.0f}%" if proxy else f"{k}/{len(rows)}"
        table.append((p.name, kind, shown, cond, active))
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in table]
    lines.append(size + ("" if basis == "grid" or method is not None else "; as a grid: continuous, not griddable"))
    return lines, []
