"""Fast unit tests of the device program on one member: a training segment
(``jaxexp.core.train``), the monitor (``jaxexp.core.recipes``), the learning-rate schedules
(``jaxexp.core.schedules``) and dropout (``jaxexp.core.layers``), called directly, without
the engine, a workdir or a sweep. The end-to-end sweeps are in the other
modules (most of them marked ``slow``).

The segment tests share two compiled programs (one member, and a vmapped
population of 3); every hyperparameter they vary is traced, so nothing else
compiles (asserted).
"""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tiny_config

from jaxexp import config as cfgmod
from jaxexp.core import hashing, layers, models, recipes, schedules, train

# One member alone vs the same member in a vmapped population: a batched matmul may
# sum in another order, so results differ by float32 rounding compounded over the
# 24 steps of a segment (measured here: ~1e-7 relative); the tolerance of
# tests/test_engine.py leaves room for other CPUs' kernels.
RTOL, ATOL = 1e-4, 1e-6

EPOCHS = 3  # one segment of 3 epochs; the tiny task has 256 rows in batches of 32
STEPS_PER_EPOCH = 256 // 32


class Core:
    """The member program of the tiny MLP config, jitted once for one member and
    once vmapped over 3; ``traces`` counts the traces of each."""

    def __init__(self):
        c = tiny_config()
        c.train.epochs = EPOCHS
        dataset = cfgmod.workload_of(c).dataset(c)
        self.program = train.make_program(c, dataset, EPOCHS, (), ("val_mse", "min"))
        self.hp = {k: jnp.asarray(v) for k, v in train.one_member(c, dataset).items()}
        self.data = jax.tree.map(jnp.asarray, train.data_of(dataset))
        self.traces = {"one": 0, "population": 0}

        def run(seed, member_id, hp, data):
            state = self.program.init(jnp.uint32(0), seed, member_id, hp, data)
            return state, *self.program.run_segment(state, hp, data)

        def one(seed, member_id, hp, data):
            self.traces["one"] += 1
            return run(seed, member_id, hp, data)

        def population(seeds, ids, hp, data):
            self.traces["population"] += 1
            return jax.vmap(run, in_axes=(0, 0, 0, None))(seeds, ids, hp, data)

        self._one, self._population = jax.jit(one), jax.jit(population)

    def hparams(self, **values) -> dict:
        """The config's traced values with some replaced ({"lr": 0.1} sets train.lr)."""
        hp = dict(self.hp)
        for k, v in values.items():
            path = k if k in hp else f"train.{k}"
            assert path in hp, k
            hp[path] = jnp.asarray(v, hp[path].dtype)
        return hp

    def one(self, seed=0, member_id=0, **values):
        """(initial state, final state, metrics {name: [EPOCHS]}) of one member."""
        return self._one(jnp.uint32(seed), jnp.uint32(member_id), self.hparams(**values), self.data)

    def population(self, seeds, ids, hps):
        stacked = jax.tree.map(lambda *v: jnp.stack(v), *hps)
        return self._population(jnp.asarray(seeds, jnp.uint32), jnp.asarray(ids, jnp.uint32), stacked, self.data)

    def val_mse(self, params) -> float:
        val = self.data[1]
        return float(jnp.mean((self.program.model.apply(params, val["x"]) - val["y"]) ** 2))


@pytest.fixture(scope="module")
def core():
    return Core()


def _member(tree, i: int):
    return jax.tree.map(lambda a: a[i], tree)


def _leaves_equal(a, b) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))


# ----------------------------------------------------------------------------- one training segment


def test_one_segment_of_one_member_trains(core):
    init, state, m = core.one()
    assert set(core.program.metric_names) <= set(m)
    loss = np.asarray(m["train_loss"])
    assert loss.shape == (EPOCHS,) and np.isfinite(loss).all()
    assert (np.diff(loss) < 0).all(), loss  # the mean training loss falls every epoch
    val = np.asarray(m["val_mse"])
    assert val[-1] < float(init.init_eval["val_mse"]), (val, init.init_eval)  # better than the initial parameters
    np.testing.assert_array_equal(m["epoch"], np.arange(EPOCHS))  # 0-based epoch of each row
    assert np.asarray(m["active"]).all() and not np.asarray(m["diverged"]).any() and not np.asarray(m["stopped"]).any()
    assert int(state.step) == EPOCHS * STEPS_PER_EPOCH and int(state.epoch) == EPOCHS
    assert not _leaves_equal(state.params, init.params)


