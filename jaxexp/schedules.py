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


def lr_multiplier(
    kind: jax.Array,
    step: jax.Array,
    total_steps: jax.Array,
    warmup_steps: jax.Array,
    min_ratio: jax.Array,
    decay_every_steps: jax.Array,
    decay_rate: jax.Array,
) -> jax.Array:
    """Multiplier of the peak LR at ``step`` (0-based optimizer steps).

    kind: 0 constant, 1 cosine, 2 step decay (after warmup; the decay clock
    starts when warmup ends).
    """
    step = jnp.asarray(step, jnp.float32)
    after = jnp.maximum(step - warmup_steps, 0.0)
    decayed = jnp.stack(
        [
            jnp.ones_like(step),
            cosine(after, total_steps - warmup_steps, min_ratio),
            step_decay(after, decay_every_steps, decay_rate),
        ]
    )[kind]
    return warmup(step, warmup_steps) * decayed
