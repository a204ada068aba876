"""The proposed next search space: one action per parameter, each with one
line of evidence. ``RULES`` is written into report.md verbatim."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from jaxexp.analysis import core
from jaxexp.analysis.dims import Dim, from_scale, plain, to_scale

FIX_EFFECT = 0.05
FIX_P = 0.10
NARROW_P = 0.10
NARROW_SPAN = 0.5
PAD = 0.10
EXPAND = 0.5

RULES = (
    f"FIX a categorical, boolean or numeric-choice parameter to one value when 100% of the elites (at least "
    f"{core.MIN_ELITES} where it is active) share that value, that value beats the other values by more than "
    f"{FIX_EFFECT:.0%} of their mean metric (in the goal's direction), and Welch's p (that value vs the others) "
    f"< {FIX_P:.2f}. A numeric choice whose elites pile on its extreme level is expanded (rule 2) instead.",
    f"EXPAND a bounded numeric range on the side of a boundary hit (at least {core.BOUNDARY_SHARE:.0%} of the "
    f"elites in the outer {core.ZONE:.0%} of the range, one-sided hypergeometric p < {core.BOUNDARY_ALPHA:.2f}) by "
    f"{EXPAND:.0%} of the range's width on that side, on the log scale for log ranges (integers rounded outward, "
    "3 significant digits, a range starting at >= 0 stays >= 0, a config field's valid values respected); a "
    "numeric choice gets one more level past its extreme, continuing its step (x2 for 8, 16, 32).",
    f"NARROW a bounded numeric range to the elites' range padded by {PAD:.0%} of the old range's width on each side "
    f"(inside the old range) when the elites span < {NARROW_SPAN:.0%} of the range and the parameter's Spearman p "
    f"< {NARROW_P:.2f}; a numeric choice keeps the elites' levels plus one neighbour on each side. A boundary hit "
    "and a narrowing combine: expand on the hit side, narrow on the other.",
    "Otherwise KEEP the spec as it was. `when` conditions, `num` and `q` are carried over; `probabilities` are "
    "dropped where the levels change. The p-values in these rules are the raw ones (as the rules were "
    "written); the Benjamini-Hochberg q-value is printed beside each, and a change whose q >= 0.10 says so.",
)


def _g(x: float) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{x:.3g}"


def _join(*parts: str) -> str:
    return "; ".join(p for p in parts if p)


def _round_sig(x: float, side: str, sig: int = 3) -> float:
    """x rounded outward (down for a low bound, up for a high one) to ``sig`` digits."""
    if x == 0 or not np.isfinite(x):
        return x
    e = math.floor(math.log10(abs(x))) - sig + 1
    f = 10.0**e
    r = x / f
    r = round(r) if abs(r - round(r)) < 1e-6 else r  # exp(log(...)) fuzz: 0.1000000002 is 0.1
    y = (math.floor(r) if side == "low" else math.ceil(r)) * f
    return float(f"{y:.{sig}g}")  # no 0.30000000000000004


def _config_field(name: str):
    from jaxexp import config as cfgmod

    base = cfgmod.default_config()
    return (base, cfgmod.get_path(base, name)) if name in cfgmod.program_fields(base) else (None, None)


def _valid(name: str, value) -> bool:
    """For a jaxexp config field: does a member with this value validate?"""
    from jaxexp import config as cfgmod
    from jaxexp.errors import ConfigError

    base, old = _config_field(name)
    if base is None:
        return True
    if isinstance(old, int) and not isinstance(old, bool):
        if float(value) != int(value):
            return False
        value = int(value)
    try:
        cfgmod.validate_member(cfgmod.with_values(base, {name: value}))
    except ConfigError:
        return False
    return True


def _finish_bound(d: Dim, v: float, side: str) -> float:
    """A new bound in the parameter's units: rounded outward, kept >= 0 where the
    old range was, integers and multiples of q kept."""
    if not d.log and side == "low" and d.low >= 0:
        v = max(v, 0.0)
    if d.q:
        v = (math.floor(v / d.q + 1e-6) if side == "low" else math.ceil(v / d.q - 1e-6)) * d.q
        v = round(v, 12)
    elif d.integer:
        v = float(math.floor(v + 1e-6) if side == "low" else math.ceil(v - 1e-6))
    else:
        v = _round_sig(v, side)
    if d.log:
        v = max(v, 1.0 if d.integer else np.nextafter(0, 1))
    return v


def expand_bound(d: Dim, side: str) -> float | None:
    """The expanded bound on ``side``; None when it cannot move (already at 0,
    or no valid value for the config field)."""
    lo, hi = to_scale(d, [d.low, d.high])
    width = hi - lo
    old = d.low if side == "low" else d.high
    for frac in (EXPAND, EXPAND / 2, EXPAND / 4, EXPAND / 8):
        s = lo - frac * width if side == "low" else hi + frac * width
        v = _finish_bound(d, from_scale(d, s), side)
        if v != old and (v < old if side == "low" else v > old) and _valid(d.name, _typed(d, v)):
            return v
    return None


def _typed(d: Dim, v: float):
    return int(v) if d.integer and float(v).is_integer() else float(v)


def extend_levels(d: Dim, side: str) -> object | None:
    """One more numeric level past the extreme on ``side`` (continuing a
    geometric or arithmetic step); None when there is no sensible one."""
    nums = sorted(float(v) for v in d.levels)
    if len(nums) < 2:
        return None
    ratios = [b / a for a, b in zip(nums, nums[1:])] if nums[0] > 0 else []
    if ratios and max(ratios) - min(ratios) < 1e-6 * max(ratios) and ratios[0] > 1:
        new = nums[-1] * ratios[-1] if side == "high" else nums[0] / ratios[0]
    else:
        new = nums[-1] + (nums[-1] - nums[-2]) if side == "high" else nums[0] - (nums[1] - nums[0])
    if side == "low" and nums[0] >= 0 and new < 0:
        return None
    integer = all(float(v).is_integer() for v in nums) and all(not isinstance(v, float) for v in d.levels)
    if integer:
        new = round(new)
        if new in nums:
            return None
    value = int(new) if integer else float(f"{new:.6g}")
    return value if _valid(d.name, value) else None


def _sorted_levels(levels) -> list:
    return sorted(levels, key=float)


def _range_text(lo, hi) -> str:
    return f"[{_g(lo)}, {_g(hi)}]"


class _Stats:
    """What the rules read about one parameter."""

    def __init__(self, cont: pd.DataFrame, boo: pd.DataFrame, cat: pd.DataFrame, rng: pd.DataFrame, bnd):
        self.cont = cont.set_index("parameter") if len(cont) else cont
        self.boo = boo.set_index("parameter") if len(boo) else boo
        self.cat = cat.drop_duplicates("parameter").set_index("parameter") if len(cat) else cat
        self.rng = rng.set_index("parameter") if len(rng) else rng
        self.bnd = bnd

    def test(self, d: Dim) -> tuple[str, float, float]:
        """(text, p, BH q) of the parameter's own test."""
        if d.kind == "numeric" and d.name in self.cont.index:
            r = self.cont.loc[d.name]
            return f"rho={r['rho']:+.2f} (p={_g(r['p'])}, q={_g(r['p_bh'])})", r["p"], r["p_bh"]
        if d.kind == "boolean" and d.name in self.boo.index:
            r = self.boo.loc[d.name]
            return f"True-False {_g(r['diff'])} (p={_g(r['p'])}, q={_g(r['p_bh'])})", r["p"], r["p_bh"]
        if d.name in self.cat.index:
            r = self.cat.loc[d.name]
            return (
                f"best {r['best_level']} vs worst {r['worst_level']}; Kruskal p={_g(r['kruskal_p'])} "
                f"(q={_g(r['kruskal_p_bh'])})",
                r["kruskal_p"],
                r["kruskal_p_bh"],
            )
        return "no test (too few active rows)", np.nan, np.nan


