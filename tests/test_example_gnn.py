"""The message-passing example (jaxexp/examples/gnn.py, configs/gnn.py) on tiny settings."""

import importlib.util
import os

import jax
import ml_collections
import numpy as np
import pytest

import jaxexp
from jaxexp.examples import gnn
from jaxexp.search import space

CONFIG = os.path.join(os.path.dirname(__file__), "..", "configs", "gnn.py")


def _config():
    """configs/gnn.py shrunk to seconds: 512 training graphs, one 16-wide round, 4 epochs of 32 steps."""
    spec = importlib.util.spec_from_file_location("_gnn_config", CONFIG)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    c = module.get_config()
    c.graphs.n_train = 512
    c.graphs.n_val = 128
    c.hidden = 16
    c.layers = 1
    c.dropout = 0.0
    c.train.lr = 0.1
    c.train.epochs = 4
    c.train.batch_size = 16
    c.engine.segment_epochs = 4
    c.engine.progress = False
    c.engine.checkpoint = False
    c.engine.plots = False
    c.engine.compact = "never"
    c.engine.num_devices = 1  # one member: no 8-device padding slots to compute
    c.sweep.space = {}
    c.sweep.seeds = 1
    c.sweep.method = "grid"
    c.sweep.num_samples = 0
    return c


def _data(c):
    return gnn.data(ml_collections.ConfigDict({"graphs": c.graphs.to_dict()}))


def test_data_are_deterministic_padded_graphs():
    c = _config()
    a, b = _data(c), _data(c)
    jax.tree.map(np.testing.assert_array_equal, a.train, b.train)
    tr = a.train
    n, e = tr["node_mask"].shape[1], tr["src"].shape[1]
    assert tr["x"].shape == (512, n, c.graphs.steps) and n == c.graphs.max_nodes
    assert tr["dst"].shape == tr["edge_mask"].shape == (512, e) and e % 8 == 0
    counts = tr["node_mask"].sum(1)
    assert counts.min() >= c.graphs.min_nodes and counts.max() <= c.graphs.max_nodes
    valid = tr["node_mask"] > 0
    edges = tr["edge_mask"] > 0
    # edges join valid, distinct nodes; padded nodes carry no activity and no target
    for end in ("src", "dst"):
        assert np.take_along_axis(valid, tr[end], 1)[edges].all()
    assert (tr["src"] != tr["dst"])[edges].all()
    assert not tr["x"][~valid].any() and not tr["y"][~valid].any()
    # z-scored on the valid training nodes, and not explained by the edge count alone
    np.testing.assert_allclose([tr["y"][valid].mean(), tr["y"][valid].std()], [0.0, 1.0], atol=1e-4)
    in_degree = np.zeros_like(tr["y"])
    np.add.at(in_degree, (np.nonzero(edges)[0], tr["dst"][edges]), 1.0)
    assert abs(np.corrcoef(in_degree[valid], tr["y"][valid])[0, 1]) < 0.2


def test_model_ignores_padding_and_edge_order():
    c = _config()
    val = jax.tree.map(lambda a: a[:16], _data(c).val)
    module = gnn.model(ml_collections.ConfigDict({"hidden": 8, "layers": 2}), None)
    params = module.init(jax.random.key(0), *gnn.inputs(val))["params"]
    apply = lambda batch: module.apply({"params": params}, *gnn.inputs(batch), residual=0.5)  # noqa: E731
    out = apply(val)
    assert not np.asarray(out)[val["node_mask"] == 0].any()
    # reversed edge slots (padded ones first) and extra padded nodes and edges: the same predictions
    shuffled = {**val, **{k: val[k][:, ::-1] for k in ("src", "dst", "edge_mask")}}
    np.testing.assert_allclose(apply(shuffled), out, rtol=1e-5, atol=1e-5)
    pad = lambda a, extra: np.pad(a, [(0, 0), (0, extra)] + [(0, 0)] * (a.ndim - 2))  # noqa: E731
    bigger = {k: pad(v, 3) for k, v in val.items()}
    np.testing.assert_allclose(apply(bigger)[:, : out.shape[1]], out, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_one_segment_learns_the_net_input():
    res = jaxexp.sweep(_config())
    h = res.history
    assert {"r2", "pearson", "mse", "train_loss"} <= set(h.columns)
    assert list(h["epoch"]) == [1, 2, 3, 4]
    m = res.members.iloc[0]
    assert m["status"] == "ok"
    assert np.isfinite(m["best_r2"]) and m["best_r2"] > 0.25, m["best_r2"]
    assert h["pearson"].iloc[-1] > 0.5, h["pearson"].iloc[-1]
    y, p = res.predict(int(m["member"]))
    valid = ~np.isnan(y)
    assert y.shape == p.shape and valid.sum() > 8 * 128 and not np.isnan(p[valid]).any()
    r2 = 1 - np.mean((p[valid] - y[valid]) ** 2) / np.var(y[valid])
    np.testing.assert_allclose(r2, m["best_r2"], rtol=1e-3, atol=1e-4)


@pytest.mark.slow
def test_diverging_learning_rates_are_isolated():
    c = _config()
    c.train.epochs = 2
    c.engine.segment_epochs = 2
    c.sweep.seeds = 2
    c.engine.num_devices = 2
    c.dropout, c.edge_dropout, c.residual = 0.05, 0.1, 0.5  # every traced knob on
    c.sweep.space = {"train": {"lr": space.choice((0.1, 1000.0))}}
    res = jaxexp.sweep(c)
    m = res.members.set_index("member")
    huge = m["train.lr"] == 1000.0
    assert huge.sum() == 2 and (m.loc[huge, "status"] == "diverged").all()
    assert (m.loc[~huge, "status"] == "ok").all()
    assert np.isfinite(m.loc[~huge, "best_r2"]).all() and (m.loc[~huge, "best_r2"] > 0.05).all(), m["best_r2"]
    assert int(res.best_member()["member"]) in set(m.index[~huge])


def test_config_checks_the_node_counts():
    c = _config()
    c.graphs.min_nodes = 13
    with pytest.raises(jaxexp.ConfigError, match="graphs.min_nodes"):
        jaxexp.sweep(c)
