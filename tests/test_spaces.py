"""Space files, conditional parameters, validation and Sobol sampling (jaxexp.space, jaxexp.spacefile).

Statistical tests draw a fixed seed's 2000 samples and require p > 1e-3 (KS for
continuous distributions, chi-square for categorical probabilities): with a
fixed seed the outcome is deterministic, and the threshold leaves a wide margin.
"""

import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
from conftest import tiny_config
from scipy import stats

import jaxexp
from jaxexp import space, spacefile, validate
from jaxexp.errors import ConfigError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
N = 2000


def _yaml(tmp_path, text: str, name: str = "space.yaml") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def _cli(*args):
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2")
    return subprocess.run(
        [sys.executable, "-m", "jaxexp.main", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )


# --- validation: each error class is one ConfigError line naming the parameter and the fix ---

# Distinct parameters, so that one file can hold every case (test_cli_validate_...).
ERROR_CASES = [
    (
        "train.weight_decay: {distribution: uniform, min: 0.5, max: 0.1}",
        "train.weight_decay: min (0.5) >= max (0.1); make min < max",
    ),
    (
        "model.activation: {values: [relu, gelu], probabilities: [0.7, 0.2]}",
        "model.activation: probabilities must be >= 0 and sum to 1 (sum is 0.9)",
    ),
    (
        "train.b2: {distribution: uniform, min: 0.9, max: 0.99, when: {train.optimiser: [adam]}}",
        "train.b2: condition on unknown parameter 'train.optimiser'; add train.optimiser to the same space",
    ),
    (
        "train.lr: {distribution: log_uniform_values, min: 1e-5, max: 1.0e-2}",
        "train.lr: 'min' is the string '1e-5': a YAML float needs a dot and a signed exponent, write 1.0e-5",
    ),
    (
        "model.dropout: {distribution: gauss, min: 0.0, max: 0.5}",
        "model.dropout: unknown distribution 'gauss'; use one",
    ),
    (
        "train.b1: {values: [0.8, 0.9], when: {train.optimizer: adamx}}\n  train.optimizer: {values: [adam, sgd]}",
        "train.b1: condition value(s) adamx never taken by train.optimizer (values: adam, sgd); use values of",
    ),
]


@pytest.mark.parametrize("spec, fragment", ERROR_CASES)
def test_each_error_class_is_one_line_naming_the_parameter(tmp_path, spec, fragment):
    path = _yaml(tmp_path, f"method: random\nnum_samples: 4\nparameters:\n  {spec}\n")
    with pytest.raises(ConfigError) as e:
        spacefile.load(path)
    msg = str(e.value)
    assert msg.startswith(f"{path}: parameters.") and fragment in msg
    assert "\n" not in msg


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("method: bayes\nparameters: {train.lr: {value: 0.1}}", "method: 'bayes' is not supported; use one of grid"),
        ("early_terminate: {type: hyperband}\nparameters: {train.lr: {value: 0.1}}", "unknown top-level key"),
        ("method: random\nnum_samples: 3\n", "missing 'parameters'"),
        ("metric: {name: val_mse, goal: lowest}\nparameters: {train.lr: {value: 0.1}}", "metric.goal: 'lowest'"),
        ("parameters: {train.lrr: {value: 0.1}}", "parameters.train.lrr: no config field 'train.lrr'; did you mean"),
        ("parameters: {train.grad_clip: {values: [1e-5, 1.0]}}", "'1e-5' read as text but train.grad_clip is a number"),
        ("parameters:\n  train.lr: {distribution: normal, mu: 0.01, min: 0.0}", "normal takes 'mu' and 'sigma'"),
        ("method: grid\nparameters: {train.lr: {distribution: normal, mu: 0.01, sigma: 0.001}}", "cannot be gridded"),
        ("parameters: {train.lr: [unclosed", "not valid YAML"),
        ("parameters:\n  train.lr: {value: 0.1}\n  train.lr: {value: 0.2}", "(key 'train.lr' given twice at line 3"),
        (
            "parameters:\n  train.optimizer: {values: [adam, sgd], when: {train.b1: 0.9}}\n"
            "  train.b1: {values: [0.9], when: {train.optimizer: adam}}",
            "conditions form a cycle",
        ),
        (
            "parameters:\n  train.lr: {distribution: uniform, min: 0.1, max: 0.2}\n"
            "  train.b1: {values: [0.9], when: {train.lr: 0.1}}",
            "a condition's parent must be a choice (values: [...]) or fixed (value: ...) parameter",
        ),
    ],
)
def test_file_level_errors(tmp_path, text, fragment):
    path = _yaml(tmp_path, text)
    with pytest.raises(ConfigError) as e:
        spacefile.load(path)
    assert fragment in str(e.value) and "\n" not in str(e.value)


