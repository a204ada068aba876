"""Search spaces: distributions, conditions, validation, grids, random and Sobol samples.

A space is a nested mapping that mirrors the config it sweeps. A leaf is a
parameter spec: a mapping with ``value`` (fixed), ``values`` (a choice, with
optional ``probabilities``) or ``distribution``: ``uniform``, ``log_uniform``,
``int_uniform``, ``int_log_uniform``, ``q_uniform``, ``q_log_uniform`` (each with
``min``/``max``; ``q`` for the quantised ones) or ``normal`` (``mu``, ``sigma``;
W&B's spelling); ``num`` makes a grid of a distribution. The W&B spelling
``log_uniform_values`` is accepted for ``log_uniform``. A group may also be
written in W&B form, ``{"train": {"parameters": {"lr": {...}}}}``.

Each parameter is named by its dotted config path, e.g. ``train.lr``.

A spec may carry ``when: {PARENT: VALUE or [VALUES]}``: the parameter is
*active* only when the parent parameter (a choice or fixed parameter of the
same space) takes one of those values (several parents: all must hold; an
inactive parent makes its children inactive). Expansions give inactive
parameters the value ``None``; the member keeps the base config's value.
"""

from __future__ import annotations

import difflib
import math
import warnings
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


def _quantise(p: Param, x: np.ndarray) -> np.ndarray:
    if p.kind.startswith("int"):
        return np.clip(np.round(x), p.low, p.high).astype(np.int64)
    if p.kind.startswith("q_"):
        # multiples of q counted from min, never past max
        steps = np.clip(np.round((x - p.low) / p.q), 0, np.floor((p.high - p.low) / p.q + 1e-9))
        return np.round(p.low + steps * p.q, 12)  # 0.15, not 0.15000000000000002
    return x


def grid_values(p: Param, prefix: str = "sweep.space") -> list:
    """All values a parameter takes in a grid sweep."""
    if p.kind in ("fixed", "choice"):
        return list(p.values)
    if p.kind.startswith("int") and not p.num:
        if p.high - p.low + 1 > 1000:
            raise ConfigError(f"{prefix}.{p.name}: int range too wide for a grid; set 'num' or use method='random'")
        return list(range(int(p.low), int(p.high) + 1))
    if p.kind.startswith("q_") and not p.num:
        n = int(math.floor((p.high - p.low) / p.q + 1e-9)) + 1
        return [float(v) for v in np.round(p.low + p.q * np.arange(n), 12)]
    if not p.num:
        raise ConfigError(
            f"{prefix}.{p.name}: a continuous {p.kind} cannot be gridded; "
            "set 'num' (grid points) or use method='random' or 'sobol'"
        )
    if p.kind == "normal":  # equal-probability quantiles: the midpoints of num bins of mass 1/num
        from scipy.stats import norm

        return [float(x) for x in p.mu + p.sigma * norm.ppf((np.arange(p.num) + 0.5) / p.num)]
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
    if p.kind == "normal":
        return [x.item() for x in rng.normal(p.mu, p.sigma, size=n)]
    if p.kind.startswith("int"):
        lo, hi = p.low - 0.5, p.high + 0.5  # every integer equally likely
    else:
        lo, hi = p.low, p.high
    if "log" in p.kind:
        xs = np.exp(rng.uniform(math.log(lo), math.log(hi), size=n))
    else:
        xs = rng.uniform(lo, hi, size=n)
    return [x.item() for x in _quantise(p, xs)]


