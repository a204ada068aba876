"""Stops and kills at the edges of a run (issue 16's campaign): a stop signal
while Python imports or the config loads, a kill -9 while the result files are
renamed into place, a lock file left empty by a kill."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from test_cli import ROOT, TINY

import jaxexp
from jaxexp import workdir as workdir_layout
from jaxexp.errors import ConfigError


def _start(wd, *extra):
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2")
    cmd = [sys.executable, "-m", "jaxexp.main", "sweep", f"--workdir={wd}", *TINY, *extra]
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_stop_signal_while_starting_up_is_one_line_and_writes_nothing(tmp_path, sig, code):
    wd = tmp_path / "wd"
    p = _start(wd)
    time.sleep(0.3)  # Python is importing jaxexp / JAX, or loading the config
    p.send_signal(sig)
    out, err = p.communicate(timeout=240)
    assert p.returncode == code, err
    assert "Traceback" not in err and "interrupted" in err
    assert len([ln for ln in err.splitlines() if ln.strip()]) == 1, err
    assert not (wd / "members.csv").exists()


def test_a_results_write_cut_short_by_a_kill_is_written_again(tiny, tmp_path):
    c = tiny()
    c.engine.checkpoint = True
    wd = tmp_path / "wd"
    first = jaxexp.sweep(c, str(wd))
    members_csv = (wd / "members.csv").read_text()
    phases = set(json.loads((wd / "timings.json").read_text()))  # every phase this run went through
    assert {"data_s", "checks_s", "segments_s", "checkpoint_s", "checkpoint_wait_s"} <= phases  # compile_s: once
    assert {"assemble_s", "files_s", "html_s", "total_s", "wall_s"} <= phases
    # what kill -9 between the renames leaves: some files moved, the rest in the temporary folder
    (wd / "report.md").unlink()
    (wd / "members.csv").unlink()
    os.makedirs(wd / f"{workdir_layout.WRITING_PREFIX}abc123")
    again = jaxexp.sweep(c, str(wd))  # the same command: rewrites the results from the final checkpoint
    assert (wd / "report.md").exists() and not workdir_layout.unfinished_writes(str(wd))
    assert (wd / "members.csv").read_text() == members_csv
    assert again.members["best_val_mse"].tolist() == first.members["best_val_mse"].tolist()
    with pytest.raises(ConfigError, match="holds a finished sweep"):  # a finished, fully written sweep
        jaxexp.sweep(c, str(wd))


def test_an_empty_lock_file_is_taken_over_only_once_it_is_old(tmp_path):
    wd = tmp_path / "wd"
    os.makedirs(wd)
    path = wd / workdir_layout.LOCK_FILE
    path.write_text("")  # an older version killed between creating and filling its lock
    with pytest.raises(ConfigError, match="is in use by process \\? on \\?"):
        with workdir_layout.lock(str(wd)):
            pass
    old = time.time() - 120
    os.utime(path, (old, old))
    notices = []
    with workdir_layout.lock(str(wd), notice=notices.append):
        held = json.loads(path.read_text())
        assert held["pid"] == os.getpid()
        assert [n for n in os.listdir(wd) if n.endswith(".tmp")] == []  # written whole, then linked in place
    assert notices == [f"taking over the stale lock of an unreadable lock file in {wd}"]
    assert not path.exists()
