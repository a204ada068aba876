"""report.md of a blend-weight search: optimum, grid best, plateau, why it is
flat, bootstrap, held-out check."""

from __future__ import annotations

import pandas as pd

from jaxexp.blending import flatness, multiclass, stats
from jaxexp.blending.score import goal_sign

SIGNIFICANT = 0.95  # P(A beats B) needed to call a difference real


def _s(v) -> str:
    return "n/a" if v is None else f"{v:.7g}"


def _w(w, names) -> str:
    return " / ".join(f"{n} {100 * v:.3g}%" for n, v in zip(names, w))


def _table(header: list[str], rows: list[list]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return out + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]


def crossfit_summary(cf: stats.CrossFit, metric: str, origin: str) -> dict:
    """Out-of-fold scores, CIs, P(tuned beats ...) and a one-sentence verdict."""
    tuned = "tuned blend (grid best per fold)"
    rows = []
    for name, score in cf.oof.items():
        p = None if name == tuned else stats.p_beats(cf.reps[tuned], cf.reps[name], metric)
        rows.append({"name": name, "oof_score": score, "ci95": stats.ci(cf.reps[name]), "p_tuned_beats": p})
    by = {r["name"]: r for r in rows}
    sign = goal_sign(metric)
    verdicts = []
    for other in ("equal blend", "best single model (per fold)"):
        r = by[other]
        if sign * (cf.oof[tuned] - r["oof_score"]) >= 0:
            verdicts.append(f"no better out of sample than the {other} ({_s(cf.oof[tuned])} vs {_s(r['oof_score'])})")
        elif r["p_tuned_beats"] < SIGNIFICANT:
            verdicts.append(
                f"not reliably better out of sample than the {other} "
                f"(P(tuned beats it) = {r['p_tuned_beats']:.2f} < {SIGNIFICANT})"
            )
    verdict = (
        "The tuned blend is " + "; and ".join(verdicts) + "."
        if verdicts
        else f"The tuned blend beats the equal blend and the best single model out of sample (P >= {SIGNIFICANT})."
    )
    return {
        "folds": cf.folds,
        "fold_origin": origin,
        "per_fold_w": cf.per_fold_w.tolist(),
        "rows": rows,
        "verdict": verdict,
        "units": cf.source,
    }


def _multiclass_note(metric: str, n_classes: int) -> str:
    if not n_classes:
        return ""
    if metric == "accuracy":
        return (
            f" Multiclass accuracy over {n_classes} classes: a row is right when its true class has the largest "
            "blended probability (ties go to the lower class index, as numpy's argmax; margins within "
            f"{multiclass.TIE_TOL:g} count as ties); the per-model diagnostics below refer to the true class's "
            "probabilities."
        )
    return (
        f" Multiclass log-loss over {n_classes} classes: each row scores the blended probability "
        "of its true class (the diagnostics below refer to those probabilities)."
    )


def _milp_lines(ex: dict, names) -> list[str]:
    """The MILP of the post-processed blend and the raw-blend fallback, when there are."""
    mp, raw = ex.get("milp"), ex.get("raw")
    if mp is None:
        return []
    line = f"  - MILP on the post-processed blend: {mp['status']}"
    if "rows" in mp:
        line += (
            f"; {mp['rows']:,} rows in it ({mp['constant_rows']:,} more cannot change), {mp['integers']:,} integer "
            f"variables, {mp['nodes']:,} nodes, {mp['seconds']:.1f} s; verified score {_s(mp.get('score'))}, "
            f"lower bound {_s(mp['bound'])}"
        )
    out = [line + "."]
    if raw and raw.get("w") is not None:
        out.append(f"  - {raw['method']}: {_w(raw['w'], names)}: {_s(raw['score'])}.")
    if not mp.get("proven"):
        out.append(
            "  - Not proven optimal: the best verified weighting of all (grid, refinement, MILP, raw optimum) "
            "is the first row of scores.csv."
        )
    return out


def markdown(summary: dict, df: pd.DataFrame) -> str:
    """report.md of ``jaxexp.blend``'s ``summary`` and table ``df``: the problem,
    the answer, the plateau and why it is flat, the listed weightings, the paired
    bootstrap, the held-out check and the files (each section only when there is
    something to show)."""
    out = _header(summary)
    out += _answer(summary)
    out += _plateau(summary)
    out += _listed(summary, df)
    out += _bootstrap(summary)
    out += _crossfit(summary)
    out += _files(summary)
    return "\n".join(out)


def _header(summary: dict) -> list[str]:
    """Title, data, constraints, post-processing, grid size and time."""
    names, metric = summary["models"], summary["metric"]
    g, t = summary["grid"], summary["timings"]
    return [
        f"# Blend-weight search: {len(names)} models, {summary['rows']:,} rows, {metric} ({summary['goal']})",
        "",
        f"Data: `{summary['source']}`. Models: {', '.join(names)}. Constraints: {g['constraints']}. "
        f"Post-processing of the blend: {g['postprocess']}." + _multiclass_note(metric, summary.get("n_classes", 0)),
        f"Grid: step {g['step']}, {g['points']:,} weightings"
        + (f", scored in {t['score_s']:.2f} s (with any listed weightings)" if "score_s" in t else "")
        + f"; total {t.get('total_s', float('nan')):.1f} s.",
        "",
    ]


