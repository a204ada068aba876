"""Test setup: 8 forced CPU devices (set before JAX starts) and a tiny config."""

import os
import re
import tempfile

_flags = re.sub(r"--xla_force_host_platform_device_count=\S*", "", os.environ.get("XLA_FLAGS", ""))
os.environ["XLA_FLAGS"] = f"{_flags} --xla_force_host_platform_device_count=8".strip()
# The persistent compilation cache of the tests (and their CLI subprocesses):
# a fresh directory, never the user's ~/.cache.
os.environ["JAXEXP_CACHE_DIR"] = tempfile.mkdtemp(prefix="jaxexp-test-cache-")

import pytest  # noqa: E402

import jaxexp  # noqa: E402


def tiny_config(**sweep_space):
    """A seconds-long config: 4 features, 256 rows, an 8-unit MLP, 3 epochs of 8 steps."""
    c = jaxexp.default_config()
    c.name = "tiny"
    c.metric = "val_mse"
    c.task.n_train = 256
    c.task.n_val = 64
    c.task.n_features = 4
    c.model.hidden = (8,)
    c.model.dropout = 0.1
    c.train.batch_size = 32
    c.train.epochs = 3
    c.train.lr = 1e-2
    c.engine.segment_epochs = 2
    c.engine.progress = False
    c.engine.checkpoint = False  # on where checkpoints are tested (tests/test_checkpoint.py)
    c.engine.checkpoint_every_s = 0.0  # where on: after every segment (resume from any point is tested)
    if sweep_space:
        c.sweep.space = sweep_space
    return c


def interrupt_after(n_calls: int):
    """A progress callback that raises KeyboardInterrupt on its n-th call (after a
    segment ran, before that segment's checkpoint)."""
    calls = {"n": 0}

    def progress(line):
        calls["n"] += 1
        if calls["n"] == n_calls:
            raise KeyboardInterrupt

    return progress


@pytest.fixture
def tiny():
    return tiny_config
