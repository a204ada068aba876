"""Scores of G weightings on N rows: one jitted, sharded, chunked computation.

For each weighting w (K,) the blend is ``pred = P @ w`` (N,), optionally
post-processed as in the user's pipeline (clipped, rounded to a quantum), and
the score is the row-weighted mean of a per-row loss (sqrt of it for RMSE).

The kernel works on the augmented matrices A = [P, y] (N, K+1) and
B = [W, -1] (G, K+1): ``A @ B.T`` is the residual ``pred - y`` for a block of
rows x weightings, and its loss is reduced over the rows at once. When every
weighting sums to one (the simplex grid), the K-th weight is eliminated:
A = [P_k - P_K (k < K), P_K - y] (N, K), B = [w_1..w_{K-1}, 1], one
multiply-add less per (row, weighting).

- weightings: sharded over the local devices (``shard_map`` on mesh axis
  ``"g"``), each device loops over blocks of ``gb`` weightings (``lax.map``);
- rows: a ``lax.scan`` over blocks of rows inside a call (Kahan-summed across
  blocks), and calls of at most ``memory_budget`` bytes of replicated rows,
  summed in float64 on the host (:func:`run_calls`);
- MAE/MAPE without post-processing fold the row weights (and MAPE's 1/|y|)
  into A (|r e| = r |e| for r >= 0): the block is ``abs(A @ B.T).sum(0)``,
  which XLA:CPU compiles into one fused YNNPACK matmul-abs-reduce that never
  writes the (rows x weightings) block to memory, so its row blocks are large
  (``FUSED_ROW_BLOCK``); other losses materialise a (512 x gb) block in cache.
  On CPU devices, float32 MAE/MAPE use the native C++ loop of
  :mod:`jaxexp.blending.native` instead (one custom call per device and call).

MSE/RMSE without post-processing need no kernel: with E = P - y and
v = [w, sum(w) - 1], the residual is [E, y] @ v, so every score is the
quadratic form v' S v of one (K+1, K+1) float64 Gram matrix S.

Log-loss is computed from each row's blended probability of its *true* class,
``q = Q @ w + (1 - y) (1 - sum w)`` with ``Q = where(y == 1, P, 1 - P)`` formed in
float64 on the host (``= P @ w`` for y = 1, ``1 - P @ w`` for y = 0, without
the cancellation of ``1 - p`` near p = 1), and one clipping convention in every
path (float32 and float64 kernel, numpy reference, bootstrap, held-out folds,
exact optimum): q is clipped to ``[LOGLOSS_EPS, 1 - LOGLOSS_EPS]`` (1e-15, the
classic scikit-learn value; equivalently p to the same interval) before the
log. float32 represents q down to 1e-38 with full relative precision, so a
model at exactly 0 or 1 scores the same in float32 and float64 (~1e-6 relative).

Precision: float32 by default (scores ~1e-6 relative; the report re-scores the
near-best weightings in float64 before calling anything a tie), or float64
(``dtype="float64"``, via ``jax.enable_x64`` for this computation only).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import sys
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxexp.blending import multiclass, native
from jaxexp.blending.calls import G_BLOCK, MEMORY_BUDGET, ROW_BLOCK, Postprocess, run_calls
from jaxexp.blending.data import METRICS, BlendData
from jaxexp.errors import ConfigError

FUSED_ROW_BLOCK = 32768  # rows per scan step of the fused MAE/MAPE block (nothing materialised)
CALL_ELEMENTS = 1 << 32  # rows x weightings per call: ~0.15 s on 2 cores, so dispatch is amortised
LOGLOSS_EPS = 1e-15  # log-loss clips the true class's probability to [eps, 1 - eps], whatever the dtype

TRACE_COUNTS: dict[str, int] = {"kernel": 0}


def make_postprocess(clip: str | tuple | None = None, round_to: float = 0.0) -> Postprocess:
    """From ``clip="lo:hi"`` (either side may be empty) and ``round_to``."""
    lo = hi = None
    if isinstance(clip, str) and clip.strip():
        try:
            a, b = clip.split(":")
            lo, hi = (float(a) if a.strip() else None), (float(b) if b.strip() else None)
        except ValueError:
            raise ConfigError(f"--clip: cannot parse {clip!r}; use lo:hi, e.g. --clip=0:40 or --clip=0:") from None
    elif clip is not None and not isinstance(clip, str):
        lo, hi = clip
    if lo is not None and hi is not None and lo > hi:
        raise ConfigError(f"--clip: lower {lo:g} > upper {hi:g}")
    if round_to < 0 or not math.isfinite(round_to):
        raise ConfigError(f"--round: {round_to} must be >= 0 (0 = no rounding)")
    return Postprocess(lo, hi, float(round_to))


def row_losses(y, preds, w, metric: str, post: Postprocess = Postprocess(), xp=np):
    """Per-row losses (N, G) of weightings ``w`` (G, K) in float64 numpy (or ``xp``)."""
    if metric == "logloss":
        return logloss_of_q(true_class_q(y, preds) @ w.T + off_simplex(y, w), y[:, None], post, xp)
    return pointwise_loss(post.apply(preds @ w.T, xp), y[:, None], metric, xp)


def true_class_q(y, preds) -> np.ndarray:
    """(N, K) each model's probability of the row's true class: P where y = 1, 1 - P where y = 0."""
    return np.where(np.asarray(y)[:, None] > 0.5, preds, 1.0 - preds)


def off_simplex(y, w) -> np.ndarray:
    """(N, G) the term ``(1 - y) (1 - sum w)`` that makes ``Q @ w`` the blend's
    true-class probability for weights not summing to one (0 on the simplex)."""
    t = 1.0 - np.asarray(w).sum(axis=-1)
    t = np.where(np.abs(t) < 1e-12, 0.0, t)  # grid weights summing to 1 up to rounding: exactly 0
    return (np.asarray(y) <= 0.5)[:, None] * t[None, :]


def logloss_of_q(q, yy, post: Postprocess = Postprocess(), xp=np):
    """Log-loss from the blended true-class probability ``q`` (N, G): the
    post-processing clip of p mapped onto q (y = 0 rows: [1 - hi, 1 - lo]), then
    q clipped to [LOGLOSS_EPS, 1 - LOGLOSS_EPS] (every path, every dtype)."""
    if post.clip_lo is not None or post.clip_hi is not None:
        lo = 0.0 if post.clip_lo is None else post.clip_lo
        hi = 1.0 if post.clip_hi is None else post.clip_hi
        pos = yy > 0.5
        q = xp.clip(q, xp.where(pos, lo, 1.0 - hi), xp.where(pos, hi, 1.0 - lo))
    return -xp.log(xp.clip(q, LOGLOSS_EPS, 1.0 - LOGLOSS_EPS))


def data_losses(data: BlendData, w, metric: str, post: Postprocess = Postprocess()) -> np.ndarray:
    """Per-row losses (N, G) of weightings ``w`` (G, K) on ``data`` (multiclass
    accuracy: 1/0 correct from its margins, :mod:`jaxexp.blending.multiclass`)."""
    if multiclass.applies(data, metric):
        return multiclass.row_correct(data, w, post)
    return row_losses(data.y, data.preds, w, metric, post)


def own_losses(data: BlendData, wr, metric: str, post: Postprocess = Postprocess()) -> np.ndarray:
    """Per-row losses (N,) of each row under its own weighting ``wr`` (N, K)."""
    if multiclass.applies(data, metric):
        return multiclass.own_correct(data, wr, post)
    if metric == "logloss":
        t = 1.0 - wr.sum(axis=1)
        t = np.where(np.abs(t) < 1e-12, 0.0, t) * (data.y <= 0.5)
        q = np.einsum("nk,nk->n", true_class_q(data.y, data.preds), wr) + t
        return logloss_of_q(q[:, None], data.y[:, None], post)[:, 0]
    pred = post.apply(np.einsum("nk,nk->n", data.preds, wr))
    return pointwise_loss(pred[:, None], data.y[:, None], metric)[:, 0]


def pointwise_loss(pred, yy, metric: str, xp=np):
    """Loss of blended predictions ``pred`` (N, G) against targets ``yy`` (N, 1)."""
    if metric == "mae":
        return xp.abs(pred - yy)
    if metric == "mape":
        return xp.abs(pred - yy) / xp.where(yy == 0, 1.0, xp.abs(yy))  # y = 0: padding rows only
    if metric in ("mse", "rmse"):
        return (pred - yy) ** 2
    if metric == "logloss":  # from p; the scorers use the true-class form (logloss_of_q)
        return logloss_of_q(xp.where(yy > 0.5, pred, 1 - pred), yy, xp=xp)
    if metric == "accuracy":
        return ((pred >= 0.5) == (yy > 0.5)).astype(pred.dtype)
    raise ConfigError(f"--metric: unknown metric {metric!r}")


def finalize(mean_loss, metric: str):
    """Weighted mean per-row loss -> score."""
    return np.sqrt(np.maximum(mean_loss, 0.0)) if metric == "rmse" else mean_loss


def score_numpy(data: BlendData, w: np.ndarray, metric: str, post: Postprocess = Postprocess(), chunk: int = 256):
    """Reference float64 scores (G,) in plain numpy, chunked over G."""
    r = data.weights_or_ones()
    out = np.empty(len(w))
    for i in range(0, len(w), chunk):
        out[i : i + chunk] = r @ data_losses(data, w[i : i + chunk], metric, post) / r.sum()
    return finalize(out, metric)


def score_gram(data: BlendData, w: np.ndarray, metric: str) -> np.ndarray:
    """MSE/RMSE of every weighting from one float64 Gram matrix (no kernel)."""
    r = data.weights_or_ones()
    m = np.concatenate([data.preds - data.y[:, None], data.y[:, None]], axis=1)  # [E, y]
    s = (m * r[:, None]).T @ m / r.sum()
    v = np.concatenate([w, w.sum(axis=1, keepdims=True) - 1.0], axis=1)
    out = np.empty(len(w))
    step = 1 << 16
    for i in range(0, len(w), step):
        vi = v[i : i + step]
        out[i : i + step] = np.einsum("gi,ij,gj->g", vi, s, vi)
    return finalize(np.maximum(out, 0.0), metric)


@functools.lru_cache(maxsize=64)
def _kernel(metric: str, post: Postprocess, folded: bool, devices: tuple, rb: int, gb: int, use_native: bool = False):
    """jit(shard_map(...)): (A (R, J), y (R,), r (R,), B (G, J)) -> sums (G,).
    ``use_native``: the folded sums by the C++ custom call (:mod:`.native`)."""
    mesh = Mesh(np.array(devices), ("g",))
    rep, shard = PartitionSpec(), PartitionSpec("g")

    def block_loss(a, y, r, b):  # a (rb, J), b (gb, J) -> (gb,)
        e = a @ b.T  # pred - y (rows scaled by r when folded); log-loss: the true-class q
        if metric == "logloss":
            return r @ logloss_of_q(e, y[:, None], post, jnp)
        if folded:  # abs + .sum(0) fuse into the matmul (a matvec with ones would not)
            return jnp.abs(e).sum(0)
        return r @ pointwise_loss(post.apply(e + y[:, None], jnp), y[:, None], metric, jnp)

    def local(a, y, r, b):
        if use_native:  # one custom call per device: it blocks rows and weightings itself
            return native.abs_sum(a, b)
        a, y, r = a.reshape(-1, rb, a.shape[1]), y.reshape(-1, rb), r.reshape(-1, rb)

        def one_block(bb):
            def step(carry, rows):  # Kahan summation over row blocks
                s, c = carry
                x = block_loss(*rows, bb) - c
                t = s + x
                return (t, (t - s) - x), None

            zero = jnp.zeros_like(bb[:, 0])
            (s, _), _ = jax.lax.scan(step, (zero, zero), (a, y, r))
            return s

        return jax.lax.map(one_block, b.reshape(-1, gb, b.shape[1])).reshape(-1)

    def run(a, y, r, b):
        TRACE_COUNTS["kernel"] += 1
        return jax.shard_map(local, mesh=mesh, in_specs=(rep, rep, rep, shard), out_specs=shard)(a, y, r, b)

    return jax.jit(run), NamedSharding(mesh, rep), NamedSharding(mesh, shard)


def resolve_dtype(dtype: str, metric: str, post: Postprocess) -> str:
    """Resolves dtype "auto": float64 where the score is piecewise constant, else float32."""
    if dtype != "auto":
        return dtype
    return "float64" if post.round_to > 0 or metric == "accuracy" else "float32"


def score_kernel(
    data: BlendData,
    w: np.ndarray,
    metric: str,
    post: Postprocess = Postprocess(),
    dtype: str = "auto",
    memory_budget: int = MEMORY_BUDGET,
    devices=None,
    progress: Callable[[str], None] | None = None,
    row_weights: np.ndarray | None = None,
) -> np.ndarray:
    """Scores (G,) float64 of weightings ``w`` (G, K) with the jitted kernel.

    ``row_weights`` overrides the data's (used for fold-restricted scoring).
    ``dtype="auto"``: float64 where the score is piecewise constant (rounding,
    accuracy's threshold: a float32 blend flips rows lying on a boundary), else
    float32.
    """
    dtype = resolve_dtype(dtype, metric, post)
    if dtype not in ("float32", "float64"):
        raise ConfigError(f"--dtype: {dtype!r}; use float32 or float64")
    devices = tuple(devices or jax.local_devices())
    (n, k), g = data.preds.shape, len(w)
    r = data.weights_or_ones() if row_weights is None else row_weights
    folded = metric in ("mae", "mape") and not post.active
    # Eliminating w_K moves the blend by ~1e-16: harmless where the score is
    # continuous in it, but it can flip a rounding or a threshold exactly at its boundary.
    continuous = post.round_to == 0 and metric not in ("accuracy", "logloss")  # log-loss: [Q, 1 - y]
    elim = continuous and g > 0 and bool(np.all(np.abs(w.sum(axis=1) - 1.0) < 1e-12))
    cols = k if elim else k + 1
    use_native = (
        folded
        and dtype == "float32"
        and cols <= native.MAX_J
        and all(d.platform == "cpu" for d in devices)
        and native.available()
    )
    bl = _blocks(n, g, len(devices), cols, 4 if dtype == "float32" else 8, memory_budget, folded, use_native)
    npdt = np.dtype(dtype)
    a, yy, rr = _row_operands(data, r, metric, elim, folded, cols, bl.n_pad, npdt)
    b = _weight_operand(w, k, metric, elim, cols, bl.g_call, npdt)
    with jax.enable_x64(dtype == "float64"):
        kernel = _kernel(metric, post, folded, devices, bl.rb, bl.gb, use_native)
        out = run_calls(kernel, (a, yy, rr), b, bl.r_call, bl.g_call, progress, f"{g:,} weightings x {n:,} rows")
    return finalize(out[:g], metric)


class _Blocks(NamedTuple):
    """How the rows and weightings of one scoring are cut into calls and blocks."""

    rb: int  # rows per scan step
    r_call: int  # rows per call (whole blocks)
    n_pad: int  # rows padded to whole calls
    gb: int  # weightings per block on one device
    g_call: int  # weightings per call, over all devices


def _blocks(
    n: int, g: int, nd: int, cols: int, itemsize: int, memory_budget: int, folded: bool, use_native: bool
) -> _Blocks:
    """Calls and blocks for ``n`` rows of ``cols`` columns (``itemsize`` bytes)
    and ``g`` weightings on ``nd`` devices."""
    # Calls of rows within the budget, blocks of rows within a call: as even as
    # possible, so the padding stays under 256 rows per block.
    n_calls = math.ceil(n / max(ROW_BLOCK, memory_budget // (nd * (cols + 2) * itemsize)))
    per_call = math.ceil(n / n_calls)
    blocks = 1 if use_native else math.ceil(per_call / (FUSED_ROW_BLOCK if folded else ROW_BLOCK))
    rb = math.ceil(per_call / blocks / 256) * 256
    r_call = blocks * rb
    # Weightings: calls of ~CALL_ELEMENTS (rows x weightings) in blocks of
    # <= G_BLOCK per device, sized so the padding stays under 64 per block.
    per_device = max(1, math.ceil(g / nd))
    g_blocks = math.ceil(per_device / G_BLOCK)
    g_calls = math.ceil(g_blocks / max(1, CALL_ELEMENTS // (r_call * nd * G_BLOCK)))
    blocks_per_call = math.ceil(g_blocks / g_calls)
    gb = math.ceil(per_device / (g_calls * blocks_per_call) / 64) * 64
    return _Blocks(rb, r_call, n_calls * r_call, gb, nd * gb * blocks_per_call)


def _row_operands(data: BlendData, r, metric: str, elim: bool, folded: bool, cols: int, n_pad: int, npdt):
    """The kernel's row operands, zero-padded to ``n_pad`` rows: A (n_pad, cols)
    (module docstring), y (n_pad,) and the normalised row weights (n_pad,)."""
    n, k = data.preds.shape
    a = np.zeros((n_pad, cols), npdt)
    if elim:  # pred - y = (P_k - P_K) . w_<K + (P_K - y)
        a[:n, : k - 1] = data.preds[:, : k - 1] - data.preds[:, k - 1 :]
        a[:n, k - 1] = data.preds[:, k - 1] - data.y
    elif metric == "logloss":  # q = [Q, 1 - y] @ [w, 1 - sum w]: the true class's probability
        a[:n, :k], a[:n, k] = true_class_q(data.y, data.preds), data.y <= 0.5
    else:
        a[:n, :k], a[:n, k] = data.preds, data.y
    rr = np.zeros(n_pad, npdt)
    rr[:n] = r / r.sum()  # normalised: sums are means, well scaled in float32
    yy = np.zeros(n_pad, npdt)
    yy[:n] = data.y
    if folded:  # |r e| = r |e|; MAPE's 1/|y| too
        a[:n] *= (rr[:n] / np.abs(data.y) if metric == "mape" else rr[:n])[:, None]
    return a, yy, rr


def _weight_operand(w: np.ndarray, k: int, metric: str, elim: bool, cols: int, g_call: int, npdt) -> np.ndarray:
    """B (G padded to whole calls, cols): the weightings ``w`` (G, K) and their
    last column (module docstring); padding repeats the last weighting."""
    g = len(w)
    g_pad = math.ceil(g / g_call) * g_call
    b = np.full((g_pad, cols), 1.0 if elim else -1.0, npdt)
    b[:g, : cols - 1] = w[:, : cols - 1]
    b[g:, : cols - 1] = w[-1, : cols - 1] if g else 0.0
    if metric == "logloss" and g:
        t = 1.0 - w.sum(axis=1)
        b[:g, k] = np.where(np.abs(t) < 1e-12, 0.0, t)
        b[g:, k] = b[g - 1, k]
    return b


def score(
    data: BlendData,
    w: np.ndarray,
    metric: str,
    post: Postprocess = Postprocess(),
    dtype: str = "auto",
    memory_budget: int = MEMORY_BUDGET,
    devices=None,
    progress: Callable[[str], None] | None = None,
    row_weights: np.ndarray | None = None,
) -> np.ndarray:
    """Scores (G,) of weightings (G, K): Gram form for MSE/RMSE without
    post-processing, multiclass accuracy's own kernel (float64 whatever
    ``dtype``), the jitted kernel otherwise."""
    if multiclass.applies(data, metric):
        return multiclass.score_kernel(data, w, post, memory_budget, devices, progress, row_weights)
    if metric in ("mse", "rmse") and not post.active:
        if row_weights is not None:
            data = dataclasses.replace(data, row_weights=row_weights)
        return score_gram(data, w, metric)
    return score_kernel(data, w, metric, post, dtype, memory_budget, devices, progress, row_weights)


def goal_sign(metric: str) -> float:
    """+1 when lower is better, -1 for accuracy."""
    return 1.0 if METRICS[metric][0] == "min" else -1.0


def print_progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