def _answer(summary: dict) -> list[str]:
    """## Answer: the grid best, the exact optimum (and its MILP), the refined
    point and, when the solver's point is not the optimum, the best verified one."""
    names, metric = summary["models"], summary["metric"]
    out = ["## Answer", ""]
    ex = summary.get("exact", {})
    if "grid_best" in summary:
        gb = summary["grid_best"]
        out.append(f"- **Grid best**: {_w(gb['w'], names)}: {metric} **{_s(gb['score'])}** (float64).")
    if ex.get("w") is not None:
        out += _exact_lines(ex, summary.get("gap"), names)
    else:
        out.append(f"- Exact optimum: {ex.get('status', 'n/a')}.")
    out += _milp_lines(ex, names)
    if "refined" in summary:
        rf = summary["refined"]
        out.append(
            f"- **Refined** (step {rf['step']:g} within one grid step of the grid best, {rf['points']:,} points): "
            f"{_w(rf['w'], names)}: {_s(rf['score'])}."
        )
        out.append(
            "- Note: the metric is piecewise linear (or constant), so the best grid point need not be the grid "
            "point nearest the exact optimum."
        )
    bv = summary.get("best_verified")
    if bv and ex.get("w") is not None and not ex.get("is_optimum", True):
        out.append(
            f"- **Best verified point** (of every scored weighting: {bv['label'] or bv['source']}): "
            f"{_w(bv['w'], names)}: **{_s(bv['score'])}** (the first row of scores.csv)."
        )
    return out


def _exact_lines(ex: dict, gap: float | None, names) -> list[str]:
    """The solver's point (``ex["w"]`` set), with its gap to the grid best
    (``gap``: grid best - it, in the goal's direction)."""
    # "Exact optimum" only for the optimum of the scored problem (exact.describe);
    # otherwise say which problem the point is the optimum of.
    exact_one = ex.get("is_optimum", True)
    if gap is None or ex.get("worse_than_grid_best") is not None:
        gap_s = ""  # said on the next line
    elif exact_one:
        gap_s = f"; grid best - optimum = {gap:.3g}"
    else:
        gap_s = f"; {abs(gap):.3g} {'better' if gap >= 0 else 'worse'} than the grid best"
    dual = f"; LP dual gap {ex['dual_gap']:.1e}" if "dual_gap" in ex else ""
    status = ("; proven optimal" if ex["milp"].get("proven") else "; not proven optimal") if "milp" in ex else ""
    out = [
        f"- **{ex.get('label') or 'Exact optimum'}** ({ex['method']}{dual}{status}): {_w(ex['w'], names)}: "
        f"**{_s(ex['score'])}**{gap_s}."
    ]
    if ex.get("worse_than_grid_best") is not None:
        out.append(
            f"  - It is the optimum of {ex.get('optimum_of')}, not of the scored problem: it scores "
            f"{ex['worse_than_grid_best']:.3g} worse than the grid best after post-processing."
        )
    return out


def _plateau(summary: dict) -> list[str]:
    """## Plateau: its size and extent per model, and why it is flat."""
    pl = summary.get("plateau")
    if not pl:
        return []
    out = [
        "",
        "## Plateau",
        "",
        f"- {pl['count']:,} grid weighting(s) ({100 * pl['fraction']:.2f}%) score within eps = {pl['eps']:.3g} of "
        f"the best (boundary included); **{pl['exact_ties']:,} tie it exactly** (float64); "
        f"{pl['display_ties']:,} show the same score at {pl['decimals']} decimals.",
        "",
    ]
    out += _table(
        ["model", "plateau min", "plateau max", "exact-tie min", "exact-tie max"],
        [
            [
                n,
                f"{pl['extent'][n][0]:.3g}",
                f"{pl['extent'][n][1]:.3g}",
                f"{pl['exact_tie_extent'][n][0]:.3g}",
                f"{pl['exact_tie_extent'][n][1]:.3g}",
            ]
            for n in summary["models"]
        ],
    )
    diag = summary["diagnosis"]
    out += ["", "### Why it is flat", ""]
    if diag["mechanisms"]:
        out.append(f"Mechanism(s): **{', '.join(diag['mechanisms'])}**.")
        out.append("")
    out += [f"- {f}" for f in diag["findings"]] or ["- nothing unusual found"]
    return out


