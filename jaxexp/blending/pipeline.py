"""The steps of one checked blend search (:func:`run`, behind ``jaxexp.blend``):

1. every weighting (grid and listed) scored in one batched computation;
2. the grid best, its plateau and exact ties (float64), and why it is flat;
3. the exact optimum and a finer local grid around the grid best;
4. a paired bootstrap of the leading candidates (and the listed weightings' ties);
5. the held-out check (weights chosen on the other folds);

then the table of every scored weighting, best first, report.md and the files.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import pandas as pd

from jaxexp.blending import exact, flatness, plots, report, stats
from jaxexp.blending import grid as gridmod
from jaxexp.blending import score as scoremod
from jaxexp.blending.data import METRICS, BlendData
from jaxexp.blending.output import _write, score_files
from jaxexp.webreport import blend as webblend


@dataclasses.dataclass(frozen=True)
class Job:
    """A checked blend search (``api._checked``): everything the steps read."""

    data: BlendData
    metric: str
    cons: gridmod.Constraints
    post: scoremod.Postprocess
    step: float | None  # the grid step as given (the summary shows it)
    labels: list  # L labels of the listed weightings
    w_list: np.ndarray | None  # (L, K) listed weightings, or None
    w_grid: np.ndarray  # (G, K) grid weightings; G = 0 without a grid
    pairs: list  # --compare: [((label, w (K,)), (label, w (K,))), ...]
    eps: float  # plateau tolerance, in score units
    decimals: int
    n_boot: int
    top_k: int
    n_folds: int
    seed: int
    kw: dict  # dtype and memory_budget of every kernel call
    progress: Callable[[str], None] | None
    milp_time_limit: float  # seconds
    milp_max_rows: int
    workdir: str | None
    scores: str  # how the scores table is written (output.score_files)

    @property
    def g(self) -> int:
        return len(self.w_grid)

    @property
    def sign(self) -> float:
        return scoremod.goal_sign(self.metric)


class GridStats(NamedTuple):
    """Step 2 on the G grid weightings."""

    i_best: int  # the best grid weighting (by its float64 score)
    best64: float  # its float64 score
    plateau: dict  # stats.plateau: "mask" (G,), "count", "fraction", "lo"/"hi" (K,), "best"
    ties: dict  # stats.exact_ties: "mask" (G,), "count", "best64", "index", "scores64"


def run(job: Job, t0: float) -> pd.DataFrame:
    """Steps 1-5 (module docstring), the table, report.md and, with a workdir,
    the files; ``t0``: ``time.perf_counter()`` when ``jaxexp.blend`` was called.
    Returns ``jaxexp.blend``'s table (its ``attrs`` hold the summary and report)."""
    timings: dict = {}
    # 1. Every weighting (grid, then listed), one batched computation.
    t = time.perf_counter()
    w_all = np.concatenate([job.w_grid] + ([job.w_list] if job.w_list is not None else []))
    s_all = scoremod.score(job.data, w_all, job.metric, job.post, progress=job.progress, **job.kw)
    timings["score_s"] = time.perf_counter() - t
    summary = _head(job, timings)
    grid = None  # 2. Grid best, plateau, exact ties (float64), why it is flat.
    if job.g:
        grid, found = grid_statistics(job, s_all)
        summary.update(found)

    # 3. Exact optimum and a finer local grid.
    t = time.perf_counter()
    ex = exact.exact_optimum(job.data, job.metric, job.cons, job.post, job.milp_time_limit, job.milp_max_rows)
    summary["exact"] = _exact_summary(job, ex, grid)
    extra = [(ex["w"], ex["score"], "exact", summary["exact"]["name"])] if ex.get("w") is not None else []
    if grid:
        ref = refined(job, grid)
        summary["refined"] = {
            "w": ref["w"].tolist(),
            "score": ref["score"],
            "points": ref["points"],
            "step": ref["step"],
        }
        extra.append((ref["w"], ref["score"], "refined", "refined"))
        if ex.get("w") is not None:
            summary["gap"] = job.sign * (grid.best64 - ex["score"])
    timings["exact_s"] = time.perf_counter() - t

    # 4. Paired bootstrap of the leading candidates; the listed weightings' exact grid ties.
    t = time.perf_counter()
    refined_w = summary["refined"]["w"] if grid else None
    cands = candidates(job, grid, s_all[: job.g], summary["exact"]["name"], ex.get("w"), refined_w)
    summary["bootstrap"] = bootstrap(job, cands, summary["exact"]["name"])
    if grid and job.w_list is not None:
        summary["listed"] = _listed_ties(job, s_all[: job.g], s_all[job.g :])
    timings["bootstrap_s"] = time.perf_counter() - t

    # 5. Held-out folds: is the tuned blend better out of sample?
    t = time.perf_counter()
    summary["crossfit"] = crossfit(job) if job.g and (job.data.folds is not None or job.n_folds >= 2) else None
    timings["crossfit_s"] = time.perf_counter() - t
    timings["total_s"] = time.perf_counter() - t0

    df = table(job, w_all, s_all, extra, grid)
    if len(df):
        summary["best_verified"] = _best_verified(df, job.data.names)
    return _finish(job, df, summary, grid, s_all[: job.g])


