"""Checkpoints: architecture records, resume after interruption or SIGKILL,
corrupted steps, config changes on resume, member export."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

import jax
import numpy as np
import pandas as pd
import pytest
from conftest import interrupt_after

import jaxexp
from jaxexp import config as cfgmod
from jaxexp.run import checkpoint, resume
from jaxexp.search import space

# Every test resumes, kills or inspects a real sweep (in-process or a CLI subprocess): end to end.
pytestmark = pytest.mark.slow

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Same tolerance as tests/test_engine.py; a resumed member replays the same
# computation, so in practice its numbers are identical.
RTOL, ATOL = 1e-4, 1e-6
RESULT_COLS = ["best_val_mse", "final_val_mse", "best_epoch", "epochs_run", "stop_epoch"]


def _sweep_config(tiny):
    """16 members in 2 buckets x 2 chunks, some early-stopping (compaction on 2 devices)."""
    c = tiny(
        model={"hidden": space.choice([(8,), (6,)])},
        train={"lr": space.choice([1e-2, 3e-2]), "early_stop_patience": space.choice([0, 1])},
    )
    c.sweep.seeds = 2
    c.train.epochs = 6
    c.train.min_delta = 0.02
    c.engine.segment_epochs = 2
    c.engine.chunk_size = 4
    c.engine.num_devices = 2
    c.engine.compact = "always"
    c.engine.checkpoint = True
    return c


def _compare(a: pd.DataFrame, b: pd.DataFrame) -> None:
    a, b = a.set_index("member").sort_index(), b.set_index("member").sort_index()
    assert list(a.index) == list(b.index)
    assert (a["status"] == b["status"]).all()
    np.testing.assert_allclose(a[RESULT_COLS].astype(float), b[RESULT_COLS].astype(float), rtol=RTOL, atol=ATOL)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run of ``_sweep_config``."""
    from conftest import tiny_config

    c = _sweep_config(tiny_config)
    return jaxexp.sweep(c, str(tmp_path_factory.mktemp("ref") / "wd"))


def test_resume_after_an_interruption_equals_an_uninterrupted_run(tiny, tmp_path, reference):
    c = _sweep_config(tiny)
    wd = str(tmp_path / "wd")
    c.engine.progress = True
    part = jaxexp.sweep(c, wd, progress=interrupt_after(5))
    assert part.interrupted and (part.members["status"] == "stopped").any()
    c.engine.progress = False
    full = jaxexp.sweep(c, wd)  # the same command again: resumes
    assert "resumed_from_step" in full.timings and not full.interrupted
    _compare(full.members, reference.members)
    h = full.history
    assert not h.duplicated(["member", "epoch"]).any() and len(h) == len(reference.history)
    assert (full.members["stop_epoch"].notna()).any() and full.timings["compactions"] >= 1
    # every member's best parameters survived the interruption
    assert set(full.best_params) == set(full.members["member"])
    for m in (0, 5, 15):
        for x, y in zip(jax.tree.leaves(full.best_params[m]), jax.tree.leaves(reference.best_params[m])):
            np.testing.assert_allclose(x, y, rtol=RTOL, atol=ATOL)
    # a finished sweep is not run again
    with pytest.raises(jaxexp.ConfigError, match="holds a finished sweep"):
        jaxexp.sweep(c, wd)


def _latest_step(wd) -> str:
    d = checkpoint.sweep_dir(wd)
    return os.path.join(d, str(max(int(s) for s in os.listdir(d) if s.isdigit())))


