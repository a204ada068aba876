"""Weightings to score: every point of a (constrained) simplex grid, or a list.

A grid point is an integer vector of *units* u (G, K) with weights w = u * step.
With ``sum_to_one`` the units are the compositions of n = 1/step into K parts
within the per-model bounds (K=3 at 1%: C(102, 2) = 5,151 points; K=5 at 2%:
C(54, 4) = 316,251); without it, the box of all unit vectors within the bounds.
Enumeration is vectorised over G (one numpy pass per model) and deterministic:
lexicographic in the units, first model slowest.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re

import numpy as np
import pandas as pd

from jaxexp.errors import ConfigError

FREE_BOUNDS = (-1.0, 2.0)  # default per-model bounds when weights may be negative


@dataclasses.dataclass(frozen=True)
class Constraints:
    """Feasible weights: lo <= w <= hi (K,) and, with sum_to_one, sum(w) == 1."""

    lo: np.ndarray
    hi: np.ndarray
    sum_to_one: bool = True

    def check(self, w: np.ndarray, tol: float = 1e-9) -> bool:
        w = np.atleast_2d(w)
        ok = (w >= self.lo - tol).all(axis=1) & (w <= self.hi + tol).all(axis=1)
        if self.sum_to_one:
            ok &= np.abs(w.sum(axis=1) - 1.0) <= tol * w.shape[1]
        return bool(ok.all())

    def describe(self, names) -> str:
        parts = ["sum to one" if self.sum_to_one else "free sum"]
        default = np.allclose(self.lo, 0) and np.allclose(self.hi, 1 if self.sum_to_one else self.hi[0])
        if not default:
            parts += [f"{lo:g} <= {n} <= {hi:g}" for n, lo, hi in zip(names, self.lo, self.hi)]
        else:
            parts.append(f"0 <= w <= {self.hi[0]:g}")
        return ", ".join(parts)


def make_constraints(names, nonneg: bool = True, sum_to_one: bool = True, bounds=None) -> Constraints:
    """Per-model bounds from ``bounds``: {name: (lo, hi)} or "name=lo:hi,name=lo:hi".

    Defaults: [0, 1] for non-negative weights, [-1, 2] for free ones.
    """
    k = len(names)
    lo0, hi0 = (0.0, 1.0) if nonneg else FREE_BOUNDS
    lo, hi = np.full(k, lo0), np.full(k, hi0)
    if isinstance(bounds, str):
        parsed = {}
        for item in (b.strip() for b in bounds.split(",") if b.strip()):
            m = re.fullmatch(r"([^=]+)=([^:]*):([^:]*)", item)
            if not m:
                raise ConfigError(f"--bounds: cannot parse {item!r}; use name=lo:hi, e.g. --bounds=multi=0.1:0.5")
            try:
                parsed[m.group(1).strip()] = tuple(float(v) if v.strip() else None for v in m.group(2, 3))
            except ValueError:
                raise ConfigError(f"--bounds: {item!r} has a non-number; use name=lo:hi") from None
        bounds = parsed
    for name, (b_lo, b_hi) in (bounds or {}).items():
        if name not in names:
            raise ConfigError(f"--bounds: unknown model {name!r}; models: {', '.join(names)}")
        i = list(names).index(name)
        lo[i] = lo[i] if b_lo is None else b_lo
        hi[i] = hi[i] if b_hi is None else b_hi
    if nonneg and (lo < 0).any():
        raise ConfigError("--bounds: a negative lower bound with non-negative weights; pass --nonneg=false")
    if (lo > hi).any():
        i = int(np.argmax(lo > hi))
        raise ConfigError(f"--bounds: {names[i]}: lower bound {lo[i]:g} > upper bound {hi[i]:g}")
    if sum_to_one and (lo.sum() > 1 + 1e-12 or hi.sum() < 1 - 1e-12):
        raise ConfigError("--bounds: no weighting within the bounds sums to one; widen the bounds")
    return Constraints(lo, hi, sum_to_one)


def _units(step: float) -> int:
    if not (0 < step <= 1):
        raise ConfigError(f"--step: {step} must be in (0, 1], e.g. 0.01")
    n = round(1.0 / step)
    if abs(n * step - 1.0) > 1e-9:
        raise ConfigError(f"--step: 1/step must be a whole number (got {step}); use e.g. 0.01, 0.02, 0.05, 0.1")
    return n


def _unit_bounds(c: Constraints, n: int, lo=None, hi=None) -> tuple[np.ndarray, np.ndarray]:
    lo = c.lo if lo is None else np.maximum(c.lo, lo)
    hi = c.hi if hi is None else np.minimum(c.hi, hi)
    return np.ceil(lo * n - 1e-9).astype(np.int64), np.floor(hi * n + 1e-9).astype(np.int64)


def count_compositions(lo_u: np.ndarray, hi_u: np.ndarray, total: int) -> int:
    """Number of integer vectors lo_u <= u <= hi_u with sum(u) == total."""
    t = total - int(lo_u.sum())
    if t < 0 or (hi_u < lo_u).any():
        return 0
    ways = np.zeros(t + 1, dtype=object)  # exact big integers
    ways[0] = 1
    for width in (hi_u - lo_u).tolist():
        csum = np.concatenate([[0], np.cumsum(ways)])
        idx = np.arange(t + 1)
        ways = csum[idx + 1] - csum[np.maximum(idx - width, 0)]
    return int(ways[t])


def compositions(lo_u: np.ndarray, hi_u: np.ndarray, total: int) -> np.ndarray:
    """All integer vectors lo_u <= u <= hi_u summing to ``total``: (G, K) int64,
    lexicographic. One vectorised numpy step per coordinate, none per point."""
    k = len(lo_u)
    u = np.zeros((1, 0), np.int64)
    rest = np.array([total], np.int64)
    for j in range(k - 1):
        after_lo, after_hi = int(lo_u[j + 1 :].sum()), int(hi_u[j + 1 :].sum())
        v_lo = np.maximum(lo_u[j], rest - after_hi)
        v_hi = np.minimum(hi_u[j], rest - after_lo)
        counts = np.maximum(v_hi - v_lo + 1, 0)
        parent = np.repeat(np.arange(len(u)), counts)
        starts = np.repeat(np.cumsum(counts) - counts, counts)
        v = np.repeat(v_lo, counts) + (np.arange(int(counts.sum())) - starts)
        u = np.concatenate([u[parent], v[:, None]], axis=1)
        rest = rest[parent] - v
    last_ok = (rest >= lo_u[-1]) & (rest <= hi_u[-1])
    return np.concatenate([u, rest[:, None]], axis=1)[last_ok]


def _box(lo_u: np.ndarray, hi_u: np.ndarray) -> np.ndarray:
    axes = [np.arange(a, b + 1) for a, b in zip(lo_u, hi_u)]
    return np.stack([g.ravel() for g in np.meshgrid(*axes, indexing="ij")], axis=1).astype(np.int64)


def simplex_grid(c: Constraints, step: float, max_points: int = 20_000_000, lo=None, hi=None) -> np.ndarray:
    """Every feasible weighting on the grid of ``step``: (G, K) float64.

    ``lo``/``hi`` (K,) narrow the bounds (used for a local window).
    """
    n = _units(step)
    lo_u, hi_u = _unit_bounds(c, n, lo, hi)
    if c.sum_to_one:
        g = count_compositions(lo_u, hi_u, n)
    else:
        g = math.prod(max(0, int(b - a + 1)) for a, b in zip(lo_u, hi_u))
    if g > max_points:
        raise ConfigError(
            f"--step: the grid has {g:,} weightings (> --max_points={max_points:,}); "
            "use a coarser --step, tighter --bounds or a larger --max_points"
        )
    if g == 0:
        raise ConfigError(f"--step: no grid point of step {step:g} satisfies the constraints; use a finer --step")
    u = compositions(lo_u, hi_u, n) if c.sum_to_one else _box(lo_u, hi_u)
    return u / n


def local_grid(center: np.ndarray, c: Constraints, step: float, fine: float, radius: int = 1) -> np.ndarray:
    """The grid of step ``fine`` within ``radius * step`` of ``center`` (per weight)."""
    return simplex_grid(c, fine, lo=center - radius * step - 1e-12, hi=center + radius * step + 1e-12)


def grid_size(k: int, step: float) -> int:
    """Points of the full non-negative sum-to-one grid: C(n + K - 1, K - 1)."""
    return math.comb(_units(step) + k - 1, k - 1)


def parse_weightings(spec, names) -> tuple[list[str], np.ndarray]:
    """Explicit weightings: "50/30/20,52/28/20" (percent when a weighting sums to
    >= 50, else fractions), with optional labels "champion=50/30/20"; or a CSV
    file with one column per model and an optional ``name`` column; or a (G, K)
    array. Returns (labels, (G, K) float64)."""
    k = len(names)
    if isinstance(spec, str) and spec.endswith(".csv"):
        if not os.path.isfile(spec):
            raise ConfigError(f"--weights: file not found: {spec}")
        df = pd.read_csv(spec)
        missing = [m for m in names if m not in df.columns]
        if missing:
            raise ConfigError(f"--weights: {spec} lacks column(s) {missing}; one column per model")
        labels = df["name"].astype(str).tolist() if "name" in df.columns else None
        w = df[list(names)].to_numpy(np.float64)
    elif isinstance(spec, str):
        labels, rows = [], []
        for item in (s.strip() for s in spec.split(",") if s.strip()):
            label, _, body = item.rpartition("=")
            try:
                vals = [float(v.strip().rstrip("%")) for v in re.split(r"[/:;]", body)]
            except ValueError:
                raise ConfigError(f"--weights: cannot parse {item!r}; use e.g. 50/30/20 or name=50/30/20") from None
            if len(vals) != k:
                raise ConfigError(f"--weights: {item!r} has {len(vals)} weight(s) for {k} models ({', '.join(names)})")
            labels.append(label.strip() or body.strip())
            rows.append(vals)
        if not rows:
            raise ConfigError("--weights: empty list; use e.g. --weights=50/30/20,52/28/20")
        w = np.asarray(rows, np.float64)
    else:
        w, labels = np.asarray(spec, np.float64), None
        if w.ndim != 2 or w.shape[1] != k:
            raise ConfigError(f"--weights: expected (G, {k}) weightings, got shape {w.shape}")
    if not np.isfinite(w).all():
        raise ConfigError("--weights: non-finite weight; give numbers")
    percent = np.abs(w.sum(axis=1)) >= 50
    w = np.where(percent[:, None], w / 100.0, w)
    if labels is None:
        labels = ["/".join(f"{100 * v:g}" for v in row) for row in w]
    return labels, w
