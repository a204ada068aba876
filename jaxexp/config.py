"""The config schema: defaults, which fields are traced, validation.

Every config file starts from ``default_config()`` and changes what it needs,
so every field exists (``lock_config`` then turns a misspelt override into an
error) and every field has one documented meaning.

*Traced* fields are per-member values fed to the compiled program as arrays
with a leading population axis; changing them never recompiles: the engine's
``TRACED`` ``train.*`` fields and the workload's ``traced`` hyperparameters.
Every other field (``train.*``, the workload's ``static`` ones) is *static*:
members that agree on all static fields form a bucket and share one compiled
program.
"""

from __future__ import annotations

import difflib
import json
import math
from typing import Any

import ml_collections

from jaxexp import search
from jaxexp import workload as workloadmod
from jaxexp.core import train_hparams
from jaxexp.core.train_hparams import OPTIMIZERS, SCHEDULES  # noqa: F401 - part of this module's API
from jaxexp.errors import ConfigError

# Traced fields of the engine: dotted path -> dtype of the per-member array (declared in
# ``jaxexp.core.train_hparams`` with their defaults and ranges).
TRACED: dict[str, str] = {p: h.dtype for p, h in train_hparams.HPARAMS.items()}

# Fields that neither change the program nor a member's numbers.
NON_PROGRAM = ("name", "sweep", "engine", "seed", "metric", "goal", "workload")


def default_config(workload=None) -> ml_collections.ConfigDict:
    """The full schema with defaults; config files modify a copy of it.

    workload: an import path, a ``.py`` file or a module (see
    ``jaxexp.workload``; None = the built-in MLP). Its declared hyperparameters
    become fields at their names (``width``, ``model.hidden``), with their defaults.
    """
    wl = workloadmod.load(workload)
    c = ml_collections.ConfigDict()
    c.name = "run"
    c.workload = wl.spec  # the workload module: an import path or a .py file
    c.seed = 0  # base seed: every member key is fold_in(fold_in(key(seed), member seed), member id)
    c.metric = "val_loss"  # selection metric (a column of history.csv)
    c.goal = "min"  # "min" or "max"

    c.train = _train_fields()
    c.sweep = _sweep_fields()
    c.engine = _engine_fields()
    for path, h in wl.hparams.items():
        *parents, leaf = path.split(".")
        node = c
        for part in parents:
            if part not in node:
                node[part] = ml_collections.ConfigDict()
            node = node[part]
        if leaf in node:
            raise ConfigError(f"{wl.name}.HPARAMS[{path!r}]: the engine has a field {path}; choose another name")
        node[leaf] = h.default
    if wl.metric is not None:
        c.metric, c.goal = wl.metric
    c.lock()  # a misspelt field in a config file is an error, not a silent new field
    return c


def _train_fields() -> ml_collections.ConfigDict:
    """``train.*``: the optimizer, schedule, batches, early stopping and plateau."""
    t = ml_collections.ConfigDict()
    t.optimizer = "adamw"
    t.batch_size = 128
    for path, h in train_hparams.HPARAMS.items():  # the traced ones, with their declared defaults
        t[path.split(".", 1)[1]] = h.default
    return t


def _sweep_fields() -> ml_collections.ConfigDict:
    """``sweep.*``: the space, the strategy and its settings, seeds, recipes."""
    sw = ml_collections.ConfigDict()
    sw.method = "grid"  # grid | random | sobol (scrambled Sobol points through each parameter's inverse CDF)
    sw.num_samples = 0  # random/sobol: number of configurations
    sw.seeds = 1  # seeds per configuration: member seeds 0..seeds-1
    sw.space = ml_collections.ConfigDict()  # see jaxexp.search.space
    # A W&B-style YAML space file (see jaxexp.search.spacefile; relative to the current
    # directory). When set, it replaces sweep.space, and its method, num_samples and
    # metric {name, goal} replace the config's; config.json then holds the space itself.
    sw.space_file = ""
    sw.top_k = 5  # configurations in report.md
    # Named recipes: {name: {section: {field: value}}}; each recipe is crossed with
    # the space and the seeds, and report.md compares every recipe with ``baseline``.
    # Recipes run in name order (ConfigDict sorts its keys).
    sw.recipes = ml_collections.ConfigDict()
    sw.baseline = ""  # recipe the others are compared with ("" = the first by name)
    # Successive halving: at each rung epoch keep the top 1/eta of the members that
    # reached it (by the monitored metric); the others are pruned and their slots
    # refilled from the queue (see jaxexp.search.strategies). () = off.
    sw.halving_rungs = ()
    sw.halving_eta = 3.0
    # Population-based training: every pbt_interval epochs the worst pbt_fraction of
    # the running members copy the parameters and optimizer state of a random one of
    # the best pbt_fraction, take its pbt_params and multiply each by a random one of
    # pbt_perturb (see jaxexp.search.strategies). 0 = off.
    sw.pbt_interval = 0
    sw.pbt_fraction = 0.25
    sw.pbt_perturb = (0.8, 1.25)
    sw.pbt_params = ("train.lr",)
    # "sweep": the space's grid/random/sobol configurations; "tpe": Optuna's TPE
    # sampler, ask/tell in batches (jaxexp.search.tpe; the optional extra jaxexp[tpe]); "mutation": a mutation tree
    # (jaxexp.search.mutation): generation 0 is the base config, each later generation
    # mutates one parameter of sweep.space in each of `slots` nodes.
    sw.strategy = "sweep"
    sw.generations = 3  # mutation: generations after the base config; tpe: ask batches
    sw.slots = 4  # mutation: nodes per generation; tpe: trials per batch
    sw.parent_pool = 2  # mutation: parents are the best `parent_pool` nodes so far
    sw.parent_ids = ()  # mutation: parents of the next generation this command runs (node ids)
    sw.hypothesis = ""  # mutation: recorded in lineage.csv for the generations this command runs
    sw.plan = ""  # mutation: a YAML plan of the next batch (per slot: parent, mutate, hypothesis, target)
    sw.mutation_scale = 2.0  # mutation: log ranges move by x or / this; linear ones by a quarter range
    return sw


