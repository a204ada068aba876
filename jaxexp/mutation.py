"""Mutation-tree exploration: each generation mutates parents into new nodes.

A *node* is one configuration (run for ``sweep.seeds`` seeds). Generation 0 is
the base config (node 0). Each later generation has ``sweep.slots`` nodes;
node i of a generation mutates one parameter of its parent, the parent being
one of the ``sweep.parent_pool`` best nodes so far (round robin), or of the
nodes named in ``sweep.parent_ids`` for the first generation a command runs.
A generation runs as one population (``api.run_members``: no recompile
between generations of one bucket).

The parameters that may mutate, and their bounds, are those of
``sweep.space``. A mutation changes one parameter: a choice takes another of
its values; log-scaled ranges multiply or divide by ``sweep.mutation_scale``;
linear ranges move by a quarter of the range (integers and quantised values
by at least one step); every value stays in its range.

``lineage.csv`` records node id, parent id, generation, the mutation as
``param: old -> new``, the hypothesis (``sweep.hypothesis``), the metric (mean
over seeds of each member's best) and status. With a workdir, every generation
is a complete sweep workdir ``gen_<g>/`` (checkpointed and resumable), and
running the command again continues the tree up to ``sweep.generations``.
"""

from __future__ import annotations

import math
import os
import sys
import zlib

import ml_collections
import numpy as np
import pandas as pd

from jaxexp import config as cfgmod
from jaxexp import space as spacemod
from jaxexp import strategies
from jaxexp.errors import ConfigError

LINEAGE_COLUMNS = ["node", "parent", "generation", "mutation", "hypothesis", "metric", "metric_std", "status"]


def _mutate(p: spacemod.Param, old, scale: float, rng: np.random.Generator):
    """A new value of parameter ``p`` next to ``old`` (never equal when avoidable)."""
    if p.kind == "fixed":
        raise ConfigError(f"sweep.space.{p.name}: a fixed value cannot mutate; give values or a range")
    if p.kind == "choice":
        others = [v for v in p.values if v != old]
        return others[rng.integers(len(others))] if others else old
    up = bool(rng.integers(2))
    if "log" in p.kind:
        moves = (old * scale, old / scale)
    else:
        step = (p.high - p.low) / 4
        if p.kind.startswith("int"):
            step = max(1.0, round(step))
        elif p.kind.startswith("q_"):
            step = max(p.q, round(step / p.q) * p.q)
        moves = (old + step, old - step)
    new = moves[0] if up else moves[1]
    if not p.low <= new <= p.high:  # the other direction, then the range
        new = moves[1] if up else moves[0]
    new = min(max(new, p.low), p.high)
    if p.kind.startswith("int"):
        return int(round(new))
    if p.kind.startswith("q_"):
        return float(np.round(p.low + round((new - p.low) / p.q) * p.q, 12))
    return float(new)


def _key(values) -> tuple:
    """A configuration's values as comparable strings (CSV cells and Python values alike)."""
    return tuple(repr(round(float(v), 10)) if isinstance(v, (int, float, np.number)) else str(v) for v in values)


def _fmt(v) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def _members(nodes: list[dict], seeds: int, names: list[str]) -> pd.DataFrame:
    rows = []
    for node in nodes:
        for seed in range(seeds):
            rows.append(
                {"member": node["node"] * seeds + seed, "config_id": node["node"], "seed": seed, **node["values"]}
            )
    return pd.DataFrame.from_records(rows, columns=["member", "config_id", "seed", *names])


def _write_lineage(lineage: pd.DataFrame, workdir: str, markdown: str) -> None:
    """lineage.csv and lineage.md, each written whole then renamed into place
    (by process 0 of a multi-process run)."""
    from jaxexp import distributed

    if not distributed.is_primary():
        return
    for name, text in (("lineage.csv", lineage.to_csv(index=False)), ("lineage.md", markdown)):
        tmp = os.path.join(workdir, f".{name}.tmp")
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, os.path.join(workdir, name))


