import builtins
import importlib.util

import numpy as np
import pandas as pd
import pytest

import jaxexp
from jaxexp.errors import DataError


def _file_cfg(tiny, path, **task):
    c = tiny()
    c.task.name = "file"
    c.task.path = str(path)
    for k, v in task.items():
        c.task[k] = v
    return c


def test_synthetic_tasks_are_deterministic_with_a_known_floor(tiny):
    c = tiny()
    a, b = jaxexp.load_task(c.task), jaxexp.load_task(c.task)
    assert np.array_equal(a.x_train, b.x_train)
    c.task.seed = 5
    assert not np.array_equal(jaxexp.load_task(c.task).x_train, a.x_train)
    assert 0 < a.info["noise_floor_mse"] < 0.02  # noise 0.1 on a unit-variance signal
    c.task.name = "classification"
    t = jaxexp.load_task(c.task)
    assert t.kind == "classification" and t.n_outputs == 4 and t.y_train.dtype == np.int32


@pytest.mark.slow
def test_csv_task_trains(tiny, tmp_path):
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300), "junk": rng.normal(size=300)})
    df["target"] = 2 * df.a - df.b
    df.to_csv(tmp_path / "d.csv", index=False)
    c = _file_cfg(tiny, tmp_path / "d.csv", target="target", features="a,b")
    t = jaxexp.load_task(c.task)
    assert t.n_features == 2 and len(t.x_train) == 240 and len(t.x_val) == 60
    res = jaxexp.sweep(c)
    assert (res.members.status == "ok").all()


def test_npz_task_with_explicit_splits(tiny, tmp_path):
    rng = np.random.default_rng(1)
    np.savez(
        tmp_path / "d.npz",
        x_train=rng.normal(size=(100, 3)),
        y_train=rng.integers(0, 3, 100),
        x_val=rng.normal(size=(20, 3)),
        y_val=rng.integers(0, 3, 20),
    )
    c = _file_cfg(tiny, tmp_path / "d.npz", kind="classification")
    t = jaxexp.load_task(c.task)
    assert t.kind == "classification" and t.n_outputs == 3 and len(t.x_val) == 20


@pytest.mark.parametrize(
    "make, fragment",
    [
        (lambda p: pd.DataFrame({"a": [1.0, np.nan, 3.0], "y": [1.0, 2.0, 3.0]}).to_csv(p, index=False), "have NaN"),
        (lambda p: pd.DataFrame({"a": [1.0, 2.0], "z": [1.0, 2.0]}).to_csv(p, index=False), "task.target: column 'y'"),
        (lambda p: pd.DataFrame({"a": ["x", "y"], "y": [1.0, 2.0]}).to_csv(p, index=False), "not numeric"),
        # a 1e30 "missing" sentinel would zero the whole column when standardised in float32
        (
            lambda p: pd.DataFrame({"a": [1.0] * 9 + [1e30], "y": np.arange(10.0)}).to_csv(p, index=False),
            "has |value| >= 1e+18 (1e+30 at row",
        ),
        (
            lambda p: pd.DataFrame({"a": np.arange(10.0), "y": [1.0] * 9 + [-1e30]}).to_csv(p, index=False),
            "has |value| >= 1e+18 (-1e+30 at row",
        ),
    ],
)
def test_bad_csv_gives_one_line_errors(tiny, tmp_path, make, fragment):
    path = tmp_path / "bad.csv"
    make(path)
    with pytest.raises(DataError) as e:
        jaxexp.load_task(_file_cfg(tiny, path).task)
    assert fragment in str(e.value) and "\n" not in str(e.value)


