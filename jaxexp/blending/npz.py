"""The arrays of a blend's .npz file (``data.load``): the target, the stacked
(N, K) or (N, K, C) predictions (or one 1-D array per model) and the optional
row-weight, group and fold arrays. Keys that do not match are one line listing
the arrays found and the flags that map them (--target, --preds_key, --models)."""

from __future__ import annotations

import numpy as np

from jaxexp.errors import DataError


def read(path: str, target: str, models: list[str], row_weights, groups, folds, preds_key: str) -> tuple:
    """(y (N,), preds (N, K[, C]), names or None, row weights, groups, folds)
    of the .npz at ``path``, unchecked beyond the keys (``data.from_arrays``
    checks the values). ``models``: the model names asked for ([]: every one);
    ``row_weights``, ``groups``, ``folds``: array names or None."""
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except Exception as e:
        raise DataError(f"--preds: cannot read npz {path!r}: {str(e).splitlines()[0]}") from None
    _check_keys(arrays, path, target, preds_key)
    aux = {}
    for field, key in (("--row_weights", row_weights), ("--groups", groups), ("--folds", folds)):
        if key and key not in arrays:
            raise DataError(f"{field}: no array {key!r} in {path} (arrays: {', '.join(arrays)})")
        aux[field] = arrays[key] if key else None
    if preds_key in arrays:
        preds, names = _stacked(arrays, path, preds_key, models)
    else:
        skip = {target, "names", row_weights, groups, folds}
        preds, names = _one_per_model(arrays, path, target, preds_key, models, skip)
    return arrays[target], preds, names, aux["--row_weights"], aux["--groups"], aux["--folds"]


def _check_keys(arrays: dict, path: str, target: str, preds_key: str) -> None:
    """The target array is there, and so is a --preds_key named by the user."""
    if target not in arrays:
        raise DataError(
            f"--target: no array {target!r} in {path} (arrays: {_listing(arrays)}); map the keys with --target=KEY"
            + (" --preds_key=KEY" if preds_key not in arrays else "")
            + _suggest(arrays, target, preds_key)
        )
    if preds_key != "preds" and preds_key not in arrays:
        raise DataError(
            f"--preds_key: no array {preds_key!r} in {path} (arrays: {_listing(arrays)}); "
            "pass --preds_key=KEY for the (N, K) predictions" + _suggest(arrays, target, preds_key)
        )


def _stacked(arrays: dict, path: str, preds_key: str, models: list[str]) -> tuple:
    """(preds, names or None) of the stacked array, with its saved ``names``;
    ``models`` (when names are saved) picks and orders its columns."""
    preds = arrays[preds_key]
    names = [str(n) for n in arrays["names"]] if "names" in arrays else None
    if names is not None and models:
        missing = [m for m in models if m not in names]
        if missing:
            raise DataError(f"--models: {missing} not in the names saved in {path} ({', '.join(names)})")
        preds, names = preds[:, [names.index(m) for m in models]], models
    return preds, names


def _one_per_model(arrays: dict, path: str, target: str, preds_key: str, models: list[str], skip: set) -> tuple:
    """(preds (N, K), names) from one 1-D array per model: ``models``, or every
    1-D array not in ``skip`` (the target, names and auxiliary arrays)."""
    names = models or [k for k, v in arrays.items() if k not in skip and v.ndim == 1]
    missing = [m for m in names if m not in arrays]
    if missing:
        raise DataError(f"--models: array(s) {missing} not in {path} (arrays: {_listing(arrays)})")
    if not models and len(names) < 2:  # not "1 model column": the keys did not match
        raise DataError(
            f"--preds_key: no array {preds_key!r} in {path} and {len(names)} other 1-D array(s) to take as models "
            f"(arrays: {_listing(arrays)}); pass --preds_key=KEY for the (N, K) predictions or --models=A,B,... "
            "for one 1-D array per model" + _suggest(arrays, target, preds_key)
        )
    lengths = {m: len(arrays[m]) for m in names}
    n = len(arrays[target])
    bad = [f"{m!r} has {v}" for m, v in lengths.items() if v != n]
    if bad:
        raise DataError(f"--preds: target {target!r} has {n} rows but {', '.join(bad)} in {path}; align the rows")
    preds = np.stack([arrays[m] for m in names], axis=1) if names else np.zeros((n, 0))
    return preds, names


def _listing(arrays: dict) -> str:
    return ", ".join(f"{k} {tuple(v.shape)}" for k, v in arrays.items())


def _suggest(arrays: dict, target: str, preds_key: str) -> str:
    """A hint like ' (here: --target=y --preds_key=p)' when one 1-D and one 2-D/3-D array fit, else ''."""
    flags = []
    if target not in arrays:
        ones = [k for k, v in arrays.items() if v.ndim == 1 and k != "names"]
        if len(ones) == 1:
            flags.append(f"--target={ones[0]}")
    if preds_key not in arrays:
        stacked = [k for k, v in arrays.items() if v.ndim in (2, 3)]
        if len(stacked) == 1:
            flags.append(f"--preds_key={stacked[0]}")
    return f" (here: {' '.join(flags)})" if flags else ""
