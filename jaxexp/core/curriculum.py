"""Curriculum over example groups of three difficulty levels, as traced hyperparameters.

A workload whose data carry a per-row ``group`` id and difficulty ``level``
(0 easy, 1 medium, 2 hard) adds ``HPARAMS`` to its own and weighs its loss
rows by ``row_weights``; members with different phase boundaries, ramps and
per-group multipliers then share one compiled program.
"""

from __future__ import annotations

import jax
import numpy as np

from jaxexp.core import recipes
from jaxexp.errors import ConfigError
from jaxexp.workload import traced


def group_multipliers(values: tuple, n_groups: int, names: tuple[str, ...] = ()) -> np.ndarray:
    """``train.group_multipliers`` as a [groups] vector (() = all ones)."""
    if not values:
        return np.ones(n_groups, np.float32)
    if len(values) != n_groups:
        shown = f" ({', '.join(names)})" if names else ""
        raise ConfigError(
            f"train.group_multipliers: {len(values)} value(s) but the task has {n_groups} group(s){shown}; "
            "give one per group or () for all 1"
        )
    return np.asarray(values, np.float32)


def _nonneg(v) -> str | None:
    return None if v >= 0 else "must be >= 0"


def _multipliers(v) -> str | None:
    ok = isinstance(v, tuple) and all(isinstance(x, (int, float)) and not isinstance(x, bool) and x >= 0 for x in v)
    return None if ok else "must be non-negative numbers, one per task group, e.g. (1.0, 1.3)"


# Curriculum epochs count from 0. Easy groups always train; medium from
# curriculum_medium_epoch; hard from curriculum_hard_epoch with weight
# min(cap, start + (epoch - origin) * slope) (origin -1 = curriculum_hard_epoch).
HPARAMS = {
    "train.curriculum_medium_epoch": traced(0, check=_nonneg, doc="epoch (0-based) from which medium groups train"),
    "train.curriculum_hard_epoch": traced(0, check=_nonneg, doc="epoch from which hard groups train"),
    "train.hard_weight_start": traced(1.0, check=_nonneg, doc="hard-group loss weight at hard_weight_origin"),
    "train.hard_weight_origin": traced(-1, doc="epoch where the ramp starts, -1 = curriculum_hard_epoch"),
    "train.hard_weight_slope": traced(0.0, doc="growth of the hard-group weight per epoch"),
    "train.hard_weight_cap": traced(1.0, check=_nonneg, doc="maximum hard-group weight"),
    "train.group_multipliers": traced(
        (),
        check=_multipliers,
        encode=lambda v, data: group_multipliers(v, len(data.groups), data.groups),
        doc="per-group loss multipliers, () = all 1 (a vector [groups])",
    ),
}


def row_weights(hp: dict, level: jax.Array, group: jax.Array) -> jax.Array:
    """Loss weight of every row at ``hp["epoch"]``: [rows] from int level/group ids [rows]."""
    return recipes.curriculum_weights(
        hp["epoch"],
        level,
        hp["train.group_multipliers"][group],
        medium_epoch=hp["train.curriculum_medium_epoch"],
        hard_epoch=hp["train.curriculum_hard_epoch"],
        start=hp["train.hard_weight_start"],
        slope=hp["train.hard_weight_slope"],
        cap=hp["train.hard_weight_cap"],
        origin=hp["train.hard_weight_origin"],
    )
