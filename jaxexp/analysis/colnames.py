"""The names that give a trials table's columns a role (module doc of
:mod:`jaxexp.analysis.columns`): ids (``ID_NAMES``, ``CONFIG_ID_NAMES``), seeds
(``SEED_NAMES``), bookkeeping left out (``BOOKKEEPING``, its prefixes), words that
say "hyperparameter" (``HP_WORDS``) or "metric" (``METRIC_LIKE``); the columns a
flag names (:func:`names`) and the seeds and ids among parameters named by a
table's format (:func:`split_named`)."""

from __future__ import annotations

import re
from typing import NamedTuple

import pandas as pd

from jaxexp.errors import ConfigError

SEED_NAMES = frozenset(
    "seed seeds random_seed random_state run_seed rep reps repeat repeats repetition replicate replicates "
    "replicate_id rep_id repeat_id replica_id".split()
)
CONFIG_ID_NAMES = (
    "config_id",
    "configuration_id",
    "config",
    "configuration",
    "config_idx",
    "config_index",
    "config_num",
    "config_number",
    "cfg",
    "cfg_id",
)
ID_NAMES = frozenset(
    {
        *CONFIG_ID_NAMES,
        # Optuna, W&B, Ray Tune, jaxexp, scripts
        "number",
        "name",
        "id",
        "run",
        "run_id",
        "run_name",
        "run_number",
        "run_idx",
        "trial",
        "trial_id",
        "trial_name",
        "trial_number",
        "trial_idx",
        "trial_index",
        "experiment_id",
        "experiment_tag",
        "sweep_id",
        "job_id",
        "task_id",
        "uuid",
        "index",
        "idx",
        "member",
        "node_id",
        "parent_id",
        "node",
        "parent",
        "logdir",
        "path",
        "checkpoint",
        "checkpoint_dir_name",
    }
)
BOOKKEEPING = frozenset(
    {
        "status",
        "state",
        # Optuna
        "datetime_start",
        "datetime_complete",
        "duration",
        # W&B
        "created",
        "runtime",
        "sweep",
        "user",
        "tags",
        "notes",
        "group",
        "jobtype",
        "job_type",
        "commit",
        # Ray Tune
        "date",
        "timestamp",
        "time_this_iter_s",
        "time_total_s",
        "time_since_restore",
        "timesteps_total",
        "timesteps_since_restore",
        "iterations_since_restore",
        "episodes_total",
        "training_iteration",
        "pid",
        "hostname",
        "host",
        "node_ip",
        "done",
        "should_checkpoint",
        # progress counters, jaxexp's members.csv and trees
        "epoch",
        "step",
        "global_step",
        "iteration",
        "generation",
        "mutation",
        "hypothesis",
        "metric_std",
        "n_seeds",
        "epochs_run",
        "stop_epoch",
        "diverged_epoch",
        "pruned_epoch",
        "best_epoch",
        "degradation",
        "finished",
    }
)
# A jaxexp mutation tree's lineage.csv (``jaxexp.search.mutation.LINEAGE_COLUMNS``): recognised by
# these columns together, its slot, notes and counts are bookkeeping too.
LINEAGE_SIGNATURE = frozenset({"node", "parent", "generation", "mutation", "hypothesis"})
LINEAGE_BOOKKEEPING = frozenset({"slot", "hypothesis_test", "target", "seeds_ok", "observation", "verdict"})
BOOKKEEPING_PREFIXES = ("_", "user_attrs_", "system_attrs_", "datetime_", "best_", "final_", "init_")
# Parts of names that say "hyperparameter": such integer columns are never refused as ambiguous.
HP_WORDS = re.compile(
    r"layer|depth|width|dim|hidden|head|batch|epochs|unit|channel|filter|kernel|block|stage|degree|neighbo|"
    r"estimator|tree|lea(f|ves)|bins|window|patience|warmup|size|^n_|^num|^max_|^min_|^use_|_n$",
    re.I,
)
# Names that look like metrics of another split, not parameters (guessed tables only).
METRIC_LIKE = re.compile(r"loss|accuracy|(^|[._/-])(acc|mse|mae|rmse|auc|f1|error)($|[._/-])", re.I)


class Roles(NamedTuple):
    """What ``guess`` makes of a table's columns."""

    params: list[str]
    ids: list[str]
    seeds: list[str]


def norm(name) -> str:
    return str(name).strip().lower().replace(" ", "_").replace("-", "_")


def is_seed_name(name) -> bool:
    low = norm(name)
    last = re.split(r"[./]", low)[-1]
    return last in SEED_NAMES or last.endswith("_seed")


def is_id_name(name) -> bool:
    low = norm(name)
    return low in ID_NAMES or low.startswith("unnamed:")  # pandas' index written by to_csv()


def is_bookkeeping(name, lineage: bool = False) -> bool:
    """Left out of a table's roles; ``lineage``: the table is a mutation tree's lineage.csv."""
    low = norm(name)
    return low in BOOKKEEPING or low.startswith(BOOKKEEPING_PREFIXES) or (lineage and low in LINEAGE_BOOKKEEPING)


def is_lineage(table: pd.DataFrame) -> bool:
    """A jaxexp mutation tree's lineage.csv (its signature columns)."""
    return LINEAGE_SIGNATURE <= {norm(c) for c in table.columns}


def names(value, flag: str, table: pd.DataFrame, metric: str | None = None) -> list[str]:
    """Column names of a flag (``"a,b"`` or a list), each checked against the table."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return []
    out = [v.strip() for v in value.split(",")] if isinstance(value, str) else [str(v) for v in value]
    out = [v for v in out if v]
    missing = [v for v in out if v not in table.columns]
    if missing:
        cols = ", ".join(map(str, table.columns[:20]))
        raise ConfigError(f"{flag}: no column {missing[0]!r} in the table; its columns: {cols}")
    if metric is not None and metric in out:
        raise ConfigError(f"{flag}: {metric!r} is the metric; name other columns")
    return out


def split_named(params: list[str], keep: list | None = None) -> Roles:
    """Parameters named by a table's format (Optuna ``params_*``, W&B ``config.*``): those
    named like a seed or an id are moved out (unless in ``keep``)."""
    out, ids, seeds = [], [], []
    for p in params:
        if keep and p in keep:
            out.append(p)
        elif is_seed_name(p):
            seeds.append(p)
        elif is_id_name(p):
            ids.append(p)
        else:
            out.append(p)
    return Roles(out, ids, seeds)
