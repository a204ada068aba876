"""jaxexp analyze: statistics against scipy, seeds, boundaries, the next-space
rules, table formats, and the CLI on a real tiny sweep."""

import os
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats as sps

import jaxexp
from jaxexp import analysis
from jaxexp.analysis import output
from jaxexp.errors import ConfigError
from jaxexp.search import mutation, space, spacefile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FILES = (
    "continuous.csv",
    "boolean.csv",
    "categorical.csv",
    "elites.csv",
    "ranges.csv",
    "boundaries.csv",
    "importance.csv",
    "changes.csv",
    "report.md",
    "next_space.yaml",
    "metric_vs_params.png",
    "parallel.png",
)


def _cli(*args):
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2")
    return subprocess.run(
        [sys.executable, "-m", "jaxexp.main", "analyze", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _parses(next_space: dict) -> list:
    """The proposed parameters through jaxexp.search.space.parse (conditions and W&B's
    normal included); for a space of real config fields ``_loads`` checks the file."""
    return space.parse(next_space["parameters"])


def _loads(path) -> spacefile.SpaceFile:
    """next_space.yaml through the space-file loader ``--config.sweep.space_file`` uses."""
    return spacefile.load(str(path))


def spacemod_parse(nested: dict) -> list:
    return space.parse(nested)


def _table(n=40, seed=0):
    rng = np.random.default_rng(seed)
    lr = np.exp(rng.uniform(np.log(1e-4), np.log(1e-1), n))
    depth = rng.integers(2, 7, n)
    sched = rng.choice([True, False], n)
    act = rng.choice(["relu", "gelu", "tanh"], n)
    y = (np.log10(lr) + 2.5) ** 2 - 0.3 * depth + 0.5 * (~sched) + 0.2 * (act == "relu") + 0.3 * rng.normal(size=n)
    return pd.DataFrame({"lr": lr, "depth": depth, "sched": sched, "act": act, "loss": y})


# ----------------------------------------------------------------------------- statistics vs scipy


def test_spearman_rho_and_p_equal_scipy_on_the_same_table():
    df = _table()
    a = jaxexp.analyze(df, metric="loss", goal="min")
    cont = a.continuous.set_index("parameter")
    for name in ("lr", "depth"):
        rho, p = sps.spearmanr(df[name], df["loss"])
        assert cont.loc[name, "rho"] == pytest.approx(rho, rel=1e-12)
        assert cont.loc[name, "p"] == pytest.approx(p, rel=1e-12)
        assert cont.loc[name, "n"] == len(df)
    assert a.counts["configurations"] == len(df) and not a.declared


def test_benjamini_hochberg_equals_a_hand_computation_and_scipy():
    p = [0.01, 0.04, 0.03, 0.20]
    # sorted 0.01, 0.03, 0.04, 0.20 -> x4/1, x4/2, x4/3, x4/4 = 0.04, 0.06, 0.0533, 0.20; monotone from the top
    hand = [0.04, 0.16 / 3, 0.16 / 3, 0.20]
    assert analysis.bh_adjust(p) == pytest.approx(hand)
    assert analysis.bh_adjust(p) == pytest.approx(sps.false_discovery_control(p))
    with_nan = analysis.bh_adjust([0.01, np.nan, 0.04, 0.03, 0.20])
    assert np.isnan(with_nan[1]) and with_nan[[0, 2, 3, 4]] == pytest.approx(hand)
    a = jaxexp.analyze(_table(), metric="loss", goal="min")  # one family over every per-parameter test
    cat = a.categorical.drop_duplicates("parameter")
    ps = [*a.continuous["p"], *a.boolean["p"], *cat["kruskal_p"]]
    assert a.bh_tests == len(ps) == 5  # lr, depth (Spearman); sched (Welch); act, depth's levels (Kruskal)
    adjusted = [*a.continuous["p_bh"], *a.boolean["p_bh"], *cat["kruskal_p_bh"]]
    assert adjusted == pytest.approx(list(sps.false_discovery_control(ps)))


def test_boolean_and_categorical_statistics_equal_scipy():
    df = _table()
    a = jaxexp.analyze(df, metric="loss", goal="min")
    t, f = df.loc[df["sched"], "loss"], df.loc[~df["sched"], "loss"]
    b = a.boolean.iloc[0]
    assert b["parameter"] == "sched" and b["n_true"] == len(t) and b["n_false"] == len(f)
    assert b["diff"] == pytest.approx(t.mean() - f.mean())
    assert b["p"] == pytest.approx(sps.ttest_ind(t, f, equal_var=False).pvalue, rel=1e-10)
    assert b["better"] == "True"  # the planted effect: sched=False adds 0.5 to the loss
    cat = a.categorical[a.categorical["parameter"] == "act"].set_index("level")
    groups = {lv: df.loc[df["act"] == lv, "loss"] for lv in ("relu", "gelu", "tanh")}
    assert cat["kruskal_p"].iloc[0] == pytest.approx(sps.kruskal(*groups.values()).pvalue, rel=1e-10)
    for lv, x in groups.items():
        half = sps.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))
        assert cat.loc[lv, "mean"] == pytest.approx(x.mean())
        assert cat.loc[lv, "ci_low"] == pytest.approx(x.mean() - half)
    best, worst = cat["best_level"].iloc[0], cat["worst_level"].iloc[0]
    assert best == min(groups, key=lambda k: groups[k].mean()) and worst == max(groups, key=lambda k: groups[k].mean())
    p = sps.ttest_ind(groups[best], groups[worst], equal_var=False).pvalue
    assert cat["best_vs_worst_p"].iloc[0] == pytest.approx(p, rel=1e-10)


