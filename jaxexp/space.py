"""Search spaces: distributions, validation, grids and random samples.

A space is a nested mapping that mirrors the config it sweeps. A leaf is a
parameter spec: a mapping with ``value`` (fixed), ``values`` (a choice, with
optional ``probabilities``) or ``distribution`` (``uniform``, ``log_uniform``,
``int_uniform``, ``int_log_uniform``, ``q_uniform``, ``q_log_uniform``, each with
``min``/``max``; ``q`` for the quantised ones; ``num`` to make a grid of it).
The W&B spelling ``log_uniform_values`` is accepted for ``log_uniform``.

Each parameter is named by its dotted config path, e.g. ``train.lr``.
"""

from __future__ import annotations

import itertools
import math
import zlib
from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np

from jaxexp.errors import ConfigError

DISTRIBUTIONS = (
    "uniform",
    "log_uniform",
    "int_uniform",
    "int_log_uniform",
    "q_uniform",
    "q_log_uniform",
)
_ALIASES = {"log_uniform_values": "log_uniform", "q_log_uniform_values": "q_log_uniform"}
_SPEC_KEYS = {"value", "values", "probabilities", "distribution", "min", "max", "q", "num"}


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


# Convenience constructors for Python config files.
def choice(values, probabilities=None) -> dict:
    # Tuples, not lists: ml-collections can override tuples from the command line.
    spec = {"values": tuple(values)}
    if probabilities is not None:
        spec["probabilities"] = tuple(probabilities)
    return spec


def fixed(value) -> dict:
    return {"value": value}


def uniform(low: float, high: float, num: int = 0) -> dict:
    return {"distribution": "uniform", "min": low, "max": high, "num": num}


def log_uniform(low: float, high: float, num: int = 0) -> dict:
    return {"distribution": "log_uniform", "min": low, "max": high, "num": num}


def int_uniform(low: int, high: int, log: bool = False) -> dict:
    return {"distribution": "int_log_uniform" if log else "int_uniform", "min": low, "max": high}


def q_uniform(low: float, high: float, q: float, log: bool = False) -> dict:
    return {"distribution": "q_log_uniform" if log else "q_uniform", "min": low, "max": high, "q": q}


def _is_spec(node: Mapping) -> bool:
    return any(k in node for k in ("value", "values", "distribution"))


def _as_dict(node: Any) -> Any:
    if hasattr(node, "to_dict"):
        return node.to_dict()
    return node


def parse(space: Mapping | None, prefix: str = "sweep.space") -> list[Param]:
    """Flattens and validates a nested space into a list of ``Param``.

    Raises ConfigError with a one-line message naming the parameter and the fix.
    """
    space = _as_dict(space) or {}
    params: list[Param] = []

    def walk(node: Mapping, path: tuple[str, ...]):
        for key, child in node.items():
            child = _as_dict(child)
            sub = path + (str(key),)
            if isinstance(child, Mapping) and _is_spec(child):
                params.append(_parse_param(".".join(sub), child, prefix))
            elif isinstance(child, Mapping):
                if not child:
                    raise ConfigError(f"{prefix}.{'.'.join(sub)}: empty group; remove it or add parameters")
                walk(child, sub)
            else:
                raise ConfigError(
                    f"{prefix}.{'.'.join(sub)}: expected a parameter spec such as "
                    f"{{'values': [...]}} or {{'distribution': 'uniform', 'min': 0, 'max': 1}}, got {child!r}"
                )

    walk(space, ())
    return params