def _head(job: Job, timings: dict) -> dict:
    """The summary's first entries: the problem and the grid (``timings`` is
    filled in as the steps run)."""
    data, names = job.data, job.data.names
    summary: dict = {"metric": job.metric, "goal": METRICS[job.metric][0], "models": list(names), "rows": data.n}
    summary.update(
        source=data.source,
        n_classes=data.n_classes,
        grid={
            "step": job.step,
            "points": job.g,
            "constraints": job.cons.describe(names),
            "postprocess": job.post.describe(),
        },
        timings=timings,
    )
    return summary


def grid_statistics(job: Job, s_all: np.ndarray) -> tuple[GridStats, dict]:
    """Step 2: the grid best, its plateau and exact ties; returns them and the
    summary's "grid_best", "plateau" and "diagnosis".

    ``s_all`` (G + L,): the grid's scores first. Every grid weighting near the
    best is re-scored in float64 and keeps that score, in place: the plateau,
    the table and the listed weightings' ties then use it."""
    g = job.g
    slack = job.eps + 1e-5 * max(1.0, float(np.abs(s_all[:g]).min()))
    ties = stats.exact_ties(job.data, job.w_grid, s_all[:g], job.metric, job.post, slack, **job.kw)
    s_all[ties["index"]] = ties["scores64"]
    i_best = int(ties["index"][np.argmin(job.sign * ties["scores64"])])
    pl = stats.plateau(job.w_grid, s_all[:g], job.metric, job.eps)
    # ties at display precision: what a reader of the rounded scores sees as "the same"
    n_display = int(np.sum(np.round(s_all[:g], job.decimals) == np.round(ties["best64"], job.decimals)))
    found = {
        "grid_best": {"w": job.w_grid[i_best].tolist(), "score": ties["best64"]},
        "plateau": _plateau_summary(job, pl, ties, n_display),
        "diagnosis": _diagnosis(job, s_all[:g], i_best, ties, n_display),
    }
    return GridStats(i_best, ties["best64"], pl, ties), found


def _plateau_summary(job: Job, pl: dict, ties: dict, n_display: int) -> dict:
    """The summary's "plateau": its tolerance, size and extent per model (the
    exact ties' too)."""
    names = job.data.names
    tie_w = job.w_grid[ties["mask"]]
    return {
        "eps": job.eps,
        "boundary_tol": stats.plateau_tol(pl["best"]),  # in the plateau: score - best <= eps + this
        "count": pl["count"],
        "fraction": pl["fraction"],
        "extent": {n: [float(a), float(b)] for n, a, b in zip(names, pl["lo"], pl["hi"])},
        "exact_ties": ties["count"],
        "exact_tie_extent": {n: [float(a), float(b)] for n, a, b in zip(names, tie_w.min(0), tie_w.max(0))},
        "display_ties": n_display,
        "decimals": job.decimals,
    }


