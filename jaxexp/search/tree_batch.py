"""The nodes of one generation of a mutation tree: planned slots as the plan
says (``jaxexp.search.tree_plan``), the others by the automatic rule.

The automatic rule takes the slot's parent (round robin over ``sweep.parent_ids``
or the ``sweep.parent_pool`` best ok nodes: a failed node is never an automatic
parent) and, when the slot's hypothesis gives a direction for parameters of
``sweep.space`` ("lower lr", "dropout up"), moves those parameters that way by one
step (further when that configuration already ran); otherwise it mutates one
parameter at random and records that the hypothesis was not tested, and why.
"""

from __future__ import annotations

import ml_collections
import numpy as np
import pandas as pd

from jaxexp import config as cfgmod
from jaxexp.errors import ConfigError
from jaxexp.search import space as spacemod
from jaxexp.search import tree_plan

NOT_TESTED = "hypothesis not tested by the automatic rule"


def _round(p: spacemod.Param, new: float):
    if p.kind.startswith("int"):
        return int(round(new))
    if p.kind.startswith("q_"):
        return float(np.round(p.low + round((new - p.low) / p.q) * p.q, 12))
    return float(new)


def _step(p: spacemod.Param, old, scale: float, up: bool, times: int = 1, clamp: bool = True):
    """``old`` moved ``times`` steps up or down (log ranges: x or / ``scale``; linear
    ones: a quarter of the range, at least one step for integers and quantised
    values; normal: sigma; an ordered numeric choice: the next value), kept in
    range when ``clamp`` (else None when out of it); None when it cannot move."""
    if p.kind == "fixed":
        return None
    if p.kind == "choice":
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in p.values):
            return None  # no order to move along
        order = sorted(p.values)
        i = order.index(old) if old in order else None
        if i is None:
            return None
        j = min(max(i + (times if up else -times), 0), len(order) - 1)
        return order[j] if j != i and (clamp or 0 <= i + (times if up else -times) < len(order)) else None
    sign = times if up else -times
    if "log" in p.kind:
        new = old * scale**sign
    elif p.kind == "normal":
        new = old + sign * p.sigma
    else:
        step = (p.high - p.low) / 4
        if p.kind.startswith("int"):
            step = max(1.0, round(step))
        elif p.kind.startswith("q_"):
            step = max(p.q, round(step / p.q) * p.q)
        new = old + sign * step
    if p.kind != "normal":
        if not clamp and not p.low <= new <= p.high:
            return None
        new = min(max(new, p.low), p.high)
    new = _round(p, new)
    return None if new == old else new


def _mutate(p: spacemod.Param, old, scale: float, rng: np.random.Generator):
    """A new value of parameter ``p`` next to ``old`` (never equal when avoidable):
    a random direction, the other one when a whole step leaves the range, then
    the range's end."""
    if p.kind == "fixed":
        raise ConfigError(f"sweep.space.{p.name}: a fixed value cannot mutate; give values or a range")
    if p.kind == "choice":
        others = [v for v in p.values if v != old]
        return others[rng.integers(len(others))] if others else old
    up = bool(rng.integers(2))
    for direction, clamp in ((up, False), (not up, False), (up, True), (not up, True)):
        new = _step(p, old, scale, direction, 1, clamp)
        if new is not None:
            return new
    return old


def _key(values) -> tuple:
    """A configuration's values as comparable strings (CSV cells and Python values alike)."""
    return tuple(repr(round(float(v), 10)) if isinstance(v, (int, float, np.number)) else str(v) for v in values)


def _fmt(v) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


