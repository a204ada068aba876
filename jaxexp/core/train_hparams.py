"""The engine's traced hyperparameters (``train.*``), declared once with the
same ``traced`` declarations a workload's ``HPARAMS`` uses, and the optimizers
they feed.

A declaration gives the default, the dtype of the per-member array, the valid
range (``check``), whether population-based training may perturb it (``pbt``)
and the optax argument it feeds (``optimizer_arg``). The config schema, the
range checks, PBT and the optimizer all read this table: a new traced optimizer
hyperparameter is one line here plus its argument in the optimizer functions below.
"""

from __future__ import annotations

import optax

from jaxexp.workload import Hparam, traced

SCHEDULES = ("constant", "cosine", "step", "cosine_restarts")
OPTIMIZERS = ("adamw", "adam", "sgd")


def _over(low: float, note: str = ""):
    return lambda v: None if v > low else f"must be > {low:g}{note}"


def _from(low: float, note: str = ""):
    return lambda v: None if v >= low else f"must be >= {low:g}{note}"


def _rate(lo_open: bool, hi_open: bool):
    lo, hi = "(" if lo_open else "[", ")" if hi_open else "]"

    def check(v):
        ok = (v > 0 if lo_open else v >= 0) and (v < 1 if hi_open else v <= 1)
        return None if ok else f"must be in {lo}0, 1{hi}"

    return check


def _schedule(v):
    return None if v in SCHEDULES else f"use one of {SCHEDULES}"


def _no_pbt(default, check, doc: str, dtype: str | None = None, **kw) -> Hparam:
    return traced(default, check=check, doc=doc, dtype=dtype, pbt=False, **kw)


HPARAMS: dict[str, Hparam] = {
    "train.epochs": _no_pbt(10, _from(1), "epochs this member trains (masked beyond)", "int32"),
    "train.lr": traced(1e-3, check=_over(0), doc="peak learning rate", optimizer_arg="learning_rate"),
    "train.weight_decay": traced(
        1e-4, check=_from(0), doc="decoupled (AdamW/SGD) weight decay", optimizer_arg="weight_decay"
    ),
    "train.b1": traced(0.9, check=_rate(False, True), doc="Adam beta1 / SGD momentum", optimizer_arg="b1"),
    "train.b2": traced(0.999, check=_rate(False, True), doc="Adam beta2", optimizer_arg="b2"),
    "train.schedule": _no_pbt(
        "constant", _schedule, "index into SCHEDULES", "int32", encode=lambda v, _: SCHEDULES.index(v)
    ),
    "train.warmup_epochs": _no_pbt(0.0, _from(0), "linear warmup length, epochs"),
    "train.min_lr_ratio": _no_pbt(0.0, _rate(False, False), "cosine / cosine_restarts: lowest lr / peak lr"),
    "train.decay_rate": _no_pbt(0.5, _rate(True, False), "step: lr factor per decay"),
    "train.decay_every_epochs": _no_pbt(10.0, _over(0), "step: epochs between decays"),
    "train.grad_clip": traced(0.0, check=_from(0, " (0 = off)"), doc="global-norm clip, 0 = off"),
    "train.restart_epochs": _no_pbt(10.0, _over(0), "cosine_restarts: first period, epochs"),
    "train.restart_mult": _no_pbt(1.0, _from(1), "cosine_restarts: period growth per restart (>= 1)"),
    # Recipe knobs. The monitored metric is ``metric`` (with ``goal``).
    "train.min_delta": _no_pbt(0.0, _from(0), "improvement of the metric that resets patience counters"),
    "train.early_stop_patience": _no_pbt(
        0, _from(0, " (0 = off)"), "stop after this many epochs without improvement, 0 = off", "int32"
    ),
    "train.monitor_start_epoch": _no_pbt(0, _from(0), "patience counters start after this epoch (1-based)", "int32"),
    "train.plateau_patience": _no_pbt(
        0, _from(0, " (0 = off)"), "ReduceLROnPlateau: bad epochs tolerated before a cut, 0 = off", "int32"
    ),
    "train.plateau_factor": _no_pbt(0.5, _rate(True, False), "ReduceLROnPlateau: lr factor per cut"),
    "train.plateau_min_lr": _no_pbt(0.0, _from(0), "ReduceLROnPlateau: lr floor (absolute)"),
}


OPTIMIZER_ARGS = tuple(h.optimizer_arg for h in HPARAMS.values() if h.optimizer_arg)


def _adamw(learning_rate, b1, b2, weight_decay):
    return optax.adamw(learning_rate, b1=b1, b2=b2, weight_decay=weight_decay)


def _adam(learning_rate, b1, b2, weight_decay):
    # Coupled L2 (classic Adam + weight decay in the gradient).
    return optax.chain(optax.add_decayed_weights(weight_decay), optax.adam(learning_rate, b1=b1, b2=b2))


def _sgd(learning_rate, b1, b2, weight_decay):
    del b2  # unused: b1 is the momentum
    return optax.chain(optax.add_decayed_weights(weight_decay), optax.sgd(learning_rate, momentum=b1))


_FACTORIES = {"adamw": _adamw, "adam": _adam, "sgd": _sgd}


def optimizer(name: str):
    """``optax.inject_hyperparams`` of optimizer ``name``: its numeric arguments
    live in the optimizer state, so one compiled update serves every member."""
    return optax.inject_hyperparams(_FACTORIES[name])


def optimizer_args(hp: dict, **given) -> dict:
    """{optax argument: value} from a member's traced values ``hp`` (``given`` wins)."""
    return {h.optimizer_arg: hp[p] for p, h in HPARAMS.items() if h.optimizer_arg} | given
