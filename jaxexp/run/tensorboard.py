"""TensorBoard event files of a sweep, so ``tensorboard --logdir=WORKDIR`` shows
every member, its hyperparameters and its metrics (Scalars and HParams views).

Layout written under ``DIRECTORY/tb/`` (any old ``tb/`` is replaced):

- ``events.out.tfevents.<t>.jaxexp``: the HParams experiment: the swept
  hyperparameters (and ``seed``) with their domains, and the metrics;
- ``member_0007/events.out.tfevents.<t>.jaxexp``: one run per member: the
  HParams session start (its hyperparameter values; inactive conditional
  parameters left out), a scalar per epoch for every numeric history column
  (tag: the column name, step: the epoch, booleans as 0/1), the members-table
  ``best_*`` values at the best epoch, and the session end (status: ``ok`` and
  ``pruned`` success, ``diverged`` failure, otherwise unknown).

Steps never decrease within a file (TensorBoard drops data after an out-of-order
step). Every event carries one ``walltime`` (default 0): equal results, equal
bytes. Non-finite values are written as they are; NaN ``best_*`` are left out.
"""

from __future__ import annotations

import math
import os
import shutil
import sys

import numpy as np
import pandas as pd

from jaxexp.run import population

INSTALL_HINT = "TensorBoard events need the 'tensorboard' extra: pip install -e '.[tensorboard]'"
MAX_DISCRETE = 16  # numeric hyperparameters with at most this many values get a discrete domain
_NOT_SCALARS = ("member", "epoch", "config_id", "seed")
_STATUS = {"ok": "STATUS_SUCCESS", "pruned": "STATUS_SUCCESS", "diverged": "STATUS_FAILURE"}  # else unknown
_DATASETS = (("train", "DATASET_TRAINING"), ("val", "DATASET_VALIDATION"))  # metric name prefixes


def _import_tensorboardx() -> None:
    """Imports tensorboardX without torch: its package import loads torch when torch is
    installed (0.7 s here, most of the events' cost), for a ``SummaryWriter`` feature
    (torch tensors as values) that is optional there and unused here."""
    hide = "torch" not in sys.modules
    if hide:
        sys.modules["torch"] = None  # ``import torch`` raises ImportError, which tensorboardX allows
    try:
        import tensorboardX  # noqa: F401
    except ImportError as e:
        raise ImportError(INSTALL_HINT) from e
    finally:
        if hide:
            del sys.modules["torch"]


def write_events(res, directory: str, walltime: float = 0.0) -> list[str]:
    """Writes the event files of ``res`` (a ``jaxexp.run.results.Results``) under
    ``directory/tb/`` and returns the top-level paths written, relative to
    ``directory``: ``["tb"]``. Raises ImportError (INSTALL_HINT) without
    tensorboardX."""
    _import_tensorboardx()
    from tensorboardX.proto import api_pb2, plugin_hparams_pb2

    root = os.path.join(directory, "tb")
    shutil.rmtree(root, ignore_errors=True)  # members of an earlier write
    os.makedirs(root)
    members, history = res.members, res.history
    names = list(dict.fromkeys([*res.params, "seed"]))
    hparams = {n: _hparam_column(members[n]) for n in names if n in members.columns}
    hist_cols = [c for c in history.columns if c not in _NOT_SCALARS and pd.api.types.is_numeric_dtype(history[c])]
    best_cols = sorted(
        (c for c in members.columns if c.startswith("best_") and c != "best_epoch"),
        key=lambda c: c != f"best_{res.metric}",
    )
    metrics = [*best_cols, *(c for c in hist_cols if not pd.api.types.is_bool_dtype(history[c]))]
    experiment = _experiment(res, hparams, metrics, walltime)
    _write(root, [(0, _summary("_hparams_/experiment", _plugin(experiment=experiment)))], walltime)

    width = max(4, len(str(int(members["member"].max())))) if len(members) else 4
    hist = history.sort_values(["member", "epoch"], kind="stable")
    table = hist[hist_cols].to_numpy(dtype=float, na_value=np.nan)
    epochs, rows_of = hist["epoch"].to_numpy(), hist.groupby("member", sort=False).indices
    for i in range(len(members)):
        row, member = members.iloc[i], int(members["member"].iloc[i])
        start = plugin_hparams_pb2.SessionStartInfo(start_time_secs=walltime)
        for name, (_, values) in hparams.items():
            if values[i] is not None:  # reading a map key adds it: only set values
                _set_value(start.hparams[name], values[i])
        events = [(0, _summary("_hparams_/session_start_info", _plugin(session_start_info=start)))]
        best_epoch = None if population._missing(row.get("best_epoch")) else int(row["best_epoch"])
        best = [(c, row[c]) for c in best_cols if not population._missing(row[c])]
        step = 0
        for j in rows_of.get(member, []):
            step, values = int(epochs[j]), list(zip(hist_cols, table[j]))
            if step == best_epoch:  # the best_* values next to the best epoch's own
                values, best = values + best, []
            events.append((step, _scalars(values)))
        if best:  # no history row at the best epoch: after the last one
            events.append((step, _scalars(best)))
        code = _STATUS.get(str(row["status"]), "STATUS_UNKNOWN")
        end = plugin_hparams_pb2.SessionEndInfo(status=api_pb2.Status.Value(code), end_time_secs=walltime)
        events.append((step, _summary("_hparams_/session_end_info", _plugin(session_end_info=end))))
        folder = os.path.join(root, f"member_{member:0{width}d}")
        os.makedirs(folder)
        _write(folder, events, walltime)
    return ["tb"]


