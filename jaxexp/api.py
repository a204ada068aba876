"""The Python entry points of a sweep: ``sweep``, ``train_config``, and ``run_members``
(from ``jaxexp.runner``)."""

from __future__ import annotations

import ml_collections
import pandas as pd

from jaxexp import population, results, spacefile
from jaxexp.progress import print_progress
from jaxexp.runner import check_bucket, run_members  # noqa: F401 - part of this module's API


def sweep(
    config: ml_collections.ConfigDict, workdir: str | None = None, progress=print_progress
) -> results.Results | pd.DataFrame:
    """Runs the whole sweep ``config.sweep`` and returns its Results.

    With ``workdir`` the results are also written there (config.json,
    members.csv, history.csv, report.md). ``sweep.space_file``, when set, gives
    the space (and method, num_samples, metric).

    ``sweep.strategy`` is honoured as ``jaxexp sweep`` honours it, and decides
    what is returned: ``"sweep"`` (the default) expands the space (``sweep.method``)
    and returns the Results of its members; ``"tpe"`` runs ``jaxexp.tpe.run`` and
    returns its trials table (a DataFrame, one row per trial: number, value,
    params_<name>, state, batch; also ``trials.csv``); ``"mutation"`` runs
    ``jaxexp.mutation.run`` and returns its lineage table (a DataFrame, one row per
    node; also ``lineage.csv``). Their batches and generations are populations of
    their own (with ``workdir``: complete sweep workdirs ``batch_<k>/``, ``gen_<g>/``),
    so no single Results holds a whole search.
    """
    if config.sweep.strategy == "tpe":
        from jaxexp import tpe

        return tpe.run(config, workdir, progress)
    if config.sweep.strategy == "mutation":
        from jaxexp import mutation

        return mutation.run(config, workdir, progress)
    config = spacefile.resolve(config)
    table = population.members_table(config)
    return run_members(config, table, workdir, progress)


def train_config(
    config: ml_collections.ConfigDict, workdir: str | None = None, progress=print_progress
) -> results.Results:
    """Trains the base config (``sweep.space`` and ``sweep.strategy`` ignored) for ``sweep.seeds`` seeds."""
    config = ml_collections.ConfigDict(config.to_dict())
    config.sweep.space = ml_collections.ConfigDict()
    config.sweep.space_file = ""
    config.sweep.method = "grid"
    config.sweep.strategy = "sweep"  # the base config itself, not a search
    return sweep(config, workdir, progress)
