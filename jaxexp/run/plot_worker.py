"""A helper process that draws a run's PNG plots beside the run.

``jaxexp sweep`` starts it (``start``) before JAX is imported: it imports
matplotlib and draws a warm-up figure on the second core while the command
imports JAX, then waits. At the end of a run ``outputs.write`` sends it the
figures' tables (``jaxexp.run.plots.View``, no JAX) and writes TensorBoard
events and the CSV tables while it draws. Measured on the 192-run digits sweep
(2 cores): the plots cost the run ~0.9 s drawn in the process, ~0.1 s of
waiting with the helper.

Forking once JAX's threads run is unsafe, so the helper is forked before (the
Python API never starts one: it draws in the process). It ignores SIGINT (a
Ctrl-C reaches the whole process group; the command decides), ends when the
command closes its pipe or dies (it draws no further figure for a command that is
gone), and a helper that died, failed or took over ``TIMEOUT_S`` leaves the drawing
to the process: the plots never depend on it. matplotlib settings are the helper's
own (a config file that changes ``rcParams`` changes the in-process plots only).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
from collections.abc import Callable

from jaxexp.run import timing

TIMEOUT_S = 300.0  # a job's answer later than this: the helper is stopped, the process draws

# "process", "conn" while a helper runs; "unread": a job's answer not read yet; "jobs": sent
_WORKER: dict = {}


def start() -> bool:
    """Forks the helper (once per process, only before JAX is imported); True when
    one runs."""
    if _WORKER:
        return True
    if "jax" in sys.modules or sys.platform == "win32":
        return False
    ctx = multiprocessing.get_context("fork")
    ours, theirs = ctx.Pipe()
    process = ctx.Process(target=_serve, args=(theirs, ours, os.getpid()), name="jaxexp-plots", daemon=True)
    process.start()
    theirs.close()
    _WORKER.update(process=process, conn=ours)
    return True


def running() -> bool:
    return bool(_WORKER) and _WORKER["process"].is_alive()


def _serve(conn, parent_end, parent: int) -> None:
    parent_end.close()  # the command's end: EOF here once the command is gone
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from jaxexp.run import plots

    try:
        plots.warm_up()
    except Exception:  # drawn again (and reported) with the first real job
        pass
    alive = lambda: os.getppid() == parent  # noqa: E731  (a killed command: no more files)
    while True:
        try:
            v, scatter, directory = conn.recv()
        except (EOFError, OSError):
            return
        warnings: list[str] = []
        written = plots.draw(v, scatter, directory, warnings.append, alive)
        try:
            conn.send((written, warnings))
        except OSError:  # the command is gone
            return


def _stop_helper() -> None:
    """Stops a helper that hangs; the process draws from now on."""
    process = _WORKER["process"]
    process.terminate()
    process.join(timeout=5)


def submit(v, scatter: dict | None, directory: str) -> Callable[[], tuple[list[str], list[str]]] | None:
    """Sends the helper one job: draw ``plots.draw(v, scatter, directory)``.
    Returns a function that waits for (file names written, warnings), or None
    without a running helper (the caller draws). A helper that dies or does not
    answer within ``TIMEOUT_S`` makes the returned function raise ``RuntimeError``."""
    if not running():
        return None
    conn, process = _WORKER["conn"], _WORKER["process"]

    def result() -> tuple[list[str], list[str]]:
        waited = 0.0
        while not conn.poll(0.05):
            waited += 0.05
            if not process.is_alive():
                raise RuntimeError("the plot helper process ended")
            if waited > TIMEOUT_S:
                _stop_helper()
                raise RuntimeError(f"the plot helper process did not answer in {TIMEOUT_S:.0f} s")
        _WORKER["unread"] = False
        try:
            return conn.recv()
        except (EOFError, OSError) as e:
            raise RuntimeError(f"the plot helper process ended ({type(e).__name__})") from None

    try:
        if _WORKER.get("unread"):  # a job whose caller failed before reading it: drained first
            result()
        conn.send((v, scatter, os.path.abspath(directory)))
    except (OSError, ValueError, RuntimeError):  # a broken pipe: the helper is gone
        return None
    _WORKER["unread"] = True
    _WORKER["jobs"] = _WORKER.get("jobs", 0) + 1
    return result


def begin(res, directory: str, warn, timings) -> Callable[[], list[str]]:
    """Starts writing the plots of ``res`` (a Results) into ``directory``: sent to the
    helper when one runs, else drawn here. Returns the function that finishes (waits
    for the helper) and gives the file names written; call it also when the caller
    fails (the helper must be done with ``directory`` before it is removed).
    ``timings["plots_s"]``: the time the run spent on plots (preparing, drawing here,
    waiting for the helper)."""
    from jaxexp.run import plots

    with timing.phase(timings, "plots_s"):
        args = plots.prepare(res, warn)
        job = None if args is None else submit(*args, directory)
        if job is None:
            names = [] if args is None else plots.draw(*args, directory, warn)
            return lambda: names

    def finish() -> list[str]:
        with timing.phase(timings, "plots_s"):
            try:
                names, warnings = job()
            except RuntimeError:  # the helper is gone: draw here
                return plots.draw(*args, directory, warn)
            for msg in warnings:
                warn(msg)
            return names

    return finish
