"""The cnn_encoder example workload (jaxexp/examples/cnn_encoder.py, configs/cnn_encoder.py).

Digits 8x8 with a conditional encoder (cnn | context); depth/width static and
conditional on cnn; dropout and label smoothing traced. Tiny overrides keep
each test to a few compiles (8 forced CPU devices, tests/conftest.py).
"""

import importlib.util
import pathlib
from types import SimpleNamespace

import flax.linen as nn
import jax
import numpy as np
import pandas as pd
import pytest

import jaxexp
from jaxexp.examples import cnn_encoder
from jaxexp.run import engine, programs
from jaxexp.search import space

CONFIG = pathlib.Path(__file__).resolve().parent.parent / "configs" / "cnn_encoder.py"
HISTORY_COLS = ["train_loss", "train_accuracy", "accuracy", "loss"]
# One member's numbers alone vs in a population vs on 1 or 8 devices: a vmapped
# matmul may sum in another order than the same matmul alone, so float32
# rounding differs and compounds over training steps (see tests/test_engine.py).
# Measured here over 3 epochs x 22 steps: <= 3e-7 relative (8 vmapped on one device vs
# alone); one member per device on 8 devices matched the member alone bit for bit.
# Accuracy is a count over 359 rows: a rounding difference that flipped one
# argmax would move it by 1/359, far outside atol, which is not expected here.
RTOL, ATOL = 1e-4, 1e-5


def _config(**space_overrides):
    """configs/cnn_encoder.py with tiny settings: cnn pinned to depth 1, width 8 (so 2 buckets: cnn,
    context). Every test uses these static values on 8 devices with <= 8 members per bucket, so later
    tests reuse the programs the first compiled (in memory, or from the persistent compilation cache
    after engine._PROGRAMS.clear())."""
    spec = importlib.util.spec_from_file_location("cnn_encoder_config", CONFIG)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    c = module.get_config()
    c.train.epochs = 3
    c.engine.segment_epochs = 3
    c.engine.progress = False
    c.engine.checkpoint = False
    c.engine.compact = "never"
    c.sweep.seeds = 1
    c.sweep.num_samples = 6
    c.sweep.space.depth = space.choice((1,), when={"encoder_type": "cnn"})
    c.sweep.space.width = space.choice((8,), when={"encoder_type": "cnn"})
    c.sweep.space.train.lr = space.log_uniform(3e-3, 1e-2)
    for k, v in space_overrides.items():
        c.sweep.space[k] = v
    return c


def _history(res, member=None):
    h = res.history if member is None else res.history[res.history.member == member]
    return h.sort_values(["member", "epoch"])[HISTORY_COLS].to_numpy(float)


@pytest.mark.slow
def test_the_config_sweep_learns_with_both_encoders():
    res = jaxexp.sweep(_config())
    m = res.members
    assert set(m["encoder_type"]) == {"cnn", "context"}
    # conditional: depth/width are only set (sampled) for cnn members
    assert m.loc[m.encoder_type == "context", ["depth", "width"]].isna().all().all()
    assert m.loc[m.encoder_type == "cnn", ["depth", "width"]].notna().all().all()
    h = res.history
    assert len(h) == len(m) * 3 and np.isfinite(h[HISTORY_COLS].to_numpy()).all()
    assert h["accuracy"].between(0, 1).all() and (h["loss"] > 0).all()
    best = res.best_member()
    assert best["best_accuracy"] > 0.5  # chance is 0.1; 3 epochs of 22 steps reach ~0.8-0.9
    for enc in ("cnn", "context"):  # each encoder learns, not just the best one
        assert m.loc[m.encoder_type == enc, "best_accuracy"].max() > 0.3
    # training improves on the initial parameters (init_* is the metric before training)
    assert (m["best_accuracy"] > m["init_accuracy"] + 0.2).all()
    y, logits = res.predict(int(best["member"]))
    assert logits.shape == (len(y), 10)
    assert np.isclose((logits.argmax(-1) == y).mean(), best["best_accuracy"], atol=1e-6)


