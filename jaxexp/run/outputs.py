"""Writing a run's result files (``write``): the tables and TensorBoard events, the
plots (drawn by ``jaxexp.run.plot_worker``'s helper process meanwhile, when one
runs), report.md and report.html, then timings.json; all into a temporary folder
of the workdir, then renamed into place. The files are listed in
``jaxexp.run.results``."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
import time

from jaxexp import workdir as workdir_layout
from jaxexp.run import report, timing
from jaxexp.run.results import Results
from jaxexp.webreport import sweep as websweep


def _tensorboard(res: Results, directory: str) -> list[str]:
    from jaxexp.run import tensorboard

    try:
        return tensorboard.write_events(res, directory, walltime=time.time())
    except ImportError as e:
        print(f"jaxexp: note: no TensorBoard events ({e}; or --config.engine.tensorboard=False)", file=sys.stderr)
        return []


def write(res: Results, workdir: str, t_start: float | None = None, wait=None) -> None:
    """Writes every result file into ``workdir`` (created if missing).

    All files are written into a temporary folder inside ``workdir`` first and
    then renamed into place, so an error while writing leaves the old set.
    ``t_start`` (a ``time.perf_counter`` value): when the run started, for
    ``timings["wall_s"]``; timings.json, written last, has every phase. ``wait``:
    called before timings.json (the run's last checkpoint finishing meanwhile).
    """
    os.makedirs(workdir, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=workdir, prefix=workdir_layout.WRITING_PREFIX)
    try:
        _write_into(res, workdir, tmp, t_start, wait)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    res.workdir = workdir


def _tables_and_events(res: Results, tmp: str) -> tuple[dict[str, str], list[str]]:
    """The CSV and JSON texts of ``res`` ({file name: text}), and the TensorBoard
    event folders written into ``tmp``."""
    texts = {
        "config.json": json.dumps(res.config.to_dict(), indent=2, default=list),
        "members.csv": res.members.to_csv(index=False),
        "history.csv": res.history.to_csv(index=False),
        "summary.csv": res.summary.to_csv(index=False),
        "comparison.csv": res.comparison.to_csv(index=False),
    }
    if not res.rungs.empty:
        texts["rungs.csv"] = res.rungs.to_csv(index=False)
    if not res.pbt.empty:
        texts["pbt.csv"] = res.pbt.to_csv(index=False)
    if not res.groups.empty:
        texts["groups.csv"] = res.groups.to_csv(index=False)
        texts["group_history.csv"] = res.group_history.to_csv(index=False)
        texts["group_comparison.csv"] = res.group_comparison.to_csv(index=False)
    folders = []
    if res.config.engine.get("tensorboard", False):
        with timing.phase(res.timings, "tensorboard_s"):
            folders = _tensorboard(res, tmp)
    return texts, folders


def _write_into(res: Results, workdir: str, tmp: str, t_start: float | None, wait) -> None:
    """``write``'s work: every file into ``tmp``, then renamed into ``workdir``. The
    plots are drawn (by the helper process when one runs) while the tables and
    TensorBoard events are written."""
    t = res.timings
    finish_plots = lambda: []  # noqa: E731
    if res.config.engine.plots:
        from jaxexp.run import plot_worker

        finish_plots = plot_worker.begin(res, tmp, lambda msg: print(f"jaxexp: warning: {msg}", file=sys.stderr), t)
    try:
        texts, folders = _tables_and_events(res, tmp)
    except BaseException:
        with contextlib.suppress(Exception):
            finish_plots()  # the helper is done with tmp before it is removed
        raise
    res.plots = finish_plots()
    with timing.phase(t, "files_s"):
        texts["report.md"] = report.markdown(res)
    with timing.phase(t, "html_s"):
        texts["report.html"] = websweep.render(res, texts["report.md"], tmp, res.plots)
    with timing.phase(t, "files_s"):
        for name, text in texts.items():
            with open(os.path.join(tmp, name), "w") as f:
                f.write(text)
    if wait is not None:
        wait()
    if t_start is not None:
        t["wall_s"] = time.perf_counter() - t_start
    with open(os.path.join(tmp, "timings.json"), "w") as f:
        json.dump({k: (v if not isinstance(v, float) else round(v, 4)) for k, v in t.items()}, f, indent=1)
    for name in [*texts, *res.plots, "timings.json"]:
        os.replace(os.path.join(tmp, name), os.path.join(workdir, name))
    for name in folders:  # a folder cannot be renamed over a non-empty one
        shutil.rmtree(os.path.join(workdir, name), ignore_errors=True)
        os.replace(os.path.join(tmp, name), os.path.join(workdir, name))
