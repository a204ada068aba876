"""Checks of a workload's functions by abstract evaluation (``jax.eval_shape``),
before anything is compiled or written, and the working-set estimate of a member.

Each failure is one ``ConfigError`` line naming the function or field and the fix.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxexp.core.hparams import one_member
from jaxexp.errors import ConfigError

_TRACER_ERRORS = (
    jax.errors.ConcretizationTypeError,
    jax.errors.TracerBoolConversionError,
    jax.errors.TracerIntegerConversionError,
    jax.errors.TracerArrayConversionError,
)
# history.csv columns the engine writes: no metric may take these names
RESERVED_METRICS = ("member", "epoch", "lr", "active", "diverged", "stopped", "group")


class Checked(NamedTuple):
    aux_names: tuple[str, ...]  # the loss's aux terms (history: train_<name>)
    eval_names: tuple[str, ...]  # evaluation scalars, in the workload's order
    group_names: tuple[str, ...]  # per-group evaluation values
    member_bytes: int  # working set of one member's training step


def _abstract(tree):
    return jax.tree.map(lambda a: jax.ShapeDtypeStruct(np.shape(a), np.asarray(a).dtype), tree)


def _culprit(fn, hp: dict) -> str | None:
    """The traced hyperparameter that ``fn(hp)`` uses as a Python value: the
    first one that fails alone abstract; None when ``fn`` fails with every
    hyperparameter concrete (the value is another: batch data, parameters)."""
    try:
        jax.eval_shape(lambda: fn(hp))
    except _TRACER_ERRORS:
        return None
    for name in hp:
        try:
            jax.eval_shape(lambda v, name=name: fn({**hp, name: v}), _abstract(hp[name]))
        except _TRACER_ERRORS:
            return name
        except Exception:  # noqa: BLE001 - another error: not this hyperparameter's
            continue
    return None


def _traced_misuse(wl, where: str, fn, hp: dict, err: Exception) -> ConfigError:
    name = _culprit(fn, hp)
    first = str(err).splitlines()[0][:160]
    if name is None:
        return ConfigError(
            f"{where}: uses a traced array (batch data or parameters) as a Python value ({first}); "
            "compute with it in jnp (jnp.where, lax.cond)"
        )
    fix = "use jnp.where" if name in ("epoch", "step") else f"declare it jaxexp.static(...) in {wl.name}.HPARAMS"
    return ConfigError(
        f"{where}: uses traced hyperparameter {name!r} as a Python value (a branch, a shape or a loop count); "
        f"compute with it in jnp (jnp.where) or {fix}"
    )


def _is_scalar(v) -> bool:
    return getattr(v, "shape", None) == ()


def _check_loss(wl, out) -> tuple[str, ...]:
    where = wl.fn_name("loss")
    if not (isinstance(out, (tuple, list)) and len(out) == 2):
        raise ConfigError(f"{where}: must return (loss, aux) with aux a dict of scalars ({{}} for none)")
    loss, aux = out
    if not _is_scalar(loss):
        raise ConfigError(
            f"{where}: returned a loss of shape {getattr(loss, 'shape', type(loss).__name__)}; return one float "
            "scalar (e.g. the batch mean)"
        )
    if not jnp.issubdtype(loss.dtype, jnp.floating):
        raise ConfigError(f"{where}: returned a {loss.dtype} loss; return a float scalar")
    aux = {} if aux is None else aux
    if not isinstance(aux, dict) or not all(isinstance(k, str) and _is_scalar(v) for k, v in aux.items()):
        raise ConfigError(f"{where}: aux must be a dict {{name: scalar}} ({{}} for none)")
    if "loss" in aux:
        raise ConfigError(f"{where}: an aux term named 'loss' would hide train_loss; rename it")
    return tuple(sorted(aux))


def _check_evals(wl, evals, order, n_groups: int, aux: tuple, metric: str) -> tuple[tuple, tuple]:
    where = wl.fn_name("evaluate")
    groups = evals.get("groups", {})
    if not isinstance(groups, dict):
        raise ConfigError(f"{where}: 'groups' must be a dict {{metric: [groups]}}")
    scalars = {k: evals[k] for k in order[0] if k != "groups"}
    bad = [k for k, v in scalars.items() if not _is_scalar(v)]
    if bad:
        raise ConfigError(
            f"{where}: {', '.join(bad)} not scalar; return scalars, and per-group values under 'groups' as "
            "{name: [groups]}"
        )
    if groups and not n_groups:
        raise ConfigError(f"{where}: returns per-group values but the data name no groups; set Dataset(groups=...)")
    bad = [k for k, v in groups.items() if getattr(v, "shape", None) != (n_groups,)]
    if bad:
        raise ConfigError(
            f"{where}: groups.{bad[0]} has shape {getattr(groups[bad[0]], 'shape', '?')}; per-group values are "
            f"[{n_groups}], one per name in Dataset.groups"
        )
    train_names = {"train_loss", *(f"train_{a}" for a in aux)}
    clash = [k for k in scalars if k in train_names or k in RESERVED_METRICS or k.startswith("group_")]
    if clash:
        raise ConfigError(f"{where}: the metric name {clash[0]!r} is taken by the engine's history columns; rename it")
    reported = ["train_loss", *(f"train_{a}" for a in aux), *scalars]
    if metric not in reported:
        raise ConfigError(
            f"metric: {metric!r} is not reported by workload {wl.name} (it reports {', '.join(reported)}); "
            "set --config.metric to one of them or return it from evaluate"
        )
    return tuple(scalars), tuple(k for k in order[1] if k in groups)


def check_program(wl, static_cfg, dataset, model, sample, get_batch, loss_fn, evaluate, metric: str) -> Checked:
    """Runs the workload's init, loss and evaluation abstractly for one member and
    checks what they return; estimates the member's working set."""
    hp = {**{k: np.asarray(v) for k, v in one_member(static_cfg, dataset).items()}}
    hp.update(epoch=np.int32(0), step=np.int32(0))  # traced in the program: checked traced too
    params = jax.eval_shape(model.init, jax.random.key(0), sample)
    zeros = lambda: jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), params)  # noqa: E731
    idx = np.arange(int(static_cfg.train.batch_size), dtype=np.int32)

    def step(hp_):
        rng = jnp.uint32(0)
        return loss_fn(zeros(), get_batch(dataset.train, idx, hp_, rng), hp_, rng)

    order: list = [[], []]  # eval_shape sorts dict keys: the history columns keep the workload's order

    def ev(hp_):
        out = evaluate(zeros(), (None, dataset.val), hp_)
        if not isinstance(out, dict) or not all(isinstance(k, str) for k in out):
            raise ConfigError(f"{wl.fn_name('evaluate')}: must return a dict {{metric name: scalar}}")
        order[:] = [list(out), list(out["groups"]) if isinstance(out.get("groups"), dict) else []]
        return out

    results = []
    for fn, name in ((step, "loss"), (ev, "evaluate")):
        try:
            results.append(jax.eval_shape(fn, _abstract(hp)))
        except _TRACER_ERRORS as e:
            raise _traced_misuse(wl, wl.fn_name(name), fn, hp, e) from None
    aux = _check_loss(wl, results[0])
    eval_names, group_names = _check_evals(wl, results[1], order, len(dataset.groups), aux, metric)
    return Checked(aux, eval_names, group_names, _member_bytes(params, step, hp, dataset, idx))