@pytest.mark.parametrize("damage", ["truncate_state", "garble_host", "edit_record"])
def test_a_corrupted_latest_step_falls_back_to_the_previous_one(tiny, tmp_path, reference, capsys, damage):
    c = _sweep_config(tiny)
    wd = str(tmp_path / "wd")
    c.engine.progress = True
    jaxexp.sweep(c, wd, progress=interrupt_after(6))
    step = _latest_step(wd)
    if damage == "truncate_state":
        for root, _, files in os.walk(os.path.join(step, "state")):
            for f in files:
                if "metadata" not in f.lower():
                    with open(os.path.join(root, f), "r+b") as fh:
                        fh.truncate(3)
    elif damage == "garble_host":
        with open(os.path.join(step, "host", "metadata"), "w") as fh:
            fh.write("{not json")
    else:  # a record edited by hand to match another model: its sha256 fingerprint tells
        path = os.path.join(step, "arch", "metadata")
        rec = json.load(open(path))
        rec["model"]["model.hidden"] = [99]
        json.dump(rec, open(path, "w"))
    c.engine.progress = False
    full = jaxexp.sweep(c, wd)
    err = capsys.readouterr().err
    assert f"checkpoint step {os.path.basename(step)} is unreadable" in err
    if damage == "edit_record":
        assert "does not match its sha256 fingerprint" in err
    assert full.timings["resumed_from_step"] < int(os.path.basename(step))
    _compare(full.members, reference.members)


def test_a_changed_config_is_refused_on_resume_with_the_diff(tiny, tmp_path, reference):
    c = _sweep_config(tiny)
    wd = str(tmp_path / "wd")
    c.engine.progress = True
    jaxexp.sweep(c, wd, progress=interrupt_after(3))
    c.engine.progress = False
    changed = cfgmod.with_values(c, {"train.min_delta": 0.05})
    with pytest.raises(jaxexp.ConfigError, match=r"train.min_delta: 0.02 \(checkpoint\) != 0.05 \(now\)"):
        jaxexp.sweep(changed, wd)
    safe = cfgmod.with_values(c, {"engine.segment_epochs": 3})
    with pytest.raises(jaxexp.ConfigError, match="engine.segment_epochs: 2 .*allow_resume_changes=True"):
        jaxexp.sweep(safe, wd)
    safe.engine.allow_resume_changes = True
    _compare(jaxexp.sweep(safe, wd).members, reference.members)


def test_max_to_keep_and_the_best_step(tiny, tmp_path):
    c = _sweep_config(tiny)
    for keep_best, most in ((False, 1), (True, 2)):
        c.engine.max_to_keep = 1
        c.engine.keep_best = keep_best
        wd = tmp_path / f"keep{keep_best}"
        jaxexp.sweep(c, str(wd))
        steps = [s for s in os.listdir(checkpoint.sweep_dir(str(wd))) if s.isdigit()]
        assert 1 <= len(steps) <= most, steps


