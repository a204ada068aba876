"""The exact optimum of a post-processed blend (clipped and/or rounded) as a mixed-
integer LP solved by HiGHS (scipy ``milp``), verified by re-scoring."""

from __future__ import annotations

import time
import warnings
from typing import NamedTuple

import numpy as np
import scipy.optimize
import scipy.sparse

from jaxexp.blending import grid as gridmod
from jaxexp.blending import score as scoremod
from jaxexp.blending.data import BlendData


def _feasible(w: np.ndarray, c: gridmod.Constraints) -> np.ndarray:
    """w inside the bounds, and summing to one exactly (solvers meet constraints to ~1e-9)."""
    w = np.clip(w, c.lo, c.hi)
    if c.sum_to_one:  # the deficit to the models with room, in proportion to it
        room = c.hi - w if w.sum() < 1 else w - c.lo
        w = w + (1 - w.sum()) * room / max(room.sum(), 1e-300)
    return w


MILP_TIME_LIMIT = 30.0  # seconds HiGHS may spend on the post-processed MILP
MILP_MAX_ROWS = 2_000  # larger problems are not attempted: O(N) integer variables (K=3: N=2,000 ~ 30 s)
MAX_CHORDS = 2_000_000  # squared error with rounding: chord rows of (q z - y)^2 in all
PROVEN_RTOL = 1e-9  # verified score within this of HiGHS's lower bound: proven optimal


def blend_range(preds: np.ndarray, c: gridmod.Constraints) -> tuple[np.ndarray, np.ndarray]:
    """Lowest and highest P_n w (N,) over the feasible weights: every model at
    its lower bound, the rest of the unit mass to the cheapest models first."""
    if not c.sum_to_one:
        a, b = preds * c.lo, preds * c.hi
        return np.minimum(a, b).sum(1), np.maximum(a, b).sum(1)

    def lowest(p):
        order = np.argsort(p, axis=1)
        cap = (c.hi - c.lo)[order]
        fill = np.clip(1.0 - c.lo.sum() - (np.cumsum(cap, 1) - cap), 0.0, cap)
        return p @ c.lo + (np.take_along_axis(p, order, 1) * fill).sum(1)

    return lowest(preds), -lowest(-preds)


class _Model:
    """A (mixed-integer) LP  min cost'x,  bl <= A x <= bu,  lb <= x <= ub, built in blocks."""

    def __init__(self, c: gridmod.Constraints):
        self.n, self.m = 0, 0
        self.cols: list = []  # (lb, ub, cost, integer) per variable block
        self.entries: list = []  # (row, col, value) per row block
        self.bounds: list = []  # (bl, bu) per row block
        self.w = self.var(c.lo, c.hi)
        if c.sum_to_one:
            self.rows([(self.w[None], 1.0)], 1.0, 1.0)

    def var(self, lb, ub, cost=0.0, integer=False, size=None) -> np.ndarray:
        size = max(np.size(v) for v in (lb, ub, cost)) if size is None else size
        self.cols.append([np.broadcast_to(np.asarray(v, np.float64), (size,)) for v in (lb, ub, cost, float(integer))])
        self.n += size
        return np.arange(self.n - size, self.n)

    def blend(self, p: np.ndarray) -> tuple:
        """The term a_n = P_n w of each row of ``p`` (m, K)."""
        return (np.broadcast_to(self.w, p.shape), p)

    def rows(self, terms, bl=-np.inf, bu=np.inf) -> None:
        """One constraint per entry along the terms' first axis: sum of value * x[col]."""
        m = len(terms[0][0])
        if not m:
            return
        cols = np.concatenate([np.reshape(ci, (m, -1)) for ci, _ in terms], 1)
        vals = np.concatenate([np.broadcast_to(v, np.shape(ci)).reshape(m, -1) for ci, v in terms], 1)
        self.entries.append((np.repeat(np.arange(self.m, self.m + m), cols.shape[1]), cols.ravel(), vals.ravel()))
        self.bounds.append((np.broadcast_to(bl, (m,)), np.broadcast_to(bu, (m,))))
        self.m += m

    def solve(self, time_limit: float | None = None):
        lb, ub, cost, integer = (np.concatenate(v) for v in zip(*self.cols))
        row, col, val = (np.concatenate(v) for v in zip(*self.entries))
        bl, bu = (np.concatenate(v) for v in zip(*self.bounds))
        opts = {"mip_rel_gap": 1e-10, "mip_abs_gap": 1e-10}  # the latter is passed to HiGHS verbatim
        if time_limit is not None:
            opts["time_limit"] = float(time_limit)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Unrecognized options", RuntimeWarning)
            return scipy.optimize.milp(
                cost,
                integrality=integer,
                bounds=scipy.optimize.Bounds(lb, ub),
                constraints=scipy.optimize.LinearConstraint(
                    scipy.sparse.csr_array((val, (row, col)), shape=(self.m, self.n)), bl, bu
                ),
                options=opts,
            )


