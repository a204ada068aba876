"""The exact optimum over the constrained weights, and a finer local grid.

- MAE and MAPE: the linear program  min sum_n r_n |y_n - P_n w|  subject to
  lo <= w <= hi (and sum w = 1), solved in its K-row dual form with scipy's
  HiGHS; primal minus dual objective is the optimality certificate.
- MSE and RMSE: the convex quadratic  min v' S v,  v = [w, sum w - 1], with
  the same Gram matrix as the scorer (SLSQP; K is small).
- log-loss: convex in w; SLSQP with the analytic gradient.
- accuracy: piecewise constant, no exact method: the grid and its
  refinement are the answer.

With post-processing (``--clip``/``--round``) the objective is piecewise
constant or linear and not convex: MAE and MAPE (any post-processing) and
MSE/RMSE with rounding are solved exactly as a mixed-integer linear program
(scipy ``milp``, HiGHS branch and bound). With a_n = P_n w and its range
[L_n, U_n] over the feasible weights (closed form):

- rounding to q (with or without clipping): an integer z_n per row with
  q z_n - q/2 <= a_n <= q z_n + q/2, z_n in [z_min, z_max] (the post-processed
  ends of the range); where clipping extends the lowest (highest) level below
  (above) its rounding interval, a binary relaxes that side and forces
  z_n = z_min (z_max); the prediction is q z_n. Loss: t_n >= |q z_n - y_n|,
  or for squared error the chords of (q z - y_n)^2 between consecutive
  integers (a convex function of an integer equals its piecewise-linear
  interpolation there, so this is exact);
- clipping only (MAE/MAPE): a continuous c_n = clip(a_n) with binaries for
  the regimes below lo / above hi (big-M from [L_n, U_n]), t_n >= |c_n - y_n|.
  Squared error with clipping only is not linear: not supported (the raw-blend
  optimum, re-scored, is reported instead and labelled so).

Rows whose post-processed prediction cannot change are constants. The MILP's
weights are then *verified*: re-scored with ``score.score_numpy`` (the true
post-processing, np.round's half-to-even included). Its integer choices are
fixed and an LP polishes w (rounding: the largest margin from every rounding
boundary, so no row sits on a half-way tie; clipping: the optimal w within the
regimes), and the best verified point is kept. The status says "optimal
(MILP, proven)" when that verified score meets HiGHS's lower bound, otherwise
the gap. The MILP has O(N) integer variables: it runs under a time limit and
a row cap, and the raw-blend optimum re-scored with the post-processing is
always computed too; the better verified of the two is the answer.
"""

from __future__ import annotations

import time

import numpy as np
import scipy.optimize
import scipy.sparse

from jaxexp.blending import grid as gridmod
from jaxexp.blending import score as scoremod
from jaxexp.blending.data import BlendData
from jaxexp.blending.milp import MILP_MAX_ROWS, MILP_TIME_LIMIT, _feasible, _milp_post


def _lp_abs(data: BlendData, r: np.ndarray, c: gridmod.Constraints) -> dict:
    """Weighted least absolute deviations, solved as the dual LP.

    The primal  min r'(u + v)  s.t.  P w + u - v = y, (1'w = 1), lo <= w <= hi,
    u, v >= 0  has N rows; its dual has only K:

        max  y'l + m + lo's+ - hi's-   s.t.  P'l + m 1 + s+ - s- = 0,
             -r <= l <= r,  s+, s- >= 0   (m only with sum-to-one)

    so HiGHS solves it in seconds for a million rows (interior point beyond
    20k rows); w = -(marginals of the K equality rows). The primal objective at
    that w minus the dual objective is the optimality certificate.
    """
    n, k = data.preds.shape
    rn = r / r.sum()
    cols = [data.preds.T]
    cost = [-data.y]
    bounds = [np.stack([-rn, rn], 1)]
    if c.sum_to_one:
        cols.append(np.ones((k, 1)))
        cost.append([-1.0])
        bounds.append([[-np.inf, np.inf]])
    cols += [np.eye(k), -np.eye(k)]
    cost += [-c.lo, c.hi]
    bounds += [np.tile([0.0, np.inf], (k, 1))] * 2
    res = scipy.optimize.linprog(
        np.concatenate([np.asarray(x, np.float64) for x in cost]),
        A_eq=np.hstack(cols),
        b_eq=np.zeros(k),
        bounds=np.concatenate([np.asarray(b, np.float64) for b in bounds]),
        method="highs-ipm" if n > 20_000 else "highs",
    )
    if res.status != 0:
        return {"status": f"HiGHS: {res.message}", "w": None}
    w = np.clip(-res.eqlin.marginals, c.lo, c.hi)
    primal = float(rn @ np.abs(data.y - data.preds @ w))
    return {"status": "optimal", "w": w, "objective": primal, "dual_gap": primal - float(-res.fun)}


