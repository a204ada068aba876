"""The Python entry points of a sweep: ``sweep``, ``train_config``, and ``run_members``
(from ``jaxexp.run.runner``)."""

from __future__ import annotations

import ml_collections
import pandas as pd

from jaxexp.run import results
from jaxexp.run.progress import print_progress
from jaxexp.run.runner import check_bucket, run_members  # noqa: F401 - part of this module's API
from jaxexp.search import loop


def sweep(
    config: ml_collections.ConfigDict, workdir: str | None = None, progress=print_progress
) -> results.Results | pd.DataFrame:
    """Runs the whole sweep ``config.sweep`` and returns its Results.

    With ``workdir`` the results are also written there (config.json,
    members.csv, history.csv, report.md). ``sweep.space_file``, when set, gives
    the space (and method, num_samples, metric).

    ``sweep.strategy`` is honoured as ``jaxexp sweep`` honours it, and decides
    what is returned (``strategy.result()`` of ``jaxexp.search.loop.drive``, the loop
    ``jaxexp sweep`` runs): ``"sweep"`` (the default) expands the space (``sweep.method``)
    and returns the Results of its members; ``"tpe"`` runs ``jaxexp.search.tpe.run`` and
    returns its trials table (a DataFrame, one row per trial: number, value,
    params_<name>, state, batch; also ``trials.csv``); ``"mutation"`` runs
    ``jaxexp.search.mutation.run`` and returns its lineage table (a DataFrame, one row per
    node; also ``lineage.csv``). Their batches and generations are populations of
    their own (with ``workdir``: complete sweep workdirs ``batch_<k>/``, ``gen_<g>/``),
    so no single Results holds a whole search.
    """
    return loop.drive(config, workdir, progress).result()


def train_config(
    config: ml_collections.ConfigDict, workdir: str | None = None, progress=print_progress
) -> results.Results:
    """Trains the base config (``sweep.space`` and ``sweep.strategy`` ignored) for ``sweep.seeds`` seeds."""
    return sweep(base_config(config), workdir, progress)


def base_config(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """``config`` with its search removed: the base config, ``sweep.seeds`` seeds."""
    config = ml_collections.ConfigDict(config.to_dict())
    config.sweep.space = ml_collections.ConfigDict()
    config.sweep.space_file = ""
    config.sweep.method = "grid"
    config.sweep.strategy = "sweep"  # the base config itself, not a search
    return config
