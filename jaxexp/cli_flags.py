"""The command line's text: the command list of ``jaxexp --help``, every command's
flags (defined here, apart from ``--config``), which command reads which flag
(``COMMAND_FLAGS``) and ``jaxexp CMD --help``, rendered from absl's flag registry."""

from __future__ import annotations

import os
import re
import sys
import textwrap

from absl import flags

COMMAND_HELP = {
    "sweep": "train every member of a config's sweep: --config=FILE.py --workdir=DIR (resumes a stopped one)",
    "train": "train the config's base settings for sweep.seeds seeds: --config=FILE.py --workdir=DIR",
    "validate": "check a space file or a config's sweep without running it: validate FILE.yaml|FILE.py",
    "analyze": "statistics, elites, boundary hits and a next space: --workdir=DIR or --table=FILE.csv",
    "blend": "score every weighting of several models' predictions: --preds=FILE --metric=mae --workdir=DIR",
    "export": "write one member's best parameters as a verified checkpoint: --workdir=DIR --member=N --out=PATH",
    "inspect": "print a checkpoint's architecture record without reading an array: inspect PATH",
    "tree": "record a mutation tree node's observation and verdict: tree annotate --workdir=DIR --node=N",
}

_RUN_FLAGS = ("config", "workdir", "distributed", "coordinator_address", "num_processes", "process_id")
# The flags each command reads (jaxexp.main: the sweep/train path, _validate, _analyze,
# _blend, _checkpoint_command), in the order ``jaxexp CMD --help`` lists them.
# tests/test_cli_help.py checks that every flag jaxexp defines is listed here.
COMMAND_FLAGS = {
    "sweep": _RUN_FLAGS,
    "train": _RUN_FLAGS,
    "validate": ("config",),
    "analyze": tuple("workdir table metric goal space params id seed limits elite_quantile out".split()),
    "blend": tuple(
        "workdir preds demo metric step weights target preds_key models row_weights groups folds n_folds nonneg "
        "sum_to_one bounds clip round eps decimals n_boot top_k compare seed dtype memory_mb max_points "
        "milp_time_limit milp_max_rows scores overwrite".split()
    ),
    "export": ("workdir", "member", "out"),
    "inspect": (),
    "tree": ("workdir", "node", "observation", "verdict"),
}
# Where a command ignores a flag's registered default (analyze reads --metric only when given).
COMMAND_DEFAULTS = {"analyze": {"metric": None, "seed": None}}

COMMAND_USAGE = {
    "sweep": "jaxexp sweep --config=FILE.py --workdir=DIR [--config.FIELD=VALUE ...] [flags]",
    "train": "jaxexp train --config=FILE.py --workdir=DIR [--config.FIELD=VALUE ...] [flags]",
    "validate": "jaxexp validate FILE.yaml|FILE.py [--config=FILE.py] [--config.FIELD=VALUE ...]",
    "analyze": "jaxexp analyze --workdir=DIR [--out=DIR] [--elite_quantile=Q]\n"
    "       jaxexp analyze --table=FILE.csv --metric=COLUMN --goal=min|max [--space=FILE.yaml] [--out=DIR]\n"
    "                      [--params=COL,...] [--id=COL,...] [--seed=COL] [--limits=NAME=LOW:HIGH,...]",
    "blend": "jaxexp blend --preds=FILE.csv|FILE.npz --workdir=DIR [flags]\n"
    "       jaxexp blend --demo --workdir=DIR [flags]",
    "export": "jaxexp export --workdir=DIR --member=N --out=PATH",
    "inspect": "jaxexp inspect PATH",
    "tree": "jaxexp tree annotate --workdir=DIR --node=N [--observation=TEXT]\n"
    "       [--verdict=supported|falsified|inconclusive]\n"
    "       jaxexp tree annotate --workdir=DIR   (re-reads a hand-edited annotations.yaml)",
}

_OVERRIDES = (
    "Config fields are flags too: --config.FIELD=VALUE overrides one field,",
    "e.g. --config.train.lr=0.01 --config.sweep.seeds=3; a misspelt field is an error (the config is locked).",
)
# Lines printed after the flags of ``jaxexp CMD --help``.
COMMAND_NOTES = {
    "sweep": (
        *_OVERRIDES,
        "--config.sweep.strategy=sweep|mutation|tpe: a sweep (--config.sweep.method=grid|random|sobol),",
        "a mutation tree (configs/mutation_tree.py) or Optuna's TPE (pip install 'jaxexp[tpe]').",
    ),
    "train": _OVERRIDES,
    "validate": (
        "FILE.yaml alone: a space of any project (structure, ranges, probabilities, conditions, size; names not",
        "checked); with --config=FILE.py it is applied to that config and its names are checked against it.",
        "FILE.py is loaded as --config=FILE.py.",
        *_OVERRIDES,
    ),
}

