"""Image classification on the 8x8 scikit-learn digits with a conditional encoder.

A user-style workload (``jaxexp.workload``): the static ``encoder_type`` picks
the structure, a small CNN (``depth`` 3x3 conv layers of ``width`` channels,
a 2x2 average pool after the first) or a "context" encoder (2x2 patches
embedded, a learned position embedding, one pre-norm self-attention block,
mean-pooled). ``depth`` and ``width`` only shape the CNN: a sweep conditions
them on ``encoder_type == "cnn"``, so every context member shares one bucket.
The traced ``dropout`` (before the classifier head) and ``label_smoothing``
differ per member inside one compiled program.

Data: 1797 images [N, 8, 8, 1], pixels scaled to [0, 1]; labels int32 0..9;
a fixed 80/20 split (seed 0). Metrics: validation ``accuracy`` and ``loss``
(cross-entropy without smoothing).
"""

from __future__ import annotations

from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxexp
from jaxexp.core import hashing, layers
from jaxexp.tasks import bundled
from jaxexp.workload import Dataset, static, traced

NAME = "cnn_encoder"
METRIC = ("accuracy", "max")
N_CLASSES = 10
CONTEXT_DIM = 32  # the context encoder's token width
CONTEXT_HEADS = 4
PATCH = 2  # the context encoder's patch side (8x8 -> 16 tokens)


def _rate(v) -> str | None:
    return None if 0.0 <= v < 1.0 else "must be in [0, 1)"


HPARAMS = {
    "encoder_type": static("cnn", choices=("cnn", "context"), doc="cnn: conv stack; context: patch self-attention"),
    "depth": static(2, 1, 4, doc="cnn only: 3x3 conv layers"),
    "width": static(16, 1, 128, doc="cnn only: channels of every conv layer"),
    "dropout": traced(0.1, 0.0, 0.9, check=_rate, doc="dropout rate before the classifier head"),
    "label_smoothing": traced(0.0, 0.0, 0.3, doc="label smoothing of the training cross-entropy"),
}


def data(cfg) -> Dataset:
    del cfg  # one fixed split for every member
    task = bundled.digits(val_fraction=0.2, seed=0)

    def split(x, y):
        return {"x": (x.reshape(-1, 8, 8, 1) / 16.0).astype(np.float32), "y": np.asarray(y, np.int32)}

    info = {"source": "sklearn.datasets.load_digits", "pixels": "[0, 1]", "n_classes": N_CLASSES}
    return Dataset(split(task.x_train, task.y_train), split(task.x_val, task.y_val), info=info)


def _seed(key) -> jax.Array:
    """A uint32 seed from a JAX key (its raw words mixed: no threefry)."""
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.key_data(key)
    words = key.reshape(-1).astype(jnp.uint32)
    seed = words[0]
    for i in range(1, words.shape[0]):
        seed = hashing.fold(seed ^ words[i], i)
    return seed


def lecun_uniform(key, shape, dtype=jnp.float32):
    """Uniform(-a, a) with variance 1/fan_in, drawn from an integer hash of the key.

    Flax's default (truncated normal through threefry) is as good but, vmapped
    over members, each draw costs XLA:CPU ~3 s of compile (measured: a 3-layer
    model's init compiled in 6-11 s, 0.3-0.7 s with this).
    """
    fan_in = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
    u = hashing.uniform(_seed(key), tuple(shape))
    return ((2.0 * u - 1.0) * np.sqrt(3.0 / fan_in)).astype(dtype)


def small_uniform(std: float):
    def init(key, shape, dtype=jnp.float32):
        return ((2.0 * hashing.uniform(_seed(key), tuple(shape)) - 1.0) * (std * np.sqrt(3.0))).astype(dtype)

    return init


def _dense(features: int, name: str) -> nn.Dense:
    return nn.Dense(features, kernel_init=lecun_uniform, name=name)


