"""Pure training functions for ONE member of a workload; the engine vmaps them over a population.

``init(base_seed, member_seed, member_id, hparams, data) -> TrainState`` and
``run_segment(state, hparams, data) -> (state, metrics)``, where ``metrics``
holds one row per epoch of the segment. ``hparams`` maps each traced field
(``jaxexp.config.traced_fields``) to a scalar (a [P] array after vmap);
``data`` is the workload's ``(train, val)`` pytrees, shared by every member.
The model, loss and evaluation are the workload's (``jaxexp.workload``).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxexp import config as cfgmod
from jaxexp import workload as workloadmod
from jaxexp.core import hashing, recipes, schedules, train_hparams
from jaxexp.core.hparams import encode_hparams, one_member  # noqa: F401 - part of this module's API
from jaxexp.core.program_checks import check_program
from jaxexp.errors import ConfigError
from jaxexp.run.checkpoint import spec_of

Hparams = dict  # dotted traced field -> scalar array


class TrainState(NamedTuple):
    params: dict
    opt_state: optax.OptState
    step: jax.Array  # int32, optimizer steps taken
    epoch: jax.Array  # int32, epochs completed
    shuffle_seed: jax.Array  # uint32, per-epoch data order
    dropout_seed: jax.Array  # uint32, per-step randomness of the loss (``rng``)
    diverged: jax.Array  # bool (frozen at the last finite parameters)
    best_params: dict  # parameters of the best epoch so far (the init before any)
    init_eval: dict  # evaluation metrics of the initial parameters ("epoch 0"), scalars
    monitor: recipes.Monitor  # early stopping / plateau state


def data_of(dataset: workloadmod.Dataset) -> tuple:
    """The arrays a program reads: (train, val) pytrees."""
    return (dataset.train, dataset.val)


def member_key(base_seed, member_seed, member_id) -> jax.Array:
    """The member's root key: fold_in(fold_in(key(base), seed), member id)."""
    key = jax.random.key(jnp.asarray(base_seed, jnp.uint32))
    return jax.random.fold_in(jax.random.fold_in(key, member_seed), member_id)


class Program(NamedTuple):
    """The pure per-member functions of one bucket (static config + data shapes)."""

    init: callable
    init_params: callable  # (base_seed, member_seed, member_id) -> params
    run_segment: callable
    model: workloadmod.Model  # the workload's model as (init, apply)
    sample: object  # one training row as the loss sees it (what the model is initialised with)
    metric_names: tuple[str, ...]  # history columns: train_loss, train_<aux>, evaluation scalars
    group_metric_names: tuple[str, ...]  # per-group metrics ([groups] per epoch); () if none
    member_bytes: int  # estimated working set of one member's training step


def make_program(
    static_cfg,
    dataset: workloadmod.Dataset,
    segment_epochs: int,
    off: tuple[str, ...] = (),
    monitor: tuple[str, str] = ("val_loss", "min"),
) -> Program:
    """Builds the per-member ``init`` and ``run_segment`` of one bucket.

    static_cfg: a member config of the bucket (only its static fields are used;
    traced ones arrive through ``hparams``). off: the ``skippable`` names of
    traced hyperparameters that are <= 0 in every member of the bucket (the
    workload's model may skip their work; ``cfg.off``). monitor: (metric, goal) watched by early stopping, the
    plateau LR and best-parameter tracking.
    """
    wl = cfgmod.workload_of(static_cfg)
    model = workloadmod.build_model(wl, static_cfg, dataset, off)
    sample = workloadmod.sample_batch(wl, dataset, one_member(static_cfg, dataset))
    if off:  # a checkpoint is restored into the model built without `off`: same parameters
        plain = workloadmod.build_model(wl, static_cfg, dataset)
        a, b = (spec_of(workloadmod.abstract_params(m, sample)) for m in (model, plain))
        if a != b:
            raise ConfigError(
                f"{wl.fn_name('model')}: cfg.off {tuple(off)} changed the parameters; off may only skip work "
                "that has no parameters (a dropout mask, not a layer)"
            )
    m = _Member(wl, model, sample, static_cfg, workloadmod.n_rows(dataset.train), segment_epochs, monitor)
    checked = check_program(wl, static_cfg, dataset, model, sample, m.get_batch, m.loss_fn, m.evaluate, monitor[0])
    m.aux_names, m.eval_names, m.group_metric_names = checked.aux_names, checked.eval_names, checked.group_names
    metric_names = ("train_loss", *(f"train_{a}" for a in m.aux_names), *m.eval_names)
    return Program(
        m.init, m.init_params, m.run_segment, model, sample, metric_names, m.group_metric_names, checked.member_bytes
    )


def _with_clock(hp: Hparams, epoch, step) -> Hparams:
    return {**hp, "epoch": epoch, "step": step}


