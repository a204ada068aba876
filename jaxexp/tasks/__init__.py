"""Task sources: built-in generators, user files, bundled datasets."""

from __future__ import annotations

import functools
import json

from jaxexp.errors import ConfigError
from jaxexp.tasks import bundled, files, synthetic
from jaxexp.tasks.base import KINDS, METRICS, Task, make_task, standardize

NAMES = ("regression", "grouped", "classification", "file", "digits", "diabetes")

__all__ = ["KINDS", "METRICS", "NAMES", "Task", "kind_of", "load_task", "make_task"]


def kind_of(cfg) -> str:
    """The task kind known from the config alone (before loading any data)."""
    if cfg.name not in NAMES:
        raise ConfigError(f"task.name: unknown task {cfg.name!r}; use one of {', '.join(NAMES)}")
    if cfg.name == "file":
        if cfg.kind not in KINDS:
            raise ConfigError(f"task.kind: unknown kind {cfg.kind!r}; use 'regression' or 'classification'")
        return cfg.kind
    regression = ("regression", "grouped", "diabetes")
    return "regression" if cfg.name in regression else "classification"


@functools.lru_cache(maxsize=8)
def _load(cfg_json: str) -> Task:
    from ml_collections import ConfigDict

    cfg = ConfigDict(json.loads(cfg_json))
    kind_of(cfg)
    if cfg.name == "regression":
        task = synthetic.regression(cfg.n_train, cfg.n_val, cfg.n_features, cfg.noise, cfg.seed)
    elif cfg.name == "grouped":
        task = synthetic.grouped(cfg.n_train, cfg.n_val, cfg.n_features, cfg.noise, cfg.seed)
    elif cfg.name == "classification":
        if cfg.n_classes < 2:
            raise ConfigError(f"task.n_classes: must be >= 2 (got {cfg.n_classes})")
        task = synthetic.classification(cfg.n_train, cfg.n_val, cfg.n_features, cfg.n_classes, cfg.noise, cfg.seed)
    elif cfg.name == "file":
        task = files.load(cfg)
    elif cfg.name == "digits":
        task = bundled.digits(cfg.val_fraction, cfg.seed)
    else:
        task = bundled.diabetes(cfg.val_fraction, cfg.seed)
    if cfg.standardize:
        task = standardize(task)
        if "noise_floor_mse" in task.info and not task.info.get("target_units"):  # in standardised units
            task.info["noise_floor_mse"] /= task.info["target_std"][0] ** 2
    return task


def load_task(cfg) -> Task:
    """Loads (and caches) the task described by a ``task`` config section."""
    if cfg.name in ("regression", "grouped", "classification"):
        for field in ("n_train", "n_val", "n_features"):
            if cfg[field] < 1:
                raise ConfigError(f"task.{field}: must be >= 1 (got {cfg[field]})")
        if cfg.noise < 0:
            raise ConfigError(f"task.noise: must be >= 0 (got {cfg.noise})")
    return _load(json.dumps(cfg.to_dict(), sort_keys=True, default=list))
