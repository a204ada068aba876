"""TPE through Optuna's ask/tell interface: each batch is one population."""

import math

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from jaxexp.run import engine
from jaxexp.search import space

optuna = pytest.importorskip("optuna")
from jaxexp.search import tpe  # noqa: E402


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


@pytest.mark.slow
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


@pytest.mark.slow
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


def _ask_many(params, n, tell, seed=0):
    """``n`` trials asked one at a time (tpe.ask, as a batch asks them) and told ``tell(values)``;
    no training: the sampler part of the search alone."""
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed))
    dists = {p.name: tpe.distribution(optuna, p) for p in params}
    asked = []
    for _ in range(n):
        number, values = tpe.ask(study, params, dists, seed)
        study.tell(number, tell(values))
        asked.append(values)
    return study, asked


def test_tpe_honours_choice_probabilities():
    """A 75/25 choice over 400 asks: the count of the 75% value is Binomial(400, 0.75) (mean 300,
    sd 8.66) when the probabilities are honoured. The draws are seeded (deterministic), and the bound
    is 4 sd (265..335), which an honest sampler leaves with probability < 1e-4 whatever the seed.
    The told values make the 25% value far better: TPE left to itself (no probabilities) asks it
    mostly, so the bound has power, and honouring the weights is not TPE's doing."""
    lr = space.log_uniform(1e-3, 1e-1)
    weighted = space.parse({"opt": space.choice(["adam", "sgd"], probabilities=[0.75, 0.25]), "lr": lr})
    score = lambda v: (0.0 if v["opt"] == "sgd" else 1.0) + v["lr"]  # noqa: E731
    study, asked = _ask_many(weighted, 400, score)
    adam = sum(v["opt"] == "adam" for v in asked)
    assert abs(adam - 300) <= 4 * math.sqrt(400 * 0.75 * 0.25), adam
    # Optuna records every draw as the trial's parameter (so trials.csv and the study hold it) ...
    assert [t.params["opt"] for t in study.trials] == [v["opt"] for v in asked]
    # ... each from its own stream (config.seed, trial number, name): independent of TPE, reproducible
    (p,) = [q for q in weighted if q.name == "opt"]
    assert [tpe.draw_weighted(p, 0, k) for k in range(400)] == [v["opt"] for v in asked]
    # while TPE still searches the other parameter: the lr it asks late is lower than its early asks
    assert np.median([v["lr"] for v in asked[-100:]]) < np.median([v["lr"] for v in asked[:20]])
    plain = space.parse({"opt": space.choice(["adam", "sgd"]), "lr": lr})
    _, free = _ask_many(plain, 100, score)
    assert sum(v["opt"] == "adam" for v in free[50:]) < 20  # TPE alone: sgd almost always


def test_weighted_choices_by_index_and_under_conditions():
    params = space.parse(
        {
            "hidden": space.choice([(8,), (8, 8)], probabilities=[0.5, 0.5]),  # tuples: Optuna stores the index
            "opt": space.choice(["adam", "sgd"]),
            "b1": space.choice([0.8, 0.9], probabilities=[0.9, 0.1], when={"opt": "adam"}),
        }
    )
    study, asked = _ask_many(params, 30, lambda v: float(len(v["hidden"])))
    hidden = next(p for p in params if p.name == "hidden")
    for t, v in zip(study.trials, asked):
        assert t.params["hidden"] in (0, 1) and v["hidden"] == hidden.values[t.params["hidden"]]
        assert (v["b1"] is None) == (v["opt"] != "adam") == ("b1" not in t.params)  # drawn, used only when active


def fake_training(monkeypatch, score):
    """``runner.run_members`` replaced by a scorer of each member's values: a search without training."""
    from types import SimpleNamespace

    from jaxexp.run import runner

    def run_members(config, table, workdir=None, progress=None):
        members = table.assign(status="ok", best_val_mse=[score(r) for r in table.to_dict("records")])
        return SimpleNamespace(interrupted=False, members=members)

    monkeypatch.setattr(runner, "run_members", run_members)


def test_a_tpe_run_draws_weighted_choices_and_records_them(tiny, monkeypatch, tmp_path):
    c = _tpe_config(tiny)
    c.sweep.space.train.schedule = space.choice(["constant", "cosine"], probabilities=[0.3, 0.7])
    c.sweep.generations, c.sweep.slots = 3, 4
    fake_training(monkeypatch, lambda r: r["train.lr"])
    trials = tpe.run(c, str(tmp_path / "tpe"), progress=False)
    (sched,) = [p for p in space.parse(c.sweep.space) if p.name == "train.schedule"]
    assert list(trials["params_train.schedule"]) == [tpe.draw_weighted(sched, c.seed, k) for k in range(12)]
    assert (trials["state"] == "COMPLETE").all()
    cosine = trials["params_train.schedule"] == "cosine"  # the condition still follows the drawn parent
    assert trials.loc[cosine, "params_train.weight_decay"].notna().all()
    assert trials.loc[~cosine, "params_train.weight_decay"].isna().all()
    # continuing from trials.csv draws the next trials' values from their own numbers
    c.sweep.generations = 4
    more = tpe.run(c, str(tmp_path / "tpe"), progress=False)
    assert list(more["params_train.schedule"]) == [tpe.draw_weighted(sched, c.seed, k) for k in range(16)]


def test_jaxexp_sweep_honours_the_strategy_as_the_cli_does(tiny, monkeypatch):
    import jaxexp
    from jaxexp.search import mutation

    c = _tpe_config(tiny)
    fake_training(monkeypatch, lambda r: r.get("train.lr", c.train.lr))
    trials = jaxexp.sweep(c, progress=False)  # "tpe": the trials table of jaxexp.search.tpe.run
    pd.testing.assert_frame_equal(trials, tpe.run(c, None, progress=False))
    assert len(trials) == 8 and list(trials.columns[:2]) == ["number", "value"]
    c.sweep.strategy = "mutation"  # "mutation": the lineage table of jaxexp.search.mutation.run
    lineage = jaxexp.sweep(c, progress=False)
    pd.testing.assert_frame_equal(lineage, mutation.run(c, None, progress=False))
    assert list(lineage.columns[:3]) == ["node", "parent", "generation"] and len(lineage) > 1
    res = jaxexp.train_config(c, progress=False)  # train: the base config, whatever the strategy
    assert res.members["config_id"].tolist() == [0] * c.sweep.seeds
