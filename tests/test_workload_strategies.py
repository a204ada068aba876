"""Everything the engine does for the built-in MLP works on a user workload unchanged:
resume, successive halving, PBT on the workload's own traced hyperparameter, TPE,
mutation trees, analysis, report and plots."""

import jax
import numpy as np
import pandas as pd
import pytest
from conftest import interrupt_after
from test_workload import user_config

import jaxexp
from jaxexp.search import mutation, space

# Every test runs a search strategy on a user workload end to end.
pytestmark = pytest.mark.slow

RTOL, ATOL = 1e-4, 1e-6  # a resumed population is re-formed: CPU vmap is not bit-identical


def test_resume_of_a_user_workload_equals_an_uninterrupted_run(tmp_path):
    c = user_config(dropout=space.choice([0.0, 0.3]), width=space.choice([4, 8]))
    c.train.epochs, c.engine.segment_epochs, c.engine.checkpoint = 4, 1, True
    ref = jaxexp.sweep(c, str(tmp_path / "ref"))
    c.engine.progress = True
    part = jaxexp.sweep(c, str(tmp_path / "wd"), progress=interrupt_after(3))
    assert part.interrupted
    c.engine.progress = False
    full = jaxexp.sweep(c, str(tmp_path / "wd"))
    assert "resumed_from_step" in full.timings
    a, b = full.members.set_index("member"), ref.members.set_index("member")
    np.testing.assert_allclose(a["best_score"], b["best_score"], rtol=RTOL, atol=ATOL)
    for m in ref.best_params:
        for x, y in zip(jax.tree.leaves(full.best_params[m]), jax.tree.leaves(ref.best_params[m])):
            np.testing.assert_allclose(x, y, rtol=RTOL, atol=ATOL)


def test_report_and_plots_of_a_user_workload(tmp_path):
    c = user_config(width=space.choice([4, 8]), smooth_weight=space.choice([0.0, 0.1, 1.0]))
    c.engine.plots = True
    c.sweep.seeds = 2
    res = jaxexp.sweep(c, str(tmp_path / "wd"))
    text = open(tmp_path / "wd" / "report.md").read()
    assert "score" in text and "width" in text
    assert {"history.png", "scatter.png"} <= set(res.plots)
    jaxexp.analyze(str(tmp_path / "wd"), out=str(tmp_path / "an"))
    text = open(tmp_path / "an" / "report.md").read()
    assert "smooth_weight" in text and "width" in text


def test_halving_and_pbt_on_a_user_workload():
    c = user_config(smooth_weight=space.choice([0.0, 0.1, 1.0, 3.0]))
    c.sweep.seeds = 2
    c.train.epochs, c.engine.segment_epochs = 4, 1
    c.sweep.halving_rungs, c.sweep.halving_eta = (2,), 2.0
    res = jaxexp.sweep(c)
    assert (res.members["status"] == "pruned").sum() == 4 and not res.rungs.empty
    c = user_config(dropout=space.choice([0.05, 0.4]))
    c.sweep.seeds = 4
    c.train.epochs, c.engine.segment_epochs = 4, 1
    c.sweep.pbt_interval, c.sweep.pbt_params = 2, ("dropout",)  # the workload's own traced rate
    res = jaxexp.sweep(c)
    assert not res.pbt.empty and set(res.pbt["field"]) == {"dropout"}
    assert res.pbt["new"].between(0.0, 0.9).all()  # kept in the declared range
    with pytest.raises(jaxexp.ConfigError, match="sweep.pbt_params: \\['width'\\] cannot be perturbed"):
        c.sweep.pbt_params = ("width",)  # static: not perturbable
        jaxexp.sweep(c)


def test_tpe_and_mutation_trees_on_a_user_workload(tmp_path):
    pytest.importorskip("optuna")
    from jaxexp.search import tpe

    c = user_config(dropout=space.uniform(0.0, 0.5), smooth_weight=space.log_uniform(1e-3, 1.0))
    c.sweep.strategy, c.sweep.generations, c.sweep.slots = "tpe", 2, 3
    trials = tpe.run(c, str(tmp_path / "tpe"))
    assert len(trials) == 6 and (trials["state"] == "COMPLETE").all()
    c.sweep.strategy = "mutation"
    lineage = mutation.run(c, str(tmp_path / "tree"))
    assert len(lineage) == 1 + 2 * 3 and (lineage["status"] == "ok").all()
    assert pd.read_csv(tmp_path / "tree" / "lineage.csv")["metric"].notna().all()
