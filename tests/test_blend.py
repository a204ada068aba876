"""Blend-weight search (jaxexp.blending): grid, kernel vs numpy, exact optimum,
ties and their mechanism, bootstrap coverage, held-out check, bad inputs, CLI."""

import math
import os
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import jaxexp
from jaxexp.blending import data as datamod
from jaxexp.blending import demo, exact, flatness, stats
from jaxexp.blending import grid as gridmod
from jaxexp.blending import score as scoremod
from jaxexp.errors import ConfigError, DataError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAMES = ("a", "b", "c")


def _problem(n=300, seed=0, k=3):
    rng = np.random.default_rng(seed)
    y = rng.normal(size=n) * 3 + 5
    p = y[:, None] + rng.normal(size=(n, k)) * np.linspace(1.0, 2.0, k) + rng.normal(size=(n, 1))
    return y, p


def _binary(n=300, seed=0):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.4).astype(float)
    p = np.clip(0.5 * y[:, None] + 0.5 * rng.random((n, 3)), 0.001, 0.999)
    return y, p


# ----------------------------------------------------------------------------- grid


def test_grid_sizes_order_and_constraints():
    c3 = gridmod.make_constraints(NAMES)
    w = gridmod.simplex_grid(c3, 0.01)
    assert len(w) == 5151 == gridmod.grid_size(3, 0.01)
    assert np.allclose(w.sum(1), 1) and (w >= 0).all()
    assert len(np.unique(np.round(w * 100).astype(int), axis=0)) == len(w)
    assert np.array_equal(w[:2], [[0, 0, 1], [0, 0.01, 0.99]])  # lexicographic, deterministic
    c5 = gridmod.make_constraints(list("abcde"))
    assert len(gridmod.simplex_grid(c5, 0.02)) == 316_251 == math.comb(54, 4)
    cb = gridmod.make_constraints(NAMES, bounds="a=0.2:0.5,c=:0.3")
    wb = gridmod.simplex_grid(cb, 0.05)
    assert cb.check(wb) and len(wb) == gridmod.count_compositions(np.array([4, 0, 0]), np.array([10, 20, 6]), 20)
    free = gridmod.make_constraints(NAMES, nonneg=False, sum_to_one=False, bounds="a=-0.5:0.5,b=-0.5:0.5,c=-0.5:0.5")
    assert len(gridmod.simplex_grid(free, 0.25)) == 5**3


def test_explicit_weightings_percent_fractions_labels():
    labels, w = gridmod.parse_weightings("champion=50/30/20, 52/28/20,0.2/0.3/0.5", NAMES)
    assert labels == ["champion", "52/28/20", "0.2/0.3/0.5"]
    assert np.allclose(w, [[0.5, 0.3, 0.2], [0.52, 0.28, 0.2], [0.2, 0.3, 0.5]])
    with pytest.raises(ConfigError, match="--weights: '50/50' has 2 weight"):
        gridmod.parse_weightings("50/50", NAMES)


# ----------------------------------------------------------------------------- scores


@pytest.mark.parametrize("metric", ["mae", "rmse", "mse", "mape", "logloss", "accuracy"])
@pytest.mark.parametrize("post", [None, "round"])
def test_grid_scores_equal_a_numpy_loop(metric, post):
    binary = metric in ("logloss", "accuracy")
    if binary and post:
        pytest.skip("rounding probabilities is refused")
    y, p = _binary() if binary else _problem()
    rw = np.random.default_rng(1).random(len(y)) + 0.1
    d = datamod.from_arrays(y, p, NAMES, row_weights=rw, metric=metric)
    pp = scoremod.make_postprocess("0:12", 0.5) if post else scoremod.Postprocess()
    w = gridmod.simplex_grid(gridmod.make_constraints(NAMES), 0.05)
    got = scoremod.score(d, w, metric, pp)
    want = []
    for wi in w:  # what users write: one weighting at a time
        pred = p @ wi
        if post:
            pred = np.round(np.clip(pred, 0, 12) / 0.5) * 0.5
        if metric == "mae":
            v = np.average(np.abs(y - pred), weights=rw)
        elif metric in ("mse", "rmse"):
            v = np.average((y - pred) ** 2, weights=rw)
            v = np.sqrt(v) if metric == "rmse" else v
        elif metric == "mape":
            v = np.average(np.abs(y - pred) / np.abs(y), weights=rw)
        elif metric == "logloss":
            q = np.clip(pred, 1e-15, 1 - 1e-15)
            v = np.average(-(y * np.log(q) + (1 - y) * np.log(1 - q)), weights=rw)
        else:
            v = np.average((pred >= 0.5) == (y == 1), weights=rw)
        want.append(v)
    np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-7)


def test_float64_kernel_matches_numpy_and_shapes_do_not_recompile():
    y, p = _problem(n=1500)
    d = datamod.from_arrays(y, p, NAMES)
    w = gridmod.simplex_grid(gridmod.make_constraints(NAMES), 0.05)
    ref = scoremod.score_numpy(d, w, "mae")
    np.testing.assert_allclose(scoremod.score_kernel(d, w, "mae", dtype="float64"), ref, rtol=1e-13)
    # rows split over several calls (tiny memory budget) give the same sums
    small = scoremod.score_kernel(d, w, "mae", dtype="float64", memory_budget=8 * 1024 * 8 * 4)
    np.testing.assert_allclose(small, ref, rtol=1e-13)
    before = scoremod.TRACE_COUNTS["kernel"]
    scoremod.score_kernel(d, w[::-1], "mae", dtype="float64")
    assert scoremod.TRACE_COUNTS["kernel"] == before