def _py(v):
    """A numpy/pandas scalar as a plain Python value; a tuple or other object as its str."""
    v = v.item() if isinstance(v, np.generic) else v
    return v if isinstance(v, (bool, int, float, str)) else str(v)


def _hparam_column(col: pd.Series) -> tuple[str, list]:
    """(data type name, one value per row: None where missing) of a
    hyperparameter column; a column of mixed types is all strings."""
    values = [None if population._missing(v) else _py(v) for v in col]
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, bool) for v in present):
        return "DATA_TYPE_BOOL", values
    if present and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
        return "DATA_TYPE_FLOAT64", [None if v is None else float(v) for v in values]
    return "DATA_TYPE_STRING", [None if v is None else str(v) for v in values]


def _set_value(target, v) -> None:
    """Sets a ``google.protobuf.Value`` from a plain bool, float or str."""
    if isinstance(v, bool):
        target.bool_value = v
    elif isinstance(v, float):
        target.number_value = v
    elif isinstance(v, str):
        target.string_value = v


def _experiment(res, hparams: dict, metrics: list[str], walltime: float):
    """The HParams ``Experiment``: hyperparameters with their domains, metrics."""
    from google.protobuf import struct_pb2
    from tensorboardX.proto import api_pb2

    infos = []
    for name, (dtype, values) in hparams.items():
        info = api_pb2.HParamInfo(name=name, type=api_pb2.DataType.Value(dtype))
        distinct = sorted({v for v in values if v is not None})
        if dtype == "DATA_TYPE_FLOAT64" and len(distinct) > MAX_DISCRETE:
            info.domain_interval.CopyFrom(api_pb2.Interval(min_value=distinct[0], max_value=distinct[-1]))
        elif distinct:
            discrete = struct_pb2.ListValue()
            for v in distinct:
                _set_value(discrete.values.add(), v)
            info.domain_discrete.CopyFrom(discrete)
        infos.append(info)
    goal = res.config.goal
    metric_infos = []
    for tag in metrics:
        base = tag.removeprefix("best_")
        if tag == f"best_{res.metric}":
            description = f"best {res.metric} over the epochs (goal: {goal})"
        elif tag.startswith("best_"):
            description = f"{base} at the epoch of the best {res.metric}"
        else:
            description = f"{tag} at the last epoch"
        kind = next((k for p, k in _DATASETS if base.startswith(p)), "DATASET_UNKNOWN")
        dataset = api_pb2.DatasetType.Value(kind)
        info = api_pb2.MetricInfo(name=api_pb2.MetricName(tag=tag), description=description, dataset_type=dataset)
        metric_infos.append(info)
    return api_pb2.Experiment(
        name=str(res.config.get("name", "")),
        description=f"jaxexp sweep; selection metric {res.metric} (goal: {goal})",
        time_created_secs=walltime,
        hparam_infos=infos,
        metric_infos=metric_infos,
    )


def _plugin(**data):
    """A ``SummaryMetadata`` of the hparams plugin carrying one of its messages."""
    from tensorboardX.proto.plugin_hparams_pb2 import HParamsPluginData
    from tensorboardX.proto.summary_pb2 import SummaryMetadata

    content = HParamsPluginData(version=0, **data).SerializeToString(deterministic=True)
    return SummaryMetadata(plugin_data=SummaryMetadata.PluginData(plugin_name="hparams", content=content))


def _summary(tag: str, metadata):
    """A ``Summary`` of one data-less value: the carrier of plugin ``metadata``."""
    from tensorboardX.proto.summary_pb2 import Summary

    return Summary(value=[Summary.Value(tag=tag, metadata=metadata)])


def _scalars(values: list):
    """A ``Summary`` of (tag, value) scalars (float32 ``simple_value``; bool as 0/1)."""
    from tensorboardX.proto.summary_pb2 import Summary

    return Summary(value=[Summary.Value(tag=tag, simple_value=float(v)) for tag, v in values])


def _write(folder: str, events: list, walltime: float) -> None:
    """Writes one event file: the file-version event, then (step, Summary) events."""
    from tensorboardX.proto.event_pb2 import Event
    from tensorboardX.record_writer import RecordWriter

    writer = RecordWriter(os.path.join(folder, f"events.out.tfevents.{math.floor(walltime)}.jaxexp"))
    try:
        writer.write(Event(wall_time=walltime, file_version="brain.Event:2").SerializeToString(deterministic=True))
        for step, summary in events:
            event = Event(wall_time=walltime, step=step, summary=summary)
            writer.write(event.SerializeToString(deterministic=True))
    finally:
        writer.close()
