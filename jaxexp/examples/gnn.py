"""A message-passing network that recovers connectivity from activity (synthetic graph regression).

Each example is a small directed graph (8-12 nodes, padded to ``graphs.max_nodes``)
with signed weights ``W`` (excitatory and inhibitory edges). Its nodes' "activity"
is a noisy recurrent dynamical system driven by that connectivity::

    x_{t+1} = tanh(W x_t + noise),   recorded for ``graphs.steps`` steps after a burn-in.

The network sees the activity time series of every node (node features
``x [N, T]``) and the unweighted edge list (``src``/``dst`` [E], padded with
``edge_mask``), and regresses each node's *net input drive*
``sum_j W_ij`` (excitatory minus inhibitory in-weight, z-scored). The edge
count alone explains nothing of it (the signs are random): the weights have
to be read off the lagged co-activity of the two ends of every edge, which the
bilinear term of the messages makes easy (a linear regression on lag-1
covariances reaches R2 ~0.7).

Per layer (``layers`` rounds, ``hidden`` wide), for an edge j -> i::

    m_ji = relu(A h_j + B h_i + c) + (P h_j) * (Q h_i)              (edge_dropout drops whole messages)
    h_i  = LayerNorm(residual * h_i + relu(U [h_i, sum_j m_ji]))     (then dropout on h)

then a linear read-out per node. Loss: MSE over the valid nodes.
``evaluate`` returns ``r2``, ``pearson`` and ``mse`` over the valid nodes of
the validation graphs.
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

import jaxexp
from jaxexp.workload import Dataset, static, traced

NAME = "gnn"
METRIC = ("r2", "max")


def _rate(v) -> str | None:
    return None if 0.0 <= v < 1.0 else "must be in [0, 1)"


_DATA = dict(arch=False)
HPARAMS = {
    "graphs.n_train": static(2048, 1, doc="training graphs", **_DATA),
    "graphs.n_val": static(512, 1, doc="validation graphs", **_DATA),
    "graphs.seed": static(0, 0, 2**32 - 1, doc="data seed (the graphs are shared by all members)", **_DATA),
    "graphs.min_nodes": static(8, 2, doc="fewest nodes of a graph", **_DATA),
    "graphs.max_nodes": static(12, 2, doc="most nodes of a graph (the padded node count)", **_DATA),
    "graphs.p_edge": static(0.3, 0.0, 1.0, doc="probability of each directed edge", **_DATA),
    "graphs.steps": static(32, 2, doc="recorded activity steps per node (the node feature length)", **_DATA),
    "graphs.noise": static(0.5, 0.0, doc="std of the noise driving the dynamics", **_DATA),
    "layers": static(2, 1, 3, doc="message-passing rounds"),
    "hidden": static(32, 1, doc="node state width"),
    "dropout": traced(0.0, check=_rate, doc="dropout on the node states after every round"),
    "edge_dropout": traced(0.0, check=_rate, doc="drops whole messages (edges) in every round"),
    "residual": traced(1.0, 0.0, 1.0, doc="weight of the skip connection of every round (0 = none)"),
}


def check(cfg) -> None:
    if cfg.graphs.min_nodes > cfg.graphs.max_nodes:
        raise jaxexp.ConfigError(
            f"graphs.min_nodes: must be <= graphs.max_nodes ({cfg.graphs.min_nodes} > {cfg.graphs.max_nodes})"
        )


def make_graphs(
    n_graphs: int, seed: int, *, min_nodes=8, max_nodes=12, p_edge=0.3, steps=32, noise=0.5, burn_in=20, gain=1.5
) -> dict:
    """Padded graphs as numpy arrays: activity ``x`` [G, N, T], ``node_mask`` [G, N],
    the dense weights ``w`` [G, N, N] (w[g, i, j]: edge j -> i) and the raw target
    ``net_input`` [G, N] = sum_j w[g, i, j]. Deterministic in ``seed``."""
    rng = np.random.default_rng(seed)
    n = rng.integers(min_nodes, max_nodes + 1, n_graphs)
    node_mask = np.arange(max_nodes)[None] < n[:, None]
    pair = node_mask[:, :, None] & node_mask[:, None, :] & ~np.eye(max_nodes, dtype=bool)
    adj = (rng.random((n_graphs, max_nodes, max_nodes)) < p_edge) & pair
    mag = rng.uniform(0.3, 1.0, adj.shape) * rng.choice(np.array([-1.0, 1.0]), adj.shape)
    # gain / sqrt(expected in-degree): an input of order one whatever the graph size
    w = np.where(adj, mag, 0.0) * gain / np.sqrt(max(p_edge, 1e-6) * np.maximum(n - 1, 1))[:, None, None]
    x = rng.normal(0.0, 0.5, node_mask.shape) * node_mask
    recorded = []
    for t in range(burn_in + steps):
        drive = np.einsum("gij,gj->gi", w, x) + noise * rng.normal(size=x.shape)
        x = np.tanh(drive) * node_mask
        if t >= burn_in:
            recorded.append(x)
    return {
        "x": np.stack(recorded, -1).astype(np.float32),
        "node_mask": node_mask,
        "w": w.astype(np.float32),
        "net_input": w.sum(-1).astype(np.float32),
    }


def _edge_list(w: np.ndarray, max_edges: int):
    """Padded edge index of the nonzero weights: src, dst [G, E] int32 and edge_mask [G, E]."""
    n_graphs = w.shape[0]
    src = np.zeros((n_graphs, max_edges), np.int32)
    dst = np.zeros((n_graphs, max_edges), np.int32)
    mask = np.zeros((n_graphs, max_edges), bool)
    for g in range(n_graphs):
        i, j = np.nonzero(w[g])  # edge j -> i
        src[g, : len(j)], dst[g, : len(i)], mask[g, : len(i)] = j, i, True
    return src, dst, mask


def data(cfg) -> Dataset:
    g = cfg.graphs
    kw = dict(
        min_nodes=int(g.min_nodes),
        max_nodes=int(g.max_nodes),
        p_edge=float(g.p_edge),
        steps=int(g.steps),
        noise=float(g.noise),
    )
    raw = {
        "train": make_graphs(int(g.n_train), int(g.seed), **kw),
        "val": make_graphs(int(g.n_val), int(g.seed) + 1_000_003, **kw),
    }
    # one padded edge count for both splits (a multiple of 8)
    max_edges = max(int((r["w"] != 0).sum((1, 2)).max()) for r in raw.values())
    max_edges = max(8, -(-max_edges // 8) * 8)
    tr = raw["train"]
    mean, std = tr["net_input"][tr["node_mask"]].mean(), tr["net_input"][tr["node_mask"]].std()

    def split(r):
        src, dst, edge_mask = _edge_list(r["w"], max_edges)
        y = np.where(r["node_mask"], (r["net_input"] - mean) / std, 0.0).astype(np.float32)
        return {
            "x": r["x"],
            "src": src,
            "dst": dst,
            "edge_mask": edge_mask.astype(np.float32),
            "node_mask": r["node_mask"].astype(np.float32),
            "y": y,
        }

    info = {
        "task": "net input drive sum_j W_ij of every node from its activity x_{t+1} = tanh(W x_t + noise)",
        "max_nodes": int(g.max_nodes),
        "max_edges": max_edges,
        "target_mean": float(mean),
        "target_std": float(std),
    }
    return Dataset(split(raw["train"]), split(raw["val"]), info=info)


class MPNN(nn.Module):
    """Message passing over padded graphs (see the module docstring)."""

    hidden: int
    layers: int
    use_dropout: bool = True
    use_edge_dropout: bool = True

    @nn.compact
    def __call__(
        self, x, src, dst, node_mask, edge_mask, dropout=0.0, edge_dropout=0.0, residual=1.0, seed=None
    ):  # x [B, N, T]; src, dst, edge_mask [B, E]; node_mask [B, N]
        n = x.shape[-2]
        nodes = jnp.arange(n)
        gather_src = (src[..., None] == nodes).astype(x.dtype)  # [B, E, N]
        scatter_dst = (dst[..., None] == nodes).astype(x.dtype) * edge_mask[..., None]  # padded edges send nothing
        gather_dst = (dst[..., None] == nodes).astype(x.dtype)
        h = nn.Dense(self.hidden, name="encode")(x)
        for layer in range(self.layers):
            send = nn.Dense(2 * self.hidden, name=f"send_{layer}")(h)  # [A h ; P h]
            recv = nn.Dense(2 * self.hidden, use_bias=False, name=f"recv_{layer}")(h)  # [B h ; Q h]
            s = jnp.einsum("ben,bnh->beh", gather_src, send)
            r = jnp.einsum("ben,bnh->beh", gather_dst, recv)
            a, p = jnp.split(s, 2, axis=-1)
            b, q = jnp.split(r, 2, axis=-1)
            # the bilinear term stays linear (a lag covariance is a bilinear form of the two series)
            msg = nn.relu(a + b) + p * q
            weight = scatter_dst
            if seed is not None and self.use_edge_dropout:
                keep = jaxexp.dropout(jnp.ones(edge_mask.shape + (1,), x.dtype), edge_dropout, jaxexp.fold(seed, layer))
                weight = weight * keep
            agg = jnp.einsum("ben,beh->bnh", weight, msg)
            update = nn.relu(nn.Dense(self.hidden, name=f"update_{layer}")(jnp.concatenate([h, agg], -1)))
            # the normalisation keeps the products of the next round bounded
            h = nn.LayerNorm(name=f"norm_{layer}")(residual * h + update)
            if self.use_dropout:
                h = jaxexp.Dropout(name=f"dropout_{layer}")(h, dropout, seed)
        return nn.Dense(1, name="readout")(h)[..., 0] * node_mask


def model(cfg, data: Dataset):
    off = set(cfg.get("off", ()))
    return MPNN(
        hidden=int(cfg.hidden),
        layers=int(cfg.layers),
        use_dropout="dropout" not in off,
        use_edge_dropout="edge_dropout" not in off,
    )


def _graph(batch):
    return batch["x"], batch["src"], batch["dst"], batch["node_mask"], batch["edge_mask"]


def inputs(batch):
    return _graph(batch)


def _masked_mse(pred, batch):
    mask = batch["node_mask"]
    return jnp.sum(mask * (pred - batch["y"]) ** 2) / jnp.maximum(jnp.sum(mask), 1.0)


def loss(model, params, batch, hp, rng):
    pred = model.apply(
        params, *_graph(batch), hp["dropout"], hp["edge_dropout"], hp["residual"], seed=jaxexp.fold(rng, "gnn")
    )
    return _masked_mse(pred, batch), {}


def evaluate(model, params, val, hp) -> dict:
    pred = model.apply(params, *_graph(val), residual=hp["residual"])
    mask, y = val["node_mask"], val["y"]
    count = jnp.maximum(jnp.sum(mask), 1.0)
    y_mean = jnp.sum(mask * y) / count
    p_mean = jnp.sum(mask * pred) / count
    dy, dp = mask * (y - y_mean), mask * (pred - p_mean)
    sse = jnp.sum(mask * (pred - y) ** 2)
    sst = jnp.sum(dy**2)
    pearson = jnp.sum(dy * dp) / jnp.sqrt(jnp.sum(dy**2) * jnp.sum(dp**2) + 1e-12)
    return {"r2": 1.0 - sse / jnp.maximum(sst, 1e-12), "pearson": pearson, "mse": sse / count}


def predict(model, params, split, hp):
    """(targets, predictions) [graphs, max_nodes], z-scored (``info["target_mean"]``/``["target_std"]``
    give the raw units); padded nodes are NaN."""
    pred = model.apply(params, *_graph(split), residual=hp["residual"])
    valid = split["node_mask"] > 0
    return jnp.where(valid, split["y"], jnp.nan), jnp.where(valid, pred, jnp.nan)
