"""``jaxexp --help``, ``jaxexp CMD --help|-h`` and ``jaxexp help CMD``: in-process through
``main.run`` (the console script), plus one subprocess for the no-JAX, no-files claim."""

import os
import subprocess
import sys

import pytest
from absl import flags

from jaxexp import cli_flags, main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])))
SWEEP_ONLY = ("--config", "--[no]distributed", "--coordinator_address", "--num_processes", "--process_id")


def _run(monkeypatch, capsys, *args):
    monkeypatch.setattr(sys, "argv", ["jaxexp", *args])
    try:
        main.run()
        rc = 0
    except SystemExit as e:
        rc = e.code
    out, err = capsys.readouterr()
    return rc, out, err


def _flags_listed(out: str) -> set[str]:
    return {line.split("=")[0].strip() for line in out.splitlines() if line.startswith("  --")}


def test_top_level_help_lists_every_command(monkeypatch, capsys):
    for args in ([], ["--help"], ["-h"], ["help"]):
        rc, out, _ = _run(monkeypatch, capsys, *args)
        assert rc == 0
        listed = [line.split()[0] for line in out.splitlines() if line.startswith("  ")]
        assert sorted(listed) == sorted(main.COMMANDS)
        assert {"sweep", "blend", "analyze", "validate"} <= set(listed)
        assert "jaxexp CMD --help" in out


def test_blend_help_lists_blend_flags_only(monkeypatch, capsys):
    outs = [_run(monkeypatch, capsys, *args) for args in (["blend", "--help"], ["blend", "-h"], ["help", "blend"])]
    assert all(rc == 0 for rc, _, _ in outs)
    assert outs[0][1] == outs[1][1] == outs[2][1]
    out = outs[0][1]
    assert out.startswith("usage: jaxexp blend ")
    assert cli_flags.COMMAND_HELP["blend"] in out
    listed = _flags_listed(out)
    assert {"--weights", "--step", "--preds", "--metric", "--workdir", "--[no]nonneg", "--n_boot"} <= listed
    assert not listed & set(SWEEP_ONLY) and "--member" not in listed and "--table" not in listed
    # docs and defaults come from absl's registry: blend's own part of the doc, prefix dropped
    assert "      simplex grid step (0 = only --weights). (default: 0.01)" in out
    assert "(default: 'mae')" in out and "(default: true)" in out  # --metric, --nonneg
    assert "  --n_folds=INT\n" in out and "  --step=FLOAT\n" in out


def test_sweep_help_has_workdir_config_and_overrides(monkeypatch, capsys):
    rc, out, _ = _run(monkeypatch, capsys, "sweep", "--help")
    assert rc == 0
    listed = _flags_listed(out)
    assert listed == {"--config", "--workdir", *SWEEP_ONLY}
    assert "--config.train.lr=0.01" in out and "--config.sweep.strategy=" in out
    assert "the packaged jaxexp/configs/quickstart.py" in out
    assert "--weights" not in out and "--preds" not in out


def test_analyze_help_shows_each_shared_flag_for_analyze(monkeypatch, capsys):
    rc, out, _ = _run(monkeypatch, capsys, "--table=x.csv", "analyze", "-h")  # flags before the command too
    assert rc == 0
    assert _flags_listed(out) == {
        "--workdir",
        "--table",
        "--metric",
        "--goal",
        "--space",
        "--elite_quantile",
        "--out",
        "--params",
        "--id",
        "--seed",
        "--limits",
    }
    assert "--table: the table's metric column. (default: not set)" in out  # blend's default is not analyze's
    assert "output folder" in out and "checkpoint" not in out  # --out: analyze's part only
    assert "mae" not in out


@pytest.mark.parametrize("command", main.COMMANDS)
def test_every_command_has_help(monkeypatch, capsys, command):
    rc, out, err = _run(monkeypatch, capsys, command, "--help")
    assert rc == 0 and not err
    assert f"usage: jaxexp {command}" in out
    assert len(_flags_listed(out)) == len(cli_flags.COMMAND_FLAGS[command])


@pytest.mark.parametrize("args", [["help", "XYZ"], ["help", "blend", "sweep"], ["XYZ", "--help"]])
def test_unknown_command_is_one_line_exit_2(monkeypatch, capsys, args):
    rc, out, err = _run(monkeypatch, capsys, *args)
    assert rc == 2 and not out
    assert len(err.strip().splitlines()) == 1 and err.startswith("jaxexp: error: ")
    assert all(c in err for c in main.COMMANDS)


def test_mapping_covers_every_flag_jaxexp_defines():
    assert set(cli_flags.COMMAND_FLAGS) == set(cli_flags.COMMAND_HELP) == set(cli_flags.COMMAND_USAGE)
    assert set(cli_flags.COMMAND_HELP) == set(main.COMMANDS)
    main._define_flags()  # every flag, --config included
    defined = {
        f.name for module, fl in flags.FLAGS.flags_by_module_dict().items() if module.startswith("jaxexp") for f in fl
    }
    assert "config" in defined and "preds" in defined and "elite_quantile" in defined
    listed = {name for names in cli_flags.COMMAND_FLAGS.values() for name in names}
    assert defined - listed == set(), "flags no command lists in cli_flags.COMMAND_FLAGS"
    assert listed - defined == set(), "COMMAND_FLAGS names flags jaxexp does not define"
    for command, defaults in cli_flags.COMMAND_DEFAULTS.items():
        assert set(defaults) <= set(cli_flags.COMMAND_FLAGS[command])


def test_help_imports_no_jax_and_writes_nothing(tmp_path):
    code = (
        "import sys; from jaxexp import main\n"
        "for args in (['blend', '--help'], ['sweep', '-h'], ['help', 'validate'], ['--help']):\n"
        "    sys.argv = ['jaxexp', *args]; main.run()\n"
        "assert 'jax' not in sys.modules, 'help imported jax'\n"
    )
    p = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env=ENV,
    )
    assert p.returncode == 0, p.stderr
    assert "flags of jaxexp blend:" in p.stdout and "flags of jaxexp sweep:" in p.stdout
    assert list(tmp_path.iterdir()) == []
    p = subprocess.run(
        [sys.executable, "-m", "jaxexp.main", "blend", "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env=ENV,
    )
    assert p.returncode == 0 and "--weights=TEXT" in p.stdout and "--workdir=TEXT" in p.stdout
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "code, rc, out, err",
    [
        ("3", 3, "piped text|atexit ran", ""),
        ("None", 0, "piped text|atexit ran", ""),
        ("'bad: x'", 1, "piped text|atexit ran", "bad: x"),
    ],
)
def test_the_console_script_ends_without_teardown_but_keeps_exit_code_output_and_atexit(code, rc, out, err):
    # with JAX loaded, main._exit skips the interpreter's module teardown (os._exit); the
    # exit code, the piped (block-buffered) output and the atexit handlers must survive
    script = (
        "import atexit, sys\n"
        "import jax\n"
        "from jaxexp import main\n"
        "atexit.register(lambda: print('|atexit ran', end=''))\n"
        "print('piped text', end='')\n"
        f"main._exit({code})\n"
        "print('not reached')\n"
    )
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=ENV)
    assert (p.returncode, p.stdout, p.stderr.strip()) == (rc, out, err)
