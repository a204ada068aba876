"""Command-line entry point: ``jaxexp sweep|train --config=FILE --workdir=DIR``
and ``jaxexp blend --preds=FILE --metric=mae --step=0.01 --workdir=DIR``.

  jaxexp sweep --config=configs/quickstart.py --workdir=/tmp/qs
  jaxexp train --config=configs/quickstart.py --config.sweep.seeds=3 --workdir=/tmp/one
  python -m jaxexp.main sweep --config=configs/quickstart.py --config.train.epochs=5 --workdir=/tmp/qs5
  jaxexp blend --preds=preds.csv --metric=mae --step=0.01 --weights=50/30/20,53/27/20 --workdir=/tmp/bl
  jaxexp blend --demo --workdir=/tmp/demo        # the three-model plateau story of issue #6
  jaxexp analyze --workdir=/tmp/qs                # statistics, elites, boundary hits, next_space.yaml
  jaxexp analyze --table=trials.csv --metric=value --goal=min [--space=space.yaml]
  jaxexp validate configs/space_v3.yaml           # a space file of any project (--config=CFG: names too)
  jaxexp validate configs/quickstart.py --config.sweep.method=random  # a config file's sweep
  jaxexp blend --help                             # one command's flags (also -h, jaxexp help blend)

Config files define ``get_config()`` (ml-collections); ``--config.a.b=value``
overrides a field, and a misspelt field is an error (the config is locked).
Without ``--config`` the packaged quickstart sweep runs.
"""

from __future__ import annotations

import atexit
import os
import re
import signal
import sys

from absl import app, flags, logging
from ml_collections import config_flags

from jaxexp import cli_flags
from jaxexp.cli import fail as _fail
from jaxexp.run import stop

COMMANDS = ("sweep", "train", "export", "inspect", "blend", "validate", "analyze", "tree")
_HELP_FLAGS = ("--help", "-h", "--helpshort", "-?")


def _define_flags() -> None:
    # Defined on first use, not at import: config_flags loads the config file and
    # applies overrides while defining the flag, and those errors must be caught.
    cli_flags.define_command_flags()
    if "config" in flags.FLAGS:
        return
    config_flags.DEFINE_config_file("config", cli_flags.DEFAULT_CONFIG, cli_flags.CONFIG_HELP, lock_config=True)


def main(argv: list[str]) -> None:
    logging.set_verbosity(logging.WARNING)  # orbax logs every save at INFO
    stop.check()  # a stop signal while starting up
    import jax

    from jaxexp import api
    from jaxexp.errors import ConfigError
    from jaxexp.run import checkpoint, resume, timing
    from jaxexp.search import loop

    stop.check()  # a stop signal while JAX imported
    stop.arm()  # from here on a stop signal raises KeyboardInterrupt at once (training: graceful)
    args = argv[1:]
    if not args or args[0] not in COMMANDS or len(args) != (2 if args[0] in ("inspect", "validate", "tree") else 1):
        _fail(
            f"expected one command, {', '.join(COMMANDS)}, got {' '.join(args) or 'none'}; "
            "e.g. jaxexp sweep --config=configs/quickstart.py --workdir=DIR, jaxexp inspect PATH, "
            "jaxexp validate FILE"
        )
    if args[0] == "validate":
        from jaxexp.cli import validate

        validate.run(args[1])
        return
    if args[0] in ("export", "inspect"):
        from jaxexp.cli import checkpoints

        checkpoints.run(args)
        return
    if args[0] == "analyze":
        from jaxexp.cli import analyze

        analyze.run()
        return
    if args[0] == "tree":
        from jaxexp.cli import tree

        tree.run(args[1])
        return
    workdir = flags.FLAGS.workdir
    if not workdir:
        _fail("--workdir: missing; pass --workdir=DIR for the results")
    if args[0] == "blend":
        from jaxexp.cli import blend

        blend.run(workdir)
        return
    timing.FROM_PROCESS_START["on"] = True  # timings.json: wall time from process start
    F = flags.FLAGS
    config = F.config if args[0] == "sweep" else api.base_config(F.config)  # train: the base config only
    try:
        _distributed(F)
        strategy = loop.drive(config, workdir)  # the same loop as jaxexp.sweep(config, workdir)
    except (ConfigError, checkpoint.CheckpointError, checkpoint.ArchitectureMismatchError) as e:
        _fail(str(e))  # e.g. a checkpoint of another architecture: refused with the named diff
    except OSError as e:  # a full disk: one line, exit 1 (not 2: the input was fine; the same command resumes)
        _disk_full(e, workdir)
    except resume.StoppedAfterWriting as e:
        print(
            f"jaxexp: {signal.Signals(e.signum).name}: stopped after writing the results to {workdir}", file=sys.stderr
        )
        sys.exit(143 if e.signum == signal.SIGTERM else 130)
    except KeyboardInterrupt as e:  # before a population trained (training itself returns partial results)
        done = getattr(e, "generations_done", 0)
        kept = f"the {done} finished generation(s) are written; the same command continues" if done else ""
        print(f"jaxexp: interrupted before training started; {kept or 'nothing was written'}", file=sys.stderr)
        sys.exit(stop.exit_code())
    if jax.process_index() != 0:  # process 0 reports
        return
    if strategy.interrupted is not None:
        print(strategy.stopped(), file=sys.stderr)
        sys.exit(143 if strategy.interrupted.stopped_by == 15 else 130)
    try:
        stop.check()  # a signal after training (while the results were assembled): they are written
        line = strategy.summary()
        if line:
            print(line)
    except KeyboardInterrupt:
        print(f"jaxexp: interrupted; the results are written to {workdir}", file=sys.stderr)
        sys.exit(stop.exit_code())


