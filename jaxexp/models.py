"""Flax models whose regularisation takes traced per-member values.

Dropout masks come from a counter-based integer hash of (member seed, step,
layer, element index) rather than ``jax.random``: the threefry RNG costs more
than the whole forward/backward pass of a small MLP (measured 3-5x overall, see
ARCHITECTURE.md), while the hash is deterministic per member and cheap.
Flax's ``nn.Dropout`` branches in Python on its rate, so it cannot take a
traced per-member rate under ``vmap``; ``dropout`` below can.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

_ACTIVATIONS = {"relu": nn.relu, "gelu": nn.gelu, "tanh": jnp.tanh, "silu": nn.silu}


def mix32(x: jax.Array) -> jax.Array:
    """A uint32 -> uint32 bijective mixer (lowbias32, C. Wellons)."""
    x = x ^ (x >> 16)
    x = x * jnp.uint32(0x7FEB352D)
    x = x ^ (x >> 15)
    x = x * jnp.uint32(0x846CA68B)
    return x ^ (x >> 16)


def fold(seed: jax.Array, n) -> jax.Array:
    """Derives a new uint32 seed from ``seed`` and an integer ``n``."""
    return mix32(seed ^ mix32(jnp.asarray(n, jnp.uint32) + jnp.uint32(0x9E3779B9)))


def dropout(x: jax.Array, rate: jax.Array, seed: jax.Array) -> jax.Array:
    """Inverted dropout with a traced ``rate`` in [0, 1) and a uint32 ``seed``."""
    idx = jax.lax.iota(jnp.uint32, x.size).reshape(x.shape)
    bits = mix32(idx * jnp.uint32(0x9E3779B1) + mix32(seed))
    u = (bits >> 8).astype(jnp.float32) * (1.0 / (1 << 24))  # uniform in [0, 1)
    keep = u >= rate
    return jnp.where(keep, x / (1.0 - rate), 0.0).astype(x.dtype)


class MLP(nn.Module):
    """x [batch, features] -> [batch, n_out]; dropout only when ``seed`` is given."""

    hidden: Sequence[int]
    n_out: int
    activation: str = "relu"

    @nn.compact
    def __call__(self, x, dropout_rate=0.0, input_dropout=0.0, seed=None):
        act = _ACTIVATIONS[self.activation]
        if seed is not None:
            x = dropout(x, input_dropout, fold(seed, 0))
        for i, width in enumerate(self.hidden):
            x = act(nn.Dense(width)(x))
            if seed is not None:
                x = dropout(x, dropout_rate, fold(seed, i + 1))
        return nn.Dense(self.n_out)(x)


def make_model(model_cfg, n_out: int) -> nn.Module:
    return MLP(hidden=tuple(int(h) for h in model_cfg.hidden), n_out=n_out, activation=model_cfg.activation)