def _diagnosis(job: Job, s_grid: np.ndarray, i_best: int, ties: dict, n_display: int) -> dict:
    """``flatness.diagnose`` of the grid best, against the exactly tied grid
    weighting farthest from it (L1), with the number of distinct grid scores."""
    tie_w = job.w_grid[ties["mask"]]
    far = tie_w[np.argmax(np.abs(tie_w - job.w_grid[i_best]).sum(1))] if ties["count"] > 1 else None
    n_values = len(np.unique(np.round(s_grid, 10)))  # float32 vs float64 last bits are not values
    return flatness.diagnose(
        job.data,
        job.metric,
        job.post,
        job.w_grid[i_best],
        far,
        ties["count"],
        n_display,
        job.decimals,
        job.g,
        n_values,
        step=job.step,
        listed=None if job.w_list is None else (job.labels, job.w_list),
    )


def _exact_summary(job: Job, ex: dict, grid: GridStats | None) -> dict:
    """The summary's "exact": the solver's result (arrays as lists) and what
    it is the optimum of (``exact.describe``, against the grid best)."""
    out = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in ex.items()}
    out.update(exact.describe(ex, job.post, grid.best64 if grid else None, job.metric))
    return out


def refined(job: Job, grid: GridStats) -> dict:
    """A finer grid within one grid step of the grid best (``exact.refine``),
    its best re-scored in float64: {"w" (K,), "score", "points", "step"}."""
    ref = exact.refine(job.data, job.metric, job.cons, job.w_grid[grid.i_best], job.step, job.post, **job.kw)
    ref["score"] = float(scoremod.score_numpy(job.data, ref["w"][None], job.metric, job.post)[0])
    return ref


def candidates(job: Job, grid, s_grid, ex_name: str, ex_w, refined_w) -> dict[str, np.ndarray]:
    """Step 4's candidates, {name: w (K,)}: the exact optimum, the grid and
    refined best, the next ``top_k`` grid weightings, the listed and compared
    weightings, the equal blend and each model alone (a name keeps its first w)."""
    cands: dict[str, np.ndarray] = {}
    if ex_w is not None:
        cands[ex_name] = ex_w
    if grid:
        cands["grid best"] = job.w_grid[grid.i_best]
        cands["refined best"] = np.asarray(refined_w)
        order = np.argsort(job.sign * s_grid, kind="stable")
        for j in order[: job.top_k + 1]:
            if j != grid.i_best:
                cands.setdefault(f"grid {stats.fmt_w(job.w_grid[j])}", job.w_grid[j])
    if job.w_list is not None:
        for lab, w in zip(job.labels, job.w_list):
            cands.setdefault(lab, w)
    for lab_w in job.pairs:
        for lab, w in lab_w:
            cands.setdefault(lab, w)
    k = job.data.k
    cands["equal blend"] = np.full(k, 1.0 / k)
    for i, name in enumerate(job.data.names):
        cands[f"{name} alone"] = np.eye(k)[i]
    return cands


def bootstrap(job: Job, cands: dict[str, np.ndarray], ex_name: str) -> dict | None:
    """Step 4: the paired bootstrap over rows (or groups) of every candidate
    against the reference (the best of the exact optimum, grid best and
    refined best; of all candidates when none is there), and of the --compare
    pairs; None without resamples."""
    if not job.n_boot:
        return None
    data, metric, sign = job.data, job.metric, job.sign
    names = list(cands)
    cw = np.stack(list(cands.values()))
    cs = scoremod.score_numpy(data, cw, metric, job.post)
    main = [j for j, n in enumerate(names) if n in (ex_name, "grid best", "refined best")] or range(len(cs))
    j_ref = min(main, key=lambda j: sign * cs[j])
    reps = stats.bootstrap(data, cw, metric, job.post, job.n_boot, job.seed)

    def pair(a: str, b: str) -> dict:
        ja, jb = names.index(a), names.index(b)
        return {
            "a": a,
            "b": b,
            "score_a": float(cs[ja]),
            "score_b": float(cs[jb]),
            "p_a_beats_b": stats.p_beats(reps[:, ja], reps[:, jb], metric),
            "diff_ci95": stats.ci(reps[:, ja] - reps[:, jb]),
        }

    return {
        "reference": names[j_ref],
        "n_boot": job.n_boot,
        "units": stats.units(data, job.seed)[2],
        "candidates": [
            {
                "name": name,
                "w": cw[j].tolist(),
                "score": float(cs[j]),
                "ci95": stats.ci(reps[:, j]),
                "p_beats_reference": stats.p_beats(reps[:, j], reps[:, j_ref], metric) if j != j_ref else None,
                "diff_ci95": stats.ci(reps[:, j] - reps[:, j_ref]) if j != j_ref else None,
            }
            for j, name in enumerate(names)
        ],
        "pairs": [pair(a[0], b[0]) for a, b in job.pairs],
    }


