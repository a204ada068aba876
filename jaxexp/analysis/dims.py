"""What the analysis knows about each parameter: its kind, range and scale.

A ``Dim`` comes from a declared space (a space file, ``config.sweep.space`` or a
list of ``jaxexp.search.space.Param``) or, without one, is inferred from the table's
values; then its range is the observed one, which the report says.

Kinds:
- ``numeric``: a number. ``choice`` marks declared (or inferred) numeric levels
  such as batch sizes: they get both the Spearman test and per-level statistics.
- ``boolean``: True/False.
- ``categorical``: anything else with levels (strings, tuples).
"""

from __future__ import annotations

import ast
import math
from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from jaxexp.errors import ConfigError
from jaxexp.search import space as spacemod

# Keys the analysis reads itself before a spec goes to ``jaxexp.search.space.parse``.
_EXTRA_KEYS = ("when",)
# Inferred numeric columns with at most this many distinct values, some repeated, are levels.
MAX_INFERRED_LEVELS = 8
# Inferred log scale: every value > 0, max/min at least LOG_RATIO and the values
# skewed to the low end (median below LOG_SKEW of the range's midpoint, as
# log-uniform samples are); or max/min at least LOG_RATIO_ALWAYS.
LOG_RATIO = 10.0
LOG_SKEW = 0.6
LOG_RATIO_ALWAYS = 1000.0


class Dim(NamedTuple):
    """One analysed parameter."""

    name: str  # column / dotted config path
    kind: str  # "numeric" | "boolean" | "categorical"
    levels: tuple = ()  # choice values (declared order, or sorted observed), () for a range
    low: float = math.nan  # numeric range, in the parameter's units (NaN: unbounded, e.g. normal)
    high: float = math.nan
    log: bool = False  # the range is read on a log scale (log distributions)
    integer: bool = False
    q: float = 0.0  # quantisation step (q_* distributions)
    declared: bool = False  # range/levels from a declared space (else observed)
    spec: dict = {}  # the declared spec, without ``when`` ({} when inferred)
    when: dict = {}  # {parent: [values]}: active only where the parent takes one of them
    distribution: str = ""  # the declared distribution ("choice" for values), or the inferred one

    @property
    def choice(self) -> bool:
        return bool(self.levels)

    @property
    def bounded(self) -> bool:
        return self.kind == "numeric" and math.isfinite(self.low) and math.isfinite(self.high)


def to_scale(d: Dim, x) -> np.ndarray:
    """Values on the scale the range is read on (log for log distributions)."""
    x = np.asarray(x, np.float64)
    return np.log(x) if d.log else x


def from_scale(d: Dim, x: float) -> float:
    return float(math.exp(x)) if d.log else float(x)


def _plain(v: Any) -> Any:
    """numpy scalars -> Python; tuples -> lists (YAML/JSON friendly)."""
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, (tuple, list)):
        return [_plain(x) for x in v]
    if isinstance(v, Mapping):
        return {str(k): _plain(x) for k, x in v.items()}
    return v


def plain(v: Any) -> Any:
    return _plain(v)


# ----------------------------------------------------------------------------- declared spaces


def _is_spec(node: Mapping) -> bool:
    return any(k in node for k in ("value", "values", "distribution"))


