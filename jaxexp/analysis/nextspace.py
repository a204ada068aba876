"""The proposed next search space as next_space.yaml writes it: old specs (declared,
or inferred from the observed ranges), each parameter's action from the rules
(:mod:`jaxexp.analysis.nextrules`), log ranges spelled as ``*_values``, ``when``
conditions pruned of values their parent no longer takes, and the YAML-ready dict
(:func:`propose`). The rules' and the bounds' public names are re-exported here."""

from __future__ import annotations

import pandas as pd

from jaxexp.analysis import core
from jaxexp.analysis.dims import Dim, plain
from jaxexp.analysis.nextbounds import EXPAND, LOG_FACTOR, _finish_bound, _typed, expand_bound, extend_levels
from jaxexp.analysis.nextrules import (
    FIX_EFFECT,
    FIX_P,
    NARROW_P,
    NARROW_SPAN,
    PAD,
    RULES,
    _g,
    _join,
    _Stats,
    decide,
)
from jaxexp.errors import ConfigError

__all__ = [
    "EXPAND",
    "FIX_EFFECT",
    "FIX_P",
    "LOG_FACTOR",
    "NARROW_P",
    "NARROW_SPAN",
    "PAD",
    "RULES",
    "WRITTEN",
    "decide",
    "expand_bound",
    "extend_levels",
    "inferred_spec",
    "observed",
    "propose",
    "spec_text",
    "written",
]

# jaxexp's (and W&B's) names for log ranges in values; W&B reads plain log_uniform's min/max as exponents
WRITTEN = {"log_uniform": "log_uniform_values", "q_log_uniform": "q_log_uniform_values"}


def observed(d: Dim) -> Dim:
    """An inferred numeric range as the next space writes it: the observed extremes
    rounded outward (3 significant digits), so the old range and the written one agree."""
    if d.kind != "numeric" or d.choice or d.declared or not d.bounded:
        return d
    return d._replace(low=_finish_bound(d, d.low, "low"), high=_finish_bound(d, d.high, "high"))


def inferred_spec(d: Dim) -> dict:
    """A spec for a parameter seen only in the data (observed range or levels)."""
    if d.kind == "boolean":
        return {"values": [False, True]}
    if d.choice or d.kind == "categorical":
        return {"values": [plain(v) for v in d.levels]}
    # observed extremes, rounded outward (to 3 significant digits) so they still cover every trial
    lo, hi = _typed(d, _finish_bound(d, d.low, "low")), _typed(d, _finish_bound(d, d.high, "high"))
    if d.log and d.integer:  # W&B has no int_log_uniform: its quantised log range with q 1
        return {"distribution": "q_log_uniform_values", "min": lo, "max": hi, "q": 1}
    return {"distribution": d.distribution, "min": lo, "max": hi}


def written(spec: dict) -> dict:
    """A spec as next_space.yaml writes it: log ranges as ``*_values`` (``WRITTEN``)."""
    dist = spec.get("distribution")
    return {**spec, "distribution": WRITTEN[dist]} if dist in WRITTEN else spec


def spec_text(spec: dict) -> str:
    if "value" in spec:
        return f"value {spec['value']}"
    if "values" in spec:
        return f"values {plain(spec['values'])}"
    if spec.get("distribution") == "normal":
        return f"normal(mu={spec.get('mu')}, sigma={spec.get('sigma')})"
    return f"{spec.get('distribution')} [{_g(spec.get('min'))}, {_g(spec.get('max'))}]"


def _griddable(params: dict) -> bool:
    from jaxexp.search import space as spacemod

    try:
        for p in spacemod.parse(params):
            spacemod.grid_values(p)
    except ConfigError:
        return False
    return True


def _taken(spec: dict) -> list | None:
    """The values a parameter's spec can take (None: a range)."""
    if "value" in spec:
        return [spec["value"]]
    return list(spec["values"]) if "values" in spec else None