class _Member:
    """The pure functions of one member of a bucket (closures over its static
    parts: the workload, the model, batch size, segment length, monitor)."""

    aux_names: tuple[str, ...] = ()  # set from the abstract checks (``check_program``)
    eval_names: tuple[str, ...] = ()
    group_metric_names: tuple[str, ...] = ()

    def __init__(self, wl, model, sample, static_cfg, n_train: int, segment_epochs: int, monitor) -> None:
        self.wl, self.model, self.sample = wl, model, sample
        self.optimizer = train_hparams.optimizer(static_cfg.train.optimizer)
        # inject_hyperparams reads every numeric hyperparameter from the state on
        # update, so one template serves all members (their values live in the state).
        self.tx_update = self.optimizer(**dict.fromkeys(train_hparams.OPTIMIZER_ARGS, 0.0)).update
        self.batch_size = int(static_cfg.train.batch_size)
        self.n_train = n_train
        self.steps_per_epoch = n_train // self.batch_size
        self.segment_epochs = segment_epochs
        self.monitor_name, self.sign = monitor[0], cfgmod.goal_sign(monitor[1])

    def get_batch(self, train, idx, hp, rng):
        if self.wl.make_batch is not None:
            return self.wl.make_batch(train, idx, hp, rng)
        return jax.tree.map(lambda a: a[idx], train)

    def loss_fn(self, params, batch, hp, rng):
        return self.wl.loss(self.model, params, batch, hp, rng)

    def evaluate(self, params, data, hp) -> dict:
        """Evaluation scalars {name: scalar} and per-group ones under "groups" ([groups])."""
        return self.wl.evaluate(self.model, params, data[1], hp)

    def init_params(self, base_seed, member_seed, member_id):
        return self.model.init(jax.random.split(member_key(base_seed, member_seed, member_id), 3)[0], self.sample)

    def init(self, base_seed, member_seed, member_id, hp: Hparams, data, params=None) -> TrainState:
        """A member's initial state; ``params`` from ``init_params`` (computed here when None)."""
        key = member_key(base_seed, member_seed, member_id)
        k_init, k_shuffle, k_drop = jax.random.split(key, 3)
        if params is None:
            params = self.model.init(k_init, self.sample)
        tx = self.optimizer(**train_hparams.optimizer_args(hp))
        evals = self.evaluate(params, data, _with_clock(hp, jnp.int32(0), jnp.int32(0)))
        return TrainState(
            params=params,
            opt_state=tx.init(params),
            step=jnp.int32(0),
            epoch=jnp.int32(0),
            shuffle_seed=jax.random.bits(k_shuffle, dtype=jnp.uint32),
            dropout_seed=jax.random.bits(k_drop, dtype=jnp.uint32),
            diverged=jnp.bool_(False),
            best_params=params,
            init_eval={k: jnp.asarray(evals[k], jnp.float32) for k in self.eval_names},
            monitor=recipes.monitor_init(),
        )

    def lr_at(self, hp: Hparams, step, lr_scale) -> jax.Array:
        spe = float(self.steps_per_epoch)
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

    def train_step(self, state: TrainState, hp: Hparams, data, idx, active):
        """One optimizer step on rows ``idx``; a no-op unless ``active``."""
        rng = hashing.fold(state.dropout_seed, state.step)
        hpx = _with_clock(hp, state.epoch, state.step)
        batch = self.get_batch(data[0], idx, hpx, rng)
        (loss, aux), grads = jax.value_and_grad(self.loss_fn, has_aux=True)(state.params, batch, hpx, rng)
        gnorm = optax.tree.norm(grads)
        clip = hp["train.grad_clip"]
        scale = jnp.where(clip > 0, jnp.minimum(1.0, clip / (gnorm + 1e-12)), 1.0)
        grads = jax.tree.map(lambda g: g * scale, grads)
        opt_state = state.opt_state
        lr = self.lr_at(hp, state.step, state.monitor.lr_scale)
        # every injected hyperparameter from hp (equal to the init values unless
        # population-based training changed this member's hp since)
        injected = train_hparams.optimizer_args(hp, learning_rate=lr)
        injected = {k: jnp.asarray(v, opt_state.hyperparams[k].dtype) for k, v in injected.items()}
        opt_state = opt_state._replace(hyperparams={**opt_state.hyperparams, **injected})
        updates, opt_state = self.tx_update(grads, opt_state, state.params)
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
        logged = {"loss": loss, **{a: aux[a] for a in self.aux_names}}
        return state, {k: jnp.where(active, jnp.asarray(v, jnp.float32), 0.0) for k, v in logged.items()}

    def monitor_step(self, state: TrainState, hp: Hparams, value, active):
        """Early stopping / plateau state after an epoch whose signed metric is ``value``;
        returns (monitor, improved)."""
        ok = active & ~state.diverged & jnp.isfinite(value)
        return recipes.monitor_update(
            state.monitor,
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

    def run_epoch(self, state: TrainState, hp: Hparams, data):
        mon = state.monitor
        active = ~state.diverged & ~mon.stopped & (state.epoch < hp["train.epochs"])
        spe, bs = self.steps_per_epoch, self.batch_size
        perm = hashing.permutation(hashing.fold(state.shuffle_seed, state.epoch), self.n_train)[: spe * bs]
        lr_epoch = self.lr_at(hp, state.step, mon.lr_scale)

        def body(st, idx):
            return self.train_step(st, hp, data, idx, active & ~st.diverged)

        state, losses = jax.lax.scan(body, state, perm.reshape(spe, bs))
        evals = self.evaluate(state.params, data, _with_clock(hp, state.epoch, state.step))
        row = {"train_loss": losses["loss"].mean(), **{f"train_{a}": losses[a].mean() for a in self.aux_names}}
        row.update({k: jnp.asarray(evals[k], jnp.float32) for k in self.eval_names})
        mon, improved = self.monitor_step(state, hp, self.sign * row[self.monitor_name], active)
        best_params = jax.tree.map(lambda n, o: jnp.where(improved, n, o), state.params, state.best_params)
        out = dict(row)
        out.update({f"group_{k}": jnp.asarray(evals["groups"][k], jnp.float32) for k in self.group_metric_names})
        out.update(epoch=state.epoch, active=active, diverged=state.diverged, stopped=mon.stopped, lr=lr_epoch)
        state = state._replace(epoch=state.epoch + active.astype(jnp.int32), best_params=best_params, monitor=mon)
        return state, out

    def run_segment(self, state: TrainState, hp: Hparams, data):
        """``segment_epochs`` epochs; returns metrics {name: [segment_epochs, ...]}."""
        return jax.lax.scan(lambda st, _: self.run_epoch(st, hp, data), state, None, length=self.segment_epochs)