def run(config: ml_collections.ConfigDict, workdir: str | None = None, progress=None) -> pd.DataFrame:
    """Runs (or continues) the mutation tree; returns the lineage table."""
    from jaxexp import api, spacefile
    from jaxexp import progress as progress_mod

    config = spacefile.resolve(config)
    cfgmod.validate_top(config)
    sw = config.sweep
    if sw.generations < 1 or sw.slots < 1 or sw.parent_pool < 1:
        raise ConfigError("sweep.generations, sweep.slots, sweep.parent_pool: must be >= 1")
    if not sw.mutation_scale > 1:
        raise ConfigError(f"sweep.mutation_scale: must be > 1 (got {sw.mutation_scale})")
    params = spacemod.parse(config.sweep.space)
    if not params:
        raise ConfigError("sweep.space: a mutation tree needs the parameters that may mutate (and their ranges)")
    cfgmod.check_param_names(config, [p.name for p in params])
    names = [p.name for p in params]
    by_name = {p.name: p for p in params}
    sign = cfgmod.goal_sign(config.goal)
    progress = progress if progress is not None else progress_mod.print_progress

    lineage = pd.DataFrame(columns=LINEAGE_COLUMNS + names)
    if workdir is not None:
        os.makedirs(workdir, exist_ok=True)
        path = os.path.join(workdir, "lineage.csv")
        if os.path.exists(path):
            lineage = pd.read_csv(path)
            for col in ("mutation", "hypothesis"):  # empty cells read back as NaN
                lineage[col] = lineage[col].astype(object).where(lineage[col].notna(), "").astype(str)
            missing = [n for n in names if n not in lineage.columns]
            if missing:
                raise ConfigError(
                    f"sweep.space: {workdir}/lineage.csv has no column(s) {missing}; "
                    "a tree keeps the parameters it started with (choose another --workdir)"
                )
    unknown = [i for i in sw.parent_ids if i not in set(lineage["node"].astype(int))]
    if unknown and len(lineage):
        raise ConfigError(
            f"sweep.parent_ids: node(s) {unknown} not in the tree (nodes 0-{int(lineage['node'].max())}); "
            "see lineage.csv"
        )
    first_new = True
    generation = int(lineage["generation"].max()) + 1 if len(lineage) else 0
    while generation < sw.generations + 1:  # generation 0 is the base config
        rng = np.random.default_rng([config.seed, generation, zlib.crc32(b"mutation")])
        next_id = int(lineage["node"].max()) + 1 if len(lineage) else 0
        if generation == 0:
            base = {n: cfgmod.get_path(config, n) for n in names}
            nodes = [{"node": 0, "parent": -1, "mutation": "", "values": base}]
        else:
            done = lineage[lineage["status"] == "ok"].copy()
            if first_new and sw.parent_ids:
                pool = [int(i) for i in sw.parent_ids]
            else:
                if done.empty:
                    raise ConfigError("sweep: every node of the tree failed; nothing to mutate (see lineage.csv)")
                done["key"] = sign * done["metric"]
                pool = [int(i) for i in done.sort_values(["key", "node"])["node"].head(sw.parent_pool)]
            nodes = []
            tried = {_key(r[n] for n in names) for _, r in lineage.iterrows()}
            for i in range(sw.slots):
                parent = lineage[lineage["node"] == pool[i % len(pool)]].iloc[0]
                for _ in range(20):  # a configuration the tree has not run, where one is near
                    values = {n: spacemod.from_cell(by_name[n], parent[n]) for n in names}
                    name = names[rng.integers(len(names))]
                    old, new = values[name], _mutate(by_name[name], values[name], sw.mutation_scale, rng)
                    values[name] = new
                    if _key(values.values()) not in tried:
                        break
                tried.add(_key(values.values()))
                mutation = f"{name}: {_fmt(old)} -> {_fmt(new)}"
                nodes.append(
                    {"node": next_id + i, "parent": int(parent["node"]), "mutation": mutation, "values": values}
                )
        table = _members(nodes, sw.seeds, names)
        gen_dir = None if workdir is None else os.path.join(workdir, f"gen_{generation}")
        if gen_dir is not None and os.path.exists(os.path.join(gen_dir, "members.csv")):
            members = pd.read_csv(os.path.join(gen_dir, "members.csv"))  # finished before an interruption
        else:
            if progress:
                progress(f"[{config.name}] generation {generation}/{sw.generations}: {len(nodes)} node(s)")
            res = api.run_members(config, table, gen_dir, progress)
            if res.interrupted:
                print("jaxexp: interrupted: the same command continues the tree", file=sys.stderr)
                return lineage
            members = res.members
        scores = strategies.config_scores(members, config.metric)
        rows = []
        for node in nodes:
            metric, std, status = scores.get(node["node"], (math.nan, math.nan, "failed"))
            rows.append(
                {
                    "node": node["node"],
                    "parent": node["parent"],
                    "generation": generation,
                    "mutation": node["mutation"],
                    "hypothesis": sw.hypothesis if generation > 0 else "",
                    "metric": metric,
                    "metric_std": std,
                    "status": status,
                    **{n: (str(v) if isinstance(v, tuple) else v) for n, v in node["values"].items()},
                }
            )
        lineage = pd.concat([lineage, pd.DataFrame(rows)], ignore_index=True) if len(lineage) else pd.DataFrame(rows)
        if workdir is not None:
            _write_lineage(lineage, workdir, lineage_markdown(lineage, config))
        generation += 1
        first_new = False
    return lineage


def lineage_markdown(lineage: pd.DataFrame, config) -> str:
    """The tree as an indented list: node, mutation, metric, hypothesis."""
    children: dict[int, list] = {}
    for row in lineage.itertuples():
        children.setdefault(int(row.parent), []).append(row)
    sign = cfgmod.goal_sign(config.goal)
    ok = lineage[lineage["status"] == "ok"]
    best = int(ok.loc[(sign * ok["metric"]).idxmin(), "node"]) if len(ok) else None
    lines = [f"# {config.name}: mutation tree ({len(lineage)} nodes)", ""]
    lines.append(f"Metric: mean over seeds of best `{config.metric}` ({config.goal}). Best node: {best}.")
    lines.append("")

    def walk(parent: int, depth: int) -> None:
        for row in children.get(parent, []):
            metric = f"{row.metric:.5g}" if row.status == "ok" else row.status
            what = row.mutation or "base config"
            hyp = f" — hypothesis: {row.hypothesis}" if isinstance(row.hypothesis, str) and row.hypothesis else ""
            star = " **(best)**" if int(row.node) == best else ""
            lines.append(
                f"{'  ' * depth}- node {int(row.node)} (gen {int(row.generation)}): {what} -> {metric}{star}{hyp}"
            )
            walk(int(row.node), depth + 1)

    walk(-1, 0)
    return "\n".join(lines) + "\n"
