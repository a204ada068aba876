"""The attention + mixture-of-experts example (jaxexp/examples/moe.py, configs/moe.py) on tiny settings."""

import importlib.util
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pandas as pd
import pytest

import jaxexp
from jaxexp.examples import moe
from jaxexp.run import engine

CONFIG = os.path.join(os.path.dirname(__file__), "..", "configs", "moe.py")
RATES = ("attn_dropout", "expert_dropout", "residual_dropout", "main_dropout")


def _config(task_seed=0):
    """configs/moe.py shrunk to seconds: 512 rows, 4 features, 8-wide tokens, one segment of 3 epochs of 16 steps."""
    spec = importlib.util.spec_from_file_location("_moe_config", CONFIG)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    c = module.get_config()
    c.task.seed = task_seed  # a static key of its own: a fresh compile where a test counts traces
    c.task.n_train = 512
    c.task.n_val = 128
    c.task.n_features = 4
    c.d_model = 8
    c.n_heads = 2
    c.n_experts = 2
    c.expert_hidden = 8
    c.feature_tokens = 2
    c.train.epochs = 3
    c.train.batch_size = 32
    c.train.warmup_epochs = 0.0
    c.engine.segment_epochs = 3
    c.engine.progress = False
    c.engine.checkpoint = False
    c.engine.plots = False
    c.engine.compact = "never"
    c.sweep.space = {}
    c.sweep.seeds = 1
    c.sweep.method = "grid"
    c.sweep.num_samples = 0
    return c


def _table(n, **params):
    return pd.DataFrame({"member": np.arange(n), "config_id": np.arange(n), "seed": np.zeros(n, int), **params})


def _history(res, member):
    return res.history[res.history["member"] == member].sort_values("epoch")


def _data(c):
    return moe.data(ml_collections.ConfigDict({"task": c.task.to_dict()}))


@pytest.mark.slow
def test_one_segment_runs_with_per_group_mse():
    c = _config(task_seed=11)
    res = jaxexp.sweep(c)
    assert {"mse", "mae", "train_loss", "train_mse", "train_balance"} <= set(res.history.columns)
    assert len(res.history) == 3 and np.isfinite(res.history[["mse", "mae", "train_loss"]].to_numpy()).all()
    data = _data(c)
    assert len(data.groups) == 12
    g = res.group_history
    assert set(g["group"]) == set(data.groups) and len(g) == 3 * 12 and np.isfinite(g["mse"]).all()
    # the overall val MSE is the row-weighted mean of the per-group ones
    counts = np.bincount(data.val["group"], minlength=12)
    last = g[g["epoch"] == 3].set_index("group").loc[list(data.groups), "mse"].to_numpy()
    np.testing.assert_allclose((last * counts).sum() / counts.sum(), res.history["mse"].iloc[-1], rtol=1e-4)
    m = res.members.iloc[0]
    assert np.isfinite(m["init_mse"]) and m["best_mse"] < 0.7 * m["init_mse"]
    assert res.groups["mse"].notna().sum() == 12


@pytest.mark.slow
def test_dropout_rates_are_traced_and_separate():
    c = _config(task_seed=12)
    n = 2 + len(RATES)
    # member 0: every rate 0; member 1 + i: only RATES[i] at 0.5; the last member: every rate at 0.3
    # (so no rate is 0 in every member and both tables run the same program, with every mask)
    rated = _table(n, **{r: np.zeros(n) for r in RATES})
    for i, r in enumerate(RATES):
        rated.loc[1 + i, r] = 0.5
    rated.loc[n - 1, list(RATES)] = 0.3
    zero = rated.copy()
    zero.loc[: n - 2, list(RATES)] = 0.0  # the same members with rates 0 (the last one unchanged)
    before = engine.TRACE_COUNTS["run_segment"]
    res = jaxexp.run_members(c, rated)
    base = jaxexp.run_members(c, zero)
    assert engine.TRACE_COUNTS["run_segment"] - before == 1  # traced rates: one program for both
    losses = {i: _history(res, i)["train_loss"].to_numpy() for i in range(n)}
    assert all(np.isfinite(v).all() for v in losses.values())
    np.testing.assert_allclose(losses[0], _history(base, 0)["train_loss"], rtol=1e-5)  # same member, same rates
    np.testing.assert_allclose(losses[n - 1], _history(base, n - 1)["train_loss"], rtol=1e-5)
    for i, r in enumerate(RATES):  # each rate alone changes the member's training
        assert not np.allclose(losses[1 + i], _history(base, 1 + i)["train_loss"], rtol=1e-4), r
        assert not np.allclose(_history(res, 1 + i)["mse"], _history(base, 1 + i)["mse"], rtol=1e-4), r


