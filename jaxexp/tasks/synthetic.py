"""Built-in deterministic tasks that need no download.

Both draw Gaussian features and label them with a fixed random "teacher"
network, so the best achievable validation score is known:
- regression: y = teacher(x) + noise * eps, eps ~ N(0, 1); the val MSE floor is
  noise**2 in the units of y (before standardisation).
- classification: y = argmax teacher(x), then a fraction ``noise`` of labels
  replaced uniformly at random; the accuracy ceiling is 1 - noise * (C - 1) / C.
"""

from __future__ import annotations

import numpy as np

from jaxexp.tasks.base import Task, make_task


def _teacher(rng: np.random.Generator, x: np.ndarray, n_out: int, width: int = 32) -> np.ndarray:
    f = x.shape[1]
    w1 = rng.normal(size=(f, width)) / np.sqrt(f)
    w2 = rng.normal(size=(width, n_out)) / np.sqrt(width)
    return np.tanh(x @ w1 * 1.5) @ w2


def regression(n_train: int, n_val: int, n_features: int, noise: float, seed: int) -> Task:
    rng = np.random.default_rng([seed, 1])
    x = rng.normal(size=(n_train + n_val, n_features))
    clean = _teacher(np.random.default_rng([seed, 2]), x, 1)
    clean = clean / clean.std()  # unit-variance signal: noise is the noise-to-signal ratio
    y = clean + noise * rng.normal(size=clean.shape)
    info = {"noise_floor_mse": noise**2}
    return make_task("regression", "regression", x[:n_train], y[:n_train], x[n_train:], y[n_train:], info)


def classification(n_train: int, n_val: int, n_features: int, n_classes: int, noise: float, seed: int) -> Task:
    rng = np.random.default_rng([seed, 3])
    x = rng.normal(size=(n_train + n_val, n_features))
    y = _teacher(np.random.default_rng([seed, 4]), x, n_classes).argmax(1)
    flip = rng.random(len(y)) < noise
    y = np.where(flip, rng.integers(0, n_classes, len(y)), y)
    info = {"accuracy_ceiling": 1 - noise * (n_classes - 1) / n_classes}
    return make_task(
        "classification", "classification", x[:n_train], y[:n_train], x[n_train:], y[n_train:], info, n_classes
    )
