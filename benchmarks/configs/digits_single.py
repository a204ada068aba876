"""The end-to-end benchmark's single run (benchmarks/sweep_e2e.py, workload C):
digits192.py's MLP and training (64-128-128-10, AdamW lr 1e-3, weight decay
1e-4, dropout 0.1, 30 epochs of batch 64), one configuration x one seed (P = 1).
benchmarks/baselines/jax_single.py trains the same run in a plain JAX loop."""

import importlib.util
import os


def _digits_mlp(name: str):
    """digits192.py's base run (config files are loaded by path, not as a package)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "digits192.py")
    spec = importlib.util.spec_from_file_location("digits192", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.digits_mlp(name)


def get_config():
    c = _digits_mlp("digits_single")
    c.sweep.seeds = 1
    return c
