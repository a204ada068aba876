"""The strategy protocol: a new strategy is one class plus its registration, run
by the loop that ``jaxexp sweep`` and ``jaxexp.sweep`` share; in-run rules act on
hand-made segment boundaries."""

import numpy as np
import pandas as pd
import pytest

import jaxexp
from jaxexp import search
from jaxexp.errors import ConfigError
from jaxexp.search import loop
from jaxexp.search.inrun import PBT, Halving
from jaxexp.search.protocol import Boundary, Generation, Strategy


class HalveBestLr(Strategy):
    """Two generations: lr in {1e-3, 3e-2}, then the better lr halved (a toy
    strategy, written the way a user adds one)."""

    name = "halve_best_lr"

    def __init__(self, config, workdir):
        super().__init__(config, workdir)
        self.told: list[pd.DataFrame] = []

    def ask(self):
        if len(self.told) == 2:
            return None
        if not self.told:
            lrs = [1e-3, 3e-2]
        else:
            m = self.told[0]
            lrs = [float(m.loc[m["best_val_mse"].idxmin(), "train.lr"]) / 2]
        table = pd.DataFrame([{"member": i, "config_id": i, "seed": 0, "train.lr": lr} for i, lr in enumerate(lrs)])
        return Generation(table, self.config, None, f"generation {len(self.told)}")

    def tell(self, generation, members, results):
        assert results is not None and results.members is members
        self.told.append(members)

    def result(self):
        return self.told


@pytest.mark.slow
def test_a_registered_strategy_runs_through_the_shared_loop(tiny, monkeypatch):
    monkeypatch.setitem(search.STRATEGIES, "halve_best_lr", HalveBestLr)
    c = tiny()
    c.sweep.strategy = "halve_best_lr"
    labels = []
    told = jaxexp.sweep(c, None, progress=lambda *a, **k: labels.append(a[0]) if a else None)
    assert [len(m) for m in told] == [2, 1]
    first = told[0].set_index("train.lr")["best_val_mse"]
    assert told[1]["train.lr"].iloc[0] == pytest.approx(first.idxmin() / 2)
    assert "generation 0" in labels and "generation 1" in labels


def test_an_unknown_strategy_is_one_line_naming_the_known_ones(tiny):
    c = tiny()
    c.sweep.strategy = "bayes"
    with pytest.raises(ConfigError, match=r"sweep.strategy: unknown strategy 'bayes'; use one of 'sweep', 'tpe'"):
        loop.drive(c, None)


def test_a_signal_in_a_generation_stops_the_loop_with_its_partial_results(tiny, monkeypatch):
    from jaxexp.run import runner

    calls = []

    def interrupted(config, table, workdir, progress):
        calls.append(len(table))
        return type("R", (), {"interrupted": True, "members": table})()

    monkeypatch.setattr(runner, "run_members", interrupted)
    monkeypatch.setitem(search.STRATEGIES, "halve_best_lr", HalveBestLr)
    c = tiny()
    c.sweep.strategy = "halve_best_lr"
    s = loop.drive(c, None, progress=False)
    assert calls == [2] and s.interrupted is not None and s.told == []  # not told, not asked again
    assert s.stopped() == "jaxexp: interrupted: the same command continues the search"


def _boundary(signed_last, epoch_now, finished=None, wave=1):
    n = len(signed_last)
    return Boundary(
        ids=np.arange(10, 10 + n),
        who=np.arange(n),
        real=np.arange(n),
        n_slots=n,
        epoch_now=np.asarray(epoch_now),
        active=np.ones((n, 2), bool),
        signed=np.stack([np.zeros(n), np.asarray(signed_last, float)], 1),
        finished=np.zeros(n, bool) if finished is None else np.asarray(finished),
        wave=wave,
    )


def _out():
    return type("Out", (), {"rungs": [], "pbt": []})()


def test_halving_keeps_the_best_third_at_a_rung_and_logs_unsigned_values(tiny):
    c = tiny()
    c.sweep.halving_rungs = (2,)
    c.sweep.halving_eta = 3.0
    c.goal = "max"  # signed = -metric: the largest metrics are the best
    rule = Halving(c, [None] * 6, np.arange(10, 16), _out(), {})
    b = _boundary([-0.9, -0.1, -0.5, -0.8, -0.2, -0.3], epoch_now=[2] * 6)
    d = rule.at_boundary(b)
    assert list(np.nonzero(~d.pruned)[0]) == [0, 3]  # the top 6 // 3 = 2
    assert [r["value"] for r in d.log] == pytest.approx([0.9, 0.1, 0.5, 0.8, 0.2, 0.3])
    assert all(r["wave"] == 1 and r["rung"] == 2 for r in d.log)
    # not at a rung, or already finished: untouched
    d2 = rule.at_boundary(_boundary([0.0, 1.0], epoch_now=[3, 2], finished=[False, True]))
    assert not d2.pruned.any() and d2.log == []


