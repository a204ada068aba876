"""``jaxexp tree annotate`` (a mutation tree's observations and verdicts)."""

from __future__ import annotations

from absl import flags

from jaxexp.cli import fail as _fail


def run(sub: str) -> None:
    """``jaxexp tree annotate --workdir=DIR [--node=N --observation=TEXT --verdict=V]``."""
    from jaxexp.errors import ConfigError
    from jaxexp.search import tree_report

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
