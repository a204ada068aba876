"""The rules of the proposed next search space: one action per parameter (fix,
expand, narrow or keep), each with one line of evidence. ``RULES`` is written
into report.md verbatim; :func:`decide` applies them to one parameter. How a
bound or a choice's levels move is in :mod:`jaxexp.analysis.nextbounds`."""

from __future__ import annotations

import numpy as np
import pandas as pd

from jaxexp.analysis import core
from jaxexp.analysis.dims import Dim, from_scale, plain, to_scale
from jaxexp.analysis.nextbounds import (
    EXPAND,
    LOG_FACTOR,
    _finish_bound,
    _typed,
    expand_bound,
    extend_levels,
)

FIX_EFFECT = 0.05
FIX_P = 0.10
NARROW_P = 0.10
NARROW_SPAN = 0.5
PAD = 0.10

RULES = (
    f"FIX a categorical, boolean or numeric-choice parameter to one value when 100% of the elites (at least "
    f"{core.MIN_ELITES} where it is active) share that value, that value beats the other values by more than "
    f"{FIX_EFFECT:.0%} of their mean metric (in the goal's direction), and Welch's p (that value vs the others) "
    f"< {FIX_P:.2f}. A numeric choice whose elites pile on its extreme level is expanded (rule 2) instead.",
    f"EXPAND a bounded numeric range on the side of a boundary hit (at least {core.BOUNDARY_SHARE:.0%} of the "
    f"elites in the outer {core.ZONE:.0%} of the range, one-sided hypergeometric p < {core.BOUNDARY_ALPHA:.2f}) by "
    f"{EXPAND:.0%} of the range's width on that side, at most; on the log scale for log ranges, where the bound "
    f"moves at most x{LOG_FACTOR:g} (or /{LOG_FACTOR:g}) per step (integers rounded outward, 3 significant digits, "
    "a range starting at >= 0 stays >= 0, never past a declared hard limit (--limits) nor a config field's valid "
    "values: the step is halved until valid, and a bound at the limit stays); a numeric choice gets one more "
    f"level past its extreme, continuing its step (x2 for 8, 16, 32; a geometric step capped at x{LOG_FACTOR:g}).",
    f"NARROW a bounded numeric range to the elites' range padded by {PAD:.0%} of the old range's width on each side "
    f"(inside the old range) when the elites span < {NARROW_SPAN:.0%} of the range and the parameter's Spearman p "
    f"< {NARROW_P:.2f}; a numeric choice keeps the elites' levels plus one neighbour on each side. A boundary hit "
    "and a narrowing combine: expand on the hit side, narrow on the other.",
    "Otherwise KEEP the spec as it was. `when` conditions (declared, or read from a table where a parameter is "
    "empty exactly where a choice takes other values), `num` and `q` are carried over; a condition value its "
    "parent no longer takes is dropped (a parameter left with none is dropped: never active); `probabilities` are "
    "dropped where the levels change. Log ranges are written as `log_uniform_values` (an integer one inferred from "
    "a table as `q_log_uniform_values` with q 1), the spelling jaxexp and W&B read alike. The p-values in these "
    "rules are the raw ones (as the rules were "
    "written); the Benjamini-Hochberg q-value is printed beside each, and a change whose q >= 0.10 says so.",
)


def _g(x: float) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{x:.3g}"


def _join(*parts: str) -> str:
    return "; ".join(p for p in parts if p)


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


def decide(d: Dim, spec: dict, st: _Stats, fix: dict | None, limit: tuple | None = None) -> tuple[str, dict, str]:
    """(action, new spec, evidence) for one parameter (``limit``: its hard limits)."""
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
        return _decide_levels(d, new, hits, hit_sides, narrow_ok, span, e_lo, e_hi, test_text, flag, notes, limit)
    lo, hi = d.low, d.high
    actions, parts = [], list(notes)
    for _, h in hits.iterrows() if len(hits) else []:
        v = expand_bound(d, h["side"], limit)
        at = f"elites {h['elites_at']}/{h['elites']} at the {'upper' if h['side'] == 'high' else 'lower'} bound"
        at += f" ({h['zone']}; all trials {h['all_share']:.0%}, p={_g(h['p'])})"
        if v is None:
            why = " (its hard limit)" if _at_limit(h["bound"], h["side"], limit) else ""
            parts.append(f"{at}; cannot expand past {_g(h['bound'])}{why}")
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


def _at_limit(bound: float, side: str, limit: tuple | None) -> bool:
    v = (limit or (None, None))[0 if side == "low" else 1]
    return v is not None and (bound <= v if side == "low" else bound >= v)


def _decide_levels(d, new, hits, hit_sides, narrow_ok, span, e_lo, e_hi, test_text, flag, notes, limit=None):
    levels = _sorted_levels(list(d.levels))
    parts, actions = list(notes), []
    for _, h in hits.iterrows() if len(hits) else []:
        v = extend_levels(d, h["side"], limit)
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