def test_a_segment_is_deterministic_and_depends_on_the_member_key(core):
    first = core.one(seed=3, member_id=1)
    again = core.one(seed=3, member_id=1)
    assert _leaves_equal(first, again)  # bit for bit: state, optimizer state, monitor and metrics
    for other in (core.one(seed=4, member_id=1), core.one(seed=3, member_id=2)):
        assert not _leaves_equal(other[0].params, first[0].params)  # other initial parameters
        assert not np.array_equal(other[2]["train_loss"], first[2]["train_loss"])


def test_a_member_alone_equals_the_same_member_in_a_vmapped_population(core):
    seeds, ids = [5, 0, 7], [2, 0, 1]
    hps = [
        core.hparams(lr=3e-3, **{"model.dropout": 0.0}),
        core.hparams(lr=1e-2, **{"model.dropout": 0.1}),
        core.hparams(lr=3e-2, **{"model.dropout": 0.3}, schedule=1),
    ]
    _, pop_state, pop_m = core.population(seeds, ids, hps)
    for i in range(3):
        _, state, m = core._one(jnp.uint32(seeds[i]), jnp.uint32(ids[i]), hps[i], core.data)
        for name in m:
            np.testing.assert_allclose(_member(pop_m, i)[name], m[name], rtol=RTOL, atol=ATOL, err_msg=name)
        for a, b in zip(jax.tree.leaves(_member(pop_state.params, i)), jax.tree.leaves(state.params), strict=True):
            np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL)
        assert int(pop_state.step[i]) == int(state.step)
    # the members really differ (the comparison is not vacuous)
    losses = np.asarray(pop_m["train_loss"])
    assert not np.allclose(losses[0], losses[1]) and not np.allclose(losses[1], losses[2])


def test_the_best_epoch_and_its_parameters_are_kept(core):
    # lr 0.01 for two epochs, then x100 (step decay every 2 epochs at rate 100): epoch 3 is worse
    init, state, m = core.one(schedule=2, decay_every_epochs=2.0, decay_rate=100.0)
    np.testing.assert_allclose(np.asarray(m["lr"]), [0.01, 0.01, 1.0], rtol=1e-6)
    val = np.asarray(m["val_mse"])
    assert val[2] > val[1], val
    mon = state.monitor
    assert int(mon.best_epoch) == 1 + int(np.argmin(val)) == 2
    assert float(mon.best) == val.min()
    np.testing.assert_allclose(core.val_mse(state.best_params), val[1], rtol=1e-5)  # epoch 2's parameters
    assert not _leaves_equal(state.best_params, state.params)


def test_a_diverging_member_freezes_at_its_last_finite_parameters(core):
    init, state, m = core.one(lr=1e10)  # the first step is finite, the second overflows
    assert bool(state.diverged) and np.asarray(m["diverged"]).all()
    np.testing.assert_array_equal(m["active"], [True, False, False])  # no epoch after the one that diverged
    assert int(state.step) == 1 and int(state.epoch) == 1  # the overflowing step was not committed
    assert all(np.isfinite(leaf).all() for leaf in jax.tree.leaves(state.params))
    assert not _leaves_equal(state.params, init.params)
    # the monitor never took the diverged epoch (no best, no bad epoch counted): the initial parameters kept
    assert int(state.monitor.best_epoch) == 0 and math.isinf(float(state.monitor.best))
    assert _leaves_equal(state.monitor, recipes.monitor_init())
    assert _leaves_equal(state.best_params, init.params)
    np.testing.assert_array_equal(np.asarray(m["train_loss"])[1:], 0.0)  # inactive rows log 0