class Tree:
    """What every generation of one command shares: the space, the base config, the fields a hypothesis may name."""

    def __init__(self, config: ml_collections.ConfigDict):
        self.config, self.sw = config, config.sweep
        self.params = spacemod.parse(config.sweep.space)
        if not self.params:
            raise ConfigError("sweep.space: a mutation tree needs the parameters that may mutate (and their ranges)")
        self.names = [p.name for p in self.params]
        cfgmod.check_param_names(config, self.names)
        self.by_name = {p.name: p for p in self.params}
        self.fields = cfgmod.program_fields(config)
        self.sign = cfgmod.goal_sign(config.goal)

    def base(self, field: str):
        return cfgmod.get_path(self.config, field)

    def key(self, values: dict, target: dict) -> tuple:
        extra = sorted((f, v) for f, v in target.items() if _key([v]) != _key([self.base(f)]))
        return _key(values[n] for n in self.names) + tuple((f, *_key([v])) for f, v in extra)

    def target_fields(self, lineage: pd.DataFrame) -> list[str]:
        return [c for c in lineage.columns if "." in c and c not in self.names]

    def state(self, lineage: pd.DataFrame, node: int) -> tuple[dict, dict]:
        """(parameter values, target fields) of a node; node 0 of a tree not yet started: the base config's."""
        from jaxexp.run import population

        if not len(lineage):
            return {n: self.base(n) for n in self.names}, {}
        row = lineage[lineage["node"] == node].iloc[0]
        values = {n: spacemod.from_cell(self.by_name[n], row[n]) for n in self.names}
        target = {}
        for f in self.target_fields(lineage):
            v = row[f]
            target[f] = self.base(f) if population._missing(v) else population._py(v, self.base(f))
        return values, target

    def pool(self, lineage: pd.DataFrame, parent_ids) -> list[int]:
        """Parents of the automatic slots: ``parent_ids``, else the best ok nodes (never a failed one)."""
        if parent_ids:
            return [int(i) for i in parent_ids]
        done = lineage[lineage["status"] == "ok"].copy()
        if done.empty:
            raise ConfigError(
                "sweep: every node of the tree failed; nothing to mutate automatically "
                "(name parents in sweep.plan or sweep.parent_ids; see lineage.csv)"
            )
        done["key"] = self.sign * done["metric"]
        return [int(i) for i in done.sort_values(["key", "node"])["node"].head(self.sw.parent_pool)]

    def planned(self, slot, values: dict, target: dict, hypothesis: str, where: str) -> tuple[dict, dict, str]:
        new_values, new_target = tree_plan.apply(slot, self.by_name, values, target, self.config, where)
        moved = {}
        for before, after in ((values, new_values), (target, new_target)):
            for f, v in after.items():
                old = before.get(f, self.base(f))
                if _key([v]) == _key([old]):
                    continue
                numeric = all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (old, v))
                moved[f] = ("up" if v > old else "down") if numeric else "set"
        return new_values, new_target, tree_plan.check_planned(hypothesis, moved, self.fields, self.names)

    def auto(self, values: dict, target: dict, hypothesis: str, rng, tried) -> tuple[dict, str]:
        """(values, hypothesis test) of an automatic node: the parameters the
        hypothesis gives a direction moved that way (further on a repeat), else a
        random one-parameter mutation recorded as not testing the hypothesis."""
        scale = self.sw.mutation_scale
        directed, named = tree_plan.read(hypothesis, self.fields, self.names) if hypothesis else ({}, [])
        ours = {f: d for f, d in directed.items() if f in self.by_name and d != "both"}
        moved: dict = {}
        last = None
        for times in range(1, 21):
            cand, moved = dict(values), {}
            for f, d in ours.items():
                new = _step(self.by_name[f], values[f], scale, d == "up", times)
                if new is not None:
                    cand[f], moved[f] = new, d
            if not moved or self.key(cand, target) not in tried or cand == last:
                break
            last = cand
        if moved:
            test = "automatic rule, as the hypothesis says: " + ", ".join(f"{f} {d}" for f, d in moved.items())
            stuck = [f"{f} {d}" for f, d in ours.items() if f not in moved]
            return cand, test + (f"; cannot move {', '.join(stuck)} (end of its range)" if stuck else "")
        ours_named = [f for f in named if f in self.by_name]
        outside = [f"{f} {d}" for f, d in directed.items() if f not in self.by_name]
        if not hypothesis:
            reason = ""
        elif ours:
            reason = ", ".join(
                f"{f} cannot move {d} from {_fmt(values[f])} (end of its range)" for f, d in ours.items()
            )
        elif any(f in self.by_name for f in directed):
            reason = "it says both lower and higher " + ", ".join(f for f in directed if f in self.by_name)
        elif outside:
            reason = (
                f"it names {', '.join(outside)}, which sweep.space does not mutate (plan it, or add it to sweep.space)"
            )
        elif ours_named:
            reason = f"it names {', '.join(ours_named)} without a direction (write 'lower X' or 'higher X', or plan it)"
        else:
            reason = f"it names no parameter of sweep.space ({', '.join(self.names)})"
        candidates = ours_named if ours_named and not ours else self.names
        for _ in range(20):  # a configuration the tree has not run, where one is near
            cand = dict(values)
            name = candidates[rng.integers(len(candidates))]
            cand[name] = _mutate(self.by_name[name], values[name], scale, rng)
            if self.key(cand, target) not in tried:
                break
        return cand, f"{NOT_TESTED}: {reason}; random mutation" if reason else ""

    def batch(self, lineage, next_id: int, plan, parent_ids, rng) -> list[dict]:
        """The nodes of one generation: planned slots as planned, the others by the automatic rule."""
        tried = {self.key(*self.state(lineage, int(n))): int(n) for n in lineage["node"]}
        pool, j, nodes = None, 0, []
        for i in range(self.sw.slots):
            slot = plan.slots[i] if plan is not None and i < len(plan.slots) else None
            hyp = (slot.hypothesis if slot else "") or (plan.hypothesis if plan else "") or self.sw.hypothesis
            if slot is not None and slot.parent is not None:
                parent = slot.parent
            else:
                pool = self.pool(lineage, parent_ids) if pool is None else pool
                parent, j = pool[j % len(pool)], j + 1
            values, target = self.state(lineage, parent)
            where = f"{plan.where} slot {i}" if slot else ""
            if slot is not None and slot.mutate is not None:
                new_values, new_target, test = self.planned(slot, values, target, hyp, where)
                k = self.key(new_values, new_target)
                if k in tried:
                    raise ConfigError(
                        f"{where}: repeats node {tried[k]} (the same configuration); if the plan already ran, "
                        "write the next batch's plan or drop sweep.plan"
                    )
            else:
                new_target = (
                    tree_plan.apply(slot, self.by_name, values, target, self.config, where)[1] if slot else target
                )
                new_values, test = self.auto(values, new_target, hyp, rng, tried)
                k = self.key(new_values, new_target)
            tried.setdefault(k, next_id + i)
            before = {**values, **{f: target.get(f, self.base(f)) for f in new_target}}
            after = {**new_values, **new_target}
            planned = [*(slot.mutate or {}), *slot.target] if slot else []
            order = [*planned, *after]  # the plan's order first
            mutation = "; ".join(
                f"{f}: {_fmt(before[f])} -> {_fmt(after[f])}"
                for f in dict.fromkeys(order)
                if _key([after[f]]) != _key([before[f]])
            )
            nodes.append(
                {
                    "node": next_id + i,
                    "parent": int(parent),
                    "slot": i,
                    "mutation": mutation,
                    "hypothesis": hyp,
                    "hypothesis_test": test,
                    "values": new_values,
                    "target": new_target,
                }
            )
        return nodes

    def check_plan(self, plan, lineage) -> None:
        """Parents and values of the planned slots that name a parent, before anything runs."""
        known = set(lineage["node"].astype(int)) if len(lineage) else {0}
        for slot in plan.slots:
            if slot is None or slot.parent is None:
                continue
            if slot.parent not in known:
                have = (
                    f"nodes 0-{max(known)}" if len(lineage) else "only node 0 (the base config) before its first batch"
                )
                raise ConfigError(f"{plan.where} slot {slot.index}: unknown parent {slot.parent}; the tree has {have}")
            if slot.mutate is not None:
                values, target = self.state(lineage, slot.parent)
                tree_plan.apply(slot, self.by_name, values, target, self.config, f"{plan.where} slot {slot.index}")