def test_member_export_roundtrip_and_every_mismatch_class(tiny, tmp_path, reference):
    wd = reference.workdir
    out = str(tmp_path / "m5")
    record = checkpoint.export_member(wd, 5, out)
    assert record["member"]["member"] == 5 and checkpoint.inspect(out)["fingerprint"] == record["fingerprint"]
    cfg = reference.member_config(5)
    params = jaxexp.load_member(out, cfg)
    for x, y in zip(jax.tree.leaves(params), jax.tree.leaves(reference.best_params[5])):
        np.testing.assert_array_equal(x, y)
    assert jax.tree.structure(params) == jax.tree.structure(reference.best_params[5])
    # damaged copies: one-line CheckpointErrors, never a bare JSONDecodeError
    for damage in ("truncate", "edit"):
        bad = str(tmp_path / f"m5_{damage}")
        shutil.copytree(out, bad)
        if damage == "truncate":
            for root, _, files in os.walk(os.path.join(bad, "params")):
                for f in files:
                    with open(os.path.join(root, f), "r+b") as fh:
                        fh.truncate(5)
            pattern = r"cannot read the parameters"
        else:
            rec = json.load(open(os.path.join(bad, "arch", "metadata")))
            rec["param_spec"] = {}
            json.dump(rec, open(os.path.join(bad, "arch", "metadata"), "w"))
            pattern = r"does not match its sha256 fingerprint"
        with pytest.raises(checkpoint.CheckpointError, match=pattern) as e:
            jaxexp.load_member(bad, cfg)
        assert "\n" not in str(e.value)

    def refused(values, pattern):
        with pytest.raises(checkpoint.ArchitectureMismatchError, match=pattern):
            jaxexp.load_member(out, cfgmod.with_values(cfg, values))

    width = cfg.model.hidden[0]
    refused(
        {"model.hidden": (width + 8,)}, rf"model.hidden: \({width},\) \(checkpoint\) != \({width + 8},\) \(requested\)"
    )
    refused({"model.hidden": (width, width)}, r"params.Dense_2/kernel: absent from the checkpoint")  # extra layer
    refused({"model.activation": "tanh"}, r"model.activation: 'relu' \(checkpoint\) != 'tanh' \(requested\)")
    refused({"task.n_features": 5}, r"params.Dense_0/kernel: \(4, 8\) float32 \(checkpoint\) != \(5, 8\) float32")
    # a missing layer: the checkpoint has 2 hidden layers, the model 1
    deep = checkpoint.architecture(cfgmod.with_values(cfg, {"model.hidden": (8, 8)}))
    with pytest.raises(
        checkpoint.ArchitectureMismatchError, match=r"params.Dense_2/kernel: .* absent from the requested"
    ):
        checkpoint.verify(deep, checkpoint.architecture(cfg), "x")
    # population size and members
    a = checkpoint.architecture(cfg, member_ids=[0, 1, 2, 3])
    b = checkpoint.architecture(cfg, member_ids=[0, 1])
    with pytest.raises(checkpoint.ArchitectureMismatchError, match=r"population.size: 4 \(checkpoint\) != 2"):
        checkpoint.verify(a, b, "x")
    # dtype: honest record of float16 arrays; and a record that lies about them
    half = jax.tree.map(lambda x: np.asarray(x, np.float16), params)
    rec16 = dict(record, param_spec=checkpoint.spec_of(half))
    rec16["fingerprint"] = checkpoint._fingerprint(rec16)  # honest: written as such
    checkpoint.save_member(str(tmp_path / "h"), half, rec16)
    with pytest.raises(
        checkpoint.ArchitectureMismatchError, match=r"float16 \(checkpoint\) != .* float32 \(requested\)"
    ):
        jaxexp.load_member(str(tmp_path / "h"), cfg)
    checkpoint.save_member(str(tmp_path / "lie"), half, record)
    with pytest.raises(checkpoint.ArchitectureMismatchError, match=r"stored arrays do not match.*float16 \(stored\)"):
        jaxexp.load_member(str(tmp_path / "lie"), cfg)


def _popen(args, wd):
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2")
    cmd = [sys.executable, "-m", "jaxexp.main", "sweep", f"--workdir={wd}", *args]
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def _run_until(args, wd, n_lines: int, sig) -> int:
    """Starts a sweep and sends ``sig`` when its n-th progress line appears."""
    p = _popen(args, wd)
    watchdog = threading.Timer(240, p.kill)  # never hang the suite
    watchdog.start()
    try:
        seen = 0
        for line in p.stderr:
            seen += "members done" in line
            if seen == n_lines:
                p.send_signal(sig)  # the line is printed just before its segment's save
                break
        p.communicate(timeout=120)
    finally:
        watchdog.cancel()
        p.kill()
    return p.returncode


CLI = [
    "--config=configs/recipes.py",
    "--config.task.n_train=256",
    "--config.task.n_val=128",
    "--config.model.hidden=(16,)",
    "--config.train.epochs=16",
    "--config.engine.segment_epochs=2",
    "--config.engine.checkpoint_every_s=0",
    "--config.sweep.seeds=2",
]