def test_seeds_of_one_configuration_are_averaged_not_counted():
    rng = np.random.default_rng(1)
    configs = pd.DataFrame({"config_id": range(10), "lr": np.geomspace(1e-4, 1e-1, 10)})
    members = configs.loc[np.repeat(np.arange(10), 3)].reset_index(drop=True)
    members["seed"] = np.tile([0, 1, 2], 10)
    members["loss"] = np.log10(members["lr"]) + rng.normal(0, 0.5, 30)
    a = jaxexp.analyze(members, metric="loss", goal="min")
    row = a.continuous.iloc[0]
    assert row["n"] == 10 and row["members"] == 30  # n = configurations, not members
    means = members.groupby("config_id")["loss"].mean()
    assert row["p"] == pytest.approx(sps.spearmanr(configs["lr"], means).pvalue)
    assert a.counts["seeds_min"] == a.counts["seeds_max"] == 3
    # without config_id, rows with the same parameter values are one configuration too
    b = jaxexp.analyze(members.drop(columns=["config_id", "seed"]), metric="loss", goal="min")
    assert b.continuous.iloc[0]["n"] == 10 and b.continuous.iloc[0]["p"] == pytest.approx(row["p"])


def test_a_lineage_table_keeps_its_slots_and_notes_out_of_the_parameters():
    rng = np.random.default_rng(3)
    n = 12
    lr = 10 ** rng.uniform(-4, -1, n)
    lineage = pd.DataFrame(
        {
            "node": range(n),
            "parent": [-1] + [int(i) for i in rng.integers(0, 3, n - 1)],
            "generation": [0] + [1 + i // 4 for i in range(n - 1)],
            "slot": [0] + [i % 4 for i in range(n - 1)],  # varies like a parameter: must not become one
            "mutation": [""] + [f"train.lr: x -> {v}" for v in lr[1:]],
            "hypothesis": "",
            "hypothesis_test": ["", *(["planned mutation", "automatic"] * n)[: n - 1]],
            "target": ["", *(["task.n_train=512", ""] * n)[: n - 1]],
            "metric": np.log10(lr) + rng.normal(0, 0.1, n),
            "seeds_ok": rng.integers(1, 3, n),
            "observation": ["", *(["helps", ""] * n)[: n - 1]],
            "verdict": ["", *(["supported", "falsified"] * n)[: n - 1]],
            "train.lr": lr,
        }
    )
    a = jaxexp.analyze(lineage, metric="metric", goal="min")
    assert a.continuous["parameter"].tolist() == ["train.lr"]
    # the same columns in a table that is not a lineage: slot is a parameter there
    b = jaxexp.analyze(lineage.drop(columns=["mutation", "hypothesis"]), metric="metric", goal="min")
    assert "slot" in b.continuous["parameter"].tolist()


def test_diverged_and_non_finite_rows_are_left_out_and_counted():
    df = _table()
    df["status"] = "ok"
    df.loc[[0, 1], "status"] = "diverged"
    df.loc[2, "loss"] = np.inf
    a = jaxexp.analyze(df, metric="loss", goal="min")
    assert a.counts["excluded"] == {"status diverged": 2, "metric not finite": 1}
    assert a.counts["configurations"] == len(df) - 3


# ----------------------------------------------------------------------------- boundaries and the next space

SPACE = {
    "method": "random",
    "metric": {"name": "loss", "goal": "minimize"},
    "parameters": {
        "train.lr": {"distribution": "log_uniform_values", "min": 1.0e-4, "max": 1.0e-2},
        "model.depth": {"distribution": "int_uniform", "min": 2, "max": 6},
        "train.batch_size": {"values": [16, 32, 64]},
        "train.epochs": {"value": 20},
    },
}


def _planted(trend: str, n=50, seed=3):
    """lr (log range), depth (int range) and batch size (levels) drawn at random;
    the metric improves monotonically toward one bound of ``trend``, or has an
    interior optimum in all three (lr = 1e-3, the log-range's middle; depth 4; batch 32)."""
    rng = np.random.default_rng(seed)
    lr = np.exp(rng.uniform(np.log(1e-4), np.log(1e-2), n))
    depth = rng.integers(2, 7, n)
    bs = rng.choice([16, 32, 64], n)
    y = {
        "train.lr": -np.log10(lr),
        "model.depth": -depth.astype(float),
        "train.batch_size": bs / 16.0,
        "interior": (np.log10(lr) + 3) ** 2 + 0.3 * (depth - 4) ** 2 + 0.3 * (bs != 32),
    }[trend]
    y = y + 0.1 * rng.normal(size=n)
    return pd.DataFrame({"train.lr": lr, "model.depth": depth, "train.batch_size": bs, "loss": y})


@pytest.mark.parametrize(
    "trend, side, expected",
    [
        # half the log-range would be a factor 10 past 1e-2: capped at x3
        ("train.lr", "high", {"distribution": "log_uniform_values", "max": 0.03}),
        # half the width (2) past 6
        ("model.depth", "high", {"distribution": "int_uniform", "max": 8}),
        # one level past 16 (16 / 2), not fixed at 16
        ("train.batch_size", "low", {"values": [8, 16, 32]}),
    ],
)
def test_a_planted_boundary_is_flagged_and_the_next_space_expands_it(trend, side, expected):
    a = jaxexp.analyze(_planted(trend), metric="loss", goal="min", space=SPACE)
    hits = a.boundaries[a.boundaries["hit"]]
    assert list(zip(hits["parameter"], hits["side"])) == [(trend, side)]
    new = a.next_space["parameters"][trend]
    assert {k: new[k] for k in expected} == expected
    row = a.changes.set_index("parameter").loc[trend]
    assert "expand" in row["action"] and ("upper" if side == "high" else "low") in row["evidence"]
    if trend == "model.depth":
        assert "expand 6 -> 8" in row["evidence"]
    assert a.next_space["parameters"]["train.epochs"] == {"value": 20}
    assert a.next_space["metric"] == {"name": "loss", "goal": "minimize"} and a.next_space["method"] == "random"
    assert {p.name for p in _parses(a.next_space)} == set(SPACE["parameters"])


def test_a_planted_interior_optimum_is_not_flagged():
    a = jaxexp.analyze(_planted("interior"), metric="loss", goal="min", space=SPACE)
    assert not a.boundaries["hit"].any()
    assert len(a.boundaries) == 6  # both sides of lr, depth and batch size were tested
    assert not a.changes["action"].str.contains("expand").any()
    lr = a.ranges.set_index("parameter").loc["train.lr"]
    assert 2e-4 < lr["elite_min"] and lr["elite_max"] < 5e-3  # the elites sit around the optimum (1e-3)
    nxt = a.next_space["parameters"]["train.lr"]
    assert 1e-4 <= nxt["min"] and nxt["max"] <= 1e-2
    _parses(a.next_space)


def _fix_table(gelu, relu):
    n = len(gelu) + len(relu)  # one configuration per row (equal parameter values would be one)
    return pd.DataFrame(
        {"config_id": range(n), "act": ["gelu"] * len(gelu) + ["relu"] * len(relu), "loss": [*gelu, *relu]}
    )


FIX_SPACE = {"parameters": {"act": {"values": ["gelu", "relu"], "probabilities": [0.5, 0.5]}}}


@pytest.mark.parametrize(
    "gelu, relu, action, why",
    [
        (0.80 + 0.01 * np.arange(10), 1.00 + 0.01 * np.arange(10), "fix", "fix to gelu"),
        # an elite at relu (0.7): not 100% of the elites
        (0.80 + 0.01 * np.arange(10), [0.7, *(1.01 + 0.01 * np.arange(9))], "keep", "elites at gelu:3, relu:1"),
        # every elite at gelu, p tiny, but gelu is only ~1% better
        (0.990 + 0.001 * np.arange(10), 1.00 + 0.001 * np.arange(10), "keep", "effect"),
        # every elite at gelu, gelu 6% better on average, but noisy: p > 0.10
        ([0.5, 0.55, 0.6, 0.65, 1.0, 1.1, 1.2, 1.3, 1.4, 1.5], 1.00 + 0.01 * np.arange(10), "keep", "p="),
    ],
)
def test_fix_rule_fires_only_when_all_conditions_hold(gelu, relu, action, why):
    a = jaxexp.analyze(_fix_table(gelu, relu), metric="loss", goal="min", space=FIX_SPACE)
    row = a.changes.iloc[0]
    assert row["action"] == action and why in row["evidence"], row["evidence"]
    if action == "fix":
        assert a.next_space["parameters"]["act"] == {"value": "gelu"}
    else:
        assert a.next_space["parameters"]["act"] == FIX_SPACE["parameters"]["act"]


def test_conditional_parameters_are_analysed_only_where_active(tmp_path):
    rng = np.random.default_rng(5)
    n = 40
    opt = rng.choice(["adam", "sgd"], n)
    b1 = np.where(opt == "adam", rng.uniform(0.8, 0.95, n), np.nan)
    lr = np.exp(rng.uniform(np.log(1e-4), np.log(1e-2), n))
    loss = -np.log10(lr) + np.nan_to_num(5 * (b1 - 0.8)) + 0.1 * rng.normal(size=n)
    df = pd.DataFrame({"train.optimizer": opt, "train.b1": b1, "train.lr": lr, "loss": loss})
    sp = {
        "parameters": {
            "train.optimizer": {"values": ["adam", "sgd"]},
            "train.b1": {"distribution": "uniform", "min": 0.8, "max": 0.95, "when": {"train.optimizer": "adam"}},
            "train.lr": {"distribution": "log_uniform", "min": 1e-4, "max": 1e-2},
        }
    }
    a = jaxexp.analyze(df, metric="loss", goal="min", space=sp)
    row = a.continuous.set_index("parameter").loc["train.b1"]
    adam = df[opt == "adam"]
    assert row["n"] == len(adam) and row["when"] == "train.optimizer in ['adam']"
    assert row["p"] == pytest.approx(sps.spearmanr(adam["train.b1"], adam["loss"]).pvalue)
    assert a.importance.set_index("parameter").loc["train.b1", "n"] == len(adam)
    assert a.next_space["parameters"]["train.b1"]["when"] == {"train.optimizer": ["adam"]}
    path = tmp_path / "next_space.yaml"
    path.write_text(output.next_space_yaml(a))
    b1 = next(p for p in spacemod_parse(_loads(path).space) if p.name == "train.b1")
    assert b1.when == (("train.optimizer", ("adam",)),) and (b1.low, b1.high) == (0.8, 0.95)
    assert a.ranges.set_index("parameter").loc["train.b1", "n"] == len(adam)


# ----------------------------------------------------------------------------- tables from elsewhere


def test_an_optuna_trials_dataframe_is_read(tmp_path):
    df = _table(30, seed=2).rename(columns={c: f"params_{c}" for c in ("lr", "depth", "sched", "act")})
    df = df.rename(columns={"loss": "value"})
    df.insert(0, "number", range(30))
    df["datetime_start"] = "2025-10-31 10:00:00"
    df["state"] = "COMPLETE"
    df.loc[[3, 4], "state"] = ["PRUNED", "FAIL"]
    df.loc[4, "value"] = np.nan
    path = tmp_path / "optuna.csv"
    df.to_csv(path, index=False)
    a = jaxexp.analyze(str(path), metric="value", goal="minimize", out=str(tmp_path / "out"))
    assert [d.name for d in a.dims] == ["lr", "depth", "sched", "act"]
    assert a.counts["excluded"] == {"status pruned": 1, "status fail": 1} and a.counts["configurations"] == 28
    assert "Optuna" in a.source
    for name in FILES:
        assert (tmp_path / "out" / name).exists(), name
    nxt = yaml.safe_load((tmp_path / "out" / "next_space.yaml").read_text())
    assert set(nxt["parameters"]) == {"lr", "depth", "sched", "act"}
    _parses(nxt)


def test_a_wandb_runs_export_is_read(tmp_path):
    rng = np.random.default_rng(4)
    n = 12
    df = pd.DataFrame(
        {
            "Name": [f"run-{i}" for i in range(n)],
            "State": ["finished"] * (n - 1) + ["crashed"],
            "config.lr": np.exp(rng.uniform(np.log(1e-4), np.log(1e-2), n)),
            "config/batch_size": rng.choice([16, 32], n),
            "summary.val_loss": rng.normal(1, 0.1, n),
            "summary/val_acc": rng.uniform(size=n),
        }
    )
    df.to_csv(tmp_path / "wandb.csv", index=False)
    a = jaxexp.analyze(str(tmp_path / "wandb.csv"), metric="val_loss", goal="min")
    assert sorted(d.name for d in a.dims) == ["batch_size", "lr"]  # val_acc is a result, not a parameter
    assert a.counts["excluded"] == {"status crashed": 1} and a.metric == "val_loss"


def test_a_lineage_tree_is_drawn_for_mutation_runs(tmp_path):
    df = _table(20)
    df["node_id"] = range(20)
    df["parent_id"] = [np.nan, np.nan, *[i // 2 for i in range(2, 20)]]
    a = jaxexp.analyze(df, metric="loss", goal="min", out=str(tmp_path))
    assert a.lineage is not None and (tmp_path / "lineage.png").exists()
    assert "node_id" not in [d.name for d in a.dims]


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"metric": "nope", "goal": "min"}, "--metric: no column 'nope'"),
        ({"metric": "act", "goal": "min"}, "--metric: column 'act' of"),
        ({"metric": "loss", "goal": "sideways"}, "--goal: must be min or max"),
        ({"metric": "loss", "goal": None}, "--goal: missing"),
    ],
)
def test_bad_tables_raise_one_line_errors(tmp_path, kwargs, fragment):
    path = tmp_path / "t.csv"
    _table(10).to_csv(path, index=False)
    with pytest.raises(ConfigError) as e:
        jaxexp.analyze(str(path), **kwargs)
    assert fragment in str(e.value) and "\n" not in str(e.value)