@pytest.mark.parametrize(("metric", "clip"), [("mae", None), ("mape", None), ("mae", "0:12"), ("mse", "2:")])
def test_kernel_with_and_without_eliminating_the_last_weight(metric, clip):
    # 70,000 rows: three fused row blocks of 32,768 (MAE/MAPE) or 137 of 512, Kahan-summed.
    y, p = _problem(n=70_000)
    d = datamod.from_arrays(y, p, NAMES, row_weights=np.random.default_rng(2).random(len(y)) + 0.1, metric=metric)
    post = scoremod.make_postprocess(clip)
    simplex = gridmod.simplex_grid(gridmod.make_constraints(NAMES), 0.1)  # sums to one: w_K eliminated
    free = np.random.default_rng(3).uniform(-0.2, 0.8, size=(40, 3))  # does not: the full [P, y] @ [w, -1]
    for w in (simplex, free):
        ref = scoremod.score_numpy(d, w, metric, post)
        np.testing.assert_allclose(scoremod.score_kernel(d, w, metric, post, dtype="float64"), ref, rtol=1e-12)
        np.testing.assert_allclose(scoremod.score_kernel(d, w, metric, post, dtype="float32"), ref, rtol=2e-6)


# ----------------------------------------------------------------------------- exact optimum


@pytest.mark.parametrize("metric", ["mae", "mse", "rmse", "mape", "logloss"])
@pytest.mark.parametrize("cons", ["simplex", "bounds", "free"])
def test_exact_optimum_beats_grid_satisfies_constraints_and_is_locally_optimal(metric, cons):
    binary = metric == "logloss"
    if binary and cons == "free":
        pytest.skip("log-loss needs probabilities: weights stay on the simplex")
    y, p = _binary() if binary else _problem()
    d = datamod.from_arrays(y, p, NAMES, metric=metric)
    c = {
        "simplex": gridmod.make_constraints(NAMES),
        "bounds": gridmod.make_constraints(NAMES, bounds="a=0:0.3,c=0.1:0.6"),
        "free": gridmod.make_constraints(NAMES, nonneg=False, sum_to_one=False),
    }[cons]
    step = 0.05 if cons != "free" else 0.1
    w = gridmod.simplex_grid(c, step)
    s = scoremod.score(d, w, metric, dtype="float64")
    ex = exact.exact_optimum(d, metric, c)
    assert ex["status"] == "optimal"
    assert ex["score"] <= s.min() + 1e-9
    assert c.check(ex["w"], tol=1e-7)
    if "dual_gap" in ex:  # LP dual certificate
        assert abs(ex["dual_gap"]) < 1e-7
    # Independent check: a fine local search from the grid best never beats it,
    # and (the metric is convex) nor does any small feasible step from the optimum.
    ref = exact.refine(d, metric, c, w[np.argmin(s)], step, factor=20, dtype="float64")
    assert ex["score"] <= ref["score"] + 1e-9
    rng = np.random.default_rng(0)
    steps = rng.normal(size=(200, 3)) * 1e-3
    if c.sum_to_one:
        steps -= steps.mean(1, keepdims=True)
    cand = ex["w"] + steps
    cand = cand[[c.check(x, tol=0) for x in cand]]
    assert (scoremod.score_numpy(d, cand, metric) >= ex["score"] - 1e-9).all()


def test_best_grid_point_need_not_be_nearest_the_optimum_but_gap_is_reported():
    df = jaxexp.blend(
        pd.DataFrame(dict(zip(("target",) + NAMES, np.column_stack(_problem(600)).T))),
        step=0.1,
        n_boot=0,
        n_folds=0,
        progress=None,
    )
    s = df.attrs["summary"]
    assert s["gap"] >= -1e-12  # grid best - exact optimum (lower is better)
    assert s["exact"]["score"] <= s["refined"]["score"] + 1e-12 <= s["grid_best"]["score"] + 1e-12


# ----------------------------------------------------------------------------- post-processed optimum (MILP)


@pytest.mark.parametrize(
    "metric, clip, round_to",
    [("mae", None, 1.0), ("mae", "3:8", 0.0), ("mae", "4:", 0.5), ("mape", ":6", 2.0), ("mse", None, 1.0)],
)
def test_milp_optimum_of_the_post_processed_blend_beats_a_fine_grid(metric, clip, round_to):
    y, p = _problem(60, seed=1)
    d = datamod.from_arrays(y, p, NAMES, metric=metric)
    c = gridmod.make_constraints(NAMES, bounds="a=0:0.7")
    post = scoremod.make_postprocess(clip, round_to)
    ex = exact.exact_optimum(d, metric, c, post)
    mp = ex["milp"]
    assert mp["proven"] and mp["status"].startswith("optimal (MILP, proven)"), mp["status"]
    assert ex["method"].startswith("mixed-integer linear program on the post-processed blend")
    assert c.check(ex["w"], tol=1e-12)
    assert ex["score"] == pytest.approx(scoremod.score_numpy(d, ex["w"][None], metric, post)[0], abs=1e-13)  # verified
    assert mp["bound"] <= ex["score"] + 1e-12 and ex["score"] <= ex["raw"]["score"]
    w = gridmod.simplex_grid(c, 0.005)
    assert ex["score"] <= scoremod.score_numpy(d, w, metric, post).min() + 1e-12


def _k2_breakpoints(y, p, post):
    """Every t in [0, 1] where the post-processed MAE of t * p0 + (1 - t) * p1 can
    change slope or jump: a blended prediction crossing a clip bound, a rounding
    half-point or its target; the minimum is at one of them or between two."""
    levels = [y]
    if post.clip_lo is not None:
        levels.append(np.full_like(y, post.clip_lo))
    if post.round_to:
        ks = np.arange(np.floor(p.min() / post.round_to) - 1, np.ceil(p.max() / post.round_to) + 2)
        levels += [np.full_like(y, (k + 0.5) * post.round_to) for k in ks]
    d = p[:, 0] - p[:, 1]
    t = np.concatenate([(lv - p[:, 1]) / np.where(d == 0, np.inf, d) for lv in levels])
    t = np.unique(np.concatenate([[0.0, 1.0], t[(t >= 0) & (t <= 1)]]))
    t = np.unique(np.concatenate([t, (t[1:] + t[:-1]) / 2, np.nextafter(t, 2), np.nextafter(t, -1)]))
    return np.clip(t, 0, 1)


