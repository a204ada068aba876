"""jaxexp.core.layers.conv3x3 / Conv3x3: the same function and gradients as lax.conv.

The matmul forms sum the 9 C products in another order than lax.conv (and the
banded form adds exact zeros), so float32 results differ by rounding only:
measured max abs error <= 1e-6 on unit-normal inputs; checked at 1e-5.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxexp.core import layers

TOL = {"rtol": 1e-5, "atol": 1e-5}


def _reference(x, kernel, bias, relu_pool):
    y = jax.lax.conv_general_dilated(x, kernel, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")) + bias
    return nn.avg_pool(jax.nn.relu(y), (2, 2), strides=(2, 2)) if relu_pool else y


def _inputs(shape, features, seed=0):
    kx, kk, kb = jax.random.split(jax.random.key(seed), 3)
    x = jax.random.normal(kx, shape)
    kernel = jax.random.normal(kk, (3, 3, shape[-1], features)) / 3.0
    return x, kernel, jax.random.normal(kb, (features,))


@pytest.mark.parametrize("relu_pool", [False, True])
@pytest.mark.parametrize("shape,features", [((2, 8, 8, 1), 16), ((3, 4, 6, 5), 7), ((1, 6, 10, 3), 2)])
def test_forward_and_gradients_match_lax_conv(shape, features, relu_pool):
    x, kernel, bias = _inputs(shape, features)
    out = layers.conv3x3(x, kernel, bias, relu_pool)
    ref = _reference(x, kernel, bias, relu_pool)
    assert out.shape == ref.shape
    np.testing.assert_allclose(out, ref, **TOL)
    cot = jax.random.normal(jax.random.key(9), ref.shape)

    def grads(fn):
        return jax.grad(lambda *a: (fn(*a, relu_pool) * cot).sum(), argnums=(0, 1, 2))(x, kernel, bias)

    for g, r in zip(grads(layers.conv3x3), grads(_reference)):
        np.testing.assert_allclose(g, r, **TOL)


@pytest.mark.parametrize("relu_pool", [False, True])
def test_vmapped_members_match_each_member_alone(relu_pool):
    x, _, _ = _inputs((4, 8, 8, 2), 3)
    members = [_inputs((4, 8, 8, 2), 3, seed=s)[1:] for s in range(1, 4)]
    kernels, biases = (jnp.stack(a) for a in zip(*members))
    out = jax.vmap(lambda k, b: layers.conv3x3(x, k, b, relu_pool))(kernels, biases)
    for i, (k, b) in enumerate(members):
        np.testing.assert_allclose(out[i], _reference(x, k, b, relu_pool), **TOL)


def test_module_has_nn_conv_parameters_and_function():
    x, _, _ = _inputs((2, 8, 8, 3), 5)
    params = layers.Conv3x3(5).init(jax.random.key(0), x)
    ref = nn.Conv(5, (3, 3), padding="SAME")
    assert jax.tree.map(jnp.shape, params) == jax.tree.map(jnp.shape, ref.init(jax.random.key(0), x))
    np.testing.assert_allclose(layers.Conv3x3(5).apply(params, x), ref.apply(params, x), **TOL)
    pooled = layers.Conv3x3(5, relu_pool=True).apply(params, x)
    np.testing.assert_allclose(pooled, nn.avg_pool(nn.relu(ref.apply(params, x)), (2, 2), (2, 2)), **TOL)
    with pytest.raises(ValueError, match="even"):
        layers.conv3x3(x[:, :7], params["params"]["kernel"], params["params"]["bias"], relu_pool=True)


@pytest.mark.slow
def test_training_matches_lax_conv_after_adam_steps():
    """conv(relu, pool) -> conv -> dense trained 8 AdamW steps both ways: losses within 1e-4."""
    x, _, _ = _inputs((32, 8, 8, 1), 1)
    y = jnp.arange(32) % 10
    p0 = {"c0": _inputs((1, 8, 8, 1), 8, 1)[1:], "c1": _inputs((1, 4, 4, 8), 8, 2)[1:]}
    p0["head"] = jax.random.normal(jax.random.key(3), (128, 10)) / 11.0

    def loss(params, conv):
        h = conv(x, *params["c0"], True)
        h = jax.nn.relu(conv(h, *params["c1"], False)).reshape(len(x), -1)
        return optax.softmax_cross_entropy_with_integer_labels(h @ params["head"], y).mean()

    def train(conv):
        tx = optax.adamw(3e-2, weight_decay=1e-4)
        params, state, losses = p0, tx.init(p0), []
        for _ in range(8):
            value, g = jax.value_and_grad(loss)(params, conv)
            updates, state = tx.update(g, state, params)
            params, losses = optax.apply_updates(params, updates), [*losses, float(value)]
        return np.array(losses)

    got, want = train(layers.conv3x3), train(_reference)
    assert want[-1] < 0.8 * want[0]  # not vacuous: it learned
    np.testing.assert_allclose(got, want, rtol=1e-4)