@pytest.fixture(scope="module")
def cli_reference(tmp_path_factory):
    """An uninterrupted CLI run of ``CLI``: the results every resumed run must equal."""
    ref = tmp_path_factory.mktemp("cli") / "ref"
    p = _popen(CLI, ref)
    p.communicate(timeout=300)
    assert p.returncode == 0
    return ref


def test_sigkill_during_an_async_save_resumes_to_identical_results(tmp_path, cli_reference):
    """Checkpoints are saved in the background while the next segment trains; a
    kill -9 while a save is being written (its temporary folder exists) resumes
    from the previous finalised step to the same results."""
    caught = None
    for attempt in range(3):  # a save of this tiny run takes ~0.1 s: polled every ms, it is caught
        wd = tmp_path / f"killed{attempt}"
        p = _popen(CLI, wd)
        watchdog = threading.Timer(240, p.kill)
        watchdog.start()
        try:
            while p.poll() is None and caught is None:
                names = os.listdir(wd / "checkpoints") if (wd / "checkpoints").is_dir() else []
                tmp = [n for n in names if "tmp" in n]
                if tmp and any(n.isdigit() for n in names):  # not the first save: a finalised step exists
                    p.send_signal(signal.SIGKILL)
                    caught = (wd, tmp)
                time.sleep(0.001)
            p.communicate(timeout=120)
        finally:
            watchdog.cancel()
            p.kill()
        if caught:
            break
    assert caught, "no kill landed during a checkpoint save in 3 runs"
    wd = caught[0]
    p = _popen(CLI, wd)
    _, err = p.communicate(timeout=300)
    assert p.returncode == 0, err
    assert "Traceback" not in err
    assert not [n for n in os.listdir(wd / "checkpoints") if "tmp" in n]  # the half-written step is gone
    a, b = pd.read_csv(wd / "members.csv"), pd.read_csv(cli_reference / "members.csv")
    assert (a["status"] == "ok").all()
    _compare(a, b)
    h, ref_h = pd.read_csv(wd / "history.csv"), pd.read_csv(cli_reference / "history.csv")
    assert not h.duplicated(["member", "epoch"]).any() and len(h) == len(ref_h)


def test_sigkill_and_sigterm_then_resume_loses_nothing(tmp_path, cli_reference):
    ref = cli_reference
    wd = tmp_path / "killed"
    # SIGKILL as a progress line appears: the line is printed just before its segment's save
    assert _run_until(CLI, wd, 3, signal.SIGKILL) == -signal.SIGKILL
    # resumed, then SIGTERM: the segment's checkpoint is saved, partial results written, exit 143
    assert _run_until(CLI, wd, 3, signal.SIGTERM) == 143
    assert (pd.read_csv(wd / "members.csv")["status"] == "stopped").any()
    host = json.loads(open(os.path.join(_latest_step(str(wd)), "host", "metadata")).read())
    assert host["in_bucket"] and not host.get("complete")
    p = _popen(CLI, wd)
    _, err = p.communicate(timeout=300)
    assert p.returncode == 0, err
    a, b = pd.read_csv(wd / "members.csv"), pd.read_csv(ref / "members.csv")
    assert len(a) == len(b) == 6 and (a["status"] == "ok").all()
    _compare(a, b)
    h = pd.read_csv(wd / "history.csv")
    assert not h.duplicated(["member", "epoch"]).any()
    assert len(h) == len(pd.read_csv(ref / "history.csv"))
    # export and inspect from the command line
    out = tmp_path / "m0"
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2")

    def run(*a):
        cmd = [sys.executable, "-m", "jaxexp.main", *a]
        return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)

    r = run("export", f"--workdir={wd}", "--member=0", f"--out={out}")
    assert r.returncode == 0 and "wrote" in r.stdout, r.stderr
    r = run("inspect", str(out))
    assert r.returncode == 0 and json.loads(r.stdout)["model"]["model.hidden"] == [16]
    with pytest.raises(checkpoint.CheckpointError, match="--member: member 99 has no saved parameters"):
        checkpoint.export_member(str(wd), 99, str(tmp_path / "x"))