def _abs_rows(mod: _Model, t: np.ndarray, pred: tuple, y: np.ndarray) -> None:
    """t >= |pred - y|, with pred = (columns, factor) one variable per row, or a blend term."""
    cols, f = pred
    mod.rows([(t, 1.0), (cols, -np.asarray(f))], -y)
    mod.rows([(t, 1.0), (cols, f)], y)


def _milp_post(
    data: BlendData, metric: str, c: gridmod.Constraints, post: scoremod.Postprocess, time_limit: float, max_rows: int
) -> dict:
    """The exact optimum of the post-processed blend as a MILP (module docstring)."""
    t0 = time.perf_counter()
    skip = _not_attempted(data.n, metric, post, time_limit, max_rows)
    if skip:
        return {"status": skip, "w": None}
    rows, const = _active_rows(data, metric, c, post)
    mod = _Model(c)
    a = mod.blend(rows.preds)
    t = mod.var(0.0, np.inf, rows.coef, size=len(rows.y))  # t_n >= the row's loss
    lv = _levels(mod, a, rows, post)
    too_wide = _loss_rows(mod, t, lv, rows, metric, post.round_to)
    if too_wide:
        return {"status": too_wide, "w": None}
    res = mod.solve(time_limit)
    info = _solve_info(res, data.n, len(rows.y), lv, post.round_to, const, metric)
    if res.x is None:
        info.update(
            status=f"no solution within the time limit ({time_limit:g} s)"
            if res.status == 1
            else f"HiGHS: {res.message}",
            w=None,
            seconds=time.perf_counter() - t0,
        )
        return info
    cands = [_feasible(res.x[mod.w], c)]
    polished = _polish(c, res.x, rows, lv, post)
    if polished is not None:
        cands.append(polished)
    scores = scoremod.score_numpy(data, np.stack(cands), metric, post)
    i = int(np.argmin(scores))
    score, gap = float(scores[i]), None if info["bound"] is None else float(scores[i] - info["bound"])
    status, proven = _verdict(res.status, score, gap, time_limit)
    info.update(status=status, proven=bool(proven), w=cands[i].tolist(), score=score, gap=gap)
    info["seconds"] = time.perf_counter() - t0
    return info


def _not_attempted(n: int, metric: str, post: scoremod.Postprocess, time_limit: float, max_rows: int) -> str:
    """Why the MILP is not tried ("" when it is): squared error of a clipped
    blend is not linear, and the row cap and the time limit."""
    if metric in ("mse", "rmse") and post.round_to <= 0:
        return "not supported: squared error of a clipped (not rounded) blend is not linear"
    if n > max_rows:
        return f"not attempted: {n:,} rows > cap {max_rows:,} (--milp_max_rows)"
    if time_limit <= 0:
        return "not attempted: time limit 0 (--milp_time_limit)"
    return ""


class _Active(NamedTuple):
    """The m rows whose post-processed prediction can change over the feasible weights."""

    preds: np.ndarray  # (m, K)
    lo: np.ndarray  # (m,) lowest blend P_n w (padded by its rounding errors)
    hi: np.ndarray  # (m,) highest
    p_lo: np.ndarray  # (m,) post-processed lo and hi (post-processing is non-decreasing)
    p_hi: np.ndarray
    y: np.ndarray  # (m,) targets
    coef: np.ndarray  # (m,) objective coefficient of the row's loss (objective = n * score)


