"""TensorBoard event files (jaxexp.run.tensorboard): written from a tiny real sweep,
then read back record by record (TFRecord framing, protobuf decoding)."""

import dataclasses
import os
import struct
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import tiny_config

import jaxexp
from jaxexp.run import tensorboard
from jaxexp.search import space

# Scalars are stored as float32 (Summary.Value.simple_value): rounding a float64
# to float32 changes it by at most 2**-24 (6e-8) relative; 1e-6 leaves margin.
RTOL = 1e-6
PARAMS = ["train.schedule", "train.lr", "train.warmup_epochs"]


@pytest.fixture(scope="module")
def res():
    pytest.importorskip("tensorboardX")
    c = tiny_config(
        train={
            "schedule": space.choice(["constant", "cosine"]),
            "lr": space.choice([1e-3, 1e-2]),
            "warmup_epochs": space.choice([0.0, 1.0], when={"train.schedule": "cosine"}),  # NaN when inactive
        }
    )
    c.train.epochs, c.sweep.seeds, c.engine.plots = 2, 2, False
    return jaxexp.sweep(c)


def read_events(path: str) -> list:
    """The Events of one file: records of (u64 length, u32 masked crc of the
    length, data, u32 masked crc of the data), all little-endian."""
    from tensorboardX.proto.event_pb2 import Event
    from tensorboardX.record_writer import masked_crc32c

    data, pos, events = open(path, "rb").read(), 0, []
    while pos < len(data):
        (n,) = struct.unpack_from("<Q", data, pos)
        assert struct.unpack_from("<I", data, pos + 8)[0] == masked_crc32c(data[pos : pos + 8])
        body = data[pos + 12 : pos + 12 + n]
        assert struct.unpack_from("<I", data, pos + 12 + n)[0] == masked_crc32c(body)
        events.append(Event.FromString(body))
        pos += 16 + n
    assert pos == len(data)
    return events


def read_folder(folder: str) -> list:
    files = [f for f in os.listdir(folder) if "tfevents" in f]
    assert len(files) == 1, files
    return read_events(os.path.join(folder, files[0]))


def hparams_data(events: list) -> dict:
    """tag -> HParamsPluginData of the hparams plugin's summaries."""
    from tensorboardX.proto.plugin_hparams_pb2 import HParamsPluginData

    out = {}
    for e in events:
        for v in e.summary.value:
            if v.metadata.plugin_data.plugin_name == "hparams":
                out[v.tag] = HParamsPluginData.FromString(v.metadata.plugin_data.content)
    return out


def scalars(events: list) -> pd.DataFrame:
    rows = [(e.step, v.tag, v.simple_value) for e in events for v in e.summary.value if v.WhichOneof("value")]
    return pd.DataFrame(rows, columns=["step", "tag", "value"])


def value_of(v):
    kind = v.WhichOneof("kind")
    return None if kind is None else getattr(v, kind)


