"""A user's own workload as a plain file (tests load it by path): a two-layer
linen net on a synthetic regression, a two-term loss, its own metric "score"."""

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

import jaxexp

NAME = "tiny_user"
METRIC = ("score", "max")
HPARAMS = {
    "width": jaxexp.static(8, 1, 256, doc="hidden units"),
    "n_rows": jaxexp.static(256, 16, arch=False, doc="training rows"),
    "dropout": jaxexp.traced(0.1, 0.0, 0.9),
    "smooth_weight": jaxexp.traced(0.01, 0.0, 10.0, doc="weight of the output-magnitude term"),
}


def data(cfg):
    rng = np.random.default_rng(0)
    n = cfg.n_rows + 64
    x = rng.normal(size=(n, 4)).astype(np.float32)
    y = (np.sin(x[:, :1] * 2) + 0.5 * x[:, 1:2] + 0.1 * rng.normal(size=(n, 1))).astype(np.float32)
    split = lambda a, b: {"x": x[a:b], "y": y[a:b]}  # noqa: E731
    return jaxexp.Dataset(split(0, cfg.n_rows), split(cfg.n_rows, n))


class Net(nn.Module):
    width: int

    @nn.compact
    def __call__(self, x, rate=0.0, seed=None):
        h = nn.relu(nn.Dense(self.width)(x))
        h = jaxexp.Dropout()(h, rate, seed)
        return nn.Dense(1)(h)


def model(cfg, data):
    return Net(cfg.width)


def loss(model, params, batch, hp, rng):
    pred = model.apply(params, batch["x"], hp["dropout"], rng)
    mse = jnp.mean((pred - batch["y"]) ** 2)
    smooth = jnp.mean(pred**2)
    return mse + hp["smooth_weight"] * smooth, {"mse": mse, "smooth": smooth}


def evaluate(model, params, val, hp):
    mse = jnp.mean((model.apply(params, val["x"]) - val["y"]) ** 2)
    return {"score": -mse, "mse": mse}


def predict(model, params, split, hp):
    return split["y"], model.apply(params, split["x"])
