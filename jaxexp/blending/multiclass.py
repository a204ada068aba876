"""Multiclass accuracy of G weightings: the argmax of each row's blended class distribution.

The blend of class distributions is ``B[n, c] = sum_k w_k P[n, k, c]`` and a
row counts as correct when ``argmax_c B[n, c]`` is its label ``y_n``, with
numpy's rule for ties (the first maximum wins). ``B[n, y_n] - B[n, c] = D . w``
with the margins ``D[n, j, k] = P[n, k, y_n] - P[n, k, c_j]`` over the C-1
other classes c_j (:func:`jaxexp.blending.data._true_class`), so the row is
correct iff ``D[n, j] . w > 0`` for every c_j < y_n and ``>= 0`` for c_j > y_n.
That is exact, and it is the same shape of work as the binary kernel: one
``(N (C-1), K+1) @ (K+1, G)`` product, a min over each row's C-1 margins, an
indicator, a row-weighted sum.

Ties: a margin that is 0 in exact arithmetic comes out of floating point as
+-1 ulp (grid weights 1/20 + 2/20 vs 3/20 on hard 0/1 votes), and so does the
blend ``B`` that ``np.argmax`` looks at, so neither decides true ties
reliably. Both paths here (kernel and numpy) count a margin within
``TIE_TOL * max(1, |w|_1)`` of 0 as an exact tie, which the first-max rule then
decides. That is ~1000x the worst-case float64 rounding of ``D . w`` for
K <= 10 (~100x for K = 100); the price is that a genuine margin below 1e-12
is also called a tie (for continuous probabilities, an event of probability
~1e-12 per row and weighting). The offset enters the product as one more
column, ``[D, o] . [w, s]`` with ``o = -TIE_TOL`` where the true class must win
strictly, ``+TIE_TOL`` after it, and ``s = max(1, |w|_1)``; the row is correct
iff the min over its margins is >= 0.

Always float64 (the score is piecewise constant); the sums of the row weights
are exact for unit weights, so accuracies are exactly counts / N.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxexp.blending.calls import G_BLOCK, MEMORY_BUDGET, ROW_BLOCK, Postprocess, _next_pow2, run_calls
from jaxexp.blending.data import BlendData
from jaxexp.errors import ConfigError

TIE_TOL = 1e-12  # margins this close to 0 (times max(1, |w|_1)) are exact ties


def applies(data: BlendData, metric: str) -> bool:
    """True when ``data`` carries (N, K, C) margins and the metric is accuracy."""
    return metric == "accuracy" and data.margins is not None


def _check(post: Postprocess) -> None:
    if post.active:
        raise ConfigError(
            f"--clip: multiclass accuracy takes the argmax of the raw blend; drop --clip ({post.describe()})"
        )


def _offsets(data: BlendData) -> np.ndarray:
    return np.where(data.strict, -TIE_TOL, TIE_TOL)


def _scale(w: np.ndarray) -> np.ndarray:
    return np.maximum(1.0, np.abs(w).sum(axis=-1))


def row_correct(data: BlendData, w: np.ndarray, post: Postprocess = Postprocess()) -> np.ndarray:
    """(N, G) float64 1/0: is row n classified correctly by weighting g? (numpy)."""
    _check(post)
    off, s = _offsets(data), _scale(w)
    worst = np.full((data.n, len(w)), np.inf)
    for j in range(data.margins.shape[1]):  # one (N, G) temporary at a time
        np.minimum(worst, data.margins[:, j] @ w.T + off[:, j, None] * s, out=worst)
    return (worst >= 0).astype(np.float64)


def own_correct(data: BlendData, wr: np.ndarray, post: Postprocess = Postprocess()) -> np.ndarray:
    """(N,) 1/0 for each row under its own weighting ``wr`` (N, K) (held-out folds)."""
    _check(post)
    m = np.einsum("njk,nk->nj", data.margins, wr) + _offsets(data) * _scale(wr)[:, None]
    return (m.min(axis=1) >= 0).astype(np.float64)


@functools.lru_cache(maxsize=16)
def _kernel(devices: tuple, rb: int, gb: int, m: int):
    """jit(shard_map(...)): (A (R, m, K+1), r (R,), B (G, K+1)) -> sums of r over correct rows (G,)."""
    mesh = Mesh(np.array(devices), ("g",))
    rep, shard = PartitionSpec(), PartitionSpec("g")

    def local(a, r, b):
        a, r = a.reshape(-1, rb * m, a.shape[-1]), r.reshape(-1, rb)

        def one_block(bb):  # bb (gb, K+1)
            def step(total, rows):
                ab, rr = rows
                worst = (ab @ bb.T).reshape(rb, m, -1).min(axis=1)  # (rb, gb)
                return total + rr @ (worst >= 0).astype(rr.dtype), None

            total, _ = jax.lax.scan(step, jnp.zeros_like(bb[:, 0]), (a, r))  # varying over "g", like bb
            return total

        return jax.lax.map(one_block, b.reshape(-1, gb, b.shape[1])).reshape(-1)

    def run(a, r, b):
        return jax.shard_map(local, mesh=mesh, in_specs=(rep, rep, shard), out_specs=shard)(a, r, b)

    return jax.jit(run), NamedSharding(mesh, rep), NamedSharding(mesh, shard)


def score_kernel(
    data: BlendData,
    w: np.ndarray,
    post: Postprocess = Postprocess(),
    memory_budget: int = MEMORY_BUDGET,
    devices=None,
    progress=None,
    row_weights: np.ndarray | None = None,
) -> np.ndarray:
    """Accuracies (G,) float64 of weightings ``w`` (G, K), jitted and sharded
    over the local devices' weightings; rows in calls of at most
    ``memory_budget`` bytes (replicated), summed on the host."""
    _check(post)
    devices = tuple(devices or jax.local_devices())
    nd, (n, m, k), g = len(devices), data.margins.shape, len(w)
    r = data.weights_or_ones() if row_weights is None else row_weights
    if g == 0:
        return np.zeros(0)
    rb = min(max(8, ROW_BLOCK // _next_pow2(m)), _next_pow2(n))
    gb = min(G_BLOCK, _next_pow2(math.ceil(g / nd)))
    per_call = nd * gb * 16  # weightings per call: 16 blocks per device
    rows_fit = max(rb, memory_budget // (nd * (m * (k + 1) + 1) * 8) // rb * rb)
    r_call = min(rows_fit, math.ceil(n / rb) * rb)
    n_pad = math.ceil(n / r_call) * r_call

    a = np.zeros((n_pad, m, k + 1))
    a[:n, :, :k], a[:n, :, k] = data.margins, _offsets(data)
    rr = np.zeros(n_pad)
    rr[:n] = r  # not normalised: unit weights sum to exact counts
    b = np.empty((math.ceil(g / per_call) * per_call, k + 1))
    b[:g, :k], b[:g, k] = w, _scale(w)
    b[g:] = b[g - 1]  # padding: repeats of the last weighting, dropped below
    with jax.enable_x64(True):
        kernel = _kernel(devices, rb, gb, m)
        out = run_calls(kernel, (a, rr), b, r_call, per_call, progress, f"multiclass accuracy, {g:,} x {n:,} rows")
    return out[:g] / r.sum()
