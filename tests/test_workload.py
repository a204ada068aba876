"""The workload interface: a user's own model, loss, metric and data as population members."""

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import interrupt_after, tiny_config

import jaxexp
from jaxexp import config as cfgmod
from jaxexp.errors import ConfigError
from jaxexp.run import engine

HERE = os.path.dirname(__file__)
USER = os.path.join(HERE, "workloads", "tiny_user.py")


def user_config(**space):
    c = jaxexp.default_config(workload=USER)
    c.name = "user"
    c.train.batch_size = 32
    c.train.epochs = 3
    c.train.lr = 1e-2
    c.engine.segment_epochs = 3
    c.engine.progress = False
    c.engine.checkpoint = False
    if space:
        c.sweep.space = space
    return c


@pytest.mark.slow
def test_builtin_mlp_numbers_are_unchanged():
    """Pinned from the MLP before it became a workload (commit c04e825), same config;
    rtol 1e-5: float32 sums in another order."""
    c = tiny_config(train={"lr": jaxexp.space.choice([1e-2, 3e-2])})
    c.task.name = "grouped"
    c.train.curriculum_hard_epoch = 1
    c.train.hard_weight_start = 0.5
    c.train.hard_weight_slope = 0.25
    c.model.input_dropout = 0.05
    c.model.final_dropout = 0.2
    r = jaxexp.sweep(c)
    np.testing.assert_allclose(
        r.history["train_loss"], [20.744139, 18.300604, 24.411232, 17.982157, 24.038576, 15.664469], rtol=1e-5
    )
    np.testing.assert_allclose(
        r.history["val_mse"], [34.143456, 27.877903, 31.544792, 21.912621, 28.183678, 15.540931], rtol=1e-5
    )
    g = r.group_history
    expected = [22.29941, 12.444667, 3.749046, 4.522691, 1.978255, 0.916671]
    expected += [4.109317, 8.191805, 35.449272, 64.736649, 85.831039, 147.769882]
    np.testing.assert_allclose(g[g.epoch == 3]["val_mse"].to_numpy()[:12], expected, rtol=1e-5)
    c = tiny_config()
    c.task.name = "classification"
    c.metric, c.goal = "val_accuracy", "max"
    r = jaxexp.sweep(c)
    np.testing.assert_allclose(r.history["val_loss"], [1.161101, 1.035779, 0.956772], rtol=1e-5)
    np.testing.assert_array_equal(r.history["val_accuracy"], [0.484375, 0.609375, 0.625])


@pytest.mark.slow
def test_user_workload_from_a_file_trains_with_its_own_metric_and_aux_terms():
    c = user_config()
    assert c.width == 8 and c.metric == "score" and c.goal == "max"
    r = jaxexp.sweep(c)
    h = r.history
    assert {"train_loss", "train_mse", "train_smooth", "score", "mse"} <= set(h.columns)
    np.testing.assert_allclose(h["score"], -h["mse"], rtol=1e-6)
    m = r.members.iloc[0]
    assert m["best_score"] > m["init_score"]  # it learned
    y, p = r.predict(0)
    assert y.shape == p.shape == (64, 1)
    assert np.mean((p - y) ** 2) == pytest.approx(-m["best_score"], rel=1e-4)


@pytest.mark.slow
def test_trace_count_is_one_per_bucket_for_a_user_workload():
    space = {
        "width": jaxexp.space.choice([4, 8]),  # static: 2 buckets
        "dropout": jaxexp.space.choice([0.0, 0.3]),  # traced
        "smooth_weight": jaxexp.space.choice([0.0, 0.5]),  # traced
    }
    c = user_config(**space)
    c.name = "trace-count"
    engine._PROGRAMS.clear()
    before = jaxexp.TRACE_COUNTS["run_segment"]
    r = jaxexp.sweep(c)
    assert jaxexp.TRACE_COUNTS["run_segment"] - before == 2
    assert len(r.members) == 8 and (r.members["status"] == "ok").all()
    # traced values reach the loss: same width, different smooth_weight -> different training
    h = r.history.merge(r.members[["member", "width", "dropout", "smooth_weight"]], on="member")
    a = h[(h.width == 8) & (h.dropout == 0.0) & (h.smooth_weight == 0.0)]["train_loss"].to_numpy()
    b = h[(h.width == 8) & (h.dropout == 0.0) & (h.smooth_weight == 0.5)]["train_loss"].to_numpy()
    assert not np.allclose(a, b)


