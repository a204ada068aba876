"""Command-line entry point: ``jaxexp sweep|train --config=FILE --workdir=DIR``.

  jaxexp sweep --config=configs/quickstart.py --workdir=/tmp/qs
  jaxexp train --config=configs/quickstart.py --config.sweep.seeds=3 --workdir=/tmp/one
  python -m jaxexp.main sweep --config=configs/quickstart.py --config.train.epochs=5 --workdir=/tmp/qs5

Config files define ``get_config()`` (ml-collections); ``--config.a.b=value``
overrides a field, and a misspelt field is an error (the config is locked).
Without ``--config`` the packaged quickstart sweep runs.
"""

from __future__ import annotations

import os
import re
import sys

from absl import app, flags, logging
from ml_collections import config_flags

COMMANDS = ("sweep", "train", "export", "inspect")
_DEFAULT_CONFIG = os.path.join(os.path.dirname(__file__), "configs", "quickstart.py")


def _define_flags() -> None:
    # Defined on first use, not at import: config_flags loads the config file and
    # applies overrides while defining the flag, and those errors must be caught.
    if "config" in flags.FLAGS:
        return
    config_flags.DEFINE_config_file(
        "config", _DEFAULT_CONFIG, "Python config file with get_config().", lock_config=True
    )
    flags.DEFINE_string("workdir", None, "Directory for config.json, members.csv, history.csv, report.md.")
    flags.DEFINE_integer("member", None, "export: the member id whose best parameters are exported.")
    flags.DEFINE_string("out", None, "export: path of the member checkpoint to write (must not exist).")


def _fail(message: str) -> None:
    print(f"jaxexp: error: {message}", file=sys.stderr)
    sys.exit(2)


def main(argv: list[str]) -> None:
    logging.set_verbosity(logging.WARNING)  # orbax logs every save at INFO
    from jaxexp import engine
    from jaxexp.errors import ConfigError

    args = argv[1:]
    if not args or args[0] not in COMMANDS or len(args) != (2 if args[0] == "inspect" else 1):
        _fail(
            f"expected one command, {', '.join(COMMANDS)}, got {' '.join(args) or 'none'}; "
            "e.g. jaxexp sweep --config=configs/quickstart.py --workdir=DIR, jaxexp inspect PATH"
        )
    if args[0] in ("export", "inspect"):
        _checkpoint_command(args)
        return
    workdir = flags.FLAGS.workdir
    if not workdir:
        _fail("--workdir: missing; pass --workdir=DIR for the results")
    run = engine.sweep if args[0] == "sweep" else engine.train_config
    try:
        res = run(flags.FLAGS.config, workdir)
    except ConfigError as e:
        _fail(str(e))
    except KeyboardInterrupt:  # before training started (training itself returns partial results)
        _fail("interrupted before training started; nothing was written")
    if res.interrupted:
        n = int((res.members["status"] == "stopped").sum())
        resumable = " (the same command resumes)" if flags.FLAGS.config.engine.checkpoint else ""
        print(
            f"jaxexp: interrupted: wrote partial results to {workdir} ({n} member(s) stopped){resumable}",
            file=sys.stderr,
        )
        sys.exit(143 if res.timings.get("signal") == 15 else 130)
    try:
        best = res.best_member()
    except ValueError as e:  # every member diverged: a result, written and reported
        print(f"wrote {workdir}/report.md; {e}")
        return
    print(
        f"wrote {workdir}/report.md; best member {int(best['member'])}: "
        f"best {res.metric} = {best['best_' + res.metric]:.5g} at epoch {best['best_epoch']}"
    )


def _checkpoint_command(args: list[str]) -> None:
    import json

    from jaxexp import checkpoint
    from jaxexp.errors import ConfigError

    try:
        if args[0] == "inspect":
            print(json.dumps(checkpoint.inspect(args[1]), indent=2))
            return
        if not flags.FLAGS.workdir or flags.FLAGS.member is None or not flags.FLAGS.out:
            _fail("export: needs --workdir=DIR --member=ID --out=PATH")
        record = checkpoint.export_member(flags.FLAGS.workdir, flags.FLAGS.member, flags.FLAGS.out)
    except (ConfigError, checkpoint.CheckpointError, checkpoint.ArchitectureMismatchError) as e:
        _fail(str(e))
    print(f"wrote {flags.FLAGS.out}: member {flags.FLAGS.member}, fingerprint {record['fingerprint'][:16]}")


def _parse_flags(argv: list[str]) -> list[str]:
    """absl flag parsing, but config errors become one line and exit code 2."""
    try:
        _define_flags()
        rest = flags.FLAGS(argv)
        flags.FLAGS.config.get("name")  # a config file that failed to load raises here
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


def run() -> None:
    """The ``jaxexp`` console script."""
    app.run(main, flags_parser=_parse_flags)


if __name__ == "__main__":
    run()
