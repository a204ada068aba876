"""Orbax checkpoints that carry the architecture they hold and refuse any other.

Two kinds, both written with ``orbax.checkpoint``:

- **sweep checkpoints** (``WORKDIR/checkpoints/<step>/``), one per segment, via
  a ``CheckpointManager``: items ``state`` (the running population's
  ``TrainState``, sharded), ``results`` (every finished epoch and member so far,
  host numpy), ``host`` (JSON: where the sweep is, the config) and ``arch``
  (JSON: the architecture record). A killed sweep resumes from the latest
  complete step; orbax writes a step to a temporary directory and renames it
  when complete, so a kill mid-save leaves the previous step intact.
- **member checkpoints** (``jaxexp export``): one member's best parameters and
  its architecture record.

The architecture record holds a schema version, the canonical model config
(every field that changes the parameters), the parameter spec
``{path: [shape, dtype]}`` from ``jax.eval_shape``, population size and member
ids, library versions and a sha256 fingerprint of the canonical JSON. On
restore it is compared with the requested model **before any array is read**,
and every restored leaf's structure, shape and dtype is checked again after:
orbax itself casts a mismatched dtype silently, restores a leaf saved as
``np.ndarray`` at its stored shape, and ignores manager-level metadata after
the first write, so none of those checks are left to it.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
from typing import Any

import jax
import numpy as np

from jaxexp.run import diskfull
from jaxexp.run.records import (  # noqa: F401 - re-exported: part of this module's API
    ArchitectureMismatchError,
    CheckpointError,
    _canonical,
    _fingerprint,
    _show,
    check_fingerprint,
    differences,
    spec_differences,
    spec_of,
)

SCHEMA_VERSION = 2  # 2: records name the workload and its static config
STATE_ITEMS = ("state", "results", "host", "arch")


def _versions() -> dict:
    import jaxexp

    out = {"jaxexp": jaxexp.__version__}
    for pkg in ("jax", "orbax-checkpoint", "flax"):
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            out[pkg] = "unknown"
    return out


def model_record(config) -> dict:
    """The canonical model config: the workload's name and every static
    hyperparameter that shapes the parameters (``arch=True``)."""
    from jaxexp import config as cfgmod

    wl = cfgmod.workload_of(config)
    static = {p: cfgmod.get_path(config, p) for p, h in wl.static.items() if h.arch}
    return json.loads(_canonical({"workload": wl.name, **static}))


def model_of(config):
    """(``workload.Model``, dataset, one training row) of a member config."""
    from jaxexp import config as cfgmod
    from jaxexp import workload
    from jaxexp.core import hparams

    wl = cfgmod.workload_of(config)
    dataset = wl.dataset(config)
    sample = workload.sample_batch(wl, dataset, hparams.one_member(config, dataset))
    return workload.build_model(wl, config, dataset), dataset, sample


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0][:200]}" if text else type(e).__name__


def architecture(config, model=None, sample=None, member_ids=None) -> dict:
    """The architecture record of a population (``member_ids``) or one member of
    ``config`` (``model`` and ``sample``: as ``model_of`` returns them)."""
    from jaxexp import workload

    if model is None:
        model, _, sample = model_of(config)
    spec = spec_of(workload.abstract_params(model, sample))
    rec = {"schema_version": SCHEMA_VERSION, "model": model_record(config), "param_spec": spec}
    rec["fingerprint"] = _fingerprint(rec)
    if member_ids is not None:
        rec["population"] = {"size": len(member_ids), "member_ids": [int(i) for i in member_ids]}
    rec["versions"] = _versions()
    return rec


def verify(stored: dict, requested: dict, where: str) -> None:
    """Raises ArchitectureMismatchError naming ``where`` and every differing field
    (CheckpointError first when the stored record is not intact)."""
    check_fingerprint(stored, where)
    diff = differences(stored, requested)
    if diff:
        raise ArchitectureMismatchError(
            f"{where}: checkpoint architecture does not match the requested model: "
            + "; ".join(diff)
            + ". Build the model with the checkpoint's settings (`jaxexp inspect` prints them) or use another one"
        )


def check_leaves(restored, target, where: str) -> None:
    """Structure, shape and dtype of every restored leaf equal the target's."""
    r_struct, t_struct = jax.tree.structure(restored), jax.tree.structure(target)
    if r_struct != t_struct:
        raise ArchitectureMismatchError(f"{where}: restored tree structure {r_struct} != requested {t_struct}")
    got, want = spec_of(restored), spec_of(target)
    bad = [f"{k}: {_show(got[k])} (restored) != {_show(want[k])} (requested)" for k in want if got[k] != want[k]]
    if bad:
        raise ArchitectureMismatchError(f"{where}: restored leaves differ: " + "; ".join(bad))