def test_too_few_usable_rows_is_an_error():
    df = _table(8)
    df["status"] = ["ok"] * 4 + ["diverged"] * 4
    with pytest.raises(ConfigError, match=r"only 4 usable configuration\(s\).*at least 5"):
        jaxexp.analyze(df, metric="loss", goal="min")


# ----------------------------------------------------------------------------- ids, seeds, ambiguous columns


def _replicated(ids=("trial", "config"), seed_name="seed", n=20, reps=3, rng_seed=0):
    """n configurations x reps seeds: lr has an effect, wd none; a configuration-level
    noise (shared by its seeds) is what pseudo-replication turns into false significance."""
    rng = np.random.default_rng(rng_seed)
    lr = np.exp(rng.uniform(np.log(1e-4), np.log(1e-1), n))
    wd = rng.uniform(0, 0.1, n)
    noise = rng.normal(0, 1.0, n)
    rows = []
    for c in range(n):
        for s in range(reps):
            row = {"trial": len(rows), "config": c, seed_name: s, "lr": lr[c], "wd": wd[c]}
            row["loss"] = (np.log10(lr[c]) + 2.5) ** 2 + noise[c] + 0.1 * rng.normal()
            rows.append(row)
    df = pd.DataFrame(rows)
    return df.drop(columns=[c for c in ("trial", "config") if c not in ids])