@pytest.mark.slow
def test_events_match_the_results(res, tmp_path):
    assert tensorboard.write_events(res, str(tmp_path)) == ["tb"]
    tb = tmp_path / "tb"
    folders = sorted(p.name for p in tb.iterdir() if p.is_dir())
    assert folders == [f"member_{m:04d}" for m in sorted(res.members["member"])]
    assert len(folders) == 2 * 2 * 2 + 2 * 2  # constant: lr x seed; cosine: lr x warmup x seed

    experiment = hparams_data(read_folder(str(tb)))["_hparams_/experiment"].experiment
    infos = {h.name: h for h in experiment.hparam_infos}
    assert set(PARAMS) <= set(res.params) and set(infos) == {*res.params, "seed"}
    assert [value_of(v) for v in infos["train.schedule"].domain_discrete.values] == ["constant", "cosine"]
    assert [value_of(v) for v in infos["train.lr"].domain_discrete.values] == [1e-3, 1e-2]
    assert [value_of(v) for v in infos["train.warmup_epochs"].domain_discrete.values] == [0.0, 1.0]
    metrics = [m.name.tag for m in experiment.metric_infos]
    assert metrics[0] == f"best_{res.metric}" and {"val_mse", "train_loss", "best_train_loss"} <= set(metrics)
    assert "diverged" not in metrics  # a flag: a scalar, not a metric

    hist_cols = [c for c in res.history.columns if c not in ("member", "epoch")]
    for _, row in res.members.iterrows():
        events = read_folder(str(tb / f"member_{row['member']:04d}"))
        assert events[0].file_version == "brain.Event:2"
        steps = [e.step for e in events]
        assert steps == sorted(steps)  # TensorBoard drops data after a step that goes back
        hp = hparams_data(events)
        start = hp["_hparams_/session_start_info"].session_start_info.hparams
        for name in [*res.params, "seed"]:
            expected = row[name]
            if isinstance(expected, float) and np.isnan(expected):  # inactive conditional parameter
                assert name not in start
            else:
                assert value_of(start[name]) == (expected.item() if hasattr(expected, "item") else expected)
        assert ("train.warmup_epochs" in start) == (row["train.schedule"] == "cosine")
        assert hp["_hparams_/session_end_info"].session_end_info.status == 1  # STATUS_SUCCESS

        got = scalars(events)
        hist = res.history[res.history["member"] == row["member"]]
        for col in hist_cols:
            series = got[got["tag"] == col]
            assert list(series["step"]) == list(hist["epoch"]) == [1, 2]
            np.testing.assert_allclose(series["value"], hist[col].astype(float), rtol=RTOL)
        best = got[got["tag"] == f"best_{res.metric}"]
        assert list(best["step"]) == [row["best_epoch"]]
        np.testing.assert_allclose(best["value"], row[f"best_{res.metric}"], rtol=RTOL)


@pytest.mark.slow
def test_diverged_members_odd_values_and_rewrites(res, tmp_path):
    members, history, summary = res.members.copy(), res.history.copy(), res.summary.copy()
    members["model.flag"] = [True, False] * (len(members) // 2)  # a bool hyperparameter
    members["model.hidden"] = [(8,)] * len(members)  # a tuple: written as its str
    summary["model.flag"], summary["model.hidden"] = True, None
    members.loc[0, ["status", "best_epoch", f"best_{res.metric}"]] = ["diverged", pd.NA, np.nan]
    first = history.index[history["member"] == members.loc[0, "member"]]
    history.loc[first, ["train_loss", res.metric, "diverged"]] = [[1.0, np.inf, False], [np.nan, np.nan, True]]
    odd = dataclasses.replace(res, members=members, history=history, summary=summary)
    tensorboard.write_events(odd, str(tmp_path))
    first_files = {p: p.read_bytes() for p in (tmp_path / "tb").rglob("*tfevents*")}
    tensorboard.write_events(odd, str(tmp_path))  # replaces the old files, byte for byte the same
    assert {p: p.read_bytes() for p in (tmp_path / "tb").rglob("*tfevents*")} == first_files

    infos = {
        h.name: h
        for h in hparams_data(read_folder(str(tmp_path / "tb")))["_hparams_/experiment"].experiment.hparam_infos
    }
    assert infos["model.flag"].type == 2 and infos["model.hidden"].type == 1  # BOOL, STRING
    events = read_folder(str(tmp_path / f"tb/member_{members.loc[0, 'member']:04d}"))
    hp = hparams_data(events)
    assert hp["_hparams_/session_end_info"].session_end_info.status == 2  # STATUS_FAILURE
    start = hp["_hparams_/session_start_info"].session_start_info.hparams
    assert start["model.flag"].bool_value is True and start["model.hidden"].string_value == "(8,)"
    got = scalars(events)
    assert f"best_{res.metric}" not in set(got["tag"])  # NaN best: left out
    metric = got[got["tag"] == res.metric]["value"].to_numpy()
    assert np.isposinf(metric[0]) and np.isnan(metric[1])
    assert list(got[got["tag"] == "diverged"]["value"]) == [0.0, 1.0]


def test_without_tensorboardx_a_clear_import_error(monkeypatch, tmp_path):
    for name in [n for n in sys.modules if n.split(".")[0] == "tensorboardX"] + ["tensorboardX"]:
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ImportError, match=r"pip install -e '\.\[tensorboard\]'"):
        tensorboard.write_events(None, str(tmp_path))
    assert not (tmp_path / "tb").exists()