def from_unit(p: Param, u: np.ndarray) -> list:
    """Maps points ``u`` in [0, 1) through the parameter's inverse CDF.

    Choices fall in bins of width ``probabilities``; log distributions are
    uniform in log space; ints and quantised values are rounded like ``sample``.
    """
    u = np.asarray(u, np.float64)
    if p.kind == "fixed":
        return [p.values[0]] * len(u)
    if p.kind == "choice":
        k = len(p.values)
        probs = np.asarray(p.probabilities if p.probabilities is not None else np.full(k, 1.0 / k))
        idx = np.minimum(np.searchsorted(np.cumsum(probs), u, side="right"), k - 1)
        return [p.values[i] for i in idx]
    if p.kind == "normal":
        from scipy.stats import norm

        return [x.item() for x in p.mu + p.sigma * norm.ppf(np.clip(u, 1e-12, 1 - 1e-12))]
    lo, hi = (p.low - 0.5, p.high + 0.5) if p.kind.startswith("int") else (p.low, p.high)
    if "log" in p.kind:
        xs = np.exp(math.log(lo) + u * (math.log(hi) - math.log(lo)))
    else:
        xs = lo + u * (hi - lo)
    return [x.item() for x in _quantise(p, xs)]


def sobol_points(d: int, n: int, seed: int) -> np.ndarray:
    """``n`` scrambled Sobol points in [0, 1)^d, shape [n, d] (the same seed gives the same sequence)."""
    from scipy.stats import qmc

    if d == 0:
        return np.zeros((n, 0))
    try:
        engine = qmc.Sobol(d=d, scramble=True, rng=np.random.default_rng(seed))
    except TypeError:  # scipy < 1.15 names it seed
        engine = qmc.Sobol(d=d, scramble=True, seed=np.random.default_rng(seed))
    with warnings.catch_warnings():  # n need not be a power of 2 (documented: powers of 2 balance best)
        warnings.filterwarnings("ignore", message=".*balance properties.*")
        return engine.random(n)


def expand(params: list[Param], method: str, num_samples: int, seed: int, prefix: str = "sweep.space") -> list[dict]:
    """Expands a space into a list of configurations ({name: value}, None where inactive).

    grid: the product over the *active* parameters only (a conditional
    parameter multiplies only the rows where its parents allow it, so no two
    rows differ only in inactive values). random: one stream per parameter, so
    more samples extend (never change) the first ones and adding a parameter
    leaves the others' samples as they were. sobol: one scrambled Sobol
    dimension per non-fixed parameter (in space order), mapped through its
    inverse CDF; more samples extend the first ones, but adding, removing or
    reordering a parameter changes every point.
    """
    names = [p.name for p in params]
    if method == "grid":
        axes = {p.name: grid_values(p, prefix) for p in params}
        order = topological(params)
        rows: list[dict] = []

        def fill(i: int, row: dict):
            if i == len(order):
                rows.append({n: row[n] for n in names})
                return
            p = order[i]
            if is_active(p, row):
                for v in axes[p.name]:
                    row[p.name] = v
                    fill(i + 1, row)
            else:
                row[p.name] = None
                fill(i + 1, row)

        fill(0, {})
        return rows
    if method in ("random", "sobol"):
        if isinstance(num_samples, bool) or not isinstance(num_samples, (int, np.integer)) or num_samples < 1:
            raise ConfigError(f"sweep.num_samples: method={method!r} needs num_samples >= 1 (got {num_samples!r})")
        if method == "random":
            columns = {
                p.name: sample(p, np.random.default_rng([seed, zlib.crc32(p.name.encode())]), num_samples)
                for p in params
            }
        else:
            dims = {p.name: k for k, p in enumerate(p for p in params if p.kind != "fixed")}
            u = sobol_points(len(dims), num_samples, seed)
            columns = {
                p.name: from_unit(p, u[:, dims[p.name]]) if p.name in dims else [p.values[0]] * num_samples
                for p in params
            }
        rows = [{name: columns[name][i] for name in names} for i in range(num_samples)]
        order = [p for p in topological(params) if p.when]
        for row in rows:
            for p in order:  # parents first: a child of an inactive parent is inactive too
                if not is_active(p, row):
                    row[p.name] = None
        return rows
    raise ConfigError(f"sweep.method: unknown method {method!r}; use one of {', '.join(METHODS)}")


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