@pytest.mark.parametrize("clip, round_to", [(None, 1.0), ("4:", 0.0), ("4:", 0.5)])
def test_milp_optimum_is_the_global_optimum_on_k2(clip, round_to):
    # Independent check: with K = 2 the score is a function of one weight t whose
    # breakpoints are known exactly; scoring every breakpoint and every midpoint
    # between two finds the global minimum.
    y, p = _problem(50, seed=3, k=2)
    d = datamod.from_arrays(y, p, ("a", "b"), metric="mae")
    c = gridmod.make_constraints(("a", "b"))
    post = scoremod.make_postprocess(clip, round_to)
    ex = exact.exact_optimum(d, "mae", c, post)
    t = _k2_breakpoints(y, p, post)
    brute = scoremod.score_numpy(d, np.stack([t, 1 - t], 1), "mae", post)
    assert ex["milp"]["proven"]
    assert ex["score"] <= brute.min() + 1e-12
    assert ex["score"] >= brute.min() - 1e-12  # nothing better exists


def test_milp_limits_give_an_honest_status_and_keep_the_raw_optimum():
    y, p = _problem(60, seed=1)
    d = datamod.from_arrays(y, p, NAMES, metric="mae")
    c = gridmod.make_constraints(NAMES)
    post = scoremod.make_postprocess("4:", 0.5)
    capped = exact.exact_optimum(d, "mae", c, post, milp_max_rows=59)
    assert capped["milp"]["status"] == "not attempted: 60 rows > cap 59 (--milp_max_rows)"
    assert "on the raw blend" in capped["method"] and "not attempted" in capped["status"]
    assert capped["score"] == capped["raw"]["score"]
    y, p = _problem(400, seed=2)
    d = datamod.from_arrays(y, p, NAMES, metric="mae")
    timed = exact.exact_optimum(d, "mae", c, post, milp_time_limit=0.05)
    assert not timed["milp"].get("proven")
    assert "within the time limit (0.05 s)" in timed["milp"]["status"]  # "best found" or "no solution"
    assert "not proven optimal" in timed["status"] or "gap to the lower bound" in timed["status"]
    assert timed["score"] <= timed["raw"]["score"]
    sq = exact.exact_optimum(d, "mse", c, scoremod.make_postprocess("4:"))
    assert sq["milp"]["status"].startswith("not supported") and "on the raw blend" in sq["method"]


def test_blend_reports_the_milp_optimum():
    y, p = _problem(80, seed=4)
    frame = pd.DataFrame({"target": y, "a": p[:, 0], "b": p[:, 1], "c": p[:, 2]})
    df = jaxexp.blend(frame, step=0.05, round_to=1.0, clip="0:", n_boot=0, n_folds=0, progress=None)
    s = df.attrs["summary"]
    assert s["exact"]["milp"]["proven"] and s["gap"] >= 0
    assert df["score"].iloc[0] == s["exact"]["score"] and df["source"].iloc[0] == "exact"
    assert "optimal (MILP, proven)" in df.attrs["report"] and "MILP on the post-processed blend" in df.attrs["report"]


# ----------------------------------------------------------------------------- ties and mechanisms


def test_demo_reproduces_exact_ties_and_names_the_mechanisms():
    df = jaxexp.blend(
        demo.demo_data(),
        step=0.02,
        weights=demo.WEIGHTS,
        round_to=demo.ROUND_TO,
        clip=demo.CLIP,
        n_boot=100,
        n_folds=0,
        milp_time_limit=1.0,
        progress=None,
    )
    listed = df[df["source"] == "list"].set_index("label")["score"]
    assert listed["champion"] == listed["variant_b"] == listed["variant_e"] == pytest.approx(2.98875, abs=1e-12)
    s = df.attrs["summary"]
    mech = s["diagnosis"]["mechanisms"]
    assert "near-duplicate models" in mech and "rounding of the blended prediction" in mech
    assert any("notemporal and multi correlate at 0.99999" in f for f in s["diagnosis"]["findings"])
    champion = next(x for x in s["listed"] if x["label"] == "champion")
    assert champion["grid_ties"] > 5  # a whole level set of the grid ties it exactly
    assert "ties exactly (float64)" in df.attrs["report"]


def test_duplicate_models_make_an_exact_plateau_without_post_processing():
    y, p = _problem(400)
    p[:, 1] = p[:, 0]  # model b is a copy of model a
    df = jaxexp.blend(
        pd.DataFrame({"target": y, "a": p[:, 0], "b": p[:, 1], "c": p[:, 2]}),
        step=0.05,
        n_boot=0,
        n_folds=0,
        progress=None,
    )
    s = df.attrs["summary"]
    assert s["plateau"]["exact_ties"] >= 3
    lo, hi = s["plateau"]["exact_tie_extent"]["a"]
    assert hi - lo >= 0.1 and s["plateau"]["exact_tie_extent"]["c"][0] == s["plateau"]["exact_tie_extent"]["c"][1]
    assert "near-duplicate models" in s["diagnosis"]["mechanisms"]
    assert any("correlate at 1.0000000" in f for f in s["diagnosis"]["findings"])


def test_display_rounding_without_exact_ties_is_named():
    y, p = _problem(2000, seed=3)
    p[:, 1] = p[:, 0] + 1e-7 * np.random.default_rng(0).normal(size=len(y))
    df = jaxexp.blend(
        pd.DataFrame({"target": y, "a": p[:, 0], "b": p[:, 1], "c": p[:, 2]}),
        step=0.05,
        n_boot=0,
        n_folds=0,
        decimals=5,
        progress=None,
    )
    d = df.attrs["summary"]
    assert d["plateau"]["display_ties"] > 1
    assert "near-duplicate models" in d["diagnosis"]["mechanisms"]


# ----------------------------------------------------------------------------- bootstrap and folds


def test_bootstrap_ci_covers_the_true_score_about_95_percent():
    rng = np.random.default_rng(2024)
    w = np.array([[0.5, 0.3, 0.2]])
    tau = np.array([0.5, 1.0, 1.5])
    sigma = np.sqrt(1.0 + (w[0] ** 2 * tau**2).sum())
    true_mae = sigma * np.sqrt(2 / np.pi)
    hits, reps = 0, 200
    for r in range(reps):
        f = rng.normal(size=300) * 3
        y = f + rng.normal(size=300)
        p = f[:, None] + rng.normal(size=(300, 3)) * tau
        d = datamod.from_arrays(y, p, NAMES)
        lo, hi = stats.ci(stats.bootstrap(d, w, "mae", scoremod.Postprocess(), n_boot=400, seed=r)[:, 0])
        hits += lo <= true_mae <= hi
    assert 0.88 <= hits / reps <= 0.99, hits / reps