def test_readers_leave_a_running_sweeps_workdir_untouched(tiny, tmp_path):
    """analyze, export and the pre-run check read a workdir without writing or deleting
    anything in it: the temporary folder of a step being saved survives them."""
    c = tiny(train={"lr": space.choice([1e-3, 3e-3, 1e-2, 2e-2, 3e-2, 5e-2]), "epochs": space.choice([1, 3])})
    c.engine.checkpoint, c.engine.segment_epochs, c.engine.progress = True, 1, True
    wd = tmp_path / "wd"
    assert jaxexp.sweep(c, str(wd), progress=interrupt_after(2)).interrupted
    saving = wd / "checkpoints" / "99.orbax-checkpoint-tmp-1733464000000000"  # a save in progress
    saving.mkdir()
    (saving / "part").write_text("x")

    def listing():
        return sorted((str(p.relative_to(wd)), p.stat().st_mtime_ns) for p in wd.rglob("*"))

    before = listing()
    jaxexp.analyze(str(wd))  # mid-sweep: from the latest checkpoint
    assert resume.prepare(str(wd), c)  # the check a second run makes: it would resume
    reader = checkpoint.SweepCheckpoints.reader(str(wd))
    finished = sorted(int(k) for k in reader.read_arrays(reader.steps()[-1], None)[1]["finals"])
    reader.close()
    assert finished  # the 1-epoch members
    checkpoint.export_member(str(wd), finished[0], str(tmp_path / "m"))
    assert listing() == before and (saving / "part").exists()


def test_one_writer_per_workdir_and_a_stale_lock_is_taken_over(tiny, tmp_path, capsys):
    import json
    import socket

    from jaxexp import workdir

    c = tiny()
    wd = tmp_path / "wd"
    wd.mkdir()
    lock = wd / workdir.LOCK_FILE
    alive = {"host": socket.gethostname(), "pid": os.getppid(), "started": "2026-12-06 07:00:00"}
    lock.write_text(json.dumps(alive))
    with pytest.raises(jaxexp.ConfigError, match=rf"workdir: {wd} is in use by process {os.getppid()} on "):
        jaxexp.sweep(c, str(wd))
    assert sorted(p.name for p in wd.iterdir()) == [workdir.LOCK_FILE]  # nothing written, the lock kept
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    lock.write_text(json.dumps({**alive, "pid": int(gone.stdout)}))  # its process has exited
    res = jaxexp.sweep(c, str(wd))
    assert (res.members["status"] == "ok").all() and not lock.exists()  # released after the run
    assert f"taking over the stale lock of process {int(gone.stdout)}" in capsys.readouterr().err


def test_sigterm_while_results_are_written_completes_them_then_exits_143(tmp_path, cli_reference):
    """Training is over and the result files are being written (their temporary
    folder exists): SIGTERM waits for complete files, releases the lock, exits 143."""
    wd = tmp_path / "late"
    p = _popen(CLI, wd)
    watchdog = threading.Timer(240, p.kill)
    watchdog.start()
    sent = False
    try:
        while p.poll() is None and not sent:
            if wd.is_dir() and any(n.startswith(".writing-") for n in os.listdir(wd)):
                p.send_signal(signal.SIGTERM)
                sent = True
            time.sleep(0.001)
        _, err = p.communicate(timeout=120)
    finally:
        watchdog.cancel()
        p.kill()
    assert sent, "the run ended before its result files were being written"
    assert p.returncode == 143, err
    assert "finishing the result files first" in err and "Traceback" not in err
    assert not (wd / ".jaxexp.lock").exists()
    a = pd.read_csv(wd / "members.csv")
    assert (a["status"] == "ok").all()
    _compare(a, pd.read_csv(cli_reference / "members.csv"))
    assert (wd / "report.html").exists() and (wd / "timings.json").exists()


