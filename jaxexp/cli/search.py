"""``jaxexp sweep`` with ``sweep.strategy`` tpe or mutation, and ``jaxexp tree annotate``."""

from __future__ import annotations

from absl import flags

from jaxexp.cli import fail as _fail


def mutation_tree(config, workdir: str) -> None:
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
        f"{config.metric} {best['metric']:.5g} ({best['mutation'] or 'base config'}); record what a node showed: "
        f"jaxexp tree annotate --workdir={workdir} --node=N --observation=TEXT --verdict=supported|falsified"
    )


def tree(sub: str) -> None:
    """``jaxexp tree annotate --workdir=DIR [--node=N --observation=TEXT --verdict=V]``."""
    from jaxexp import tree_report
    from jaxexp.errors import ConfigError

    F = flags.FLAGS
    if sub != "annotate":
        _fail(f"tree: unknown subcommand {sub!r}; use jaxexp tree annotate --workdir=DIR --node=N ...")
    if not F.workdir:
        _fail("--workdir: missing; pass --workdir=DIR of the mutation tree")
    try:
        lineage = tree_report.annotate(F.workdir, F.node, F.observation, F.verdict)
    except ConfigError as e:
        _fail(str(e))
    done = int((lineage["verdict"] != "").sum())
    print(f"wrote {F.workdir}/lineage.md and lineage.csv; {done} of {len(lineage)} node(s) have a verdict")


def tpe(config, workdir: str) -> None:
    import jax

    from jaxexp import tpe

    trials = tpe.run(config, workdir)
    done = trials[trials["state"] == "COMPLETE"] if len(trials) else trials
    if jax.process_index() != 0 or done.empty:
        return
    best = done.loc[done["value"].idxmin() if config.goal == "min" else done["value"].idxmax()]
    print(f"wrote {workdir}/trials.csv; {len(done)} trial(s); best trial {int(best['number'])}: {best['value']:.5g}")
