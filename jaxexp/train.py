"""Pure training functions for ONE member; the engine vmaps them over a population.

``init(base_seed, member_seed, member_id, hparams, data) -> TrainState`` and
``run_segment(state, hparams, data) -> (state, metrics)``, where ``metrics``
holds one row per epoch of the segment. ``hparams`` maps each traced field of
``jaxexp.config.TRACED`` to a scalar (a [P] array after vmap).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxexp import config as cfgmod
from jaxexp import hashing, models, recipes, schedules
from jaxexp.tasks import METRICS, Task

Hparams = dict  # dotted traced field -> scalar array


class Data(NamedTuple):
    """Task arrays, shared (unbatched) by every member."""

    x_train: jax.Array
    y_train: jax.Array
    g_train: jax.Array  # int32 [n_train] group ids
    x_val: jax.Array
    y_val: jax.Array
    g_val: jax.Array  # int32 [n_val]
    group_levels: jax.Array  # int32 [groups]: 0 easy, 1 medium, 2 hard


class TrainState(NamedTuple):
    params: dict
    opt_state: optax.OptState
    step: jax.Array  # int32, optimizer steps taken
    epoch: jax.Array  # int32, epochs completed
    shuffle_seed: jax.Array  # uint32, per-epoch data order
    dropout_seed: jax.Array  # uint32, per-step dropout masks
    diverged: jax.Array  # bool (frozen at the last finite parameters)
    best_params: dict  # parameters of the best epoch so far (the init before any)
    init_eval: dict  # validation metrics of the initial parameters ("epoch 0"), scalars
    monitor: recipes.Monitor  # early stopping / plateau state


def data_of(task: Task) -> Data:
    g_train, g_val = task.groups
    return Data(
        task.x_train, task.y_train, g_train, task.x_val, task.y_val, g_val, np.asarray(task.group_levels, np.int32)
    )


def member_key(base_seed, member_seed, member_id) -> jax.Array:
    """The member's root key: fold_in(fold_in(key(base), seed), member id)."""
    key = jax.random.key(jnp.asarray(base_seed, jnp.uint32))
    return jax.random.fold_in(jax.random.fold_in(key, member_seed), member_id)


def _adamw(learning_rate, b1, b2, weight_decay):
    return optax.adamw(learning_rate, b1=b1, b2=b2, weight_decay=weight_decay)


def _adam(learning_rate, b1, b2, weight_decay):
    # Coupled L2 (classic Adam + weight decay in the gradient).
    return optax.chain(optax.add_decayed_weights(weight_decay), optax.adam(learning_rate, b1=b1, b2=b2))


def _sgd(learning_rate, b1, b2, weight_decay):
    del b2  # unused: b1 is the momentum
    return optax.chain(optax.add_decayed_weights(weight_decay), optax.sgd(learning_rate, momentum=b1))


_OPTIMIZERS = {"adamw": _adamw, "adam": _adam, "sgd": _sgd}


class Program(NamedTuple):
    """The pure per-member functions of one bucket (static config + task shapes)."""

    init: callable
    run_segment: callable
    predict: callable  # (params, x [n, features]) -> outputs [n, n_outputs]
    metric_names: tuple[str, ...]
    group_metric_names: tuple[str, ...]  # per-group metrics ([groups] per epoch); () if ungrouped
    member_bytes: int  # estimated working set of one member's training step


