"""Parsing and validation of a nested space into ``Param`` records."""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from jaxexp.errors import ConfigError
from jaxexp.search.space.params import (
    _ALIASES,
    _SPEC_KEYS,
    DISTRIBUTIONS,
    Param,
    _as_dict,
    _canon,
    _is_spec,
    _short,
    _takes,
)


def parse(space: Mapping | None, prefix: str = "sweep.space") -> list[Param]:
    """Flattens and validates a nested space into a list of ``Param``.

    Raises ConfigError with a one-line message naming the parameter and the fix
    (the first error; ``parse_all`` returns every error).
    """
    params, errors = parse_all(space, prefix)
    if errors:
        raise ConfigError(errors[0])
    return params


def parse_all(space: Mapping | None, prefix: str = "sweep.space") -> tuple[list[Param], list[str]]:
    """(parameters, one-line errors): every spec and condition checked, all errors collected."""
    space = _as_dict(space) or {}
    params: list[Param] = []
    errors: list[str] = []
    failed: set[str] = set()  # names whose spec is broken: conditions on them are not reported again
    if not isinstance(space, Mapping):
        return [], [f"{prefix}: expected a mapping of parameters, got {space!r}"]

    def walk(node: Mapping, path: tuple[str, ...]):
        for key, child in node.items():
            child = _as_dict(child)
            sub = path + (str(key),)
            where = f"{prefix}.{'.'.join(sub)}"
            if isinstance(child, Mapping) and _is_spec(child):
                try:
                    params.append(_parse_param(".".join(sub), child, prefix))
                except ConfigError as e:
                    errors.append(str(e))
                    failed.add(".".join(sub))
            elif isinstance(child, Mapping) and set(child) == {"parameters"}:  # W&B nested group
                inner = _as_dict(child["parameters"])
                if isinstance(inner, Mapping) and inner:
                    walk(inner, sub)
                else:
                    errors.append(f"{where}.parameters: a nested group needs a non-empty mapping of parameters")
            elif isinstance(child, Mapping):
                if child:
                    walk(child, sub)
                else:
                    errors.append(f"{where}: empty group; remove it or add parameters")
            else:
                errors.append(
                    f"{where}: expected a parameter spec such as "
                    f"{{'values': [...]}} or {{'distribution': 'uniform', 'min': 0, 'max': 1}}, got {child!r}"
                )

    walk(space, ())
    errors.extend(_check_conditions(params, prefix, failed))
    return params, errors