def _active_rows(
    data: BlendData, metric: str, c: gridmod.Constraints, post: scoremod.Postprocess
) -> tuple[_Active, float]:
    """The rows left in the MILP, and the objective's constant part: the loss of
    every row whose post-processed prediction is the same for all feasible weights."""
    n = data.n
    r = data.weights_or_ones()
    coef = n * r / r.sum() / (np.abs(data.y) if metric == "mape" else 1.0)  # objective = n * score
    base = "mse" if metric in ("mse", "rmse") else "mae"
    lo_a, hi_a = blend_range(data.preds, c)
    pad = 1e-9 * (1.0 + np.abs(lo_a) + np.abs(hi_a))  # the range's own rounding errors
    lo_a, hi_a = lo_a - pad, hi_a + pad
    p_lo, p_hi = post.apply(lo_a), post.apply(hi_a)  # post-processing is non-decreasing
    act = p_lo < p_hi
    const = float(coef[~act] @ scoremod.pointwise_loss(p_lo[~act], data.y[~act], base))
    rows = _Active(data.preds[act], lo_a[act], hi_a[act], p_lo[act], p_hi[act], data.y[act], coef[act])
    return rows, const


class _Levels(NamedTuple):
    """The MILP's post-processed prediction of each active row (``_levels``)."""

    pred: np.ndarray  # (m,) variable indices: the integer level z (rounding) or the clipped blend
    f: float  # the prediction is f * pred: q when rounding, else 1
    half: float  # half a level: q / 2 when rounding, else 0
    ext_lo: np.ndarray  # (m,) bool: clipping reaches below the lowest level (a binary relaxes that side)
    ext_hi: np.ndarray  # (m,) bool: ... above the highest
    e_lo: np.ndarray  # (m,) those binaries' variable indices where ext_lo, else -1
    e_hi: np.ndarray
    zmin: np.ndarray | None  # (m,) lowest and highest integer level (rounding only)
    zmax: np.ndarray | None


def _levels(mod: _Model, a: tuple, rows: _Active, post: scoremod.Postprocess) -> _Levels:
    """Adds each active row's prediction to ``mod``, tied to its blend ``a``:
    a rounding level (integer) or the clipped blend, with binaries for the
    regimes only clipping reaches."""
    q, lo_c, hi_c = post.round_to, post.clip_lo, post.clip_hi
    pa, la, ua = rows.preds, rows.lo, rows.hi
    m = len(rows.y)
    ext_lo = np.zeros(m, bool) if lo_c is None else la < lo_c  # levels only clipping reaches
    ext_hi = np.zeros(m, bool) if hi_c is None else ua > hi_c
    zmin = zmax = None
    if q > 0:
        zmin, zmax = np.round(rows.p_lo / q), np.round(rows.p_hi / q)
        pred = mod.var(zmin, zmax, integer=True)
        ext_lo &= q * (zmin - 0.5) > la
        ext_hi &= q * (zmax + 0.5) < ua
        lvl_lo, lvl_hi, f, half = zmin, zmax, q, q / 2
    else:
        pred = mod.var(rows.p_lo, rows.p_hi)
        lvl_lo, lvl_hi, f, half = rows.p_lo, rows.p_hi, 1.0, 0.0
    e_lo, e_hi = np.full(m, -1), np.full(m, -1)
    e_lo[ext_lo] = mod.var(0.0, 1.0, integer=True, size=int(ext_lo.sum()))
    e_hi[ext_hi] = mod.var(0.0, 1.0, integer=True, size=int(ext_hi.sum()))
    for s, e, big, lvl, far, sign in (
        (ext_lo, e_lo, lvl_lo * f - half - la, lvl_lo, lvl_hi, 1.0),
        (ext_hi, e_hi, ua - lvl_hi * f - half, lvl_hi, lvl_lo, -1.0),
    ):
        # sign * (a - f pred) >= -half: a lies in pred's level (rounding) or pred = a
        # (clipping); relaxed by e = 1 beyond the end level, where e forces pred to it.
        mod.rows([(a[0][~s], sign * pa[~s]), (pred[~s], -sign * f)], -half)
        mod.rows([(a[0][s], sign * pa[s]), (pred[s], -sign * f), (e[s], big[s])], -half)
        mod.rows([(pred[s], sign), (e[s], sign * (far - lvl)[s])], bu=sign * far[s])
    both = ext_lo & ext_hi
    mod.rows([(e_lo[both], 1.0), (e_hi[both], 1.0)], bu=1.0)
    return _Levels(pred, f, half, ext_lo, ext_hi, e_lo, e_hi, zmin, zmax)