def test_early_stopping_and_plateau_inside_a_segment(core):
    # min_delta 1e3: nothing counts as an improvement after epoch 1 (a scripted plateau)
    _, stop, m = core.one(min_delta=1e3, early_stop_patience=1)
    np.testing.assert_array_equal(m["active"], [True, True, False])
    np.testing.assert_array_equal(m["stopped"], [False, True, True])
    assert int(stop.monitor.stop_epoch) == 2
    # the best epoch still follows every strict improvement (min_delta is for the patience counters)
    assert int(stop.monitor.best_epoch) == 1 + int(np.argmin(np.asarray(m["val_mse"])[:2]))
    assert int(stop.epoch) == 2 and int(stop.step) == 2 * STEPS_PER_EPOCH  # no step after stopping
    # plateau: bad epochs 2 and 3 exceed a patience of 1, so the LR scale is cut once, after epoch 3
    _, plateau, m = core.one(min_delta=1e3, plateau_patience=1, plateau_factor=0.25)
    assert np.asarray(m["active"]).all()
    assert float(plateau.monitor.lr_scale) == 0.25 and int(plateau.monitor.plateau_wait) == 0


@pytest.mark.parametrize(
    "knobs, multipliers",
    [
        ({}, [1.0, 1.0, 1.0]),  # constant
        # cosine after a 1-epoch (8-step) warmup, to 0.1 of the peak over the other 16 steps:
        # step 0: warmup 1/8; step 8: cosine start; step 16: halfway, 0.1 + 0.9 * 0.5
        ({"schedule": 1, "warmup_epochs": 1.0, "min_lr_ratio": 0.1}, [1 / 8, 1.0, 0.55]),
        ({"schedule": 2, "decay_every_epochs": 1.0, "decay_rate": 0.5}, [1.0, 0.5, 0.25]),  # halved every epoch
        # warm restarts: a first period of 1 epoch, then 2 epochs: steps 0 and 8 start a period, 16 is halfway
        ({"schedule": 3, "restart_epochs": 1.0, "restart_mult": 2.0, "min_lr_ratio": 0.0}, [1.0, 1.0, 0.5]),
    ],
)
def test_the_logged_lr_follows_the_schedule_in_steps(core, knobs, multipliers):
    """The LR at each epoch's first step (epoch hyperparameters turned into steps)."""
    _, _, m = core.one(lr=0.02, **knobs)
    np.testing.assert_allclose(np.asarray(m["lr"]), 0.02 * np.asarray(multipliers), rtol=1e-5)


def test_traced_hyperparameters_never_recompile(core):
    core.one()
    traces = core.traces["one"]
    core.one(seed=1, member_id=5, lr=0.5, schedule=3, early_stop_patience=2, **{"model.dropout": 0.4})
    assert core.traces["one"] == traces == 1  # one compile for every member of this module's tests


# ----------------------------------------------------------------------------- the monitor on hand-made sequences


def _monitor_run(curve, active=None, **knobs):
    """monitor_update over a curve of sign-adjusted values: the per-epoch monitors and ``improved`` flags."""
    defaults = dict(min_delta=0.0, patience=0, plateau_patience=0, plateau_factor=0.5, min_scale=0.0, start_epoch=0)
    knobs = {k: jnp.asarray(v) for k, v in {**defaults, **knobs}.items()}
    active = np.ones(len(curve), bool) if active is None else np.asarray(active)

    def step(mon, xs):
        value, epoch, on = xs
        mon, improved = recipes.monitor_update(mon, value, epoch, on, **knobs)
        return mon, (mon, improved)

    xs = (jnp.asarray(curve, jnp.float32), jnp.arange(1, len(curve) + 1, dtype=jnp.int32), jnp.asarray(active))
    return jax.lax.scan(step, recipes.monitor_init(), xs)[1]


def test_non_finite_values_never_improve_and_count_as_bad_epochs():
    # min_delta 0.6: 2.0 beats 3.0 by more (resets the count), 1.5 is a new best but not 0.6 better than 2.0
    curve = [3.0, np.nan, 2.0, 2.0, np.inf, 1.5]
    mons, improved = _monitor_run(curve, min_delta=0.6)
    np.testing.assert_array_equal(improved, [True, False, True, False, False, True])
    np.testing.assert_array_equal(mons.best_epoch, [1, 1, 3, 3, 3, 6])
    np.testing.assert_array_equal(mons.best, [3.0, 3.0, 2.0, 2.0, 2.0, 1.5])
    np.testing.assert_array_equal(mons.ref, [3.0, 3.0, 2.0, 2.0, 2.0, 2.0])
    np.testing.assert_array_equal(mons.wait, [0, 1, 0, 1, 2, 3])
    # with patience 2 the NaN and the tie count: stop after epoch 5 (the inf)
    stopped, _ = _monitor_run(curve, min_delta=0.6, patience=2)
    assert int(stopped.stop_epoch[-1]) == 5 and bool(stopped.stopped[-1])