def flatten_space(space: Mapping | None, where: str = "space") -> dict[str, dict]:
    """{dotted name: spec} of a nested space.

    Accepts a whole space file (``parameters:`` at the top), W&B nested groups
    (``train: {parameters: {epochs: ...}}``) and ``config.sweep.space`` dicts
    (``{"train": {"lr": spec}}``).
    """
    space = space.to_dict() if hasattr(space, "to_dict") else space
    if not space:
        return {}
    if not isinstance(space, Mapping):
        raise ConfigError(f"{where}: expected a mapping of parameters, got {type(space).__name__}")
    if "parameters" in space and not _is_spec(space):
        space = space["parameters"] or {}
    out: dict[str, dict] = {}

    def walk(node: Mapping, prefix: str) -> None:
        for key, child in node.items():
            child = child.to_dict() if hasattr(child, "to_dict") else child
            name = f"{prefix}{key}"
            if isinstance(child, Mapping) and _is_spec(child):
                out[name] = dict(child)
            elif isinstance(child, Mapping) and isinstance(child.get("parameters", child), Mapping) and child:
                walk(child.get("parameters", child), name + ".")  # W&B nested group, or a config section
            else:
                raise ConfigError(
                    f"{where}.{name}: expected a parameter spec such as {{values: [...]}} or "
                    f"{{distribution: uniform, min: 0, max: 1}}, got {child!r}"
                )

    walk(space, "")
    return out


def dim_from_param(p, spec: dict | None = None, when: dict | None = None) -> Dim | None:
    """The Dim of a ``jaxexp.search.space.Param`` (None for a fixed one)."""
    when = dict(when if when is not None else _when_dict(p))
    if p.kind == "fixed":
        return None
    if spec is None:
        spec = param_spec(p)
    if p.kind == "choice":
        values = tuple(p.values)
        if all(isinstance(v, (bool, np.bool_)) for v in values):
            return Dim(p.name, "boolean", levels=values, declared=True, spec=spec, when=when, distribution="choice")
        if all(_is_number(v) for v in values):
            nums = [float(v) for v in values]
            return Dim(
                p.name,
                "numeric",
                levels=values,
                low=min(nums),
                high=max(nums),
                integer=all(float(v).is_integer() for v in nums),
                declared=True,
                spec=spec,
                when=when,
                distribution="choice",
            )
        return Dim(p.name, "categorical", levels=values, declared=True, spec=spec, when=when, distribution="choice")
    if p.kind == "normal":  # a Param of a space module that knows W&B's normal
        return Dim(p.name, "numeric", declared=True, spec=spec, when=when, distribution="normal")
    return Dim(
        p.name,
        "numeric",
        low=float(p.low),
        high=float(p.high),
        log="log" in p.kind,
        integer=p.kind.startswith("int"),
        q=float(p.q),
        declared=True,
        spec=spec,
        when=when,
        distribution=p.kind,
    )


def _when_dict(p) -> dict:
    """{parent: [values]} of a Param's ``when`` ((parent, values) pairs)."""
    return {parent: list(values) for parent, values in dict(getattr(p, "when", None) or {}).items()}


def param_spec(p) -> dict:
    """The spec dict of a ``jaxexp.search.space.Param`` (for writing the next space)."""
    if p.kind == "fixed":
        return {"value": p.values[0]}
    if p.kind == "choice":
        spec = {"values": list(p.values)}
        if p.probabilities is not None:
            spec["probabilities"] = list(p.probabilities)
        return spec
    if p.kind == "normal":
        return {"distribution": "normal", "mu": getattr(p, "mu", 0.0), "sigma": getattr(p, "sigma", 1.0)}
    spec = {"distribution": p.kind, "min": p.low, "max": p.high}
    if p.kind.startswith("int"):
        spec.update(min=int(p.low), max=int(p.high))
    if p.q:
        spec["q"] = p.q
    if p.num:
        spec["num"] = p.num
    return spec


def dims_from_space(space, where: str = "space") -> tuple[list[Dim], dict[str, dict]]:
    """(analysed dims, every declared spec incl. fixed ones, ``when`` as
    {parent: [values]}) of a declared space: a mapping (a space file's, or
    ``config.sweep.space``) or a list of ``jaxexp.search.space.Param``.

    Specs are validated by ``jaxexp.search.space.parse``; the specs written back keep
    the user's spelling (``log_uniform_values``, ``q``, ``num``).
    """
    if isinstance(space, (list, tuple)):
        params, raw = list(space), {p.name: param_spec(p) for p in space}
    else:
        raw = flatten_space(space, where)
        params = spacemod.parse(raw, prefix=where)
    dims, specs = [], {}
    for p in params:
        spec = {k: v for k, v in raw.get(p.name, param_spec(p)).items() if k not in _EXTRA_KEYS}
        if spec.get("num") == 0:
            spec.pop("num")  # the default, written by config.json
        when = _when_dict(p)
        specs[p.name] = {**spec, **({"when": when} if when else {})}
        d = dim_from_param(p, spec=spec, when=when)
        if d is not None:
            dims.append(d)
    return dims, specs