class Conv3x3(layers.Conv3x3):
    """``jaxexp.core.layers.Conv3x3`` with this module's initialiser: a 3x3 'SAME' convolution
    as matmuls (im2col, or with ``relu_pool=True`` a banded matmul per row pair with
    ReLU and the 2x2 average pool fused), the parameters of nn.Conv.

    Vmapped over members, lax.conv becomes a grouped convolution that XLA:CPU runs
    slowly (measured: a depth-2 width-16 bucket's 12 epochs took 5.0 s of segments
    with nn.Conv, 0.6 s with im2col). The fused first layer (no K=9 matmul, no
    reduce_window) took a member's training step on one core from ~305 to ~275 us.
    """

    kernel_init: Callable = lecun_uniform


class CNN(nn.Module):
    depth: int
    width: int

    @nn.compact
    def __call__(self, x):
        for i in range(self.depth):
            if i == 0:  # relu, then a 2x2 average pool: 8x8 -> 4x4
                x = Conv3x3(self.width, relu_pool=True, name="conv0")(x)
            else:
                x = nn.relu(Conv3x3(self.width, name=f"conv{i}")(x))
        return x.reshape(x.shape[0], -1)


class Context(nn.Module):
    """2x2 patch embedding + learned positions + one self-attention block, mean-pooled."""

    dim: int = CONTEXT_DIM
    heads: int = CONTEXT_HEADS
    patch: int = PATCH

    @nn.compact
    def __call__(self, x):
        n, h, w, c = x.shape
        p, d, k = self.patch, self.dim, self.heads
        tokens = x.reshape(n, h // p, p, w // p, p, c).transpose(0, 1, 3, 2, 4, 5).reshape(n, -1, p * p * c)
        t = _dense(d, "embed")(tokens)
        t = t + self.param("pos", small_uniform(0.02), (1, t.shape[1], d))
        # one pre-norm block: multi-head self-attention, then a small MLP, each residual
        q, key, v = jnp.split(_dense(3 * d, "qkv")(nn.LayerNorm(name="ln1")(t)), 3, axis=-1)
        q, key, v = (a.reshape(n, -1, k, d // k) for a in (q, key, v))
        att = jax.nn.softmax(jnp.einsum("nqhd,nkhd->nhqk", q, key) / np.sqrt(d // k), axis=-1)
        t = t + _dense(d, "proj")(jnp.einsum("nhqk,nkhd->nqhd", att, v).reshape(n, -1, d))
        t = t + _dense(d, "mlp")(nn.gelu(_dense(d, "mlp_in")(nn.LayerNorm(name="ln2")(t))))
        return nn.LayerNorm(name="ln_out")(t).mean(axis=1)


class Classifier(nn.Module):
    encoder_type: str
    depth: int
    width: int

    @nn.compact
    def __call__(self, x, dropout=0.0, seed=None):
        if self.encoder_type == "cnn":
            z = CNN(self.depth, self.width, name="encoder")(x)
        else:
            z = Context(name="encoder")(x)
        z = jaxexp.Dropout(name="head_dropout")(z, dropout, seed)
        return _dense(N_CLASSES, "head")(z)


def model(cfg, data: Dataset):
    del data
    return Classifier(encoder_type=cfg.encoder_type, depth=int(cfg.depth), width=int(cfg.width))


def loss(model, params, batch, hp, rng):
    logits = model.apply(params, batch["x"], hp["dropout"], rng)
    onehot = jax.nn.one_hot(batch["y"], N_CLASSES)
    ls = hp["label_smoothing"]
    targets = onehot * (1.0 - ls) + ls / N_CLASSES
    ce = optax.softmax_cross_entropy(logits, targets).mean()
    return ce, {"accuracy": (logits.argmax(-1) == batch["y"]).astype(jnp.float32).mean()}


def evaluate(model, params, val, hp) -> dict:
    del hp
    logits = model.apply(params, val["x"])
    return {
        "accuracy": (logits.argmax(-1) == val["y"]).astype(jnp.float32).mean(),
        "loss": optax.softmax_cross_entropy_with_integer_labels(logits, val["y"]).mean(),
    }


def predict(model, params, split, hp):
    del hp
    return split["y"], model.apply(params, split["x"])
