"""The engine's train.* hyperparameters are declared once (jaxexp.core.train_hparams):
the schema, the range checks, PBT and the optimizer read that table."""

import os

import numpy as np
import pytest

import jaxexp
from jaxexp import config as cfgmod
from jaxexp.core import train_hparams
from jaxexp.errors import ConfigError
from jaxexp.search import strategies

HERE = os.path.dirname(__file__)


def test_the_schema_takes_defaults_and_dtypes_from_the_declarations():
    c = jaxexp.default_config()
    for path, h in train_hparams.HPARAMS.items():
        assert cfgmod.get_path(c, path) == h.default, path
        assert cfgmod.TRACED[path] == h.dtype, path
    cfgmod.validate_member(c)  # every default is valid


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("train.lr", 0.0, "train.lr: must be > 0 (got 0.0)"),
        ("train.b2", 1.0, "train.b2: must be in [0, 1) (got 1.0)"),
        ("train.plateau_factor", 0.0, "train.plateau_factor: must be in (0, 1] (got 0.0)"),
        ("train.early_stop_patience", -1, "train.early_stop_patience: must be >= 0 (0 = off) (got -1)"),
        ("train.schedule", "linear", "train.schedule: use one of ('constant', 'cosine', 'step', 'cosine_restarts')"),
    ],
)
def test_a_value_outside_its_declared_range_is_one_line(field, value, message):
    c = jaxexp.default_config()
    _set(c, field, value)
    with pytest.raises(ConfigError) as e:
        cfgmod.validate_member(c)
    assert str(e.value).startswith(message)


def _set(c, path, value):
    *parents, leaf = path.split(".")
    node = c
    for p in parents:
        node = node[p]
    node[leaf] = value


def test_optimizer_arguments_come_from_the_declarations():
    hp = {p: np.float32(i + 1) for i, p in enumerate(train_hparams.HPARAMS)}
    args = train_hparams.optimizer_args(hp, learning_rate=7.0)
    assert set(args) == {"learning_rate", "b1", "b2", "weight_decay"} == set(train_hparams.OPTIMIZER_ARGS)
    assert args["learning_rate"] == 7.0 and args["b2"] == hp["train.b2"]
    assert strategies.PBT_FIELDS == ("train.lr", "train.weight_decay", "train.b1", "train.b2", "train.grad_clip")


def test_a_workload_hyperparameter_declared_pbt_false_is_never_perturbed(tmp_path):
    src = open(os.path.join(HERE, "workloads", "tiny_user.py")).read()
    src = src.replace('"dropout": jaxexp.traced(0.1, 0.0, 0.9)', '"dropout": jaxexp.traced(0.1, 0.0, 0.9, pbt=False)')
    assert "pbt=False" in src
    path = tmp_path / "no_pbt_dropout.py"
    path.write_text(src)
    c = jaxexp.default_config(str(path))
    fields = strategies.pbt_fields(c)
    assert "smooth_weight" in fields and fields["smooth_weight"] == (0.0, 10.0)
    assert "dropout" not in fields and "train.lr" in fields
    c.sweep.pbt_interval = 2
    c.sweep.pbt_params = ("dropout",)
    with pytest.raises(ConfigError, match=r"sweep.pbt_params: \['dropout'\] cannot be perturbed"):
        strategies.check_pbt(c)
