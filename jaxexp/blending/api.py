"""``jaxexp.blend(...)``: every weighting scored, the exact optimum, the plateau
and whether any difference is more than noise; optionally written to a workdir."""

from __future__ import annotations

import dataclasses
import time
from typing import NamedTuple

import numpy as np
import pandas as pd

from jaxexp.blending import data as datamod
from jaxexp.blending import exact, pipeline
from jaxexp.blending import grid as gridmod
from jaxexp.blending import score as scoremod
from jaxexp.blending.output import SCORES, _parquet_ok, _prepare_workdir, score_files
from jaxexp.errors import ConfigError, DataError


def _load(preds, metric, target, models, row_weights, groups, folds, preds_key="preds") -> datamod.BlendData:
    if preds_key != "preds" and isinstance(preds, (datamod.BlendData, pd.DataFrame)):
        raise ConfigError(f"--preds_key: names an array of an .npz input, not of a {type(preds).__name__}")
    if isinstance(preds, datamod.BlendData):
        if metric == "accuracy" and preds.n_classes and preds.margins is None:
            raise DataError(
                f"--metric: this BlendData of {preds.source} was loaded for log-loss; load it with metric='accuracy'"
            )
        data = datamod.from_arrays(
            preds.y, preds.preds, preds.names, preds.row_weights, preds.groups, preds.folds, metric, preds.source
        )  # multiclass: the validated reductions carry over
        return dataclasses.replace(data, n_classes=preds.n_classes, margins=preds.margins, strict=preds.strict)
    if isinstance(preds, pd.DataFrame):
        return datamod.from_frame(preds, target, models, row_weights, groups, folds, metric)
    return datamod.load(str(preds), target, models, row_weights, groups, folds, metric, preds_key)


def _resolve(spec: str, labels: list[str], w_list: np.ndarray | None, names) -> tuple[str, np.ndarray]:
    """A weighting named in --compare: a label of --weights, or 50/30/20."""
    if w_list is not None and spec in labels:
        return spec, w_list[labels.index(spec)]
    try:
        lab, w = gridmod.parse_weightings(spec, names)
    except ConfigError:
        if "/" in spec or ";" in spec:
            raise  # meant as a weighting: the parser's message says what is wrong with it
        known = f"the labels of --weights are {', '.join(labels)}" if labels else "no --weights were given"
        raise ConfigError(
            f"--compare: {spec!r} is not a label of --weights ({known}); use one of them or a weighting like 50/30/20"
        ) from None
    return lab[0], w[0]


class _Source(NamedTuple):
    """Where the rows come from (``blend``'s arguments of the same names)."""

    preds: object
    metric: str
    target: str
    models: object
    row_weights: str | None
    groups: str | None
    folds: str | None
    preds_key: str


class _Space(NamedTuple):
    """The weightings scored and the post-processing of the blend."""

    step: float | None
    weights: object
    nonneg: bool
    sum_to_one: bool
    bounds: object
    clip: object
    round_to: float
    max_points: int


class _Analysis(NamedTuple):
    """How the scores are analysed: plateau, bootstrap, held-out folds, MILP."""

    eps: float | None
    decimals: int
    n_boot: int
    top_k: int
    compare: str | None
    seed: int
    n_folds: int
    milp_time_limit: float
    milp_max_rows: int


class _Run(NamedTuple):
    """How the kernel runs and where the results go."""

    dtype: str
    memory_budget: int
    progress: object
    workdir: str | None
    overwrite: bool
    scores: str


def _pairs(compare: str | None, labels: list[str], w_list: np.ndarray | None, names) -> list[tuple]:
    """--compare "A:B,C:D" -> [((label, w (K,)), (label, w (K,))), ...]."""
    pairs = []
    for item in (p.strip() for p in (compare or "").split(",") if p.strip()):
        if ":" not in item or item.count(":") != 1:
            raise ConfigError(f"--compare: {item!r}; use A:B with labels of --weights or 50/30/20-style weightings")
        pairs.append(tuple(_resolve(s.strip(), labels, w_list, names) for s in item.split(":")))
    return pairs


