"""Space files, conditional parameters, validation and Sobol sampling (jaxexp.search.space, jaxexp.search.spacefile).

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
from jaxexp.errors import ConfigError
from jaxexp.search import space, spacefile, validate

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


@pytest.mark.slow
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


@pytest.mark.slow
def test_cli_validate_prints_the_space_and_its_buckets():
    p = _cli("validate", "configs/space_v3.yaml", "--config=jaxexp/configs/quickstart.py")
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
    from jaxexp.run import population

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


@pytest.mark.slow
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


# --- a space of any project: `jaxexp validate FILE.yaml` alone does not check names ---

WANDB_SPACE = """
program: train.py
name: visual_classifier_v3
method: random
metric: {name: val_acc, goal: maximize}
parameters:
  learning_rate: {distribution: log_uniform_values, min: 5.0e-05, max: 3.0e-04}
  batch_size: {values: [8, 16, 32]}
  encoder: {values: [cnn, context], probabilities: [0.75, 0.25]}
  ctx_d_model: {values: [128, 256, 512], when: {encoder: context}}
  depth: {distribution: int_uniform, min: 3, max: 10}
  use_scheduler: {value: true}
"""


def test_a_space_of_any_project_validates_on_its_own(tmp_path):
    path = _yaml(tmp_path, WANDB_SPACE)
    lines, errors = validate.describe_file(path)
    assert errors == []
    assert "names not checked against a config" in lines[0] and "--config=CFG.py" in lines[0]
    assert lines[1] == "not checked (W&B launch keys): program, name"
    assert lines[2] == "method: random; metric: val_acc (max)"
    row = next(ln for ln in lines if ln.startswith("ctx_d_model"))
    assert "encoder in {context}" in row and 21 <= int(row.split()[-1].rstrip("%")) <= 29  # of 1000 draws (sd 1.4%)
    assert "cnn (0.75), context (0.25)" in next(ln for ln in lines if ln.startswith("encoder"))
    # the choices: 3 batch sizes x (cnn + context x 3 widths) x 1
    assert lines[-1].startswith("size: num_samples not set") and "the choices make 12 combination(s)" in lines[-1]
    # a grid is counted over the active parameters
    grid = _yaml(
        tmp_path,
        WANDB_SPACE.replace("method: random", "method: grid").replace(
            "{distribution: log_uniform_values, min: 5.0e-05, max: 3.0e-04}", "{values: [1.0e-4, 3.0e-4]}"
        ),
        "g.yaml",
    )
    lines, errors = validate.describe_file(grid)
    assert errors == [] and lines[-1] == "size: a grid of 192 configurations (over the active parameters)"  # 2*3*4*8
    # structure, ranges, probabilities and conditions are still checked, every error one line
    bad = WANDB_SPACE.replace("[0.75, 0.25]", "[0.75, 0.35]").replace("{encoder: context}", "{encodr: context}")
    bad = bad.replace("min: 3, max: 10", "min: 10, max: 3") + "early_stop: 3\n"
    _, errors = validate.describe_file(_yaml(tmp_path, bad, "bad.yaml"))
    assert len(errors) == 4 and all("\n" not in e for e in errors), errors
    for fragment in (
        "unknown top-level key 'early_stop'",
        "sum to 1 (sum is 1.1)",
        "min (10) >= max (3)",
        "condition on unknown parameter 'encodr'",
    ):
        assert sum(fragment in e for e in errors) == 1, fragment
    # with a config its names are checked against it (and W&B's launch keys cannot be applied)
    _, errors = spacefile.check(path, tiny_config())
    assert any("parameters.learning_rate: no config field 'learning_rate'" in e for e in errors)
    assert any("unknown top-level key 'program'" in e for e in errors)


@pytest.mark.slow
def test_cli_validate_checks_names_only_against_a_given_config(tmp_path):
    path = _yaml(tmp_path, WANDB_SPACE)
    p = _cli("validate", path)
    assert p.returncode == 0, p.stderr
    assert "names not checked against a config" in p.stdout and "learning_rate  log_uniform" in p.stdout
    p = _cli("validate", path, "--config=jaxexp/configs/quickstart.py")
    assert p.returncode == 2 and "parameters.learning_rate: no config field 'learning_rate'" in p.stderr
    # an explicit flag that a space file would silently replace: one line, exit 2 (jaxexp.main notes the flags)
    p = _cli("validate", "configs/space_v3.yaml", "--config.train.epochs=3")
    assert p.returncode == 2 and p.stdout == "", p.stdout
    assert p.stderr.strip() == (
        "jaxexp: error: train.epochs: --config.train.epochs=3 but the space file configs/space_v3.yaml fixes "
        "train.epochs to 6; drop the flag or that value (a space never silently replaces an explicit flag)"
    )


# --- an explicit --config.FIELD flag is never silently replaced by a space ---


def test_a_space_never_silently_replaces_an_explicit_flag(tmp_path, monkeypatch):
    path = _yaml(
        tmp_path,
        """
        method: random
        num_samples: 4
        parameters:
          train.epochs: {value: 6}
          train.lr: {distribution: log_uniform_values, min: 1.0e-03, max: 3.0e-02}
          train.schedule: {values: [cosine, constant]}
          train.min_lr_ratio: {distribution: uniform, min: 0.0, max: 0.2, when: {train.schedule: cosine}}
        """,
    )
    c = tiny_config()
    c.sweep.space_file = path
    c.train.epochs, c.train.min_lr_ratio, c.sweep.num_samples = 3, 0.1, 2  # as the flags set them

    def refused(*fields):
        monkeypatch.setattr(spacefile, "CLI_OVERRIDES", frozenset(fields))
        found = spacefile.conflicts(c, spacefile.load(path, c) if c.sweep.space_file else None)
        if found:
            with pytest.raises(ConfigError) as e:
                spacefile.resolve(c)
            assert str(e.value) == found[0]
        else:
            spacefile.resolve(c)
        return found

    assert refused() == []  # the Python API: no flags, the space applies (as before)
    assert refused("train.epochs") == [
        f"train.epochs: --config.train.epochs=3 but the space file {path} fixes train.epochs to 6; "
        "drop the flag or that value (a space never silently replaces an explicit flag)"
    ]
    c.train.epochs = 6
    assert refused("train.epochs") == []  # the same value: no conflict
    (swept,) = refused("train.lr")
    assert swept.startswith("train.lr: --config.train.lr=0.01 has no effect: the space file") and "log_uniform" in swept
    assert refused("train.min_lr_ratio") == []  # conditional: the flag is its value where the condition is off
    (n,) = refused("sweep.num_samples")
    assert n.startswith("sweep.num_samples: --config.sweep.num_samples=2 but the space file") and "num_samples: 4" in n
    c.sweep.strategy = "mutation"  # a mutation tree's space bounds its mutations; the flag sets the base node
    assert refused("train.lr") == []
    # a config's own sweep.space (a .py config) likewise
    c.sweep.strategy, c.sweep.space_file = "sweep", ""
    c.sweep.space = {"train": {"epochs": space.fixed(20)}}
    (own,) = refused("train.epochs")
    assert own.startswith("train.epochs: --config.train.epochs=6 but sweep.space fixes train.epochs to 20")
    monkeypatch.setattr(spacefile, "CLI_OVERRIDES", frozenset({"train.epochs"}))
    _, errors = validate.describe(c)
    assert errors == [own]


def test_wandb_log_uniform_takes_exponents_and_values_spelling_takes_values(tmp_path):
    """W&B reads ``log_uniform`` bounds as natural-log exponents; ``log_uniform_values``
    as values. A file from W&B means what W&B means (groups included)."""
    path = tmp_path / "wb.yaml"
    path.write_text(
        "method: random\nnum_samples: 3\nparameters:\n"
        "  lr: {distribution: log_uniform, min: -9.210340371976182, max: -2.302585092994046}\n"
        "  wd: {distribution: log_uniform_values, min: 1.0e-5, max: 1.0e-2}\n"
        "  model:\n    parameters:\n"
        "      width: {distribution: q_log_uniform, min: 2.0794415416798357, max: 5.545177444479562, q: 1}\n"
    )
    sf = spacefile.check(str(path), standalone=True)[0]
    params = {p.name: p for p in space.parse(sf.space)}
    assert np.allclose([params["lr"].low, params["lr"].high], [1e-4, 1e-1])
    assert np.allclose([params["wd"].low, params["wd"].high], [1e-5, 1e-2])
    assert params["model.width"].kind == "q_log_uniform" and np.allclose(
        [params["model.width"].low, params["model.width"].high], [8, 256]
    )


def test_validate_counts_a_search_strategy_instead_of_refusing_its_ranges():
    from jaxexp.search import validate

    c = tiny_config(train={"lr": space.log_uniform(1e-4, 1e-1)})
    c.sweep.strategy = "tpe"
    c.sweep.generations, c.sweep.slots = 3, 4
    lines, errors = validate.describe(c)
    assert errors == [] and lines[1].startswith("strategy: tpe (3 batches of 4 trials")
    assert lines[-1].startswith("12 configurations x 1 seed(s) = 12 members in 1 static bucket(s)")
    c.sweep.strategy = "sweep"  # the same ranges as a grid: refused, with the fix
    assert "cannot be gridded" in validate.describe(c)[1][0]


@pytest.mark.parametrize(
    "metric, fragment",
    [
        ("{name: val_mse, goal: [min]}", "metric.goal: ['min'] is not a goal; use minimize or maximize"),
        ("{name: val_mse, goal: {a: 1}}", "metric.goal: {'a': 1} is not a goal; use minimize or maximize"),
        ("{name: val_mse, goal: true}", "metric.goal: True is not a goal"),
        ("{name: val_mse, goal: min, 1: x, b: y}", "metric: unknown key(s) [1, 'b']; give name and goal"),
    ],
)
def test_a_non_scalar_metric_goal_is_one_error_naming_the_field(tmp_path, metric, fragment):
    """Fuzzing found a list or mapping as ``metric.goal`` crashing the parser (unhashable)."""
    path = _yaml(tmp_path, f"metric: {metric}\nparameters: {{train.lr: {{value: 0.1}}}}\n")
    spacefile_, errors = spacefile.check(path)
    assert spacefile_ is None and len(errors) == 1
    assert errors[0].startswith(f"{path}: ") and fragment in errors[0] and "\n" not in errors[0]
    with pytest.raises(ConfigError, match="metric"):
        spacefile.load(path)
