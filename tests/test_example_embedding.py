"""The hierarchy-embedding example workload (jaxexp/examples/embedding.py, configs/embedding.py)."""

import importlib.util
import pathlib

import numpy as np
import pandas as pd
import pytest

import jaxexp
from jaxexp.run import engine
from jaxexp.search import space

CONFIG = pathlib.Path(__file__).resolve().parents[1] / "configs" / "embedding.py"


def _config(epochs=4, segment=4, **sweep_space):
    """The example's config, shrunk: a 40-node tree (depth 3), batches of 32, one seed, no plots or checkpoints.
    The first and third tests share one static config and segment length: one compiled program."""
    spec = importlib.util.spec_from_file_location("_embedding_config", CONFIG)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    c = module.get_config()
    c.tree.depth = 3
    c.train.batch_size = 32
    c.train.epochs = epochs
    c.engine.segment_epochs = segment
    c.engine.progress = False
    c.engine.checkpoint = False
    c.engine.plots = False
    c.sweep.seeds = 1
    c.sweep.space = sweep_space
    return c


@pytest.mark.slow
def test_one_segment_learns_the_hierarchy(tmp_path):
    c = _config(curvature=space.choice((1.0, 4.0)), richness_weight=space.choice((0.3, 3.0)))
    res = jaxexp.sweep(c, str(tmp_path / "run"))
    history = pd.read_csv(tmp_path / "run" / "history.csv")
    for col in ("hierarchy", "richness", "train_hierarchy_term", "train_richness_term", "train_loss"):
        assert col in history.columns and np.isfinite(history[col]).all(), col
    assert sorted(set(history["epoch"])) == [1, 2, 3, 4]  # one segment of 4 epochs
    members = pd.read_csv(tmp_path / "run" / "members.csv")
    assert len(members) == 4 and (members["status"] == "ok").all()
    # the random initial embedding ranks ancestors at chance; training ranks them well above it
    assert (members["init_hierarchy"].between(0.2, 0.8)).all()
    assert (members["best_hierarchy"] > members["init_hierarchy"] + 0.15).all()
    assert res.best_member()["best_hierarchy"] > 0.8


@pytest.mark.slow
def test_loss_weights_and_curvature_are_traced():
    c = _config(
        hierarchy_weight=space.choice((0.0, 1.0)),
        richness_weight=space.choice((0.0, 1.0)),
        curvature=space.choice((1.0, 4.0)),
    )
    c.tree.seed = 4242  # a static key (data split seed) no other test compiled
    c.engine.compact = "never"  # compaction would compile smaller population sizes
    before = engine.TRACE_COUNTS["run_segment"]
    res = jaxexp.sweep(c)
    assert engine.TRACE_COUNTS["run_segment"] - before == 1  # 8 weightings, one program
    m = res.members.set_index("member")
    assert len(m) == 8
    cols = ["train_loss", "train_hierarchy_term", "hierarchy"]
    curves = res.history.pivot(index="member", columns="epoch", values=cols).round(6)
    assert len({tuple(r) for r in curves.to_numpy()}) == 8  # eight different histories
    gain = m["best_hierarchy"] - m["init_hierarchy"]
    on, off = gain[m["hierarchy_weight"] > 0], gain[m["hierarchy_weight"] == 0]
    assert on.min() > off.max() + 0.1, (on, off)
    # no loss at all: the embedding does not move
    still = m[(m["hierarchy_weight"] == 0) & (m["richness_weight"] == 0)]
    np.testing.assert_allclose(still["final_hierarchy"], still["init_hierarchy"])
    # the richness term spreads the items
    for (h, cv), g in m.groupby(["hierarchy_weight", "curvature"]):
        spread = g.set_index("richness_weight")["final_richness"]
        assert spread[1.0] > 1.2 * spread[0.0], (h, cv, spread)


@pytest.mark.slow
def test_hierarchy_score_drives_early_stopping():
    epochs = 12
    c = _config(
        epochs=epochs,
        richness_weight=space.choice((0.3, 3.0)),
        curvature=space.choice((1.0, 4.0)),
    )
    c.train.early_stop_patience = 1
    assert (c.metric, c.goal) == ("hierarchy", "max")
    res = jaxexp.sweep(c)
    members = res.members.set_index("member")
    assert members["stop_epoch"].notna().any() and (members["epochs_run"] < epochs).any()
    for member, g in res.history.sort_values("epoch").groupby("member"):
        h = g["hierarchy"].to_numpy()
        # patience 1: stop after the first epoch whose score is not above every earlier one
        worse = [e for e in range(1, len(h)) if h[e] <= h[:e].max()]
        row = members.loc[member]
        if worse:
            assert row["stop_epoch"] == worse[0] + 1 == row["epochs_run"] == len(h), (member, h)
        else:
            assert pd.isna(row["stop_epoch"]) and row["epochs_run"] == epochs
        assert row["best_epoch"] == int(np.argmax(h)) + 1