# ----------------------------------------------------------------------------- sweep checkpoints


def _ocp():
    import orbax.checkpoint as ocp

    return ocp


def sweep_dir(workdir: str) -> str:
    return os.path.join(os.path.abspath(workdir), "checkpoints")


TMP_MARK = ".orbax-checkpoint-tmp"  # in the name of a step (or item) folder being written


def remove_unfinished(directory: str) -> list[str]:
    """Removes the temporary folders of saves that never finished (a kill -9, a full
    disk) and returns their names. Run by the writer, under the workdir lock, before
    its manager starts: synchronous and tolerant of files already gone (orbax's own
    cleanup runs in a background thread, and two of them racing over one folder raised
    FileNotFoundError at the next save)."""
    names = sorted(n for n in os.listdir(directory) if TMP_MARK in n) if os.path.isdir(directory) else []
    for name in names:
        shutil.rmtree(os.path.join(directory, name), ignore_errors=True)
    return names


def _score(metrics) -> float:
    return (metrics or {}).get("score", float("-inf"))  # a step saved without a score ranks last


class SweepCheckpoints:
    """The CheckpointManager of a sweep's workdir (asynchronous saves; ``close``
    waits for the last one)."""

    def __init__(self, workdir: str, max_to_keep: int, keep_best: bool, goal_sign: float, read_only: bool = False):
        """read_only: for readers (analyze, export, the checks before a run): nothing in
        the workdir is written or deleted, so a sweep running there is undisturbed
        (a writer's manager removes the temporary folder of a step being saved)."""
        ocp = _ocp()
        from orbax.checkpoint import checkpoint_managers as cm

        policies = [cm.LatestN(max(1, max_to_keep))]
        if keep_best:
            # BestN keeps the largest metric; "score" is larger-is-better. Every step is saved
            # with metrics ({} without a score), so a step without them (an older workdir's)
            # is not kept forever.
            policies.append(cm.BestN(get_metric_fn=_score, n=1, keep_checkpoints_without_metrics=False))
        self.sign = goal_sign
        self.directory = sweep_dir(workdir)
        if read_only:  # (the values orbax would set itself, with a warning each)
            options = ocp.CheckpointManagerOptions(
                read_only=True, create=False, cleanup_tmp_directories=False, save_interval_steps=0, max_to_keep=None
            )
        else:
            diskfull.quiet_logs()  # a full disk: one line from the caller, not a traceback per thread
            if jax.process_index() == 0:
                remove_unfinished(self.directory)
            options = ocp.CheckpointManagerOptions(
                # A save blocks only while the arrays are copied to host memory; files are
                # written and the step finalised (renamed into place) in the background while
                # the next segment trains. A kill before that leaves a temporary folder,
                # removed on resume, which then starts from the previous finalised step.
                enable_async_checkpointing=True,
                preservation_policy=cm.AnyPreservationPolicy(policies),
                # best_fn only makes orbax write each step's metrics to disk: without them, the
                # steps found on disk after a kill had none, and BestN kept them all forever
                best_fn=_score,
                cleanup_tmp_directories=False,  # done above, before the manager starts
            )
        handlers = {
            "state": ocp.StandardCheckpointHandler(),
            "results": ocp.StandardCheckpointHandler(),
            "host": ocp.JsonCheckpointHandler(),
            "arch": ocp.JsonCheckpointHandler(),
        }
        from absl import logging

        verbosity = logging.get_verbosity()
        if read_only:  # orbax warns that a read-only manager is read-only
            logging.set_verbosity(logging.ERROR)
        try:
            with diskfull.converted("a checkpoint", self.directory):
                self.manager = ocp.CheckpointManager(self.directory, options=options, item_handlers=handlers)
        finally:
            logging.set_verbosity(verbosity)

    @classmethod
    def reader(cls, workdir: str) -> SweepCheckpoints:
        """A read-only view of a sweep's checkpoints (writes and deletes nothing)."""
        return cls(workdir, 1, False, 1.0, read_only=True)

    def steps(self) -> list[int]:
        return sorted(self.manager.all_steps())

    def save(self, step: int, state, results: dict, host: dict, arch: dict, best: float | None) -> None:
        ocp = _ocp()
        placeholder = {"none": np.zeros(1, np.int8)}  # orbax refuses an item without leaves
        args = ocp.args.Composite(
            state=ocp.args.StandardSave(state if state is not None else placeholder),
            results=ocp.args.StandardSave({**results, "_": placeholder}),
            host=ocp.args.JsonSave(host),
            arch=ocp.args.JsonSave(arch),
        )
        metrics = {} if best is None or not np.isfinite(best) else {"score": float(-self.sign * best)}
        with diskfull.converted("a checkpoint", self.directory):  # also the previous save's error
            self.manager.save(step, args=args, metrics=metrics, force=True)  # waits for the previous save first

    def wait(self) -> None:
        """Blocks until the last save is on disk."""
        with diskfull.converted("a checkpoint", self.directory):
            self.manager.wait_until_finished()

    def read_json(self, step: int) -> tuple[dict, dict]:
        """(host, arch) of a step; no array is read."""
        ocp = _ocp()
        r = self.manager.restore(
            step, args=ocp.args.Composite(host=ocp.args.JsonRestore(), arch=ocp.args.JsonRestore())
        )
        return r.host, r.arch

    def read_arrays(self, step: int, state_target) -> tuple[Any, dict]:
        """(state, results) of a step; ``state_target`` is an abstract TrainState
        (ShapeDtypeStructs with shardings) or None when the step holds no state."""
        ocp = _ocp()
        items = {"results": ocp.args.StandardRestore()}
        if state_target is not None:
            items["state"] = ocp.args.StandardRestore(state_target)
        r = self.manager.restore(step, args=ocp.args.Composite(**items))
        results = {k: v for k, v in r.results.items() if k != "_"}
        return (r.state if state_target is not None else None), results

    def stored_state_spec(self, step: int) -> dict:
        """{path: [shape, dtype]} of the stored ``state`` item, from orbax metadata."""
        meta = self.manager.item_metadata(step)["state"]
        tree = getattr(meta, "tree", meta)
        return spec_of(tree) if tree else {}

    def close(self) -> None:
        with diskfull.converted("a checkpoint", self.directory):
            self.manager.close()