@pytest.mark.parametrize("ids", [("trial", "config"), ("trial",), ("config",)])
def test_ids_named_trial_or_config_are_not_parameters_and_seeds_are_averaged(ids):
    df = _replicated(ids)
    a = jaxexp.analyze(df, metric="loss", goal="min")
    assert [d.name for d in a.dims] == ["lr", "wd"] and set(a.ids) == set(ids) and a.seeds == ["seed"]
    assert a.counts["configurations"] == 20 and a.counts["seeds_min"] == a.counts["seeds_max"] == 3
    cont = a.continuous.set_index("parameter")
    assert (cont["n"] == 20).all() and (cont["members"] == 60).all()  # n = configurations, not rows
    means = df.groupby("wd", sort=False)["loss"].mean()
    assert cont.loc["wd", "p"] == pytest.approx(sps.spearmanr(means.index, means.to_numpy()).pvalue)
    assert cont.loc["wd", "p_bh"] >= 0.10  # the planted no-effect parameter stays non-significant
    assert set(a.next_space["parameters"]) == {"lr", "wd"}  # never the ids
    _parses(a.next_space)
    # the same table read as before (ids and seed as parameters): every row a configuration, wd "significant"
    naive = jaxexp.analyze(df, metric="loss", goal="min", params=[*ids, "seed", "lr", "wd"])
    assert naive.counts["configurations"] == 60
    assert naive.continuous.set_index("parameter").loc["wd", "p_bh"] < 0.05