def test_paired_bootstrap_sees_a_real_difference_and_noise():
    rng = np.random.default_rng(5)
    y = rng.normal(size=3000)
    p = y[:, None] + rng.normal(size=(3000, 3)) * [1.0, 1.0, 2.0]  # a and b equally good, c worse
    d = datamod.from_arrays(y, p, NAMES)
    w = np.array([[1, 0, 0], [0, 0, 1], [0, 1, 0]])
    reps = stats.bootstrap(d, w, "mae", scoremod.Postprocess(), n_boot=500, seed=0)
    assert stats.p_beats(reps[:, 0], reps[:, 1], "mae") > 0.99  # a really beats c
    assert 0.05 < stats.p_beats(reps[:, 0], reps[:, 2], "mae") < 0.95  # a vs b: noise


def test_held_out_check_says_when_tuning_does_not_pay():
    rng = np.random.default_rng(7)
    n = 600
    y = rng.normal(size=n)
    p = y[:, None] * 0 + rng.normal(size=(n, 3))  # no model knows anything
    df = jaxexp.blend(
        pd.DataFrame({"target": y, "a": p[:, 0], "b": p[:, 1], "c": p[:, 2]}),
        step=0.1,
        n_boot=200,
        n_folds=4,
        progress=None,
    )
    cf = df.attrs["summary"]["crossfit"]
    assert cf["folds"] == 4 and len(cf["per_fold_w"]) == 4
    assert "no better out of sample" in cf["verdict"] or "not reliably better" in cf["verdict"]
    assert "Held-out check" in df.attrs["report"]


def test_groups_and_given_folds():
    y, p = _problem(400)
    groups = np.arange(400) // 10
    folds = (groups % 3).astype(int)
    frame = pd.DataFrame({"target": y, "a": p[:, 0], "b": p[:, 1], "c": p[:, 2], "g": groups, "f": folds})
    df = jaxexp.blend(frame, step=0.1, groups="g", folds="f", n_boot=100, progress=None)
    s = df.attrs["summary"]
    assert s["crossfit"]["folds"] == 3 and s["crossfit"]["fold_origin"] == "given"
    assert s["bootstrap"]["units"] == "groups"
    assert list(df.columns[:4]) == ["a", "b", "c", "score"]


def test_list_only_and_k4_profiles(tmp_path):
    frame = demo.demo_data(n=500)
    df = jaxexp.blend(frame, step=None, weights=demo.WEIGHTS, n_boot=50, progress=None)
    assert (df["source"] == "list").sum() == 18 and "exact" in set(df["source"])
    assert "Listed weightings" in df.attrs["report"]
    y, p = _problem(300, k=4)
    frame4 = pd.DataFrame({"target": y, **{f"m{i}": p[:, i] for i in range(4)}})
    wd = tmp_path / "k4"
    df4 = jaxexp.blend(frame4, step=0.1, n_boot=50, n_folds=2, workdir=str(wd), progress=None)
    assert len(df4[df4["source"] == "grid"]) == math.comb(13, 3)
    assert sorted(os.listdir(wd)) == ["profiles.png", "report.html", "report.md", "scores.csv", "summary.json"]


@pytest.mark.parametrize("metric", ["logloss", "accuracy"])
def test_classification_metrics_end_to_end(metric):
    y, p = _binary(400)
    df = jaxexp.blend(
        pd.DataFrame({"target": y, "a": p[:, 0], "b": p[:, 1], "c": p[:, 2]}),
        metric=metric,
        step=0.1,
        n_boot=50,
        n_folds=2,
        progress=None,
    )
    s = df.attrs["summary"]
    best = df["score"].max() if metric == "accuracy" else df["score"].min()
    assert df["score"].iloc[0] == best  # best first, whatever the goal
    if metric == "accuracy":
        assert s["exact"]["w"] is None and "thresholded metric (accuracy)" in s["diagnosis"]["mechanisms"]
    else:
        assert s["exact"]["score"] <= s["grid_best"]["score"] + 1e-12


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "frame, kw, fragment",
    [
        ({"target": [1.0, 2.0], "a": [1.0, np.nan], "b": [1.0, 2.0]}, {}, "have NaN/inf (first: row 1, column 'a')"),
        ({"target": [1.0, 2.0], "a": [1.0, 2.0]}, {}, "a blend needs K >= 2 models"),
        ({"target": [1.0, 2.0], "a": [1.0, 2.0], "b": [1.0, 2.0]}, {"metric": "mae2"}, "--metric: unknown metric"),
        ({"y": [1.0, 2.0], "a": [1.0, 2.0], "b": [1.0, 2.0]}, {}, "--target: column 'target' not in"),
        ({"target": [1.0, 2.0], "a": [0.1, 0.2], "b": [0.1, 0.2]}, {"metric": "logloss"}, "needs 0/1 targets"),
        ({"target": [0.0, 2.0], "a": [0.1, 0.2], "b": [0.1, 0.2]}, {"metric": "mape"}, "zero target"),
        ({"target": [1.0, 2.0], "a": [1.0, 2.0], "b": [1.0, 2.0]}, {"step": 0.03}, "--step: 1/step must be"),
        ({"target": [1.0, 2.0], "a": [1.0, 2.0], "b": [1.0, 2.0]}, {"bounds": "z=0:1"}, "--bounds: unknown model"),
        ({"target": [1.0, 2.0], "a": [1.0, 2.0], "b": [1.0, 2.0]}, {"dtype": "f16"}, "--dtype: 'f16'"),
        # a model column with one text cell is refused, not silently left out of the blend
        (
            {"target": [1.0, 2.0, 3.0], "a": [1.0, 2.0, 3.0], "b": [1.0, 2.0, 3.0], "c": [1.0, "n/a", 3.0]},
            {},
            "column 'c' in DataFrame is numeric but for 1 cell(s) (first: row 1, 'n/a')",
        ),
        ({"target": [1.0], "a": [1.0], "b": [2.0]}, {}, "1 row(s) in DataFrame; a blend needs at least 2 rows"),
    ],
)
def test_bad_inputs_are_one_line_errors(frame, kw, fragment):
    with pytest.raises(ConfigError) as e:
        jaxexp.blend(pd.DataFrame(frame), progress=None, **kw)
    assert fragment in str(e.value) and "\n" not in str(e.value)