# ----------------------------------------------------------------------------- member checkpoints


def _member_checkpointer():
    ocp = _ocp()
    handler = ocp.CompositeCheckpointHandler(params=ocp.StandardCheckpointHandler(), arch=ocp.JsonCheckpointHandler())
    return ocp.Checkpointer(handler)


def save_member(path: str, params, record: dict) -> None:
    """Writes one member's parameters and architecture record as an Orbax checkpoint."""
    ocp = _ocp()
    path = os.path.abspath(path)
    if os.path.exists(path):
        raise CheckpointError(f"--out: {path} already exists; choose a new path")
    with _member_checkpointer() as ckptr:
        ckptr.save(path, args=ocp.args.Composite(params=ocp.args.StandardSave(params), arch=ocp.args.JsonSave(record)))


def inspect(path: str) -> dict:
    """The architecture record of a member (or sweep step) checkpoint; reads no array."""
    ocp = _ocp()
    path = os.path.abspath(path)
    if not os.path.isdir(os.path.join(path, "arch")):
        raise CheckpointError(
            f"{path}: not a jaxexp checkpoint (no 'arch' record); pass a path written by jaxexp export"
        )
    with _member_checkpointer() as ckptr:
        try:
            return ckptr.restore(path, args=ocp.args.Composite(arch=ocp.args.JsonRestore())).arch
        except Exception as e:  # orbax raises many types for unreadable files
            raise CheckpointError(f"{path}: cannot read the architecture record: {_first_line(e)}") from None