def test_an_optuna_table_with_number_seeds_and_a_conditional_parameter(tmp_path):
    df = _replicated(("trial",)).rename(columns={"trial": "number", "lr": "params_lr", "wd": "params_wd"})
    df = df.rename(columns={"seed": "user_attrs_seed", "loss": "value"})
    opt = np.repeat(np.random.default_rng(1).permutation(["adam", "sgd"] * 10), 3)
    df["params_optimizer"] = opt
    df["params_b1"] = np.where(opt == "adam", np.repeat(np.linspace(0.8, 0.99, 20), 3), np.nan)
    df["datetime_start"], df["duration"], df["state"] = "2025-10-31 10:00:00", "0 days 00:01:00", "COMPLETE"
    path = tmp_path / "optuna.csv"
    df.to_csv(path, index=False)
    a = jaxexp.analyze(str(path), metric="value", goal="min", out=str(tmp_path / "out"), plots=False)
    assert [d.name for d in a.dims] == ["lr", "wd", "optimizer", "b1"] and "Optuna" in a.source
    assert a.ids == ["number"] and a.seeds == ["seed"] and a.counts["configurations"] == 20
    cont = a.continuous.set_index("parameter")
    assert cont.loc["wd", "n"] == 20 and cont.loc["wd", "p_bh"] >= 0.10 and cont.loc["b1", "n"] == 10
    nxt = yaml.safe_load((tmp_path / "out" / "next_space.yaml").read_text())
    assert set(nxt["parameters"]) == {"lr", "wd", "optimizer", "b1"}
    assert nxt["parameters"]["lr"]["distribution"] == "log_uniform_values"  # W&B reads log_uniform as exponents
    assert nxt["parameters"]["b1"]["when"] == {"optimizer": ["adam"]}  # empty exactly where optimizer is sgd
    b1 = next(p for p in _parses(nxt) if p.name == "b1")
    assert b1.when == (("optimizer", ("adam",)),)
    report = (tmp_path / "out" / "report.md").read_text()
    assert "ids (never parameters): `number`" in report and "seeds (" in report


