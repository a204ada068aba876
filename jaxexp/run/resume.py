"""Per-segment sweep checkpoints and resuming from them (host side).

A sweep with a workdir saves one checkpoint per segment (``jaxexp.run.checkpoint``):
the running bucket's population state, and everything finished so far (history,
per-group history, each finished member's best parameters, initial metrics).
Re-running the same command on that workdir continues from the latest complete
step; the results equal an uninterrupted run's.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sys
import threading
import time
from typing import Any, NamedTuple

import ml_collections
import numpy as np
import pandas as pd

from jaxexp import config as cfgmod
from jaxexp import workdir as workdir_layout
from jaxexp.errors import ConfigError
from jaxexp.run import checkpoint, distributed, stop
from jaxexp.run.progress import end_line

# Fields that change neither a member's numbers nor the layout of the population.
IGNORED = {
    "name",
    "sweep.top_k",
    "engine.progress",
    "engine.plots",
    "engine.overwrite",
    "engine.checkpoint",
    "engine.max_to_keep",
    "engine.checkpoint_every_s",
    "engine.keep_best",
    "engine.allow_resume_changes",
    "engine.compile_cache",
    # a mutation tree's generations are separate sweeps: these steer the next ones
    "sweep.generations",
    "sweep.parent_ids",
    "sweep.parent_pool",
    "sweep.hypothesis",
}
# Fields that change only how the work is cut (not any result): allowed with
# engine.allow_resume_changes=True.
SAFE = {"engine.segment_epochs", "engine.group_size", "engine.memory_budget", "engine.chunk_size"}


def config_json(config: ml_collections.ConfigDict) -> dict:
    """The config as plain JSON types (tuples become lists)."""
    return json.loads(json.dumps(config.to_dict(), default=list))


def check_config(saved: dict, config: ml_collections.ConfigDict) -> None:
    """Refuses to resume with a config that changes results; names every change."""
    old, new = cfgmod.flatten(saved), cfgmod.flatten(config_json(config))
    changed = [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k) and k not in IGNORED]
    if not changed:
        return
    unsafe = [k for k in changed if k not in SAFE]
    shown = "; ".join(f"{k}: {old.get(k)!r} (checkpoint) != {new.get(k)!r} (now)" for k in changed)
    if unsafe:
        raise ConfigError(
            f"workdir: its checkpoints were written with another config ({shown}); rerun with the original config, "
            "or pass --config.engine.overwrite=True to start over"
        )
    if not config.engine.allow_resume_changes:
        raise ConfigError(
            f"workdir: its checkpoints were written with another config ({shown}); these changes are safe: "
            "pass --config.engine.allow_resume_changes=True to resume with them"
        )


def _existing_results(workdir: str) -> list[str]:
    return [f for f in workdir_layout.RESULT_FILES if os.path.exists(os.path.join(workdir, f))]


def prepare(workdir: str, config: ml_collections.ConfigDict) -> bool:
    """Decides what a run on ``workdir`` does; returns True when it resumes.

    - no checkpoints: a fresh run (a workdir holding results needs
      ``engine.overwrite``);
    - checkpoints of an unfinished (or finished but unwritten) sweep: resume;
    - a finished sweep whose results were written: refused without
      ``engine.overwrite``; with it, the old checkpoints are removed.
    """
    directory = checkpoint.sweep_dir(workdir)
    has_ckpt = os.path.isdir(directory) and any(name.isdigit() for name in os.listdir(directory))
    if config.engine.overwrite:
        if has_ckpt and distributed.is_primary():
            shutil.rmtree(directory)
        distributed.barrier("jaxexp overwrite")
        return False
    if not has_ckpt or not config.engine.checkpoint:
        existing = _existing_results(workdir)
        if existing:
            raise ConfigError(
                f"workdir: {workdir} already holds results ({', '.join(existing)}); "
                "choose another --workdir or pass --config.engine.overwrite=True"
            )
        return False
    saver = checkpoint.SweepCheckpoints.reader(workdir)
    try:
        steps = saver.steps()
        host = saver.read_json(steps[-1])[0] if steps else {}
    except Exception:  # unreadable latest step: the resume itself falls back to an earlier one
        host = {}
    finally:
        saver.close()
    # a results write cut short (kill -9 while its files were renamed into place) left its
    # temporary folder: the finished sweep's results are written again from the checkpoint
    cut_short = workdir_layout.unfinished_writes(workdir)
    if host.get("complete") and _existing_results(workdir) and not cut_short:
        raise ConfigError(
            f"workdir: {workdir} holds a finished sweep; choose another --workdir or pass "
            "--config.engine.overwrite=True to start over"
        )
    if distributed.is_primary():  # the writer holds the lock: these are a dead process's
        for name in cut_short:
            shutil.rmtree(os.path.join(workdir, name), ignore_errors=True)
    return True


class Resumed(NamedTuple):
    step: int
    host: dict
    state: Any  # the running bucket's TrainState, or None between buckets
    results: dict  # packed results (see ``pack``)


def pack(history: list, group_history: list, rungs: list, pbt: list, finals: dict, initial: dict) -> tuple[dict, dict]:
    """(arrays for orbax, JSON column info) of everything finished so far.

    Orbax refuses zero-size arrays, so empty tables are left out.
    """
    arrays: dict = {"finals": {}, "initial": {}}
    info: dict = {}
    for name, frames in (("history", history), ("group_history", group_history), ("rungs", rungs), ("pbt", pbt)):
        if not frames:
            continue
        df = pd.concat(frames, ignore_index=True)
        if df.empty:
            continue
        cols = {}
        for c in df.columns:
            if c == "group":  # strings: stored as codes into info["group_names"]
                names = sorted(df[c].unique())
                info["group_names"] = names
                cols[c] = df[c].map({n: i for i, n in enumerate(names)}).to_numpy(np.int32)
            else:
                cols[c] = df[c].to_numpy()
        arrays[name] = cols
        info[f"{name}_columns"] = list(df.columns)
    for member, v in finals.items():
        arrays["finals"][str(member)] = {
            "best_params": v["best_params"],
            "stop_epoch": np.int32(v["stop_epoch"]),
            "pruned_epoch": np.int32(v.get("pruned_epoch", 0)),
        }
    for member, v in initial.items():
        arrays["initial"][str(member)] = {k: np.float64(x) for k, x in v.items()}
    return arrays, info


def unpack(arrays: dict, info: dict) -> tuple[list, list, list, list, dict, dict]:
    """Inverse of ``pack``: (history frames, group frames, rung frames, PBT frames, finals, initial)."""
    out = []
    for name in ("history", "group_history", "rungs", "pbt"):
        cols = arrays.get(name)
        if not cols:
            out.append([])
            continue
        df = pd.DataFrame({c: np.asarray(cols[c]) for c in info[f"{name}_columns"]})
        if "group" in df.columns:
            df["group"] = np.asarray(info["group_names"])[df["group"].to_numpy()]
        out.append([df])
    finals = {
        int(k): {
            "best_params": v["best_params"],
            "stop_epoch": int(v["stop_epoch"]),
            "pruned_epoch": int(v.get("pruned_epoch", 0)),
        }
        for k, v in (arrays.get("finals") or {}).items()
    }
    initial = {int(k): {n: float(x) for n, x in v.items()} for k, v in (arrays.get("initial") or {}).items()}
    return out[0], out[1], out[2], out[3], finals, initial


class Saver:
    """Saves one checkpoint per segment and finds the point to resume from."""

    def __init__(self, workdir: str, config: ml_collections.ConfigDict):
        self.config = config
        self.ckpt = checkpoint.SweepCheckpoints(
            workdir, config.engine.max_to_keep, config.engine.keep_best, cfgmod.goal_sign(config.goal)
        )
        steps = self.ckpt.steps()
        self.step = steps[-1] + 1 if steps else 0
        self.every_s = float(config.engine.checkpoint_every_s)
        self.first = self.step  # this process's first save is due after its first segment
        self.last = time.monotonic()
        self.complete = False  # a step saved (or resumed from) marks the whole run complete

    def due(self) -> bool:
        """Whether a save is due: this process has not saved yet (an interruption after the
        first segment always finds a checkpoint), or ``engine.checkpoint_every_s`` has passed
        since the last save."""
        return self.step == self.first or time.monotonic() - self.last >= self.every_s

    def save(self, state, out, position: dict, arch: dict, best: float | None) -> None:
        arrays, info = pack(out.history, out.group_history, out.rungs, out.pbt, out.finals, out.initial)
        host = {"config": config_json(self.config), **position, **info}
        self.ckpt.save(self.step, state, arrays, host, arch, best)
        self.complete = bool(position.get("complete"))
        self.step += 1
        self.last = time.monotonic()

    def load(self, requested_arch, abstract_state, warn) -> Resumed | None:
        """The latest readable step, verified; None when there is none.

        requested_arch(bucket) -> the architecture record the run needs;
        abstract_state(bucket, size) -> the TrainState target. A config or
        architecture mismatch raises; an unreadable step is skipped with a
        warning (the previous good step is used).
        """
        steps = self.ckpt.steps()
        errors = []

        def unreadable(step, e) -> None:
            errors.append(f"step {step}: {type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}")
            warn(f"checkpoint step {step} is unreadable ({errors[-1]}); trying the previous step")

        for step in reversed(steps):
            where = f"{self.ckpt.directory} step {step}"
            try:
                host, arch = self.ckpt.read_json(step)
                if host.get("in_bucket"):
                    checkpoint.check_fingerprint(arch, where)
            except Exception as e:  # a truncated/corrupted/altered step: try the previous one
                unreadable(step, e)
                continue
            check_config(host["config"], self.config)
            target = None
            if host.get("in_bucket"):
                checkpoint.verify(arch, requested_arch(host["bucket"]), where)
                target = abstract_state(host["bucket"], len(host["slot"]))
                try:
                    stored = self.ckpt.stored_state_spec(step)
                except Exception as e:
                    unreadable(step, e)
                    continue
                diff = checkpoint.spec_differences(stored, checkpoint.spec_of(target), "state", "checkpoint")
                if diff:
                    raise checkpoint.ArchitectureMismatchError(
                        f"{where}: population state does not match: " + "; ".join(diff[:10])
                    )
            try:
                state, results = self.ckpt.read_arrays(step, target)
            except Exception as e:
                unreadable(step, e)
                continue
            if target is not None:
                checkpoint.check_leaves(state, target, where)
            self.complete = bool(host.get("complete"))
            return Resumed(step, host, state, results)
        if steps:
            raise checkpoint.CheckpointError(
                f"workdir: no readable checkpoint in {self.ckpt.directory} ({'; '.join(errors)}); "
                "pass --config.engine.overwrite=True to start over"
            )
        return None

    def close(self) -> None:
        self.ckpt.close()


@contextlib.contextmanager
def graceful_stop(enabled: bool):
    """SIGINT/SIGTERM set ``flag["signal"]`` (stop at the next segment boundary,
    after its checkpoint); a second signal stops at once (KeyboardInterrupt).
    Without checkpoints (``enabled`` False) a signal stops at once. A signal the
    command line recorded before training (``jaxexp.run.stop``) counts as the first."""
    flag: dict = {"signal": stop.REQUESTED["signal"]}
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    if flag["signal"] is not None and not enabled:
        raise KeyboardInterrupt

    def handler(signum, frame):
        if flag["signal"] is not None or not enabled:
            flag["signal"] = flag["signal"] or signum  # read by the engine for the exit code
            raise KeyboardInterrupt
        flag["signal"] = signum
        end_line()
        print(
            f"jaxexp: {signal.Signals(signum).name}: stopping after this segment's checkpoint "
            "(send it again to stop at once)",
            file=sys.stderr,
            flush=True,
        )

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield flag
    finally:
        for s, h in old.items():
            signal.signal(s, h)


@contextlib.contextmanager
def deferred_signals(pending: int | None = None):
    """SIGINT/SIGTERM while the block runs (writing the results) are held until it
    ends: the files are completed, then ``StoppedAfterWriting`` (a KeyboardInterrupt)
    is raised. A second signal stops at once (the writes are atomic, so the previous
    files stay). ``pending``: a signal that came before the block (once training had
    finished), held the same way."""
    got: list = [pending] if pending else []
    if threading.current_thread() is not threading.main_thread():
        yield
        if got:
            raise StoppedAfterWriting(got[0])
        return

    def handler(signum, frame):
        if got:
            raise KeyboardInterrupt
        got.append(signum)
        end_line()
        print(
            f"jaxexp: {signal.Signals(signum).name}: finishing the result files first (send it again to stop at once)",
            file=sys.stderr,
            flush=True,
        )

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    if got:
        raise StoppedAfterWriting(got[0])


class StoppedAfterWriting(KeyboardInterrupt):
    """A stop signal arrived while the result files were written; they are complete."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum
