"""A mutation tree's record: ``lineage.csv``, ``lineage.md`` and the user's ``annotations.yaml``.

``annotations.yaml`` holds the observation and verdict (supported, falsified,
inconclusive) the user gives each node after a batch, by ``jaxexp tree annotate
--workdir=W --node=N --observation=... --verdict=...`` or by editing the file.
Every write of the tree (each generation, each annotate) reads it back into the
``observation``/``verdict`` columns of lineage.csv and into lineage.md, which
follows the log format of a hand-run tree: Batch, Iter (= node id), Node,
Parent, Mutation, Hypothesis, Metrics, Observation, Verdict.
"""

from __future__ import annotations

import json
import math
import os
from typing import NamedTuple

import pandas as pd

from jaxexp.errors import ConfigError
from jaxexp.search import tree_plan

ANNOTATIONS = "annotations.yaml"
TEXT_COLUMNS = ("mutation", "hypothesis", "hypothesis_test", "target", "observation", "verdict", "status")
_HEADER = """\
# Observation and verdict per node of this mutation tree; read back into lineage.csv and lineage.md
# by the next generation, or at once by: jaxexp tree annotate --workdir=DIR
# verdict: supported | falsified | inconclusive. For example:
# 5:
#   observation: lower lr made dropout help (val_mse 0.121 -> 0.104)
#   verdict: supported
"""


class TreeInfo(NamedTuple):
    name: str
    metric: str
    goal: str


def info_of(config) -> TreeInfo:
    return TreeInfo(str(config.name), str(config.metric), str(config.goal))


def read_info(workdir: str) -> TreeInfo:
    """Name, metric and goal of a tree from its generation 0's config.json."""
    path = os.path.join(workdir, "gen_0", "config.json")
    if not os.path.isfile(os.path.join(workdir, "lineage.csv")) or not os.path.isfile(path):
        raise ConfigError(f"--workdir: {workdir} has no mutation tree (lineage.csv and gen_0/config.json)")
    with open(path) as f:
        d = json.load(f)
    return TreeInfo(str(d.get("name", "")), str(d.get("metric", "metric")), str(d.get("goal", "min")))


def read_lineage(workdir: str) -> pd.DataFrame:
    return fill_text(pd.read_csv(os.path.join(workdir, "lineage.csv")))


def fill_text(lineage: pd.DataFrame) -> pd.DataFrame:
    """Empty text cells (NaN read back from CSV) as "", missing columns of older trees added."""
    lineage = lineage.copy()
    for col in TEXT_COLUMNS:
        if col not in lineage.columns:
            lineage[col] = ""
        lineage[col] = lineage[col].astype(object).where(lineage[col].notna(), "").astype(str)
    if "slot" not in lineage.columns:
        lineage["slot"] = lineage.groupby("generation").cumcount()
    return lineage


def read_annotations(workdir: str, nodes) -> dict[int, dict]:
    """{node: {"observation": str, "verdict": str}} from annotations.yaml (checked)."""
    import yaml

    path = os.path.join(workdir, ANNOTATIONS)
    if not os.path.isfile(path):
        return {}
    try:
        with open(path) as f:
            doc = yaml.safe_load(f) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{ANNOTATIONS}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{ANNOTATIONS}: expected node ids mapped to observation/verdict, got {doc!r}")
    nodes = {int(n) for n in nodes}
    out = {}
    for key, entry in doc.items():
        try:
            node = int(key)
        except (TypeError, ValueError):
            raise ConfigError(f"{ANNOTATIONS}: {key!r} is not a node id") from None
        if node not in nodes:
            raise ConfigError(f"{ANNOTATIONS}: node {node} is not in the tree (nodes {min(nodes)}-{max(nodes)})")
        entry = entry or {}
        if not isinstance(entry, dict) or set(entry) - {"observation", "verdict"}:
            raise ConfigError(f"{ANNOTATIONS}: node {node}: give observation and/or verdict, got {entry!r}")
        verdict = str(entry.get("verdict") or "").strip().lower()
        if verdict and verdict not in tree_plan.VERDICTS:
            raise ConfigError(
                f"{ANNOTATIONS}: node {node}: verdict {verdict!r} is not one of {', '.join(tree_plan.VERDICTS)}"
            )
        out[node] = {"observation": str(entry.get("observation") or "").strip(), "verdict": verdict}
    return out


