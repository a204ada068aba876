"""Mutation trees: lineage consistency, continuing a tree, failures."""

import math
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from jaxexp import api
from jaxexp.errors import ConfigError
from jaxexp.search import mutation, space, strategies, tree_batch, tree_plan, tree_report

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _tree_config(tiny):
    c = tiny(
        train={"lr": space.log_uniform(1e-3, 1e-1), "batch_size": space.choice([16, 32])},
        model={"dropout": space.uniform(0.0, 0.4)},
    )
    c.train.lr = 1e-2
    c.train.epochs = 2
    c.sweep.strategy = "mutation"
    c.sweep.generations = 2
    c.sweep.slots = 3
    return c


@pytest.mark.slow
def test_lineage_is_consistent_and_the_tree_continues(tiny, tmp_path):
    c = _tree_config(tiny)
    wd = str(tmp_path / "tree")
    lineage = mutation.run(c, wd, progress=False)
    assert len(lineage) == 1 + 2 * 3 and list(lineage["node"]) == list(range(7))
    by_node = lineage.set_index("node")
    names = ["train.lr", "train.batch_size", "model.dropout"]
    for node, row in by_node.iterrows():
        if node == 0:
            assert row["parent"] == -1 and row["mutation"] == ""
            continue
        parent = by_node.loc[row["parent"]]  # every parent exists, in an earlier generation
        assert parent["generation"] < row["generation"]
        name, change = row["mutation"].split(": ")
        old, new = change.split(" -> ")
        changed = [n for n in names if not np.isclose(float(row[n]), float(parent[n]))]
        assert changed == [name]  # exactly the recorded parameter changed ...
        assert np.isclose(float(parent[name]), float(old), rtol=1e-2)  # ... from the parent's value
        assert np.isclose(float(row[name]), float(new), rtol=1e-2)  # ... to the child's
    assert 1e-3 <= lineage["train.lr"].min() and lineage["train.lr"].max() <= 1e-1
    assert set(lineage["train.batch_size"]) <= {16, 32} and lineage["model.dropout"].between(0, 0.4).all()
    # generation 2's parents are the best nodes of generations 0-1
    ok = lineage[lineage["generation"] <= 1].sort_values(["metric", "node"])
    assert set(lineage.loc[lineage["generation"] == 2, "parent"]) <= set(ok["node"].head(2))
    assert (tmp_path / "tree" / "gen_2" / "members.csv").exists() and (tmp_path / "tree" / "lineage.md").exists()
    assert "node 0 (gen 0): base config" in (tmp_path / "tree" / "lineage.md").read_text()

    # a member re-created from its node's values reproduces the node's metric
    node = by_node.loc[4]
    table = pd.DataFrame([{"member": 4, "config_id": 4, "seed": 0, **{n: node[n] for n in names}}])
    table["train.batch_size"] = table["train.batch_size"].astype(int)
    again = api.run_members(c, table).members.iloc[0]
    assert np.isclose(again["best_val_mse"], node["metric"], rtol=1e-4)

    # the same command with more generations continues the tree from chosen parents
    c.sweep.generations = 3
    c.sweep.parent_ids = (0,)
    c.sweep.hypothesis = "a smaller batch helps"
    more = mutation.run(c, wd, progress=False)
    pd.testing.assert_frame_equal(more.head(7).reset_index(drop=True), lineage, check_dtype=False)
    new = more[more["generation"] == 3]
    assert len(new) == 3 and (new["parent"] == 0).all() and (new["hypothesis"] == "a smaller batch helps").all()


def test_failed_nodes_are_recorded_not_fatal():
    members = pd.DataFrame(
        {
            "config_id": [1, 1, 2, 2],
            "status": ["diverged", "diverged", "ok", "diverged"],
            "best_val_mse": [np.nan, np.nan, 0.5, np.nan],
        }
    )
    scores = strategies.config_scores(members, "val_mse")
    assert math.isnan(scores[1][0]) and scores[1][2] == "diverged"
    assert scores[2][0] == 0.5 and scores[2][2] == "ok"


