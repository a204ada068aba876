"""Grids, random and scrambled-Sobol samples of a parsed space."""

from __future__ import annotations

import math
import warnings
import zlib

import numpy as np

from jaxexp.errors import ConfigError
from jaxexp.search.space.params import METHODS, Param, is_active, topological


def _quantise(p: Param, x: np.ndarray) -> np.ndarray:
    if p.kind.startswith("int"):
        return np.clip(np.round(x), p.low, p.high).astype(np.int64)
    if p.kind.startswith("q_"):
        # multiples of q counted from min, never past max
        steps = np.clip(np.round((x - p.low) / p.q), 0, np.floor((p.high - p.low) / p.q + 1e-9))
        return np.round(p.low + steps * p.q, 12)  # 0.15, not 0.15000000000000002
    return x


MAX_GRID = 1_000_000  # configurations of a grid (and points of one parameter): beyond, memory and time explode


def grid_values(p: Param, prefix: str = "sweep.space") -> list:
    """All values a parameter takes in a grid sweep."""
    if p.kind in ("fixed", "choice"):
        return list(p.values)
    if p.kind.startswith("int") and not p.num:
        if p.high - p.low + 1 > 1000:
            raise ConfigError(f"{prefix}.{p.name}: int range too wide for a grid; set 'num' or use method='random'")
        return list(range(int(p.low), int(p.high) + 1))
    if p.num > MAX_GRID:
        raise ConfigError(f"{prefix}.{p.name}: num={p.num} grid points (at most {MAX_GRID:,}); use method='random'")
    if p.kind.startswith("q_") and not p.num:
        n = int(math.floor((p.high - p.low) / p.q + 1e-9)) + 1
        if n > MAX_GRID:
            raise ConfigError(f"{prefix}.{p.name}: q={p.q} makes {n:,} grid points (at most {MAX_GRID:,}); set 'num'")
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
        bound = math.prod(len(v) for v in axes.values())  # before expanding (conditions only remove rows)
        if bound > MAX_GRID:
            sizes = " x ".join(f"{n} {len(v)}" for n, v in axes.items() if len(v) > 1)
            raise ConfigError(
                f"{prefix}: a grid of up to {bound:,} configurations ({sizes}); at most {MAX_GRID:,}: "
                "use fewer points or method='random'/'sobol' with num_samples"
            )
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
