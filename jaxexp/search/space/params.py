"""Parameters of a search space: the ``Param`` record, constructors for Python configs,
conditions and text forms."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np

DISTRIBUTIONS = (
    "uniform",
    "log_uniform",
    "int_uniform",
    "int_log_uniform",
    "q_uniform",
    "q_log_uniform",
    "normal",
)
METHODS = ("grid", "random", "sobol")
_ALIASES = {"log_uniform_values": "log_uniform", "q_log_uniform_values": "q_log_uniform"}
_SPEC_KEYS = {"value", "values", "probabilities", "distribution", "min", "max", "q", "num", "mu", "sigma", "when"}


class Param(NamedTuple):
    """One validated parameter of a space."""

    name: str  # dotted config path
    kind: str  # "fixed", "choice" or one of DISTRIBUTIONS
    values: tuple = ()  # fixed/choice values
    probabilities: tuple | None = None
    low: float = 0.0
    high: float = 0.0
    q: float = 0.0
    num: int = 0  # grid points for a distribution (0: not grid-able)
    mu: float = 0.0  # normal: mean
    sigma: float = 0.0  # normal: standard deviation
    # ((parent name, (values...)), ...): active only when every parent takes one of its values
    when: tuple = ()


# Convenience constructors for Python config files. ``when`` takes dotted parent
# names ({"train.optimizer": ("adam", "adamw")}); it is stored nested because
# ConfigDict field names cannot contain dots.
def choice(values, probabilities=None, when=None) -> dict:
    # Tuples, not lists: ml-collections can override tuples from the command line.
    spec = {"values": tuple(values)}
    if probabilities is not None:
        spec["probabilities"] = tuple(probabilities)
    return _with_when(spec, when)


def fixed(value, when=None) -> dict:
    return _with_when({"value": value}, when)


def uniform(low: float, high: float, num: int = 0, when=None) -> dict:
    return _with_when({"distribution": "uniform", "min": low, "max": high, "num": num}, when)


def log_uniform(low: float, high: float, num: int = 0, when=None) -> dict:
    return _with_when({"distribution": "log_uniform", "min": low, "max": high, "num": num}, when)


def int_uniform(low: int, high: int, log: bool = False, when=None) -> dict:
    return _with_when({"distribution": "int_log_uniform" if log else "int_uniform", "min": low, "max": high}, when)


def q_uniform(low: float, high: float, q: float, log: bool = False, when=None) -> dict:
    spec = {"distribution": "q_log_uniform" if log else "q_uniform", "min": low, "max": high, "q": q}
    return _with_when(spec, when)


def normal(mu: float, sigma: float, num: int = 0, when=None) -> dict:
    """Gaussian N(mu, sigma^2) (unbounded; ``num`` grid points at equal-probability quantiles)."""
    return _with_when({"distribution": "normal", "mu": mu, "sigma": sigma, "num": num}, when)


def _with_when(spec: dict, when: Mapping | None) -> dict:
    if when:
        spec["when"] = nest(when)
    return spec


def nest(flat: Mapping) -> dict:
    """{"a.b": v} -> {"a": {"b": v}} (nested mappings merge; lists become tuples).

    Spaces live in ConfigDicts, whose field names cannot contain dots.
    """
    out: dict = {}
    for name, value in _as_dict(flat).items():
        *parents, leaf = str(name).split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        value = _as_dict(value)
        if isinstance(value, Mapping) and isinstance(node.get(leaf), dict):
            node[leaf].update(nest(value))
        elif isinstance(value, Mapping):
            node[leaf] = nest(value)
        else:
            node[leaf] = tuple(value) if isinstance(value, list) else value
    return out


def _is_spec(node: Mapping) -> bool:
    return any(k in node for k in ("value", "values", "distribution"))


def _as_dict(node: Any) -> Any:
    if hasattr(node, "to_dict"):
        return node.to_dict()
    return node


def _canon(v: Any) -> Any:
    """Comparable form of a value: lists -> tuples, numpy scalars -> Python."""
    if isinstance(v, (list, tuple)):
        return tuple(_canon(x) for x in v)
    if hasattr(v, "item") and np.ndim(v) == 0:
        return v.item()
    return v


def _takes(values: tuple, v: Any) -> bool:
    v = _canon(v)
    return any(_canon(x) == v for x in values)


def from_cell(p: Param, v: Any) -> Any:
    """A table cell (CSV text or a numpy scalar) back to parameter ``p``'s value:
    the choice it names (a tuple choice is matched by its text), an int for the
    integer kinds, else the plain Python value."""
    v = _canon(v)
    if p.kind == "choice":
        return next((x for x in p.values if str(x) == str(v) or _takes((x,), v)), v)
    if p.kind.startswith("int"):
        return int(v)
    return v


def _short(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(_canon(v))


def topological(params: list[Param]) -> list[Param]:
    """Parents before their children; otherwise in the given order."""
    names = {p.name for p in params}
    done: set[str] = set()
    out: list[Param] = []
    pending = list(params)
    while pending:
        ready = [p for p in pending if all(a not in names or a in done or a == p.name for a, _ in p.when)]
        if not ready:  # a cycle (parse refuses them): keep the given order
            ready = pending
        first = ready[0]
        out.append(first)
        done.add(first.name)
        pending.remove(first)
    return out


def is_active(p: Param, row: Mapping) -> bool:
    """True when every parent of ``p`` is active in ``row`` and takes one of the listed values."""
    return all(row.get(parent) is not None and _takes(values, row[parent]) for parent, values in p.when)


def describe(p: Param) -> tuple[str, str, str]:
    """(kind, values or range, condition) of a parameter as short text (``jaxexp validate``)."""
    if p.kind == "fixed":
        shown = _short(p.values[0])
    elif p.kind == "choice" and p.probabilities is not None:
        shown = ", ".join(f"{_short(v)} ({pr:g})" for v, pr in zip(p.values, p.probabilities))
    elif p.kind == "choice":
        shown = ", ".join(_short(v) for v in p.values)
    elif p.kind == "normal":
        shown = f"mu={p.mu:g}, sigma={p.sigma:g}"
    else:
        shown = f"[{p.low:g}, {p.high:g}]" + (f" step {p.q:g}" if p.q else "")
    if p.num:
        shown += f"; grid {p.num} points"
    cond = " and ".join(f"{a} in {{{', '.join(_short(v) for v in vs)}}}" for a, vs in p.when) or "-"
    return p.kind, shown, cond
