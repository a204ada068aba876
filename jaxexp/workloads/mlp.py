"""The built-in workload: an MLP on the tabular tasks of ``jaxexp.tasks``.

Written against the same public interface as any user workload
(``jaxexp.workload``): its hyperparameters are declared below, its data come
from ``jaxexp.tasks`` (regression, grouped, classification, files, bundled
datasets), the curriculum over a grouped task's difficulty levels and the
per-group metrics are computed here from traced values.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxexp.core import curriculum, models
from jaxexp.tasks import load_task
from jaxexp.workload import Dataset, static, traced

NAME = "mlp"
METRIC = ("val_loss", "min")


def _rate(v) -> str | None:
    return None if 0.0 <= v < 1.0 else "must be in [0, 1)"


def _widths(v) -> str | None:
    ok = isinstance(v, tuple) and all(isinstance(h, int) and not isinstance(h, bool) and h > 0 for h in v)
    return None if ok else "widths must be positive integers, e.g. (64, 64)"


_DATA = dict(arch=False)
HPARAMS = {
    "task.name": static("regression", doc="regression | grouped | classification | file | digits | diabetes", **_DATA),
    "task.seed": static(0, 0, 2**32 - 1, doc="data seed (the data are shared by all members)", **_DATA),
    "task.n_train": static(2048, **_DATA),
    "task.n_val": static(512, **_DATA),
    "task.n_features": static(16, **_DATA),
    "task.n_classes": static(4, doc="classification only", **_DATA),
    "task.noise": static(0.1, doc="regression: noise std; classification: label flip rate", **_DATA),
    "task.path": static("", doc="file: .npz or .csv", **_DATA),
    "task.val_path": static("", doc="file: optional separate validation file", **_DATA),
    "task.features": static("", doc="file: comma-separated feature columns ('' = all but target)", **_DATA),
    "task.target": static("y", doc="file: target column / npz key", **_DATA),
    "task.kind": static("regression", doc="file: regression | classification", **_DATA),
    "task.group": static("", doc="file: column / npz key of a per-row group label", **_DATA),
    "task.medium_groups": static("", doc="file: comma-separated group labels of medium difficulty", **_DATA),
    "task.hard_groups": static("", doc="file: comma-separated group labels of hard difficulty", **_DATA),
    "task.val_fraction": static(0.2, doc="file/digits/diabetes: validation share", **_DATA),
    "task.standardize": static(True, doc="z-score features (and regression targets) with train statistics", **_DATA),
    "model.hidden": static((64,), check=_widths, doc="hidden layer widths"),
    "model.activation": static("relu", choices=tuple(models.ACTIVATIONS)),
    "model.dropout": traced(
        0.0, check=_rate, skippable="hidden_dropout", doc="dropout after every hidden layer but the last"
    ),
    "model.final_dropout": traced(
        -1.0,
        check=lambda v: None if v == -1.0 or 0.0 <= v < 1.0 else "must be in [0, 1), or -1 for model.dropout",
        doc="dropout after the last hidden layer, -1 = model.dropout",
        skippable="hidden_dropout",
    ),
    "model.input_dropout": traced(0.0, check=_rate, skippable="input_dropout", doc="dropout on the inputs"),
    **curriculum.HPARAMS,
}


def data(cfg) -> Dataset:
    task = load_task(cfg.task)
    g_train, g_val = task.groups
    levels = np.asarray(task.group_levels, np.int32)

    def split(x, y, g):
        return {"x": x, "y": y, "group": g, "level": levels[g]}

    info = {**task.info, "kind": task.kind, "n_outputs": task.n_outputs, "task": task.name}
    return Dataset(
        split(task.x_train, task.y_train, g_train), split(task.x_val, task.y_val, g_val), task.group_names, info
    )


def model(cfg, data: Dataset):
    # a bucket whose members all have rate 0 skips the masks (a rate-0 mask keeps x exactly)
    off = set(cfg.get("off", ()))
    return models.MLP(
        hidden=tuple(int(h) for h in cfg.model.hidden),
        n_out=data.info["n_outputs"],
        activation=cfg.model.activation,
        use_input_dropout="input_dropout" not in off,
        use_dropout="hidden_dropout" not in off,
    )


def _per_row(logits, y) -> dict:
    """Per-example loss and metrics: {name: [n]} (classification when y holds class ids)."""
    if y.ndim == 1:
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, y)
        return {"loss": loss, "accuracy": (logits.argmax(-1) == y).astype(jnp.float32)}
    err = logits - y
    se = jnp.mean(err**2, axis=-1)
    return {"loss": se, "mse": se, "mae": jnp.mean(jnp.abs(err), axis=-1)}


def loss(model, params, batch, hp, rng):
    final = jnp.where(hp["model.final_dropout"] >= 0, hp["model.final_dropout"], hp["model.dropout"])
    logits = model.apply(
        params, batch["x"], hp["model.dropout"], hp["model.input_dropout"], seed=rng, final_dropout=final
    )
    w = curriculum.row_weights(hp, batch["level"], batch["group"])
    # curriculum: weighted mean over the batch (0 when every weight is 0)
    return jnp.sum(w * _per_row(logits, batch["y"])["loss"]) / jnp.maximum(jnp.sum(w), 1e-12), {}


def evaluate(model, params, val, hp) -> dict:
    """Validation metrics {val_<name>: scalar} and, for a grouped task, per group ([groups])."""
    rows = _per_row(model.apply(params, val["x"]), val["y"])
    out = {f"val_{k}": v.mean() for k, v in rows.items()}
    n_groups = hp["train.group_multipliers"].shape[-1]  # one multiplier per group: a static length
    if n_groups > 1:
        count = jax.ops.segment_sum(jnp.ones_like(rows["loss"]), val["group"], n_groups)
        groups = {}
        for k, v in rows.items():
            per_group = jax.ops.segment_sum(v, val["group"], n_groups) / jnp.maximum(count, 1.0)
            groups[f"val_{k}"] = jnp.where(count > 0, per_group, jnp.nan)
        out["groups"] = groups
    return out


def predict(model, params, split, hp):
    del hp
    return split["y"], model.apply(params, split["x"])
