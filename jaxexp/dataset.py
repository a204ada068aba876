"""A workload's data: train and validation pytrees, and their checks."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from jaxexp.errors import ConfigError


class Dataset(NamedTuple):
    """Train and validation data of a workload.

    train/val: pytrees of the same structure whose leaves share a leading row
    axis ([n_train, ...] and [n_val, ...]): images [n, H, W, C], sequences,
    padded graphs. groups: names of example groups; an evaluation value of
    shape [len(groups)] is a per-group metric. info: free-form notes
    (units, sources) kept with the results.
    """

    train: Any
    val: Any
    groups: tuple[str, ...] = ()
    info: dict = {}


def check_dataset(data, where: str) -> Dataset:
    """Numpy leaves, one row count per split, identical train/val structure."""
    import jax

    if not isinstance(data, Dataset):
        raise ConfigError(f"{where}: returned {type(data).__name__}; return jaxexp.Dataset(train=..., val=...)")
    train, val = (jax.tree.map(np.asarray, t) for t in (data.train, data.val))
    t_struct, v_struct = jax.tree.structure(train), jax.tree.structure(val)
    if t_struct != v_struct:
        keys = [[jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(t)[0]] for t in (train, val)]
        raise ConfigError(
            f"{where}: train and val differ in structure (train {', '.join(keys[0])[:120]}; val "
            f"{', '.join(keys[1])[:120]}); give both the same keys"
        )
    for path, a in jax.tree_util.tree_flatten_with_path(train)[0]:
        if not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
            raise ConfigError(f"{where}: train{jax.tree_util.keystr(path)} is {a.dtype}; give numeric arrays")
    for split, tree in (("train", train), ("val", val)):
        leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
        if not leaves:
            raise ConfigError(f"{where}: the {split} split holds no arrays")
        rows = {jax.tree_util.keystr(p): (a.shape[0] if a.ndim else None) for p, a in leaves}
        if len(set(rows.values())) != 1 or None in rows.values():
            raise ConfigError(f"{where}: {split} leaves need one leading row axis of equal length, got {rows}")
        if not next(iter(rows.values())):
            raise ConfigError(f"{where}: the {split} split is empty")
    for (path, a), b in zip(jax.tree_util.tree_flatten_with_path(train)[0], jax.tree.leaves(val)):
        if a.shape[1:] != b.shape[1:] or a.dtype != b.dtype:
            raise ConfigError(
                f"{where}: {jax.tree_util.keystr(path)} is {a.dtype}{list(a.shape[1:])} per row in train but "
                f"{b.dtype}{list(b.shape[1:])} in val; give both splits the same shapes"
            )
    return data._replace(train=train, val=val, groups=tuple(str(g) for g in data.groups), info=dict(data.info))


def n_rows(tree) -> int:
    import jax

    return int(jax.tree.leaves(tree)[0].shape[0])
