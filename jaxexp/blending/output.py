"""The files of a blend's workdir: the check before anything is computed, the scores
table (CSV, or Parquet plus the best rows as CSV for large grids) and the atomic
write of every file (temporary folder, then renamed into place)."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile

import pandas as pd

from jaxexp.blending import plots
from jaxexp.errors import ConfigError

RESULT_FILES = (
    "scores.csv",
    "scores.parquet",
    "report.md",
    "report.html",
    "summary.json",
    "ternary.png",
    "profiles.png",
)
SCORES = ("auto", "csv", "parquet", "top")
CSV_ROWS = 100_000  # scores="auto": above this many weightings the full table is Parquet
TOP_ROWS = 1_000  # rows of scores.csv when the full table is in scores.parquet (or left out: "top")


def _prepare_workdir(workdir: str, overwrite: bool) -> None:
    if os.path.exists(workdir) and not os.path.isdir(workdir):
        raise ConfigError(f"--workdir: {workdir} exists and is not a directory; choose another --workdir")
    existing = [f for f in RESULT_FILES if os.path.exists(os.path.join(workdir, f))]
    if existing and not overwrite:
        raise ConfigError(
            f"--workdir: {workdir} already holds results ({', '.join(existing)}); "
            "choose another --workdir or pass --overwrite"
        )
    parent = os.path.abspath(workdir)
    while not os.path.isdir(parent):
        parent = os.path.dirname(parent)
    if not os.access(parent, os.W_OK):
        raise ConfigError(f"--workdir: cannot write to {workdir}; choose another --workdir")


def _parquet_ok() -> bool:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return False
    return True


def score_files(df: pd.DataFrame, scores: str) -> tuple[dict, str]:
    """The files of the scores table: ({name: writer(path)}, a sentence for the report).

    ``scores``: "csv" (all rows in scores.csv), "parquet" (all rows in
    scores.parquet, the best TOP_ROWS in scores.csv), "top" (only the best
    TOP_ROWS, in scores.csv) or "auto" (csv up to CSV_ROWS weightings, parquet
    above when pyarrow is installed)."""
    if scores not in SCORES:
        raise ConfigError(f"--scores: {scores!r}; use one of {', '.join(SCORES)}")
    if scores == "auto":
        scores = "parquet" if len(df) > CSV_ROWS and _parquet_ok() else "csv"
    elif scores == "parquet" and not _parquet_ok():
        raise ConfigError("--scores: parquet needs pyarrow; pip install 'jaxexp[parquet]' (or --scores=csv)")
    if scores == "csv" or len(df) <= TOP_ROWS:
        return {"scores.csv": lambda p: df.to_csv(p, index=False)}, "`scores.csv` (every scored weighting, best first)"
    top = lambda p: df.head(TOP_ROWS).to_csv(p, index=False)  # noqa: E731
    if scores == "top":
        return {"scores.csv": top}, f"`scores.csv` (the best {TOP_ROWS:,} of {len(df):,} weightings; --scores=csv: all)"
    return (
        {"scores.csv": top, "scores.parquet": lambda p: df.to_parquet(p, index=False)},
        f"`scores.parquet` (every scored weighting, best first; `pd.read_parquet`), "
        f"`scores.csv` (the best {TOP_ROWS:,})",
    )


def _write(workdir: str, texts: dict, figures: dict, html=None, tables: dict | None = None) -> None:
    """All files into a temporary folder first, then renamed into place;
    ``html(folder)`` (given the folder holding the PNGs) makes report.html;
    ``tables``: {name: writer(path)} (the scores table)."""
    os.makedirs(workdir, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=workdir, prefix=".writing-")
    tables = tables or {}
    try:
        for name, text in texts.items():
            with open(os.path.join(tmp, name), "w") as f:
                f.write(text)
        for name, write in tables.items():
            write(os.path.join(tmp, name))
        for name in RESULT_FILES:  # a scores.parquet of an earlier blend must not outlive it
            if name not in texts and name not in tables and name not in figures and name != "report.html":
                with contextlib.suppress(FileNotFoundError):
                    os.remove(os.path.join(workdir, name))
        for name, fig in figures.items():
            plots.save(fig, os.path.join(tmp, name))
        if html is not None:
            texts = {**texts, "report.html": html(tmp)}
            with open(os.path.join(tmp, "report.html"), "w") as f:
                f.write(texts["report.html"])
        for name in [*texts, *tables, *figures]:
            os.replace(os.path.join(tmp, name), os.path.join(workdir, name))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
