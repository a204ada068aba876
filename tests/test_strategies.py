"""Successive halving inside one sweep: rung cuts, pruning, refills."""

import os

import numpy as np
import pandas as pd
import pytest

import jaxexp
from jaxexp.run import engine, programs
from jaxexp.search import strategies


def test_rung_cut_keeps_the_top_fraction_of_everything_seen():
    # scripted metric (smaller is better): 9 members at once, eta 3 -> the best 3 continue
    values = {m: v for m, v in enumerate([5.0, 1.0, 7.0, 3.0, 9.0, 2.0, 8.0, 4.0, 6.0])}
    assert strategies.rung_cut([], values, 3) == {1, 5, 3}
    # arriving later (a queue): held to the cut over every value recorded at the rung
    seen = list(values.values())
    assert strategies.rung_cut(seen, {20: 2.5}, 3) == {20}  # 2nd best of 10 -> within floor(10/3) = 3
    assert strategies.rung_cut(seen, {21: 3.5}, 3) == set()  # 4th of 10 -> out
    assert strategies.rung_cut([], {7: 1.0}, 3) == {7}  # at least one continues
    assert strategies.rung_cut([], {1: float("nan"), 2: 5.0}, 2) == {2}  # non-finite never continues
    assert strategies.rung_cut([], {4: 1.0, 3: 1.0}, 2) == {3}  # ties: lower member id


@pytest.mark.parametrize(
    "rungs, eta, fragment",
    [((0, 2), 3, "integers >= 1"), ((4, 2), 3, "must increase"), ((2,), 1.0, "halving_eta: must be > 1")],
)
def test_bad_halving_settings_are_config_errors(tiny, rungs, eta, fragment):
    c = tiny()
    c.sweep.halving_rungs, c.sweep.halving_eta = rungs, eta
    with pytest.raises(jaxexp.ConfigError, match=fragment):
        jaxexp.sweep(c)
    c = tiny()
    c.sweep.halving_rungs = (3,)  # tiny trains 3 epochs
    with pytest.raises(jaxexp.ConfigError, match=r"last rung \(3\) must be < train.epochs \(3\)"):
        jaxexp.sweep(c)


def _halving_sweep(tiny, chunk_size: int):
    c = tiny()
    c.task.seed = 105  # a static key no other test compiled
    c.train.epochs = 6
    c.engine.segment_epochs = 3  # the rungs (2, 4) make it 2: rungs fall on segment boundaries
    c.engine.num_devices = 2
    c.engine.chunk_size = chunk_size
    c.engine.compact = "never"
    c.sweep.halving_rungs, c.sweep.halving_eta = (2, 4), 2.0
    n = 12
    rng = np.random.default_rng(7)
    table = pd.DataFrame(
        {
            "member": np.arange(n),
            "config_id": np.arange(n),
            "seed": np.zeros(n, int),
            "train.lr": rng.uniform(1e-3, 5e-2, n),
        }
    )
    return c, table


@pytest.mark.slow
def test_synchronous_rungs_keep_exactly_the_best_members(tiny):
    c, table = _halving_sweep(tiny, chunk_size=16)  # all 12 at once: synchronous successive halving
    before = engine.TRACE_COUNTS["run_segment"]
    res = jaxexp.run_members(c, table)
    assert engine.TRACE_COUNTS["run_segment"] - before == 1  # pruning changes traced values only
    h = res.history.set_index(["member", "epoch"])["val_mse"]
    m = res.members.set_index("member")
    at2 = h.xs(2, level="epoch").sort_values()
    assert len(at2) == 12 and set(m.index[m["pruned_epoch"] == 2]) == set(at2.index[6:])  # keep 12 // 2
    at4 = h.xs(4, level="epoch").sort_values()
    assert set(at4.index) == set(at2.index[:6])  # only the survivors trained on
    assert set(m.index[m["pruned_epoch"] == 4]) == set(at4.index[3:])  # keep 6 // 2
    survivors = m[m["status"] == "ok"]
    assert set(survivors.index) == set(at4.index[:3]) and (survivors["epochs_run"] == 6).all()
    pruned = m[m["status"] == "pruned"]
    assert (pruned["epochs_run"] == pruned["pruned_epoch"]).all()
    assert res.best_member()["member"] in survivors.index
    assert res.timings["pruned"] == 9 and res.summary["pruned"].sum() == 9


