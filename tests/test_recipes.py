"""Training recipes: early stopping, plateau LR, warm restarts, curriculum,
per-group metrics, compaction, recipe comparison and seed statistics."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

import jaxexp
from jaxexp import stats
from jaxexp.core import recipes, schedules
from jaxexp.search import space

# Same tolerance as tests/test_engine.py (float32 batched-vs-alone rounding).
RTOL, ATOL = 1e-4, 1e-6


def _scripted(curve, **knobs):
    """Runs monitor_update over a metric curve; returns per-epoch monitors (stacked)."""
    defaults = dict(min_delta=0.0, patience=0, plateau_patience=0, plateau_factor=0.5, min_scale=0.0, start_epoch=0)
    knobs = {k: jnp.asarray(v) for k, v in {**defaults, **knobs}.items()}

    def step(mon, xs):
        value, epoch = xs
        mon, _ = recipes.monitor_update(mon, value, epoch, ~mon.stopped, **knobs)
        return mon, mon

    curve = jnp.asarray(curve, jnp.float32)
    epochs = jnp.arange(1, len(curve) + 1, dtype=jnp.int32)
    return jax.lax.scan(step, recipes.monitor_init(), (curve, epochs))[1]


CURVE = [5.0, 4.0, 3.0, 3.5, 3.2, 3.1, 2.9, 3.0, 3.0, 3.0, 3.0, 3.0]


@pytest.mark.parametrize(
    "knobs, stop, best",
    [
        ({"patience": 1}, 4, 3),
        ({"patience": 2}, 5, 3),
        ({"patience": 3}, 6, 3),
        ({"patience": 4}, 11, 7),  # 2.9 at epoch 7 resets the count
        ({"patience": 4, "min_delta": 0.15}, 7, 7),  # 2.9 is not 0.15 better than 3.0: no reset
        ({"patience": 1, "start_epoch": 5}, 6, 3),  # epochs 4, 5 are not counted
        ({"patience": 0}, 0, 7),  # off
    ],
)
def test_early_stopping_stops_at_the_right_epoch_on_a_scripted_curve(knobs, stop, best):
    mons = _scripted(CURVE, **knobs)
    assert int(mons.stop_epoch[-1]) == stop
    assert bool(mons.stopped[-1]) == (stop > 0)
    assert int(mons.best_epoch[-1]) == best
    assert float(mons.best[-1]) == np.float32(CURVE[best - 1])


def test_plateau_lr_is_cut_exactly_when_the_bad_epochs_exceed_patience():
    curve = [3, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1]
    # bad epochs: 3, 4, 5 (> 2: cut at 5), 6, 7, then 8 improves, 9, 10, 11 (cut at 11)
    scale = _scripted(curve, plateau_patience=2, plateau_factor=0.5).lr_scale
    np.testing.assert_array_equal(np.asarray(scale), [1, 1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25])
    floored = _scripted(curve, plateau_patience=2, plateau_factor=0.5, min_scale=0.3).lr_scale
    np.testing.assert_allclose(np.asarray(floored)[-2:], [0.3, 0.3])


def _sgdr_reference(t, t0, mult, min_ratio):
    start, length = 0.0, float(t0)
    while t >= start + length:
        start, length = start + length, length * mult
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * (t - start) / length))


@pytest.mark.parametrize("mult", [1.0, 2.0, 1.5])
def test_warm_restarts_match_the_closed_form(mult):
    steps = jnp.arange(0, 300, dtype=jnp.float32)
    got = jax.vmap(lambda t: schedules.cosine_restarts(t, 10.0, mult, 0.1))(steps)
    want = [_sgdr_reference(float(t), 10.0, mult, 0.1) for t in steps]
    np.testing.assert_allclose(np.asarray(got), want, atol=1e-5)
    # as schedule kind 3, after a 5-step warmup
    k3 = [float(schedules.lr_multiplier(3, t + 5, 0.0, 5.0, 0.1, 1.0, 1.0, 10.0, mult)) for t in (0, 9, 10, 37)]
    np.testing.assert_allclose(k3, [_sgdr_reference(t, 10.0, mult, 0.1) for t in (0, 9, 10, 37)], atol=1e-5)


def test_curriculum_weights_match_the_run4_formula():
    levels = jnp.array([0, 1, 2])  # easy, medium, hard
    mult = jnp.array([1.0, 1.0, 1.3])  # 1.3x on the worst (hard) group
    # phases easy 0-30, medium 31-60, hard 61+; hard weight min(5, 2 + (epoch - 60) * 0.08)
    for epoch in (0, 30, 60, 97, 120):
        w = recipes.curriculum_weights(
            epoch, levels, mult, medium_epoch=31, hard_epoch=61, start=2.0, slope=0.08, cap=5.0, origin=60
        )
        hard = min(5.0, 2.0 + (epoch - 60) * 0.08) if epoch >= 61 else 0.0
        expected = [1.0, 1.0 if epoch >= 31 else 0.0, 1.3 * hard]
        np.testing.assert_allclose(np.asarray(w), expected, rtol=1e-6, err_msg=f"epoch {epoch}")


def _table(ids, **params):
    return pd.DataFrame({"member": ids, "config_id": ids, "seed": ids, **params})


@pytest.mark.slow
def test_early_stopping_in_training_stops_and_keeps_the_best_parameters(tiny):
    c = tiny()
    c.train.epochs = 12
    c.train.lr = 3e-2
    c.task.n_train = 64  # overfits quickly: the val metric turns up
    c.model.hidden = (32,)
    ids = np.arange(6)
    table = _table(ids, **{"train.early_stop_patience": [2] * 6})
    res = jaxexp.run_members(c, table)
    m = res.members.set_index("member")
    stopped = m[m["stop_epoch"].notna()]
    assert len(stopped) >= 1  # the scenario really stops members early
    assert (stopped["status"] == "ok").all()
    # Keras semantics, min_delta 0: stop `patience` epochs after the best one
    np.testing.assert_array_equal(stopped["stop_epoch"], stopped["best_epoch"] + 2)
    np.testing.assert_array_equal(stopped["epochs_run"], stopped["stop_epoch"])
    assert (m["degradation"] >= 0).all()
    # the epochs before the stop are those of a run without early stopping
    full = jaxexp.run_members(c, _table(ids, **{"train.early_stop_patience": [0] * 6}))
    merged = res.history.merge(full.history, on=["member", "epoch"], suffixes=("", "_full"))
    assert len(merged) == len(res.history)
    np.testing.assert_allclose(merged["val_mse"], merged["val_mse_full"], rtol=RTOL, atol=ATOL)
    # the parameters kept on device are those of the best epoch: their val MSE is best_val_mse
    for member in ids:
        y, pred = res.predict(int(member))
        np.testing.assert_allclose(np.mean((pred - y) ** 2), m.loc[member, "best_val_mse"], rtol=1e-5)


@pytest.mark.slow
def test_plateau_lr_in_training_follows_the_rule(tiny):
    c = tiny()
    c.train.epochs = 8
    c.train.lr = 1e-2
    c.train.min_delta = 1e3  # nothing counts as an improvement after epoch 1: a scripted plateau
    c.train.plateau_patience = 1
    c.train.plateau_factor = 0.5
    table = _table([0, 1], **{"train.plateau_min_lr": [0.0, 3e-3]})
    h = jaxexp.run_members(c, table).history
    lr0 = h[h.member == 0].sort_values("epoch")["lr"].to_numpy()
    lr1 = h[h.member == 1].sort_values("epoch")["lr"].to_numpy()
    # bad epochs 2, 3 (cut after 3), 4, 5 (cut after 5), 6, 7 (cut after 7); lr at each epoch's start
    np.testing.assert_allclose(lr0, 1e-2 * np.array([1, 1, 1, 0.5, 0.5, 0.25, 0.25, 0.125]), rtol=1e-6)
    np.testing.assert_allclose(lr1, 1e-2 * np.array([1, 1, 1, 0.5, 0.5, 0.3, 0.3, 0.3]), rtol=1e-6)


def _grouped(tiny):
    c = tiny()
    c.task.name = "grouped"
    c.task.n_train = 512
    c.task.n_val = 256
    c.model.dropout = 0.0
    return c


@pytest.mark.slow
def test_per_group_metrics_equal_numpy_on_the_members_predictions(tiny, tmp_path):
    c = _grouped(tiny)
    c.sweep.seeds = 2
    res = jaxexp.sweep(c, str(tmp_path / "wd"))
    task = jaxexp.load_task(c.task)
    assert task.n_groups == 12 and set(task.group_levels) == {0, 1, 2}
    assert set(res.groups["group"]) == set(task.group_names)
    for member in (0, 1):
        y, pred = res.predict(member)
        se = ((pred - y) ** 2).mean(1)
        rows = res.groups[res.groups.member == member].set_index("group")
        for g, name in enumerate(task.group_names):
            sel = task.g_val == g
            np.testing.assert_allclose(rows.loc[name, "val_mse"], se[sel].mean(), rtol=1e-5)
            np.testing.assert_allclose(rows.loc[name, "val_mae"], np.abs(pred - y)[sel].mean(), rtol=1e-5)
    for name in ("groups.csv", "group_history.csv", "groups.png", "history.png", "scatter.png"):
        assert (tmp_path / "wd" / name).stat().st_size > 0, name
    report = (tmp_path / "wd" / "report.md").read_text()
    assert "Per-group val_mse" in report and "![groups.png](groups.png)" in report


def test_group_multipliers_must_match_the_task(tiny):
    c = _grouped(tiny)
    c.train.group_multipliers = (1.0, 2.0)
    with pytest.raises(jaxexp.ConfigError, match=r"train.group_multipliers: 2 value\(s\) but the task has 12 group"):
        jaxexp.sweep(c)


@pytest.mark.slow
def test_curriculum_weight_zero_groups_do_not_train(tiny):
    """With hard groups off, their examples carry no gradient: the run equals one
    with hard examples' multipliers at 0 (two routes to the same weights)."""
    c = _grouped(tiny)
    c.train.curriculum_hard_epoch = 100  # never reached
    task = jaxexp.load_task(c.task)
    by_phase = jaxexp.run_members(c, _table([0])).history
    c.train.curriculum_hard_epoch = 0
    c.train.group_multipliers = tuple(0.0 if lvl == 2 else 1.0 for lvl in task.group_levels)
    by_mult = jaxexp.run_members(c, _table([0])).history
    np.testing.assert_allclose(by_phase["val_mse"], by_mult["val_mse"], rtol=RTOL, atol=ATOL)
    c.train.group_multipliers = ()
    everything = jaxexp.run_members(c, _table([0])).history
    assert not np.allclose(everything["val_mse"], by_phase["val_mse"], rtol=1e-3)