def decide(d: Dim, spec: dict, st: _Stats, fix: dict | None) -> tuple[str, dict, str]:
    """(action, new spec, evidence) for one parameter."""
    test_text, p, q = st.test(d)
    rng = st.rng.loc[d.name] if d.name in st.rng.index else None
    bad_q = " (not significant after BH: q >= 0.10)"
    notes = []
    hits = st.bnd[(st.bnd["parameter"] == d.name) & st.bnd["hit"]] if len(st.bnd) else st.bnd
    if d.kind == "numeric" and d.choice and len(hits):
        fix = None  # elites piled on an extreme level: the space should go further, not stop there
    if fix is not None and fix.get("shared"):
        where = f"elites {fix['elites']}/{fix['elites']} at {d.name}={fix['level']}"
        vs = (
            f"{fix['level']} vs other values: {_g(fix['mean_at'])} vs {_g(fix['mean_rest'])} "
            f"({_g(100 * fix['effect'])}% better), Welch p={_g(fix['p'])}"
        )
        if fix["n_rest"] and np.isfinite(fix["effect"]) and fix["effect"] > FIX_EFFECT and fix["p"] < FIX_P:
            new = {"value": plain(fix["value"])}
            flag = bad_q if np.isfinite(q) and q >= 0.10 else ""
            return "fix", new, f"{where}; {vs}; fix to {fix['level']}{flag}"
        why = (
            "no other value has a usable trial"
            if not fix["n_rest"]
            else f"effect {_g(100 * fix['effect'])}% <= {FIX_EFFECT:.0%}"
            if not (np.isfinite(fix["effect"]) and fix["effect"] > FIX_EFFECT)
            else f"p={_g(fix['p'])} >= {FIX_P:.2f}"
        )
        notes.append(f"{where} but not fixed: {why}")
    if d.kind != "numeric":
        levels = f"elites at {rng['elite_levels']}" if rng is not None and not notes else ""
        return "keep", spec, _join(*notes, levels, test_text)
    if d.distribution == "normal" or not d.bounded:
        return "keep", spec, f"{test_text}; unbounded (normal): no boundary or narrowing rule applies"
    span = rng["elite_span_pct"] / 100 if rng is not None else np.nan
    narrow_ok = bool(np.isfinite(span) and span < NARROW_SPAN and np.isfinite(p) and p < NARROW_P)
    e_lo, e_hi = (rng["elite_min"], rng["elite_max"]) if rng is not None else (np.nan, np.nan)
    hit_sides = list(hits["side"]) if len(hits) else []
    flag = bad_q if np.isfinite(q) and q >= 0.10 else ""
    new = dict(spec)
    if d.choice:
        return _decide_levels(d, new, hits, hit_sides, narrow_ok, span, e_lo, e_hi, test_text, flag, notes)
    lo, hi = d.low, d.high
    actions, parts = [], list(notes)
    for _, h in hits.iterrows() if len(hits) else []:
        v = expand_bound(d, h["side"])
        at = f"elites {h['elites_at']}/{h['elites']} at the {'upper' if h['side'] == 'high' else 'lower'} bound"
        at += f" ({h['zone']}; all trials {h['all_share']:.0%}, p={_g(h['p'])})"
        if v is None:
            parts.append(f"{at}; cannot expand past {_g(h['bound'])}")
            continue
        parts.append(f"{at}; expand {_g(h['bound'])} -> {_g(v)}")
        lo, hi = (v, hi) if h["side"] == "low" else (lo, v)
        actions.append("expand")
    if narrow_ok:
        s_lo, s_hi = to_scale(d, [d.low, d.high])
        pad = PAD * (s_hi - s_lo)
        n_lo = max(d.low, _finish_bound(d, from_scale(d, to_scale(d, [e_lo])[0] - pad), "low"))
        n_hi = min(d.high, _finish_bound(d, from_scale(d, to_scale(d, [e_hi])[0] + pad), "high"))
        if "low" not in hit_sides and n_lo > d.low:
            lo = n_lo
        if "high" not in hit_sides and n_hi < d.high:
            hi = n_hi
        if (lo, hi) != (d.low, d.high) and (lo > d.low or hi < d.high):
            actions.append("narrow")
            parts.append(
                f"elites in {_range_text(e_lo, e_hi)} span {span:.0%} of the range, {test_text}; "
                f"narrow to {_range_text(lo, hi)}{flag}"
            )
    if not actions:
        why = f"elites span {_g(100 * span)}% of the range" if np.isfinite(span) else "no elites where active"
        return "keep", spec, _join(*parts, test_text, why, "" if len(hits) else "no boundary hit")
    new.update(min=_typed(d, lo), max=_typed(d, hi))
    return "+".join(dict.fromkeys(actions)), new, "; ".join(parts)


