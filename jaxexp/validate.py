"""``jaxexp validate``: what a sweep would run, checked without running it."""

from __future__ import annotations

import ml_collections

from jaxexp import config as cfgmod
from jaxexp import population
from jaxexp import space as spacemod
from jaxexp.errors import ConfigError
from jaxexp.spacefile import apply, check, check_fields

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
    if path:
        spacefile, errors = check(path, config)
        if errors:
            return [], errors
        config = apply(config, spacefile)
    params, errors = spacemod.parse_all(config.sweep.space)
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
    if errors:
        return [], errors

    seeds = config.sweep.seeds
    head = [
        f"config: {source or config.name}" + (f"; space file: {path}" if path else ""),
        f"method: {method}"
        + (f" ({n_samples} samples, seed {config.seed})" if method != "grid" else "")
        + f"; metric: {config.metric} ({config.goal})",
    ]
    n_configs = n_grid if method == "grid" else n_samples
    if n_configs > MAX_COUNTED:
        rows = None
    else:
        rows = spacemod.expand(params, method, n_samples, config.seed)
    table = [("parameter", "kind", "values / range", "condition", "active", "field")]
    traced = cfgmod.traced_fields(config)
    for p in params:
        kind, shown, cond = spacemod.describe(p)
        active = f"{sum(r[p.name] is not None for r in rows)}/{len(rows)}" if rows is not None else "?"
        table.append((p.name, kind, shown, cond, active, "traced" if p.name in traced else "static"))
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    lines = head + ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in table]
    if not params:
        lines[-1] = "no swept parameters (the base config only)"
    if rows is None:
        at_most = " at most (conditions remove some)" if method == "grid" else ""
        lines.append(f"{n_configs} configurations{at_most}; over {MAX_COUNTED}: static buckets not counted")
        return lines, []

    one_seed = ml_collections.ConfigDict(config.to_dict())
    one_seed.sweep.seeds = 1
    configs = population.members_table(one_seed)
    members = []
    for i in range(len(configs)):
        try:
            members.extend(population.resolve(config, population.config_rows(config, configs.iloc[[i]])))
        except ConfigError as e:
            if str(e) not in errors:
                errors.append(str(e))
    if errors:
        return [], errors
    n_buckets = len(population.buckets(members))
    recipes = len(population.recipes(config))
    per = f" ({recipes} recipes x {len(rows)})" if recipes else ""
    lines.append(
        f"{len(configs)} configurations{per} x {seeds} seed(s) = {len(configs) * seeds} members in "
        f"{n_buckets} static bucket(s) (one compile each: members of a bucket differ only in traced fields)"
    )
    return lines, []
