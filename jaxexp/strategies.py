"""Sweep strategies that act while a sweep runs (host side, pure functions).

Successive halving (``sweep.halving_rungs``, ``sweep.halving_eta``): at each
rung epoch r, a member continues only if its monitored metric at epoch r ranks
within the top ``max(1, floor(n / eta))`` of the ``n`` members that have
reached rung r so far (itself included); otherwise it is pruned and its slot
goes to the next queued member. When every member of a bucket runs at once
(no queue) all of them reach a rung at the same segment boundary, so this is
synchronous successive halving exactly (keep the top 1/eta at every rung);
with a queue, members arriving later are held to the same cut against every
value recorded so far (the ASHA promotion rule, decided once per arrival).
"""

from __future__ import annotations

import math

import numpy as np

from jaxexp.errors import ConfigError


def check_halving(rungs, eta: float, max_epochs: int | None = None) -> tuple[int, ...]:
    """Validates ``sweep.halving_rungs`` / ``sweep.halving_eta``; returns the rungs."""
    rungs = tuple(rungs)
    if not rungs:
        return ()
    if any(isinstance(r, bool) or not isinstance(r, (int, np.integer)) or r < 1 for r in rungs):
        raise ConfigError(f"sweep.halving_rungs: epochs must be integers >= 1 (got {rungs})")
    if any(b <= a for a, b in zip(rungs, rungs[1:])):
        raise ConfigError(f"sweep.halving_rungs: must increase, e.g. (2, 6, 18) (got {rungs})")
    if not eta > 1:
        raise ConfigError(f"sweep.halving_eta: must be > 1, e.g. 3 keeps the top third (got {eta})")
    if max_epochs is not None and rungs[-1] >= max_epochs:
        raise ConfigError(
            f"sweep.halving_rungs: the last rung ({rungs[-1]}) must be < train.epochs ({max_epochs}); "
            "a rung at or after the last epoch prunes nothing"
        )
    return tuple(int(r) for r in rungs)


def rung_cut(seen: list[float], arriving: dict[int, float], eta: float) -> set[int]:
    """The arriving members that continue past a rung.

    seen: values recorded at this rung before (smaller is better; signed by
    the goal). arriving: {member id: value} reaching the rung now. A member
    continues when its value is among the best ``max(1, floor(n / eta))`` of
    all ``n = len(seen) + len(arriving)`` values (ties: lower member id first;
    a non-finite value never continues).
    """
    n = len(seen) + len(arriving)
    keep = max(1, math.floor(n / eta))
    pool = [(v, 0, -1) for v in seen] + [(v, 1, m) for m, v in arriving.items()]
    pool = [(v if np.isfinite(v) else math.inf, new, m) for v, new, m in pool]
    pool.sort(key=lambda t: (t[0], t[2] if t[1] else -1))  # recorded values rank before equal new ones
    return {m for v, new, m in pool[:keep] if new and np.isfinite(v)}
