"""Mutation-tree exploration: each generation mutates parents into new nodes.

A *node* is one configuration (run for ``sweep.seeds`` seeds). Generation 0 is
the base config (node 0). Each later generation (a *batch*) has ``sweep.slots``
nodes. A plan file (``sweep.plan``, ``jaxexp.search.tree_plan``) may fix, for the first
batch a command runs, each slot's parent, mutation (one or several parameters,
values or factors), hypothesis and target (other config fields); the other slots
follow the automatic rule (``jaxexp.search.tree_batch``): a parent from the
``sweep.parent_pool`` best ok nodes (round robin; ``sweep.parent_ids`` for the
first batch a command runs), the parameters its hypothesis names a direction for
moved that way, else one random parameter, with the hypothesis recorded as not
tested. A generation runs as one population (``runner.run_members``).

The parameters that may mutate, and their bounds, are those of ``sweep.space``:
a choice takes another of its values; log-scaled ranges multiply or divide by
``sweep.mutation_scale``; linear ranges move by a quarter of the range (integers
and quantised values by at least one step); every value stays in its range.

``lineage.csv`` has one row per node (``LINEAGE_COLUMNS``: id, parent,
generation, slot, mutation ``param: old -> new; ...``, hypothesis, how the
hypothesis was tested, target, the selection metric with its std and status,
the seeds that finished, the user's observation and verdict), then the mean and
std over seeds of every ``best_*``/``final_*`` metric, then the parameters and
target fields. ``lineage.md`` is the log (``jaxexp.search.tree_report``). With a workdir
every generation is a complete sweep workdir ``gen_<g>/`` (checkpointed and
resumable), and running the command again continues the tree up to
``sweep.generations``.
"""

from __future__ import annotations

import math
import os
import zlib

import ml_collections
import numpy as np
import pandas as pd

from jaxexp import config as cfgmod
from jaxexp.errors import ConfigError
from jaxexp.search import loop, spacefile, strategies, tree_batch, tree_plan, tree_report
from jaxexp.search.protocol import Generation, Strategy
from jaxexp.search.tree_batch import NOT_TESTED, _fmt, _key, _mutate, _step  # noqa: F401 (jaxexp.search.mutation's names)

LINEAGE_COLUMNS = [
    "node",
    "parent",
    "generation",
    "slot",
    "mutation",
    "hypothesis",
    "hypothesis_test",
    "target",
    "metric",
    "metric_std",
    "status",
    "seeds_ok",
    "observation",
    "verdict",
]


def _metrics(members: pd.DataFrame) -> dict[int, dict]:
    """{config_id: {seeds_ok, <col>_mean, <col>_std for every best_*/final_* column}}
    over the node's ok seeds (NaN where none is ok)."""
    cols = [
        c for c in members.columns if c.startswith(("best_", "final_")) and pd.api.types.is_numeric_dtype(members[c])
    ]
    out = {}
    for config_id, part in members.groupby("config_id"):
        ok = part[part["status"] == "ok"]
        d: dict = {"seeds_ok": len(ok)}
        for c in cols:
            v = ok[c].dropna()
            d[f"{c}_mean"] = float(v.mean()) if len(v) else math.nan
            d[f"{c}_std"] = float(v.std(ddof=1)) if len(v) > 1 else math.nan
        out[int(config_id)] = d
    return out