def test_npz_with_mismatched_lengths(tmp_path):
    path = tmp_path / "p.npz"
    np.savez(path, target=np.zeros(5), a=np.zeros(5), b=np.zeros(4))
    with pytest.raises(DataError, match="target 'target' has 5 rows but 'b' has 4"):
        datamod.load(str(path))
    np.savez(path, target=np.arange(5.0), preds=np.ones((5, 2)), names=np.array(["x", "y"]))
    d = datamod.load(str(path))
    assert d.names == ("x", "y") and d.k == 2


def _cli(*args):
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2")
    return subprocess.run(
        [sys.executable, "-m", "jaxexp.main", "blend", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_cli_demo_writes_everything(tmp_path):
    wd = tmp_path / "demo"
    p = _cli("--demo", "--step=0.02", "--n_boot=200", "--milp_max_rows=100", f"--workdir={wd}")
    assert p.returncode == 0, p.stderr
    assert sorted(os.listdir(wd)) == ["report.html", "report.md", "scores.csv", "summary.json", "ternary.png"]
    scores = pd.read_csv(wd / "scores.csv")
    assert len(scores[scores["source"] == "grid"]) == gridmod.grid_size(3, 0.02)
    report = (wd / "report.md").read_text()
    assert "not attempted: 4,000 rows > cap 100" in report
    # no MILP: the LP optimum of the raw blend scores worse than the grid best once rounded, so it is
    # labelled by its problem, never "exact optimum", and the best verified point is shown
    for part in ("Optimum of the raw blend", "Best verified point", "Plateau", "Why it is flat", "paired bootstrap"):
        assert part in report
    assert "Held-out check" in report and "Exact optimum" not in report and "exact optimum" not in p.stdout
    assert "raw-blend optimum (LP)" in p.stdout and "best verified" in p.stdout
    again = _cli("--demo", "--step=0.1", f"--workdir={wd}")  # refuses to overwrite
    assert again.returncode == 2 and "already holds results" in again.stderr


@pytest.mark.slow
@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--preds=/nonexistent.csv"], "--preds: file not found"),
        (["--demo", "--metric=rmsle"], "--metric: unknown metric 'rmsle'"),
        (["--demo", "--weights=50/50"], "--weights: '50/50' has 2 weight(s) for 3 models"),
        (["--demo", "--compare=champion"], "--compare: 'champion'; use A:B"),
        ([], "--preds: missing"),
    ],
)
def test_cli_bad_input_one_line_exit_2_nothing_written(tmp_path, args, fragment):
    wd = tmp_path / "wd"
    p = _cli(*args, f"--workdir={wd}")
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert p.returncode == 2 and len(lines) == 1, p.stderr
    assert lines[0].startswith("jaxexp: error: ") and fragment in lines[0]
    assert not wd.exists()


# ----------------------------------------------------------------------------- multiclass log-loss


def _softmax_models(n: int = 300, c: int = 4, seed: int = 5):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, c, n)
    logits = rng.normal(size=(n, 1, c)) + 2.0 * np.eye(c)[labels][:, None, :] * np.array([1.0, 0.6, 0.3])[None, :, None]
    logits = logits + rng.normal(size=(n, 3, c))  # 3 models, each with its own noise and skill
    p = np.exp(logits)
    return labels, p / p.sum(axis=2, keepdims=True)


def test_multiclass_logloss_scores_the_blended_class_distribution(tmp_path):
    labels, p = _softmax_models()
    path = str(tmp_path / "mc.npz")
    np.savez(path, target=labels, preds=p, names=np.array(NAMES))
    df = jaxexp.blend(path, metric="logloss", step=0.05, n_boot=0, n_folds=0, progress=None)
    grid = df[df["source"] == "grid"]
    w = grid[list(NAMES)].to_numpy()
    blended = np.einsum("nkc,gk->gnc", p, w)  # every weighting's full class distribution
    want = -np.log(np.clip(blended[:, np.arange(len(labels)), labels], 1e-15, 1)).mean(axis=1)
    np.testing.assert_allclose(grid["score"], want, rtol=1e-5)
    s = df.attrs["summary"]
    assert s["n_classes"] == 4 and "Multiclass log-loss over 4 classes" in df.attrs["report"]
    assert s["exact"]["score"] <= grid["score"].min() + 1e-9  # the exact optimum is never worse


# ----------------------------------------------------------------------------- multiclass accuracy


def _argmax_accuracy(p, labels, w, r=None):
    """Reference: numpy's argmax of each weighting's full blended (N, C) distribution."""
    right = np.stack([np.argmax(np.einsum("nkc,k->nc", p, wi), axis=1) == labels for wi in w], axis=1)
    return np.average(right, axis=0, weights=r)


def test_multiclass_accuracy_kernel_equals_the_argmax_of_the_blend():
    labels, p = _softmax_models(200)
    data = datamod.from_arrays(labels, p, metric="accuracy")
    w = gridmod.simplex_grid(gridmod.make_constraints(NAMES), 0.05)
    want = _argmax_accuracy(p, labels, w)  # random probabilities: no exact ties
    # A tiny memory budget forces several calls of rows; accuracies are counts / N, so exactly equal.
    np.testing.assert_array_equal(scoremod.score(data, w, "accuracy", memory_budget=1 << 14), want)
    np.testing.assert_array_equal(scoremod.score_numpy(data, w, "accuracy"), want)
    r = np.random.default_rng(1).integers(0, 3, len(labels)).astype(float)
    np.testing.assert_allclose(scoremod.score(data, w, "accuracy", row_weights=r), _argmax_accuracy(p, labels, w, r))