def _engine_fields() -> ml_collections.ConfigDict:
    """``engine.*``: segments, slots, devices, outputs, checkpoints, compile cache."""
    e = ml_collections.ConfigDict()
    e.segment_epochs = 5  # epochs per compiled segment (progress/checkpoint granularity)
    e.chunk_size = 1024  # max members resident at once per bucket (the rest wait in its queue)
    # Resident members are also capped by the compiled segment's measured memory:
    # a fraction of each device's memory ("0.75"), an amount per device ("8GiB"), or "off".
    e.memory_budget = "0.75"
    e.num_devices = 0  # 0 = all local devices
    e.group_size = 0  # members vmapped together per device (0 = auto, cache-sized)
    e.progress = True
    e.overwrite = False  # allow writing into a workdir that already holds results
    # Drop finished (early-stopped, diverged, done) members between segments, into
    # a few padded size classes: a sweep where most members stop early ends early.
    # "auto": only when the measured time saved exceeds the compile of the smaller
    # size (estimated from this bucket's compiles); "always"; "never".
    e.compact = "auto"
    e.plots = True  # write PNG plots (matplotlib) next to report.md
    # TensorBoard event files in WORKDIR/tb/ (one run per member, HParams view); needs the
    # 'tensorboard' extra (tensorboardX), otherwise a one-line note says how to get them.
    e.tensorboard = True
    # Orbax checkpoints in WORKDIR/checkpoints, one per segment: a killed sweep
    # resumes where it stopped when the same command is run again.
    e.checkpoint = True
    # At most one checkpoint per this many seconds of training (0 = after every segment);
    # the first segment, a stop signal, the end of each bucket and of the sweep always save, so only
    # a kill -9 redoes up to this much work (with identical results).
    e.checkpoint_every_s = 10.0
    e.max_to_keep = 2  # latest checkpoints kept
    e.keep_best = True  # also keep the step whose segment had the best metric
    e.allow_resume_changes = False  # resume although engine.segment_epochs/group_size changed
    # Persistent XLA compilation cache: "auto" ($JAXEXP_CACHE_DIR, else
    # ~/.cache/jaxexp/xla), a directory, or "off". A re-run or resume loads its
    # programs instead of compiling them.
    e.compile_cache = "auto"
    return e


def goal_sign(goal: str) -> float:
    """+1 where smaller metrics are better (goal "min"), -1 for "max"."""
    return 1.0 if goal == "min" else -1.0


def get_path(config: Any, path: str) -> Any:
    node = config
    for part in path.split("."):
        node = node[part]
    return node


def leaf_paths(d: dict, prefix: str = "") -> list[str]:
    """Dotted paths of the non-dict leaves of a nested dict."""
    out = []
    for k, v in d.items():
        p = f"{prefix}{k}"
        out.extend(leaf_paths(v, p + ".") if isinstance(v, dict) else [p])
    return out


def flatten(d: dict) -> dict:
    """{dotted path: value} of the non-dict leaves of a nested dict."""
    return {p: get_path(d, p) for p in leaf_paths(d)}


def program_fields(config: ml_collections.ConfigDict) -> list[str]:
    """Dotted paths of all fields that may be swept (task/model/train)."""
    return [p for p in leaf_paths(config.to_dict()) if p.split(".")[0] not in NON_PROGRAM]


