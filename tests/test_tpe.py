"""TPE through Optuna's ask/tell interface: each batch is one population."""

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from jaxexp import engine, space

optuna = pytest.importorskip("optuna")
from jaxexp import tpe  # noqa: E402


def _tpe_config(tiny):
    c = tiny(
        train={
            "lr": space.log_uniform(1e-3, 1e-1),
            "weight_decay": space.uniform(0.0, 0.1, when={"train.schedule": ("cosine",)}),
            "schedule": space.choice(["constant", "cosine"]),
        },
        model={"hidden": space.choice([(8,), (8, 8)])},  # tuples: categorical by index
    )
    c.task.seed = 107
    c.train.epochs = 2
    c.sweep.strategy = "tpe"
    c.sweep.generations = 2
    c.sweep.slots = 4
    return c


def test_batches_of_asked_trials_run_as_populations_and_the_search_continues(tiny, tmp_path):
    c = _tpe_config(tiny)
    wd = str(tmp_path / "tpe")
    before = engine.TRACE_COUNTS["run_segment"]
    trials = tpe.run(c, wd, progress=False)
    assert engine.TRACE_COUNTS["run_segment"] - before <= 2  # one program per hidden size, reused by every batch
    assert len(trials) == 8 and list(trials["batch"]) == [0] * 4 + [1] * 4 and (trials["state"] == "COMPLETE").all()
    assert trials["params_train.lr"].between(1e-3, 1e-1).all()
    # the conditional parameter is suggested exactly when its parent takes the listed value
    cosine = trials["params_train.schedule"] == "cosine"
    assert trials.loc[cosine, "params_train.weight_decay"].notna().all()
    assert trials.loc[~cosine, "params_train.weight_decay"].isna().all()
    # the values are Optuna's: a plain study with the same seed asks the same first batch
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=c.seed))
    params = space.parse(c.sweep.space)
    dists = {p.name: tpe.distribution(optuna, p) for p in params}
    for k in range(4):
        again = tpe._suggest(study.ask(), params, dists)
        assert np.isclose(again["train.lr"], trials.loc[k, "params_train.lr"])
        assert str(again["model.hidden"]) == trials.loc[k, "params_model.hidden"]
    # each trial's value is the mean best metric of its members
    members = pd.read_csv(tmp_path / "tpe" / "batch_1" / "members.csv")
    got = members.groupby("config_id")["best_val_mse"].mean()
    np.testing.assert_allclose(trials.set_index("number").loc[got.index, "value"], got, rtol=1e-6)
    # the same command with more batches continues the study
    c.sweep.generations = 3
    more = tpe.run(c, wd, progress=False)
    pd.testing.assert_frame_equal(more.head(8), trials, check_dtype=False)
    assert len(more) == 12 and (more["batch"].iloc[8:] == 2).all() and (more["state"] == "COMPLETE").all()


def test_spaces_optuna_cannot_express_are_refused(tiny):
    c = _tpe_config(tiny)
    c.sweep.space = {"train": {"lr": space.normal(0.01, 0.001)}}
    with pytest.raises(Exception, match="no Optuna equivalent"):
        tpe.run(c, None, progress=False)


def test_a_tpe_search_is_analysed_from_its_trials_table(tiny, tmp_path):
    import jaxexp

    c = _tpe_config(tiny)
    c.sweep.generations, c.sweep.slots = 2, 5
    wd = tmp_path / "tpe"
    trials = tpe.run(c, str(wd), progress=False)
    a = jaxexp.analyze(str(wd / "trials.csv"), metric="value", goal="min", out=str(tmp_path / "an"), plots=False)
    assert (tmp_path / "an" / "report.md").exists() and (tmp_path / "an" / "next_space.yaml").exists()
    assert len(trials) == 10 and a.counts
    row = a.continuous.set_index(a.continuous.columns[0]).loc["train.lr"]
    rho, p = scipy.stats.spearmanr(trials["params_train.lr"], trials["value"])
    assert np.isclose(row["rho"], rho) and np.isclose(row["p"], p)