def test_multiclass_accuracy_decides_exact_ties_by_the_first_max():
    # Hard votes of 4 models: weight sums tie exactly (0.05 + 0.1 = 0.15 in exact arithmetic), but
    # not always in floating point; the integer blend of the grid's units is the exact reference.
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 200)
    votes = np.where(rng.random((200, 4)) < 0.6, labels[:, None], rng.integers(0, 3, (200, 4)))
    p = np.eye(3)[votes]
    data = datamod.from_arrays(labels, p, metric="accuracy")
    w = gridmod.simplex_grid(gridmod.make_constraints(list("abcd")), 0.05)
    exact_ref = _argmax_accuracy(p.astype(np.int64), labels, np.round(w * 20).astype(np.int64))
    np.testing.assert_array_equal(scoremod.score(data, w, "accuracy"), exact_ref)
    np.testing.assert_array_equal(scoremod.score_numpy(data, w, "accuracy"), exact_ref)
    assert (_argmax_accuracy(p, labels, w) != exact_ref).any()  # the float blend's argmax misjudges some ties


def test_multiclass_accuracy_blend_end_to_end(tmp_path):
    labels, p = _softmax_models(200)
    path = str(tmp_path / "mc.npz")
    np.savez(path, target=labels, preds=p, names=np.array(NAMES))
    wd = tmp_path / "out"
    kw = {"weights": "50/30/20", "compare": "50/30/20:40/40/20", "n_boot": 50, "n_folds": 2, "progress": None}
    df = jaxexp.blend(path, metric="accuracy", step=0.05, workdir=str(wd), **kw)
    grid = df[df["source"] == "grid"]
    w = grid[list(NAMES)].to_numpy()
    want = _argmax_accuracy(p, labels, w)
    np.testing.assert_array_equal(grid["score"], want)
    s = df.attrs["summary"]
    assert s["grid_best"]["score"] == want.max() and s["exact"]["w"] is None
    assert s["n_classes"] == 4 and "Multiclass accuracy over 4 classes" in df.attrs["report"]
    listed = df[df["source"] == "list"]["score"].iloc[0]
    assert listed == _argmax_accuracy(p, labels, [[0.5, 0.3, 0.2]])[0]
    assert s["bootstrap"]["pairs"][0]["score_b"] == _argmax_accuracy(p, labels, [[0.4, 0.4, 0.2]])[0]
    assert s["crossfit"] is not None and (wd / "ternary.png").exists()
    assert "argmax of the blend (multiclass accuracy)" in s["diagnosis"]["mechanisms"]


@pytest.mark.parametrize(
    "metric, change, fragment",
    [
        ("mae", None, "logloss or accuracy only"),
        ("logloss", "label", "labels in .* must be in 0..3"),
        ("accuracy", "label", "labels in .* must be in 0..3"),
        ("accuracy", "sums", "class probabilities sum to"),
        ("accuracy", "clip", "--clip: multiclass accuracy takes the argmax"),
    ],
)
def test_bad_multiclass_input_is_rejected(tmp_path, metric, change, fragment):
    labels, p = _softmax_models(50)
    if change == "label":
        labels = labels.copy()
        labels[3] = 7
    if change == "sums":
        p = p.copy()
        p[2, 1] *= 0.5
    path = str(tmp_path / "mc.npz")
    np.savez(path, target=labels, preds=p)
    with pytest.raises(ConfigError, match=fragment) as e:
        jaxexp.blend(
            path,
            metric=metric,
            step=0.1,
            n_boot=0,
            n_folds=0,
            progress=None,
            clip="0:0.9" if change == "clip" else None,
        )
    assert "\n" not in str(e.value) and (change == "clip" or isinstance(e.value, DataError))


def test_native_cpu_kernel_equals_the_xla_form(monkeypatch):
    from jaxexp.blending import native

    if not native.available():
        pytest.skip(native.status())
    y, p = _problem(n=5000)
    d = datamod.from_arrays(y, p, NAMES, row_weights=np.random.default_rng(4).random(len(y)) + 0.1)
    w = np.concatenate([gridmod.simplex_grid(gridmod.make_constraints(NAMES), 0.05), [[0.7, 0.5, -0.1]]])
    ref = scoremod.score_numpy(d, w, "mae")
    got = {}
    for kind, state in (("native", native._STATE.copy()), ("xla", {"ok": False, "why": "test"})):
        monkeypatch.setattr(native, "_STATE", state)
        got[kind] = scoremod.score_kernel(d, w, "mae", dtype="float32")
        np.testing.assert_allclose(got[kind], ref, rtol=2e-6)  # float32 sums, float64 reference
    assert not np.array_equal(got["native"], got["xla"])  # two different kernels really ran
    # the switch the README documents
    monkeypatch.setattr(native, "_STATE", {})
    monkeypatch.setenv("JAXEXP_BLEND_KERNEL", "xla")
    assert not native.available() and native.status() == "JAXEXP_BLEND_KERNEL=xla"


def test_large_tables_are_written_as_parquet_plus_the_top_rows(tmp_path, monkeypatch):
    """--scores: "auto" keeps scores.csv for small blends and writes Parquet plus the
    best rows as CSV above CSV_ROWS; "top" and "csv"; a bad value is one line."""
    pytest.importorskip("pyarrow")
    from jaxexp.blending import output

    frame = demo.demo_data(n=200)
    monkeypatch.setattr(output, "CSV_ROWS", 50)  # the grid below has 231 weightings
    monkeypatch.setattr(output, "TOP_ROWS", 20)
    kw = dict(step=0.05, n_boot=0, n_folds=0, progress=None)
    df = jaxexp.blend(frame, workdir=str(tmp_path / "auto"), **kw)
    full = pd.read_parquet(tmp_path / "auto" / "scores.parquet")
    pd.testing.assert_frame_equal(full, df.reset_index(drop=True), check_exact=True)
    top = pd.read_csv(tmp_path / "auto" / "scores.csv")
    assert len(top) == 20 and np.allclose(top["score"], df["score"].head(20), rtol=1e-12)
    assert "`scores.parquet` (every scored weighting" in (tmp_path / "auto" / "report.md").read_text()
    jaxexp.blend(frame, workdir=str(tmp_path / "auto"), overwrite=True, scores="top", **kw)
    assert not (tmp_path / "auto" / "scores.parquet").exists()  # no stale table of the earlier blend
    assert len(pd.read_csv(tmp_path / "auto" / "scores.csv")) == 20
    jaxexp.blend(frame, workdir=str(tmp_path / "csv"), scores="csv", **kw)
    assert len(pd.read_csv(tmp_path / "csv" / "scores.csv")) == len(df)
    with pytest.raises(ConfigError, match=r"^--scores: 'xlsx'; use one of auto, csv, parquet, top$"):
        jaxexp.blend(frame, workdir=str(tmp_path / "bad"), scores="xlsx", **kw)
    assert not (tmp_path / "bad").exists()


