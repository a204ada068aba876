"""report.md: a short, honest summary of a sweep."""

from __future__ import annotations

import math

import pandas as pd


def _ci(mean: float, low: float, high: float) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "n/a"
    return f"{mean:.5g}" if math.isnan(low) else f"{mean:.5g} [{low:.5g}, {high:.5g}]"


def _p(p: float) -> str:
    return "n/a" if p is None or math.isnan(p) else f"{p:.2g}"


def _pm(mean: float, std: float) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "n/a"
    return f"{mean:.5g}" if std is None or math.isnan(std) else f"{mean:.5g} ± {std:.2g}"


def _fmt(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _halving_line(res) -> str:
    cfg = res.config
    if cfg.sweep.pbt_interval and not res.pbt.empty:
        copies = res.pbt.drop_duplicates(["wave", "member"])
        return (
            f"Population-based training every {cfg.sweep.pbt_interval} epoch(s): {len(copies)} copies of a better "
            f"member's parameters, each with perturbed {', '.join(cfg.sweep.pbt_params)} (pbt.csv); a copied member "
            "is not reproducible from its members.csv row alone. "
        )
    if not cfg.sweep.halving_rungs:
        return ""
    pruned = res.members["pruned_epoch"].dropna().astype(int)
    at = ", ".join(f"{int((pruned == r).sum())} at epoch {r}" for r in cfg.sweep.halving_rungs)
    return (
        f"Successive halving (rungs {tuple(cfg.sweep.halving_rungs)}, eta {cfg.sweep.halving_eta:g}): "
        f"{len(pruned)} member(s) pruned ({at}); pruned members are left out of the configuration statistics. "
    )


def _timing_line(t: dict) -> str:
    """Where the time went (the full breakdown is timings.json)."""

    def sec(key: str, label: str) -> str:
        return f"{label} {t[key]:.1f} s" if t.get(key) else ""

    cache = t.get("compile_cache_hits")
    run = [
        f"compile {t.get('compile_s', 0.0):.1f} s"
        + (f" ({int(cache)} program(s) loaded from the compilation cache)" if cache else ""),
        sec("init_compile_s", "init compile"),
        f"init {t.get('init_s', 0.0):.1f} s",
        f"training segments {t.get('segments_s', 0.0):.1f} s",
        sec("checkpoint_s", "checkpoints"),
        sec("checkpoint_wait_s", "waiting for the last checkpoint"),
    ]
    around = [sec("startup_s", "startup"), sec("data_s", "data"), sec("checks_s", "checks")]
    after = [sec("plots_s", "plots"), sec("tensorboard_s", "TensorBoard events")]
    text = f"Training run {t.get('total_s', float('nan')):.1f} s: " + ", ".join(p for p in run if p)
    if "resumed_from_step" in t:
        text += f" (resumed from checkpoint step {int(t['resumed_from_step'])})"
    if any(around) or any(after):
        text += "; besides: " + ", ".join(p for p in around + after if p)
    return text + " (every phase: timings.json)."


def _best_members(res, params: list[str]) -> list[str]:
    """The top ``sweep.top_k`` members by their best metric (ok members only)."""
    cfg, m = res.config, res.metric
    ok = res.members[res.members["status"] == "ok"].dropna(subset=[f"best_{m}"])
    top = ok.sort_values(f"best_{m}", ascending=(cfg.goal == "min")).head(cfg.sweep.top_k)
    rows = [
        [
            r["member"],
            r["seed"],
            *[r[p] for p in params],
            r[f"best_{m}"],
            r["best_epoch"],
            "" if pd.isna(r["stop_epoch"]) else r["stop_epoch"],
            r[f"final_{m}"],
        ]
        for _, r in top.iterrows()
    ]
    header = ["member", "seed", *params, f"best {m}", "best epoch", "stop epoch", f"final {m}"]
    return ["## Best members", "", _table(header, rows), ""]


def markdown(res) -> str:
    """The report of a Results object."""
    cfg, m, s = res.config, res.metric, res.summary
    n, n_div = len(res.members), int((res.members["status"] == "diverged").sum())
    n_stop = int((res.members["status"] == "stopped").sum())
    t = res.timings
    out = [
        f"# {cfg.name}: {len(s)} configuration(s) x {cfg.sweep.seeds} seed(s) = {n} members",
        "",
        f"Selection metric: `{m}` ({cfg.goal}). Diverged members: {n_div}. "
        + (f"**Interrupted**: {n_stop} member(s) stopped before their last epoch. " if res.interrupted else "")
        + _halving_line(res)
        + _timing_line(t),
        "",
        f"## Best configurations (mean ± sample std over seeds, top {cfg.sweep.top_k})",
        "",
    ]
    from jaxexp.run import population

    recipes = population.recipes(cfg)
    params = res.shown_params  # recipe fields are listed once, in the Recipes section
    if recipes:
        out += ["Recipes (fields each one sets; the rest is the base config):", ""]
        out += [f"- **{name}**: " + ", ".join(f"`{k}={v}`" for k, v in r.items()) for name, r in recipes.items()]
        out += [""]
    header = ["rank", *params, "seeds", "diverged", f"best {m} mean [95% CI]", "std", "min..max"]
    header += [f"final {m}", "best epoch (mean)", "degradation (mean)", "r(init, best)", "p"]
    rows = [
        [
            rank,
            *[r[p] for p in params],
            r["seeds"],
            r["diverged"],
            _ci(r[f"best_{m}_mean"], r[f"best_{m}_ci_low"], r[f"best_{m}_ci_high"]),
            r[f"best_{m}_std"],
            f"{r[f'best_{m}_min']:.5g}..{r[f'best_{m}_max']:.5g}",
            _pm(r[f"final_{m}_mean"], r[f"final_{m}_std"]),
            r["best_epoch_mean"],
            r["degradation_mean"],
            r["init_vs_best_r"],
            _p(r["init_vs_best_p"]),
        ]
        for rank, (_, r) in enumerate(s.head(cfg.sweep.top_k).iterrows(), 1)
    ]
    out += [
        _table(header, rows),
        "",
        "Degradation: final minus best metric (how much a member lost after its best epoch). "
        "r(init, best): Pearson correlation over seeds between the metric of the initial parameters "
        "(before training) and the best one.",
        "",
    ]
    out += _comparison(res) + _pooled(res) + _groups(res) + _group_comparison(res)
    out += _best_members(res, params)
    if res.plots:
        out += ["## Plots", ""] + [f"![{name}]({name})" for name in res.plots] + [""]
    files = "`members.csv` (one row per member), `history.csv` (per epoch), `summary.csv` (per configuration), "
    files += "`comparison.csv` (against the baseline), "
    if not res.groups.empty:
        files += "`groups.csv` / `group_history.csv` (per group), `group_comparison.csv` (per group vs the baseline), "
    out += [f"Files: {files}`config.json` (the resolved config).", ""]
    return "\n".join(out)


def _comparison(res) -> list[str]:
    c = res.comparison
    if c.empty or len(c) < 2:
        return []
    by = c.columns[0]
    base = c.loc[c["baseline"], by].iloc[0]
    m = res.metric
    if by == "recipe":
        title = f"## Recipe comparison (best {m} over seeds; baseline: {base})"
    else:
        title = (
            f"## Configurations vs the best one ({res.label(base)}; best {m} over seeds, top {res.config.sweep.top_k})"
        )
        c = c.head(res.config.sweep.top_k)
    lines = [
        title,
        "",
        f"Difference = {by} minus baseline; p from Welch's t-test (two-sided). "
        "With few seeds only large differences are significant."
        + ("" if by == "recipe" else " The best was picked on these same seeds, so its lead is optimistic."),
        "",
    ]
    rows = [
        [
            r[by] if by == "recipe" else res.label(r[by]),
            r["n"],
            _ci(r["mean"], r["ci_low"], r["ci_high"]),
            r["std"],
            "baseline" if r["baseline"] else _ci(r["diff"], r["diff_ci_low"], r["diff_ci_high"]),
            "" if r["baseline"] else _p(r["p_value"]),
        ]
        for _, r in c.iterrows()
    ]
    note = []
    if (c["n"] == 0).any():
        none = ", ".join(str(v) for v in c.loc[c["n"] == 0, by])
        note = [f"No non-diverged seed (no statistics): {none}.", ""]
    head = [by if by == "recipe" else "configuration", "seeds", "mean [95% CI]", "std", "diff [95% CI]", "p"]
    return lines + [_table(head, rows), ""] + note


def _pooled(res) -> list[str]:
    from jaxexp import stats

    m = res.metric
    ok = res.members[res.members["status"] != "diverged"]
    if f"init_{m}" not in ok:
        return []
    corr = stats.correlation(ok[f"init_{m}"], ok[f"best_{m}"])
    if corr["n"] < 3 or math.isnan(corr["pearson_r"]):
        return []
    return [
        f"Initial (before training) vs best `{m}` over all {corr['n']} members: Pearson r = {corr['pearson_r']:.3f} "
        f"(p = {_p(corr['pearson_p'])}), Spearman rho = {corr['spearman_rho']:.3f} (p = {_p(corr['spearman_p'])}).",
        "",
    ]


def _groups(res) -> list[str]:
    if res.groups.empty:
        return []
    from jaxexp.run import plots

    table = plots.group_table(res)
    col = plots.group_metric(res)
    lines = [f"## Per-group {col} at the best epoch (mean over seeds)", ""]
    rows = [[g, *[table.loc[g, c] for c in table.columns]] for g in table.index]
    return lines + [_table(["group", *table.columns], rows), ""]


def _group_comparison(res) -> list[str]:
    """Every recipe vs the baseline per group: difference, Welch CI and p, BH q
    over the groups of each recipe, and the group's noise floor where known."""
    gc = res.group_comparison
    if gc.empty:
        return []
    by = gc.columns[0]
    base = res.comparison.loc[res.comparison["baseline"], by].iloc[0]
    col = gc["metric"].iloc[0]
    better = res.config.goal if col == res.metric else "min"
    if by != "recipe":  # configurations vs the best one: the top ones only (all in group_comparison.csv)
        top = [c for c in res.comparison[by] if c != base][: max(res.config.sweep.top_k - 1, 1)]
        gc = gc[gc[by].isin(top)]
    n_tests = int(gc["bh_tests"].max()) if len(gc) else 0
    family = "the groups of each recipe" if by == "recipe" else "the groups of each configuration"
    name = base if by == "recipe" else res.label(base)
    show_level = (gc["level"] != "").any()
    show_floor = gc["noise_floor"].notna().any()
    what = "recipe" if by == "recipe" else "configuration"
    lines = [
        f"## Per-group comparison with the baseline ({name}; {col} at the best epoch over seeds)",
        "",
        f"q < 0.05: the difference is more than seed noise after correcting for {n_tests} tests "
        f"({family}, Benjamini-Hochberg). Difference = {what} minus baseline "
        f"({'lower' if better == 'min' else 'higher'} is better), 95% Welch interval and two-sided Welch p"
        + ("; floor: the group's noise floor (the expected MSE of a perfect model)." if show_floor else ".")
        + ("" if by == "recipe" else " The baseline was picked on these same seeds, so its lead is optimistic."),
        "",
    ]
    head = [what, "group", *(["level"] if show_level else [])]
    head += [*(["floor"] if show_floor else []), "baseline mean (n)", "mean (n)", "diff [95% CI]", "p", "q"]
    rows = []
    for _, r in gc.iterrows():
        q = _p(r["q_value"])
        rows.append(
            [
                r[by] if by == "recipe" else res.label(r[by]),
                r["group"],
                *([r["level"]] if show_level else []),
                *([_fmt(r["noise_floor"]) if r["noise_floor"] == r["noise_floor"] else ""] if show_floor else []),
                f"{_fmt(r['baseline_mean'])} ({r['baseline_n']})",
                f"{_fmt(r['mean'])} ({r['n']})",
                _ci(r["diff"], r["diff_ci_low"], r["diff_ci_high"]),
                _p(r["p_value"]),
                f"**{q}**" if r["q_value"] < 0.05 else q,
            ]
        )
    return lines + [_table(head, rows), ""]