@pytest.mark.slow
def test_member_does_not_depend_on_population_or_devices():
    c = _config(
        encoder_type=space.choice(("cnn",)),
        dropout=space.uniform(0.0, 0.4),
        label_smoothing=space.uniform(0.0, 0.3),
    )
    c.sweep.num_samples = 4
    c.sweep.seeds = 2  # 8 members of one bucket, traced values differ across configurations
    c.engine.num_devices = 1
    population = jaxexp.sweep(c)  # vmapped together on one device
    c.engine.num_devices = 0  # all 8 forced devices
    on_8 = jaxexp.sweep(c)
    members = population.members
    assert members["dropout"].nunique() == 4 and members["train.lr"].nunique() == 4
    row = members.iloc[[5]][["member", "config_id", "seed", "encoder_type", "depth", "width", "dropout",
                             "label_smoothing", "train.lr"]]  # fmt: skip
    c.engine.num_devices = 1
    alone = jaxexp.run_members(c, row)
    m = int(row["member"].iloc[0])
    assert len(_history(alone)) == 3
    np.testing.assert_allclose(_history(population, m), _history(alone), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(_history(on_8, m), _history(alone), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(_history(on_8), _history(population), rtol=RTOL, atol=ATOL)
    # not vacuous: the members really differ from each other
    assert members["final_loss"].nunique() == len(members)


@pytest.mark.slow
def test_one_trace_per_static_bucket_whatever_the_traced_values():
    c = _config()
    table = jaxexp.members_table(c)
    n_buckets = len(table[["encoder_type", "depth", "width"]].astype(str).drop_duplicates())
    assert n_buckets == 2  # cnn (depth 1, width 8) and context
    for _, bucket in table.groupby("encoder_type"):
        assert len(bucket) == 1 or bucket["dropout"].nunique() == len(bucket)  # traced values differ inside
    engine._PROGRAMS.clear()  # nothing compiled in memory: every bucket traces once
    before = engine.TRACE_COUNTS["run_segment"]
    # other traced values than the sweep of the first test
    table = table.assign(dropout=table["dropout"] * 0.5 + 0.1, **{"train.lr": table["train.lr"] * 0.7})
    res = jaxexp.run_members(c, table)
    assert engine.TRACE_COUNTS["run_segment"] - before == n_buckets
    assert len(res.members) == len(table) and (res.members["status"] == "ok").all()
    # yet other traced values (dropout, lr, label smoothing), same buckets and sizes: no new trace
    table2 = table.assign(
        dropout=table["dropout"] * 0.5, label_smoothing=0.25 - table["label_smoothing"], **{"train.lr": 2e-3}
    )
    res2 = jaxexp.run_members(c, table2)
    assert engine.TRACE_COUNTS["run_segment"] - before == n_buckets
    assert not np.allclose(res2.members["final_loss"], res.members["final_loss"])


def test_im2col_conv_equals_flax_conv_and_data_shapes():
    x = jax.random.normal(jax.random.key(1), (2, 8, 8, 3))
    conv = cnn_encoder.Conv3x3(5)
    params = conv.init(jax.random.key(0), x)
    ref = nn.Conv(5, (3, 3), padding="SAME").apply(params, x)
    np.testing.assert_allclose(conv.apply(params, x), ref, rtol=1e-5, atol=1e-5)
    d = cnn_encoder.data(None)
    assert d.train["x"].shape[1:] == (8, 8, 1) and d.train["x"].dtype == np.float32
    assert d.train["y"].dtype == np.int32 and len(d.train["x"]) + len(d.val["x"]) == 1797
    assert 0.0 <= d.train["x"].min() and d.train["x"].max() <= 1.0
    assert pd.Series(d.val["y"]).nunique() == 10


def test_cpu_auto_group_runs_large_members_one_at_a_time():
    """engine.group_size=0 on CPU: fewer than 4 members per cache budget (the CNN: 2) run
    one at a time; smaller members (the MLPs: 4, 16) and explicit group sizes are unchanged."""

    def group(member_bytes, size=64, n_devices=2, group_size=0, platform="cpu"):
        mesh = SimpleNamespace(devices=np.array([SimpleNamespace(platform=platform)] * n_devices))
        fake = SimpleNamespace(
            n_devices=n_devices, mesh=mesh, group_size=group_size, program=SimpleNamespace(member_bytes=member_bytes)
        )
        return programs.Compiled.group_for(fake, size)

    cache = programs._GROUP_CACHE_BYTES
    assert group(cache // 2) == group(cache // 3) == group(2 * cache) == 1
    assert group(cache // 4) == 4 and group(cache // 16) == 16
    assert group(cache // 16, size=8) == 4  # capped by the per-device count
    assert group(cache // 2, group_size=2) == 2  # an explicit engine.group_size wins
    assert group(cache // 2, platform="gpu") == 32  # accelerators: the whole local population
