"""The absl entry point, run as a user would (subprocesses)."""

import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from jaxexp import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = [
    "--config.task.n_train=128",
    "--config.task.n_val=32",
    "--config.task.n_features=4",
    "--config.model.hidden=(8,)",
    "--config.train.batch_size=32",
    "--config.train.epochs=2",
    "--config.sweep.seeds=2",
    "--config.engine.checkpoint_every_s=0",
]


def _run(*args):
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2")
    return subprocess.run(
        [sys.executable, "-m", "jaxexp.main", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.mark.slow
def test_sweep_writes_the_workdir(tmp_path):
    wd = tmp_path / "qs"
    p = _run("sweep", "--config=configs/quickstart.py", f"--workdir={wd}", *TINY)
    assert p.returncode == 0, p.stderr
    assert "members done 12/12" in p.stderr  # progress lines
    members = pd.read_csv(wd / "members.csv")
    assert len(members) == 3 * 2 * 2
    assert json.loads((wd / "config.json").read_text())["train"]["epochs"] == 2
    assert "best member" in p.stdout


@pytest.mark.slow
def test_recipes_config_runs_three_recipes_in_one_command(tmp_path):
    wd = tmp_path / "rec"
    small = ["--config.task.n_train=256", "--config.task.n_val=128", "--config.train.epochs=3"]
    p = _run("sweep", "--config=configs/recipes.py", f"--workdir={wd}", *small, "--config.sweep.seeds=2")
    assert p.returncode == 0, p.stderr
    members = pd.read_csv(wd / "members.csv")
    assert members["recipe"].tolist() == ["run2"] * 2 + ["run3"] * 2 + ["run4"] * 2
    comparison = pd.read_csv(wd / "comparison.csv")
    assert set(comparison["recipe"]) == {"run2", "run3", "run4"}
    groups = pd.read_csv(wd / "groups.csv")
    assert groups["group"].nunique() == 12 and set(groups["member"]) == set(members["member"])
    assert "Recipe comparison (best val_mse over seeds; baseline: run3)" in (wd / "report.md").read_text()


@pytest.mark.slow
def test_train_runs_the_base_config_for_n_seeds(tmp_path):
    wd = tmp_path / "one"
    p = _run("train", "--config=configs/quickstart.py", f"--workdir={wd}", *TINY, "--config.sweep.seeds=3")
    assert p.returncode == 0, p.stderr
    members = pd.read_csv(wd / "members.csv")
    assert len(members) == 3 and members["seed"].tolist() == [0, 1, 2]


@pytest.mark.slow
@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--config.train.lrr=0.1"], "--config.train.lrr: no config field 'lrr'; did you mean \"lr\"?"),
        (
            ['--config.sweep.space.train.lr={"distribution":"uniform","min":1.0,"max":0.1}'],
            "sweep.space.train.lr: min (1) >= max (0.1)",
        ),
        (["--config.train.schedule=cosin"], "train.schedule: use one of"),
        (["--config=configs/missing.py"], "--config: Failed loading config file"),
        (["--config.task.name=file", "--config.task.path=/nonexistent.csv"], "task.path: file not found"),
        (["--config.train.lr=abc"], "could not convert string to float"),
    ],
)
def test_bad_input_exits_nonzero_with_one_line_and_writes_nothing(tmp_path, args, fragment):
    wd = tmp_path / "wd"
    p = _run("sweep", f"--workdir={wd}", *args)
    assert p.returncode != 0
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith("jaxexp: error: ")
    assert fragment in lines[0]
    assert not wd.exists()


@pytest.mark.slow
def test_bad_range_names_the_parameter(tmp_path):
    cfg = tmp_path / "bad.py"
    cfg.write_text(
        "from jaxexp.configs.quickstart import get_config as base\n"
        "from jaxexp import space\n"
        "def get_config():\n"
        "    c = base()\n"
        "    c.sweep.space = {'train': {'lr': space.log_uniform(0.0, 0.1)}}\n"
        "    return c\n"
    )
    p = _run("sweep", f"--config={cfg}", f"--workdir={tmp_path / 'wd'}")
    assert p.returncode == 2
    assert p.stderr.strip() == (
        "jaxexp: error: sweep.space.train.lr: log_uniform needs min > 0 (got 0); "
        "use a positive min or a linear distribution"
    )
    assert not (tmp_path / "wd").exists()


@pytest.mark.slow
def test_missing_command_or_workdir(tmp_path):
    p = _run("--workdir=x")
    assert p.returncode == 2 and p.stderr.strip().startswith("jaxexp: error: expected one command")
    assert len(p.stderr.strip().splitlines()) == 1
    p = _run("sweep")
    assert p.returncode == 2 and "--workdir: missing" in p.stderr


@pytest.mark.slow
def test_sigint_writes_partial_results_and_exits_130(tmp_path):
    import signal

    wd = tmp_path / "int"
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2")
    args = [*TINY, "--config.train.epochs=100000", "--config.engine.segment_epochs=1"]
    p = subprocess.Popen(
        [sys.executable, "-m", "jaxexp.main", "sweep", f"--workdir={wd}", *args],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    import threading

    watchdog = threading.Timer(240, p.kill)  # never hang the suite
    watchdog.start()
    try:
        for line in p.stderr:  # wait until training is under way
            if "members done" in line and "epoch 3/" in line:
                break
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=120)
    finally:
        watchdog.cancel()
        p.kill()
    assert p.returncode == 130, err
    assert "interrupted: wrote partial results" in err
    members = pd.read_csv(wd / "members.csv")
    assert (members["status"] == "stopped").all() and (members["epochs_run"] >= 3).all()
    history = pd.read_csv(wd / "history.csv")
    assert len(history) == members["epochs_run"].sum()


def test_help_lists_every_command():
    for args in ([], ["--help"]):
        out = subprocess.run([sys.executable, "-m", "jaxexp.main", *args], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        listed = [line.split()[0] for line in out.stdout.splitlines() if line.startswith("  ")]
        assert sorted(listed) == sorted(main.COMMANDS)