def merge(lineage: pd.DataFrame, workdir: str | None) -> pd.DataFrame:
    lineage = fill_text(lineage)
    if workdir is None:
        return lineage
    notes = read_annotations(workdir, lineage["node"])
    for col in ("observation", "verdict"):
        lineage[col] = [notes.get(int(n), {}).get(col, "") for n in lineage["node"]]
    return lineage


def write(lineage: pd.DataFrame, workdir: str, info: TreeInfo) -> pd.DataFrame:
    """lineage.csv and lineage.md with the annotations read back, each written
    whole then renamed into place (by process 0 of a multi-process run); an
    annotations.yaml to edit when there is none."""
    from jaxexp.run import distributed

    lineage = merge(lineage, workdir)
    if not distributed.is_primary():
        return lineage
    texts = [("lineage.csv", lineage.to_csv(index=False)), ("lineage.md", markdown(lineage, info))]
    if not os.path.exists(os.path.join(workdir, ANNOTATIONS)):
        texts.append((ANNOTATIONS, _HEADER))
    for name, text in texts:
        tmp = os.path.join(workdir, f".{name}.tmp")
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, os.path.join(workdir, name))
    return lineage


def annotate(workdir: str, node: int | None, observation: str | None, verdict: str | None) -> pd.DataFrame:
    """Records a node's observation and/or verdict in annotations.yaml (node None:
    only re-reads the file) and rewrites lineage.csv and lineage.md."""
    import yaml

    info = read_info(workdir)
    lineage = read_lineage(workdir)
    notes = read_annotations(workdir, lineage["node"])  # a broken hand edit is reported first
    if node is not None:
        if node not in set(lineage["node"].astype(int)):
            raise ConfigError(
                f"--node: {node} is not in the tree (nodes 0-{int(lineage['node'].max())}); see lineage.csv"
            )
        if observation is None and verdict is None:
            raise ConfigError(
                "tree annotate: give --observation=TEXT and/or --verdict=supported|falsified|inconclusive"
            )
        verdict = None if verdict is None else verdict.strip().lower()
        if verdict and verdict not in tree_plan.VERDICTS:
            raise ConfigError(f"--verdict: {verdict!r} is not one of {', '.join(tree_plan.VERDICTS)}")
        entry = notes.setdefault(node, {"observation": "", "verdict": ""})
        if observation is not None:
            entry["observation"] = observation.strip()
        if verdict is not None:
            entry["verdict"] = verdict
        body = {n: {k: v for k, v in e.items() if v} for n, e in sorted(notes.items()) if any(e.values())}
        tmp = os.path.join(workdir, f".{ANNOTATIONS}.tmp")
        with open(tmp, "w") as f:
            f.write(_HEADER + (yaml.safe_dump(body, sort_keys=False, allow_unicode=True, width=1000) if body else ""))
        os.replace(tmp, os.path.join(workdir, ANNOTATIONS))
    elif observation is not None or verdict is not None:
        raise ConfigError("tree annotate: --observation/--verdict need --node=N")
    return write(lineage, workdir, info)


# ----------------------------------------------------------------------------- lineage.md


def _num(v) -> str:
    return "nan" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.5g}"


def metric_names(lineage: pd.DataFrame) -> list[str]:
    """The metrics the tree records (``best_val_mse`` for columns ``best_val_mse_mean``/``_std``)."""
    return [c[: -len("_mean")] for c in lineage.columns if c.endswith("_mean") and f"{c[:-5]}_std" in lineage.columns]


def _metrics(row, names: list[str], selection: str) -> str:
    names = sorted(names, key=lambda n: (n != f"best_{selection}", not n.startswith("best_"), n))
    parts = []
    for n in names:
        mean, std = row.get(f"{n}_mean"), row.get(f"{n}_std")
        if mean is None or (isinstance(mean, float) and math.isnan(mean)):
            continue
        parts.append(f"{n}={_num(mean)}" + ("" if std is None or math.isnan(std) else f" ± {_num(std)}"))
    return ", ".join(parts) or "none (no seed finished)"