def _distributed(F) -> None:
    """Joins a multi-process run (``--distributed``); the coordinator flags need it."""
    import jax

    if F.distributed:
        from jaxexp.run import distributed

        distributed.initialize(F.coordinator_address, F.num_processes, F.process_id)
        if distributed.is_primary():
            print(
                f"jaxexp: {len(jax.devices())} devices in {jax.process_count()} processes", file=sys.stderr, flush=True
            )
    elif F.coordinator_address or F.num_processes or F.process_id >= 0:
        _fail("--coordinator_address/--num_processes/--process_id: need --distributed")


def _disk_full(e: OSError, workdir: str) -> None:
    """A full disk: one line and exit 1 (re-raises any other OSError)."""
    import os

    from jaxexp.run import diskfull

    if not diskfull.is_disk_full(e):
        raise e
    print(f"jaxexp: error: {diskfull.of(e, workdir)}", file=sys.stderr, flush=True)
    sys.stdout.flush()
    # the lock is released; a failed save's threads are abandoned, not joined and heard at
    # interpreter exit (the next run removes their temporary folder)
    os._exit(1)


def _parse_flags(argv: list[str]) -> list[str]:
    """absl flag parsing, but config errors become one line and exit code 2."""
    from jaxexp.cli import validate

    rewritten = validate.rewrite_argv(argv)
    if rewritten is not argv:
        sys.argv[:] = argv = rewritten  # config_flags reads its overrides from sys.argv
    try:
        _define_flags()
        rest = flags.FLAGS(argv)
        flags.FLAGS.config.get("name")  # a config file that failed to load raises here
        validate.note_overrides()
        return rest
    except Exception as e:  # noqa: BLE001 - config files can raise anything
        _fail(_one_line(e, argv))


def _one_line(e: BaseException, argv: list[str]) -> str:
    msg = str(e)
    if isinstance(e, (KeyError, AttributeError)):  # a locked config refused an unknown field
        key = re.search(r"\\?'(\w+)\\?'", msg)
        key = key.group(1) if key else "?"
        hint = re.search(r'Did you mean "(\w+)"', msg)
        flag = next((a.split("=")[0] for a in argv if a.startswith("--config.") and f".{key}" in a), "--config")
        did = f'; did you mean "{hint.group(1)}"?' if hint else ""
        return f"{flag}: no config field {key!r}{did} (the config is locked: fields cannot be added)"
    msg = msg.replace("Configuration is not available because of an earlier failure to load: ", "")
    msg = " ".join(ln.strip() for ln in msg.splitlines() if ln.strip())
    return f"--config: {msg}" if "config file" in msg else msg


def _help_command(args: list[str]) -> str | None:
    """The command of ``jaxexp CMD --help|-h`` or ``jaxexp help CMD``; "" for help with
    no command; None when no help is asked for. An unknown command: one line, exit 2."""
    positional = [a for a in args if not a.startswith("-")]
    if positional[:1] == ["help"]:
        if len(positional) == 1 or (len(positional) == 2 and positional[1] in COMMANDS):
            return positional[1] if len(positional) == 2 else ""
        asked = f"unknown command {positional[1]!r}" if len(positional) == 2 else "one command at a time"
        _fail(f"help: {asked}; the commands: {', '.join(COMMANDS)} (jaxexp help CMD)")
    if not any(a in _HELP_FLAGS for a in args):
        return None
    command = next((a for a in positional if a in COMMANDS), None)
    if command is None and positional:
        _fail(f"unknown command {positional[0]!r}; the commands: {', '.join(COMMANDS)} (jaxexp CMD --help)")
    return command or ""


def run() -> None:
    """The ``jaxexp`` console script."""
    args = sys.argv[1:]
    command = _help_command(args) if args else ""
    if command is not None:  # help: printed from the flag registry; no JAX, nothing written
        if command:
            cli_flags.define_command_flags()
        print(cli_flags.command_help(command) if command else cli_flags.usage())
        return
    from jaxexp.run import cpu

    if next((a for a in args if not a.startswith("-")), None) == "sweep":
        from jaxexp.run import plot_worker

        plot_worker.start()  # draws the plots beside the run: forked before JAX starts
    cpu.use_all_cores()  # before JAX starts
    stop.install()  # a stop signal before training: one line, 130/143 (see jaxexp.run.stop)
    try:
        app.run(main, flags_parser=_parse_flags)
    except KeyboardInterrupt:  # while importing or loading the config
        print("jaxexp: interrupted; nothing was written", file=sys.stderr)
        sys.exit(stop.exit_code())
    except SystemExit as e:  # app.run always ends here
        _exit(e.code)


def _exit(code) -> None:
    """Ends the command with ``code`` (SystemExit's: None, an int, or a message).

    With JAX loaded, Python's own teardown of the interpreter (destroying every
    module of JAX, XLA, pandas, orbax, matplotlib) takes ~0.4 s, 3% of a 192-run
    sweep, after the last file is written: the atexit handlers run (logging,
    TensorBoard writers, JAX's distributed client), the streams are flushed, and the
    process ends. Without JAX, with a thread still running, or under a profiler or
    tracer (cProfile, a debugger: they write their output after ``run`` returns),
    Python exits as usual.
    """
    import threading

    watched = sys.getprofile() is not None or sys.gettrace() is not None
    if "jax" not in sys.modules or threading.active_count() > 1 or watched:
        sys.exit(code)
    if code is not None and not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code or 0)


if __name__ == "__main__":
    run()