def _kill_when(wd, ready) -> tuple[int, str]:
    """Starts the CLI sweep and kill -9s it as soon as ``ready(names in checkpoints/)``;
    returns (exit status, stderr)."""
    p = _popen(CLI, wd)
    watchdog = threading.Timer(240, p.kill)
    watchdog.start()
    try:
        while p.poll() is None:
            names = os.listdir(wd / "checkpoints") if (wd / "checkpoints").is_dir() else []
            if ready(names):
                p.send_signal(signal.SIGKILL)
                break
            time.sleep(0.001)
        _, err = p.communicate(timeout=120)
    finally:
        watchdog.cancel()
        p.kill()
    return p.returncode, err


def _steps(names) -> list[int]:
    return sorted(int(n) for n in names if n.isdigit())


def test_repeated_sigkills_resume_cleanly_and_old_steps_are_cleaned(tmp_path, cli_reference):
    """kill -9 during a save, between saves, and during a resumed run's save: every
    resume is free of tracebacks, and steps written before a kill are cleaned to
    engine.max_to_keep (+ the best step) by the next save (orbax kept them all: their
    metrics were never written to disk, so its BestN policy saw steps without metrics)."""
    wd = tmp_path / "killed"
    during_save = lambda names: _steps(names) and any(checkpoint.TMP_MARK in n for n in names)  # noqa: E731
    rc, _ = _kill_when(wd, during_save)
    assert rc == -signal.SIGKILL
    assert _run_until(CLI, wd, 2, signal.SIGKILL) == -signal.SIGKILL  # just before a segment's save
    start = max(_steps(os.listdir(wd / "checkpoints")))

    def resumed_save(names):  # a save of the resumed run, after it removed the unfinished ones
        return any(n.split(".")[0].isdigit() and int(n.split(".")[0]) > start + 1 for n in names if "tmp" in n)

    rc, err = _kill_when(wd, resumed_save)
    assert "Traceback" not in err, err
    if rc == -signal.SIGKILL:
        p = _popen(CLI, wd)
        _, err = p.communicate(timeout=300)
        rc = p.returncode
    assert rc == 0, err
    assert "Traceback" not in err, err
    names = os.listdir(wd / "checkpoints")
    assert not [n for n in names if checkpoint.TMP_MARK in n]
    assert 1 <= len(_steps(names)) <= 2 + 1, names  # engine.max_to_keep (2) + the best step
    _compare(pd.read_csv(wd / "members.csv"), pd.read_csv(cli_reference / "members.csv"))
    h = pd.read_csv(wd / "history.csv")
    assert not h.duplicated(["member", "epoch"]).any() and len(h) == len(pd.read_csv(cli_reference / "history.csv"))


# --- a full disk: one DiskFull line naming what was written where, and the same command resumes

NO_SPACE = "No space left on device"


def test_disk_full_while_saving_a_checkpoint_is_one_error_and_the_rerun_resumes(tiny, tmp_path, reference, monkeypatch):
    import errno

    import orbax.checkpoint as ocp

    from jaxexp.run import diskfull

    c = _sweep_config(tiny)
    wd = tmp_path / "wd"
    real_save, calls = ocp.CheckpointManager.save, {"n": 0}

    def failing_save(self, step, *a, **k):
        calls["n"] += 1
        if calls["n"] < 4:
            return real_save(self, step, *a, **k)
        half = os.path.join(self.directory, f"{step}{checkpoint.TMP_MARK}", "state")
        os.makedirs(half)  # what a save that ran out of space leaves
        # as TensorStore reports it from orbax's background thread
        raise ValueError(
            f'RESOURCE_EXHAUSTED: Error writing local file "{half}/d/x": Failed to write 6123 bytes to file 4: '
            f"{NO_SPACE} [os_error_code='28']"
        )

    monkeypatch.setattr(ocp.CheckpointManager, "save", failing_save)
    with pytest.raises(diskfull.DiskFull) as e:
        jaxexp.sweep(c, str(wd))
    expected = (
        f"disk full while writing a checkpoint in {wd / 'checkpoints'}: free space and run the same command again "
        "(it resumes)"
    )
    assert str(e.value) == expected and e.value.errno == errno.ENOSPC
    assert sorted(os.listdir(wd)) == ["checkpoints"]  # no result file, the lock released
    assert any(checkpoint.TMP_MARK in n for n in os.listdir(wd / "checkpoints"))
    monkeypatch.setattr(ocp.CheckpointManager, "save", real_save)
    full = jaxexp.sweep(c, str(wd))  # the half-written step is removed, not used
    assert full.timings["resumed_from_step"] == 2
    _compare(full.members, reference.members)
    assert not any(checkpoint.TMP_MARK in n for n in os.listdir(wd / "checkpoints"))