def test_wandb_and_ray_exports_name_their_ids():
    df = _replicated(("trial",))
    wandb = df.rename(columns={"trial": "ID"}).assign(
        Name=[f"run-{i}" for i in range(60)], State="finished", Created="2025", Runtime=60, Sweep="abc"
    )
    a = jaxexp.analyze(wandb, metric="loss", goal="min")
    assert (
        [d.name for d in a.dims] == ["lr", "wd"] and set(a.ids) == {"ID", "Name"} and a.counts["configurations"] == 20
    )
    ray = df.drop(columns=["seed"]).rename(columns={"trial": "trial_id", "lr": "config/lr", "wd": "config/wd"})
    ray = ray.assign(training_iteration=10, time_total_s=1.5, pid=7, hostname="h", date="2025", timestamp=1)
    a = jaxexp.analyze(ray, metric="loss", goal="min")
    assert [d.name for d in a.dims] == ["config/lr", "config/wd"] and a.counts["configurations"] == 20


def test_an_ambiguous_integer_column_is_refused_in_one_line_and_the_flags_resolve_it():
    df = _replicated((), seed_name="k")  # k: 0, 1, 2 in every configuration, named like nothing
    with pytest.raises(ConfigError) as e:
        jaxexp.analyze(df, metric="loss", goal="min")
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("k: ") and "--seed=k" in msg and "--params=lr,wd,k" in msg
    a = jaxexp.analyze(df, metric="loss", goal="min", seed="k")
    assert a.seeds == ["k"] and a.counts["configurations"] == 20 and [d.name for d in a.dims] == ["lr", "wd"]
    b = jaxexp.analyze(df, metric="loss", goal="min", params="lr,wd,k")  # a hyperparameter after all
    assert b.counts["configurations"] == 60 and "k" in [d.name for d in b.dims]
    # a column numbering 6 configurations (repeated over their seeds): a configuration id or a hyperparameter?
    few = _replicated(("config",), n=6).rename(columns={"config": "variant"})
    with pytest.raises(ConfigError, match=r"^variant: .*--id=variant"):
        jaxexp.analyze(few, metric="loss", goal="min")
    c = jaxexp.analyze(few, metric="loss", goal="min", id="variant")
    assert c.key == "variant" and c.ids[0] == "variant" and c.counts["configurations"] == 6
    # over 20 configurations it is a counter: read as an id, with a note
    d = jaxexp.analyze(_replicated(("config",)).rename(columns={"config": "variant"}), metric="loss", goal="min")
    assert "variant" in d.ids and any("variant: one value per configuration" in n for n in d.notes)
    with pytest.raises(ConfigError, match="--id: no column 'nope'"):
        jaxexp.analyze(df, metric="loss", goal="min", id="nope")


@pytest.mark.slow
def test_cli_id_and_seed_flags_and_the_refusal(tmp_path):
    # variant numbers 6 configurations, r their 3 seeds: neither is named like an id or a seed
    df = _replicated(("config",), seed_name="r", n=6).rename(columns={"config": "variant"})
    path = tmp_path / "runs.csv"
    df.to_csv(path, index=False)
    p = _cli(f"--table={path}", "--metric=loss", "--goal=min", "--seed=r", f"--out={tmp_path / 'no'}")
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "variant: " in p.stderr, p.stderr
    assert "--id=variant" in p.stderr and not (tmp_path / "no").exists()
    p = _cli(f"--table={path}", "--metric=loss", "--goal=min", "--id=variant", "--seed=r", "--limits=lr=:1")
    assert p.returncode == 0, p.stderr
    report = (tmp_path / "runs_analysis" / "report.md").read_text()
    assert "Configurations: 6** (3 member(s) each)" in report and "same `variant`" in report


# ----------------------------------------------------------------------------- expansion cap, written spellings


def _at_upper_bound(n=40, seed=7):
    """lr (3 decades), x (linear) and bs (levels x10 apart) drawn at random; the metric
    improves toward the upper bound of each (independently: every one is a hit)."""
    rng = np.random.default_rng(seed)
    lr = np.exp(rng.uniform(np.log(1e-5), np.log(1e-2), n))
    x = rng.uniform(0.2, 0.8, n)
    bs = rng.choice([1, 10, 100], n)
    return pd.DataFrame({"lr": lr, "x": x, "bs": bs})


def _hit(df, name, seed=8):
    s = np.log10(df[name]) if name != "x" else df[name]
    return df.assign(loss=-s + 0.05 * np.random.default_rng(seed).normal(size=len(df)))


