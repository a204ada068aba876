"""``jaxexp.blend(...)``: every weighting scored, the exact optimum, the plateau
and whether any difference is more than noise; optionally written to a workdir."""

from __future__ import annotations

import dataclasses
import json
import time

import numpy as np
import pandas as pd

from jaxexp.blending import data as datamod
from jaxexp.blending import exact, flatness, plots, report, stats
from jaxexp.blending import grid as gridmod
from jaxexp.blending import score as scoremod
from jaxexp.blending.output import (
    SCORES,
    _parquet_ok,
    _prepare_workdir,
    _write,
    score_files,
)
from jaxexp.errors import ConfigError, DataError
from jaxexp.webreport import blend as webblend


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


def _listed_ties(data, metric, post, w_grid, s_grid, labels, w_list, s_list, kw) -> list[dict]:
    """For each listed weighting: the grid weightings with exactly its score
    (float64), their extent, and how many rows change prediction across them."""
    out = []
    exact_scores = scoremod.resolve_dtype(kw.get("dtype", "auto"), metric, post) == "float64"
    for lab, w, s in zip(labels, w_list, s_list):
        tol = (stats.TIE_RTOL if exact_scores else 2e-6) * max(1.0, abs(s))
        near = np.flatnonzero(np.abs(s_grid - s) <= tol)
        if len(near) and not exact_scores:  # float32 candidates: confirm in float64
            s64 = scoremod.score(data, w_grid[near], metric, post, **{**kw, "dtype": "float64"})
            s_ref = scoremod.score_numpy(data, w[None], metric, post)[0]
            near = near[np.abs(s64 - s_ref) <= stats.TIE_RTOL * max(1.0, abs(s_ref))]
        tied = w_grid[near]
        item = {"label": lab, "w": w.tolist(), "score": float(s), "grid_ties": len(near)}
        if len(near) > 1:
            far = tied[np.argmax(np.abs(tied - w).sum(1))]
            changed = flatness.rows_changed(data, metric, post, w, far)
            item.update(lo=tied.min(0).tolist(), hi=tied.max(0).tolist(), far=far.tolist(), rows_changed=changed)
        out.append(item)
    return out


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
    from jaxexp import cpu

    cpu.use_all_cores()  # before JAX's backend starts (a no-op after)
    t0 = time.perf_counter()
    metric = datamod.check_metric(metric)
    if dtype not in ("auto", "float32", "float64"):
        raise ConfigError(f"--dtype: {dtype!r}; use auto, float32 or float64")
    if scores not in SCORES or scores == "parquet" and not _parquet_ok():
        score_files(pd.DataFrame(), scores)  # raises the one-line error
    data = _load(preds, metric, target, models, row_weights, groups, folds, preds_key)
    names = data.names
    cons = gridmod.make_constraints(names, nonneg, sum_to_one, bounds)
    post = scoremod.make_postprocess(clip, round_to)
    if metric in ("logloss", "accuracy") and post.round_to > 0:
        raise ConfigError(f"--round: rounding probabilities makes no sense for {metric}; drop --round")
    labels, w_list = ([], None) if weights is None else gridmod.parse_weightings(weights, names)
    if step is None and w_list is None:
        raise ConfigError("--step: no grid and no --weights; pass --step=0.01 or --weights=50/30/20,...")
    w_grid = gridmod.simplex_grid(cons, step, max_points) if step else np.zeros((0, data.k))
    pairs = []
    for item in (p.strip() for p in (compare or "").split(",") if p.strip()):
        if ":" not in item or item.count(":") != 1:
            raise ConfigError(f"--compare: {item!r}; use A:B with labels of --weights or 50/30/20-style weightings")
        pairs.append(tuple(_resolve(s.strip(), labels, w_list, names) for s in item.split(":")))
    decimals, n_boot, top_k = int(decimals), int(n_boot), int(top_k)
    if n_boot < 0 or top_k < 1 or decimals < 0:
        raise ConfigError("--n_boot/--top_k/--decimals: must be >= 0, >= 1 and >= 0")
    if data.folds is None and n_folds == 1 or n_folds < 0:
        raise ConfigError(f"--n_folds: {n_folds}; use 0 (no held-out check) or >= 2")
    if workdir is not None:
        _prepare_workdir(workdir, overwrite)
    eps = 0.5 * 10.0**-decimals if eps is None else float(eps)
    kw = {"dtype": dtype, "memory_budget": memory_budget}
    sign = scoremod.goal_sign(metric)
    timings = {}

    # 1. Every weighting, one batched computation.
    t = time.perf_counter()
    w_all = np.concatenate([w_grid] + ([w_list] if w_list is not None else []))
    s_all = scoremod.score(data, w_all, metric, post, progress=progress, **kw)
    timings["score_s"] = time.perf_counter() - t
    g = len(w_grid)
    source = ["grid"] * g + ["list"] * (len(w_all) - g)
    label = [""] * g + labels

    # 2. Grid best, plateau, exact ties (float64), display ties.
    summary: dict = {"metric": metric, "goal": datamod.METRICS[metric][0], "models": list(names), "rows": data.n}
    summary.update(
        source=data.source,
        n_classes=data.n_classes,
        grid={"step": step, "points": g, "constraints": cons.describe(names), "postprocess": post.describe()},
        timings=timings,
    )
    if g:
        # Every weighting near the best is re-scored in float64 (and keeps that score).
        slack = eps + 1e-5 * max(1.0, float(np.abs(s_all[:g]).min()))
        ties = stats.exact_ties(data, w_grid, s_all[:g], metric, post, slack, **kw)
        s_all[ties["index"]] = ties["scores64"]
        best64 = ties["best64"]
        i_best = int(ties["index"][np.argmin(sign * ties["scores64"])])
        pl = stats.plateau(w_grid, s_all[:g], metric, eps)
        tie_w = w_grid[ties["mask"]]
        far = tie_w[np.argmax(np.abs(tie_w - w_grid[i_best]).sum(1))] if ties["count"] > 1 else None
        n_display = int(np.sum(np.round(s_all[:g], decimals) == np.round(best64, decimals)))
        n_values = len(np.unique(np.round(s_all[:g], 10)))  # float32 vs float64 last bits are not values
        diag = flatness.diagnose(
            data,
            metric,
            post,
            w_grid[i_best],
            far,
            ties["count"],
            n_display,
            decimals,
            g,
            n_values,
            step=step,
            listed=None if w_list is None else (labels, w_list),
        )
        summary["grid_best"] = {"w": w_grid[i_best].tolist(), "score": best64}
        summary["plateau"] = {
            "eps": eps,
            "boundary_tol": stats.plateau_tol(pl["best"]),  # in the plateau: score - best <= eps + this
            "count": pl["count"],
            "fraction": pl["fraction"],
            "extent": {n: [float(a), float(b)] for n, a, b in zip(names, pl["lo"], pl["hi"])},
            "exact_ties": ties["count"],
            "exact_tie_extent": {n: [float(a), float(b)] for n, a, b in zip(names, tie_w.min(0), tie_w.max(0))},
            "display_ties": n_display,
            "decimals": decimals,
        }
        summary["diagnosis"] = diag
    else:
        i_best, pl, ties = None, None, None

    # 3. Exact optimum and a finer local grid.
    t = time.perf_counter()
    ex = exact.exact_optimum(data, metric, cons, post, milp_time_limit, milp_max_rows)
    summary["exact"] = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in ex.items()}
    summary["exact"].update(exact.describe(ex, post, summary["grid_best"]["score"] if g else None, metric))
    ex_name = summary["exact"]["name"]
    extra_w, extra_s, extra_src = [], [], []
    if ex.get("w") is not None:
        extra_w.append(ex["w"])
        extra_s.append(ex["score"])
        extra_src.append("exact")
        extra_lab = [ex_name]
    else:
        extra_lab = []
    if g:
        ref = exact.refine(data, metric, cons, w_grid[i_best], step, post, **kw)
        ref["score"] = float(scoremod.score_numpy(data, ref["w"][None], metric, post)[0])
        summary["refined"] = {
            "w": ref["w"].tolist(),
            "score": ref["score"],
            "points": ref["points"],
            "step": ref["step"],
        }
        extra_w.append(ref["w"])
        extra_s.append(ref["score"])
        extra_src.append("refined")
        extra_lab.append("refined")
        if ex.get("w") is not None:
            summary["gap"] = sign * (summary["grid_best"]["score"] - ex["score"])
    timings["exact_s"] = time.perf_counter() - t

    # 4. Paired bootstrap over rows for the leading candidates.
    t = time.perf_counter()
    cands: dict[str, np.ndarray] = {}
    if ex.get("w") is not None:
        cands[ex_name] = ex["w"]
    if g:
        cands["grid best"] = w_grid[i_best]
        cands["refined best"] = np.asarray(summary["refined"]["w"])
        order = np.argsort(sign * s_all[:g], kind="stable")
        for j in order[: top_k + 1]:
            if j != i_best:
                cands.setdefault(f"grid {stats.fmt_w(w_grid[j])}", w_grid[j])
    if w_list is not None:
        for lab, w in zip(labels, w_list):
            cands.setdefault(lab, w)
    for lab_w in pairs:
        for lab, w in lab_w:
            cands.setdefault(lab, w)
    cands["equal blend"] = np.full(data.k, 1.0 / data.k)
    for i, name in enumerate(names):
        cands[f"{name} alone"] = np.eye(data.k)[i]
    cw = np.stack(list(cands.values()))
    cs = scoremod.score_numpy(data, cw, metric, post)
    main = [j for j, n in enumerate(cands) if n in (ex_name, "grid best", "refined best")] or range(len(cs))
    ref_name = list(cands)[min(main, key=lambda j: sign * cs[j])]
    boot = None
    if n_boot:
        reps = stats.bootstrap(data, cw, metric, post, n_boot, seed)
        j_ref = list(cands).index(ref_name)
        boot = {
            "reference": ref_name,
            "n_boot": n_boot,
            "units": stats.units(data, seed)[2],
            "candidates": [
                {
                    "name": name,
                    "w": cw[j].tolist(),
                    "score": float(cs[j]),
                    "ci95": stats.ci(reps[:, j]),
                    "p_beats_reference": stats.p_beats(reps[:, j], reps[:, j_ref], metric) if j != j_ref else None,
                    "diff_ci95": stats.ci(reps[:, j] - reps[:, j_ref]) if j != j_ref else None,
                }
                for j, name in enumerate(cands)
            ],
            "pairs": [
                {
                    "a": a[0],
                    "b": b[0],
                    "score_a": float(cs[list(cands).index(a[0])]),
                    "score_b": float(cs[list(cands).index(b[0])]),
                    "p_a_beats_b": stats.p_beats(
                        reps[:, list(cands).index(a[0])], reps[:, list(cands).index(b[0])], metric
                    ),
                    "diff_ci95": stats.ci(reps[:, list(cands).index(a[0])] - reps[:, list(cands).index(b[0])]),
                }
                for a, b in pairs
            ],
        }
    summary["bootstrap"] = boot
    if g and w_list is not None:
        summary["listed"] = _listed_ties(data, metric, post, w_grid, s_all[:g], labels, w_list, s_all[g:], kw)
    timings["bootstrap_s"] = time.perf_counter() - t

    # 5. Held-out folds: is the tuned blend better out of sample?
    t = time.perf_counter()
    summary["crossfit"] = None
    if g and (data.folds is not None or n_folds >= 2):
        fold_ids = stats.make_folds(data, n_folds, seed)
        cf = stats.cross_fit(data, w_grid, metric, post, fold_ids, max(n_boot, 200), seed, **kw)
        summary["crossfit"] = report.crossfit_summary(cf, metric, "given" if data.folds is not None else "made")
    timings["crossfit_s"] = time.perf_counter() - t
    timings["total_s"] = time.perf_counter() - t0

    # Table of every scored weighting, best first.
    w_tab = np.concatenate([w_all] + ([np.stack(extra_w)] if extra_w else []))
    df = pd.DataFrame(w_tab, columns=list(names))
    df["score"] = np.concatenate([s_all, extra_s])
    df["source"] = source + extra_src
    df["label"] = label + extra_lab
    in_pl = np.zeros(len(df), bool)
    tie = np.zeros(len(df), bool)
    if g:
        in_pl[:g], tie[:g] = pl["mask"], ties["mask"]
    df["in_plateau"], df["exact_tie"] = in_pl, tie
    df = df.iloc[np.argsort(sign * df["score"].to_numpy(), kind="stable")].reset_index(drop=True)
    df.insert(len(names) + 1, "rank", np.arange(1, len(df) + 1))
    if len(df):
        top = df.iloc[0]
        summary["best_verified"] = {
            "w": top[list(names)].to_numpy(np.float64).tolist(),
            "score": float(top["score"]),
            "source": str(top["source"]),
            "label": str(top["label"]),
        }
    tables, described = score_files(df, scores) if workdir is not None else ({}, "")
    summary["files"] = described
    text = report.markdown(summary, df)
    df.attrs["summary"] = summary
    df.attrs["report"] = text
    if workdir is not None:
        figs = {}
        if g:
            figs = plots.figures(data, w_grid, s_all[:g], metric, pl["mask"], ties["mask"], summary, labels, w_list)
        _write(
            workdir,
            {
                "report.md": text,
                "summary.json": json.dumps(summary, indent=1, default=float),
            },
            figs,
            lambda folder: webblend.render(df, names, metric, sign < 0, text, folder, list(figs)),
            tables,
        )
    return df