@pytest.mark.parametrize("where", ["results", "lock"])
def test_disk_full_while_writing_results_or_the_lock_is_one_error(tiny, tmp_path, reference, monkeypatch, where):
    import errno
    import types

    from jaxexp import workdir
    from jaxexp.run import diskfull, report

    c = _sweep_config(tiny)
    wd = tmp_path / "wd"

    def no_space(*a, **k):
        raise OSError(errno.ENOSPC, NO_SPACE)

    if where == "results":
        monkeypatch.setattr(report, "markdown", no_space)  # while the files are written into .writing-*
        what = "the result files"
    else:
        monkeypatch.setattr(workdir, "json", types.SimpleNamespace(dump=no_space, load=json.load))
        what = f"the lock file {workdir.LOCK_FILE}"
    with pytest.raises(diskfull.DiskFull, match="^disk full while writing ") as e:
        jaxexp.sweep(c, str(wd))
    assert str(e.value) == f"disk full while writing {what} in {wd}: free space and run the same command again " + (
        "(it resumes)"
    )
    # nothing half-written: no result file, no temporary folder, no (empty) lock left to refuse the rerun
    assert sorted(os.listdir(wd)) == (["checkpoints"] if where == "results" else [])
    monkeypatch.undo()
    full = jaxexp.sweep(c, str(wd))
    assert ("resumed_from_step" in full.timings) == (where == "results")  # every segment was saved
    _compare(full.members, reference.members)
    assert (wd / "members.csv").exists() and not (wd / workdir.LOCK_FILE).exists()


def test_disk_full_on_the_command_line_is_one_line_and_rerunning_resumes(tmp_path, cli_reference):
    """A real full disk: a 300 kB tmpfs (where this machine lets the tests mount one)."""
    fs = tmp_path / "fs"
    fs.mkdir()
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(fs)], capture_output=True)
    if mount.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {mount.stderr.decode().strip()[:100]}")
    try:
        wd = fs / "wd"
        p = _popen(CLI, wd)
        _, err = p.communicate(timeout=300)
        lines = [ln for ln in err.splitlines() if not ln.startswith("[recipes]")]  # progress lines
        assert p.returncode == 1 and len(lines) == 1, err
        assert re.fullmatch(
            rf"jaxexp: error: disk full while writing (a checkpoint|the result files) in {wd}(/checkpoints)?: "
            r"free space and run the same command again \(it resumes\)",
            lines[0],
        ), lines
        subprocess.run(["mount", "-o", "remount,size=20m", str(fs)], check=True)
        p = _popen(CLI, wd)
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0 and "Traceback" not in err, err
        _compare(pd.read_csv(wd / "members.csv"), pd.read_csv(cli_reference / "members.csv"))
    finally:
        subprocess.run(["umount", str(fs)], capture_output=True)