def _checked(src: _Source, space: _Space, an: _Analysis, run: _Run) -> pipeline.Job:
    """Every argument checked before anything is computed or written, each
    failure one line: the metric, dtype and --scores first, then the data, the
    weightings and --compare, the statistics' settings, and last the workdir."""
    metric = datamod.check_metric(src.metric)
    if run.dtype not in ("auto", "float32", "float64"):
        raise ConfigError(f"--dtype: {run.dtype!r}; use auto, float32 or float64")
    if run.scores not in SCORES or run.scores == "parquet" and not _parquet_ok():
        score_files(pd.DataFrame(), run.scores)  # raises the one-line error
    data = _load(src.preds, metric, src.target, src.models, src.row_weights, src.groups, src.folds, src.preds_key)
    names = data.names
    cons = gridmod.make_constraints(names, space.nonneg, space.sum_to_one, space.bounds)
    post = scoremod.make_postprocess(space.clip, space.round_to)
    if metric in ("logloss", "accuracy") and post.round_to > 0:
        raise ConfigError(f"--round: rounding probabilities makes no sense for {metric}; drop --round")
    labels, w_list = ([], None) if space.weights is None else gridmod.parse_weightings(space.weights, names)
    if space.step is None and w_list is None:
        raise ConfigError("--step: no grid and no --weights; pass --step=0.01 or --weights=50/30/20,...")
    w_grid = gridmod.simplex_grid(cons, space.step, space.max_points) if space.step else np.zeros((0, data.k))
    pairs = _pairs(an.compare, labels, w_list, names)
    decimals, n_boot, top_k = int(an.decimals), int(an.n_boot), int(an.top_k)
    if n_boot < 0 or top_k < 1 or decimals < 0:
        raise ConfigError("--n_boot/--top_k/--decimals: must be >= 0, >= 1 and >= 0")
    if data.folds is None and an.n_folds == 1 or an.n_folds < 0:
        raise ConfigError(f"--n_folds: {an.n_folds}; use 0 (no held-out check) or >= 2")
    if run.workdir is not None:
        _prepare_workdir(run.workdir, run.overwrite)
    return pipeline.Job(
        data=data,
        metric=metric,
        cons=cons,
        post=post,
        step=space.step,
        labels=labels,
        w_list=w_list,
        w_grid=w_grid,
        pairs=pairs,
        eps=0.5 * 10.0**-decimals if an.eps is None else float(an.eps),
        decimals=decimals,
        n_boot=n_boot,
        top_k=top_k,
        n_folds=an.n_folds,
        seed=an.seed,
        kw={"dtype": run.dtype, "memory_budget": run.memory_budget},
        progress=run.progress,
        milp_time_limit=an.milp_time_limit,
        milp_max_rows=an.milp_max_rows,
        workdir=run.workdir,
        scores=run.scores,
    )


def blend(
    preds,
    metric: str = "mae",
    step: float | None = 0.01,
    weights=None,
    target: str = "target",
    models=None,
    row_weights: str | None = None,
    groups: str | None = None,
    folds: str | None = None,
    n_folds: int = 5,
    nonneg: bool = True,
    sum_to_one: bool = True,
    bounds=None,
    clip=None,
    round_to: float = 0.0,
    eps: float | None = None,
    decimals: int = 5,
    n_boot: int = 1000,
    top_k: int = 10,
    compare: str | None = None,
    seed: int = 0,
    dtype: str = "auto",
    memory_budget: int = scoremod.MEMORY_BUDGET,
    max_points: int = 20_000_000,
    milp_time_limit: float = exact.MILP_TIME_LIMIT,
    milp_max_rows: int = exact.MILP_MAX_ROWS,
    workdir: str | None = None,
    overwrite: bool = False,
    scores: str = "auto",
    preds_key: str = "preds",
    progress=scoremod.print_progress,
) -> pd.DataFrame:
    """Scores every weighting of K models' predictions and analyses the optimum.

    Args:
      preds: a .csv/.npz path, a DataFrame (target + one column per model) or BlendData.
      metric: mae, rmse, mse, mape, logloss or accuracy (binary probabilities, or
        multiclass (N, K, C) class probabilities in an .npz: the argmax of the blend).
      step: simplex grid step (0.01 -> 5,151 weightings for K=3); None: only ``weights``.
      weights: explicit weightings, "champion=50/30/20,52/28/20", a CSV path or a (G, K) array.
      target, models, row_weights, groups, folds: column (array) names in the file.
      preds_key: the .npz array of stacked (N, K) or (N, K, C) predictions (default "preds";
        the target array is named by ``target``, as a CSV column is).
      n_folds: folds made by the tool when no fold column is given (0: no held-out check).
      nonneg, sum_to_one, bounds ("name=lo:hi,..."): constraints on the weights.
      clip ("lo:hi"), round_to: post-processing of the blend before scoring, as in the pipeline.
      eps: plateau tolerance (default: half a unit in the ``decimals``-th decimal); the
        boundary is inclusive: a weighting scoring best + eps is in the plateau (compared
        with a float slack of 1e-12 x max(1, |best|), ``stats.PLATEAU_RTOL``).
      n_boot, top_k, compare ("A:B,C:D"), seed: paired bootstrap settings.
      milp_time_limit, milp_max_rows: with clip/round_to, the exact optimum of the
        post-processed blend is a MILP (MAE/MAPE; MSE/RMSE with rounding): HiGHS's
        time limit in seconds and the most rows it is attempted on (0: not attempted).
      workdir: if given, writes scores.csv, report.md, report.html, summary.json and a plot there.
      scores: how the table of every weighting is written: "auto" (scores.csv up to
        100,000 weightings; above, scores.parquet with every row and scores.csv with
        the best 1,000, when pyarrow is installed), "csv", "parquet" or "top".

    Returns:
      One row per scored weighting (grid, list, exact optimum, refinement), best
      first: the K weights, ``score``, ``rank``, ``source``, ``label``,
      ``in_plateau``, ``exact_tie``. ``df.attrs["summary"]`` holds the analysis
      (as in summary.json) and ``df.attrs["report"]`` the report.md text.
    """
    from jaxexp.run import cpu

    cpu.use_all_cores()  # before JAX's backend starts (a no-op after)
    t0 = time.perf_counter()
    job = _checked(
        _Source(preds, metric, target, models, row_weights, groups, folds, preds_key),
        _Space(step, weights, nonneg, sum_to_one, bounds, clip, round_to, max_points),
        _Analysis(eps, decimals, n_boot, top_k, compare, seed, n_folds, milp_time_limit, milp_max_rows),
        _Run(dtype, memory_budget, progress, workdir, overwrite, scores),
    )
    return pipeline.run(job, t0)