def _without_plan(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """The config with ``sweep.plan`` cleared: the plan's effect is in each
    generation's members table, and a generation resumed without the plan
    flag has the same config."""
    if not config.sweep.get("plan"):
        return config
    out = ml_collections.ConfigDict(config.to_dict())
    out.sweep.plan = ""
    return out


def _members(nodes: list[dict], seeds: int, columns: list[str], tree: tree_batch.Tree) -> pd.DataFrame:
    rows = []
    for node in nodes:
        fields = {**node["values"], **node["target"]}
        for seed in range(seeds):
            rows.append(
                {
                    "member": node["node"] * seeds + seed,
                    "config_id": node["node"],
                    "seed": seed,
                    **{c: fields[c] if c in fields else tree.base(c) for c in columns},
                }
            )
    return pd.DataFrame.from_records(rows, columns=["member", "config_id", "seed", *columns])


def _read(workdir: str, names: list[str]) -> pd.DataFrame:
    path = os.path.join(workdir, "lineage.csv")
    lineage = tree_report.read_lineage(workdir)
    missing = [n for n in names if n not in lineage.columns]
    if missing:
        raise ConfigError(
            f"sweep.space: {path} has no column(s) {missing}; "
            "a tree keeps the parameters it started with (choose another --workdir)"
        )
    return lineage


def run(config: ml_collections.ConfigDict, workdir: str | None = None, progress=None, plan=None) -> pd.DataFrame:
    """Runs (or continues) the mutation tree; returns the lineage table.

    ``plan``: a plan file's path or its parsed YAML (default ``sweep.plan`` where the
    config has that field): the next generation this command runs, see ``jaxexp.search.tree_plan``."""
    from jaxexp.run import progress as progress_mod

    progress = progress if progress is not None else progress_mod.print_progress
    return loop.drive(config, workdir, progress, MutationTree(config, workdir, plan)).result()


class MutationTree(Strategy):
    """``sweep.strategy = "mutation"`` (the module's docstring)."""

    name = "mutation"
    continues = "the same command continues the tree"

    @classmethod
    def planned(cls, config):
        sw = config.sweep
        return sw.generations * sw.slots + 1, (
            f"strategy: mutation ({sw.generations} generations of {sw.slots} nodes after the base"
        )

    def __init__(self, config: ml_collections.ConfigDict, workdir: str | None, plan=None) -> None:
        config = spacefile.resolve(config)
        if plan is None:
            plan = config.sweep.get("plan", "") or None
        config = _without_plan(config)
        cfgmod.validate_top(config)
        super().__init__(config, workdir)
        sw = config.sweep
        if sw.generations < 1 or sw.slots < 1 or sw.parent_pool < 1:
            raise ConfigError("sweep.generations, sweep.slots, sweep.parent_pool: must be >= 1")
        if not sw.mutation_scale > 1:
            raise ConfigError(f"sweep.mutation_scale: must be > 1 (got {sw.mutation_scale})")
        self.tree = tree_batch.Tree(config)
        self.names = names = self.tree.names
        self.info = tree_report.info_of(config)
        lineage = pd.DataFrame(columns=LINEAGE_COLUMNS + names)
        if workdir is not None:
            os.makedirs(workdir, exist_ok=True)
            if os.path.exists(os.path.join(workdir, "lineage.csv")):
                lineage = _read(workdir, names)
        known = set(lineage["node"].astype(int)) if len(lineage) else {0}
        unknown = [i for i in sw.parent_ids if i not in known]
        if unknown:
            raise ConfigError(
                f"sweep.parent_ids: node(s) {unknown} not in the tree (nodes 0-{max(known)}); see lineage.csv"
            )
        self.generation = int(lineage["generation"].max()) + 1 if len(lineage) else 0
        if plan is not None:
            if isinstance(plan, str):
                plan = tree_plan.load(plan, names, config, sw.slots)
            else:
                plan = tree_plan.parse(plan, names, config, sw.slots)
            if self.generation > sw.generations:
                raise ConfigError(
                    f"sweep.plan: the tree already has generations 0-{self.generation - 1} (sweep.generations="
                    f"{sw.generations}); pass --config.sweep.generations={self.generation} to run the plan"
                )
            self.tree.check_plan(plan, lineage)
        self.lineage, self.plan = lineage, plan
        self.first = True  # the plan and sweep.parent_ids: the first generation after the base this command runs

    def ask(self) -> Generation | None:
        sw, tree, lineage, generation = self.config.sweep, self.tree, self.lineage, self.generation
        if generation >= sw.generations + 1:  # generation 0 is the base config
            return None
        rng = np.random.default_rng([self.config.seed, generation, zlib.crc32(b"mutation")])
        next_id = int(lineage["node"].max()) + 1 if len(lineage) else 0
        if generation == 0:
            base = {n: tree.base(n) for n in self.names}
            nodes = [{"node": 0, "parent": -1, "slot": 0, "mutation": "", "hypothesis": "", "hypothesis_test": ""}]
            nodes[0].update(values=base, target={})
        else:
            first = self.first
            nodes = tree.batch(lineage, next_id, self.plan if first else None, sw.parent_ids if first else (), rng)
            self.first = False
        fields = list(dict.fromkeys([*tree.target_fields(lineage), *(f for n in nodes for f in n["target"])]))
        self.nodes, self.fields = nodes, fields
        table = _members(nodes, sw.seeds, self.names + fields, tree)
        gen_dir = None if self.workdir is None else os.path.join(self.workdir, f"gen_{generation}")
        finished = None
        if gen_dir is not None and os.path.exists(os.path.join(gen_dir, "members.csv")):
            finished = pd.read_csv(os.path.join(gen_dir, "members.csv"))  # finished before an interruption
        planned = sum(n["hypothesis_test"].startswith("planned") for n in nodes)
        what = f" ({planned} planned)" if planned else ""
        label = f"[{self.config.name}] generation {generation}/{sw.generations}: {len(nodes)} node(s){what}"
        return Generation(table, self.config, gen_dir, label, finished)

    def tell(self, generation, members, results) -> None:
        tree, fields, lineage = self.tree, self.fields, self.lineage
        scores = strategies.config_scores(members, self.config.metric)
        metrics = _metrics(members)
        rows = []
        for node in self.nodes:
            metric, std, status = scores.get(node["node"], (math.nan, math.nan, "failed"))
            target = {f: node["target"].get(f, tree.base(f)) for f in fields}
            changed = {f: v for f, v in target.items() if _key([v]) != _key([tree.base(f)])}
            rows.append(
                {
                    **{k: node[k] for k in ("node", "parent", "slot", "mutation", "hypothesis", "hypothesis_test")},
                    "generation": self.generation,
                    "target": "; ".join(f"{f}={_fmt(v)}" for f, v in changed.items()),
                    "metric": metric,
                    "metric_std": std,
                    "status": status,
                    "seeds_ok": metrics.get(node["node"], {}).get("seeds_ok", 0),
                    "observation": "",
                    "verdict": "",
                    **{k: v for k, v in metrics.get(node["node"], {}).items() if k != "seeds_ok"},
                    **{n: (str(v) if isinstance(v, tuple) else v) for n, v in {**node["values"], **target}.items()},
                }
            )
        new = pd.DataFrame(rows)
        lineage = pd.concat([lineage, new], ignore_index=True) if len(lineage) else new
        for f in fields:  # a target field new in this generation: the earlier nodes ran the base value
            base = tree.base(f)
            lineage[f] = (
                lineage[f].astype(object).where(lineage[f].notna(), str(base) if isinstance(base, tuple) else base)
            )
        lineage = _ordered(lineage, self.names)
        if self.workdir is not None:
            lineage = tree_report.write(lineage, self.workdir, self.info)
        self.lineage = lineage
        self.generation += 1

    def result(self) -> pd.DataFrame:
        if self.interrupted is not None:
            return self.lineage
        return tree_report.merge(self.lineage, self.workdir)

    def summary(self) -> str | None:
        lineage, workdir, c = self.result(), self.workdir, self.config
        if lineage.empty:
            return None
        ok = lineage[lineage["status"] == "ok"]
        if ok.empty:
            return f"wrote {workdir}/lineage.md; every node failed"
        best = ok.loc[ok["metric"].idxmin() if c.goal == "min" else ok["metric"].idxmax()]
        return (
            f"wrote {workdir}/lineage.md; {len(lineage)} nodes; best node {int(best['node'])}: "
            f"{c.metric} {best['metric']:.5g} ({best['mutation'] or 'base config'}); record what a node showed: "
            f"jaxexp tree annotate --workdir={workdir} --node=N --observation=TEXT --verdict=supported|falsified"
        )


def _ordered(lineage: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """Columns: LINEAGE_COLUMNS, metrics, parameters, target fields."""
    cols = [c for c in LINEAGE_COLUMNS if c in lineage.columns]
    metrics = [c for c in lineage.columns if c.endswith(("_mean", "_std")) and c not in cols and "." not in c]
    rest = [c for c in lineage.columns if c not in cols and c not in metrics and c not in names]
    return lineage[cols + metrics + names + rest]


def lineage_markdown(lineage: pd.DataFrame, config) -> str:
    """lineage.md's text (``jaxexp.search.tree_report.markdown``)."""
    return tree_report.markdown(lineage, tree_report.info_of(config))
