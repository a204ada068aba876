import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxexp.core import hashing, models, schedules


def _mult(kind, step, total=100.0, warmup=0.0, min_ratio=0.0, every=10.0, rate=0.5):
    return float(schedules.lr_multiplier(kind, step, total, warmup, min_ratio, every, rate))


def test_schedules_match_optax_on_concrete_values():
    cos = optax.warmup_cosine_decay_schedule(0.0, 1.0, warmup_steps=10, decay_steps=100, end_value=0.1)
    step = optax.exponential_decay(1.0, transition_steps=10, decay_rate=0.5, staircase=True)
    for t in [10, 11, 37, 60, 99, 150]:
        assert np.isclose(_mult(1, t, total=100.0, warmup=10.0, min_ratio=0.1), float(cos(t)), atol=1e-6)
    for t in [0, 9, 10, 25, 99]:
        assert np.isclose(_mult(2, t, every=10.0, rate=0.5), float(step(t)), atol=1e-6)
        assert _mult(0, t) == 1.0
    # linear warmup: (t + 1) / warmup during warmup
    assert np.isclose(_mult(0, 4, warmup=10.0), 0.5)


def test_schedules_take_traced_per_member_parameters():
    kinds = jnp.array([0, 1, 2])
    warm = jnp.array([0.0, 5.0, 2.0])
    out = jax.jit(jax.vmap(lambda k, w: schedules.lr_multiplier(k, 7, 20.0, w, 0.0, 3.0, 0.1)))(kinds, warm)
    expected = [
        _mult(0, 7, 20.0, 0.0, 0.0, 3.0, 0.1),
        _mult(1, 7, 20.0, 5.0, 0.0, 3.0, 0.1),
        _mult(2, 7, 20.0, 2.0, 0.0, 3.0, 0.1),
    ]
    assert np.allclose(out, expected, atol=1e-6)


def test_hash_dropout_rate_is_traced_and_unbiased():
    x = jnp.ones((256, 512))
    rates = jnp.array([0.0, 0.1, 0.5])
    seed = jnp.uint32(1234)
    out = jax.jit(jax.vmap(lambda r: models.dropout(x, r, seed)))(rates)
    assert np.array_equal(out[0], x)  # rate 0 keeps everything unchanged
    for i, r in ((1, 0.1), (2, 0.5)):
        dropped = float((out[i] == 0).mean())
        assert abs(dropped - r) < 0.01, (r, dropped)
        assert abs(float(out[i].mean()) - 1.0) < 0.02  # inverted dropout keeps the mean
    # deterministic per seed, different across seeds and layers
    again = models.dropout(x, 0.5, seed)
    assert np.array_equal(again, out[2])
    other = models.dropout(x, 0.5, hashing.fold(seed, 1))
    assert 0.4 < float(((other == 0) != (again == 0)).mean()) < 0.6


def test_mlp_shapes():
    m = models.MLP(hidden=(8, 4), n_out=3)
    params = m.init(jax.random.key(0), jnp.zeros((1, 5)))["params"]
    assert params["Dense_0"]["kernel"].shape == (5, 8)
    y = m.apply({"params": params}, jnp.ones((7, 5)), 0.5, 0.0, seed=jnp.uint32(3))
    assert y.shape == (7, 3)


@pytest.mark.parametrize("n", [1, 2, 7, 100, 4096, 1437])
def test_hash_permutation_is_a_permutation(n):
    perms = jax.jit(jax.vmap(lambda s: hashing.permutation(s, n)))(jnp.arange(5, dtype=jnp.uint32))
    for p in np.asarray(perms):
        assert sorted(p.tolist()) == list(range(n))
    if n >= 100:
        assert len({tuple(p) for p in np.asarray(perms)}) == 5  # seeds give different orders


def test_hash_permutation_mixes_well():
    # Over many seeds every element lands in every position about equally often,
    # and neighbours are not kept together (a weak shuffle keeps i and i+1 close).
    n, seeds = 64, 4000
    perms = np.asarray(jax.vmap(lambda s: hashing.permutation(s, n))(jnp.arange(seeds, dtype=jnp.uint32)))
    counts = np.zeros((n, n))
    for p in perms:
        counts[p, np.arange(n)] += 1
    expected = seeds / n
    chi2 = ((counts - expected) ** 2 / expected).sum()
    dof = (n - 1) ** 2
    assert chi2 < dof + 5 * np.sqrt(2 * dof), chi2
    pos = np.argsort(perms, axis=1)
    gap = np.abs(pos[:, 1:] - pos[:, :-1]).mean()
    assert abs(gap - (n + 1) / 3) < 1.0, gap  # mean |pos(i+1) - pos(i)| of a uniform shuffle
