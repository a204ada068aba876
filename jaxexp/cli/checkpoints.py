"""``jaxexp export`` and ``jaxexp inspect``: one member's checkpoint."""

from __future__ import annotations

from absl import flags

from jaxexp.cli import fail as _fail


def run(args: list[str]) -> None:
    import json

    from jaxexp.errors import ConfigError
    from jaxexp.run import checkpoint

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
