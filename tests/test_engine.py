"""Invariants of the vmapped engine, on tiny configs and 8 forced CPU devices."""

import os

import jax
import numpy as np
import pandas as pd
import pytest

import jaxexp
from jaxexp.run import bucket, compile_cache, engine, programs
from jaxexp.search import space

# Tolerance for comparing one member's numbers across populations/devices: a
# batched (vmapped) matmul may sum in a different order than the same matmul
# alone, so results differ by float32 rounding that compounds over the steps of
# training. Measured here: <= 3e-7 relative after 640 steps (alone vs in 64 vs
# on 8 devices); 1e-4 leaves room for longer runs and other CPUs' kernels.
RTOL, ATOL = 1e-4, 1e-6

METRIC_COLS = ["final_val_mse", "final_val_loss", "best_val_mse", "final_train_loss"]


def _table(member_ids, seeds, **params):
    return pd.DataFrame({"member": member_ids, "config_id": member_ids, "seed": seeds, **params})


def test_eight_forced_devices_are_used():
    assert jax.local_device_count() == 8
    assert len(engine.devices(0)) == 8 and len(engine.devices(1)) == 1


@pytest.mark.slow
def test_trace_count_equals_buckets_and_traced_values_do_not_recompile(tiny):
    c = tiny(
        model={"hidden": space.choice([(8,), (6,)]), "dropout": space.choice([0.0, 0.3])},
        train={"lr": space.choice([1e-3, 1e-2]), "schedule": space.choice(["constant", "cosine", "step"])},
    )
    c.task.seed = 101  # a static key no other test compiled
    c.engine.compact = "never"  # compaction compiles a few smaller size classes (tested on its own)
    before = engine.TRACE_COUNTS["run_segment"]
    res = jaxexp.sweep(c)
    assert engine.TRACE_COUNTS["run_segment"] - before == 2  # two hidden sizes = two buckets
    assert len(res.members) == 2 * 2 * 2 * 3
    # Other traced values (lr, dropout, weight decay, epochs, every recipe knob), same
    # bucket sizes: no new trace.
    c.sweep.space = {
        "model": {"hidden": space.choice([(8,), (6,)]), "dropout": space.choice([0.2, 0.5])},
        "train": {"epochs": space.choice([1, 2, 3])},
    }
    c.train.weight_decay = 0.1
    c.sweep.recipes = {
        "a": {
            "model": {"final_dropout": 0.4},
            "train": {
                "schedule": "cosine_restarts",
                "restart_epochs": 1.0,
                "restart_mult": 2.0,
                "early_stop_patience": 1,
            },
        },
        "b": {
            "train": {
                "plateau_patience": 1,
                "plateau_factor": 0.3,
                "plateau_min_lr": 1e-4,
                "min_delta": 0.01,
                "warmup_epochs": 1.0,
                "group_multipliers": (2.0,),
                "curriculum_hard_epoch": 2,
                "hard_weight_slope": 0.5,
                "hard_weight_cap": 3.0,
            }
        },
    }
    c.sweep.seeds = 1
    c.train.lr = 3e-3
    res2 = jaxexp.sweep(c)
    assert engine.TRACE_COUNTS["run_segment"] - before == 2
    assert len(res2.members) == 2 * 2 * 2 * 3
    b = res2.members[res2.members["recipe"] == "b"]  # no early stopping: every epoch runs
    assert (b["epochs_run"] == b["train.epochs"]).all() and set(b["epochs_run"]) == {1, 2, 3}
    assert (res2.members["epochs_run"] <= res2.members["train.epochs"]).all()