CAP_SPACE = {
    "parameters": {
        "lr": {"distribution": "log_uniform", "min": 1e-5, "max": 1e-2},  # jaxexp's log_uniform: min/max are values
        "x": {"distribution": "uniform", "min": 0.2, "max": 0.8},
        "bs": {"values": [1, 10, 100]},
    }
}


def test_boundary_expansion_is_capped_and_respects_hard_limits():
    df = _at_upper_bound()
    nxt = {}
    for name in ("lr", "x", "bs"):
        a = jaxexp.analyze(_hit(df, name), metric="loss", goal="min", space=CAP_SPACE)
        assert list(a.boundaries.loc[a.boundaries["hit"], "parameter"]) == [name]
        nxt[name] = a.next_space["parameters"][name]
    # a log range grows at most x3 per step (half its 3 decades would be x31.6: lr up to 0.316)
    assert nxt["lr"]["distribution"] == "log_uniform_values" and nxt["lr"]["max"] == 0.03
    assert nxt["x"]["max"] == pytest.approx(1.1)  # a linear range: +50% of its width (0.6)
    assert nxt["bs"]["values"][-2:] == [100, 300]  # a x10 step continued at most x3
    limits = {"lr": (None, 0.02), "x": (0, 0.8)}
    b = jaxexp.analyze(_hit(df, "lr"), metric="loss", goal="min", space=CAP_SPACE, limits=limits)
    assert b.next_space["parameters"]["lr"]["max"] == 0.02
    c = jaxexp.analyze(_hit(df, "x"), metric="loss", goal="min", space=CAP_SPACE, limits=limits)
    assert c.next_space["parameters"]["x"]["max"] == 0.8  # at its limit: stays (only the other side narrows)
    row = c.changes.set_index("parameter").loc["x"]
    assert "expand" not in row["action"] and "cannot expand past 0.8 (its hard limit)" in row["evidence"]
    assert "x3" in analysis.RULES[1] and "hard limit" in analysis.RULES[1]
    with pytest.raises(ConfigError, match="--limits: 'nope'"):
        jaxexp.analyze(_hit(df, "x"), metric="loss", goal="min", space=CAP_SPACE, limits={"nope": (0, 1)})
    assert analysis.parse_limits("lr=:1,train.dropout=0:0.9") == {"lr": (None, 1.0), "train.dropout": (0.0, 0.9)}
    with pytest.raises(ConfigError, match="NAME=LOW:HIGH"):
        analysis.parse_limits("lr=1")


def test_log_ranges_are_written_as_log_uniform_values(tmp_path):
    a = jaxexp.analyze(_hit(_at_upper_bound(), "lr"), metric="loss", goal="min", space=CAP_SPACE)
    text = output.next_space_yaml(a)
    assert "log_uniform_values" in text and "distribution: log_uniform," not in text
    rng = np.random.default_rng(3)
    df = pd.DataFrame(
        {"lr": np.exp(rng.uniform(np.log(1e-5), np.log(1e-1), 30)), "hidden": 2 ** rng.integers(4, 11, 30)}
    )
    df["hidden"] = df["hidden"] + rng.integers(0, 3, 30)  # integers over 16..1026: an inferred integer log range
    df["loss"] = rng.normal(size=30)
    b = jaxexp.analyze(df, metric="loss", goal="min")
    nxt = b.next_space["parameters"]
    assert nxt["lr"]["distribution"] == "log_uniform_values"
    assert nxt["hidden"]["distribution"] == "q_log_uniform_values" and nxt["hidden"]["q"] == 1
    path = tmp_path / "next_space.yaml"
    path.write_text(output.next_space_yaml(b))
    kinds = {p.name: p.kind for p in _parses(yaml.safe_load(path.read_text()))}
    assert kinds == {"lr": "log_uniform", "hidden": "q_log_uniform"}


def test_a_condition_on_a_value_the_parent_no_longer_takes_is_dropped():
    df = _fix_table(0.80 + 0.01 * np.arange(10), 1.00 + 0.01 * np.arange(10))  # fixes act to gelu
    df["width"] = np.where(df["act"] == "relu", np.linspace(1, 2, 20), np.nan)
    sp = {
        "parameters": {
            **FIX_SPACE["parameters"],
            "width": {"distribution": "uniform", "min": 1, "max": 2, "when": {"act": ["relu"]}},
        }
    }
    a = jaxexp.analyze(df, metric="loss", goal="min", space=sp)
    assert a.next_space["parameters"] == {"act": {"value": "gelu"}}  # width would never be active
    assert a.changes.set_index("parameter").loc["width", "action"] == "drop"
    _parses(a.next_space)


# ----------------------------------------------------------------------------- the CLI on a real sweep


