"""Checks of a workload's functions by abstract evaluation (``jax.eval_shape``),
before anything is compiled or written, and the working-set estimate of a member.

Each failure is one ``ConfigError`` line naming the function or field and the fix.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxexp.errors import ConfigError
from jaxexp.hparams import encode_hparams

_TRACER_ERRORS = (
    jax.errors.ConcretizationTypeError,
    jax.errors.TracerBoolConversionError,
    jax.errors.TracerIntegerConversionError,
    jax.errors.TracerArrayConversionError,
)


def _one_member_hp(static_cfg, dataset) -> dict:
    return {k: v[0] for k, v in encode_hparams([static_cfg], dataset).items()}


def _abstract(tree):
    return jax.tree.map(lambda a: jax.ShapeDtypeStruct(np.shape(a), np.asarray(a).dtype), tree)


def _culprit(fn, hp: dict, names) -> str | None:
    """The first traced hyperparameter that ``fn(hp)`` uses as a Python value."""
    for name in names:

        def one(v, name=name):
            return fn({**hp, name: v})

        try:
            jax.eval_shape(one, _abstract(hp[name]))
        except _TRACER_ERRORS:
            return name
        except Exception:  # noqa: BLE001 - another error: not this hyperparameter's
            continue
    return None


def _traced_misuse(wl, where: str, fn, hp: dict, err: Exception) -> ConfigError:
    name = _culprit(fn, hp, list(hp))
    first = str(err).splitlines()[0][:160]
    if name is None:
        return ConfigError(f"{where}: uses a traced value as a Python value ({first}); use jnp.where / lax.cond")
    return ConfigError(
        f"{where}: uses traced hyperparameter {name!r} as a Python value (a branch, a shape or a loop count); "
        f"compute with it in jnp (jnp.where) or declare it jaxexp.static(...) in {wl.name}.HPARAMS"
    )


def check_outputs(wl, static_cfg, dataset, model, get_batch, loss_fn, evaluate, with_clock, metric: str):
    """(aux names, evaluation scalar names, per-group names) of a workload, checked."""
    hp = {k: np.asarray(v) for k, v in _one_member_hp(static_cfg, dataset).items()}
    key = jax.random.key(0)
    sample = jax.tree.map(lambda a: a[:1], dataset.train)
    params = jax.eval_shape(model.init, key, sample)
    batch_size = int(static_cfg.train.batch_size)
    idx = np.arange(batch_size, dtype=np.int32)

    def step(hp_):
        hpx = with_clock(hp_, jnp.int32(0), jnp.int32(0))
        rng = jnp.uint32(0)
        p = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), params)
        return loss_fn(p, get_batch(dataset.train, idx, hpx, rng), hpx, rng)

    try:
        out = jax.eval_shape(step, _abstract(hp))
    except _TRACER_ERRORS as e:
        raise _traced_misuse(wl, wl.fn_name("loss"), step, hp, e) from None
    if not (isinstance(out, (tuple, list)) and len(out) == 2):
        raise ConfigError(f"{wl.fn_name('loss')}: must return (loss, aux) with aux a dict ({{}} for none)")
    loss, aux = out
    if getattr(loss, "shape", None) != () or not jnp.issubdtype(loss.dtype, jnp.floating):
        raise ConfigError(
            f"{wl.fn_name('loss')}: returned a loss of shape {getattr(loss, 'shape', '?')}; return one float "
            "scalar (e.g. the batch mean)"
        )
    aux = {} if aux is None else aux
    bad = [k for k, v in dict(aux).items() if getattr(v, "shape", None) != ()] if isinstance(aux, dict) else ["?"]
    if bad:
        raise ConfigError(f"{wl.fn_name('loss')}: aux must be a dict of scalars (bad: {', '.join(map(str, bad))})")

    order: list = []  # eval_shape sorts dict keys: the history columns keep the workload's order

    def ev(hp_):
        hpx = with_clock(hp_, jnp.int32(0), jnp.int32(0))
        out = evaluate(jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), params), (None, dataset.val), hpx)
        if isinstance(out, dict):
            order[:] = [list(out), list(out.get("groups") or {})]
        return out

    try:
        evals = jax.eval_shape(ev, _abstract(hp))
    except _TRACER_ERRORS as e:
        raise _traced_misuse(wl, wl.fn_name("evaluate"), ev, hp, e) from None
    if not isinstance(evals, dict):
        raise ConfigError(f"{wl.fn_name('evaluate')}: must return a dict {{metric: scalar}}")
    groups = {k: evals["groups"][k] for k in order[1]}
    scalars = {k: evals[k] for k in order[0] if k != "groups"}
    bad = [k for k, v in scalars.items() if getattr(v, "shape", None) != ()]
    if bad:
        raise ConfigError(
            f"{wl.fn_name('evaluate')}: {', '.join(bad)} not scalar; return scalars, and per-group values "
            "under 'groups' as {name: [groups]}"
        )
    n_groups = len(dataset.groups)
    bad = [k for k, v in groups.items() if getattr(v, "shape", None) != (n_groups,)]
    if bad:
        raise ConfigError(
            f"{wl.fn_name('evaluate')}: groups.{bad[0]} has shape {groups[bad[0]].shape}; per-group values are "
            f"[{n_groups}], one per name in Dataset.groups"
        )
    clash = [k for k in scalars if k == "train_loss" or k in {f"train_{a}" for a in aux}]
    if clash:
        raise ConfigError(f"{wl.fn_name('evaluate')}: {clash[0]!r} is the name of a training metric; rename it")
    reported = ["train_loss", *(f"train_{a}" for a in sorted(aux)), *scalars]
    if metric not in reported:
        raise ConfigError(
            f"metric: {metric!r} is not reported by workload {wl.name} (it reports {', '.join(reported)}); "
            "set --config.metric to one of them or return it from evaluate"
        )
    return tuple(sorted(aux)), tuple(scalars), tuple(groups)


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


def member_bytes(model, sample, dataset, static_cfg, get_batch, loss_fn, with_clock) -> int:
    """Working set of one member's training step: parameters, best parameters,
    gradients and two Adam moments, plus the step's activations (three copies of
    every matmul/convolution output: forward, backward, gradient)."""
    hp = {k: np.asarray(v) for k, v in _one_member_hp(static_cfg, dataset).items()}
    params = jax.eval_shape(model.init, jax.random.key(0), sample)
    n_params = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(params))
    idx = np.arange(int(static_cfg.train.batch_size), dtype=np.int32)

    def fwd(p, hp_):
        hpx = with_clock(hp_, jnp.int32(0), jnp.int32(0))
        return loss_fn(p, get_batch(dataset.train, idx, hpx, jnp.uint32(0)), hpx, jnp.uint32(0))[0]

    try:
        jaxpr = jax.make_jaxpr(fwd)(params, _abstract(hp)).jaxpr
        acts = _dot_bytes(jaxpr)
    except Exception:  # noqa: BLE001 - an estimate: fall back to the batch size
        acts = 0
    batch = sum(a.nbytes // max(len(a), 1) for a in jax.tree.leaves(dataset.train)) * len(idx)
    return 4 * 5 * n_params + 3 * acts + batch
