"""Hyperbolic embedding of a synthetic hierarchy, with a traced multi-term loss.

The items are the nodes of a balanced tree (``tree.branching`` children per
node, ``tree.depth`` levels below the root; 3 and 4 give 121 nodes), generated
deterministically with numpy. The model is a plain embedding table
``[n_items, dim]`` of tangent vectors at the origin, mapped into the Poincaré
ball of curvature ``c`` by the exponential map after a soft cap of their norm:
every item stays within geodesic distance ``max_radius`` of the origin, so the
space is bounded for every curvature. The loss has two weighted terms:

- ``hierarchy_weight`` x a contrastive term (Nickel & Kiela 2017): for each
  (child, ancestor) row, -log softmax(-d / ``temperature``) of the ancestor
  against the row's ``tree.negatives`` nodes that are neither ancestors nor
  descendants of the child (drawn once, in the data);
- ``richness_weight`` x a spread term over all items: minus their mean
  pairwise geodesic distance, which keeps the space used. Unlike the
  contrastive term it never goes quiet: once the ancestors are ranked, it keeps
  pushing every item, ancestors included, out towards the rim, where the
  held-out ancestor pairs (those the geometry must generalise to) are ranked
  worse. A richness weight at or above the hierarchy weight makes the
  score peak after a few epochs and then degrade.

``curvature`` is traced: the distance is computed as
``2 asinh(sqrt(c) |x - y| cosh(sqrt(c) rho_x) cosh(sqrt(c) rho_y)) / sqrt(c)``
(the Poincaré distance, with ``1 - c|x|^2 = 1 / cosh^2(sqrt(c) rho)``), finite
and differentiable for every c in [0, 10]; c -> 0 is the Euclidean limit
``2 |w_x - w_y|`` (c is floored at 1e-5).

Splits: train rows are (child, ancestor, negatives) triples: every parent
edge and a share ``1 - tree.holdout`` of the longer ancestor pairs, each
``tree.repeats`` times with other negatives; val rows are the held-out longer
pairs. The selection metric ``hierarchy`` is the mean over val rows of the
fraction of the child's unrelated nodes that lie farther from it than its
held-out ancestor (an AUC: ~0.5 for the random initial embedding, 1 =
perfect). ``evaluate`` also reports ``richness`` (mean pairwise distance),
``radial`` (share of val pairs whose ancestor is nearer the origin than the
child) and ``loss`` (both terms, the contrastive one against every unrelated
node).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxexp.workload import Dataset, Model, static, traced

NAME = "embedding"
METRIC = ("hierarchy", "max")

_DATA = dict(arch=False)


def _positive(v) -> str | None:
    return None if v > 0 else "must be > 0"


HPARAMS = {
    "tree.branching": static(3, 2, 8, doc="children per internal node"),
    "tree.depth": static(4, 2, 6, doc="levels below the root (>= 2: val holds the longer pairs)"),
    "tree.holdout": static(0.5, 0.0, 0.9, doc="share of the non-parent ancestor pairs held out for val", **_DATA),
    "tree.negatives": static(10, 1, 256, doc="negatives per (child, ancestor) row", **_DATA),
    "tree.repeats": static(4, 1, 64, doc="train rows per (child, ancestor) pair, each with its own negatives", **_DATA),
    "tree.seed": static(0, 0, 2**31 - 1, doc="seed of the held-out split", **_DATA),
    "tree.init_scale": static(1e-3, 0.0, 1.0, doc="initial embeddings: uniform(-scale, scale)", **_DATA),
    "dim": static(2, 2, 512, doc="embedding dimension"),
    "hierarchy_weight": traced(1.0, 0.0, None, doc="weight of the contrastive (child, ancestor, negatives) term"),
    "richness_weight": traced(0.1, 0.0, None, doc="weight of the spread term (minus mean pairwise distance)"),
    "curvature": traced(1.0, 0.0, 10.0, doc="curvature c of the Poincaré ball (0: Euclidean)"),
    "max_radius": traced(6.0, 0.0, None, doc="geodesic radius of the region the items may use", check=_positive),
    "temperature": traced(1.0, 0.0, None, doc="softmax temperature of the contrastive term", check=_positive),
}

_MIN_C = 1e-5  # curvature floor: the c -> 0 limit without dividing by zero
_MAX_SR = 15.0  # sqrt(c) rho cap: cosh^2 stays finite in float32


# ---------------------------------------------------------------- data


def tree(branching: int, depth: int) -> tuple[np.ndarray, np.ndarray]:
    """(parent [n] with -1 for the root, depth [n]) of a balanced tree in BFS order."""
    n = sum(branching**d for d in range(depth + 1))
    ids = np.arange(n)
    parent = np.where(ids == 0, -1, (ids - 1) // branching)
    level = np.zeros(n, np.int32)
    for i in range(1, n):
        level[i] = level[parent[i]] + 1
    return parent.astype(np.int32), level


def ancestors(parent: np.ndarray) -> np.ndarray:
    """anc[i, j]: j is a proper ancestor of i (bool [n, n])."""
    n = len(parent)
    anc = np.zeros((n, n), bool)
    for i in range(n):
        p = parent[i]
        while p >= 0:
            anc[i, p] = True
            p = parent[p]
    return anc


def data(cfg) -> Dataset:
    parent, level = tree(int(cfg.tree.branching), int(cfg.tree.depth))
    n = len(parent)
    anc = ancestors(parent)
    related = anc | anc.T | np.eye(n, dtype=bool)  # ancestors, descendants and the node itself
    child, ancestor = np.nonzero(anc)
    direct = parent[child] == ancestor
    rng = np.random.default_rng(int(cfg.tree.seed))
    held = ~direct & (rng.random(len(child)) < float(cfg.tree.holdout))
    if not held.any():  # val needs rows: hold out one longer pair
        held[np.flatnonzero(~direct)[:1]] = True

    k, repeats = int(cfg.tree.negatives), int(cfg.tree.repeats)

    def split(rows, repeat):
        u = np.repeat(child[rows], repeat).astype(np.int32)
        # k negatives per row: distinct nodes neither ancestors nor descendants of u
        keys = rng.random((len(u), n)) + related[u]  # related nodes sort last
        neg = np.argsort(keys, axis=1)[:, :k].astype(np.int32)
        neg = np.where(related[u][np.arange(len(u))[:, None], neg], -1, neg)  # fewer than k: -1, masked
        return {"u": u, "v": np.repeat(ancestor[rows], repeat).astype(np.int32), "neg": neg, "related": related[u]}

    info = {
        "n_items": n,
        "depth": level.tolist(),
        "init_scale": float(cfg.tree.init_scale),
        "train_pairs": int((~held).sum()),
        "val_pairs": int(held.sum()),
    }
    return Dataset(split(~held, repeats), split(held, 1), info=info)


# ---------------------------------------------------------------- model and geometry


def model(cfg, data: Dataset) -> Model:
    n, dim, scale = data.info["n_items"], int(cfg.dim), data.info["init_scale"]

    def init(key, batch):
        del batch
        return {"table": jax.random.uniform(key, (n, dim), jnp.float32, -scale, scale)}

    def apply(params, ids=None):
        table = params["table"]
        return table if ids is None else table[ids]

    return Model(init, apply)


class Ball(NamedTuple):
    """Items mapped into the Poincaré ball of curvature c."""

    x: jax.Array  # [..., dim] points, |x| < 1 / sqrt(c)
    cosh: jax.Array  # [...] cosh(sqrt(c) rho) = 1 / sqrt(1 - c |x|^2)
    s: jax.Array  # sqrt(c), floored
    rho: jax.Array  # [...] distance from the origin / 2 (the capped tangent norm)


def to_ball(w, c, radius) -> Ball:
    """exp_0 of the tangent vectors w [..., dim] after a soft cap of their norm: a point
    at tangent norm rho lies at geodesic distance 2 rho from the origin, and
    rho = radius / 2 * tanh(2 |w| / radius) keeps every item within ``radius`` of it."""
    r = jnp.sqrt(jnp.sum(w * w, axis=-1) + 1e-20)
    half = 0.5 * radius
    rho = half * jnp.tanh(r / half)
    s = jnp.sqrt(jnp.maximum(c, _MIN_C))
    sr = jnp.minimum(s * rho, _MAX_SR)
    x = (jnp.tanh(sr) / (s * r))[..., None] * w
    return Ball(x, jnp.cosh(sr), s, sr / s)


def distance(a: Ball, b: Ball):
    """Geodesic distance between points of two Balls (broadcasting):
    arcosh(1 + 2 c |x - y|^2 / ((1 - c|x|^2)(1 - c|y|^2))) / sqrt(c), written as
    2 asinh(sqrt(c) |x - y| cosh(sqrt(c) rho_x) cosh(sqrt(c) rho_y)) / sqrt(c): accurate
    for small c and distances, no overflow, and differentiable at x = y."""
    diff = a.x - b.x
    norm = jnp.sqrt(jnp.sum(diff * diff, axis=-1) + 1e-20)
    return 2.0 * jnp.arcsinh(a.s * norm * a.cosh * b.cosh) / a.s


def pairwise(table, c, radius) -> tuple[jax.Array, jax.Array]:
    """([n, n] geodesic distances between all items, [n] distances from the origin)."""
    ball = to_ball(table, c, radius)
    a = Ball(ball.x[:, None, :], ball.cosh[:, None], ball.s, ball.rho[:, None])
    b = Ball(ball.x[None, :, :], ball.cosh[None, :], ball.s, ball.rho[None, :])
    return distance(a, b), 2.0 * ball.rho


def _richness(dist):
    """Mean distance between distinct items (the diagonal is 0)."""
    n = dist.shape[0]
    return jnp.sum(dist) / (n * (n - 1))


def _contrastive(dist, u, v, neg, temperature):
    """Mean over rows of -log softmax(-d / T) of the ancestor v against the negatives [B, K] (-1: none)."""
    cand = jnp.concatenate([v[:, None], neg], axis=1)  # [B, 1 + K]
    d = jnp.take_along_axis(dist[u], jnp.maximum(cand, 0), axis=1)
    logits = jnp.where(cand >= 0, -d / temperature, -jnp.inf)
    return jnp.mean(jax.nn.logsumexp(logits, axis=1) + d[:, 0] / temperature)


# ---------------------------------------------------------------- loss and evaluation


def loss(model, params, batch, hp, rng):
    del rng  # the negatives are part of the rows
    dist, _ = pairwise(model.apply(params), hp["curvature"], hp["max_radius"])
    hier = _contrastive(dist, batch["u"], batch["v"], batch["neg"], hp["temperature"])
    rich = -_richness(dist)
    total = hp["hierarchy_weight"] * hier + hp["richness_weight"] * rich
    return total, {"hierarchy_term": hier, "richness_term": rich}


def evaluate(model, params, val, hp) -> dict:
    dist, origin = pairwise(model.apply(params), hp["curvature"], hp["max_radius"])
    temperature = hp["temperature"]
    u, v, unrelated = val["u"], val["v"], ~val["related"]
    dist_u = dist[u]  # [R, n]: child to every item
    pos = jnp.take_along_axis(dist_u, v[:, None], axis=1)  # [R, 1]: child to its held-out ancestor
    farther = jnp.where(dist_u > pos, 1.0, jnp.where(dist_u == pos, 0.5, 0.0))
    auc = jnp.sum(jnp.where(unrelated, farther, 0.0), axis=1) / jnp.maximum(jnp.sum(unrelated, axis=1), 1)
    # the contrastive term against every unrelated node, and the spread
    logits = jnp.concatenate([-pos, jnp.where(unrelated, -dist_u, -jnp.inf)], axis=1) / temperature
    hier = jnp.mean(jax.nn.logsumexp(logits, axis=1) + pos[:, 0] / temperature)
    rich = _richness(dist)
    return {
        "hierarchy": jnp.mean(auc),
        "richness": rich,
        "radial": jnp.mean((origin[v] < origin[u]).astype(jnp.float32)),
        "loss": hp["hierarchy_weight"] * hier - hp["richness_weight"] * rich,
    }