@pytest.mark.slow
def test_cli_analyses_a_real_sweep_workdir_end_to_end(tiny, tmp_path):
    cfg = tiny(train={"lr": space.log_uniform(1e-3, 1e-1), "weight_decay": space.choice([0.0, 1e-3, 1e-2])})
    cfg.sweep.method, cfg.sweep.num_samples, cfg.sweep.seeds = "random", 8, 2
    cfg.engine.plots = False
    cfg.engine.checkpoint, cfg.engine.max_to_keep, cfg.engine.segment_epochs = True, 10, 1
    wd = tmp_path / "wd"
    jaxexp.sweep(cfg, str(wd))
    # mid-sweep copy: members.csv is not written yet; only the first checkpoint (after epoch 1) exists
    mid = tmp_path / "mid"
    shutil.copytree(wd, mid)
    for name in ("members.csv", "config.json"):
        os.remove(mid / name)
    steps = sorted(int(s) for s in os.listdir(mid / "checkpoints") if s.isdigit())
    for s in steps[1:]:
        shutil.rmtree(mid / "checkpoints" / str(s))

    p = _cli(f"--workdir={wd}")
    assert p.returncode == 0, p.stderr
    out = wd / "analysis"
    for name in FILES:
        assert (out / name).exists(), name
    assert list(out.glob("contour_train.*__train.*.csv"))
    cont = pd.read_csv(out / "continuous.csv").set_index("parameter")
    assert set(cont.index) == {"train.lr", "train.weight_decay"}
    assert cont.loc["train.lr", "n"] == 8 and cont.loc["train.lr", "members"] == 16
    nxt = yaml.safe_load((out / "next_space.yaml").read_text())
    assert nxt["metric"] == {"name": "val_mse", "goal": "minimize"} and nxt["num_samples"] == 8
    loaded = _loads(out / "next_space.yaml")
    assert (loaded.method, loaded.metric, loaded.goal, loaded.num_samples) == ("random", "val_mse", "min", 8)
    assert {q.name for q in space.parse(loaded.space)} == {"train.lr", "train.weight_decay"}
    report = (out / "report.md").read_text()
    assert "Configurations: 8** (2 member(s) each)" in report and "### Rules used" in report
    assert "wrote" in p.stdout

    p = _cli(f"--workdir={mid}", f"--out={tmp_path / 'mid_out'}")
    assert p.returncode == 0, p.stderr
    report = (tmp_path / "mid_out" / "report.md").read_text()
    assert f"checkpoint step {steps[0]} was read: 16 of 16 members have trained (0 finished)" in report


@pytest.mark.slow
@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--metric=nope", "--goal=min"], "--metric: no column 'nope'"),
        (["--metric=loss", "--goal=up"], "--goal: must be min or max"),
        (["--metric=act", "--goal=min"], "is not numeric"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, args, fragment):
    path = tmp_path / "t.csv"
    _table(10).to_csv(path, index=False)
    p = _cli(f"--table={path}", f"--out={tmp_path / 'out'}", *args)
    assert p.returncode == 2, p.stderr
    assert p.stderr.strip().count("\n") == 0 and p.stderr.startswith("jaxexp: error: ") and fragment in p.stderr
    assert not (tmp_path / "out").exists() and not (tmp_path / "t_analysis").exists()


def test_tuple_levels_read_back_from_csv_match_the_declared_ones():
    # members.csv writes model.hidden=(8,) as "(8,)"; config.json holds the level as [8]
    df = pd.DataFrame(
        {"config_id": range(12), "model.hidden": ["(8,)"] * 6 + ["(16, 16)"] * 6, "loss": [*range(6), *range(10, 16)]}
    )
    a = jaxexp.analyze(df, metric="loss", goal="min", space={"model": {"hidden": {"values": [[8], [16, 16]]}}})
    assert list(a.categorical["level"]) == ["(8,)", "(16, 16)"]
    assert a.changes.iloc[0]["action"] == "fix" and a.next_space["parameters"]["model.hidden"] == {"value": [8]}


@pytest.mark.slow
def test_a_mutation_tree_workdir_is_read_with_its_lineage(tiny, tmp_path):
    c = tiny(train={"lr": space.log_uniform(1e-3, 1e-1)}, model={"dropout": space.uniform(0.0, 0.4)})
    c.train.epochs, c.engine.plots = 2, False
    c.sweep.strategy, c.sweep.generations, c.sweep.slots = "mutation", 2, 3
    wd = tmp_path / "tree"
    lineage = mutation.run(c, str(wd), progress=False)
    a = jaxexp.analyze(str(wd), out=str(tmp_path / "out"))
    assert a.counts["configurations"] == (lineage["status"] == "ok").sum() == 7  # one per node
    assert {d.name for d in a.dims} == {"train.lr", "model.dropout"} and a.metric == "metric"
    assert a.lineage is not None and len(a.lineage) == 7 and (tmp_path / "out" / "lineage.png").exists()
    assert "mutation tree" in (tmp_path / "out" / "report.md").read_text()
    _loads(tmp_path / "out" / "next_space.yaml")
