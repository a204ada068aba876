"""Small real datasets bundled with scikit-learn (optional extra ``[data]``)."""

from __future__ import annotations

from jaxexp.errors import DataError
from jaxexp.tasks.base import Task, make_task, split


def _sklearn_datasets():
    try:
        from sklearn import datasets
    except ImportError:
        raise DataError(
            "task.name: the bundled datasets need scikit-learn; install it with: pip install 'jaxexp[data]'"
        ) from None
    return datasets


def digits(val_fraction: float, seed: int) -> Task:
    """8x8 handwritten digits: 1797 rows, 64 features, 10 classes."""
    d = _sklearn_datasets().load_digits()
    return make_task("digits", "classification", *split(d.data, d.target, val_fraction, seed), n_classes=10)


def diabetes(val_fraction: float, seed: int) -> Task:
    """Diabetes progression: 442 rows, 10 features, 1 regression target."""
    d = _sklearn_datasets().load_diabetes()
    return make_task("diabetes", "regression", *split(d.data, d.target, val_fraction, seed))