# ----------------------------------------------------------------------------- inference from data


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


_TRUE, _FALSE = {"true", "True", "TRUE"}, {"false", "False", "FALSE"}


def as_bool_column(col: pd.Series) -> pd.Series | None:
    """The column as object True/False/NaN when every present value is a bool
    (or the strings true/false); else None."""
    present = col.dropna()
    if present.empty:
        return None
    if pd.api.types.is_bool_dtype(col):
        return col.astype(object)
    vals = set(present.unique().tolist()) if present.map(lambda v: isinstance(v, (bool, str))).all() else None
    if not vals or not vals <= ({True, False} | _TRUE | _FALSE):
        return None
    return col.map(lambda v: v if not isinstance(v, str) else v in _TRUE, na_action="ignore").astype(object)


def infer_dim(name: str, col: pd.Series) -> Dim | None:
    """A Dim from a column's values (range = observed); None when constant."""
    present = col.dropna()
    if present.nunique() < 2:
        return None
    b = as_bool_column(col)
    if b is not None:
        return Dim(name, "boolean", levels=(False, True), distribution="choice")
    num = pd.to_numeric(present, errors="coerce")
    if num.notna().all():
        x = num.to_numpy(np.float64)
        integer = bool(np.all(x == np.round(x)))
        distinct = np.unique(x)
        if len(distinct) <= MAX_INFERRED_LEVELS and len(x) > len(distinct):
            levels = tuple(int(v) if integer else float(v) for v in distinct)
            return Dim(
                name, "numeric", levels=levels, low=x.min(), high=x.max(), integer=integer, distribution="choice"
            )
        ratio = x.max() / x.min() if x.min() > 0 else 0.0
        skewed = np.median(x) < LOG_SKEW * (x.min() + x.max()) / 2
        log = bool(ratio >= LOG_RATIO_ALWAYS or (ratio >= LOG_RATIO and skewed))
        dist = ("int_" if integer else "") + ("log_uniform" if log else "uniform")
        return Dim(name, "numeric", low=x.min(), high=x.max(), log=log, integer=integer, distribution=dist)
    levels = tuple(sorted(present.astype(str).unique().tolist()))
    return Dim(name, "categorical", levels=levels, distribution="choice")


def hashable(v: Any) -> Any:
    """Lists (JSON's tuples) as tuples, so levels can be grouped and compared."""
    return tuple(hashable(x) for x in v) if isinstance(v, (list, tuple)) else v


def _literal(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in "([":
        try:
            return hashable(ast.literal_eval(value))
        except (ValueError, SyntaxError):
            return value
    return value


def match_level(value: Any, levels: tuple) -> Any:
    """The declared level a table value stands for (CSV turns 16 into 16.0 and
    (8, 8) into "(8, 8)"), as a hashable; the value itself when none matches."""
    for lv in map(hashable, levels):
        if isinstance(lv, tuple):
            if hashable(_literal(value)) == lv:
                return lv
            continue
        if isinstance(lv, (bool, np.bool_)) or isinstance(value, (bool, np.bool_)):
            if isinstance(lv, (bool, np.bool_)) and isinstance(value, (bool, np.bool_)) and bool(lv) == bool(value):
                return lv
            continue
        if _is_number(lv) and _is_number(value) and float(lv) == float(value):
            return lv
        if str(plain(lv)) == str(value) or str(lv) == str(value):
            return lv
    return value