def _listed(summary: dict, df: pd.DataFrame) -> list[str]:
    """## Listed weightings: score, rank and exact grid ties of each, and the
    first one whose score is flat over several grid weightings."""
    listed = df[df["source"] == "list"]
    if not len(listed):
        return []
    names, metric = summary["models"], summary["metric"]
    out = ["", "## Listed weightings", ""]
    best = summary.get("grid_best", {}).get("score")
    ties = {d["label"]: d for d in summary.get("listed", [])}
    rows = []
    for _, r in listed.iterrows():
        tie = ties.get(r["label"], {}).get("grid_ties", "")
        note = "ties the grid best" if best is not None and r["score"] == best else ""
        rows.append([r["label"], stats.fmt_w(r[names].to_numpy(float)), _s(r["score"]), r["rank"], tie, note])
    out += _table(["label", "weights %", metric, "rank", "grid points with exactly this score", ""], rows)
    for d in summary.get("listed", []):
        if d["grid_ties"] > 1:
            extent = ", ".join(f"{n} {100 * a:.3g}-{100 * b:.3g}%" for n, a, b in zip(names, d["lo"], d["hi"]))
            post_active = summary["grid"]["postprocess"] != "none"
            out += [
                "",
                f"**{d['label']}** ({stats.fmt_w(d['w'])}, {_s(d['score'])}) ties exactly (float64) with "
                f"{d['grid_ties']} grid weightings spanning {extent}; between it and {stats.fmt_w(d['far'])} "
                f"{d['rows_changed']} of {summary['rows']:,} rows "
                f"{flatness.change_noun(metric, summary.get('n_classes', 0), post_active)}.",
            ]
            break  # the first listed weighting with a flat level set tells the story
    shared = int(listed["score"].duplicated(keep=False).sum())
    if shared:
        out += ["", f"{shared} of {len(listed)} listed weightings share their exact score with another one."]
    return out


def _bootstrap(summary: dict) -> list[str]:
    """## Is any difference more than noise?: every candidate against the
    reference, then the --compare pairs."""
    boot = summary.get("bootstrap")
    if not boot:
        return []
    out = [
        "",
        "## Is any difference more than noise? (paired bootstrap)",
        "",
        f"{boot['n_boot']} resamples of {boot['units']}, the same resample for every candidate. "
        f"Reference: **{boot['reference']}**. P(beats) = share of resamples in which the candidate scores "
        f"better than the reference (ties count half); a real difference needs P >= {SIGNIFICANT}.",
        "",
    ]
    rows = [
        [
            c["name"],
            stats.fmt_w(c["w"]),
            _s(c["score"]),
            f"[{_s(c['ci95'][0])}, {_s(c['ci95'][1])}]",
            "ref" if c["p_beats_reference"] is None else f"{c['p_beats_reference']:.3f}",
            "" if c["diff_ci95"] is None else f"[{c['diff_ci95'][0]:.3g}, {c['diff_ci95'][1]:.3g}]",
        ]
        for c in boot["candidates"]
    ]
    metric = summary["metric"]
    out += _table(["candidate", "weights %", metric, "95% CI", "P(beats ref)", "diff vs ref 95% CI"], rows)
    for p in boot["pairs"]:
        out.append("")
        out.append(
            f"- {p['a']} ({_s(p['score_a'])}) vs {p['b']} ({_s(p['score_b'])}): "
            f"P({p['a']} beats {p['b']}) = {p['p_a_beats_b']:.3f}, difference 95% CI "
            f"[{p['diff_ci95'][0]:.3g}, {p['diff_ci95'][1]:.3g}]."
        )
    return out


def _crossfit(summary: dict) -> list[str]:
    """## Held-out check: the verdict, out-of-fold scores and the weights chosen per fold."""
    cf = summary.get("crossfit")
    if not cf:
        return []
    out = [
        "",
        f"## Held-out check ({cf['folds']} folds, {cf['fold_origin']}; weights chosen on the other folds)",
        "",
        f"**{cf['verdict']}**",
        "",
    ]
    rows = [
        [
            r["name"],
            _s(r["oof_score"]),
            f"[{_s(r['ci95'][0])}, {_s(r['ci95'][1])}]",
            "" if r["p_tuned_beats"] is None else f"{r['p_tuned_beats']:.3f}",
        ]
        for r in cf["rows"]
    ]
    out += _table(["strategy", f"out-of-fold {summary['metric']}", "95% CI", "P(tuned beats it)"], rows)
    out += ["", "Weights chosen per fold: " + "; ".join(stats.fmt_w(w) for w in cf["per_fold_w"]) + "."]
    return out


def _files(summary: dict) -> list[str]:
    """## Files: the scores table, summary.json and the plot."""
    return [
        "",
        "## Files",
        "",
        (summary.get("files") or "`scores.csv` (every scored weighting, best first)")
        + ", `summary.json` (all numbers above), "
        + (
            "`ternary.png` (heatmap, plateau outlined)"
            if len(summary["models"]) == 3
            else "`profiles.png` (best score vs each weight)"
        )
        + ".",
        "",
    ]