def _number(name: str, field: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        hint = " (a YAML float must be written like 1.0e-5, not as a string)" if isinstance(value, str) else ""
        raise ConfigError(f"{name}: '{field}' must be a number, got {value!r}{hint}")
    if not math.isfinite(float(value)):
        raise ConfigError(f"{name}: '{field}' must be finite, got {value!r}")
    return float(value)


def _parse_param(name: str, spec: Mapping, prefix: str) -> Param:
    full = f"{prefix}.{name}"
    unknown = set(spec) - _SPEC_KEYS
    if unknown:
        raise ConfigError(f"{full}: unknown spec key(s) {sorted(unknown)}; allowed: {sorted(_SPEC_KEYS)}")
    if "value" in spec:
        return Param(name, "fixed", values=(spec["value"],))
    if "values" in spec:
        values = tuple(spec["values"]) if isinstance(spec["values"], (list, tuple)) else None
        if not values:
            raise ConfigError(f"{full}: 'values' must be a non-empty list")
        probs = spec.get("probabilities")
        if probs is not None and not isinstance(probs, (list, tuple)):
            raise ConfigError(f"{full}: 'probabilities' must be a list with one number per value, got {probs!r}")
        if probs is not None:
            probs = tuple(_number(full, "probabilities", p) for p in probs)
            if len(probs) != len(values):
                raise ConfigError(f"{full}: {len(probs)} probabilities for {len(values)} values; give one per value")
            if any(p < 0 for p in probs) or abs(sum(probs) - 1.0) > 1e-6:
                raise ConfigError(f"{full}: probabilities must be >= 0 and sum to 1 (sum is {sum(probs):g})")
        return Param(name, "choice", values=values, probabilities=probs)
    dist = spec["distribution"]
    dist = _ALIASES.get(dist, dist) if isinstance(dist, str) else dist
    if dist not in DISTRIBUTIONS:
        raise ConfigError(f"{full}: unknown distribution {dist!r}; use one of {', '.join(DISTRIBUTIONS)}")
    for field in ("min", "max"):
        if field not in spec:
            raise ConfigError(f"{full}: distribution {dist!r} needs '{field}'")
    low, high = _number(full, "min", spec["min"]), _number(full, "max", spec["max"])
    if low >= high:
        raise ConfigError(f"{full}: min ({low:g}) >= max ({high:g}); make min < max")
    if "log" in dist and low <= 0:
        raise ConfigError(f"{full}: {dist} needs min > 0 (got {low:g}); use a positive min or a linear distribution")
    q = 0.0
    if dist.startswith("q_"):
        if "q" not in spec:
            raise ConfigError(f"{full}: distribution {dist!r} needs a step 'q'")
        q = _number(full, "q", spec["q"])
        if q <= 0:
            raise ConfigError(f"{full}: q must be > 0 (got {q:g})")
    elif "q" in spec:
        raise ConfigError(f"{full}: 'q' is only for q_uniform/q_log_uniform")
    if dist.startswith("int") and (low != int(low) or high != int(high)):
        raise ConfigError(f"{full}: {dist} needs integer min/max (got {low:g}, {high:g})")
    num = spec.get("num", 0) or 0
    if isinstance(num, bool) or not isinstance(num, (int, np.integer)):
        raise ConfigError(f"{full}: 'num' (grid points) must be an integer, got {num!r}")
    if num < 0 or num == 1:
        raise ConfigError(f"{full}: 'num' (grid points) must be 0 (no grid) or >= 2, got {num}")
    return Param(name, dist, low=low, high=high, q=q, num=num)


def _quantise(p: Param, x: np.ndarray) -> np.ndarray:
    if p.kind.startswith("int"):
        return np.clip(np.round(x), p.low, p.high).astype(np.int64)
    if p.kind.startswith("q_"):
        # multiples of q counted from min, never past max
        steps = np.clip(np.round((x - p.low) / p.q), 0, np.floor((p.high - p.low) / p.q + 1e-9))
        return np.round(p.low + steps * p.q, 12)  # 0.15, not 0.15000000000000002
    return x


def grid_values(p: Param) -> list:
    """All values a parameter takes in a grid sweep."""
    if p.kind in ("fixed", "choice"):
        return list(p.values)
    if p.kind.startswith("int") and not p.num:
        if p.high - p.low + 1 > 1000:
            raise ConfigError(f"sweep.space.{p.name}: int range too wide for a grid; set 'num' or use method='random'")
        return list(range(int(p.low), int(p.high) + 1))
    if p.kind.startswith("q_") and not p.num:
        n = int(math.floor((p.high - p.low) / p.q + 1e-9)) + 1
        return [float(v) for v in np.round(p.low + p.q * np.arange(n), 12)]
    if not p.num:
        raise ConfigError(
            f"sweep.space.{p.name}: a continuous {p.kind} cannot be gridded; "
            "set 'num' (grid points) or use method='random'"
        )
    if "log" in p.kind:
        xs = np.geomspace(p.low, p.high, p.num)
    else:
        xs = np.linspace(p.low, p.high, p.num)
    xs = _quantise(p, xs)
    return list(dict.fromkeys(x.item() for x in xs))  # quantising may merge points


def sample(p: Param, rng: np.random.Generator, n: int) -> list:
    """Draws ``n`` values of one parameter."""
    if p.kind == "fixed":
        return [p.values[0]] * n
    if p.kind == "choice":
        idx = rng.choice(len(p.values), size=n, p=p.probabilities)
        return [p.values[i] for i in idx]
    if p.kind.startswith("int"):
        lo, hi = p.low - 0.5, p.high + 0.5  # every integer equally likely
    else:
        lo, hi = p.low, p.high
    if "log" in p.kind:
        xs = np.exp(rng.uniform(math.log(lo), math.log(hi), size=n))
    else:
        xs = rng.uniform(lo, hi, size=n)
    return [x.item() for x in _quantise(p, xs)]


def expand(params: list[Param], method: str, num_samples: int, seed: int) -> list[dict]:
    """Expands a space into a list of configurations ({name: value})."""
    if method == "grid":
        if not params:
            return [{}]
        axes = [grid_values(p) for p in params]
        return [dict(zip([p.name for p in params], combo)) for combo in itertools.product(*axes)]
    if method == "random":
        if num_samples < 1:
            raise ConfigError("sweep.num_samples: method='random' needs num_samples >= 1")
        # One stream per parameter: more samples extend (never change) the first
        # ones, and adding a parameter leaves the others' samples as they were.
        columns = {
            p.name: sample(p, np.random.default_rng([seed, zlib.crc32(p.name.encode())]), num_samples) for p in params
        }
        return [{name: columns[name][i] for name in columns} for i in range(num_samples)]
    raise ConfigError(f"sweep.method: unknown method {method!r}; use 'grid' or 'random'")