def test_a_tie_is_not_an_improvement():
    mons, improved = _monitor_run([2.0, 2.0, 1.0, 1.0])
    np.testing.assert_array_equal(improved, [True, False, True, False])
    np.testing.assert_array_equal(mons.best_epoch, [1, 1, 3, 3])


def test_inactive_epochs_change_nothing():
    # epochs 2-3 inactive (stopped, diverged or past train.epochs): a great value there is ignored
    curve = [3.0, 0.1, np.nan, 2.0]
    mons, improved = _monitor_run(curve, active=[True, False, False, True], patience=1, plateau_patience=1)
    np.testing.assert_array_equal(improved, [True, False, False, True])
    for field in recipes.Monitor._fields:
        np.testing.assert_array_equal(getattr(mons, field)[1], getattr(mons, field)[0], err_msg=field)
        np.testing.assert_array_equal(getattr(mons, field)[2], getattr(mons, field)[0], err_msg=field)
    assert int(mons.best_epoch[-1]) == 4 and not bool(mons.stopped[-1])


# ----------------------------------------------------------------------------- schedules against closed forms


# multiplier(kind, steps): total 100 steps, min ratio 0.1, step decay x0.5 every 3, restarts every 4 (x2)
_multipliers = jax.jit(
    jax.vmap(lambda kind, t, w: schedules.lr_multiplier(kind, t, 100.0, w, 0.1, 3.0, 0.5, 4.0, 2.0), (None, 0, None))
)


@pytest.mark.parametrize("kind", [0, 1, 2, 3])
def test_warmup_is_linear_and_holds_every_decay_at_its_start(kind):
    got = np.asarray(_multipliers(kind, jnp.arange(0, 11, dtype=jnp.float32), 10.0))
    np.testing.assert_allclose(got[:10], (np.arange(10) + 1) / 10, rtol=1e-6)  # (t + 1) / warmup
    # the decay clock starts when warmup ends: step 10 is the peak for every kind
    assert got[10] == pytest.approx(1.0)


def test_no_warmup_is_a_multiplier_of_one():
    np.testing.assert_array_equal(np.asarray(schedules.warmup(jnp.arange(5.0), 0.0)), np.ones(5))


def test_cosine_closed_form_and_floor_after_the_end():
    total, lo = 40.0, 0.2
    for t in (0, 10, 20, 30, 40, 55, 400):
        want = lo + (1 - lo) * 0.5 * (1 + math.cos(math.pi * min(t / total, 1.0)))
        assert float(schedules.cosine(jnp.float32(t), total, lo)) == pytest.approx(want, abs=1e-6), t
    assert float(schedules.cosine(jnp.float32(400), total, lo)) == pytest.approx(lo)  # stays at the floor


def test_step_decay_changes_exactly_at_multiples_of_its_period():
    got = [float(schedules.step_decay(jnp.float32(t), 5.0, 0.1)) for t in (0, 4, 5, 9, 10, 14, 15)]
    np.testing.assert_allclose(got, [1, 1, 0.1, 0.1, 0.01, 0.01, 0.001], rtol=1e-6)


# ----------------------------------------------------------------------------- dropout


@pytest.mark.parametrize("rate", [0.1, 0.25, 0.5, 0.9])
def test_dropout_keeps_about_1_minus_rate_scaled_by_its_inverse(rate):
    x = jax.random.normal(jax.random.key(0), (512, 512)) + 3.0  # no exact zeros in x
    out = np.asarray(layers.dropout(x, rate, jnp.uint32(11)))
    x = np.asarray(x)
    kept = out != 0
    n = kept.size
    # Binomial(n, 1 - rate): 5 standard deviations
    assert abs(kept.mean() - (1 - rate)) < 5 * math.sqrt(rate * (1 - rate) / n), kept.mean()
    np.testing.assert_allclose(out[kept], x[kept] / (1 - rate), rtol=1e-6)  # inverted dropout: 1 / (1 - rate)
    # per row and per column too (the mask is not striped)
    for axis in (0, 1):
        assert np.abs(kept.mean(axis=axis) - (1 - rate)).max() < 6 * math.sqrt(rate * (1 - rate) / 512)