def test_all_errors_are_collected(tmp_path):
    text = "\n  ".join(spec for spec, _ in ERROR_CASES)
    spacefile_, errors = spacefile.check(_yaml(tmp_path, f"parameters:\n  {text}\n"))
    assert spacefile_ is None and len(errors) == len(ERROR_CASES)
    for _, fragment in ERROR_CASES:
        assert sum(fragment in e for e in errors) == 1, fragment


def test_cli_validate_prints_one_line_per_error_and_exits_2(tmp_path):
    text = "\n  ".join(spec for spec, _ in ERROR_CASES)
    path = _yaml(tmp_path, f"method: random\nnum_samples: 4\nparameters:\n  {text}\n")
    p = _cli("validate", path)
    assert p.returncode == 2, p.stdout + p.stderr
    lines = [ln for ln in p.stderr.splitlines() if ln.startswith("jaxexp: error: ")]
    assert len(lines) == len(ERROR_CASES), p.stderr
    for _, fragment in ERROR_CASES:
        assert sum(fragment in ln for ln in lines) == 1, fragment
    assert p.stdout == ""


def test_cli_validate_prints_the_space_and_its_buckets():
    p = _cli("validate", "configs/space_v3.yaml")
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert "method: sobol (8 samples, seed 0); metric: val_mse (min)" in out
    assert "train.min_lr_ratio  uniform      [0, 0.2]" in out and "train.schedule in {cosine}  6/8" in out
    assert "cosine (0.75), constant (0.25)" in out
    assert "8 configurations x 4 seed(s) = 32 members in 3 static bucket(s)" in out  # batch sizes 16/32/64
    # a .py config file: --config.* overrides apply to it
    p = _cli("validate", "configs/quickstart.py", "--config.sweep.method=sobol", "--config.sweep.num_samples=4")
    assert p.returncode == 0, p.stderr
    assert "4 configurations x 4 seed(s) = 16 members in 1 static bucket(s)" in p.stdout


def test_describe_counts_static_buckets_of_the_expansion():
    c = jaxexp.default_config()
    c.sweep.space = {
        "model": {"activation": space.choice(["relu", "gelu"])},
        "train": {
            "batch_size": space.choice([32, 64, 128]),
            "lr": space.log_uniform(1e-3, 1e-2, num=3),  # traced: no new buckets
            "optimizer": space.choice(["adam", "sgd"]),
            "b1": space.choice([0.8, 0.9], when={"train.optimizer": "adam"}),
        },
    }
    lines, errors = validate.describe(c)
    assert errors == []
    # grid: 2 activations x 3 batch sizes x 3 lrs x (adam x 2 b1 + sgd) = 54 configurations
    assert lines[-1].startswith("54 configurations x 1 seed(s) = 54 members in 12 static bucket(s)")
    assert any(ln.startswith("train.b1") and "train.optimizer in {adam}" in ln and "36/54" in ln for ln in lines)


# --- sampled values honour their distributions ---


def _column(spec: dict, method: str, seed: int = 7, n: int = N) -> np.ndarray:
    params = space.parse({"x": spec})
    return np.array([r["x"] for r in space.expand(params, method, n, seed)])


@pytest.mark.parametrize("method", ["random", "sobol"])
def test_continuous_samples_pass_ks(method):
    x = _column(space.uniform(-2.0, 3.0), method)
    assert stats.kstest(x, stats.uniform(loc=-2.0, scale=5.0).cdf).pvalue > 1e-3
    lo, hi = 1e-5, 1e-1
    x = _column(space.log_uniform(lo, hi), method)
    assert x.min() >= lo and x.max() <= hi
    logs = np.log(x)  # uniform in log space
    assert stats.kstest(logs, stats.uniform(loc=math.log(lo), scale=math.log(hi / lo)).cdf).pvalue > 1e-3
    x = _column(space.normal(0.01, 0.002), method)
    assert stats.kstest(x, stats.norm(loc=0.01, scale=0.002).cdf).pvalue > 1e-3
    # a shifted or widened normal is rejected: the test has power at this n
    assert stats.kstest(x, stats.norm(loc=0.0105, scale=0.002).cdf).pvalue < 1e-3


@pytest.mark.parametrize("method", ["random", "sobol"])
def test_categorical_probabilities_pass_chi_square(method):
    values, probs = ["a", "b", "c"], [0.75, 0.15, 0.10]
    x = _column(space.choice(values, probabilities=probs), method)
    counts = [int(np.sum(x == v)) for v in values]
    assert stats.chisquare(counts, f_exp=[N * p for p in probs]).pvalue > 1e-3
    x = _column(space.int_uniform(1, 4), method)  # every integer equally likely
    counts = [int(np.sum(x == v)) for v in (1, 2, 3, 4)]
    assert stats.chisquare(counts).pvalue > 1e-3