def test_a_checkpoint_interval_saves_bucket_ends_only_and_resumes_identically(tiny, tmp_path, reference, monkeypatch):
    saves = []
    real_save = resume.Saver.save

    def counting(self, state, out, position, arch, best):
        saves.append((position.get("bucket"), position.get("in_bucket"), state is not None))
        return real_save(self, state, out, position, arch, best)

    monkeypatch.setattr(resume.Saver, "save", counting)
    c = _sweep_config(tiny)
    c.engine.checkpoint_every_s = 1e6  # after the first segment, only bucket ends, stops and the end of the sweep
    wd = str(tmp_path / "wd")
    c.engine.progress = True
    part = jaxexp.sweep(c, wd, progress=interrupt_after(7))  # a KeyboardInterrupt in the second bucket
    # the first segment (an interruption always finds a checkpoint), the first bucket's end
    assert part.interrupted and saves == [(0, True, True), (0, False, False)]
    c.engine.progress = False
    full = jaxexp.sweep(c, wd)  # resumes at the second bucket's start
    assert full.timings["resumed_from_step"] == 1 and not full.interrupted
    _compare(full.members, reference.members)
    # its first segment, then the second (last) bucket's end, which is also the complete marker
    # (position bucket 2 = past the last bucket; no extra save after it)
    assert saves[2:] == [(1, True, True), (2, False, False)]
    saves.clear()
    c.engine.checkpoint_every_s = 0.0  # after every segment
    jaxexp.sweep(c, str(tmp_path / "every"))
    assert sum(in_bucket for _, in_bucket, _ in saves) >= 4 and len(saves) > 3


def test_a_stop_during_the_last_segment_is_completed_by_the_same_command(tiny, tmp_path, monkeypatch):
    # the last bucket's end is also the run's "complete" marker, but not when a stop signal
    # came first: that run is interrupted, and the same command must complete it (not call
    # the workdir finished)
    import contextlib

    from jaxexp.run import engine

    c = tiny()
    c.engine.checkpoint = True
    c.engine.segment_epochs = 3  # one segment: its save is the last bucket's end
    real = resume.graceful_stop

    @contextlib.contextmanager
    def signalled(enabled):
        with real(enabled) as flag:
            flag["signal"] = 2  # a SIGINT during the (only) segment
            yield flag

    monkeypatch.setattr(engine.resume, "graceful_stop", signalled)
    wd = str(tmp_path / "wd")
    assert jaxexp.sweep(c, wd).interrupted
    monkeypatch.setattr(engine.resume, "graceful_stop", real)
    done = jaxexp.sweep(c, wd)
    assert not done.interrupted and (done.members["status"] == "ok").all()
    with pytest.raises(jaxexp.ConfigError, match="finished sweep"):
        jaxexp.sweep(c, wd)  # now it is finished


def test_a_stop_during_the_completing_save_completes_the_results_then_stops(tiny, tmp_path, monkeypatch):
    # every member has finished when the signal comes: the result files are completed, then
    # the run stops as for a signal while they are written (StoppedAfterWriting: 130/143)
    import contextlib

    from jaxexp.run import engine

    c = tiny()
    c.engine.checkpoint = True
    flags = []
    real_stop, real_save = resume.graceful_stop, resume.Saver.save

    @contextlib.contextmanager
    def capture(enabled):
        with real_stop(enabled) as flag:
            flags.append(flag)
            yield flag

    def save(self, state, out, position, arch, best):
        real_save(self, state, out, position, arch, best)
        if position.get("complete"):
            flags[-1]["signal"] = 15  # a SIGTERM during the completing save

    monkeypatch.setattr(engine.resume, "graceful_stop", capture)
    monkeypatch.setattr(resume.Saver, "save", save)
    wd = tmp_path / "wd"
    with pytest.raises(resume.StoppedAfterWriting) as e:
        jaxexp.sweep(c, str(wd))
    assert e.value.signum == 15
    members = pd.read_csv(wd / "members.csv")
    assert len(members) and (members["status"] == "ok").all()  # complete results
    monkeypatch.setattr(resume.Saver, "save", real_save)
    with pytest.raises(jaxexp.ConfigError, match="finished sweep"):
        jaxexp.sweep(c, str(wd))