def _hp(**values):
    """One member's traced hyperparameters (the declared defaults, ``values`` on top)."""
    hp = {}
    for name, h in moe.HPARAMS.items():
        if h.traced:
            value = values.get(name, h.default)
            hp[name] = jnp.ones(12) if name == "train.group_multipliers" else jnp.asarray(value, h.dtype)
    return {**hp, "epoch": jnp.int32(0), "step": jnp.int32(0)}


def test_model_rates_use_their_own_masks():
    c = _config()
    data = _data(c)
    cfg = ml_collections.ConfigDict(
        {"d_model": 8, "n_heads": 2, "n_experts": 2, "expert_hidden": 8, "feature_tokens": 2}
    )
    model = moe.model(cfg, data)
    x = jnp.asarray(data.train["x"][:16])
    params = model.init(jax.random.key(0), {"x": x})
    # rows: all rates 0, then each rate alone at 0.5
    table = jnp.concatenate([jnp.zeros((1, len(RATES))), 0.5 * jnp.eye(len(RATES))])

    @jax.jit
    def outputs(params, table):
        ref = model.apply(params, x)[0]
        rated = jax.vmap(lambda r: model.apply(params, x, dict(zip(RATES, r)), jnp.uint32(7))[0])(table)
        return ref, rated

    ref, rated = outputs(params, table)
    np.testing.assert_allclose(rated[0], ref, rtol=1e-6)  # rate 0 keeps every value exactly
    for i in range(1, len(table)):
        assert not np.allclose(rated[i], ref), RATES[i - 1]
        for j in range(1, i):  # each rate has its own mask
            assert not np.allclose(rated[i], rated[j]), (RATES[i - 1], RATES[j - 1])


@pytest.mark.slow
def test_curriculum_reaches_the_loss():
    c = _config(task_seed=11)  # test_one_segment's static key: its compiled programs are reused
    data = _data(c)
    hard = np.asarray(data.train["level"]) == 2
    assert hard.any() and not hard.all()
    # the loss function: the hard groups weighted 0 before curriculum_hard_epoch -> the MSE of the other rows
    model = moe.model(ml_collections.ConfigDict({**c.to_dict(), "off": ()}), data)
    batch = jax.tree.map(jnp.asarray, data.train)
    params = model.init(jax.random.key(0), batch)
    loss = jax.jit(lambda hp: moe.loss(model, params, batch, hp, jnp.uint32(3)))
    err2 = np.asarray((model.apply(params, batch["x"])[0] - batch["y"]) ** 2)
    full, aux = loss(_hp(balance_weight=0.0))
    np.testing.assert_allclose(full, err2.mean(), rtol=1e-5)
    np.testing.assert_allclose(aux["mse"], full, rtol=1e-6)
    late, aux = loss(_hp(balance_weight=0.0, **{"train.curriculum_hard_epoch": 100}))
    np.testing.assert_allclose(late, err2[~hard].mean(), rtol=1e-5)
    ramp, _ = loss(_hp(balance_weight=0.0, **{"train.hard_weight_start": 0.5}))  # hard rows at half weight
    w = np.where(hard, 0.5, 1.0)
    np.testing.assert_allclose(ramp, (w * err2).sum() / w.sum(), rtol=1e-5)
    with_aux, aux = loss(_hp(balance_weight=0.1))
    np.testing.assert_allclose(with_aux, full + 0.1 * aux["balance"], rtol=1e-5)

    # through the engine: hard groups held back past the run change the training loss
    table = _table(1)
    default = jaxexp.run_members(c, table)
    before = engine.TRACE_COUNTS["run_segment"]
    held = jaxexp.run_members(c, table.assign(**{"train.curriculum_hard_epoch": [100]}))
    assert engine.TRACE_COUNTS["run_segment"] == before  # traced: the same program
    a, b = (_history(r, 0)["train_loss"].to_numpy() for r in (default, held))
    assert np.isfinite(a).all() and np.isfinite(b).all() and not np.allclose(a, b, rtol=1e-3)