def test_bad_npz_and_paths(tiny, tmp_path):
    np.savez(tmp_path / "short.npz", x=np.zeros((10, 2)), y=np.zeros(9))
    with pytest.raises(DataError, match="x has 10 rows but y has 9"):
        jaxexp.load_task(_file_cfg(tiny, tmp_path / "short.npz").task)
    with pytest.raises(DataError, match="task.path: file not found"):
        jaxexp.load_task(_file_cfg(tiny, tmp_path / "missing.csv").task)
    np.savez(tmp_path / "complex.npz", x=np.ones((10, 2)) * (1 + 2j), y=np.zeros(10))
    with pytest.raises(DataError, match="x_train is complex; give real numbers"):
        jaxexp.load_task(_file_cfg(tiny, tmp_path / "complex.npz").task)
    np.savez(tmp_path / "nox.npz", a=np.zeros(3))
    with pytest.raises(DataError, match="has no array 'x'"):
        jaxexp.load_task(_file_cfg(tiny, tmp_path / "nox.npz").task)


def test_bundled_digits_needs_the_data_extra(tiny, monkeypatch):
    c = tiny()
    c.task.name = "digits"
    c.task.seed = 77  # not cached by another test
    real_import = builtins.__import__

    def no_sklearn(name, *args, **kwargs):
        if name.startswith("sklearn"):
            raise ImportError("no sklearn")
        return real_import(name, *args, **kwargs)

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(builtins, "__import__", no_sklearn)
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "sklearn" else real_find_spec(n, *a))
    with pytest.raises(DataError, match=r"pip install 'jaxexp\[data\]'"):
        jaxexp.load_task(c.task)


def test_bundled_digits_loads(tiny):
    pytest.importorskip("sklearn")
    c = tiny()
    c.task.name = "digits"
    t = jaxexp.load_task(c.task)
    assert t.n_features == 64 and t.n_outputs == 10 and len(t.x_train) + len(t.x_val) == 1797


def test_digits_read_from_the_file_are_load_digits():
    datasets = pytest.importorskip("sklearn.datasets")
    from jaxexp.tasks import bundled

    x, y = bundled.digits_arrays()
    d = datasets.load_digits()
    np.testing.assert_array_equal(x, d.data)  # exact: the same CSV parsed
    np.testing.assert_array_equal(y, d.target)
    assert x.dtype == d.data.dtype and y.dtype == d.target.dtype


def test_string_labels_are_a_data_error(tiny, tmp_path):
    pd.DataFrame({"a": [1.0, 2.0, 3.0], "y": ["cat", "dog", "cat"]}).to_csv(tmp_path / "s.csv", index=False)
    with pytest.raises(DataError, match="task.target: column 'y' .* is not numeric"):
        jaxexp.load_task(_file_cfg(tiny, tmp_path / "s.csv", kind="classification").task)
    np.savez(tmp_path / "s.npz", x=np.zeros((3, 2)), y=np.array(["a", "b", "c"]))
    with pytest.raises(DataError, match="y_train is not numeric"):
        jaxexp.load_task(_file_cfg(tiny, tmp_path / "s.npz", kind="classification").task)


@pytest.mark.slow
def test_csv_groups_give_per_group_metrics_and_curriculum_levels(tiny, tmp_path):
    rng = np.random.default_rng(0)
    n = 300
    g = rng.choice(["easy_a", "mid", "hard"], size=n)
    x = rng.normal(size=(n, 3))
    y = x[:, 0] + np.where(g == "hard", 2.0, 0.0) + 0.1 * rng.normal(size=n)
    path = tmp_path / "g.csv"
    pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "kind": g, "y": y}).to_csv(path, index=False)
    c = _file_cfg(tiny, path, group="kind", medium_groups="mid", hard_groups="hard")
    task = jaxexp.load_task(c.task)
    assert task.n_features == 3  # the group column is not a feature
    assert task.group_names == ("easy_a", "hard", "mid") and task.group_levels == (0, 2, 1)
    c.sweep.seeds = 2
    res = jaxexp.sweep(c)
    assert set(res.groups["group"]) == {"easy_a", "hard", "mid"} and len(res.groups) == 2 * 3
    bad = _file_cfg(tiny, path, group="kind", hard_groups="hrad")
    with pytest.raises(DataError, match=r"task.hard_groups: no group 'hrad' in the data"):
        jaxexp.load_task(bad.task)
    missing = _file_cfg(tiny, path, group="knd")
    with pytest.raises(DataError, match=r"task.group: column 'knd' not in"):
        jaxexp.load_task(missing.task)
