"""Per-epoch recipe logic with traced per-member knobs: early stopping,
ReduceLROnPlateau and curriculum group weights.

All functions are pure and take scalars (``[P]`` after vmap), so members with
different patience, factors or phase boundaries share one compiled program.
Metrics enter sign-adjusted (``sign * metric``: smaller is better).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp


class Monitor(NamedTuple):
    """Early-stopping and plateau state of one member."""

    best: jax.Array  # f32, best sign-adjusted metric so far (strict improvements)
    best_epoch: jax.Array  # int32, 1-based epoch of ``best`` (0 = none yet)
    ref: jax.Array  # f32, reference for the patience counters (improvements > min_delta)
    wait: jax.Array  # int32, epochs since ``ref`` improved (early stopping)
    plateau_wait: jax.Array  # int32, bad epochs since the last improvement or LR cut
    lr_scale: jax.Array  # f32, product of the plateau cuts so far
    stopped: jax.Array  # bool, early-stopped
    stop_epoch: jax.Array  # int32, 1-based epoch after which it stopped (0 = never)


def monitor_init() -> Monitor:
    inf = jnp.float32(jnp.inf)
    zero = jnp.int32(0)
    return Monitor(inf, zero, inf, zero, zero, jnp.float32(1.0), jnp.bool_(False), zero)


def monitor_update(
    mon: Monitor,
    value: jax.Array,
    epoch: jax.Array,
    active: jax.Array,
    *,
    min_delta: jax.Array,
    patience: jax.Array,
    plateau_patience: jax.Array,
    plateau_factor: jax.Array,
    min_scale: jax.Array,
    start_epoch: jax.Array = 0,
) -> tuple[Monitor, jax.Array]:
    """One epoch's bookkeeping; returns (monitor, improved) where ``improved``
    says the parameters of this epoch are the new best (keep them).

    value: sign-adjusted metric after 1-based ``epoch``. A non-finite value is
    never an improvement. Semantics (absolute ``min_delta``):
    - early stopping (Keras): an epoch improves when value < ref - min_delta;
      after ``patience`` epochs in a row without, the member stops.
    - plateau (PyTorch ReduceLROnPlateau, cooldown 0): when the bad-epoch count
      exceeds ``plateau_patience`` the LR scale is multiplied by
      ``plateau_factor`` (not below ``min_scale``) and the count restarts.
    - neither counter counts epochs up to ``start_epoch`` (Keras'
      ``start_from_epoch``; e.g. the easy phase of a curriculum).
    Nothing changes when ``active`` is False.
    """
    improved = active & (value < mon.best)
    better = active & (value < mon.ref - min_delta)
    bad = active & ~better & (epoch > start_epoch)
    wait = jnp.where(better, 0, mon.wait + bad.astype(jnp.int32))
    pwait = jnp.where(better, 0, mon.plateau_wait + bad.astype(jnp.int32))
    cut = active & (plateau_patience > 0) & (pwait > plateau_patience)
    stop = active & (patience > 0) & (wait >= patience)
    mon = Monitor(
        best=jnp.where(improved, value, mon.best),
        best_epoch=jnp.where(improved, epoch, mon.best_epoch),
        ref=jnp.where(better, value, mon.ref),
        wait=wait,
        plateau_wait=jnp.where(cut, 0, pwait),
        lr_scale=jnp.where(cut, jnp.maximum(mon.lr_scale * plateau_factor, min_scale), mon.lr_scale),
        stopped=mon.stopped | stop,
        stop_epoch=jnp.where(stop & ~mon.stopped, epoch, mon.stop_epoch),
    )
    return mon, improved


def curriculum_weights(
    epoch: jax.Array,
    levels: jax.Array,
    multipliers: jax.Array,
    *,
    medium_epoch: jax.Array,
    hard_epoch: jax.Array,
    start: jax.Array,
    slope: jax.Array,
    cap: jax.Array,
    origin: jax.Array = -1,
) -> jax.Array:
    """Loss weight of every group at 0-based ``epoch``: [G].

    levels: int [G], 0 easy / 1 medium / 2 hard. Easy groups weigh 1; medium
    groups 1 from ``medium_epoch`` on (0 before); hard groups
    max(0, min(cap, start + (epoch - origin) * slope)) from ``hard_epoch`` on
    (0 before), where ``origin`` < 0 means ``hard_epoch``. Each is then
    multiplied by the group's multiplier.
    """
    epoch = jnp.asarray(epoch, jnp.float32)
    medium = (epoch >= medium_epoch).astype(jnp.float32)
    origin = jnp.where(origin < 0, hard_epoch, origin)
    ramp = jnp.clip(start + (epoch - origin) * slope, 0.0, cap)
    hard = jnp.where(epoch >= hard_epoch, ramp, 0.0)
    by_level = jnp.stack([jnp.ones_like(medium), medium, hard])
    return by_level[levels] * multipliers