def test_sobol_is_balanced_and_extends():
    params = space.parse({"a": space.uniform(0.0, 1.0), "b": space.choice(["x", "y"], probabilities=[0.75, 0.25])})
    rows = space.expand(params, "sobol", 64, seed=1)
    a = np.array([r["a"] for r in rows])
    # low discrepancy: each of 8 equal bins holds exactly 64 / 8 points (random draws would scatter around 8)
    assert np.histogram(a, bins=8, range=(0, 1))[0].tolist() == [8] * 8
    assert sum(r["b"] == "x" for r in rows) == 48
    assert space.expand(params, "sobol", 10, seed=1) == rows[:10]  # more samples extend the first ones
    assert space.expand(params, "sobol", 10, seed=2) != rows[:10]
    assert space.expand(params, "random", 10, seed=1) == space.expand(params, "random", 64, seed=1)[:10]


def test_normal_grid_uses_equal_probability_quantiles():
    (p,) = space.parse({"w": space.normal(1.0, 2.0, num=4)})
    assert np.allclose(space.grid_values(p), 1.0 + 2.0 * stats.norm.ppf([0.125, 0.375, 0.625, 0.875]))


# --- conditions ---

COND_SPACE = {
    "train": {
        "optimizer": space.choice(["adam", "adamw", "sgd"], probabilities=[0.5, 0.25, 0.25]),
        "b1": space.uniform(0.8, 0.95, when={"train.optimizer": ("adam", "adamw")}),
        "b2": space.choice([0.99, 0.999], when={"train.b1": 0.9}),  # never active: b1 is continuous
        "warmup_epochs": space.q_uniform(0.0, 2.0, 0.5, when={"train.optimizer": "sgd"}),
    }
}


@pytest.mark.parametrize("method", ["random", "sobol"])
def test_inactive_exactly_when_the_parent_is_outside_its_values(method):
    sp = {"train": {k: v for k, v in COND_SPACE["train"].items() if k != "b2"}}
    params = space.parse(sp)
    rows = space.expand(params, method, N, seed=5)
    opt = np.array([r["train.optimizer"] for r in rows])
    b1 = np.array([np.nan if r["train.b1"] is None else r["train.b1"] for r in rows])
    warm = [r["train.warmup_epochs"] for r in rows]
    assert (np.isnan(b1) == (opt == "sgd")).all()
    assert all((w is None) == (o != "sgd") for w, o in zip(warm, opt))
    active = b1[~np.isnan(b1)]  # the active values still follow their distribution
    assert stats.kstest(active, stats.uniform(loc=0.8, scale=0.15).cdf).pvalue > 1e-3


def test_conditions_need_a_choice_parent_and_chain():
    with pytest.raises(ConfigError, match="train.b2: condition on train.b1, a uniform parameter"):
        space.parse(COND_SPACE)
    sp = {
        "train": {
            "optimizer": space.choice(["adam", "sgd"]),
            "b1": space.choice([0.8, 0.9], when={"train.optimizer": "adam"}),
            "b2": space.choice([0.99, 0.999], when={"train.b1": 0.9}),  # active only if b1 is active and 0.9
        }
    }
    rows = space.expand(space.parse(sp), "random", 200, seed=0)
    for r in rows:
        assert (r["train.b2"] is not None) == (r["train.optimizer"] == "adam" and r["train.b1"] == 0.9)


def test_grid_with_conditions_has_no_duplicates():
    sp = {
        "model": {"activation": space.choice(["relu", "gelu"])},
        "train": {
            "optimizer": space.choice(["adam", "sgd"]),
            "b1": space.choice([0.8, 0.9, 0.95], when={"train.optimizer": "adam"}),
            "lr": space.log_uniform(1e-3, 1e-1, num=2, when={"train.optimizer": "sgd"}),
        },
    }
    rows = space.expand(space.parse(sp), "grid", 0, 0)
    keys = [tuple(sorted(r.items())) for r in rows]
    assert len(set(keys)) == len(keys) == 2 * (3 + 2)  # activation x (adam: 3 b1 | sgd: 2 lr)
    assert {r["train.b1"] for r in rows if r["train.optimizer"] == "sgd"} == {None}


