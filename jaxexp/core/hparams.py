"""Per-member traced hyperparameters as the arrays a compiled program takes."""

from __future__ import annotations

import numpy as np

from jaxexp import config as cfgmod
from jaxexp import workload as workloadmod
from jaxexp.core import train_hparams
from jaxexp.errors import ConfigError


def encode_hparams(member_cfgs: list, dataset: workloadmod.Dataset) -> dict:
    """Stacks the traced fields of member configs into numpy arrays [P] (a vector
    hyperparameter, such as ``train.group_multipliers``: [P, length])."""
    wl = cfgmod.workload_of(member_cfgs[0])
    declared = {**train_hparams.HPARAMS, **wl.traced}
    encoders = {p: h.encode for p, h in declared.items() if h.encode is not None}
    out = {}
    for path, dtype in cfgmod.traced_fields(member_cfgs[0]).items():
        values = [cfgmod.get_path(c, path) for c in member_cfgs]
        if path in encoders:
            values = [encoders[path](v, dataset) for v in values]
        try:
            out[path] = np.asarray(values, dtype=dtype)
        except (ValueError, TypeError, OverflowError) as e:  # ragged vectors, text, out of the dtype's range
            raise ConfigError(f"{path}: the members' values do not form one {dtype} array ({e})") from None
    return out


def one_member(config, dataset: workloadmod.Dataset) -> dict:
    """The traced values of one member config: {field: numpy scalar (or vector)}."""
    return {k: v[0] for k, v in encode_hparams([config], dataset).items()}
