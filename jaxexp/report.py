"""report.md: a short, honest summary of a sweep."""

from __future__ import annotations

import math


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
        + f"Wall time {t.get('total_s', float('nan')):.1f} s: compile {t.get('compile_s', 0.0):.1f} s, "
        f"init {t.get('init_s', 0.0):.1f} s, "
        f"training segments {t.get('segments_s', 0.0):.1f} s.",
        "",
        f"## Best configurations (mean ± sample std over seeds, top {cfg.sweep.top_k})",
        "",
    ]
    params = res.params
    header = ["rank", *params, "seeds", "diverged", f"best {m}", f"final {m}", "best epoch (mean)"]
    rows = [
        [
            rank,
            *[r[p] for p in params],
            r["seeds"],
            r["diverged"],
            _pm(r[f"best_{m}_mean"], r[f"best_{m}_std"]),
            _pm(r[f"final_{m}_mean"], r[f"final_{m}_std"]),
            r["best_epoch_mean"],
        ]
        for rank, (_, r) in enumerate(s.head(cfg.sweep.top_k).iterrows(), 1)
    ]
    out += [_table(header, rows), ""]
    ok = res.members[res.members["status"] == "ok"].dropna(subset=[f"best_{m}"])
    top = ok.sort_values(f"best_{m}", ascending=(cfg.goal == "min")).head(cfg.sweep.top_k)
    out += ["## Best members", ""]
    out += [
        _table(
            ["member", "seed", *params, f"best {m}", "best epoch", f"final {m}"],
            [
                [r["member"], r["seed"], *[r[p] for p in params], r[f"best_{m}"], r["best_epoch"], r[f"final_{m}"]]
                for _, r in top.iterrows()
            ],
        ),
        "",
        "Files: `members.csv` (one row per member), `history.csv` (per epoch), `summary.csv` (per configuration), "
        "`config.json` (the resolved config).",
        "",
    ]
    return "\n".join(out)