def _value(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown(lineage: pd.DataFrame, info: TreeInfo) -> str:
    """The tree (an indented overview), then per batch its slot table and per
    node (Iter = node id) the seed log's fields."""
    lineage = fill_text(lineage)
    sign = 1 if info.goal == "min" else -1
    ok = lineage[lineage["status"] == "ok"]
    best = int(ok.loc[(sign * ok["metric"]).idxmin(), "node"]) if len(ok) and ok["metric"].notna().any() else None
    names = metric_names(lineage)
    config_cols = [c for c in lineage.columns if "." in c]
    lines = [f"# {info.name}: mutation tree ({len(lineage)} nodes)", ""]
    lines.append(
        f"Metric: mean ± std over seeds of each member's best `{info.metric}` ({info.goal}). Best node: {best}. "
        f"Observations and verdicts: `{ANNOTATIONS}` (`jaxexp tree annotate --workdir=DIR --node=N "
        "--observation=TEXT --verdict=supported|falsified|inconclusive`, or edit the file)."
    )
    lines += ["", "## Tree", ""]
    children: dict[int, list] = {}
    for _, row in lineage.iterrows():
        children.setdefault(int(row["parent"]), []).append(row)

    def walk(parent: int, depth: int) -> None:
        for row in children.get(parent, []):
            metric = _num(row["metric"]) if row["status"] == "ok" else row["status"]
            star = " **(best)**" if int(row["node"]) == best else ""
            verdict = f" [{row['verdict']}]" if row["verdict"] else ""
            lines.append(
                f"{'  ' * depth}- node {int(row['node'])} (gen {int(row['generation'])}): "
                f"{row['mutation'] or 'base config'} -> {metric}{star}{verdict}"
            )
            walk(int(row["node"]), depth + 1)

    walk(-1, 0)
    for gen, batch in lineage.groupby("generation", sort=True):
        ids = [int(n) for n in batch["node"]]
        span = f"Iter {ids[0]}" if len(ids) == 1 else f"Iters {ids[0]}-{ids[-1]}"
        lines += ["", "---", "", f"## Batch {int(gen)} ({span})" + (" — base config" if gen == 0 else ""), ""]
        if gen > 0:
            lines += ["| Slot | Node | Parent | Mutation | Hypothesis | Test |", "|---|---|---|---|---|---|"]
            for _, r in batch.iterrows():
                lines.append(
                    f"| {int(r['slot'])} | {int(r['node'])} | {int(r['parent'])} | {_cell(r['mutation'])} | "
                    f"{_cell(r['hypothesis'] or '—')} | {_cell(r['hypothesis_test'] or '—')} |"
                )
        for _, r in batch.iterrows():
            lines += ["", f"## Iter {int(r['node'])}: {r['status']}"]
            parent = "none (root)" if int(r["parent"]) < 0 else str(int(r["parent"]))
            lines.append(f"Node: id={int(r['node'])}, parent={parent}, slot={int(r['slot'])}")
            if r["target"]:
                lines.append(f"Target: {r['target']}")
            lines.append("Config: " + ", ".join(f"{c}={_value(r[c])}" for c in config_cols))
            lines.append(f"Mutation: {r['mutation'] or 'none (base config)'}")
            if gen > 0:
                lines.append(f"Hypothesis: {r['hypothesis'] or '—'}")
                lines.append(f"Test: {r['hypothesis_test'] or '—'}")
            seeds = r.get("seeds_ok")
            seeds = (
                ""
                if seeds is None or (isinstance(seeds, float) and math.isnan(seeds))
                else f" ({int(seeds)} seed(s) ok)"
            )
            lines.append(f"Metrics: {_metrics(r, names, info.metric)}{seeds}")
            lines.append(f"Observation: {r['observation'] or '—'}")
            lines.append(f"Verdict: {r['verdict'] or '—'}")
    return "\n".join(lines) + "\n"