def _decide_levels(d, new, hits, hit_sides, narrow_ok, span, e_lo, e_hi, test_text, flag, notes):
    levels = _sorted_levels(list(d.levels))
    parts, actions = list(notes), []
    for _, h in hits.iterrows() if len(hits) else []:
        v = extend_levels(d, h["side"])
        at = f"elites {h['elites_at']}/{h['elites']} at {d.name}={_g(h['bound'])} (the {h['side']}est level; "
        at += f"all trials {h['all_share']:.0%}, p={_g(h['p'])})"
        if v is None:
            parts.append(f"{at}; no sensible level past it")
            continue
        levels = [v, *levels] if h["side"] == "low" else [*levels, v]
        parts.append(f"{at}; add {v}")
        actions.append("expand")
    if narrow_ok:
        nums = [float(x) for x in levels]
        i_lo = max(0, min(i for i, x in enumerate(nums) if x >= e_lo) - 1)
        i_hi = min(len(nums) - 1, max(i for i, x in enumerate(nums) if x <= e_hi) + 1)
        # never narrow the side that was just expanded
        keep = levels[0 if "low" in hit_sides else i_lo : (len(levels) - 1 if "high" in hit_sides else i_hi) + 1]
        if len(keep) < len(levels):
            dropped = [x for x in levels if x not in keep]
            levels = keep
            actions.append("narrow")
            parts.append(
                f"elites at {_g(e_lo)}..{_g(e_hi)} span {span:.0%} of the levels, {test_text}; "
                f"drop {', '.join(str(x) for x in dropped)}{flag}"
            )
    if not actions:
        return "keep", new, _join(*parts, test_text, f"elites span {_g(100 * span)}% of the levels")
    new["values"] = [plain(x) for x in levels]
    new.pop("probabilities", None)
    return "+".join(dict.fromkeys(actions)), new, "; ".join(parts)


