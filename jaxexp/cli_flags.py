"""The command line's text: the command list of ``jaxexp --help`` and the flags of
``jaxexp blend`` and ``jaxexp analyze``."""

from __future__ import annotations

from absl import flags

COMMAND_HELP = {
    "sweep": "train every member of a config's sweep: --config=FILE.py --workdir=DIR (resumes a stopped one)",
    "train": "train the config's base settings for sweep.seeds seeds: --config=FILE.py --workdir=DIR",
    "validate": "check a space file or a config's sweep without running it: validate FILE.yaml|FILE.py",
    "analyze": "statistics, elites, boundary hits and a next space: --workdir=DIR or --table=FILE.csv",
    "blend": "score every weighting of several models' predictions: --preds=FILE --metric=mae --workdir=DIR",
    "export": "write one member's best parameters as a verified checkpoint: --workdir=DIR --member=N --out=PATH",
    "inspect": "print a checkpoint's architecture record without reading an array: inspect PATH",
}


def usage() -> str:
    """``jaxexp --help``: every command with one line."""
    width = max(map(len, COMMAND_HELP))
    lines = ["usage: jaxexp COMMAND [flags]   (python -m jaxexp.main COMMAND ...)", "", "commands:"]
    lines += [f"  {name.ljust(width)}  {text}" for name, text in COMMAND_HELP.items()]
    lines += ["", "Config fields are flags too: --config.train.lr=0.01. `jaxexp CMD --helpfull` lists every flag."]
    return "\n".join(lines)


def define_blend_flags() -> None:
    """Flags of ``jaxexp blend`` (ignored by sweep/train)."""
    f = flags
    f.DEFINE_string("preds", None, "blend: .csv/.npz with the target and one prediction column per model.")
    f.DEFINE_bool("demo", False, "blend: use the bundled three-model demo (jaxexp.blending.demo).")
    f.DEFINE_string("metric", "mae", "blend: mae, rmse, mse, mape, logloss or accuracy.")
    f.DEFINE_float("step", 0.01, "blend: simplex grid step (0 = only --weights).")
    f.DEFINE_string("weights", None, "blend: weightings to score, e.g. champion=50/30/20,52/28/20, or a CSV.")
    f.DEFINE_string("target", "target", "blend: target column/array name.")
    f.DEFINE_string("models", None, "blend: comma list of model columns (default: all other numeric columns).")
    f.DEFINE_string("row_weights", None, "blend: column of row weights.")
    f.DEFINE_string("groups", None, "blend: column of group ids (bootstrap and folds resample whole groups).")
    f.DEFINE_string("folds", None, "blend: column of fold ids for the held-out check.")
    f.DEFINE_integer("n_folds", 5, "blend: folds made by the tool when --folds is not given (0 = no check).")
    f.DEFINE_bool("nonneg", True, "blend: weights >= 0 (--nonneg=false: free sign, default bounds [-1, 2]).")
    f.DEFINE_bool("sum_to_one", True, "blend: weights sum to one.")
    f.DEFINE_string("bounds", None, "blend: per-model bounds, e.g. multi=0.1:0.5,finetuned=:0.3.")
    f.DEFINE_string("clip", None, "blend: clip the blend to lo:hi before scoring (either side may be empty).")
    f.DEFINE_float("round", 0.0, "blend: round the blend to multiples of this before scoring (0 = no).")
    f.DEFINE_float("eps", None, "blend: plateau tolerance (default: half a unit in the --decimals-th decimal).")
    f.DEFINE_integer("decimals", 5, "blend: decimals scores are displayed with (ties at display precision).")
    f.DEFINE_integer("n_boot", 1000, "blend: bootstrap resamples (0 = none).")
    f.DEFINE_integer("top_k", 10, "blend: grid points besides the best compared in the bootstrap.")
    f.DEFINE_string("compare", None, "blend: pairs to compare, e.g. champion:micro_o,50/30/20:53/25/22.")
    f.DEFINE_integer("seed", 0, "blend: seed of bootstrap resamples and made folds.")
    f.DEFINE_string("dtype", "auto", "blend: float32, float64 or auto (float64 where the score is piecewise constant).")
    f.DEFINE_integer("memory_mb", 256, "blend: MiB of rows replicated over the devices per scoring call.")
    f.DEFINE_integer("max_points", 20_000_000, "blend: refuse grids larger than this.")
    f.DEFINE_float("milp_time_limit", 30.0, "blend: seconds for the MILP of the post-processed optimum (0 = skip).")
    f.DEFINE_integer("milp_max_rows", 2_000, "blend: the MILP of the post-processed optimum is not tried above this.")
    f.DEFINE_bool("overwrite", False, "blend: replace results already in --workdir.")


def define_analyze_flags() -> None:
    """Flags of ``jaxexp analyze`` (it also reads --workdir, --metric, --out)."""
    for name, help_ in (
        ("table", "analyze: CSV with one row per trial (Optuna trials_dataframe(), W&B runs export, any table)."),
        ("goal", "analyze --table: min or max (minimize/maximize accepted)."),
        ("space", "analyze --table: optional W&B-style space YAML (kinds and declared ranges)."),
    ):
        if name not in flags.FLAGS:  # another command may define the same flag
            flags.DEFINE_string(name, None, help_)
    flags.DEFINE_float("elite_quantile", 0.2, "analyze: top share of configurations that are elites (at least 3).")