@pytest.mark.slow
def test_pruned_slots_are_refilled_from_the_queue(tiny):
    c, table = _halving_sweep(tiny, chunk_size=4)  # 4 slots for 12 members
    res = jaxexp.run_members(c, table)
    m = res.members.set_index("member")
    assert res.timings["refills"] > 0 and res.timings["slots"] == 4
    assert (m["epochs_run"] >= 2).all()  # every member reached rung 2
    assert 0 < (m["status"] == "pruned").sum() < 12 and (m["status"] == "ok").sum() >= 1
    # rungs.csv logs every decision: values are the metric at the rung epoch, and replaying
    # the rule (top floor(n / eta) of all values recorded so far, wave by wave) gives the
    # same decisions
    log = res.rungs
    h = res.history.set_index(["member", "epoch"])["val_mse"]
    np.testing.assert_allclose(log["value"], [h[(mb, r)] for mb, r in zip(log["member"], log["rung"])])
    assert log["wave"].nunique() > 1  # members reached rung 2 at different times
    for r, at_rung in log.groupby("rung"):
        recorded = []
        for _, wave in at_rung.groupby("wave", sort=True):
            recorded += list(wave["value"])
            cutoff = sorted(recorded)[max(1, len(recorded) // 2) - 1]
            assert (wave["kept"] == (wave["value"] <= cutoff)).all(), (r, wave)
        pruned_here = set(at_rung.loc[~at_rung["kept"], "member"])
        assert pruned_here == set(m.index[m["pruned_epoch"] == r])
    assert 0 < (m["status"] == "pruned").sum() < 12 and (m["status"] == "ok").sum() >= 1
    # compute saved: fewer member-epochs than 12 x 6
    assert res.history.groupby("member")["epoch"].max().sum() < 12 * 6


@pytest.mark.slow
def test_a_halving_sweep_resumes_with_its_rung_records(tiny, tmp_path):
    c, table = _halving_sweep(tiny, chunk_size=4)
    c.engine.checkpoint = True
    reference = jaxexp.run_members(c, table)
    calls = {"n": 0}

    def interrupt_third(line):  # after the third segment, before its checkpoint
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt

    c.engine.progress = True
    wd = str(tmp_path / "wd")
    part = jaxexp.run_members(c, table, wd, progress=interrupt_third)
    assert part.interrupted and len(part.rungs)  # some rung decisions were made before the stop
    c.engine.progress = False
    full = jaxexp.run_members(c, table, wd)
    assert "resumed_from_step" in full.timings
    a, b = (r.members.set_index("member").sort_index() for r in (reference, full))
    assert (a["status"] == b["status"]).all() and a["pruned_epoch"].equals(b["pruned_epoch"])
    np.testing.assert_allclose(b["best_val_mse"], a["best_val_mse"], rtol=1e-4, atol=1e-6)
    pd.testing.assert_frame_equal(
        full.rungs[["rung", "member", "kept", "wave"]], reference.rungs[["rung", "member", "kept", "wave"]]
    )
    assert os.path.exists(os.path.join(wd, "rungs.csv"))


def test_exploit_copies_parameters_and_optimizer_state_between_slots(tiny):
    import jax

    from jaxexp.core import train
    from jaxexp.run import population

    c = tiny()
    members = population.resolve(c, population.members_table(c))
    task = jaxexp.load_workload(c.workload).dataset(c)
    compiled = programs.compiled(population.buckets(members)[0], task, 2, programs.devices(2), 0, ("val_mse", "min"))
    n = 4
    hp = train.encode_hparams([c] * n, task)
    hp["train.lr"] = np.asarray([1e-3, 2e-3, 3e-3, 4e-3], np.float32)
    data = train.data_of(task)
    ids = np.arange(n, dtype=np.uint32)
    state = compiled.init(np.uint32(0), ids, ids, jax.device_put(hp, compiled.pop), data)
    before = jax.device_get(state)
    after = jax.device_get(compiled.exploit(state, np.asarray([0, 0, 2, 1])))
    for copied, kept in ((after.params, before.params), (after.opt_state, before.opt_state)):
        for x, y in zip(jax.tree.leaves(copied), jax.tree.leaves(kept)):
            np.testing.assert_array_equal(x[[0, 1, 2, 3]], y[[0, 0, 2, 1]])
    for x, y in zip(
        jax.tree.leaves((after.best_params, after.dropout_seed, after.monitor)),
        jax.tree.leaves((before.best_params, before.dropout_seed, before.monitor)),
    ):
        np.testing.assert_array_equal(x, y)  # the member's own records and random streams stay


@pytest.mark.slow
def test_population_based_training_exploits_and_explores(tiny, tmp_path):
    c = tiny()
    c.task.seed = 106
    c.train.epochs = 6
    c.engine.num_devices = 2
    c.engine.compact = "never"
    c.sweep.pbt_interval, c.sweep.pbt_fraction, c.sweep.pbt_perturb = 2, 0.25, (0.5, 2.0)
    n = 8
    table = pd.DataFrame(
        {
            "member": np.arange(n),
            "config_id": np.arange(n),
            "seed": np.zeros(n, int),
            "train.lr": np.geomspace(1e-3, 0.1, n),
        }
    )
    before = engine.TRACE_COUNTS["run_segment"]
    res = jaxexp.run_members(c, table, str(tmp_path / "wd"))
    assert engine.TRACE_COUNTS["run_segment"] - before == 1  # PBT changes traced values only
    log = res.pbt
    assert list(log["epoch"].unique()) == [2, 4] and len(log) == 2 * 2  # 2 of 8 replaced at epochs 2 and 4
    h = res.history.set_index(["member", "epoch"])
    lr_now = dict(zip(table["member"], table["train.lr"]))
    for epoch, step in log.groupby("epoch", sort=True):
        ranked = h.xs(epoch, level="epoch")["val_mse"].sort_values()
        assert set(step["member"]) == set(ranked.index[-2:]) and set(step["source"]) <= set(ranked.index[:2])
        for row in step.itertuples():
            assert np.isclose(row.old, lr_now[row.member]) and any(
                np.isclose(row.new, lr_now[row.source] * f) for f in (0.5, 2.0)
            )
            assert np.isclose(h.loc[(row.member, epoch + 1), "lr"], row.new, rtol=1e-6)  # trains on with it
        for row in step.itertuples():
            lr_now[row.member] = row.new
    assert (tmp_path / "wd" / "pbt.csv").exists()
