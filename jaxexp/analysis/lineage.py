"""The layout of a mutation tree's lineage (``Analysis.lineage``) for its plot:
a column per generation, a row per node within it (children in their parents'
order), and each node's label and failure."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from jaxexp.analysis import core


def _short_mutation(text) -> str:
    """``train.lr: 0.01 -> 0.02`` -> ``lr 0.01→0.02`` (a node label's middle part)."""
    if text is None or (isinstance(text, float) and math.isnan(text)) or not str(text).strip():
        return ""
    name, sep, change = str(text).partition(":")
    if not sep:
        return str(text).strip()
    return f"{name.strip().split('.')[-1]} {change.strip().replace(' -> ', '→')}"


def lineage_layout(a) -> pd.DataFrame:
    """One row per node of ``a.lineage``: node_id, parent_id (strings, "" for a
    root), generation (the ``generation`` column when there is one, else the
    depth from a root), row (position within its generation: children follow
    their parent's order), failed (``status`` other than ok, or no finite
    metric), label ("#id mutation · metric")."""
    t = a.lineage.copy()
    t["node_id"] = t["node_id"].map(_node_key)
    t["parent_id"] = t["parent_id"].map(lambda v: "" if pd.isna(v) else _node_key(v))
    parent = dict(zip(t["node_id"], t["parent_id"]))
    depth: dict = {}

    def depth_of(n, seen=()):
        if n in depth:
            return depth[n]
        p = parent.get(n, "")
        depth[n] = 0 if not p or p not in parent or p in seen else depth_of(p, (*seen, n)) + 1
        return depth[n]

    gen = pd.to_numeric(t["generation"], errors="coerce") if "generation" in t.columns else None
    if gen is not None and gen.notna().all():
        t["generation"] = gen.astype(int)
    else:
        t["generation"] = [depth_of(n) for n in t["node_id"]]
    value = pd.to_numeric(t[a.metric], errors="coerce")
    failed = ~np.isfinite(value.to_numpy(float))
    if "status" in t.columns:
        failed |= ~t["status"].astype(str).str.strip().str.lower().isin(core.OK_STATUS).to_numpy()
    t["failed"] = failed
    status = t["status"].astype(str) if "status" in t.columns else pd.Series("failed", index=t.index)
    mutation = t["mutation"].map(_short_mutation) if "mutation" in t.columns else pd.Series("", index=t.index)
    t["label"] = [
        " ".join(
            part
            for part in (f"#{n}", m or ("root" if not p or p not in parent else ""), st if bad else f"· {v:.4g}")
            if part
        )
        for n, p, m, v, bad, st in zip(t["node_id"], t["parent_id"], mutation, value, failed, status)
    ]
    t["_num"] = pd.to_numeric(t["node_id"], errors="coerce")
    rows: dict = {}
    t["row"] = 0
    for g in sorted(t["generation"].unique()):
        part = t[t["generation"] == g].copy()
        part["_p"] = [rows.get(p, -1) for p in part["parent_id"]]
        part = part.sort_values(["_p", "_num", "node_id"], kind="stable")
        for i, n in enumerate(part["node_id"]):
            rows[n] = i
    t["row"] = t["node_id"].map(rows)
    return t.drop(columns="_num")


def _node_key(v) -> str:
    """Node ids as strings, 3.0 read back from a CSV as "3"."""
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return str(int(v))
    return str(v)