@pytest.mark.slow
def test_member_does_not_depend_on_population_or_devices(tiny):
    c = tiny()
    c.train.epochs = 4
    rng = np.random.default_rng(0)
    n = 64
    table = _table(np.arange(100, 100 + n), rng.integers(0, 5, n), **{"train.lr": rng.uniform(1e-3, 3e-2, n)})
    target = table.iloc[[17]]

    c.engine.num_devices = 1
    alone = jaxexp.run_members(c, target).members.set_index("member")
    in_64 = jaxexp.run_members(c, table).members.set_index("member")
    c.engine.num_devices = 0  # all 8 devices
    on_8 = jaxexp.run_members(c, table).members.set_index("member")
    c.engine.chunk_size = 16  # 4 chunks of 16, members land in other chunks/devices
    chunked = jaxexp.run_members(c, table).members.set_index("member")

    m = int(target["member"].iloc[0])
    for other in (in_64, on_8, chunked):
        np.testing.assert_allclose(
            other.loc[m, METRIC_COLS].astype(float), alone.loc[m, METRIC_COLS].astype(float), rtol=RTOL, atol=ATOL
        )
    cols = METRIC_COLS
    np.testing.assert_allclose(on_8[cols].astype(float), in_64[cols].astype(float), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(chunked[cols].astype(float), in_64[cols].astype(float), rtol=RTOL, atol=ATOL)
    # and members really differ from each other (the comparison is not vacuous)
    assert in_64["final_val_mse"].nunique() == n


@pytest.mark.slow
def test_a_member_is_reproduced_from_its_row(tiny, tmp_path):
    c = tiny(train={"lr": space.log_uniform(1e-3, 3e-2), "weight_decay": space.uniform(0.0, 0.1)})
    c.sweep.method = "random"
    c.sweep.num_samples = 5
    c.sweep.seeds = 2
    res = jaxexp.sweep(c, str(tmp_path / "sweep"))
    members = pd.read_csv(tmp_path / "sweep" / "members.csv")
    row = members.iloc[[7]][["member", "config_id", "seed", "train.lr", "train.weight_decay"]]
    again = jaxexp.run_members(c, row).members.iloc[0]
    orig = res.members.set_index("member").loc[int(row["member"].iloc[0])]
    for col in METRIC_COLS + ["best_epoch"]:
        assert np.isclose(float(again[col]), float(orig[col]), rtol=RTOL, atol=ATOL), col


@pytest.mark.slow
def test_a_diverging_member_is_isolated(tiny):
    c = tiny()
    c.train.optimizer = "sgd"
    c.train.epochs = 4
    good = _table(np.arange(8), np.arange(8), **{"train.lr": np.full(8, 0.05)})
    bad = _table([99], [0], **{"train.lr": [1e6]})
    both = jaxexp.run_members(c, pd.concat([good, bad], ignore_index=True)).members.set_index("member")
    alone = jaxexp.run_members(c, good).members.set_index("member")
    assert both.loc[99, "status"] == "diverged"
    assert both.loc[99, "diverged_epoch"] == 1
    assert (both.loc[list(range(8)), "status"] == "ok").all()
    np.testing.assert_allclose(
        both.loc[list(range(8)), METRIC_COLS].astype(float), alone[METRIC_COLS].astype(float), rtol=RTOL, atol=ATOL
    )
    # the diverged member froze at its last finite parameters: finite metrics, counted in the summary
    res = jaxexp.run_members(c, pd.concat([good, bad], ignore_index=True))
    assert np.isfinite(res.members.set_index("member").loc[99, "final_val_mse"])
    assert res.summary["diverged"].sum() == 1
    assert int(res.best_member()["member"]) != 99


@pytest.mark.slow
def test_results_tables_and_files(tiny, tmp_path):
    c = tiny(train={"lr": space.choice([1e-3, 1e-2])})
    c.sweep.seeds = 3
    out = tmp_path / "new" / "wd"  # missing parents are created
    res = jaxexp.sweep(c, str(out))
    for name in ("config.json", "members.csv", "history.csv", "summary.csv", "report.md"):
        assert (out / name).is_file(), name
    members = pd.read_csv(out / "members.csv")
    assert list(members.columns[:4]) == ["member", "config_id", "seed", "train.lr"]
    assert {"status", "best_epoch", "best_val_mse", "final_val_mse", "model.dropout"} <= set(members.columns)
    assert len(members) == 6 and (members["status"] == "ok").all()
    history = pd.read_csv(out / "history.csv")
    assert len(history) == 6 * 3 and sorted(history["epoch"].unique()) == [1, 2, 3]
    # best is the min over the member's history; final is the last epoch
    h0 = history[history.member == 0]
    assert np.isclose(members.loc[0, "best_val_mse"], h0["val_mse"].min())
    assert np.isclose(members.loc[0, "final_val_mse"], h0["val_mse"].iloc[-1])
    assert len(res.summary) == 2 and (res.summary["seeds"] == 3).all()
    s = res.summary.set_index("config_id")
    for cid, grp in members.groupby("config_id"):
        assert np.isclose(s.loc[cid, "best_val_mse_mean"], grp["best_val_mse"].mean())
        assert np.isclose(s.loc[cid, "best_val_mse_std"], grp["best_val_mse"].std())
    report = (out / "report.md").read_text()
    assert "Best configurations" in report and "±" in report
    # a second run into the same workdir is refused, and leaves the files alone
    before = {f: f.read_bytes() for f in out.rglob("*") if f.is_file()}
    with pytest.raises(jaxexp.ConfigError, match="already holds results"):
        jaxexp.sweep(c, str(out))
    assert {f: f.read_bytes() for f in out.rglob("*") if f.is_file()} == before


def test_training_learns_the_regression_task(tiny):
    c = tiny()
    c.task.n_train = 1024
    c.train.epochs = 30
    c.train.lr = 1e-2
    c.model.dropout = 0.0
    c.model.hidden = (32,)
    c.engine.segment_epochs = 10
    c.sweep.seeds = 2
    res = jaxexp.sweep(c)
    h = res.history[res.history.member == 0]
    assert h["val_mse"].iloc[-1] < 0.5 * h["val_mse"].iloc[0]


@pytest.mark.slow
def test_classification_and_step_schedule(tiny):
    c = tiny(train={"schedule": space.choice(["step", "cosine"])})
    c.task.name = "classification"
    c.metric = "val_accuracy"
    c.goal = "max"
    c.train.epochs = 3
    res = jaxexp.sweep(c)
    assert {"best_val_accuracy", "final_val_loss"} <= set(res.members.columns)
    assert res.members["final_val_accuracy"].between(0, 1).all()
    assert res.best_member()["best_val_accuracy"] == res.members["best_val_accuracy"].max()
    by_schedule = res.members.groupby("train.schedule")["final_val_loss"].mean()
    assert not np.isclose(by_schedule["step"], by_schedule["cosine"])  # the traced schedule is used


def test_metric_must_exist_for_the_task(tiny):
    c = tiny()
    c.metric = "val_accuracy"
    reported = r"\(it reports train_loss, val_loss, val_mse, val_mae\)"
    with pytest.raises(jaxexp.ConfigError, match=r"metric: 'val_accuracy' is not reported by workload mlp " + reported):
        jaxexp.sweep(c)


@pytest.mark.slow
def test_zero_dropout_member_is_the_same_with_or_without_masks(tiny):
    # Alone, its bucket skips dropout masks (a static switch); beside a member
    # with dropout, masks are computed at rate 0. Both must give the same run.
    c = tiny()
    c.task.seed = 103  # a static key no other test compiled (the trace count must not depend on test order)
    c.model.dropout = 0.0
    c.model.input_dropout = 0.0
    zero = _table([5], [1])
    mixed = pd.concat([zero, _table([6], [1], **{"model.dropout": [0.3], "model.input_dropout": [0.2]})])
    mixed["model.dropout"] = mixed["model.dropout"].fillna(0.0)
    mixed["model.input_dropout"] = mixed["model.input_dropout"].fillna(0.0)
    before = engine.TRACE_COUNTS["run_segment"]
    alone = jaxexp.run_members(c, zero).members.set_index("member")
    beside = jaxexp.run_members(c, mixed).members.set_index("member")
    assert engine.TRACE_COUNTS["run_segment"] - before == 2  # with and without masks
    np.testing.assert_allclose(
        beside.loc[5, METRIC_COLS].astype(float), alone.loc[5, METRIC_COLS].astype(float), rtol=RTOL, atol=ATOL
    )
    assert not np.isclose(beside.loc[6, "final_val_mse"], beside.loc[5, "final_val_mse"])


@pytest.mark.slow
def test_interrupt_keeps_every_finished_epoch(tiny, tmp_path):
    c = tiny(train={"lr": space.choice([1e-3, 1e-2])})
    c.train.epochs = 6
    c.engine.segment_epochs = 2
    c.engine.progress = True
    calls = []

    def interrupt_after_two_segments(line):
        calls.append(line)
        if len(calls) == 2:
            raise KeyboardInterrupt

    res = jaxexp.sweep(c, str(tmp_path / "wd"), progress=interrupt_after_two_segments)
    assert res.interrupted
    members = pd.read_csv(tmp_path / "wd" / "members.csv")
    assert (members["status"] == "stopped").all() and (members["epochs_run"] == 4).all()
    history = pd.read_csv(tmp_path / "wd" / "history.csv")
    assert len(history) == 2 * 4
    assert "Interrupted" in (tmp_path / "wd" / "report.md").read_text()
    # the finished epochs equal those of an uninterrupted run
    c.engine.progress = False
    full = jaxexp.sweep(c).history
    merged = history.merge(full, on=["member", "epoch"], suffixes=("", "_full"))
    np.testing.assert_allclose(merged["val_mse"], merged["val_mse_full"], rtol=RTOL, atol=ATOL)


def test_interrupt_before_the_first_segment_writes_empty_typed_results(tiny, tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(bucket, "run_bucket", interrupted)
    res = jaxexp.sweep(tiny(), str(tmp_path / "wd"))
    assert res.interrupted and (res.members["status"] == "stopped").all()
    assert (res.members["epochs_run"] == 0).all() and res.history.empty


def test_bad_engine_and_batch_settings_are_config_errors(tiny):
    c = tiny()
    c.train.batch_size = 10_000
    with pytest.raises(jaxexp.ConfigError, match=r"train.batch_size: 10000 > 256 training rows"):
        jaxexp.sweep(c)
    c = tiny()
    c.engine.segment_epochs = 0
    table = pd.DataFrame({"member": [0], "config_id": [0], "seed": [0]})
    with pytest.raises(jaxexp.ConfigError, match="engine.segment_epochs"):
        jaxexp.run_members(c, table)
    c = tiny()
    c.seed = -1
    with pytest.raises(jaxexp.ConfigError, match=r"seed: must be in \[0, 2\*\*32\)"):
        jaxexp.sweep(c)
    with pytest.raises(AttributeError):  # the default config is locked: no silent new fields
        jaxexp.default_config().train.lrr = 0.1


@pytest.mark.slow
def test_a_rerun_loads_its_programs_from_the_persistent_compilation_cache(tiny, tmp_path):
    c = tiny(train={"lr": space.choice([3e-3, 3e-2])})
    c.train.epochs = 4  # a program no other test compiles
    first = jaxexp.sweep(c)
    assert os.listdir(os.environ["JAXEXP_CACHE_DIR"])  # conftest's cache directory
    engine._PROGRAMS.clear()  # as in a new process: nothing compiled in memory
    jax.clear_caches()
    again = jaxexp.sweep(c, str(tmp_path / "wd"))
    assert again.timings["compile_cache_misses"] == 0 and again.timings["compile_cache_hits"] >= 2
    assert "loaded from the compilation cache" in open(tmp_path / "wd" / "report.md").read()
    np.testing.assert_array_equal(first.history["val_mse"], again.history["val_mse"])


def test_compile_cache_setting_resolves_off_auto_and_paths(monkeypatch, tmp_path):
    monkeypatch.setenv("JAXEXP_CACHE_DIR", str(tmp_path / "c"))
    assert compile_cache.resolve("off") is None and compile_cache.resolve("") is None
    assert compile_cache.resolve("auto") == str(tmp_path / "c")
    monkeypatch.delenv("JAXEXP_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert compile_cache.resolve("auto") == str(tmp_path / "x" / "jaxexp" / "xla")
    assert compile_cache.resolve(str(tmp_path / "mine")) == str(tmp_path / "mine")


def _queue_table(n: int = 12):
    """Members of one bucket that end at different epochs (epochs 1-5, early stops)."""
    rng = np.random.default_rng(3)
    return _table(
        np.arange(200, 200 + n),
        rng.integers(0, 5, n),
        **{
            "train.lr": rng.uniform(3e-3, 5e-2, n),
            "train.epochs": rng.integers(1, 6, n),
            "train.early_stop_patience": rng.choice([0, 1], n),
            "train.min_delta": np.full(n, 0.05),
        },
    )


@pytest.mark.slow
def test_freed_slots_are_refilled_from_the_queue_without_recompiling(tiny):
    c = tiny()
    c.task.seed = 103  # a static key no other test compiled
    c.engine.compact = "never"
    c.engine.num_devices = 2
    table = _queue_table()
    all_at_once = jaxexp.run_members(c, table)
    c.engine.chunk_size = 2  # 2 resident slots for 12 members
    before = dict(engine.TRACE_COUNTS)
    queue = jaxexp.run_members(c, table)
    assert queue.timings["slots"] == 2 and queue.timings["refills"] >= 5
    assert engine.TRACE_COUNTS["run_segment"] - before["run_segment"] == 1  # one size: one compile
    assert engine.TRACE_COUNTS["refill"] - before.get("refill", 0) == 1
    # fewer member-epochs than 12 members x 5 epochs: a finished member's slot went to the next one
    assert queue.timings["member_epochs_computed"] < all_at_once.timings["member_epochs_computed"]
    reordered = jaxexp.run_members(c, table.iloc[::-1])  # the queue in the other order
    a, b, r = (x.members.set_index("member").sort_index() for x in (all_at_once, queue, reordered))
    assert (a["stop_epoch"] > 0).any() and a["epochs_run"].nunique() > 2  # members end at different times
    for other in (b, r):
        assert (other["epochs_run"] == a["epochs_run"]).all()
        np.testing.assert_allclose(other[METRIC_COLS].astype(float), a[METRIC_COLS].astype(float), rtol=RTOL, atol=ATOL)
    h = all_at_once.history.set_index(["member", "epoch"]).sort_index()
    for other in (queue, reordered):
        g = other.history.set_index(["member", "epoch"]).sort_index()
        assert g.index.equals(h.index)
        np.testing.assert_allclose(g["val_mse"], h["val_mse"], rtol=RTOL, atol=ATOL)
    assert queue.members.set_index("member").sort_index()["init_val_mse"].equals(a["init_val_mse"])


@pytest.mark.slow
def test_memory_budget_sizes_the_resident_population_from_the_compiled_program(tiny):
    c = tiny()
    c.task.seed = 104
    c.model.hidden = (64, 64)
    c.engine.num_devices = 2
    table = _queue_table(16)
    full = jaxexp.run_members(c, table)
    assert full.timings["slots"] == 16
    per_device = full.timings["segment_memory_mb"] * 2**20  # measured, 8 slots per device
    budget = int(per_device * 0.5)
    c.engine.memory_budget = f"{budget}B"
    small = jaxexp.run_members(c, table)
    assert 2 <= small.timings["slots"] < 16
    assert small.timings["segment_memory_mb"] * 2**20 <= budget  # every program it ran fits
    a, b = (x.members.set_index("member").sort_index() for x in (full, small))
    np.testing.assert_allclose(b[METRIC_COLS].astype(float), a[METRIC_COLS].astype(float), rtol=RTOL, atol=ATOL)
    c.engine.memory_budget = "1KiB"
    with pytest.raises(jaxexp.ConfigError, match=r"engine.memory_budget: one member per device needs .* MiB"):
        jaxexp.run_members(c, table)


@pytest.mark.parametrize("setting", ["lots", "-1", "3 parsecs", "0"])
def test_bad_memory_budget_is_a_config_error(tiny, setting):
    c = tiny()
    c.engine.memory_budget = setting
    with pytest.raises(jaxexp.ConfigError, match="engine.memory_budget: cannot read"):
        jaxexp.sweep(c)


def test_memory_budget_units():
    devs = engine.devices(1)
    assert programs.memory_budget("off", devs) is None
    assert programs.memory_budget("512MiB", devs) == 512 * 2**20
    assert programs.memory_budget("2e9", devs) == 2 * 10**9
    assert 0 < programs.memory_budget("0.5", devs) < programs.memory_budget("1", devs)


@pytest.mark.parametrize(
    "values, message",
    [
        ({"train.lr": float("inf")}, r"train.lr: must be a finite number \(got inf\)"),
        ({"train.lr": float("nan")}, r"train.lr: must be a finite number \(got nan\)"),
        ({"train.epochs": 10**10}, r"train.epochs: the members' values do not form one int32 array"),
    ],
)
def test_non_finite_and_out_of_range_values_are_one_clear_error(tiny, tmp_path, values, message):
    from jaxexp import config as cfgmod

    c = cfgmod.with_values(tiny(), values)
    with pytest.raises(jaxexp.ConfigError, match=message):
        jaxexp.sweep(c, str(tmp_path / "wd"))
    assert not (tmp_path / "wd").exists()
