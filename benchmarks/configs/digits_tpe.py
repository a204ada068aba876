"""The end-to-end benchmark's TPE search (benchmarks/sweep_e2e.py, workload B):
digits192.py's MLP and training (64-128-128-10 with dropout, AdamW, 30 epochs
of batch 64), searched with Optuna's TPE sampler (sweep.strategy="tpe"):
4 ask batches (sweep.generations) of 16 trials (sweep.slots), one seed each = 64
trials. benchmarks/baselines/optuna_tpe.py searches the same space sequentially."""

import importlib.util
import os

from jaxexp import space


def _digits_mlp(name: str):
    """digits192.py's base run (config files are loaded by path, not as a package)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "digits192.py")
    spec = importlib.util.spec_from_file_location("digits192", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.digits_mlp(name)


def get_config():
    c = _digits_mlp("digits_tpe")
    c.sweep.strategy = "tpe"
    c.sweep.generations = 4  # ask batches
    c.sweep.slots = 16  # trials per batch
    c.sweep.seeds = 1
    c.sweep.space = {
        "train": {
            "lr": space.log_uniform(1e-4, 3e-2),
            "weight_decay": space.log_uniform(1e-5, 1e-1),
        },
        "model": {"dropout": space.uniform(0.0, 0.5)},
    }
    return c