@pytest.mark.slow
def test_compaction_leaves_results_unchanged_and_computes_less(tiny):
    c = tiny()
    c.train.epochs = 8
    c.engine.segment_epochs = 1
    n = 16
    # 12 members stop after epoch 2 (min_delta too large to ever improve), 4 run all 8 epochs
    patience = [1] * 12 + [0] * 4
    table = _table(np.arange(n), **{"train.early_stop_patience": patience, "train.min_delta": [1e3] * 12 + [0.0] * 4})
    c.engine.compact = "never"
    plain = jaxexp.run_members(c, table)
    c.engine.compact = "always"  # "auto" would keep the slots: here a compile costs more than it saves
    compact = jaxexp.run_members(c, table)
    assert compact.timings["compactions"] >= 1
    assert compact.timings["member_epochs_computed"] < plain.timings["member_epochs_computed"]
    a = plain.history.sort_values(["member", "epoch"]).reset_index(drop=True)
    b = compact.history.sort_values(["member", "epoch"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(a[["member", "epoch"]], b[["member", "epoch"]])
    np.testing.assert_allclose(a[["val_mse", "train_loss"]], b[["val_mse", "train_loss"]], rtol=RTOL, atol=ATOL)
    assert (compact.members["epochs_run"] == [2] * 12 + [8] * 4).all()
    for member in range(n):
        for leaf_a, leaf_b in zip(
            jax.tree.leaves(plain.best_params[member]), jax.tree.leaves(compact.best_params[member])
        ):
            np.testing.assert_allclose(leaf_a, leaf_b, rtol=RTOL, atol=ATOL)


@pytest.mark.slow
def test_recipes_run_as_one_sweep_and_are_compared_with_the_baseline(tiny, tmp_path):
    c = tiny()
    c.sweep.seeds = 3
    c.sweep.recipes = {
        "slow": {"train": {"lr": 1e-3}},
        "fast": {
            "model": {"hidden": (6, 6)},
            "train": {"lr": 3e-2, "schedule": "cosine_restarts", "restart_epochs": 1.0},
        },
    }
    c.sweep.baseline = "slow"
    res = jaxexp.sweep(c, str(tmp_path / "wd"))
    m = res.members
    assert list(m["recipe"]) == ["fast"] * 3 + ["slow"] * 3  # ConfigDict keeps keys sorted
    assert list(m["train.lr"]) == [3e-2] * 3 + [1e-3] * 3
    assert list(m["train.schedule"]) == ["cosine_restarts"] * 3 + ["constant"] * 3
    comp = res.comparison.set_index("recipe")
    fast, slow = m[m.recipe == "fast"]["best_val_mse"], m[m.recipe == "slow"]["best_val_mse"]
    assert np.isclose(comp.loc["fast", "diff"], fast.mean() - slow.mean())
    assert np.isclose(comp.loc["fast", "p_value"], sps.ttest_ind(fast, slow, equal_var=False).pvalue)
    report = (tmp_path / "wd" / "report.md").read_text()
    assert "Recipe comparison" in report and "baseline: slow" in report
    # a member of a recipe is reproduced from its members.csv row (tuple fields parsed back)
    csv = pd.read_csv(tmp_path / "wd" / "members.csv")
    cols = ["member", "config_id", "seed", "recipe", "train.lr", "train.schedule", "train.restart_epochs"]
    again = jaxexp.run_members(c, csv.iloc[[1]][cols + ["model.hidden"]])
    assert np.isclose(again.members["best_val_mse"].iloc[0], m["best_val_mse"].iloc[1], rtol=RTOL, atol=ATOL)


def test_bad_recipes_are_config_errors(tiny):
    c = tiny()
    c.sweep.recipes = {"a": {"train": {"lrr": 1e-3}}}
    with pytest.raises(jaxexp.ConfigError, match=r"sweep.recipes.a.train.lrr: no config field .*mean 'train.lr'"):
        jaxexp.sweep(c)
    c.sweep.recipes = {"a": {"train": {"lr": 1e-3}}}
    c.sweep.baseline = "b"
    with pytest.raises(jaxexp.ConfigError, match=r"sweep.baseline: 'b' is not a recipe; use one of a"):
        jaxexp.sweep(c)


def test_seed_statistics():
    iv = stats.interval([1.0, 2.0, 3.0])
    # t(0.975, 2) = 4.3027 (tables): half-width 4.3027 * 1 / sqrt(3)
    assert np.isclose(iv["ci_high"] - iv["mean"], 4.3027 / math.sqrt(3), rtol=1e-4)
    assert (iv["n"], iv["mean"], iv["std"], iv["min"], iv["max"]) == (3, 2.0, 1.0, 1.0, 3.0)
    assert np.isnan(stats.interval([1.0])["ci_low"])
    rng = np.random.default_rng(0)
    x = rng.normal(size=20)
    corr = stats.correlation(x, 2 * x + rng.normal(scale=0.1, size=20))
    assert corr["pearson_r"] > 0.99 and corr["pearson_p"] < 1e-10
    a, b = rng.normal(0, 1, 7), rng.normal(1, 2, 5)
    w = stats.welch(a, b)
    ref = sps.ttest_ind(a, b, equal_var=False)
    assert np.isclose(w["p_value"], ref.pvalue) and w["diff_ci_low"] < w["diff"] < w["diff_ci_high"]


@pytest.mark.slow
def test_summary_has_seed_statistics(tiny):
    c = tiny(train={"lr": space.choice([1e-3, 1e-2])})
    c.sweep.seeds = 4
    res = jaxexp.sweep(c)
    for _, row in res.summary.iterrows():
        vals = res.members[res.members.config_id == row["config_id"]]["best_val_mse"]
        iv = stats.interval(vals)
        assert np.isclose(row["best_val_mse_ci_low"], iv["ci_low"]) and row["best_val_mse_min"] == vals.min()
        assert row["best_val_mse_ci_low"] < row["best_val_mse_mean"] < row["best_val_mse_ci_high"]
        assert -1 <= row["init_vs_best_r"] <= 1 and 0 <= row["init_vs_best_p"] <= 1
        members = res.members[res.members.config_id == row["config_id"]]
        ref = sps.pearsonr(members["init_val_mse"], members["best_val_mse"])
        assert np.isclose(row["init_vs_best_r"], ref.statistic) and np.isclose(row["init_vs_best_p"], ref.pvalue)


@pytest.mark.slow
def test_init_metric_is_the_metric_before_training(tiny):
    c = tiny()
    c.train.lr = 1e-9  # training cannot move the parameters measurably
    c.model.dropout = 0.0
    res = jaxexp.run_members(c, _table(np.arange(4)))
    np.testing.assert_allclose(res.members["init_val_mse"], res.members["final_val_mse"], rtol=1e-4)
    c.train.lr = 1e-2
    trained = jaxexp.run_members(c, _table(np.arange(4)))
    np.testing.assert_allclose(trained.members["init_val_mse"], res.members["init_val_mse"], rtol=1e-6)
    assert (trained.members["best_val_mse"] < trained.members["init_val_mse"]).all()


@pytest.mark.slow
def test_recipes_with_a_space_and_a_diverged_baseline(tiny, tmp_path):
    c = tiny(train={"weight_decay": space.choice([0.0, 0.1])})
    c.sweep.seeds = 2
    c.train.optimizer = "sgd"
    c.sweep.recipes = {"a": {"train": {"lr": 1e6}}, "b": {"train": {"lr": 1e-2}}, "c": {"train": {"lr": 1e-3}}}
    c.sweep.baseline = "a"
    res = jaxexp.sweep(c, str(tmp_path / "wd"))  # every member of the baseline diverges: still written
    assert (res.members[res.members.recipe == "a"]["status"] == "diverged").all()
    # recipes crossed with a space: configurations (recipe x weight decay) are compared, not pooled recipes
    assert list(res.comparison.columns[:2]) == ["config_id", "baseline"] and len(res.comparison) == 6
    assert res.label(int(res.comparison["config_id"].iloc[0])).startswith(("b, weight_decay=", "c, weight_decay="))
    report = (tmp_path / "wd" / "report.md").read_text()
    assert "No non-diverged seed (no statistics)" in report and "history.png" in report
    c.sweep.space = {}
    only = jaxexp.sweep(c, str(tmp_path / "wd2"))
    comp = only.comparison.set_index("recipe")
    assert comp.loc["a", "n"] == 0 and comp.loc["a", "baseline"] and np.isnan(comp.loc["b", "p_value"])
    assert "No non-diverged seed (no statistics): a." in (tmp_path / "wd2" / "report.md").read_text()


def test_a_field_cannot_be_both_set_by_a_recipe_and_swept(tiny):
    c = tiny(train={"lr": space.choice([1e-3, 1e-2])})
    c.sweep.recipes = {"a": {"train": {"lr": 0.5}}}
    with pytest.raises(jaxexp.ConfigError, match=r"sweep.recipes.a.train.lr: also swept in sweep.space"):
        jaxexp.sweep(c)


def test_auto_compaction_only_when_the_saved_time_beats_the_compile():
    from jaxexp.run import bucket as engine

    class Fake:
        _executables = {16: object()}
        compile_s = {32: 2.0}  # seconds to compile a size so far

    left, finished = np.array([50, 50, 0]), np.array([False, False, True])
    pays = lambda size, per: engine._compaction_pays("auto", Fake, size, 32, per, left, finished)  # noqa: E731
    assert pays(8, 1e-2)  # 24 freed slots x 50 epochs x 10 ms = 12 s > 2 s
    assert not pays(8, 1e-4)  # 0.12 s < 2 s
    assert pays(16, 1e-6)  # already compiled: free
    assert engine._compaction_pays("always", Fake, 8, 32, 0.0, left, finished)
    assert not engine._compaction_pays("never", Fake, 16, 32, 1.0, left, finished)


def test_bh_and_welch_equal_scipy():
    rng = np.random.default_rng(1)
    p = rng.uniform(0, 0.2, 12) ** 2
    p[[3, 7]] = np.nan  # no test: left out of the family, stays NaN
    q = stats.bh_adjust(p)
    ok = np.isfinite(p)
    assert np.isnan(q[~ok]).all()
    np.testing.assert_allclose(q[ok], sps.false_discovery_control(p[ok], method="bh"), rtol=0, atol=1e-12)
    assert np.isnan(stats.bh_adjust([np.nan])).all() and stats.bh_adjust([]).shape == (0,)
    for na, nb in ((3, 3), (7, 4), (2, 9)):
        a, b = rng.normal(0, 1, na), rng.normal(0.5, 3, nb)
        w, ref = stats.welch(a, b), sps.ttest_ind(a, b, equal_var=False)
        ci = ref.confidence_interval(0.95)
        got = [w["diff"], w["diff_ci_low"], w["diff_ci_high"], w["p_value"]]
        np.testing.assert_allclose(got, [a.mean() - b.mean(), ci.low, ci.high, ref.pvalue], rtol=0, atol=1e-12)


@pytest.mark.slow
def test_group_comparison_has_one_row_per_recipe_and_group_and_equals_scipy(tiny, tmp_path):
    c = _grouped(tiny)
    c.sweep.seeds = 3
    c.sweep.recipes = {"base": {"train": {"lr": 1e-2}}, "slow": {"train": {"lr": 3e-3}}}
    c.sweep.baseline = "base"
    res = jaxexp.sweep(c, str(tmp_path / "wd"))
    task = jaxexp.load_task(c.task)
    gc = res.group_comparison
    # one row per (recipe other than the baseline, group), in the task's group order
    assert list(gc["recipe"]) == ["slow"] * task.n_groups and list(gc["group"]) == list(task.group_names)
    assert list(gc["level"]) == [("easy", "medium", "hard")[lv] for lv in task.group_levels]
    np.testing.assert_array_equal(gc["noise_floor"], task.info["group_noise_floor"])
    g = res.groups.merge(res.members[["member", "recipe"]], on="member")
    ps = []
    for _, row in gc.iterrows():
        part = g[g.group == row["group"]]
        a = part[part.recipe == "slow"]["val_mse"].to_numpy(np.float64)
        b = part[part.recipe == "base"]["val_mse"].to_numpy(np.float64)
        ref = sps.ttest_ind(a, b, equal_var=False)
        ci = ref.confidence_interval(0.95)
        assert (row["n"], row["baseline_n"], row["bh_tests"]) == (3, 3, task.n_groups)
        want = [b.mean(), a.mean(), a.mean() - b.mean(), ci.low, ci.high, ref.pvalue]
        got = row[["baseline_mean", "mean", "diff", "diff_ci_low", "diff_ci_high", "p_value"]].to_numpy(float)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
        ps.append(ref.pvalue)
    np.testing.assert_allclose(gc["q_value"], sps.false_discovery_control(ps, method="bh"), rtol=0, atol=1e-12)
    written = pd.read_csv(tmp_path / "wd" / "group_comparison.csv", keep_default_na=False, na_values=[""])
    np.testing.assert_allclose(written[["diff", "p_value", "q_value"]], gc[["diff", "p_value", "q_value"]], rtol=1e-12)
    report = (tmp_path / "wd" / "report.md").read_text()
    assert "## Per-group comparison with the baseline (base; val_mse" in report
    assert f"correcting for {task.n_groups} tests" in report and "| slow | k4_m3 | hard | 0.36 |" in report


def test_correlation_and_intervals_equal_scipy_stats():
    # jaxexp.stats calls scipy.special directly (scipy.stats costs ~0.3 s to import);
    # the values are scipy.stats' to 1e-12 (ties included). Perfectly correlated inputs
    # are left out: there r is 1 within an ulp, and a 1-ulp change of r moves the
    # n = 3 p-value by 1e-8 in either implementation.
    rng = np.random.default_rng(3)
    for n in (3, 4, 7, 20, 200):
        for k in range(20):
            x = rng.normal(size=n)
            y = 0.5 * x + rng.normal(size=n)
            if k % 4 == 0:
                x, y = np.round(x), np.round(y)  # ties: average ranks
            if np.ptp(x) == 0 or np.ptp(y) == 0:
                continue
            got = stats.correlation(x, y)
            r, s = sps.pearsonr(x, y), sps.spearmanr(x, y)
            want = [r.statistic, r.pvalue, s.statistic, s.pvalue]
            np.testing.assert_allclose(
                [got["pearson_r"], got["pearson_p"], got["spearman_rho"], got["spearman_p"]], want, rtol=0, atol=1e-12
            )
            iv = stats.interval(x)
            lo, hi = sps.t.interval(0.95, n - 1, loc=x.mean(), scale=sps.sem(x))
            np.testing.assert_allclose([iv["ci_low"], iv["ci_high"]], [lo, hi], rtol=0, atol=1e-12)
