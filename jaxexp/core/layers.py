"""Layers for vmapped populations, for user models (linen, NNX or plain JAX).

Dropout with a traced per-member rate: Flax's ``nn.Dropout`` branches in Python on its rate, so under ``vmap`` it
cannot take a rate that differs per member; and ``jax.random`` (threefry)
masks cost more than a small model's whole step. These draw the mask from a
counter-based integer hash of (seed, element index) instead (``jaxexp.core.hashing``):
deterministic per member, 3-5x cheaper.

``conv3x3`` / ``Conv3x3``: a 3x3 convolution as plain matmuls, which XLA:CPU
runs far faster under ``vmap`` than ``lax.conv``.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxexp.core import hashing


def fold(seed: jax.Array, n) -> jax.Array:
    """A new uint32 seed from ``seed`` and an integer (or a string: its CRC32)."""
    if isinstance(n, str):
        n = zlib.crc32(n.encode())
    return hashing.fold(jnp.asarray(seed, jnp.uint32), n)


def dropout(x: jax.Array, rate: jax.Array, seed: jax.Array | None) -> jax.Array:
    """Inverted dropout of ``x`` (any shape) with a traced ``rate`` in [0, 1) and a
    uint32 ``seed``; ``seed=None`` (evaluation) returns ``x``. A rate of 0 keeps x exactly."""
    if seed is None:
        return x
    keep = hashing.uniform(jnp.asarray(seed, jnp.uint32), x.shape) >= rate
    return jnp.where(keep, x / (1.0 - rate), 0.0).astype(x.dtype)


class Dropout(nn.Module):
    """Linen dropout layer with a traced rate: ``Dropout()(x, rate, seed)``.

    Each instance folds its module path into ``seed``, so two layers given the
    same seed draw independent masks. ``seed=None``: identity (evaluation).
    """

    @nn.compact
    def __call__(self, x, rate, seed=None):
        if seed is None:
            return x
        return dropout(x, rate, fold(seed, "/".join(self.scope.path)))


class NNXDropout:
    """NNX-style dropout with a traced rate: build once (``salt`` tells layers
    apart), call ``layer(x, rate, seed)``. Holds no variables."""

    def __init__(self, salt: int | str = 0):
        self.salt = salt

    def __call__(self, x, rate, seed=None):
        return x if seed is None else dropout(x, rate, fold(seed, self.salt))


def _band(width: int, pooled: bool) -> np.ndarray:
    """0/1 [3, width + 2, width]: tap j of padded input column u feeds output column o
    (u == o + j); with ``pooled`` the output columns are ordered (o % 2, o // 2)."""
    band = np.zeros((3, width + 2, width), np.float32)
    for j in range(3):
        band[j, np.arange(width) + j, np.arange(width)] = 1.0
    if pooled:
        band = band.reshape(3, width + 2, width // 2, 2).transpose(0, 1, 3, 2).reshape(3, width + 2, width)
    return band


def conv3x3(x: jax.Array, kernel: jax.Array, bias: jax.Array, relu_pool: bool = False) -> jax.Array:
    """A 3x3 'SAME' stride-1 convolution of ``x`` [N, H, W, C] with ``kernel`` [3, 3, C, F]
    (``lax.conv``'s HWIO, ``nn.Conv``'s parameters) and ``bias`` [F], as matmuls.

    Vmapped over members, ``lax.conv`` becomes a grouped convolution that XLA:CPU
    runs ~8x slower; these forms are plain (batched) matmuls:
    - ``relu_pool=False``: im2col, the 9 shifted copies concatenated, one
      [N*H*W, 9C] x [9C, F] matmul.
    - ``relu_pool=True``: returns ``avg_pool_2x2(relu(conv))`` [N, H/2, W/2, F]
      (H, W even). Each output row is one matmul of its 3 padded input rows
      [3(W+2)C] against a banded kernel [3(W+2)C, W*F], with the output columns
      ordered so the 2x2 pool is a sum of contiguous halves (its gradient a copy,
      not a scatter). More FLOPs when W is large (the band is (W+2)/3 times the
      kernel): meant for small images and few input channels (measured, an 8x8x1
      digits CNN on XLA:CPU: the step 10% faster than im2col + ``nn.avg_pool``).
    """
    n, h, w, c = x.shape
    f = kernel.shape[-1]
    xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    if not relu_pool:
        cols = jnp.concatenate([xp[:, i : i + h, j : j + w, :] for i in range(3) for j in range(3)], axis=-1)
        return cols @ kernel.reshape(9 * c, f) + bias
    if h % 2 or w % 2:
        raise ValueError(f"conv3x3(relu_pool=True) needs an even height and width, got {h}x{w}")
    band = jnp.einsum("ijcf,juo->iucof", kernel, _band(w, pooled=True)).reshape(3 * (w + 2) * c, w * f)
    # rows[dh]: for output rows 2r + dh, their 3 padded input rows side by side
    rows = jnp.stack(
        [jnp.stack([xp[:, dh + i : dh + i + h : 2] for i in range(3)], axis=2).reshape(n * h // 2, -1) for dh in (0, 1)]
    )
    y = jax.nn.relu(jnp.einsum("qmk,kd->qmd", rows, band) + jnp.tile(bias, w))
    y = y[0] + y[1]  # pool over the row pair
    half = w * f // 2
    return (0.25 * (y[:, :half] + y[:, half:])).reshape(n, h // 2, w // 2, f)  # ... and the column pair


class Conv3x3(nn.Module):
    """Linen 3x3 'SAME' convolution for vmapped populations (``conv3x3``): the
    parameters of ``nn.Conv(features, (3, 3))`` (``kernel`` [3, 3, C, F], ``bias``),
    the same function; ``relu_pool=True`` returns ``avg_pool_2x2(relu(conv(x)))``."""

    features: int
    relu_pool: bool = False
    kernel_init: Callable = nn.initializers.lecun_normal()
    bias_init: Callable = nn.initializers.zeros

    @nn.compact
    def __call__(self, x):
        kernel = self.param("kernel", self.kernel_init, (3, 3, x.shape[-1], self.features))
        bias = self.param("bias", self.bias_init, (self.features,))
        return conv3x3(x, kernel.astype(x.dtype), bias.astype(x.dtype), self.relu_pool)