def _slsqp(fun, jac, c: gridmod.Constraints, k: int) -> dict:
    cons = [{"type": "eq", "fun": lambda w: w.sum() - 1.0, "jac": lambda w: np.ones_like(w)}] if c.sum_to_one else []
    x0 = np.clip(np.full(k, 1.0 / k), c.lo, c.hi)
    res = scipy.optimize.minimize(
        fun,
        x0,
        jac=jac,
        method="SLSQP",
        bounds=list(zip(c.lo, c.hi)),
        constraints=cons,
        options={"ftol": 1e-15, "maxiter": 1000},
    )
    return {
        "status": "optimal" if res.success else f"SLSQP: {res.message}",
        "w": _feasible(res.x, c),
        "objective": float(res.fun),
    }


def exact_optimum(
    data: BlendData,
    metric: str,
    c: gridmod.Constraints,
    post: scoremod.Postprocess = scoremod.Postprocess(),
    milp_time_limit: float = MILP_TIME_LIMIT,
    milp_max_rows: int = MILP_MAX_ROWS,
) -> dict:
    """{"w": (K,) or None, "score" (with post-processing, float64), "method",
    "status", "seconds", and for LPs "dual_gap"}.

    With post-processing and MAE/MAPE (MSE/RMSE with rounding) also "milp" (the
    MILP's status, "proven", verified "score", lower "bound", "gap", sizes,
    seconds) and "raw" (the raw-blend optimum re-scored); "w"/"score" are the
    better verified of the two and "method"/"status" say which."""
    t0 = time.perf_counter()
    out = _raw_optimum(data, metric, c)
    if out.get("w") is not None:
        out["score"] = float(scoremod.score_numpy(data, out["w"][None], metric, post)[0])
        if post.active:
            out["method"] += f" on the raw blend (not {post.describe()}); then scored with the post-processing"
    if post.active and metric in ("mae", "mape", "mse", "rmse"):
        raw = {key: (v.tolist() if isinstance(v, np.ndarray) else v) for key, v in out.items()}
        mp = _milp_post(data, metric, c, post, milp_time_limit, milp_max_rows)
        out = {"milp": mp, "raw": raw}
        if mp["w"] is not None and (raw["w"] is None or mp["score"] <= raw["score"]):
            out.update(w=np.asarray(mp["w"]), score=mp["score"], status=mp["status"])
            out["method"] = f"mixed-integer linear program on the post-processed blend ({post.describe()}; scipy HiGHS)"
        else:
            out.update(w=None if raw["w"] is None else np.asarray(raw["w"]), method=raw["method"])
            kept = "the raw-blend optimum, re-scored, is kept" if raw["w"] is not None else "no weights"
            out.update(score=raw.get("score"), status=f"not proven optimal (MILP: {mp['status']}); {kept}")
    out["seconds"] = time.perf_counter() - t0
    return out


SOLVER = {"mae": "LP", "mape": "LP", "mse": "least squares", "rmse": "least squares", "logloss": "convex"}


