"""``jaxexp blend``: the command-line face of ``jaxexp.blend``."""

from __future__ import annotations

from absl import flags

from jaxexp.cli import fail as _fail


def run(workdir: str) -> None:
    from jaxexp.blending import api, demo
    from jaxexp.blending.stats import fmt_w
    from jaxexp.errors import ConfigError

    F = flags.FLAGS
    preds, weights, clip, round_to, compare = F.preds, F.weights, F.clip, F.round, F.compare
    if F.demo:
        if preds:
            _fail("--demo: the demo brings its own data; drop --preds")
        preds = demo.demo_data()
        weights = weights or demo.WEIGHTS
        clip = clip if clip is not None else demo.CLIP
        round_to = round_to or demo.ROUND_TO
        # the demo's own comparison names the demo's own labels: not with the user's --weights
        compare = compare or (None if F.weights else demo.COMPARE)
    elif not F.preds:
        _fail("--preds: missing; pass --preds=FILE.csv|FILE.npz (or --demo)")
    try:
        df = api.blend(
            preds,
            metric=F.metric,
            step=F.step or None,
            weights=weights,
            target=F.target,
            models=F.models,
            row_weights=F.row_weights,
            groups=F.groups,
            folds=F.folds,
            n_folds=F.n_folds,
            nonneg=F.nonneg,
            sum_to_one=F.sum_to_one,
            bounds=F.bounds,
            clip=clip,
            round_to=round_to,
            eps=F.eps,
            decimals=F.decimals,
            n_boot=F.n_boot,
            top_k=F.top_k,
            compare=compare,
            seed=F.seed,
            dtype=F.dtype,
            memory_budget=F.memory_mb << 20,
            max_points=F.max_points,
            milp_time_limit=F.milp_time_limit,
            milp_max_rows=F.milp_max_rows,
            workdir=workdir,
            overwrite=F.overwrite,
            scores=F.scores,
            preds_key=F.preds_key,
        )
    except ConfigError as e:
        _fail(str(e))
    except KeyboardInterrupt:
        _fail("interrupted; nothing was written")
    s = df.attrs["summary"]
    parts = [f"wrote {workdir}/report.md"]
    if "grid_best" in s:
        parts.append(f"grid best {fmt_w(s['grid_best']['w'])}: {s['metric']} {s['grid_best']['score']:.7g}")
        parts.append(f"{s['plateau']['exact_ties']} exact tie(s)")
    if s["exact"].get("w") is not None:
        ex = s["exact"]
        worse = " (worse than the grid best after post-processing)" if ex.get("worse_than_grid_best") else ""
        parts.append(f"{ex.get('name') or 'exact optimum'} {fmt_w(ex['w'])}: {ex['score']:.7g}{worse}")
        if not ex.get("is_optimum", True) and s.get("best_verified"):
            parts.append(f"best verified {fmt_w(s['best_verified']['w'])}: {s['best_verified']['score']:.7g}")
    if s.get("crossfit"):
        parts.append(s["crossfit"]["verdict"])
    print("; ".join(parts))