def _loss_rows(mod: _Model, t: np.ndarray, lv: _Levels, rows: _Active, metric: str, q: float) -> str:
    """t_n >= the row's loss: |f pred - y| (MAE/MAPE), or the chords of the
    squared error between consecutive levels. Returns why not ("" when added):
    too many chord rows."""
    if metric not in ("mse", "rmse"):
        _abs_rows(mod, t, (lv.pred, lv.f), rows.y)
        return ""
    # chords of the convex (q z - y)^2 between consecutive integers: exact at integers
    reps = (lv.zmax - lv.zmin).astype(np.int64)
    if reps.sum() > MAX_CHORDS:
        return f"not attempted: {reps.sum():,} chord rows > {MAX_CHORDS:,} (range / --round too wide)"
    i = np.repeat(np.arange(len(rows.y)), reps)
    j = lv.zmin[i] + np.arange(len(i)) - np.repeat(np.cumsum(reps) - reps, reps)
    f0, f1 = (q * j - rows.y[i]) ** 2, (q * (j + 1) - rows.y[i]) ** 2
    mod.rows([(t[i], 1.0), (lv.pred[i], -(f1 - f0))], f0 - (f1 - f0) * j)
    return ""


def _solve_info(res, n: int, m: int, lv: _Levels, q: float, const: float, metric: str) -> dict:
    """The MILP's size (``m`` of the ``n`` rows in it), branch-and-bound nodes
    and lower bound on the score."""
    info = {
        "rows": m,
        "constant_rows": n - m,
        "integers": int(m * (q > 0) + lv.ext_lo.sum() + lv.ext_hi.sum()),
        "nodes": int(getattr(res, "mip_node_count", 0) or 0),
    }
    bound = getattr(res, "mip_dual_bound", None)
    info["bound"] = (
        None if bound is None or not np.isfinite(bound) else float(scoremod.finalize((bound + const) / n, metric))
    )
    return info


def _polish(c: gridmod.Constraints, x: np.ndarray, rows: _Active, lv: _Levels, post: scoremod.Postprocess):
    """The MILP's integer choices in ``x`` fixed, an LP for w (see the module
    docstring): the feasible w (K,), or None when the LP finds none."""
    q, lo_c, hi_c = post.round_to, post.clip_lo, post.clip_hi
    pa = rows.preds
    pol = _Model(c)
    pa_ = pol.blend(pa)
    if q > 0:
        z = np.round(x[lv.pred])
        d = pol.var(0.0, lv.half, -1.0)  # the margin from every rounding boundary, maximised
        up, dn = z > lv.zmin, z < lv.zmax
        pol.rows([(pa_[0][up], pa[up]), (np.broadcast_to(d, (up.sum(), 1)), -1.0)], q * (z[up] - 0.5))
        pol.rows([(pa_[0][dn], pa[dn]), (np.broadcast_to(d, (dn.sum(), 1)), 1.0)], bu=q * (z[dn] + 0.5))
    else:
        below = lv.ext_lo & (x[np.maximum(lv.e_lo, 0)] > 0.5)
        above = lv.ext_hi & (x[np.maximum(lv.e_hi, 0)] > 0.5)
        inside = ~below & ~above
        pol.rows([(pa_[0][below], pa[below])], bu=lo_c)
        pol.rows([(pa_[0][above], pa[above])], hi_c)
        pol.rows([(pa_[0][inside], pa[inside])], -np.inf if lo_c is None else lo_c, np.inf if hi_c is None else hi_c)
        _abs_rows(pol, pol.var(0.0, np.inf, rows.coef[inside]), (pa_[0][inside], pa[inside]), rows.y[inside])
    pres = pol.solve()
    return None if pres.x is None else _feasible(pres.x[pol.w], c)


def _verdict(milp_status: int, score: float, gap: float | None, time_limit: float) -> tuple[str, bool]:
    """(status sentence, proven): proven when HiGHS finished and the verified
    ``score`` meets its lower bound (``gap``: score - bound) to ``PROVEN_RTOL``."""
    proven = milp_status == 0 and gap is not None and gap <= PROVEN_RTOL * max(1.0, abs(score))
    if proven:
        status = f"optimal (MILP, proven): verified score - lower bound = {gap:.1e}"
    elif milp_status == 0:
        status = f"MILP optimal, but the verified score exceeds its lower bound by {gap:.3g} (a half-way rounding tie)"
    else:
        status = f"best found within the time limit ({time_limit:g} s): gap to the lower bound {gap:.3g}"
    return status, proven