def describe(ex: dict, post: scoremod.Postprocess, grid_best: float | None, metric: str) -> dict:
    """What the point of :func:`exact_optimum` is the optimum *of*, so that the
    report calls "exact optimum" only the optimum of the scored problem.

    Returns {"name" (tables, bootstrap), "label" (report), "optimum_of",
    "is_optimum", "worse_than_grid_best" (how much worse than the grid best,
    after post-processing; None when not worse)}. "exact optimum" needs: no
    post-processing and a converged solver, or a proven MILP of the
    post-processed blend; and a score not worse than the grid best (beyond
    TIE_RTOL-relative float noise, 1e-12). Otherwise e.g. "raw-blend optimum (LP)":
    the LP of the blend before clipping/rounding, then scored with it."""
    if ex.get("w") is None:
        return {"name": None, "label": None, "optimum_of": None, "is_optimum": False, "worse_than_grid_best": None}
    solver = SOLVER.get(metric, "solver")
    mp = ex.get("milp")
    if mp is not None and str(ex.get("method", "")).startswith("mixed-integer"):
        of = f"the post-processed blend ({post.describe()}; MILP)"
        ok = bool(mp.get("proven"))
        name, label = ("exact optimum", "Exact optimum") if ok else ("best MILP point", "Best MILP point (not proven)")
    elif post.active:
        of = f"the raw blend ({solver}, before the post-processing: {post.describe()})"
        ok = False
        name, label = f"raw-blend optimum ({solver})", f"Optimum of the raw blend ({solver}, before post-processing)"
    else:
        of = f"the blend's {metric} ({solver})"
        ok = ex.get("status") == "optimal"
        name, label = ("exact optimum", "Exact optimum") if ok else (f"{solver} point", f"{solver} point (unconverged)")
    sign = scoremod.goal_sign(metric)
    worse = None
    if grid_best is not None and ex.get("score") is not None:
        d = sign * (ex["score"] - grid_best)
        if d > 1e-12 * max(1.0, abs(grid_best)):
            worse = float(d)
    if worse is not None and ok:  # a solver's numerical failure: never call it the exact optimum
        ok, name, label = False, f"{solver} optimum (unverified)", f"{solver} optimum (unverified)"
    return {"name": name, "label": label, "optimum_of": of, "is_optimum": ok, "worse_than_grid_best": worse}


def _raw_optimum(data: BlendData, metric: str, c: gridmod.Constraints) -> dict:
    """The exact optimum of the blend without post-processing."""
    k = data.k
    if metric in ("mae", "mape"):
        r = data.weights_or_ones()
        out = _lp_abs(data, r / np.abs(data.y) if metric == "mape" else r, c)
        out["method"] = "linear program (scipy HiGHS)"
    elif metric in ("mse", "rmse"):
        r = data.weights_or_ones()
        m = np.concatenate([data.preds - data.y[:, None], data.y[:, None]], axis=1)
        s = (m * r[:, None]).T @ m / r.sum()

        def v(w):
            return np.append(w, w.sum() - 1.0)

        def jac(w):
            g = 2 * s @ v(w)
            return g[:k] + g[k]

        out = _slsqp(lambda w: v(w) @ s @ v(w), jac, c, k)
        out["method"] = "constrained least squares (SLSQP on the Gram matrix)"
    elif metric == "logloss":
        # The scorers' form and clip (score.py): q = Q w + (1 - y)(1 - sum w), the
        # true class's probability, clipped to [LOGLOSS_EPS, 1 - LOGLOSS_EPS].
        y, r = data.y, data.weights_or_ones() / data.weights_or_ones().sum()
        qm, neg = scoremod.true_class_q(y, data.preds), (y <= 0.5).astype(np.float64)
        eps = scoremod.LOGLOSS_EPS

        def f(w):
            q = np.clip(qm @ w + neg * (1.0 - w.sum()), eps, 1 - eps)
            return -(r * np.log(q)).sum()

        def jac(w):
            q = np.clip(qm @ w + neg * (1.0 - w.sum()), eps, 1 - eps)
            return -(r / q) @ (qm - neg[:, None])

        out = _slsqp(f, jac, c, k)
        out["method"] = "convex minimisation (SLSQP, analytic gradient)"
    else:
        out = {"status": "no exact method: accuracy is piecewise constant in the weights", "w": None, "method": "none"}
    return out


def refine(
    data: BlendData,
    metric: str,
    c: gridmod.Constraints,
    center: np.ndarray,
    step: float,
    post: scoremod.Postprocess = scoremod.Postprocess(),
    factor: int = 10,
    **score_kw,
) -> dict:
    """Scores the grid of step ``step / factor`` within one coarse step of
    ``center``; returns {"w", "score", "points", "step"}."""
    fine = step / factor
    w = gridmod.local_grid(center, c, step, fine)
    s = scoremod.score(data, w, metric, post, **score_kw)
    i = int(np.argmin(scoremod.goal_sign(metric) * s))
    return {"w": w[i], "score": float(s[i]), "points": len(w), "step": fine}