CONFIG_HELP = "Python config file with get_config()."
DEFAULT_CONFIG = os.path.join(os.path.dirname(__file__), "configs", "quickstart.py")


def usage() -> str:
    """``jaxexp --help``: every command with one line."""
    width = max(map(len, COMMAND_HELP))
    lines = ["usage: jaxexp COMMAND [flags]   (python -m jaxexp.main COMMAND ...)", "", "commands:"]
    lines += [f"  {name.ljust(width)}  {text}" for name, text in COMMAND_HELP.items()]
    lines += [
        "",
        "jaxexp CMD --help (or jaxexp help CMD): that command's flags, each with its default.",
        "Config fields are flags too: --config.train.lr=0.01.",
    ]
    return "\n".join(lines)


def command_help(command: str, registry: flags.FlagValues | None = None) -> str:
    """``jaxexp CMD --help``: CMD's usage, its line of ``COMMAND_HELP`` and the flags it
    reads (``COMMAND_FLAGS``), each with its doc and default as absl registered them;
    a doc that states its own default keeps it. ``define_command_flags`` must have run;
    ``--config`` need not be defined (defining it loads the config file)."""
    registry = flags.FLAGS if registry is None else registry
    lines = [f"usage: {COMMAND_USAGE[command]}", "", f"jaxexp {command}: {COMMAND_HELP[command]}", ""]
    names = COMMAND_FLAGS[command]
    lines.append(f"flags of jaxexp {command}:" if names else f"jaxexp {command} takes no flags.")
    for name in names:
        if name == "config":
            head, doc, shown = "--config=FILE.py", CONFIG_HELP, f"the packaged {os.path.relpath(DEFAULT_CONFIG, _ROOT)}"
        else:
            flag = registry[name]
            head = f"--[no]{name}" if flag.boolean else f"--{name}={_METAVAR.get(flag.flag_type(), 'VALUE')}"
            doc = _doc_for(command, flag.help)
            shown = _shown(COMMAND_DEFAULTS.get(command, {}).get(name, flag.default))
        lines.append(f"  {head}")
        default = "" if "default:" in doc else f" (default: {shown})".replace(" ", "\xa0")  # kept on one line
        lines.append(_wrap(doc + default).replace("\xa0", " "))
    if command in COMMAND_NOTES:
        lines += ["", *COMMAND_NOTES[command]]
    lines += ["", "absl's own flags (--flagfile, logging): jaxexp CMD --helpfull."]
    return "\n".join(lines)


_ROOT = os.path.dirname(os.path.dirname(__file__))
_METAVAR = {"string": "TEXT", "int": "INT", "float": "FLOAT"}
_PREFIX = re.compile(r"([a-z]+(?:/[a-z]+)*)((?: --\w+)?): ")


def _doc_for(command: str, text: str) -> str:
    """The part of a flag's doc about ``command``: ``"export: X; analyze: Y"`` gives Y
    for analyze, ``"blend: X"`` gives X for blend; a doc without such parts, all of it."""
    parts = re.split(r"; (?=[a-z]+(?:/[a-z]+)*(?: --\w+)?: )", text)
    for part in parts:
        m = _PREFIX.match(part)
        if m and command in m.group(1).split("/") and set(m.group(1).split("/")) <= set(COMMAND_HELP):
            rest = part[m.end() :]
            rest = f"{m.group(2).strip()}: {rest}" if m.group(2) else rest  # "analyze --table: x" -> "--table: x"
            return rest if rest.endswith(".") else rest + "."
    return text


def _shown(default) -> str:
    if default is None:
        return "not set"
    if isinstance(default, bool):
        return str(default).lower()
    return repr(default) if isinstance(default, str) else str(default)


def _wrap(text: str) -> str:
    return textwrap.fill(text, 100, initial_indent=" " * 6, subsequent_indent=" " * 6, break_on_hyphens=False)