def test_nested_groups_and_dotted_names_are_the_same_parameters(tmp_path):
    path = _yaml(
        tmp_path,
        """
        parameters:
          train.lr: {values: [0.1, 0.2]}
          train:
            parameters:
              b1: {values: [0.8], when: {train.lr: 0.2}}
          model: {dropout: {value: 0.3}}
        """,
    )
    sf = spacefile.load(path)
    assert sf.space == {
        "train": {"lr": {"values": [0.1, 0.2]}, "b1": {"values": [0.8], "when": {"train": {"lr": 0.2}}}},
        "model": {"dropout": {"value": 0.3}},
    }
    params = space.parse({"train": {"parameters": {"lr": space.choice([0.1])}}})  # W&B groups in Python too
    assert [p.name for p in params] == ["train.lr"]
    dup = _yaml(
        tmp_path, "parameters:\n  train.lr: {value: 0.1}\n  train: {parameters: {lr: {value: 0.2}}}\n", "d.yaml"
    )
    with pytest.raises(ConfigError, match="train.lr: given twice"):
        spacefile.load(dup)


def test_a_python_config_resolves_conditional_members():
    c = tiny_config()
    c.sweep.space = {
        "train": {
            "optimizer": space.choice(["adam", "sgd"]),
            "b1": space.choice([0.5, 0.7], when={"train.optimizer": "adam"}),
            "early_stop_patience": space.int_uniform(2, 4, when={"train.optimizer": "sgd"}),
        }
    }
    table = jaxexp.members_table(c)
    assert len(table) == 2 + 3
    sgd = table[table["train.optimizer"] == "sgd"]
    assert (
        sgd["train.b1"].isna().all()
        and table.loc[table["train.optimizer"] == "adam", "train.early_stop_patience"].isna().all()
    )
    from jaxexp import population

    members = population.resolve(c, table)
    for m, row in zip(members, table.to_dict("records")):
        if row["train.optimizer"] == "sgd":
            assert (
                m.config.train.b1 == c.train.b1
                and m.config.train.early_stop_patience == row["train.early_stop_patience"]
            )
            assert isinstance(m.config.train.early_stop_patience, int)  # NaN made the column float
        else:
            assert m.config.train.b1 == row["train.b1"] and m.config.train.early_stop_patience == 0


# --- end to end: a YAML space file runs as a tiny sweep ---


def test_a_yaml_space_file_runs_and_conditional_members_resolve(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # relative space_file paths resolve against the current directory
    _yaml(
        tmp_path,
        """
        method: sobol
        metric: {name: val_mae, goal: minimize}
        num_samples: 4
        parameters:
          train.schedule: {values: [cosine, constant], probabilities: [0.5, 0.5]}
          train.min_lr_ratio: {distribution: uniform, min: 0.05, max: 0.2, when: {train.schedule: cosine}}
          train.plateau_patience: {distribution: int_uniform, min: 1, max: 3, when: {train.schedule: constant}}
          train.lr: {distribution: log_uniform_values, min: 3.0e-03, max: 3.0e-02}
        """,
    )
    c = tiny_config()
    c.sweep.space_file = "space.yaml"
    res = jaxexp.sweep(c, str(tmp_path / "wd"))
    assert res.metric == "val_mae" and res.config.sweep.method == "sobol" and res.config.sweep.space_file == ""
    members = pd.read_csv(tmp_path / "wd" / "members.csv")
    assert len(members) == 4 and set(members["train.schedule"]) == {"cosine", "constant"}
    cosine = members["train.schedule"] == "cosine"
    assert members.loc[cosine, "train.plateau_patience"].isna().all()
    assert members.loc[~cosine, "train.min_lr_ratio"].isna().all()
    assert members.loc[cosine, "train.min_lr_ratio"].notna().all()
    assert "train.min_lr_ratio" in (tmp_path / "wd" / "members.csv").read_text().splitlines()[0]
    for row in members.to_dict("records"):
        cfg = res.member_config(row["member"])
        if row["train.schedule"] == "cosine":
            assert cfg.train.min_lr_ratio == pytest.approx(row["train.min_lr_ratio"])
            assert cfg.train.plateau_patience == c.train.plateau_patience  # inactive: the base value
        else:
            assert cfg.train.min_lr_ratio == c.train.min_lr_ratio
            assert cfg.train.plateau_patience == int(row["train.plateau_patience"])
    # a row of members.csv (empty cells included) re-runs to the same member
    row = members[~cosine].iloc[[0]][["member", "config_id", "seed", *[k for k in members if k.startswith("train.")]]]
    again = jaxexp.run_members(c, row).members.iloc[0]
    orig = res.members.set_index("member").loc[int(row["member"].iloc[0])]
    for col in ("best_val_mae", "final_val_mse", "best_epoch"):
        assert np.isclose(float(again[col]), float(orig[col]), rtol=1e-4, atol=1e-6), col


def test_a_space_file_that_is_not_utf8_is_one_error(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_bytes(b"method: grid\nparameters:\n  train.lr:\n    values: [0.1, \xff]\n")
    _, errors = spacefile.check(str(path))
    assert errors == [f"{path}: not UTF-8 text (byte 55); save the file as UTF-8"]