@pytest.mark.slow
def test_a_member_is_reproduced_from_its_members_csv_row(tmp_path):
    c = user_config(dropout=jaxexp.space.choice([0.0, 0.2]), width=jaxexp.space.choice([4, 8]))
    c.sweep.seeds = 2
    jaxexp.sweep(c, str(tmp_path / "w"))
    table = pd.read_csv(tmp_path / "w" / "members.csv")
    full = pd.read_csv(tmp_path / "w" / "history.csv")
    row = table[table["member"] == 5]
    again = jaxexp.run_members(c, row[["member", "config_id", "seed", "width", "dropout"]])
    want = full[full["member"] == 5].reset_index(drop=True)
    # alone vs in a population of 8: vmap is not bit-identical on CPU (see ARCHITECTURE.md)
    np.testing.assert_allclose(again.history["train_loss"], want["train_loss"], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(again.history["score"], want["score"], rtol=1e-4, atol=1e-6)


@pytest.mark.slow
def test_custom_metric_drives_early_stopping():
    c = user_config()
    c.train.epochs = 12
    c.train.lr = 0.3  # too large: the score stops improving early
    c.train.optimizer = "sgd"
    c.train.early_stop_patience = 1
    c.engine.segment_epochs = 12
    r = jaxexp.sweep(c)
    h = r.history
    stop = int(r.members["stop_epoch"].iloc[0])
    assert stop < 12 and h["epoch"].max() == stop
    # it stopped at the first epoch whose score was not above the best before it (patience 1, goal max)
    best_before = np.maximum.accumulate(h["score"].to_numpy())
    worse = np.nonzero(h["score"].to_numpy()[1:] <= best_before[:-1])[0]
    assert stop == int(worse[0]) + 2


@pytest.mark.slow
def test_a_changed_user_module_is_refused_on_restore_with_the_named_diff(tmp_path):
    c = user_config()
    c.engine.checkpoint = True
    jaxexp.sweep(c, str(tmp_path / "w"))
    from jaxexp.run import checkpoint

    checkpoint.export_member(str(tmp_path / "w"), 0, str(tmp_path / "m"))
    assert jaxexp.load_member(str(tmp_path / "m"), c)["Dense_0"]["kernel"].shape == (4, 8)
    changed = tmp_path / "tiny_user.py"  # the user edits the module: the hidden layer doubles
    changed.write_text(open(USER).read().replace("return Net(cfg.width)", "return Net(2 * cfg.width)"))
    c2 = cfgmod.with_values(c, {"workload": str(changed)})
    with pytest.raises(jaxexp.ArchitectureMismatchError, match=r"params\.Dense_0/kernel: \(4, 8\) float32"):
        jaxexp.load_member(str(tmp_path / "m"), c2)
    c3 = cfgmod.with_values(c, {"width": 16})
    with pytest.raises(jaxexp.ArchitectureMismatchError, match=r"model\.width: 8 \(checkpoint\) != 16"):
        jaxexp.load_member(str(tmp_path / "m"), c3)


@pytest.mark.slow
def test_overrides_and_spaces_reach_user_hyperparameters_by_their_names(tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text("method: grid\nparameters:\n  width:\n    values: [4, 16]\n  smooth_weight:\n    value: 0.5\n")
    cfg = tmp_path / "cfg.py"
    cfg.write_text(
        "import jaxexp\n\n\ndef get_config():\n"
        f"    c = jaxexp.default_config(workload={USER!r})\n    c.train.epochs = 1\n    return c\n"
    )
    out = subprocess.run(
        [sys.executable, "-m", "jaxexp.main", "validate", str(space), f"--config={cfg}", "--config.dropout=0.2"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert "width" in out.stdout and "static" in out.stdout and "traced" in out.stdout
    space.write_text("method: grid\nparameters:\n  widht:\n    values: [4, 16]\n")
    out = subprocess.run(
        [sys.executable, "-m", "jaxexp.main", "validate", str(space), f"--config={cfg}"], capture_output=True, text=True
    )
    assert out.returncode == 2 and "did you mean 'width'" in out.stderr


BROKEN = {
    "loss returns a vector": (
        'return mse + hp["smooth_weight"] * smooth, {',
        "return (pred - batch['y'])[:, 0], {",
        r"tiny_user\.loss: returned a loss of shape \(32,\); return one float scalar",
    ),
    "traced value used as a Python value": (
        '    pred = model.apply(params, batch["x"], hp["dropout"], rng)',
        "    pred = model.apply(params, batch['x'], hp['dropout'], rng) if hp['smooth_weight'] > 0 else 0.0",
        r"tiny_user\.loss: uses traced hyperparameter 'smooth_weight' as a Python value",
    ),
    "splits differ": (
        "return jaxexp.Dataset(split(0, cfg.n_rows), split(cfg.n_rows, n))",
        'return jaxexp.Dataset(split(0, cfg.n_rows), {"x": x[cfg.n_rows :]})',
        r"tiny_user\.data: train and val differ in structure",
    ),
    "evaluation lacks the selection metric": (
        'return {"score": -mse, "mse": mse}',
        'return {"mse": mse}',
        r"metric: 'score' is not reported by workload tiny_user "
        r"\(it reports train_loss, train_mse, train_smooth, mse\)",
    ),
    "aux term named loss": (
        '{"mse": mse, "smooth": smooth}',
        '{"loss": mse, "smooth": smooth}',
        r"tiny_user\.loss: an aux term named 'loss' would hide train_loss",
    ),
    "metric named like an engine column": (
        'return {"score": -mse, "mse": mse}',
        'return {"score": -mse, "lr": mse}',
        r"tiny_user\.evaluate: the metric name 'lr' is taken by the engine's history columns",
    ),
    "the epoch used as a Python value": (
        '    pred = model.apply(params, batch["x"], hp["dropout"], rng)',
        "    pred = model.apply(params, batch['x'], hp['dropout'] if hp['epoch'] > 1 else 0.0, rng)",
        r"tiny_user\.loss: uses traced hyperparameter 'epoch' as a Python value",
    ),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_a_broken_workload_is_one_clear_error_and_nothing_is_written(tmp_path, case):
    old, new, message = BROKEN[case]
    src = open(USER).read()
    assert old in src
    path = tmp_path / "tiny_user.py"
    path.write_text(src.replace(old, new))
    c = cfgmod.with_values(user_config(), {"workload": str(path)})
    with pytest.raises(ConfigError, match=message):
        jaxexp.sweep(c, str(tmp_path / "w"))
    assert not (tmp_path / "w").exists()


@pytest.mark.slow
def test_cli_refuses_a_broken_workload_with_exit_2(tmp_path):
    path = tmp_path / "tiny_user.py"
    path.write_text(open(USER).read().replace('return {"score": -mse, "mse": mse}', 'return {"mse": mse}'))
    cfg = tmp_path / "cfg.py"
    cfg.write_text(f"import jaxexp\n\n\ndef get_config():\n    return jaxexp.default_config(workload={str(path)!r})\n")
    out = subprocess.run(
        [sys.executable, "-m", "jaxexp.main", "sweep", f"--config={cfg}", f"--workdir={tmp_path / 'w'}"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and "metric: 'score' is not reported" in out.stderr
    assert not (tmp_path / "w").exists()


def test_declared_ranges_are_checked():
    c = cfgmod.with_values(user_config(), {"dropout": 1.5})
    with pytest.raises(ConfigError, match=r"dropout: must be in \[0.0, 0.9\] \(got 1.5\)"):
        jaxexp.sweep(c)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["nnx", "pair"])
def test_nnx_and_plain_init_apply_models_train(kind):
    import types

    import flax.nnx as nnx
    import jax
    import jax.numpy as jnp
    from workloads import tiny_user

    class Net(nnx.Module):
        def __init__(self, rngs):
            self.a = nnx.Linear(4, 8, rngs=rngs)
            self.drop = jaxexp.NNXDropout("hidden")
            self.b = nnx.Linear(8, 1, rngs=rngs)

        def __call__(self, x, rate=0.0, seed=None):
            return self.b(self.drop(nnx.relu(self.a(x)), rate, seed))

    def init(key, batch):
        return {"w": jax.random.normal(key, (4, 1)) * 0.1, "b": jnp.zeros(1)}

    mod = types.ModuleType(f"wl_{kind}")
    for attr in ("HPARAMS", "METRIC", "data", "loss", "evaluate"):
        setattr(mod, attr, getattr(tiny_user, attr))
    if kind == "nnx":
        mod.model = lambda cfg, data: jaxexp.nnx_model(Net)
    else:
        mod.model = lambda cfg, data: jaxexp.Model(init, lambda p, x, rate=0.0, seed=None: x @ p["w"] + p["b"])
    sys.modules[mod.__name__] = mod
    c = jaxexp.default_config(workload=mod)
    c.train.batch_size, c.train.epochs, c.train.lr = 32, 3, 1e-2
    c.engine.progress = c.engine.checkpoint = False
    c.sweep.space = {"dropout": jaxexp.space.choice([0.0, 0.5])}
    r = jaxexp.sweep(c)
    assert (r.members["status"] == "ok").all()
    assert (r.members["best_score"] > r.members["init_score"]).all()
    if kind == "nnx":  # the traced rate reaches the NNX layer
        h = r.history
        assert not np.allclose(h[h.member == 0]["train_loss"], h[h.member == 1]["train_loss"])


@pytest.mark.slow
def test_resume_with_a_changed_user_module_is_refused_with_the_named_diff(tmp_path):
    import importlib.util

    wl = tmp_path / "wl.py"
    wl.write_text(open(USER).read())
    cfg = tmp_path / "cfg.py"
    cfg.write_text(
        "import jaxexp\n\n\ndef get_config():\n"
        f"    c = jaxexp.default_config(workload={str(wl)!r})\n"
        "    c.train.epochs, c.train.batch_size, c.engine.segment_epochs = 4, 32, 1\n"
        "    return c\n"
    )
    spec = importlib.util.spec_from_file_location("user_cfg", cfg)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    wd = tmp_path / "wd"
    assert jaxexp.sweep(module.get_config(), str(wd), progress=interrupt_after(2)).interrupted
    wl.write_text(open(USER).read().replace("return Net(cfg.width)", "return Net(2 * cfg.width)"))
    out = subprocess.run(
        [sys.executable, "-m", "jaxexp.main", "sweep", f"--config={cfg}", f"--workdir={wd}"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2, out.stderr
    assert out.stderr.count("\n") == 1 and "params.Dense_0/kernel: (4, 8) float32 (checkpoint) != (4, 16)" in out.stderr


@pytest.mark.slow
def test_a_module_object_is_used_as_given_with_make_batch_and_its_rows(tmp_path):
    """A module passed as an object is not executed again; a make_batch builds the
    model's input from raw fields (the model is initialised on its output)."""
    import importlib.util

    path = tmp_path / "raw_user.py"
    src = open(USER).read().replace('NAME = "tiny_user"', 'NAME = "raw_user"\nRUNS = []\nRUNS.append(1)')
    src = src.replace(
        "    return jaxexp.Dataset(split(0, cfg.n_rows), split(cfg.n_rows, n))",
        "    raw = lambda a, b: {'a': np.concatenate([x[a:b], x[a:b]], 1), 'y': y[a:b]}  # noqa: E731\n"
        "    return jaxexp.Dataset(raw(0, cfg.n_rows), raw(cfg.n_rows, n))",
    )
    src += (
        "\n\ndef make_batch(train, idx, hp, rng):\n"
        "    return {'x': train['a'][idx, :4], 'y': train['y'][idx]}\n"
        "\n\ndef evaluate(model, params, val, hp):  # noqa: F811\n"
        "    mse = jnp.mean((model.apply(params, val['a'][:, :4]) - val['y']) ** 2)\n"
        "    return {'score': -mse, 'mse': mse}\n"
    )
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("raw_user", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    c = jaxexp.default_config(workload=module)
    assert c.workload == str(path)
    c.train.batch_size, c.train.epochs, c.train.lr = 32, 3, 1e-2
    c.engine.progress = c.engine.checkpoint = False
    r = jaxexp.sweep(c)
    assert module.RUNS == [1]  # executed once, by the user
    assert jaxexp.load_workload(c.workload).loss is module.loss
    assert r.best_params[0]["Dense_0"]["kernel"].shape == (4, 8)  # from make_batch's x, not the raw 8 columns
    assert r.members["best_score"].iloc[0] > r.members["init_score"].iloc[0]
