"""How a bounded range's bound or a numeric choice's levels move for the next
search space (the EXPAND rule's arithmetic): a step of ``EXPAND`` of the width
(at most x/÷ ``LOG_FACTOR`` on a log scale), bounds rounded outward to the
parameter's grid or 3 significant digits, kept inside hard limits (--limits) and
a jaxexp config field's valid values."""

from __future__ import annotations

import math

import numpy as np

from jaxexp.analysis.dims import Dim, from_scale, to_scale
from jaxexp.errors import ConfigError

EXPAND = 0.5  # of the range's width (on the log scale for log ranges) ...
LOG_FACTOR = 3.0  # ... but a log range's bound moves at most this factor per step


def _round_sig(x: float, side: str, sig: int = 3) -> float:
    """x rounded outward (down for a low bound, up for a high one) to ``sig`` digits."""
    if x == 0 or not np.isfinite(x):
        return x
    e = math.floor(math.log10(abs(x))) - sig + 1
    f = 10.0**e
    r = x / f
    r = round(r) if abs(r - round(r)) < 1e-6 else r  # exp(log(...)) fuzz: 0.1000000002 is 0.1
    y = (math.floor(r) if side == "low" else math.ceil(r)) * f
    return float(f"{y:.{sig}g}")  # no 0.30000000000000004


def _config_field(name: str):
    from jaxexp import config as cfgmod

    base = cfgmod.default_config()
    return (base, cfgmod.get_path(base, name)) if name in cfgmod.program_fields(base) else (None, None)


def _valid(name: str, value) -> bool:
    """For a jaxexp config field: does a member with this value validate?"""
    from jaxexp import config as cfgmod

    base, old = _config_field(name)
    if base is None:
        return True
    if isinstance(old, int) and not isinstance(old, bool):
        if float(value) != int(value):
            return False
        value = int(value)
    try:
        cfgmod.validate_member(cfgmod.with_values(base, {name: value}))
    except ConfigError:
        return False
    return True


def _finish_bound(d: Dim, v: float, side: str) -> float:
    """A new bound in the parameter's units: rounded outward, kept >= 0 where the
    old range was, integers and multiples of q kept."""
    if not d.log and side == "low" and d.low >= 0:
        v = max(v, 0.0)
    if d.q:
        v = (math.floor(v / d.q + 1e-6) if side == "low" else math.ceil(v / d.q - 1e-6)) * d.q
        v = round(v, 12)
    elif d.integer:
        v = float(math.floor(v + 1e-6) if side == "low" else math.ceil(v - 1e-6))
    else:
        v = _round_sig(v, side)
    if d.log:
        v = max(v, 1.0 if d.integer else np.nextafter(0, 1))
    return v


def expand_bound(d: Dim, side: str, limit: tuple | None = None) -> float | None:
    """The expanded bound on ``side``: EXPAND of the width, at most x/÷ LOG_FACTOR
    on a log scale, inside ``limit`` (low, high; None: open) and the config field's
    valid values; None when it cannot move (at 0, at the limit, or no valid value)."""
    lo, hi = to_scale(d, [d.low, d.high])
    width = hi - lo
    step = min(EXPAND * width, math.log(LOG_FACTOR)) if d.log else EXPAND * width
    old = d.low if side == "low" else d.high
    for frac in (1, 1 / 2, 1 / 4, 1 / 8):
        s = lo - frac * step if side == "low" else hi + frac * step
        v = _finish_bound(d, from_scale(d, s), side)
        v = _clamp(d, v, side, limit)
        if v != old and (v < old if side == "low" else v > old) and _valid(d.name, _typed(d, v)):
            return v
    return None


def _clamp(d: Dim, v: float, side: str, limit: tuple | None) -> float:
    """v inside the hard limit on ``side`` (rounded inward to the parameter's grid)."""
    bound = (limit or (None, None))[0 if side == "low" else 1]
    if bound is None or not np.isfinite(bound):
        return v
    if side == "low" and v < bound:
        return _finish_bound(d, bound, "high") if d.integer or d.q else float(bound)
    if side == "high" and v > bound:
        return _finish_bound(d, bound, "low") if d.integer or d.q else float(bound)
    return v


def _typed(d: Dim, v: float):
    return int(v) if d.integer and float(v).is_integer() else float(v)


def extend_levels(d: Dim, side: str, limit: tuple | None = None) -> object | None:
    """One more numeric level past the extreme on ``side`` (continuing a geometric
    step, at most x/÷ LOG_FACTOR, or an arithmetic one) inside ``limit``; None when
    there is no sensible one."""
    nums = sorted(float(v) for v in d.levels)
    if len(nums) < 2:
        return None
    ratios = [b / a for a, b in zip(nums, nums[1:])] if nums[0] > 0 else []
    if ratios and max(ratios) - min(ratios) < 1e-6 * max(ratios) and ratios[0] > 1:
        r = min(ratios[0], LOG_FACTOR)
        new = nums[-1] * r if side == "high" else nums[0] / r
    else:
        new = nums[-1] + (nums[-1] - nums[-2]) if side == "high" else nums[0] - (nums[1] - nums[0])
    if side == "low" and nums[0] >= 0 and new < 0:
        return None
    lo_lim, hi_lim = limit or (None, None)
    if (lo_lim is not None and new < lo_lim) or (hi_lim is not None and new > hi_lim):
        return None
    integer = all(float(v).is_integer() for v in nums) and all(not isinstance(v, float) for v in d.levels)
    if integer:
        new = round(new)
        if new in nums:
            return None
    value = int(new) if integer else float(f"{new:.6g}")
    return value if _valid(d.name, value) else None
