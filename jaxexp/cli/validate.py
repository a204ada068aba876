"""``jaxexp validate``: a space file or a config's sweep, checked before anything runs."""

from __future__ import annotations

import os
import sys

from absl import flags

from jaxexp.cli import fail as _fail


def run(path: str) -> None:
    """``jaxexp validate FILE``: prints the sweep's space, configurations and static
    buckets (exit 0), or one ``jaxexp: error:`` line per error found (exit 2).

    FILE is a .yaml space file or a .py config file (loaded as ``--config=FILE`` by
    ``_parse_flags``, so overrides apply). A space file alone is the space of any
    project (``validate.describe_file``: its names are not checked); with
    ``--config=CFG`` (or ``--config.FIELD=VALUE`` overrides of the packaged
    quickstart) it is applied to that config, as ``--config.sweep.space_file=FILE``
    would be, and its names are checked against the config or workload.
    """
    from jaxexp.search import validate

    config = flags.FLAGS.config
    source = flags.FLAGS["config"].config_filename
    if path.endswith((".yaml", ".yml")) and not _config_given():
        lines, errors = validate.describe_file(path)
        for message in errors:
            print(f"jaxexp: error: {message}", file=sys.stderr)
        if errors:
            sys.exit(2)
        print("\n".join(lines))
        return
    if path.endswith((".yaml", ".yml")):
        config.sweep.space_file = path
    elif not path.endswith(".py"):
        _fail(f"validate: {path} is neither a .yaml space file nor a .py config file")
    lines, errors = validate.describe(config, os.path.relpath(source) if os.path.isabs(source) else source)
    for message in errors:
        print(f"jaxexp: error: {message}", file=sys.stderr)
    if errors:
        sys.exit(2)
    print("\n".join(lines))


def _config_given() -> bool:
    """Whether the command line named a config: --config=FILE or a --config.FIELD override."""
    return bool(_explicit_flags())


def _explicit_flags() -> list[str]:
    return [name for name in flags.FLAGS if name.split(".")[0] == "config" and flags.FLAGS[name].present]


def note_overrides() -> None:
    """The fields given as --config.FIELD=VALUE: a space (file) may not silently replace them."""
    from jaxexp.search import spacefile

    spacefile.CLI_OVERRIDES = frozenset(name[len("config.") :] for name in _explicit_flags() if "." in name)


def rewrite_argv(argv: list[str]) -> list[str]:
    """``validate FILE.py`` loads FILE.py as --config (so --config.x=y overrides apply to it)."""
    positional = [a for a in argv[1:] if not a.startswith("-")]
    if positional[:1] != ["validate"] or len(positional) != 2 or not positional[1].endswith(".py"):
        return argv
    if any(a == "--config" or a.startswith("--config=") for a in argv):
        _fail("validate: give the .py config as FILE or as --config=FILE, not both")
    return [argv[0], f"--config={positional[1]}", *argv[1:]]
