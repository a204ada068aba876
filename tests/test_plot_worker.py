"""The plot helper process of ``jaxexp sweep`` (``jaxexp.run.plot_worker``): forked
before JAX, it draws the same PNG files the process would draw, and a helper that
is gone leaves the drawing to the process. Each case runs in its own interpreter
(the helper can only be forked before JAX is imported)."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(
    os.environ,
    PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.path.join(ROOT, "tests"), os.environ.get("PYTHONPATH")])),
)

SCRIPT = """
import os, signal, sys
from jaxexp.run import plot_worker
assert plot_worker.start() and plot_worker.running()
import jaxexp
from conftest import tiny_config
from jaxexp.run import plots
from jaxexp.search import space

c = tiny_config(train={"lr": space.choice([1e-2, 3e-2])})
c.task.name = "grouped"  # history.png, scatter.png (a regression) and groups.png
c.sweep.seeds = 2
if sys.argv[2] == "killed":  # the helper dies before the results are written
    os.kill(plot_worker._WORKER["process"].pid, signal.SIGKILL)
    plot_worker._WORKER["process"].join()
if sys.argv[2] == "failed":  # writing fails while the helper draws: it must be done before tmp goes
    from jaxexp.run import outputs

    real = outputs._tables_and_events

    def fail(*a):
        raise OSError("no space left")

    outputs._tables_and_events = fail
    try:
        jaxexp.sweep(c, workdir=os.path.join(sys.argv[1], "wd"))
        raise AssertionError("no error")
    except OSError:
        pass
    assert not plot_worker._WORKER["unread"] and plot_worker.running()
    assert not [n for n in os.listdir(os.path.join(sys.argv[1], "wd")) if n.startswith(".writing")]
    outputs._tables_and_events = real
    c.engine.overwrite = True
res = jaxexp.sweep(c, workdir=os.path.join(sys.argv[1], "wd"))
local = os.path.join(sys.argv[1], "local")
os.makedirs(local)
names = plots.write_all(res, local)  # the same plots drawn in this process
print("plots", ",".join(res.plots), "local", ",".join(names), "jobs", plot_worker._WORKER.get("jobs", 0))
"""


def _run(tmp_path, case):
    p = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path), case], capture_output=True, text=True, timeout=300, env=ENV
    )
    assert p.returncode == 0, p.stderr
    assert "Traceback" not in p.stderr, p.stderr
    return p.stdout.split()


@pytest.mark.parametrize("case", ["alive", "killed", "failed"])
def test_the_helper_draws_the_files_the_process_would_and_a_dead_one_is_replaced(tmp_path, case):
    out = _run(tmp_path, case)
    written, local, jobs = out[1].split(","), out[3].split(","), int(out[5])
    assert written == local == ["history.png", "scatter.png", "groups.png"]
    # killed: drawn by the process itself; failed: a first job, then the rerun's
    assert jobs == {"alive": 1, "killed": 0, "failed": 2}[case]
    for name in written:  # byte for byte: the same figures, the same matplotlib
        with open(tmp_path / "wd" / name, "rb") as a, open(tmp_path / "local" / name, "rb") as b:
            assert a.read() == b.read(), name


def test_no_helper_once_jax_is_imported():
    code = "import jax\nfrom jaxexp.run import plot_worker\nassert plot_worker.start() is False\nprint('ok')"
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=ENV)
    assert p.returncode == 0 and p.stdout.strip() == "ok", p.stderr
