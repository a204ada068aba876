"""Flax models whose regularisation takes traced per-member values.

Dropout masks come from a counter-based integer hash of (member seed, step,
layer, element index) rather than ``jax.random`` (see ``jaxexp.core.layers``).
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax.numpy as jnp

from jaxexp.core import hashing
from jaxexp.core.layers import dropout

ACTIVATIONS = {"relu": nn.relu, "gelu": nn.gelu, "tanh": jnp.tanh, "silu": nn.silu}


class MLP(nn.Module):
    """x [batch, features] -> [batch, n_out]; dropout only when ``seed`` is given."""

    hidden: Sequence[int]
    n_out: int
    activation: str = "relu"
    # Static switches: a bucket whose members all have rate 0 skips the masks
    # (a rate-0 mask keeps x exactly, so results are the same either way).
    use_input_dropout: bool = True
    use_dropout: bool = True

    @nn.compact
    def __call__(self, x, dropout_rate=0.0, input_dropout=0.0, seed=None, final_dropout=None):
        """Layer groups: ``input_dropout`` on the inputs, ``dropout_rate`` after each
        hidden layer but the last, ``final_dropout`` (default ``dropout_rate``)
        after the last hidden layer, before the output layer."""
        act = ACTIVATIONS[self.activation]
        if seed is not None and self.use_input_dropout:
            x = dropout(x, input_dropout, hashing.fold(seed, 0))
        for i, width in enumerate(self.hidden):
            x = act(nn.Dense(width)(x))
            if seed is not None and self.use_dropout:
                last = i == len(self.hidden) - 1 and final_dropout is not None
                x = dropout(x, final_dropout if last else dropout_rate, hashing.fold(seed, i + 1))
        return nn.Dense(self.n_out)(x)
