"""Mutation trees: lineage consistency, continuing a tree, failures."""

import math
import os
import subprocess
import sys

import numpy as np
import pandas as pd

from jaxexp import api, mutation, space, strategies

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
