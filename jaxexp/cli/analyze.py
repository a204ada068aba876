"""``jaxexp analyze``: the command-line face of ``jaxexp.analyze``."""

from __future__ import annotations

from absl import flags

from jaxexp.cli import fail as _fail


def run() -> None:
    from jaxexp import analysis
    from jaxexp.errors import ConfigError

    F = flags.FLAGS
    if bool(F.workdir) == bool(F.table):
        _fail("analyze: pass one of --workdir=DIR (a jaxexp sweep) or --table=FILE.csv --metric=NAME --goal=min|max")
    metric = F.metric if F["metric"].present else None  # its default belongs to blend
    seed = str(F.seed) if F["seed"].present else None  # its default (an integer) belongs to blend
    if F.workdir and (metric or F.goal or F.space):
        _fail("--workdir: metric, goal and space come from the sweep's config; drop --metric/--goal/--space")
    if F.workdir and (F.params or F.id or seed):
        _fail("--workdir: parameters, ids and seeds come from the sweep's config; drop --params/--id/--seed")
    try:
        limits = analysis.parse_limits(F.limits)
        if F.workdir:
            src = analysis.load_workdir(F.workdir)
        else:
            src = analysis.load_table(F.table, metric, F.goal, F.space, params=F.params, ids=F.id, seeds=seed)
        a = analysis.analyze_source(src, F.elite_quantile, limits)
        out = F.out or src.default_out
        analysis.write(a, out)
    except ConfigError as e:
        _fail(str(e))
    actions = a.changes["action"].value_counts().to_dict()
    print(
        f"wrote {out}/report.md and next_space.yaml: {a.counts['configurations']} configurations, "
        f"{a.counts['elites']} elites; " + ", ".join(f"{n} {k}" for k, n in actions.items())
    )