def _number(name: str, field: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        if isinstance(value, str) and _is_float_text(value):
            raise ConfigError(
                f"{name}: '{field}' is the string {value!r}: a YAML float needs a dot and a signed exponent, "
                f"write {yaml_float(value)} (YAML 1.1 reads {value} as text)"
            )
        raise ConfigError(f"{name}: '{field}' must be a number, got {value!r}")
    if not math.isfinite(float(value)):
        raise ConfigError(f"{name}: '{field}' must be finite, got {value!r}")
    return float(value)


def _is_float_text(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return text.strip().lower() not in ("nan", "inf", "-inf", "+inf", "infinity", "-infinity")


def yaml_float(text: str) -> str:
    """How a number written as ``text`` must be spelt to be a YAML 1.1 float: '1e-5' -> '1.0e-5'."""
    mantissa, _, exponent = text.strip().lower().partition("e")
    if "." not in mantissa:
        mantissa += ".0"
    if exponent and exponent[0] not in "+-":
        exponent = "+" + exponent
    return f"{mantissa}e{exponent}" if exponent else mantissa


def _parse_when(full: str, name: str, when: Any) -> tuple:
    when = _as_dict(when)
    example = "e.g. when: {train.optimizer: [adam, adamw]}"
    if not isinstance(when, Mapping) or not when:
        raise ConfigError(f"{full}: 'when' must map a parent parameter to a value or a list of values, {example}")
    flat: dict[str, Any] = {}

    def walk(node: Mapping, path: tuple[str, ...]):
        for key, value in node.items():
            value = _as_dict(value)
            sub = path + (str(key),)
            if isinstance(value, Mapping) and value:
                walk(value, sub)
            elif isinstance(value, Mapping):
                raise ConfigError(f"{full}: when.{'.'.join(sub)} is empty; give the parent's values, {example}")
            else:
                flat[".".join(sub)] = value

    walk(when, ())
    out = []
    for parent, values in flat.items():
        values = tuple(values) if isinstance(values, (list, tuple)) else (values,)
        if not values:
            raise ConfigError(
                f"{full}: when.{parent} lists no values; give the values of {parent} that activate {name}"
            )
        out.append((parent, tuple(_canon(v) for v in values)))
    return tuple(out)


def _parse_param(name: str, spec: Mapping, prefix: str) -> Param:
    full = f"{prefix}.{name}"
    unknown = set(spec) - _SPEC_KEYS
    if unknown:
        raise ConfigError(f"{full}: unknown spec key(s) {sorted(unknown)}; allowed: {sorted(_SPEC_KEYS)}")
    when = _parse_when(full, name, spec["when"]) if "when" in spec else ()
    if "value" in spec:
        return Param(name, "fixed", values=(spec["value"],), when=when)
    if "values" in spec:
        values = tuple(spec["values"]) if isinstance(spec["values"], (list, tuple)) else None
        if not values:
            raise ConfigError(f"{full}: 'values' must be a non-empty list")
        if any(v is None for v in values):
            raise ConfigError(f"{full}: 'values' contains null; a parameter that is sometimes unset needs 'when'")
        probs = spec.get("probabilities")
        if probs is not None and not isinstance(probs, (list, tuple)):
            raise ConfigError(f"{full}: 'probabilities' must be a list with one number per value, got {probs!r}")
        if probs is not None:
            probs = tuple(_number(full, "probabilities", p) for p in probs)
            if len(probs) != len(values):
                raise ConfigError(f"{full}: {len(probs)} probabilities for {len(values)} values; give one per value")
            if any(p < 0 for p in probs) or abs(sum(probs) - 1.0) > 1e-6:
                raise ConfigError(f"{full}: probabilities must be >= 0 and sum to 1 (sum is {sum(probs):g})")
        return Param(name, "choice", values=values, probabilities=probs, when=when)
    dist = spec["distribution"]
    dist = _ALIASES.get(dist, dist) if isinstance(dist, str) else dist
    if dist not in DISTRIBUTIONS:
        raise ConfigError(f"{full}: unknown distribution {dist!r}; use one of {', '.join(DISTRIBUTIONS)}")
    num = _grid_points(full, spec)
    if dist == "normal":
        return _parse_normal(name, full, spec, num, when)
    if "mu" in spec or "sigma" in spec:
        raise ConfigError(f"{full}: 'mu'/'sigma' are only for distribution normal; {dist} takes 'min' and 'max'")
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
    return Param(name, dist, low=low, high=high, q=q, num=num, when=when)


def _grid_points(full: str, spec: Mapping) -> int:
    num = spec.get("num", 0) or 0
    if isinstance(num, bool) or not isinstance(num, (int, np.integer)):
        raise ConfigError(f"{full}: 'num' (grid points) must be an integer, got {num!r}")
    if num < 0 or num == 1:
        raise ConfigError(f"{full}: 'num' (grid points) must be 0 (no grid) or >= 2, got {num}")
    return int(num)


def _parse_normal(name: str, full: str, spec: Mapping, num: int, when: tuple) -> Param:
    if "min" in spec or "max" in spec or "q" in spec:
        raise ConfigError(f"{full}: normal takes 'mu' and 'sigma' (W&B spelling), not min/max/q; drop them")
    for field in ("mu", "sigma"):
        if field not in spec:
            raise ConfigError(f"{full}: distribution 'normal' needs '{field}' (mean and standard deviation)")
    mu, sigma = _number(full, "mu", spec["mu"]), _number(full, "sigma", spec["sigma"])
    if sigma <= 0:
        raise ConfigError(f"{full}: sigma must be > 0 (got {sigma:g})")
    return Param(name, "normal", mu=mu, sigma=sigma, num=num, when=when)


def _check_conditions(params: list[Param], prefix: str, failed: set[str]) -> list[str]:
    """Duplicate names, unknown/unsupported parents, values a parent never takes, cycles."""
    errors = []
    by_name: dict[str, Param] = {}
    for p in params:
        if p.name in by_name:
            errors.append(f"{prefix}.{p.name}: given twice (a dotted name and a nested group?); keep one")
        by_name[p.name] = p
    for p in params:
        where = f"{prefix}.{p.name}"
        for parent, values in p.when:
            q = by_name.get(parent)
            if parent == p.name:
                errors.append(f"{where}: 'when' names the parameter itself; a condition names another parameter")
            elif q is None and parent not in failed:
                near = difflib.get_close_matches(parent, list(by_name), n=1)
                hint = f"; did you mean '{near[0]}'?" if near else ""
                errors.append(
                    f"{where}: condition on unknown parameter '{parent}'; add {parent} to the same space "
                    f"(values: [...]) or remove the condition{hint}"
                )
            elif q is not None and q.kind not in ("choice", "fixed"):
                errors.append(
                    f"{where}: condition on {parent}, a {q.kind} parameter; a condition's parent must be a choice "
                    "(values: [...]) or fixed (value: ...) parameter"
                )
            elif q is not None:
                never = [v for v in values if not _takes(q.values, v)]
                if never:
                    errors.append(
                        f"{where}: condition value(s) {', '.join(_short(v) for v in never)} never taken by {parent} "
                        f"(values: {', '.join(_short(v) for v in q.values)}); use values of {parent}"
                    )
    errors.extend(_cycles(params, prefix, by_name))
    return errors


def _cycles(params: list[Param], prefix: str, by_name: dict[str, Param]) -> list[str]:
    errors, state = [], {}  # state: 1 = on the current path, 2 = done

    def visit(name: str, path: list[str]):
        state[name] = 1
        for parent, _ in by_name[name].when:
            if parent not in by_name or parent == name:
                continue
            if state.get(parent) == 1:
                cycle = path[path.index(parent) :] + [parent]
                errors.append(
                    f"{prefix}.{parent}: conditions form a cycle ({' -> '.join(cycle)}); remove one of these conditions"
                )
            elif parent not in state:
                visit(parent, path + [parent])
        state[name] = 2

    for p in params:
        if p.name not in state:
            visit(p.name, [p.name])
    return errors