def load_member(path: str, config) -> dict:
    """One member's parameters, verified against the requested architecture.

    config: the member's jaxexp config (its workload and hyperparameters). Raises
    ArchitectureMismatchError before reading any array if the checkpoint holds
    another architecture, and after restoring if any leaf differs.
    """
    ocp = _ocp()
    path = os.path.abspath(path)
    stored = inspect(path)
    from jaxexp import workload

    model, _, sample = model_of(config)
    requested = architecture(config, model, sample)
    verify(stored, requested, path)
    target = workload.abstract_params(model, sample)
    with _member_checkpointer() as ckptr:
        # the arrays as stored (orbax would cast a dtype or keep a shape silently)
        try:
            meta = ckptr.metadata(path).item_metadata["params"]
        except Exception as e:  # orbax raises many types (JSONDecodeError, ValueError, ...) for damaged files
            raise CheckpointError(f"{path}: cannot read the parameters' metadata: {_first_line(e)}") from None
        diff = spec_differences(spec_of(getattr(meta, "tree", meta)), requested["param_spec"], "params", "stored")
        if diff:
            raise ArchitectureMismatchError(f"{path}: stored arrays do not match the record: " + "; ".join(diff))
        try:
            params = ckptr.restore(path, args=ocp.args.Composite(params=ocp.args.StandardRestore(target))).params
        except Exception as e:
            raise CheckpointError(f"{path}: cannot read the parameters (damaged files?): {_first_line(e)}") from None
    check_leaves(params, target, path)
    return params


def export_member(workdir: str, member: int, out: str) -> dict:
    """Writes ``member``'s best parameters from a sweep's latest checkpoint to
    ``out`` as a standalone member checkpoint; returns its architecture record."""
    import pandas as pd

    from jaxexp import config as cfgmod
    from jaxexp.run import population

    directory = sweep_dir(workdir)
    if not os.path.isdir(directory):
        raise CheckpointError(f"--workdir: no checkpoints in {workdir}; run the sweep with a workdir first")
    ckpt = SweepCheckpoints.reader(workdir)
    try:
        steps = ckpt.steps()
        if not steps:
            raise CheckpointError(f"--workdir: no complete checkpoint in {directory}")
        host, _ = ckpt.read_json(steps[-1])
        _, results = ckpt.read_arrays(steps[-1], None)
    finally:
        ckpt.close()
    finals = results.get("finals", {})
    if str(member) not in finals:
        done = sorted(int(k) for k in finals)
        shown = f"{done[:10]}{' ...' if len(done) > 10 else ''}"
        raise CheckpointError(f"--member: member {member} has no saved parameters (finished members: {shown})")
    config = cfgmod.from_dict(host["config"])
    table = (
        pd.read_csv(os.path.join(workdir, "members.csv"))
        if os.path.exists(os.path.join(workdir, "members.csv"))
        else population.members_table(config)
    )
    row = table[table["member"] == member]
    member_cfg = population.resolve(config, population.config_rows(config, row))[0].config
    from jaxexp import workload

    model, _, sample = model_of(member_cfg)
    record = architecture(member_cfg, model, sample)
    record["member"] = {"member": int(member), "seed": int(row["seed"].iloc[0]), "workdir": os.path.abspath(workdir)}
    params = finals[str(member)]["best_params"]
    check_leaves(params, workload.abstract_params(model, sample), f"{directory} step {steps[-1]} member {member}")
    save_member(out, params, record)
    return record