def with_values(config: ml_collections.ConfigDict, values: dict[str, Any]) -> ml_collections.ConfigDict:
    """A copy of ``config`` with dotted-path values set, type-checked by ConfigDict."""
    out = ml_collections.ConfigDict(config.to_dict())
    for path, value in values.items():
        *parents, leaf = path.split(".")
        node = out
        for part in parents:
            node = node[part]
        old = node[leaf]
        if isinstance(old, tuple) and isinstance(value, list):
            value = tuple(value)
        if isinstance(old, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        try:
            node[leaf] = value
        except (TypeError, ValueError) as e:
            raise ConfigError(
                f"{path}: value {value!r} has the wrong type for this field (default {old!r}); {e}"
            ) from None
    return out


def from_dict(d: dict) -> ml_collections.ConfigDict:
    """A config from its ``to_dict()`` / JSON form (lists back to tuples where the
    schema has tuples); ``sweep.space`` and ``sweep.recipes`` are taken whole."""
    free = ("sweep.space", "sweep.recipes")
    values = {p: v for p, v in flatten(d).items() if not p.startswith(free) and p != "workload"}
    out = with_values(default_config(d.get("workload") or None), values)
    out.unlock()
    for path in free:
        section, leaf = path.split(".")
        out[section][leaf] = d.get(section, {}).get(leaf, {})
    out.lock()
    return out


workload_of = workloadmod.of_config


def traced_fields(config) -> dict[str, str]:
    """Every traced field of a config: the engine's ``TRACED`` and the workload's
    traced hyperparameters -> dtype of the per-member array."""
    return {**TRACED, **{p: h.dtype for p, h in workload_of(config).traced.items()}}


def static_key(config: ml_collections.ConfigDict) -> str:
    """Canonical JSON of the static program fields: the bucket key."""
    traced = traced_fields(config)
    static = {p: v for p, v in flatten(config.to_dict()).items() if p.split(".")[0] not in NON_PROGRAM}
    static = {p: v for p, v in static.items() if p not in traced}
    return json.dumps({"workload": config.workload, **static}, sort_keys=True, default=list)


def check_param_names(config: ml_collections.ConfigDict, names: list[str], where: str = "sweep.space") -> None:
    fields = program_fields(config)
    for name in names:
        if name not in fields:
            near = difflib.get_close_matches(name, fields, n=1)
            hint = f"; did you mean '{near[0]}'?" if near else "; sweep the train fields or the workload's HPARAMS"
            raise ConfigError(f"{where}.{name}: no config field '{name}'{hint}")


def validate_member(c: ml_collections.ConfigDict) -> None:
    """Checks one resolved member config; raises ConfigError naming the field."""

    def need(cond: bool, field: str, msg: str) -> None:
        if not cond:
            raise ConfigError(f"{field}: {msg} (got {get_path(c, field)!r})")

    need(c.goal in ("min", "max"), "goal", "must be 'min' or 'max'")
    for path, value in flatten(c.to_dict()).items():  # inf/nan would silently diverge or never stop
        values = value if isinstance(value, tuple) else (value,)
        if path.split(".")[0] not in NON_PROGRAM and any(isinstance(v, float) and not math.isfinite(v) for v in values):
            raise ConfigError(f"{path}: must be a finite number (got {value!r})")
    need(c.train.optimizer in OPTIMIZERS, "train.optimizer", f"use one of {OPTIMIZERS}")
    need(c.train.batch_size >= 1, "train.batch_size", "must be >= 1")
    for path, h in train_hparams.HPARAMS.items():
        workloadmod.check_value(path, h, get_path(c, path))
    wl = workload_of(c)
    for path, h in wl.hparams.items():
        workloadmod.check_value(path, h, get_path(c, path))
    if wl.check is not None:
        msg = wl.check(wl.static_config(c))
        if msg:  # a returned message, as a field's check= returns one
            raise ConfigError(f"{wl.name}.check: {msg}")


def validate_top(c: ml_collections.ConfigDict) -> None:
    """Checks the fields that are not per member."""
    if not 0 <= c.seed < 2**32:
        raise ConfigError(f"seed: must be in [0, 2**32) (got {c.seed})")
    if c.sweep.seeds < 1:
        raise ConfigError(f"sweep.seeds: must be >= 1 (got {c.sweep.seeds})")
    from jaxexp.search import strategies

    strategies.check_halving(c.sweep.halving_rungs, c.sweep.halving_eta)
    strategies.check_pbt(c)
    if c.sweep.strategy not in search.STRATEGIES:
        search.strategy(c.sweep.strategy)  # ConfigError naming the strategies
    if c.engine.segment_epochs < 1:
        raise ConfigError(f"engine.segment_epochs: must be >= 1 (got {c.engine.segment_epochs})")
    if not c.engine.checkpoint_every_s >= 0:
        raise ConfigError(f"engine.checkpoint_every_s: must be >= 0 seconds (got {c.engine.checkpoint_every_s})")
    if c.engine.chunk_size < 1:
        raise ConfigError(f"engine.chunk_size: must be >= 1 (got {c.engine.chunk_size})")
    if c.engine.group_size < 0:
        raise ConfigError(f"engine.group_size: must be >= 0 (got {c.engine.group_size}); 0 = auto")
    if c.engine.compact not in ("auto", "always", "never"):
        raise ConfigError(f"engine.compact: must be 'auto', 'always' or 'never' (got {c.engine.compact!r})")
    if c.engine.max_to_keep < 1:
        raise ConfigError(f"engine.max_to_keep: must be >= 1 (got {c.engine.max_to_keep})")
    if c.engine.num_devices < 0:
        raise ConfigError(f"engine.num_devices: must be >= 0 (got {c.engine.num_devices})")
