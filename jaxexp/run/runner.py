"""Training a table of members: the checks before anything is written
(``check_bucket``), then the engine, the results and their files
(``run_members``). The strategies (``jaxexp.api.sweep``, TPE batches, mutation
generations) all run their populations through ``run_members``."""

from __future__ import annotations

import contextlib
import time

import ml_collections
import pandas as pd

from jaxexp import config as cfgmod
from jaxexp import workdir as workdirmod
from jaxexp import workload
from jaxexp.core import train
from jaxexp.errors import ConfigError
from jaxexp.run import cpu, diskfull, distributed, engine, outputs, population, programs, results, resume, stop, timing
from jaxexp.run.progress import print_progress
from jaxexp.search import spacefile, strategies


def check_bucket(config, cfgs: list, timings: dict | None = None, bucket=None, devs=None) -> None:
    """Loads a bucket's data and checks its members' values and the workload's
    functions (abstractly: nothing is compiled); raises ConfigError. With the
    ``bucket`` and the run's ``devs`` the program built is the one the run uses."""
    timings = {} if timings is None else timings
    with timing.phase(timings, "data_s"):
        dataset = cfgmod.workload_of(config).dataset(cfgs[0])
    with timing.phase(timings, "checks_s"):
        n_train = workload.n_rows(dataset.train)
        if cfgs[0].train.batch_size > n_train:
            raise ConfigError(
                f"train.batch_size: {cfgs[0].train.batch_size} > {n_train} training rows; use a smaller batch"
            )
        train.encode_hparams(cfgs, dataset)
        if bucket is not None:
            engine.program_for(config, bucket, devs)  # built (and its functions checked) once, kept for the run
        else:
            train.make_program(cfgs[0], dataset, 1, programs.off_fields(cfgs), (config.metric, config.goal))


def run_members(
    config: ml_collections.ConfigDict, table: pd.DataFrame, workdir: str | None = None, progress=print_progress
) -> results.Results:
    """Trains the members of ``table`` (columns member, config_id, seed, params...).

    Re-running a single row of a sweep's ``members.csv`` with the sweep's config
    reproduces that member (inactive conditional parameters: empty cells).
    """
    progress = progress or None  # False: silent, as None
    cpu.use_all_cores()  # before JAX's backend starts (a no-op after)
    config = spacefile.resolve(config)  # its metric/goal apply to these members too
    cfgmod.validate_top(config)
    devs = programs.devices(config.engine.num_devices)
    programs.memory_budget(config.engine.memory_budget, devs)
    members = population.resolve(config, table)
    strategies.check_halving(
        config.sweep.halving_rungs, config.sweep.halving_eta, max(m.config.train.epochs for m in members)
    )
    timings = {"startup_s": timing.process_seconds()} if timing.FROM_PROCESS_START["on"] else {}
    timing.FROM_PROCESS_START["on"] = False  # a later population of this process (TPE batch) starts here
    t_start = time.perf_counter() - timings.get("startup_s", 0.0)
    for bucket in population.buckets(members):  # bad data or functions fail before anything is written
        check_bucket(config, [m.config for m in bucket.members], timings, bucket, devs)
    stop.check()  # a stop signal so far (the command line's): nothing is written
    if workdir is not None:
        results.check_workdir_path(workdir)
    # one writer per workdir (process 0 of a multi-process run holds the lock for all)
    held = _lock(workdir) if workdir is not None and distributed.is_primary() else contextlib.nullcontext()
    # a full disk anywhere below: DiskFull, one line on the command line (checkpoints and
    # result files name themselves; this names whatever else)
    with held, diskfull.converted("files", workdir or "."):
        if workdir is not None:
            results.prepare_workdir(workdir, config)
        t0 = time.perf_counter()
        pending: list = []  # the last checkpoint is finished in the background while results are written

        def wait() -> None:
            with timing.phase(out.timings, "checkpoint_wait_s"):  # the Results' timings (below)
                while pending:
                    pending.pop()()

        try:
            output = engine.run(config, members, progress, workdir, pending)
            output.timings["total_s"] = time.perf_counter() - t0
            output.timings.update(timings)
            with resume.deferred_signals(output.late_signal):  # a stop signal now waits for complete result files
                t_assemble = time.perf_counter()
                out = results.assemble(config, table, members, output)
                out.timings["assemble_s"] = time.perf_counter() - t_assemble
                if workdir is not None and distributed.is_primary():  # every process holds the same results
                    with diskfull.converted("the result files", workdir):  # (the old ones stay)
                        outputs.write(out, workdir, t_start, wait)
                else:
                    wait()
                    out.timings["wall_s"] = time.perf_counter() - t_start
        finally:
            while pending:  # an error on the way: still never leave a save half-done
                pending.pop()()
        distributed.barrier("jaxexp results written")
    return out


@contextlib.contextmanager
def _lock(workdir: str):
    """The workdir's lock; a full disk while it is written raises DiskFull (the lock
    removes the file it could not write)."""
    with diskfull.converted(f"the lock file {workdirmod.LOCK_FILE}", workdir), workdirmod.lock(workdir):
        yield
