"""Pure training functions for ONE member; the engine vmaps them over a population.

``init(base_seed, member_seed, member_id, hparams) -> TrainState`` and
``run_segment(state, hparams, data) -> (state, metrics)``, where ``metrics``
holds one row per epoch of the segment. ``hparams`` maps each traced field of
``jaxexp.config.TRACED`` to a scalar (a [P] array after vmap).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxexp import config as cfgmod
from jaxexp import hashing, models, schedules
from jaxexp.tasks import METRICS, Task

Hparams = dict  # dotted traced field -> scalar array


class Data(NamedTuple):
    """Task arrays, shared (unbatched) by every member."""

    x_train: jax.Array
    y_train: jax.Array
    x_val: jax.Array
    y_val: jax.Array


class TrainState(NamedTuple):
    params: dict
    opt_state: optax.OptState
    step: jax.Array  # int32, optimizer steps taken
    epoch: jax.Array  # int32, epochs completed
    shuffle_seed: jax.Array  # uint32, per-epoch data order
    dropout_seed: jax.Array  # uint32, per-step dropout masks
    diverged: jax.Array  # bool (frozen at the last finite parameters)


def data_of(task: Task) -> Data:
    return Data(task.x_train, task.y_train, task.x_val, task.y_val)


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
    metric_names: tuple[str, ...]
    member_bytes: int  # estimated working set of one member's training step


def make_program(static_cfg, task: Task, segment_epochs: int, dropout: tuple[bool, bool] = (True, True)) -> Program:
    """Builds the per-member ``init`` and ``run_segment`` of one bucket.

    static_cfg: a member config of the bucket (only its static fields are used;
    traced ones arrive through ``hparams``). dropout: whether any member uses
    (input, hidden) dropout; False skips computing those masks.
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
    classification = task.kind == "classification"

    def loss_and_metrics(logits, y):
        if classification:
            loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
            return loss, {"accuracy": (logits.argmax(-1) == y).mean()}
        err = logits - y
        return jnp.mean(err**2), {"mse": jnp.mean(err**2), "mae": jnp.mean(jnp.abs(err))}

    def init(base_seed, member_seed, member_id, hp: Hparams) -> TrainState:
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
        )

    def lr_at(hp: Hparams, step) -> jax.Array:
        spe = float(steps_per_epoch)
        mult = schedules.lr_multiplier(
            hp["train.schedule"],
            step,
            total_steps=hp["train.epochs"].astype(jnp.float32) * spe,
            warmup_steps=hp["train.warmup_epochs"] * spe,
            min_ratio=hp["train.min_lr_ratio"],
            decay_every_steps=hp["train.decay_every_epochs"] * spe,
            decay_rate=hp["train.decay_rate"],
        )
        return hp["train.lr"] * mult

    def train_step(state: TrainState, hp: Hparams, data: Data, idx, active):
        """One optimizer step on rows ``idx``; a no-op unless ``active``."""
        xb, yb = data.x_train[idx], data.y_train[idx]
        seed = hashing.fold(state.dropout_seed, state.step)

        def loss_fn(params):
            logits = model.apply({"params": params}, xb, hp["model.dropout"], hp["model.input_dropout"], seed=seed)
            return loss_and_metrics(logits, yb)[0]

        loss, grads = jax.value_and_grad(loss_fn)(state.params)
        gnorm = optax.tree.norm(grads)
        clip = hp["train.grad_clip"]
        scale = jnp.where(clip > 0, jnp.minimum(1.0, clip / (gnorm + 1e-12)), 1.0)
        grads = jax.tree.map(lambda g: g * scale, grads)
        opt_state = state.opt_state
        opt_state = opt_state._replace(hyperparams={**opt_state.hyperparams, "learning_rate": lr_at(hp, state.step)})
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
        logits = model.apply({"params": params}, data.x_val)
        loss, metrics = loss_and_metrics(logits, data.y_val)
        return {"val_loss": loss, **{f"val_{k}": v for k, v in metrics.items()}}

    def run_epoch(state: TrainState, hp: Hparams, data: Data):
        active = ~state.diverged & (state.epoch < hp["train.epochs"])
        perm = hashing.permutation(hashing.fold(state.shuffle_seed, state.epoch), n_train)
        perm = perm[: steps_per_epoch * batch_size]

        def body(st, idx):
            return train_step(st, hp, data, idx, active & ~st.diverged)

        state, losses = jax.lax.scan(body, state, perm.reshape(steps_per_epoch, batch_size))
        row = {"train_loss": losses.mean(), **evaluate(state.params, data)}
        row = {k: row[k] for k in metric_names}
        row["epoch"] = state.epoch
        row["active"] = active
        row["diverged"] = state.diverged
        state = state._replace(epoch=state.epoch + active.astype(jnp.int32))
        return state, row

    def run_segment(state: TrainState, hp: Hparams, data: Data):
        """``segment_epochs`` epochs; returns metrics {name: [segment_epochs]}."""
        return jax.lax.scan(lambda st, _: run_epoch(st, hp, data), state, None, length=segment_epochs)

    # Working set of one member's step: params, grads and two Adam moments, plus
    # forward/backward activations of a batch (from shapes only: eval_shape).
    shapes = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, task.n_features), jnp.float32))
    n_params = sum(x.size for x in jax.tree.leaves(shapes))
    widths = task.n_features + sum(static_cfg.model.hidden) + task.n_outputs
    member_bytes = 4 * (4 * n_params + 3 * batch_size * widths)
    return Program(init, run_segment, metric_names, member_bytes)


def encode_hparams(member_cfgs: list) -> dict:
    """Stacks the traced fields of member configs into numpy arrays [P]."""
    import numpy as np

    out = {}
    for path, dtype in cfgmod.TRACED.items():
        values = [cfgmod.get_path(c, path) for c in member_cfgs]
        if path == "train.schedule":
            values = [cfgmod.SCHEDULES.index(v) for v in values]
        out[path] = np.asarray(values, dtype=dtype)
    return out