def test_dropout_rate_zero_and_evaluation_are_the_identity():
    x = jax.random.normal(jax.random.key(1), (64, 33)).astype(jnp.bfloat16)
    for out in (layers.dropout(x, 0.0, jnp.uint32(5)), layers.dropout(x, 0.7, None)):
        assert out.dtype == x.dtype
        np.testing.assert_array_equal(np.asarray(out, np.float32), np.asarray(x, np.float32))
    assert layers.dropout(x, 0.5, jnp.uint32(5)).dtype == jnp.bfloat16


def test_dropout_masks_are_reproducible_per_seed_and_differ_across_seeds():
    x = jnp.ones((256, 256))
    masks = {s: np.asarray(layers.dropout(x, 0.5, jnp.uint32(s))) != 0 for s in (0, 1, 2**32 - 1)}
    for s, mask in masks.items():
        np.testing.assert_array_equal(np.asarray(layers.dropout(x, 0.5, jnp.uint32(s))) != 0, mask)
    seeds = list(masks)
    for i, a in enumerate(seeds):
        for b in seeds[i + 1 :]:
            assert 0.45 < (masks[a] != masks[b]).mean() < 0.55  # independent masks: half the elements differ
    # under jit and vmap with a traced seed: the same masks
    batched = jax.jit(jax.vmap(lambda s: layers.dropout(x, 0.5, s)))(jnp.asarray(seeds, jnp.uint32))
    for k, s in enumerate(seeds):
        np.testing.assert_array_equal(np.asarray(batched[k]) != 0, masks[s])


def test_dropout_layers_draw_independent_masks_from_one_seed():
    x = jnp.ones((128, 64))
    seed = jnp.uint32(9)

    class Two(nn.Module):
        @nn.compact
        def __call__(self, x, rate, seed=None):
            return layers.Dropout()(x, rate, seed), layers.Dropout()(x, rate, seed)

    two = Two()
    a, b = two.apply({}, x, 0.5, seed)
    assert 0.45 < float(((a == 0) != (b == 0)).mean()) < 0.55  # each layer folds its path into the seed
    a2, _ = two.apply({}, x, 0.5, seed)
    np.testing.assert_array_equal(a, a2)
    np.testing.assert_array_equal(two.apply({}, x, 0.5)[0], x)  # no seed: evaluation
    # NNX-style: the salt tells layers apart
    one, other = layers.NNXDropout("attn"), layers.NNXDropout("mlp")
    assert not np.array_equal(one(x, 0.5, seed), other(x, 0.5, seed))
    np.testing.assert_array_equal(one(x, 0.5, seed), layers.NNXDropout("attn")(x, 0.5, seed))


def test_an_mlp_without_masks_equals_one_with_rate_zero():
    """The static switch a bucket uses when every member's rate is 0 changes no number."""
    x = jax.random.normal(jax.random.key(2), (16, 5))
    on = models.MLP(hidden=(8, 8), n_out=2)
    off = models.MLP(hidden=(8, 8), n_out=2, use_input_dropout=False, use_dropout=False)
    params = on.init(jax.random.key(0), x)
    seed = jnp.uint32(4)
    np.testing.assert_array_equal(on.apply(params, x, 0.0, 0.0, seed=seed), off.apply(params, x, 0.3, 0.3, seed=seed))
    assert not np.array_equal(on.apply(params, x, 0.3, 0.0, seed=seed), on.apply(params, x, 0.0, 0.0, seed=seed))


def test_hash_uniform_is_in_the_unit_interval_and_flat():
    u = np.asarray(hashing.uniform(jnp.uint32(123), (1 << 16,)))
    assert u.min() >= 0.0 and u.max() < 1.0
    counts = np.histogram(u, bins=16, range=(0, 1))[0]
    expected = u.size / 16
    assert ((counts - expected) ** 2 / expected).sum() < 15 + 5 * math.sqrt(30)  # chi-square, 15 dof
