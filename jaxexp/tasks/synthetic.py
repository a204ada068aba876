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


def grouped(n_train: int, n_val: int, n_features: int, noise: float, seed: int) -> Task:
    """A regression over values spanning ~1 to 1e6, in 12 groups (k, m), k 1..4, m 1..3.

    The target is log2(value), so MSE is the log2-MSE. Group (k, m) has
    difficulty d = (k - 1) + (m - 1) in 0..5 (levels: d <= 1 easy, d <= 3
    medium, else hard): its signal is larger and more nonlinear and its noise
    std is ``noise * (1 + d)`` log2 units, so its log2-MSE floor is
    (noise * (1 + d))**2 (``info["group_noise_floor"]``). Harder groups are
    rarer (weight 1 / (1 + d / 2)). The group is given to the model as a one-hot
    feature block after the ``n_features`` Gaussian features.
    """
    names, levels, diff = [], [], []
    for k in range(1, 5):
        for m in range(1, 4):
            d = (k - 1) + (m - 1)
            names.append(f"k{k}_m{m}")
            diff.append(d)
            levels.append(0 if d <= 1 else 1 if d <= 3 else 2)
    diff = np.asarray(diff, np.float64)
    n_groups, n = len(names), n_train + n_val
    rng = np.random.default_rng([seed, 5])
    freq = 1.0 / (1.0 + diff / 2)
    g = rng.choice(n_groups, size=n, p=freq / freq.sum())
    x = rng.normal(size=(n, n_features))
    teacher = np.random.default_rng([seed, 6])
    smooth = _teacher(teacher, x, 1)[:, 0]
    rough = _teacher(teacher, x * 2.5, 1)[:, 0]  # higher-frequency part, weighted up for hard groups
    smooth, rough = smooth / smooth.std(), rough / rough.std()
    centre = 1.0 + 18.0 * np.arange(n_groups) / (n_groups - 1)  # log2 centres 1..19
    d = diff[g]
    sigma = noise * (1.0 + diff)
    y = centre[g] + (0.5 + 0.2 * d) * smooth + 0.15 * d * rough + sigma[g] * rng.normal(size=n)
    features = np.concatenate([x, np.eye(n_groups)[g]], axis=1)
    info = {
        "target_units": "log2",  # kept (centred only) by standardize: val_mse is the log2-MSE
        "noise_floor_mse": float(np.mean(sigma[g[n_train:]] ** 2)),
        "group_noise_floor": (sigma**2).tolist(),
    }
    task = make_task("grouped", "regression", features[:n_train], y[:n_train], features[n_train:], y[n_train:], info)
    return task._replace(
        g_train=g[:n_train].astype(np.int32),
        g_val=g[n_train:].astype(np.int32),
        group_names=tuple(names),
        group_levels=tuple(levels),
    )
