"""Command-line entry point: ``jaxexp sweep|train --config=FILE --workdir=DIR``
and ``jaxexp blend --preds=FILE --metric=mae --step=0.01 --workdir=DIR``.

  jaxexp sweep --config=configs/quickstart.py --workdir=/tmp/qs
  jaxexp train --config=configs/quickstart.py --config.sweep.seeds=3 --workdir=/tmp/one
  python -m jaxexp.main sweep --config=configs/quickstart.py --config.train.epochs=5 --workdir=/tmp/qs5
  jaxexp blend --preds=preds.csv --metric=mae --step=0.01 --weights=50/30/20,53/27/20 --workdir=/tmp/bl
  jaxexp blend --demo --workdir=/tmp/demo        # the three-model plateau story of issue #6
  jaxexp analyze --workdir=/tmp/qs                # statistics, elites, boundary hits, next_space.yaml
  jaxexp analyze --table=trials.csv --metric=value --goal=min [--space=space.yaml]
  jaxexp validate configs/space_v3.yaml           # a space file (on --config, default the quickstart)
  jaxexp validate configs/quickstart.py --config.sweep.method=random  # a config file's sweep
  jaxexp blend --help                             # one command's flags (also -h, jaxexp help blend)

Config files define ``get_config()`` (ml-collections); ``--config.a.b=value``
overrides a field, and a misspelt field is an error (the config is locked).
Without ``--config`` the packaged quickstart sweep runs.
"""

from __future__ import annotations

import os
import re
import signal
import sys

from absl import app, flags, logging
from ml_collections import config_flags

from jaxexp import cli_flags

COMMANDS = ("sweep", "train", "export", "inspect", "blend", "validate", "analyze")
_HELP_FLAGS = ("--help", "-h", "--helpshort", "-?")


def _define_flags() -> None:
    # Defined on first use, not at import: config_flags loads the config file and
    # applies overrides while defining the flag, and those errors must be caught.
    cli_flags.define_command_flags()
    if "config" in flags.FLAGS:
        return
    config_flags.DEFINE_config_file("config", cli_flags.DEFAULT_CONFIG, cli_flags.CONFIG_HELP, lock_config=True)


def _fail(message: str) -> None:
    print(f"jaxexp: error: {message}", file=sys.stderr)
    sys.exit(2)


def main(argv: list[str]) -> None:
    logging.set_verbosity(logging.WARNING)  # orbax logs every save at INFO
    import jax

    from jaxexp import api, checkpoint, resume, timing
    from jaxexp.errors import ConfigError

    args = argv[1:]
    if not args or args[0] not in COMMANDS or len(args) != (2 if args[0] in ("inspect", "validate") else 1):
        _fail(
            f"expected one command, {', '.join(COMMANDS)}, got {' '.join(args) or 'none'}; "
            "e.g. jaxexp sweep --config=configs/quickstart.py --workdir=DIR, jaxexp inspect PATH, "
            "jaxexp validate FILE"
        )
    if args[0] == "validate":
        _validate(args[1])
        return
    if args[0] in ("export", "inspect"):
        _checkpoint_command(args)
        return
    if args[0] == "analyze":
        _analyze()
        return
    workdir = flags.FLAGS.workdir
    if not workdir:
        _fail("--workdir: missing; pass --workdir=DIR for the results")
    if args[0] == "blend":
        _blend(workdir)
        return
    run = api.sweep if args[0] == "sweep" else api.train_config
    timing.FROM_PROCESS_START["on"] = True  # timings.json: wall time from process start
    F = flags.FLAGS
    try:
        if F.distributed:
            from jaxexp import distributed

            distributed.initialize(F.coordinator_address, F.num_processes, F.process_id)
            if distributed.is_primary():
                print(
                    f"jaxexp: {len(jax.devices())} devices in {jax.process_count()} processes",
                    file=sys.stderr,
                    flush=True,
                )
        elif F.coordinator_address or F.num_processes or F.process_id >= 0:
            _fail("--coordinator_address/--num_processes/--process_id: need --distributed")
        if F.config.sweep.strategy == "mutation":
            _mutation_tree(F.config, workdir)
            return
        if F.config.sweep.strategy == "tpe":
            _tpe(F.config, workdir)
            return
        res = run(flags.FLAGS.config, workdir)
    except (ConfigError, checkpoint.CheckpointError, checkpoint.ArchitectureMismatchError) as e:
        _fail(str(e))  # e.g. a checkpoint of another architecture: refused with the named diff
    except resume.StoppedAfterWriting as e:
        print(
            f"jaxexp: {signal.Signals(e.signum).name}: stopped after writing the results to {workdir}", file=sys.stderr
        )
        sys.exit(143 if e.signum == signal.SIGTERM else 130)
    except KeyboardInterrupt:  # before training started (training itself returns partial results)
        _fail("interrupted before training started; nothing was written")
    if jax.process_index() != 0:  # process 0 reports
        return
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


def _mutation_tree(config, workdir: str) -> None:
    import jax

    from jaxexp import mutation

    lineage = mutation.run(config, workdir)
    if jax.process_index() != 0 or lineage.empty:
        return
    ok = lineage[lineage["status"] == "ok"]
    if ok.empty:
        print(f"wrote {workdir}/lineage.md; every node failed")
        return
    best = ok.loc[ok["metric"].idxmin() if config.goal == "min" else ok["metric"].idxmax()]
    print(
        f"wrote {workdir}/lineage.md; {len(lineage)} nodes; best node {int(best['node'])}: "
        f"{config.metric} {best['metric']:.5g} ({best['mutation'] or 'base config'})"
    )