def _listed_ties(job: Job, s_grid: np.ndarray, s_list: np.ndarray) -> list[dict]:
    """For each listed weighting: the grid weightings with exactly its score
    (float64), their extent, and how many rows change prediction across them."""
    data, metric, post, w_grid, kw = job.data, job.metric, job.post, job.w_grid, job.kw
    out = []
    exact_scores = scoremod.resolve_dtype(kw.get("dtype", "auto"), metric, post) == "float64"
    for lab, w, s in zip(job.labels, job.w_list, s_list):
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


def crossfit(job: Job) -> dict:
    """Step 5: is the tuned blend better out of sample? Weights chosen on the
    other folds (the given folds, or ``n_folds`` made ones)."""
    fold_ids = stats.make_folds(job.data, job.n_folds, job.seed)
    cf = stats.cross_fit(job.data, job.w_grid, job.metric, job.post, fold_ids, max(job.n_boot, 200), job.seed, **job.kw)
    return report.crossfit_summary(cf, job.metric, "given" if job.data.folds is not None else "made")


def table(job: Job, w_all: np.ndarray, s_all: np.ndarray, extra: list, grid: GridStats | None) -> pd.DataFrame:
    """Every scored weighting, best first: the K weights, score, rank, source,
    label, in_plateau, exact_tie. ``w_all`` (G + L, K) and ``s_all``: the grid
    then the listed weightings; ``extra``: [(w (K,), score, source, label)]."""
    g, names = job.g, list(job.data.names)
    w_tab = np.concatenate([w_all] + ([np.stack([row[0] for row in extra])] if extra else []))
    df = pd.DataFrame(w_tab, columns=names)
    df["score"] = np.concatenate([s_all, [row[1] for row in extra]])
    df["source"] = ["grid"] * g + ["list"] * (len(w_all) - g) + [row[2] for row in extra]
    df["label"] = [""] * g + job.labels + [row[3] for row in extra]
    in_pl = np.zeros(len(df), bool)
    tie = np.zeros(len(df), bool)
    if grid:
        in_pl[:g], tie[:g] = grid.plateau["mask"], grid.ties["mask"]
    df["in_plateau"], df["exact_tie"] = in_pl, tie
    df = df.iloc[np.argsort(job.sign * df["score"].to_numpy(), kind="stable")].reset_index(drop=True)
    df.insert(len(names) + 1, "rank", np.arange(1, len(df) + 1))
    return df


def _best_verified(df: pd.DataFrame, names) -> dict:
    """The table's first row: the best of every scored weighting."""
    top = df.iloc[0]
    return {
        "w": top[list(names)].to_numpy(np.float64).tolist(),
        "score": float(top["score"]),
        "source": str(top["source"]),
        "label": str(top["label"]),
    }


def _finish(job: Job, df: pd.DataFrame, summary: dict, grid: GridStats | None, s_grid: np.ndarray) -> pd.DataFrame:
    """report.md into ``df.attrs`` (with the summary) and, with a workdir,
    every file: scores table, report.md/.html, summary.json and the plot."""
    tables, described = score_files(df, job.scores) if job.workdir is not None else ({}, "")
    summary["files"] = described
    text = report.markdown(summary, df)
    df.attrs["summary"] = summary
    df.attrs["report"] = text
    if job.workdir is None:
        return df
    figs = {}
    if grid:
        figs = plots.figures(
            job.data,
            job.w_grid,
            s_grid,
            job.metric,
            grid.plateau["mask"],
            grid.ties["mask"],
            summary,
            job.labels,
            job.w_list,
        )
    names, metric, higher = job.data.names, job.metric, job.sign < 0
    _write(
        job.workdir,
        {"report.md": text, "summary.json": json.dumps(summary, indent=1, default=float)},
        figs,
        lambda folder: webblend.render(df, names, metric, higher, text, folder, list(figs)),
        tables,
    )
    return df
