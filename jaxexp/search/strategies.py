"""Sweep strategies that act while a sweep runs (host side, pure functions).

Population-based training (``sweep.pbt_*``, Jaderberg et al. 2017): every
``pbt_interval`` epochs the running members that reached such an epoch are
ranked by the monitored metric; each of the worst ``floor(pbt_fraction * n)``
(at least 1 when n >= 2) copies the parameters and optimizer state of a random
one of the best as many (exploit, on device), takes that member's
``pbt_params`` and multiplies each by a random factor of ``pbt_perturb``
(explore; kept inside the parameter's ``sweep.space`` range when it is swept,
rates below 1). Every copy is logged in ``pbt.csv``.

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
import pandas as pd

from jaxexp.core import train_hparams
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


# Engine fields population-based training may perturb (read from the traced hp at
# every step; ``pbt`` in their declaration); besides these, every scalar float traced
# hyperparameter of the workload not declared ``pbt=False``.
PBT_FIELDS = tuple(p for p, h in train_hparams.HPARAMS.items() if h.pbt)


def pbt_fields(c) -> dict[str, tuple]:
    """{field: (low, high) declared bounds or (None, None)} that PBT may perturb in config ``c``."""
    from jaxexp import workload

    out = {f: (None, None) for f in PBT_FIELDS}
    for path, h in workload.of_config(c).traced.items():
        if h.pbt and h.dtype == "float32" and h.encode is None and workload.is_number(h.default):
            out[path] = (h.low, h.high)
    return out


def check_pbt(c) -> None:
    """Validates the ``sweep.pbt_*`` fields (nothing when pbt_interval is 0)."""
    sw = c.sweep
    if sw.pbt_interval == 0:
        return
    if sw.pbt_interval < 0:
        raise ConfigError(f"sweep.pbt_interval: must be >= 0 epochs (got {sw.pbt_interval}); 0 = off")
    if sw.halving_rungs:
        raise ConfigError("sweep.pbt_interval: population-based training and sweep.halving_rungs are exclusive")
    if not 0 < sw.pbt_fraction <= 0.5:
        raise ConfigError(f"sweep.pbt_fraction: must be in (0, 0.5] (got {sw.pbt_fraction})")
    if not sw.pbt_perturb or any(f <= 0 for f in sw.pbt_perturb):
        raise ConfigError(f"sweep.pbt_perturb: give positive factors, e.g. (0.8, 1.25) (got {sw.pbt_perturb})")
    allowed = pbt_fields(c)
    bad = [f for f in sw.pbt_params if f not in allowed]
    if bad or not sw.pbt_params:
        raise ConfigError(f"sweep.pbt_params: {bad or '()'} cannot be perturbed; use some of {', '.join(allowed)}")


def pbt_pairs(values: dict[int, float], fraction: float, rng: np.random.Generator) -> dict[int, int]:
    """{loser: winner} among the members of ``values`` (member -> signed metric,
    smaller is better; a non-finite value ranks last): each of the worst
    ``max(1, floor(fraction * n))`` gets a random one of the best as many (n >= 2)."""
    n = len(values)
    if n < 2:
        return {}
    q = max(1, math.floor(fraction * n))
    ranked = sorted(values, key=lambda m: (values[m] if np.isfinite(values[m]) else math.inf, m))
    winners, losers = ranked[:q], ranked[-q:]
    return {m: winners[int(rng.integers(q))] for m in losers}


def pbt_explore(value: float, factors, rng: np.random.Generator, bounds: tuple[float, float] | None, rate: bool):
    """``value`` times a random factor, kept in ``bounds`` (and below 1 for a rate;
    a negative rate means "as model.dropout" and is kept)."""
    factor = float(factors[int(rng.integers(len(factors)))])
    if rate and value < 0:
        return float(value)
    new = float(value) * factor
    if bounds is not None:
        new = min(max(new, bounds[0]), bounds[1])
    return min(new, 0.99) if rate else new


def config_scores(members: pd.DataFrame, metric: str) -> dict:
    """{config_id: (mean best metric over its ok seeds, their std, status)} of a
    members table; status "ok", or "diverged"/"failed" when no seed is ok (a
    mutation-tree node, a TPE trial)."""
    out = {}
    for config_id, part in members.groupby("config_id"):
        ok = part[part["status"] == "ok"][f"best_{metric}"].dropna()
        status = "ok" if len(ok) else ("diverged" if (part["status"] == "diverged").all() else "failed")
        std = float(ok.std(ddof=1)) if len(ok) > 1 else math.nan
        out[int(config_id)] = (float(ok.mean()) if len(ok) else math.nan, std, status)
    return out