def define_command_flags() -> None:
    """Every flag of every command but ``--config`` (jaxexp.main defines it: it loads the
    config file). Which command reads which: ``COMMAND_FLAGS``."""
    if "workdir" in flags.FLAGS:
        return
    f = flags
    f.DEFINE_string(
        "workdir",
        None,
        "sweep/train: directory for config.json, members.csv, history.csv, report.md (a stopped sweep resumes); "
        "blend: directory for the blend's report.md and tables; analyze/export: the sweep's workdir to read; "
        "tree: the mutation tree's workdir (lineage.csv, lineage.md, annotations.yaml).",
    )
    f.DEFINE_integer("member", None, "export: the member id whose best parameters are exported.")
    f.DEFINE_string(
        "out",
        None,
        "export: path of the member checkpoint to write (must not exist); "
        "analyze: output folder (not set: WORKDIR/analysis, or FILE_analysis for --table=FILE.csv).",
    )
    f.DEFINE_bool("distributed", False, "sweep/train: join a multi-process run (jax.distributed.initialize).")
    f.DEFINE_string(
        "coordinator_address", "", "--distributed: host:port of process 0 (default: JAX_COORDINATOR_ADDRESS/SLURM)."
    )
    f.DEFINE_integer("num_processes", 0, "--distributed: number of processes (default: from SLURM/Open MPI).")
    f.DEFINE_integer("process_id", -1, "--distributed: this process's index (default: from SLURM/Open MPI).")
    define_blend_flags()
    define_analyze_flags()
    define_tree_flags()


def define_blend_flags() -> None:
    """Flags of ``jaxexp blend`` (ignored by sweep/train)."""
    f = flags
    f.DEFINE_string("preds", None, "blend: .csv/.npz with the target and one prediction column per model.")
    f.DEFINE_bool("demo", False, "blend: use the bundled three-model demo (jaxexp.blending.demo).")
    f.DEFINE_string(
        "metric", "mae", "blend: mae, rmse, mse, mape, logloss or accuracy; analyze --table: the table's metric column."
    )
    f.DEFINE_float("step", 0.01, "blend: simplex grid step (0 = only --weights).")
    f.DEFINE_string("weights", None, "blend: weightings to score, e.g. champion=50/30/20,52/28/20, or a CSV.")
    f.DEFINE_string("target", "target", "blend: target column/array name.")
    f.DEFINE_string("preds_key", "preds", "blend: .npz array of the stacked (N, K) predictions (target: --target).")
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
    f.DEFINE_enum(
        "scores",
        "auto",
        ["auto", "csv", "parquet", "top"],
        "blend: the table of every weighting: auto (CSV up to 100,000 rows, else Parquet plus the best 1,000 as "
        "CSV), csv, parquet or top (only the best 1,000).",
    )
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
    flags.DEFINE_string(
        "params", None, "analyze --table: the parameter columns, comma-separated (default: the format's, or guessed)."
    )
    flags.DEFINE_string(
        "id", None, "analyze --table: id columns (trial or configuration ids; never parameters), comma-separated."
    )
    flags.DEFINE_string(
        "limits", None, "analyze: hard limits no proposed expansion passes, e.g. lr=:1,dropout=0:0.9 (a side open)."
    )
    _analyze_seed_flag()


class _SeedParser(flags.IntegerParser):
    """blend's --seed is an integer; ``analyze --seed=COL`` names a column: text is kept
    as text when the command is analyze (anything else still needs an integer)."""

    def parse(self, argument):
        try:
            return super().parse(argument)
        except ValueError:
            if isinstance(argument, str) and "analyze" in sys.argv[1:]:
                return argument
            raise


def _analyze_seed_flag() -> None:
    """``--seed`` is defined by blend (an integer); analyze reads it as a seed column."""
    seed = flags.FLAGS["seed"]
    if not isinstance(seed.parser, _SeedParser):
        seed.parser = _SeedParser()
        seed.help += "; analyze --table: the seed column, by name (rows differing only there are one configuration)."


def define_tree_flags() -> None:
    """Flags of ``jaxexp tree annotate`` (it also reads --workdir)."""
    f = flags
    f.DEFINE_integer("node", None, "tree: the node to annotate (lineage.csv's node column).")
    f.DEFINE_string("observation", None, "tree: what the node showed (replaces the node's observation).")
    f.DEFINE_string("verdict", None, "tree: the verdict on the node's hypothesis: supported, falsified, inconclusive.")
