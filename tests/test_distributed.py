"""A sweep run by 2 processes (jax.distributed over gloo, localhost CPU) equals one process."""

import json
import os
import shutil
import socket
import subprocess
import sys

import jax
import numpy as np
import pandas as pd
import pytest

from jaxexp import config as cfgmod
from jaxexp.run import checkpoint
from jaxexp.run.results import RESULT_FILES

# Two CLI processes sharing one sweep: end to end.
pytestmark = pytest.mark.slow

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Tiny, with members of different lengths and early stops, 12 members in 8 slots
# (a queue with refills on the global mesh).
ARGS = [
    "--config.task.n_train=128",
    "--config.task.n_val=32",
    "--config.task.n_features=4",
    "--config.model.hidden=(8,)",
    "--config.train.batch_size=32",
    "--config.train.epochs=4",
    "--config.train.early_stop_patience=1",
    "--config.train.min_delta=0.05",
    "--config.sweep.seeds=2",
    "--config.engine.segment_epochs=2",
    "--config.engine.chunk_size=8",
    "--config.engine.compact=never",
    "--config.engine.max_to_keep=10",
    "--config.engine.checkpoint_every_s=0",
]
METRICS = ["best_val_mse", "final_val_mse", "final_train_loss", "best_epoch", "epochs_run"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(devices: int) -> dict:
    return dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}", JAX_PLATFORMS="cpu")


def _sweep(workdir):
    return [sys.executable, "-m", "jaxexp.main", "sweep", "--config=configs/quickstart.py", f"--workdir={workdir}"]


def test_two_processes_give_the_results_of_one(tmp_path):
    one = subprocess.run(
        [*_sweep(tmp_path / "one"), *ARGS], cwd=ROOT, env=_env(8), capture_output=True, text=True, timeout=300
    )
    assert one.returncode == 0, one.stderr[-3000:]

    port = _free_port()
    procs = [
        subprocess.Popen(
            [
                *_sweep(tmp_path / "two"),
                *ARGS,
                "--distributed",
                f"--coordinator_address=127.0.0.1:{port}",
                "--num_processes=2",
                f"--process_id={i}",
            ],
            cwd=ROOT,
            env=_env(4),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        for i in range(2)
    ]
    outs = []
    try:
        for p in procs:
            outs.append(p.communicate(timeout=300))
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, 9)
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    assert "8 devices in 2 processes" in outs[0][1]

    a = pd.read_csv(tmp_path / "one" / "members.csv").set_index("member").sort_index()
    b = pd.read_csv(tmp_path / "two" / "members.csv").set_index("member").sort_index()
    assert len(a) == len(b) == 12 and (a["stop_epoch"] > 0).any()
    # the same sharding (8 devices, 8 slots) in both runs: the same numbers up to float rounding
    np.testing.assert_allclose(b[METRICS].astype(float), a[METRICS].astype(float), rtol=1e-5, atol=1e-7)
    ha = pd.read_csv(tmp_path / "one" / "history.csv").set_index(["member", "epoch"]).sort_index()
    hb = pd.read_csv(tmp_path / "two" / "history.csv").set_index(["member", "epoch"]).sort_index()
    assert ha.index.equals(hb.index)
    np.testing.assert_allclose(hb["val_mse"], ha["val_mse"], rtol=1e-5, atol=1e-7)
    # one writer: process 0 (the other process wrote no stray files)
    assert sorted(os.listdir(tmp_path / "two")) == sorted(os.listdir(tmp_path / "one"))
    # the checkpoints both processes wrote together are complete: every member's best
    # parameters (gathered from the devices of both processes) export and match
    member = int(a["stop_epoch"].idxmax())
    for run in ("one", "two"):
        checkpoint.export_member(str(tmp_path / run), member, str(tmp_path / f"m_{run}"))
    c = cfgmod.from_dict(json.loads((tmp_path / "one" / "config.json").read_text()))
    p1, p2 = (checkpoint.load_member(str(tmp_path / f"m_{run}"), c) for run in ("one", "two"))
    jax.tree.map(lambda x, y: np.testing.assert_allclose(y, x, rtol=1e-5, atol=1e-7), p1, p2)

    # a sweep cut short under 2 processes resumes in 1: drop every step after the
    # first segment's (population state sharded over both processes) and the results
    steps = sorted(int(d) for d in os.listdir(tmp_path / "two" / "checkpoints") if d.isdigit())
    assert len(steps) > 2
    for step in steps[1:]:
        shutil.rmtree(tmp_path / "two" / "checkpoints" / str(step))
    for name in RESULT_FILES:
        if os.path.exists(tmp_path / "two" / name):
            os.remove(tmp_path / "two" / name)
    again = subprocess.run(
        [*_sweep(tmp_path / "two"), *ARGS], cwd=ROOT, env=_env(8), capture_output=True, text=True, timeout=300
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resumed" in again.stderr
    c = pd.read_csv(tmp_path / "two" / "members.csv").set_index("member").sort_index()
    np.testing.assert_allclose(c[METRICS].astype(float), a[METRICS].astype(float), rtol=1e-5, atol=1e-7)
