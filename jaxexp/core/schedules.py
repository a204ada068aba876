"""Learning-rate schedules in which every parameter may be a traced array.

optax's schedule builders branch in Python on their arguments, so they fail
under ``vmap`` with per-member values. These return the *multiplier* of the
peak learning rate at a step (a float32 scalar per member); the kind is an
index into ``jaxexp.config.SCHEDULES`` so members with different schedules can
share one compiled program (all kinds are computed, one is selected: scalars,
so this costs nothing measurable).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def warmup(step: jax.Array, warmup_steps: jax.Array) -> jax.Array:
    """Linear ramp from 1/warmup_steps to 1 over ``warmup_steps`` steps (1 when 0)."""
    return jnp.where(warmup_steps > 0, jnp.minimum(1.0, (step + 1.0) / jnp.maximum(warmup_steps, 1.0)), 1.0)


def cosine(step: jax.Array, total_steps: jax.Array, min_ratio: jax.Array) -> jax.Array:
    progress = jnp.clip(step / jnp.maximum(total_steps, 1.0), 0.0, 1.0)
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + jnp.cos(jnp.pi * progress))


def step_decay(step: jax.Array, every_steps: jax.Array, rate: jax.Array) -> jax.Array:
    return rate ** jnp.floor(step / jnp.maximum(every_steps, 1.0))


def cosine_restarts(step: jax.Array, period_steps: jax.Array, mult: jax.Array, min_ratio: jax.Array) -> jax.Array:
    """SGDR (Loshchilov & Hutter): cosine from 1 to ``min_ratio`` over each period,
    then a restart; period i lasts ``period_steps * mult**i`` (mult >= 1).

    Closed form: with T0 = period_steps, the cycle is
    i = floor(log(1 + t (mult - 1) / T0) / log(mult)) (i = floor(t / T0) when
    mult == 1), it starts at T0 (mult**i - 1) / (mult - 1) and lasts T0 mult**i.
    """
    t0 = jnp.maximum(period_steps, 1.0)
    geometric = mult > 1.0 + 1e-6
    safe = jnp.where(geometric, mult, 2.0)  # keeps the unused branch finite
    i_geo = jnp.floor(jnp.log1p(step * (safe - 1.0) / t0) / jnp.log(safe) + 1e-6)
    i = jnp.where(geometric, i_geo, jnp.floor(step / t0))
    start = jnp.where(geometric, t0 * (safe**i - 1.0) / (safe - 1.0), t0 * i)
    length = jnp.where(geometric, t0 * safe**i, t0)
    progress = jnp.clip((step - start) / length, 0.0, 1.0)
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + jnp.cos(jnp.pi * progress))


def lr_multiplier(
    kind: jax.Array,
    step: jax.Array,
    total_steps: jax.Array,
    warmup_steps: jax.Array,
    min_ratio: jax.Array,
    decay_every_steps: jax.Array,
    decay_rate: jax.Array,
    restart_steps: jax.Array = 1.0,
    restart_mult: jax.Array = 1.0,
) -> jax.Array:
    """Multiplier of the peak LR at ``step`` (0-based optimizer steps).

    kind: 0 constant, 1 cosine, 2 step decay, 3 cosine with warm restarts
    (after warmup; the decay clock starts when warmup ends).
    """
    step = jnp.asarray(step, jnp.float32)
    after = jnp.maximum(step - warmup_steps, 0.0)
    decayed = jnp.stack(
        [
            jnp.ones_like(step),
            cosine(after, total_steps - warmup_steps, min_ratio),
            step_decay(after, decay_every_steps, decay_rate),
            cosine_restarts(after, restart_steps, restart_mult, min_ratio),
        ]
    )[kind]
    return warmup(step, warmup_steps) * decayed