def inferred_spec(d: Dim) -> dict:
    """A spec for a parameter seen only in the data (observed range or levels)."""
    if d.kind == "boolean":
        return {"values": [False, True]}
    if d.choice or d.kind == "categorical":
        return {"values": [plain(v) for v in d.levels]}
    # observed extremes, rounded outward (to 3 significant digits) so they still cover every trial
    lo, hi = _typed(d, _finish_bound(d, d.low, "low")), _typed(d, _finish_bound(d, d.high, "high"))
    return {"distribution": d.distribution, "min": lo, "max": hi}


def spec_text(spec: dict) -> str:
    if "value" in spec:
        return f"value {spec['value']}"
    if "values" in spec:
        return f"values {plain(spec['values'])}"
    if spec.get("distribution") == "normal":
        return f"normal(mu={spec.get('mu')}, sigma={spec.get('sigma')})"
    return f"{spec.get('distribution')} [{_g(spec.get('min'))}, {_g(spec.get('max'))}]"


def _griddable(params: dict) -> bool:
    from jaxexp import space as spacemod
    from jaxexp.errors import ConfigError

    try:
        for p in spacemod.parse(params):
            spacemod.grid_values(p)
    except ConfigError:
        return False
    return True


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
) -> tuple[pd.DataFrame, dict]:
    """(changes table, next space as a YAML-ready dict in the shared schema).

    ``specs`` holds every declared spec (incl. fixed ones and ones absent from
    the table, carried over unchanged); without a declared space, the analysed
    parameters' observed ranges are the old specs.
    """
    notes = notes if notes is not None else []
    declared = bool(specs)
    by_name = {d.name: d for d in dims}
    order = list(specs) if declared else [d.name for d in dims]
    params, rows = {}, []
    for name in order:
        d = by_name.get(name)
        old = {k: v for k, v in specs[name].items() if k != "when"} if declared else inferred_spec(d)
        when = specs[name].get("when") if declared else None
        if d is None:
            params[name] = plain({**old, **({"when": when} if when else {})})
            continue
        if declared and not d.declared:
            continue
        action, new, evidence = decide(d, dict(old), st, fixes.get(name))
        params[name] = plain({**new, **({"when": when} if when else {})})
        rows.append(
            {"parameter": name, "action": action, "old": spec_text(old), "new": spec_text(new), "evidence": evidence}
        )
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