def test_pbt_copies_the_best_into_the_worst_and_perturbs_within_bounds(tiny):
    c = tiny(train={"lr": jaxexp.space.log_uniform(1e-3, 2e-2)})
    c.sweep.pbt_interval = 2
    c.sweep.pbt_fraction = 0.25
    c.sweep.pbt_params = ("train.lr",)
    c.sweep.pbt_perturb = (2.0,)
    members = [type("M", (), {"config": tiny()})() for _ in range(4)]
    for m, lr in zip(members, [1e-3, 2e-3, 1.5e-2, 4e-3]):
        m.config.train.lr = lr
    overrides: dict = {}
    rule = PBT(c, members, np.arange(10, 14), _out(), overrides)
    d = rule.at_boundary(_boundary([0.5, 0.1, 0.2, 0.9], epoch_now=[4, 4, 4, 4]))
    assert list(d.src) == [0, 1, 2, 1]  # the worst (row 3) takes the best's (row 1) slot
    assert overrides == {3: {"train.lr": pytest.approx(4e-3)}}  # 2e-3 x 2
    assert d.log[0]["member"] == 13 and d.log[0]["source"] == 11 and d.log[0]["old"] == pytest.approx(4e-3)
    d2 = rule.at_boundary(_boundary([0.5, 0.1, 0.2, 0.9], epoch_now=[3, 3, 3, 3]))  # not at a multiple of 2
    assert d2.src is None and d2.log == []


def test_progress_false_is_silent_even_where_the_config_reports(tiny, capsys):
    c = tiny()
    c.engine.progress = True
    res = jaxexp.sweep(c, None, progress=False)
    assert len(res.members) == 1 and not res.interrupted
    captured = capsys.readouterr()
    assert captured.out == "" and "tiny" not in captured.err


def test_a_checkpoint_is_saved_when_due_at_a_bucket_end_or_on_a_stop_signal():
    from jaxexp.run import bucket
    from jaxexp.run.slots import SlotQueue

    class FakeSaver:
        def __init__(self, due):
            self.is_due, self.saved = due, []

        def due(self):
            return self.is_due

        def save(self, state, out, position, arch, best):
            self.saved.append((state, position["in_bucket"]))
            self.positions.append(position)

    def run(due, done, signal=None, last=False):
        saver, stop = FakeSaver(due), {"signal": signal}
        saver.positions = []
        q = SlotQueue.fresh(2, np.array([4, 4]))
        q.done[:] = done
        timings = {"checkpoint_s": 0.0}
        try:
            bucket._checkpoint((saver, {"bucket": 0}, {}, stop, last), q, "STATE", _out(), None, timings)
        except bucket.Stop as e:
            return saver.saved, e.signum
        return saver.saved, None

    assert run(due=False, done=[True, False]) == ([], None)  # mid-bucket, not due: no save
    assert run(due=True, done=[True, False]) == ([("STATE", True)], None)
    assert run(due=False, done=[True, True]) == ([(None, False)], None)  # the bucket's end: always
    assert run(due=False, done=[False, False], signal=15) == ([("STATE", True)], 15)  # a stop: saved, then stops
    # the run's last bucket: its end is also the run's complete marker (past the last bucket);
    # a save inside it is not
    saver = FakeSaver(False)
    saver.positions = []
    q = SlotQueue.fresh(2, np.array([4, 4]))
    q.done[:] = True
    bucket._checkpoint(
        (saver, {"bucket": 3}, {}, {"signal": None}, True), q, "STATE", _out(), None, {"checkpoint_s": 0}
    )
    assert saver.saved == [(None, False)] and saver.positions[0]["complete"] and saver.positions[0]["bucket"] == 4
    q.done[0] = False
    bucket._checkpoint(
        (saver, {"bucket": 3}, {}, {"signal": None}, True), q, "STATE", _out(), None, {"checkpoint_s": 0}
    )
    assert saver.saved == [(None, False)]  # mid-bucket and not due: nothing
    saver.is_due = True
    bucket._checkpoint(
        (saver, {"bucket": 3}, {}, {"signal": None}, True), q, "STATE", _out(), None, {"checkpoint_s": 0}
    )
    assert saver.saved[-1] == ("STATE", True) and "complete" not in saver.positions[-1]
    # a stop signal before the last bucket's end: saved as a plain bucket end, then stops
    # (interrupted; the same command completes it)
    q.done[:] = True
    stopped = {"signal": 2}
    with pytest.raises(bucket.Stop):
        bucket._checkpoint((saver, {"bucket": 3}, {}, stopped, True), q, "STATE", _out(), None, {"checkpoint_s": 0})
    assert saver.saved[-1] == (None, False) and "complete" not in saver.positions[-1]
    assert saver.positions[-1]["bucket"] == 3
    # a signal during the completing save: every member finished, no Stop (the results are
    # completed first; tests/test_checkpoint.py)
    flag = {"signal": None}
    real_save = saver.save

    def signalled(*args):
        real_save(*args)
        flag["signal"] = 15

    saver.save = signalled
    bucket._checkpoint((saver, {"bucket": 3}, {}, flag, True), q, "STATE", _out(), None, {"checkpoint_s": 0})
    assert saver.positions[-1]["complete"] and flag["signal"] == 15