def make_program(
    static_cfg,
    task: Task,
    segment_epochs: int,
    dropout: tuple[bool, bool] = (True, True),
    monitor: tuple[str, str] = ("val_loss", "min"),
) -> Program:
    """Builds the per-member ``init`` and ``run_segment`` of one bucket.

    static_cfg: a member config of the bucket (only its static fields are used;
    traced ones arrive through ``hparams``). dropout: whether any member uses
    (input, hidden) dropout; False skips computing those masks. monitor:
    (metric, goal) watched by early stopping, the plateau LR and best-parameter
    tracking.
    """
    model = models.make_model(static_cfg.model, task.n_outputs, *dropout)
    optimizer = optax.inject_hyperparams(_OPTIMIZERS[static_cfg.train.optimizer])
    # inject_hyperparams reads every numeric hyperparameter from the state on
    # update, so one template serves all members (their values live in the state).
    tx_update = optimizer(learning_rate=0.0, b1=0.0, b2=0.0, weight_decay=0.0).update
    batch_size = int(static_cfg.train.batch_size)
    n_train = task.x_train.shape[0]
    steps_per_epoch = n_train // batch_size
    metric_names = METRICS[task.kind]
    n_groups = task.n_groups
    group_metric_names = tuple(m for m in metric_names if m.startswith("val_")) if n_groups > 1 else ()
    classification = task.kind == "classification"
    monitor_index = metric_names.index(monitor[0])
    sign = cfgmod.goal_sign(monitor[1])

    def per_row(logits, y):
        """Per-example loss and metrics: {name: [n]}."""
        if classification:
            loss = optax.softmax_cross_entropy_with_integer_labels(logits, y)
            return {"loss": loss, "accuracy": (logits.argmax(-1) == y).astype(jnp.float32)}
        err = logits - y
        se = jnp.mean(err**2, axis=-1)
        return {"loss": se, "mse": se, "mae": jnp.mean(jnp.abs(err), axis=-1)}

    def init(base_seed, member_seed, member_id, hp: Hparams, data: Data) -> TrainState:
        key = member_key(base_seed, member_seed, member_id)
        k_init, k_shuffle, k_drop = jax.random.split(key, 3)
        params = model.init(k_init, jnp.zeros((1, task.n_features), jnp.float32))["params"]
        tx = optimizer(
            learning_rate=hp["train.lr"], b1=hp["train.b1"], b2=hp["train.b2"], weight_decay=hp["train.weight_decay"]
        )
        return TrainState(
            params=params,
            opt_state=tx.init(params),
            step=jnp.int32(0),
            epoch=jnp.int32(0),
            shuffle_seed=jax.random.bits(k_shuffle, dtype=jnp.uint32),
            dropout_seed=jax.random.bits(k_drop, dtype=jnp.uint32),
            diverged=jnp.bool_(False),
            best_params=params,
            init_eval={k: v for k, v in evaluate(params, data).items() if k in metric_names},
            monitor=recipes.monitor_init(),
        )

    def lr_at(hp: Hparams, step, lr_scale) -> jax.Array:
        spe = float(steps_per_epoch)
        mult = schedules.lr_multiplier(
            hp["train.schedule"],
            step,
            total_steps=hp["train.epochs"].astype(jnp.float32) * spe,
            warmup_steps=hp["train.warmup_epochs"] * spe,
            min_ratio=hp["train.min_lr_ratio"],
            decay_every_steps=hp["train.decay_every_epochs"] * spe,
            decay_rate=hp["train.decay_rate"],
            restart_steps=hp["train.restart_epochs"] * spe,
            restart_mult=hp["train.restart_mult"],
        )
        return hp["train.lr"] * mult * lr_scale

    def train_step(state: TrainState, hp: Hparams, data: Data, group_w, idx, active):
        """One optimizer step on rows ``idx``; a no-op unless ``active``."""
        xb, yb, wb = data.x_train[idx], data.y_train[idx], group_w[data.g_train[idx]]
        seed = hashing.fold(state.dropout_seed, state.step)

        def loss_fn(params):
            final = jnp.where(hp["model.final_dropout"] >= 0, hp["model.final_dropout"], hp["model.dropout"])
            logits = model.apply(
                {"params": params}, xb, hp["model.dropout"], hp["model.input_dropout"], seed=seed, final_dropout=final
            )
            # curriculum: weighted mean over the batch (0 when every weight is 0)
            return jnp.sum(wb * per_row(logits, yb)["loss"]) / jnp.maximum(jnp.sum(wb), 1e-12)

        loss, grads = jax.value_and_grad(loss_fn)(state.params)
        gnorm = optax.tree.norm(grads)
        clip = hp["train.grad_clip"]
        scale = jnp.where(clip > 0, jnp.minimum(1.0, clip / (gnorm + 1e-12)), 1.0)
        grads = jax.tree.map(lambda g: g * scale, grads)
        opt_state = state.opt_state
        lr = lr_at(hp, state.step, state.monitor.lr_scale)
        # every injected hyperparameter from hp (equal to the init values unless
        # population-based training changed this member's hp since)
        injected = {"learning_rate": lr, "b1": hp["train.b1"], "b2": hp["train.b2"]}
        injected["weight_decay"] = hp["train.weight_decay"]
        injected = {k: jnp.asarray(v, opt_state.hyperparams[k].dtype) for k, v in injected.items()}
        opt_state = opt_state._replace(hyperparams={**opt_state.hyperparams, **injected})
        updates, opt_state = tx_update(grads, opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        # the update too: finite gradients can still overflow parameters
        ok = jnp.isfinite(loss) & jnp.isfinite(gnorm) & jnp.isfinite(optax.tree.norm(updates))
        commit = active & ok
        keep = lambda new, old: jax.tree.map(lambda n, o: jnp.where(commit, n, o), new, old)  # noqa: E731
        state = state._replace(
            params=keep(params, state.params),
            opt_state=keep(opt_state, state.opt_state),
            step=state.step + commit.astype(jnp.int32),
            diverged=state.diverged | (active & ~ok),
        )
        return state, jnp.where(active, loss, 0.0)

    def evaluate(params, data: Data) -> dict:
        """Validation metrics {name: scalar} and, for a grouped task, {group_name: [groups]}."""
        rows = per_row(model.apply({"params": params}, data.x_val), data.y_val)
        out = {f"val_{k}": v.mean() for k, v in rows.items()}
        if group_metric_names:
            count = jax.ops.segment_sum(jnp.ones_like(rows["loss"]), data.g_val, n_groups)
            for k, v in rows.items():
                per_group = jax.ops.segment_sum(v, data.g_val, n_groups) / jnp.maximum(count, 1.0)
                out[f"group_val_{k}"] = jnp.where(count > 0, per_group, jnp.nan)
        return out

    def run_epoch(state: TrainState, hp: Hparams, data: Data):
        mon = state.monitor
        active = ~state.diverged & ~mon.stopped & (state.epoch < hp["train.epochs"])
        perm = hashing.permutation(hashing.fold(state.shuffle_seed, state.epoch), n_train)
        perm = perm[: steps_per_epoch * batch_size]
        group_w = recipes.curriculum_weights(
            state.epoch,
            data.group_levels,
            hp["train.group_multipliers"],
            medium_epoch=hp["train.curriculum_medium_epoch"],
            hard_epoch=hp["train.curriculum_hard_epoch"],
            start=hp["train.hard_weight_start"],
            slope=hp["train.hard_weight_slope"],
            cap=hp["train.hard_weight_cap"],
            origin=hp["train.hard_weight_origin"],
        )
        lr_epoch = lr_at(hp, state.step, mon.lr_scale)

        def body(st, idx):
            return train_step(st, hp, data, group_w, idx, active & ~st.diverged)

        state, losses = jax.lax.scan(body, state, perm.reshape(steps_per_epoch, batch_size))
        evals = evaluate(state.params, data)
        row = {"train_loss": losses.mean(), **evals}
        value = sign * row[metric_names[monitor_index]]
        ok = active & ~state.diverged & jnp.isfinite(value)
        mon, improved = recipes.monitor_update(
            mon,
            jnp.where(ok, value, jnp.inf),
            state.epoch + 1,
            active & ~state.diverged,
            min_delta=hp["train.min_delta"],
            patience=hp["train.early_stop_patience"],
            plateau_patience=hp["train.plateau_patience"],
            plateau_factor=hp["train.plateau_factor"],
            min_scale=hp["train.plateau_min_lr"] / hp["train.lr"],
            start_epoch=hp["train.monitor_start_epoch"],
        )
        best_params = jax.tree.map(lambda n, o: jnp.where(improved, n, o), state.params, state.best_params)
        out = {k: row[k] for k in metric_names}
        out.update({f"group_{k}": evals[f"group_{k}"] for k in group_metric_names})
        out.update(epoch=state.epoch, active=active, diverged=state.diverged, stopped=mon.stopped, lr=lr_epoch)
        state = state._replace(epoch=state.epoch + active.astype(jnp.int32), best_params=best_params, monitor=mon)
        return state, out

    def run_segment(state: TrainState, hp: Hparams, data: Data):
        """``segment_epochs`` epochs; returns metrics {name: [segment_epochs, ...]}."""
        return jax.lax.scan(lambda st, _: run_epoch(st, hp, data), state, None, length=segment_epochs)

    def predict(params, x):
        return model.apply({"params": params}, x)

    # Working set of one member's step: params, best params, grads and two Adam
    # moments, plus forward/backward activations of a batch (from shapes only).
    shapes = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, task.n_features), jnp.float32))
    n_params = sum(x.size for x in jax.tree.leaves(shapes))
    widths = task.n_features + sum(static_cfg.model.hidden) + task.n_outputs
    member_bytes = 4 * (5 * n_params + 3 * batch_size * widths)
    return Program(init, run_segment, predict, metric_names, group_metric_names, member_bytes)


def group_multipliers(values: tuple, n_groups: int, names: tuple[str, ...] = ()) -> np.ndarray:
    """``train.group_multipliers`` as a [groups] vector (() = all ones)."""
    from jaxexp.errors import ConfigError

    if not values:
        return np.ones(n_groups, np.float32)
    if len(values) != n_groups:
        shown = f" ({', '.join(names)})" if names else ""
        raise ConfigError(
            f"train.group_multipliers: {len(values)} value(s) but the task has {n_groups} group(s){shown}; "
            "give one per group or () for all 1"
        )
    return np.asarray(values, np.float32)


def encode_hparams(member_cfgs: list, n_groups: int = 1) -> dict:
    """Stacks the traced fields of member configs into numpy arrays [P]
    (``train.group_multipliers``: [P, n_groups])."""
    out = {}
    for path, dtype in cfgmod.TRACED.items():
        values = [cfgmod.get_path(c, path) for c in member_cfgs]
        if path == "train.schedule":
            values = [cfgmod.SCHEDULES.index(v) for v in values]
        if path == "train.group_multipliers":
            values = [group_multipliers(v, n_groups) for v in values]
        out[path] = np.asarray(values, dtype=dtype)
    return out
