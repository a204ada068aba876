"""The members table: expansion of a sweep, bucketing by static key, slot counts.

A member is one row: (member id, configuration id, seed, parameter values).
Padding members (to fill a chunk up to a multiple of the device count) are
copies of a real member with ``pad`` set; the engine drops their results.
"""

from __future__ import annotations

import ast
import math
from typing import NamedTuple

import ml_collections
import pandas as pd

from jaxexp import config as cfgmod
from jaxexp.errors import ConfigError
from jaxexp.search import space as spacemod
from jaxexp.search import spacefile


class Member(NamedTuple):
    member: int
    config_id: int
    seed: int
    values: dict  # swept parameter -> value
    config: ml_collections.ConfigDict  # the resolved member config


class Bucket(NamedTuple):
    key: str  # canonical JSON of the static fields
    members: list[Member]


ID_COLUMNS = ("member", "config_id", "seed")
LABEL_COLUMNS = ("recipe",)  # table columns that name, not set, config values


def recipes(config: ml_collections.ConfigDict) -> dict[str, dict]:
    """``sweep.recipes`` as {name: {dotted field: value}} (validated)."""
    out = {}
    for name, overrides in config.sweep.recipes.to_dict().items():
        if not isinstance(overrides, dict):
            raise ConfigError(f"sweep.recipes.{name}: must map config sections to values, e.g. {{'train': {{...}}}}")
        flat = cfgmod.flatten(overrides)
        cfgmod.check_param_names(config, list(flat), where=f"sweep.recipes.{name}")
        out[name] = flat
    if config.sweep.baseline and config.sweep.baseline not in out:
        raise ConfigError(
            f"sweep.baseline: {config.sweep.baseline!r} is not a recipe; use one of {', '.join(out) or '(no recipes)'}"
        )
    return out


def members_table(config: ml_collections.ConfigDict) -> pd.DataFrame:
    """Expands ``config.sweep`` into one row per (recipe x configuration x seed).

    Columns: member, config_id, seed, then ``recipe`` (with ``sweep.recipes``),
    then one column per recipe field and swept parameter (a recipe that does
    not set a field gets the base config's value). A conditional parameter
    that is inactive in a row is None there (NaN in a numeric column; empty in
    members.csv). ``sweep.space_file``, when set, gives the space.
    """
    config = spacefile.resolve(config)
    cfgmod.validate_top(config)
    params = spacemod.parse(config.sweep.space)
    cfgmod.check_param_names(config, [p.name for p in params])
    named = recipes(config)
    swept = {p.name for p in params}
    for name, overrides in named.items():
        both = sorted(swept & set(overrides))
        if both:
            raise ConfigError(
                f"sweep.recipes.{name}.{both[0]}: also swept in sweep.space; a field is set by the recipes or swept, "
                "not both"
            )
    rows = spacemod.expand(params, config.sweep.method, config.sweep.num_samples, config.seed)
    recipe_fields = list(dict.fromkeys(f for r in named.values() for f in r if f not in {p.name for p in params}))
    base = {f: cfgmod.get_path(config, f) for f in recipe_fields}
    records = []
    for recipe, overrides in named.items() if named else [(None, {})]:
        label = {"recipe": recipe} if named else {}
        for values in rows:
            config_id = len(records) // config.sweep.seeds
            for seed in range(config.sweep.seeds):
                fields = {**base, **overrides, **values}
                records.append({"member": len(records), "config_id": config_id, "seed": seed, **label, **fields})
    columns = [*ID_COLUMNS, *(["recipe"] if named else []), *recipe_fields, *[p.name for p in params]]
    return pd.DataFrame.from_records(records, columns=columns)


def resolve(config: ml_collections.ConfigDict, table: pd.DataFrame) -> list[Member]:
    """Resolves and validates every member's config (one per configuration)."""
    missing = [c for c in ID_COLUMNS if c not in table.columns]
    if missing:
        raise ConfigError(f"members table: missing column(s) {missing}; give member, config_id, seed and parameters")
    params = [c for c in table.columns if c not in ID_COLUMNS + LABEL_COLUMNS]
    cfgmod.check_param_names(config, params)
    resolved: dict[tuple, ml_collections.ConfigDict] = {}
    out = []
    defaults = {p: cfgmod.get_path(config, p) for p in params}
    for row in table.to_dict("records"):
        # An empty cell (None/NaN: a conditional parameter that is inactive) keeps the base value.
        values = {p: _py(row[p], defaults[p]) for p in params if not _missing(row[p])}
        key = tuple(sorted((k, repr(v)) for k, v in values.items()))
        if key not in resolved:
            member_cfg = cfgmod.with_values(config, values)
            cfgmod.validate_member(member_cfg)
            resolved[key] = member_cfg
        out.append(Member(int(row["member"]), int(row["config_id"]), int(row["seed"]), values, resolved[key]))
    ids = [m.member for m in out]
    if len(set(ids)) != len(ids):
        raise ConfigError("member: member ids must be unique")
    return out


def config_rows(config: ml_collections.ConfigDict, table: pd.DataFrame) -> pd.DataFrame:
    """The columns of a members table that ``resolve`` reads: ids, labels and
    config fields (a ``members.csv`` also holds metrics and status)."""
    fields = set(cfgmod.program_fields(config)) | set(ID_COLUMNS) | set(LABEL_COLUMNS)
    return table[[c for c in table.columns if c in fields]]


def _missing(v) -> bool:
    """True for an empty members-table cell: None, NaN or pandas NA."""
    return v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v))


def _py(v, default=None):
    """numpy/pandas scalars -> plain Python (for ConfigDict type checks); a tuple
    field read back from members.csv ("(64, 64)") -> a tuple; a whole float in an
    int field (a numeric column with empty cells is float) -> an int."""
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(default, tuple) and isinstance(v, str):
        try:
            return tuple(ast.literal_eval(v))
        except (ValueError, SyntaxError, TypeError):
            return v  # with_values names the field and the problem
    if isinstance(default, int) and not isinstance(default, bool) and isinstance(v, float) and v.is_integer():
        return int(v)
    return v


def buckets(members: list[Member]) -> list[Bucket]:
    """Groups members by static key, in order of first appearance."""
    groups: dict[str, list[Member]] = {}
    for m in members:
        groups.setdefault(cfgmod.static_key(m.config), []).append(m)
    return [Bucket(k, v) for k, v in groups.items()]


def chunk_layout(n: int, chunk_size: int, n_devices: int) -> tuple[int, int]:
    """(number of chunks, members per chunk incl. padding) for ``n`` members.

    Chunks of equal size, a multiple of ``n_devices`` and at most
    ``chunk_size`` (rounded down to a multiple of ``n_devices``): the engine runs
    a bucket in that many resident slots, refilled from a queue.
    """
    cap = max(n_devices, (chunk_size // n_devices) * n_devices)
    n_chunks = math.ceil(n / cap)
    per = math.ceil(n / n_chunks)
    per = math.ceil(per / n_devices) * n_devices
    return n_chunks, per


def segment_length(max_epochs: int, requested: int) -> int:
    """Epochs per compiled segment: ``requested``, or a nearby divisor of ``max_epochs``.

    Epochs past a member's end are masked but still computed, so 13 epochs in
    segments of 5 would compute 15. A divisor of ``max_epochs`` between
    ``requested / 2`` and ``requested`` avoids that waste; without one the
    requested length stays (the waste is at most one partial segment).
    """
    if max_epochs <= requested:
        return max_epochs
    for seg in range(requested, (requested + 1) // 2 - 1, -1):
        if seg >= 1 and max_epochs % seg == 0:
            return seg
    return requested