def _dot_bytes(jaxpr) -> int:
    """Bytes of the outputs of the matmuls and convolutions of a jaxpr (the
    activations a backward pass keeps), nested jaxprs included."""
    total = 0
    for eqn in jaxpr.eqns:
        if eqn.primitive.name in ("dot_general", "conv_general_dilated"):
            total += sum(int(np.prod(v.aval.shape)) * v.aval.dtype.itemsize for v in eqn.outvars)
        for p in eqn.params.values():
            inner = getattr(p, "jaxpr", p)  # ClosedJaxpr -> Jaxpr
            if hasattr(inner, "eqns"):
                total += _dot_bytes(inner)
    return total


def _member_bytes(params, step, hp, dataset, idx) -> int:
    """Working set of one member's training step: parameters, best parameters,
    gradients and two Adam moments, plus the step's activations (three copies of
    every matmul/convolution output: forward, backward, gradient) and the batch."""
    n_params = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(params))
    try:
        acts = _dot_bytes(jax.make_jaxpr(step)(_abstract(hp)).jaxpr)
    except Exception:  # noqa: BLE001 - an estimate: the batch alone then
        acts = 0
    batch = sum(a.nbytes // max(len(a), 1) for a in jax.tree.leaves(dataset.train)) * len(idx)
    return 4 * 5 * n_params + 3 * acts + batch