def _prune_conditions(params: dict) -> list[tuple[str, str]]:
    """Conditions on values their parent no longer takes (a fixed or narrowed choice)
    lose those values; a parameter whose condition keeps none is dropped (never active),
    and so are those conditioned on it. Returns (name, what happened)."""
    out = []
    changed = True
    while changed:
        changed = False
        for name, spec in list(params.items()):
            for parent, values in (spec.get("when") or {}).items():
                values = values if isinstance(values, list) else [values]
                if parent not in params:
                    if any(parent == n for n, _ in out):  # its parent was dropped
                        del params[name]
                        out.append((name, f"dropped: conditioned on {parent}, which was dropped"))
                        changed = True
                        break
                    continue
                taken = _taken(params[parent])
                if taken is None:
                    continue
                keep = [v for v in values if any(core.level_key(v) == core.level_key(t) for t in taken)]
                if not keep:
                    del params[name]
                    out.append((name, f"dropped: active only where {parent} is {values}, which it no longer takes"))
                    changed = True
                    break
                if len(keep) < len(values):
                    spec["when"] = {**spec["when"], parent: keep}
                    out.append((name, f"condition on {parent} keeps {keep} ({parent} no longer takes the others)"))
                    changed = True
    return out


def propose(
    dims: list[Dim],
    specs: dict[str, dict],
    st: _Stats,
    fixes: dict[str, dict | None],
    metric: str,
    goal: str,
    method: str,
    num_samples: int,
    notes: list | None = None,
    n_configs: int = 0,
    limits: dict | None = None,
) -> tuple[pd.DataFrame, dict]:
    """(changes table, next space as a YAML-ready dict in the shared schema).

    ``specs`` holds every declared spec (incl. fixed ones and ones absent from
    the table, carried over unchanged); without a declared space, the analysed
    parameters' observed ranges are the old specs. ``limits``: {name: (low, high)}
    hard limits no expansion passes.
    """
    notes = notes if notes is not None else []
    declared = bool(specs)
    by_name = {d.name: d for d in dims}
    order = list(specs) if declared else [d.name for d in dims]
    limits = dict(limits or {})
    unknown = [k for k in limits if k not in by_name and k not in specs]
    if unknown:
        raise ConfigError(f"--limits: {unknown[0]!r} is not an analysed parameter; parameters: {', '.join(order)}")
    params, rows = {}, []
    for name in order:
        d = by_name.get(name)
        old = {k: v for k, v in specs[name].items() if k != "when"} if declared else inferred_spec(d)
        when = specs[name].get("when") if declared else (dict(d.when) or None)
        if d is None:
            params[name] = plain({**written(old), **({"when": when} if when else {})})
            continue
        if declared and not d.declared:
            continue
        action, new, evidence = decide(d, dict(old), st, fixes.get(name), limits.get(name))
        params[name] = plain({**written(new), **({"when": when} if when else {})})
        rows.append(
            {
                "parameter": name,
                "action": action,
                "old": spec_text(written(old)),
                "new": spec_text(written(new)),
                "evidence": evidence,
            }
        )
    for name, why in _prune_conditions(params):
        notes.append(f"{name}: {why}")
        for r in rows:
            if r["parameter"] == name:
                r["evidence"] = _join(r["evidence"], why)
                if name not in params:
                    r["action"], r["new"] = "drop", "(never active)"
    if method == "grid" and not _griddable(params):
        method = "random"
        num_samples = num_samples or n_configs
        notes.append("method grid -> random in next_space.yaml: a proposed range has no grid points ('num')")
    out = {
        "method": method,
        "metric": {"name": metric, "goal": "minimize" if goal == "min" else "maximize"},
    }
    if num_samples:
        out["num_samples"] = int(num_samples)
    out["parameters"] = params
    return pd.DataFrame(rows, columns=["parameter", "action", "old", "new", "evidence"]), out