def _tpe(config, workdir: str) -> None:
    import jax

    from jaxexp import tpe

    trials = tpe.run(config, workdir)
    done = trials[trials["state"] == "COMPLETE"] if len(trials) else trials
    if jax.process_index() != 0 or done.empty:
        return
    best = done.loc[done["value"].idxmin() if config.goal == "min" else done["value"].idxmax()]
    print(f"wrote {workdir}/trials.csv; {len(done)} trial(s); best trial {int(best['number'])}: {best['value']:.5g}")


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


def _blend(workdir: str) -> None:
    from jaxexp.blending import api, demo
    from jaxexp.blending.stats import fmt_w
    from jaxexp.errors import ConfigError

    F = flags.FLAGS
    preds, weights, clip, round_to, compare = F.preds, F.weights, F.clip, F.round, F.compare
    if F.demo:
        if preds:
            _fail("--demo: the demo brings its own data; drop --preds")
        preds = demo.demo_data()
        weights = weights or demo.WEIGHTS
        clip = clip if clip is not None else demo.CLIP
        round_to = round_to or demo.ROUND_TO
        compare = compare or demo.COMPARE
    elif not F.preds:
        _fail("--preds: missing; pass --preds=FILE.csv|FILE.npz (or --demo)")
    try:
        df = api.blend(
            preds,
            metric=F.metric,
            step=F.step or None,
            weights=weights,
            target=F.target,
            models=F.models,
            row_weights=F.row_weights,
            groups=F.groups,
            folds=F.folds,
            n_folds=F.n_folds,
            nonneg=F.nonneg,
            sum_to_one=F.sum_to_one,
            bounds=F.bounds,
            clip=clip,
            round_to=round_to,
            eps=F.eps,
            decimals=F.decimals,
            n_boot=F.n_boot,
            top_k=F.top_k,
            compare=compare,
            seed=F.seed,
            dtype=F.dtype,
            memory_budget=F.memory_mb << 20,
            max_points=F.max_points,
            milp_time_limit=F.milp_time_limit,
            milp_max_rows=F.milp_max_rows,
            workdir=workdir,
            overwrite=F.overwrite,
            scores=F.scores,
        )
    except ConfigError as e:
        _fail(str(e))
    except KeyboardInterrupt:
        _fail("interrupted; nothing was written")
    s = df.attrs["summary"]
    parts = [f"wrote {workdir}/report.md"]
    if "grid_best" in s:
        parts.append(f"grid best {fmt_w(s['grid_best']['w'])}: {s['metric']} {s['grid_best']['score']:.7g}")
        parts.append(f"{s['plateau']['exact_ties']} exact tie(s)")
    if s["exact"].get("w") is not None:
        parts.append(f"exact optimum {fmt_w(s['exact']['w'])}: {s['exact']['score']:.7g}")
    if s.get("crossfit"):
        parts.append(s["crossfit"]["verdict"])
    print("; ".join(parts))


def _analyze() -> None:
    from jaxexp import analysis
    from jaxexp.errors import ConfigError

    F = flags.FLAGS
    if bool(F.workdir) == bool(F.table):
        _fail("analyze: pass one of --workdir=DIR (a jaxexp sweep) or --table=FILE.csv --metric=NAME --goal=min|max")
    metric = F.metric if F["metric"].present else None  # its default belongs to blend
    if F.workdir and (metric or F.goal or F.space):
        _fail("--workdir: metric, goal and space come from the sweep's config; drop --metric/--goal/--space")
    try:
        if F.workdir:
            src = analysis.load_workdir(F.workdir)
        else:
            src = analysis.load_table(F.table, metric, F.goal, F.space)
        a = analysis.analyze_source(src, F.elite_quantile)
        out = F.out or src.default_out
        analysis.write(a, out)
    except ConfigError as e:
        _fail(str(e))
    actions = a.changes["action"].value_counts().to_dict()
    print(
        f"wrote {out}/report.md and next_space.yaml: {a.counts['configurations']} configurations, "
        f"{a.counts['elites']} elites; " + ", ".join(f"{n} {k}" for k, n in actions.items())
    )


def _validate(path: str) -> None:
    """``jaxexp validate FILE``: prints the sweep's space, configurations and static
    buckets (exit 0), or one ``jaxexp: error:`` line per error found (exit 2).

    FILE is a .yaml space file (applied to --config, by default the packaged
    quickstart, as ``--config.sweep.space_file=FILE`` would be) or a .py config
    file (loaded as ``--config=FILE`` by ``_parse_flags``, so overrides apply).
    """
    from jaxexp import validate

    config = flags.FLAGS.config
    source = flags.FLAGS["config"].config_filename
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


def _validate_argv(argv: list[str]) -> list[str]:
    """``validate FILE.py`` loads FILE.py as --config (so --config.x=y overrides apply to it)."""
    positional = [a for a in argv[1:] if not a.startswith("-")]
    if positional[:1] != ["validate"] or len(positional) != 2 or not positional[1].endswith(".py"):
        return argv
    if any(a == "--config" or a.startswith("--config=") for a in argv):
        _fail("validate: give the .py config as FILE or as --config=FILE, not both")
    return [argv[0], f"--config={positional[1]}", *argv[1:]]


def _parse_flags(argv: list[str]) -> list[str]:
    """absl flag parsing, but config errors become one line and exit code 2."""
    rewritten = _validate_argv(argv)
    if rewritten is not argv:
        sys.argv[:] = argv = rewritten  # config_flags reads its overrides from sys.argv
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
    from jaxexp import cpu

    cpu.use_all_cores()  # before JAX starts
    app.run(main, flags_parser=_parse_flags)


if __name__ == "__main__":
    run()