def test_mutations_stay_in_range_and_change_the_value():
    rng = np.random.default_rng(0)
    p = space.parse({"a": space.int_uniform(1, 10), "b": space.q_uniform(0.0, 1.0, 0.1), "c": space.choice([1, 2])})
    for _ in range(200):
        a = mutation._mutate(p[0], 10, 2.0, rng)
        assert 1 <= a <= 10 and a != 10 and isinstance(a, int)
        b = mutation._mutate(p[1], 0.5, 2.0, rng)
        assert 0 <= b <= 1 and b != 0.5 and np.isclose(round(b / 0.1) * 0.1, b)
        assert mutation._mutate(p[2], 1, 2.0, rng) == 2


@pytest.mark.slow
def test_the_example_tree_runs_from_the_command_line(tmp_path):
    wd = tmp_path / "tree"
    args = ["--config.task.n_train=128", "--config.task.n_val=32", "--config.train.epochs=2", "--config.sweep.slots=2"]
    p = subprocess.run(
        [sys.executable, "-m", "jaxexp.main", "sweep", "--config=configs/mutation_tree.py", f"--workdir={wd}", *args],
        cwd=ROOT,
        env=dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 0, p.stderr[-2000:]
    assert "best node" in p.stdout and "generation 3/3" in p.stderr
    lineage = pd.read_csv(wd / "lineage.csv")
    assert (
        len(lineage) == 1 + 3 * 2 and not lineage.duplicated(["train.lr", "train.weight_decay", "model.dropout"]).any()
    )


# ----------------------------------------------------------------------------- planned batches (issue 17)

PLAN = """\
hypothesis: a lower lr helps
slots:
  - parent: 0
    mutate: {train.lr: x0.5, model.dropout: 0.2}
    hypothesis: halving lr lets dropout 0.2 help
  - parent: 0
    mutate: {}
    target: {train.weight_decay: 0.01}
    hypothesis: weight decay helps
  - parent: 0
    mutate: {train.lr: 1.0e+9}
    hypothesis: a huge lr diverges
  - {}
"""


def _plan_config(tiny):
    c = tiny(train={"lr": space.log_uniform(1e-3, 1e10)}, model={"dropout": space.uniform(0.0, 0.4)})
    c.train.lr, c.train.epochs, c.train.weight_decay = 1e-2, 2, 0.0
    c.sweep.strategy, c.sweep.generations, c.sweep.slots, c.sweep.parent_pool = "mutation", 2, 4, 10
    return c


@pytest.mark.slow
def test_a_planned_batch_runs_exactly_the_planned_nodes(tiny, tmp_path):
    c = _plan_config(tiny)
    (tmp_path / "plan.yaml").write_text(PLAN)
    wd = tmp_path / "tree"
    lineage = mutation.run(c, str(wd), progress=False, plan=str(tmp_path / "plan.yaml")).set_index("node")
    assert list(lineage.index) == list(range(9))
    one, two, three, four = (lineage.loc[n] for n in (1, 2, 3, 4))
    assert (lineage.loc[[1, 2, 3, 4], "parent"] == 0).all() and list(lineage.loc[[1, 2, 3, 4], "slot"]) == [0, 1, 2, 3]
    # slot 0: two parameters, a factor and a value
    assert np.isclose(one["train.lr"], 5e-3) and np.isclose(one["model.dropout"], 0.2)
    assert one["mutation"] == "train.lr: 0.01 -> 0.005; model.dropout: 0.1 -> 0.2"
    assert one["hypothesis"] == "halving lr lets dropout 0.2 help" and one["hypothesis_test"] == "planned mutation"
    # slot 1: the parent's configuration on another target
    assert np.isclose(two["train.weight_decay"], 0.01) and two["target"] == "train.weight_decay=0.01"
    assert np.isclose(two["train.lr"], 1e-2) and two["mutation"] == "train.weight_decay: 0 -> 0.01"
    # slot 2 diverged: kept, with its metrics empty
    assert three["status"] != "ok" and math.isnan(three["metric"]) and three["seeds_ok"] == 0
    # slot 3: the automatic rule tests the plan's hypothesis (lower lr)
    assert four["hypothesis"] == "a lower lr helps" and np.isclose(four["train.lr"], 5e-3)
    assert four["hypothesis_test"] == "automatic rule, as the hypothesis says: train.lr down"
    assert lineage.loc[[0, 1, 3, 4], "train.weight_decay"].eq(0).all()
    # every metric, mean and std over seeds
    for m in ("best_val_mse", "best_val_loss", "final_train_loss", "final_val_mse"):
        assert f"{m}_mean" in lineage.columns and f"{m}_std" in lineage.columns
    assert np.isclose(one["best_val_mse_mean"], one["metric"])
    # generation 2 (automatic): every ok node is a parent, the diverged one never; a child keeps its target
    gen2 = lineage[lineage["generation"] == 2]
    assert sorted(gen2["parent"]) == [0, 1, 2, 4]
    assert np.isclose(gen2.loc[gen2["parent"] == 2, "train.weight_decay"].iloc[0], 0.01)
    csv = pd.read_csv(wd / "lineage.csv")
    assert {"generation", "mutation", "status", "slot", "observation", "verdict"} <= set(csv.columns)
    md = (wd / "lineage.md").read_text()
    assert "## Batch 1 (Iters 1-4)" in md and "## Iter 3: diverged" in md
    assert "| 0 | 1 | 0 | train.lr: 0.01 -> 0.005; model.dropout: 0.1 -> 0.2 | halving lr" in md

    # the same plan again: refused in one line, before anything runs
    c.sweep.generations = 3
    with pytest.raises(ConfigError, match=r"^plan.yaml slot 0: repeats node 1 \(the same configuration\)"):
        mutation.run(c, str(wd), progress=False, plan=str(tmp_path / "plan.yaml"))

    # observations and verdicts: annotate, a hand edit read back, a bad verdict refused
    tree_report.annotate(str(wd), 1, "dropout 0.2 hurts at half the lr", "falsified")
    text = (wd / "annotations.yaml").read_text()
    (wd / "annotations.yaml").write_text(text + "4:\n  verdict: Supported\n  observation: lower lr helped\n")
    p = subprocess.run(
        [sys.executable, "-m", "jaxexp.main", "tree", "annotate", f"--workdir={wd}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0 and "2 of 9 node(s) have a verdict" in p.stdout, p.stderr
    md = (wd / "lineage.md").read_text()
    iter1 = md[md.index("## Iter 1: ok") : md.index("## Iter 2:")]
    assert "Observation: dropout 0.2 hurts at half the lr\nVerdict: falsified" in iter1
    assert "Observation: lower lr helped\nVerdict: supported" in md[md.index("## Iter 4: ok") :]
    csv = pd.read_csv(wd / "lineage.csv").set_index("node")
    assert csv.loc[1, "verdict"] == "falsified" and csv.loc[4, "observation"] == "lower lr helped"
    with pytest.raises(ConfigError, match=r"^--verdict: 'maybe' is not one of supported, falsified, inconclusive$"):
        tree_report.annotate(str(wd), 2, None, "maybe")
    with pytest.raises(ConfigError, match=r"^--node: 42 is not in the tree \(nodes 0-8\)"):
        tree_report.annotate(str(wd), 42, "x", None)
    (wd / "annotations.yaml").write_text("1:\n  verdict: yes\n")
    with pytest.raises(ConfigError, match=r"^annotations.yaml: node 1: verdict 'true' is not one of supported"):
        tree_report.annotate(str(wd), None, None, None)


@pytest.mark.parametrize(
    "plan, message",
    [
        ([{"parent": 7, "mutate": {"train.lr": 0.01}}], r"^plan slot 0: unknown parent 7; the tree has only node 0"),
        ([{"mutate": {"train.lrr": 0.01}}], r"^plan slot 0 mutate: unknown parameter 'train.lrr'; did you mean 'tr"),
        ([{"mutate": {"task.n_train": 64}}], r"^plan slot 0 mutate: unknown parameter 'task.n_train';.*under target:"),
        ([{"mutate": {"train.lr": "x0"}}], r"^plan slot 0 mutate train.lr: bad factor 'x0'; write x1.5, \*1.5 or /2"),
        ([{"mutate": {"train.lr": "/abc"}}], r"^plan slot 0 mutate train.lr: bad factor '/abc'"),
        (
            [{"parent": 0, "mutate": {"train.lr": "x100"}}],
            r"^plan slot 0 mutate train.lr: 1 is outside .*\[0.001, 0.1\]",
        ),
        (
            [{"parent": 0, "mutate": {"train.batch_size": 64}}],
            r"^plan slot 0 mutate train.batch_size: 64 is not one of",
        ),
        ([{"target": {"task.n_trian": 64}}], r"^plan slot 0 target: no config field 'task.n_trian'; did you mean"),
        ([{"mutate": {"train.lr": 0.01}, "hypotesis": "x"}], r"^plan slot 0: unknown key 'hypotesis' \(use parent,"),
        ([{}] * 4, r"^plan: 4 slots planned but sweep.slots is 3; pass --config.sweep.slots=4 or plan fewer$"),
        ([{"mutate": {}}], r"^plan slot 0: mutate is empty and there is no target"),
    ],
)
def test_plan_mistakes_are_one_line_errors_before_anything_runs(tiny, tmp_path, plan, message):
    c = _tree_config(tiny)
    with pytest.raises(ConfigError, match=message) as e:
        mutation.run(c, str(tmp_path / "tree"), progress=False, plan=plan)
    assert "\n" not in str(e.value) and not (tmp_path / "tree" / "gen_0").exists()


def test_the_automatic_rule_tests_the_hypothesis_or_says_it_does_not(tiny):
    c = _tree_config(tiny)
    tree = tree_batch.Tree(c)
    fields, names = tree.fields, tree.names
    assert tree_plan.read("a lower lr lets dropout help", fields, names) == ({"train.lr": "down"}, ["model.dropout"])
    assert tree_plan.read("Dropout up, with a higher learning rate", fields, names)[0] == {
        "model.dropout": "up",
        "train.lr": "up",
    }
    base = {"train.lr": 6e-3, "train.batch_size": 32, "model.dropout": 0.1}
    for seed in range(20):  # today's case: "a lower lr lets dropout help" gave lr 0.006 -> 0.012
        values, test = tree.auto(base, {}, "a lower lr lets dropout help", np.random.default_rng(seed), set())
        assert np.isclose(values["train.lr"], 3e-3) and values["model.dropout"] == 0.1
        assert test == "automatic rule, as the hypothesis says: train.lr down"
    ran = {tree.key({**base, "train.lr": 3e-3}, {})}  # that node exists: one step further, still lower
    assert np.isclose(tree.auto(base, {}, "lower lr", np.random.default_rng(0), ran)[0]["train.lr"], 1.5e-3)
    rng = np.random.default_rng(0)
    cases = {
        "dropout matters": "it names model.dropout without a direction",
        "more data helps": f"it names no parameter of sweep.space ({', '.join(names)})",
        "fewer epochs help": "it names train.epochs down, which sweep.space does not mutate",
        "lower lr, or maybe higher lr": "it says both lower and higher train.lr",
    }
    for hypothesis, reason in cases.items():
        values, test = tree.auto(base, {}, hypothesis, rng, set())
        assert test.startswith(f"{mutation.NOT_TESTED}: {reason}") and test.endswith("; random mutation"), test
        assert sum(values[n] != base[n] for n in names) == 1
    assert tree.auto(base, {}, "dropout matters", rng, set())[0]["train.lr"] == base["train.lr"]  # a named one moves
    at_low = {**base, "train.lr": 1e-3}
    _, test = tree.auto(at_low, {}, "a lower lr helps", rng, set())
    assert test.startswith(f"{mutation.NOT_TESTED}: train.lr cannot move down from 0.001 (end of its range)")
    assert tree.auto(base, {}, "", rng, set())[1] == ""  # no hypothesis: nothing to test
    # a planned mutation against its own hypothesis is recorded as such
    assert tree_plan.check_planned("a lower lr helps", {"train.lr": "up"}, fields, names) == (
        "planned mutation; the plan moves train.lr up, the hypothesis says down"
    )


def test_failed_nodes_are_never_automatic_parents(tiny):
    tree = tree_batch.Tree(_tree_config(tiny))
    lineage = pd.DataFrame(
        {"node": [0, 1, 2, 3], "status": ["ok", "diverged", "ok", "failed"], "metric": [1.0, 0.1, 0.5, 0.2]}
    )
    assert tree.pool(lineage, ()) == [2, 0]
    assert tree.pool(lineage, (1,)) == [1]  # named by the user: allowed
    with pytest.raises(ConfigError, match="every node of the tree failed; nothing to mutate automatically"):
        tree.pool(lineage.assign(status="diverged"), ())