def test_a_fine_grid_is_thinned_for_the_ternary_plot_not_for_the_scores():
    from jaxexp.blending import plots as blend_plots

    cons = gridmod.make_constraints(["a", "b", "c"], True, True, None)
    w = gridmod.simplex_grid(cons, 0.002, 10**7)  # 125,751 weightings
    keep = blend_plots._thinned(w)
    assert 3 <= len(keep) <= blend_plots.MAX_DRAWN
    kept = np.rint(w[keep] * 500).astype(int)
    assert len({int(d) for d in np.diff(np.unique(kept[:, 0]))}) == 1  # one coarser lattice step
    assert {(500, 0, 0), (0, 500, 0), (0, 0, 500)} <= {tuple(r) for r in kept}  # corners drawn
    small = w[:1000]
    assert (blend_plots._thinned(small) == np.arange(1000)).all()


@pytest.mark.slow
def test_native_kernel_cache_is_checked_before_loading(tmp_path, monkeypatch):
    """The compiled library is loaded only with its recorded sha256 and only from a
    folder no other user can write to; otherwise it is rebuilt (privately)."""
    from jaxexp.blending import native

    if not (os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++")):
        pytest.skip("no C++ compiler")
    monkeypatch.setenv("JAXEXP_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(native, "_STATE", {})
    path = native._build()
    assert os.path.dirname(path) == str(tmp_path / "native")
    good = open(path, "rb").read()
    with open(path, "r+b") as f:  # damaged (or swapped) after it was built
        f.write(b"\0" * 64)
    assert native._build() == path and open(path, "rb").read() == good  # rebuilt, same bytes
    os.chmod(tmp_path / "native", 0o777)  # a folder anyone can write to is not trusted
    private = native._build()
    assert os.path.dirname(private) != str(tmp_path / "native")
    assert native._sha256(private) == open(private + ".sha256").read()


# ----------------------------------------------------------------------------- issue 17: blend edge cases


def test_plateau_boundary_includes_a_weighting_at_exactly_best_plus_eps():
    # 0.30001 - 0.3 is 1.0000000000010001e-05 in float64: a strict `<= eps` would leave it out
    assert 0.30001 - 0.3 > 1e-5
    w = np.eye(3)
    pl = stats.plateau(w, np.array([0.3, 0.30001, 0.30002]), "mae", 1e-5)
    assert pl["mask"].tolist() == [True, True, False]
    acc = stats.plateau(w, np.array([0.9, 0.89999, 0.89998]), "accuracy", 1e-5)  # higher is better
    assert acc["mask"].tolist() == [True, True, False]
    # end to end: errors 0.3 (model a) and 0.4 (model b) on every row; 90/10 scores 0.31 = best + eps
    y = np.arange(4.0)
    frame = pd.DataFrame({"target": y, "a": y + 0.3, "b": y + 0.4})
    df = jaxexp.blend(frame, step=0.1, eps=0.01, n_boot=0, n_folds=0, progress=None)
    grid = df[df["source"] == "grid"].set_index("a")
    assert grid.loc[0.9, "score"] - grid.loc[1.0, "score"] > 0.01  # float64 puts it a hair above eps
    assert grid.loc[0.9, "in_plateau"] and not grid.loc[0.8, "in_plateau"]
    assert df.attrs["summary"]["plateau"]["count"] == 2 and "(boundary included)" in df.attrs["report"]


def test_diagnosis_names_integer_targets_a_prediction_lattice_and_display_rounding():
    assert flatness.common_lattice([0.25, 0.5, 1.75]) == 0.25 and flatness.common_lattice([2.0, 4.0, 0.0]) == 2.0
    assert flatness.common_lattice([1.2, 3.4]) == pytest.approx(0.2)
    assert flatness.common_lattice(np.random.default_rng(0).normal(size=10)) is None  # full-precision floats
    rng = np.random.default_rng(1)
    y = np.round(rng.gamma(3.0, 3.0, 400))  # whole numbers
    p = np.round((y[:, None] + rng.normal(0, 2, (400, 3))) / 0.05) * 0.05  # written as multiples of 0.05
    frame = pd.DataFrame({"target": y, "a": p[:, 0], "b": p[:, 1], "c": p[:, 2]})
    d = jaxexp.blend(frame, step=0.05, n_boot=0, n_folds=0, progress=None).attrs["summary"]["diagnosis"]
    assert {"integer targets", "predictions on a coarse lattice (multiples of 0.05)"} <= set(d["mechanisms"])
    assert any("the MAE can only take multiples of 6.25e-06" in f for f in d["findings"])  # 0.05 * 0.05 / 400
    # exact ties (b copies a) and more weightings showing the best score at 1 decimal: display rounding named
    y2, p2 = _problem(400, seed=5)
    p2[:, 1] = p2[:, 0]
    frame2 = pd.DataFrame({"target": y2, "a": p2[:, 0], "b": p2[:, 1], "c": p2[:, 2]})
    df = jaxexp.blend(frame2, step=0.05, decimals=1, weights="x=60/10/30,z=60/5/35", n_boot=0, n_folds=0, progress=None)
    s = df.attrs["summary"]
    assert 1 < s["plateau"]["exact_ties"] < s["plateau"]["display_ties"]
    assert "score rounded for display" in s["diagnosis"]["mechanisms"]
    assert any("rounding for display merges distinct scores" in f for f in s["diagnosis"]["findings"])
    assert any(f.startswith("listed weightings x, z all show") for f in s["diagnosis"]["findings"])


def test_logloss_is_the_same_in_float32_and_float64_with_probabilities_at_0_and_1():
    """One clip (score.LOGLOSS_EPS = 1e-15 on the true class's probability) in every path;
    float32 agrees with float64 within 1e-5 relative (documented: ~1e-6)."""
    rng = np.random.default_rng(0)
    y = (rng.random(500) < 0.5).astype(float)
    p = np.clip(0.6 * y[:, None] + 0.4 * rng.random((500, 3)), 0, 1)
    p[:20, 0] = 1 - y[:20]  # model a: confidently wrong, at exactly 0 or 1
    p[20:60, 1] = y[20:60]  # model b: confidently right
    d = datamod.from_arrays(y, p, NAMES, metric="logloss")
    w = np.concatenate([np.eye(3), gridmod.simplex_grid(gridmod.make_constraints(NAMES), 0.1)])
    s32 = scoremod.score(d, w, "logloss", dtype="float32")
    s64 = scoremod.score(d, w, "logloss", dtype="float64")
    np.testing.assert_allclose(s32, s64, rtol=1e-5)
    np.testing.assert_allclose(s64, scoremod.score_numpy(d, w, "logloss"), rtol=1e-12)
    q = np.where(y == 1, p[:, 0], 1 - p[:, 0])  # model a alone: 20 rows at -log(1e-15)
    want = np.mean(-np.log(np.clip(q, 1e-15, 1 - 1e-15)))
    assert s32[0] == pytest.approx(want, rel=1e-5) and want > 20 * 34.5 / 500
    assert scoremod.LOGLOSS_EPS == 1e-15


def test_a_point_worse_than_the_grid_best_is_never_called_the_exact_optimum():
    df = jaxexp.blend(
        demo.demo_data(),
        step=0.02,  # grid best 2.98025; the raw blend's LP optimum, rounded and clipped: 2.981
        round_to=demo.ROUND_TO,
        clip=demo.CLIP,
        n_boot=0,
        n_folds=0,
        milp_max_rows=0,  # no MILP: the LP optimum of the raw blend is all there is
        progress=None,
    )
    s, report = df.attrs["summary"], df.attrs["report"]
    ex = s["exact"]
    assert ex["worse_than_grid_best"] > 0 and not ex["is_optimum"] and ex["name"] == "raw-blend optimum (LP)"
    assert "Exact optimum" not in report and "**Optimum of the raw blend (LP, before post-processing)**" in report
    assert "it is the optimum of the raw blend" in report.lower() and "**Best verified point**" in report
    assert s["best_verified"]["score"] == df["score"].iloc[0] <= s["grid_best"]["score"]
    assert df.loc[df["source"] == "exact", "label"].item() == "raw-blend optimum (LP)"
    # without post-processing the LP is the exact optimum, and is labelled so
    y, p = _problem(200)
    plain = jaxexp.blend(
        pd.DataFrame({"target": y, "a": p[:, 0], "b": p[:, 1], "c": p[:, 2]}),
        step=0.1,
        n_boot=0,
        n_folds=0,
        progress=None,
    )
    assert plain.attrs["summary"]["exact"]["is_optimum"] and "**Exact optimum**" in plain.attrs["report"]


@pytest.mark.slow
def test_npz_with_other_key_names_is_one_line_listing_the_keys_and_flags(tmp_path):
    y, p = _problem(50)
    path = str(tmp_path / "oof.npz")
    np.savez(path, target=y, oof=p)  # the stacked predictions under another name
    with pytest.raises(DataError) as e:
        datamod.load(path)
    msg = str(e.value)
    assert "\n" not in msg and "oof (50, 3)" in msg and "--preds_key=KEY" in msg and "(here: --preds_key=oof)" in msg
    assert "model column" not in msg  # not the misleading "0 model column(s)"
    np.savez(path, y=y, p=p)
    with pytest.raises(DataError, match=r"no array 'target' .*--target=KEY --preds_key=KEY \(here: --target=y --pr"):
        datamod.load(path)
    d = datamod.load(path, target="y", preds_key="p")
    assert d.k == 3 and np.array_equal(d.preds, p)
    with pytest.raises(DataError, match=r"^--preds_key: no array 'q' in .*p \(50, 3\)"):
        datamod.load(path, target="y", preds_key="q")
    df = jaxexp.blend(path, target="y", preds_key="p", step=0.25, n_boot=0, n_folds=0, progress=None)
    assert df.attrs["summary"]["rows"] == 50
    # the CLI flag reaches the loader
    cli = _cli(f"--preds={path}", "--target=y", "--preds_key=q", f"--workdir={tmp_path / 'wd'}")
    assert cli.returncode == 2 and "--preds_key: no array 'q'" in cli.stderr and len(cli.stderr.splitlines()) == 1


@pytest.mark.slow
def test_demo_with_own_weights_drops_the_demo_comparison(tmp_path):
    wd = tmp_path / "w"
    p = _cli(
        "--demo",
        "--weights=a=50/30/20",
        "--step=0.1",
        "--n_boot=20",
        "--n_folds=0",
        "--milp_max_rows=0",
        f"--workdir={wd}",
    )
    assert p.returncode == 0, p.stderr
    assert "| a | 50/30/20 |" in (wd / "report.md").read_text()
    frame = pd.DataFrame({"target": [1.0, 2.0, 3.0], "a": [1.0, 2.0, 2.5], "b": [1.5, 2.0, 3.0]})
    with pytest.raises(ConfigError) as e:
        jaxexp.blend(frame, weights="x=50/50", compare="x:micro_o", n_boot=0, n_folds=0, progress=None)
    assert str(e.value) == (
        "--compare: 'micro_o' is not a label of --weights (the labels of --weights are x); "
        "use one of them or a weighting like 50/30/20"
    )
