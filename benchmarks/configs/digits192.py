"""The end-to-end benchmark's sweep (benchmarks/sweep_e2e.py, workload A): digits, an MLP
64-128-128-10 with dropout, AdamW, 30 epochs of batch 64; 64 configurations
(4 learning rates x 4 weight decays x 4 dropouts) x 3 seeds = 192 runs.
``digits_mlp()`` is the run the other benchmark configs start from."""

import jaxexp
from jaxexp import space


def digits_mlp(name: str):
    """digits, MLP 64-128-128-10, dropout 0.1, AdamW lr 1e-3 / wd 1e-4, 30 epochs of batch 64."""
    c = jaxexp.default_config()
    c.name = name
    c.task.name = "digits"
    c.metric = "val_accuracy"
    c.goal = "max"
    c.model.hidden = (128, 128)
    c.model.dropout = 0.1
    c.train.optimizer = "adamw"
    c.train.batch_size = 64
    c.train.epochs = 30
    c.train.lr = 1e-3
    c.train.weight_decay = 1e-4
    return c


def get_config():
    c = digits_mlp("digits192")
    c.sweep.seeds = 3
    c.sweep.space = {
        "train": {
            "lr": space.choice([3e-4, 1e-3, 3e-3, 1e-2]),
            "weight_decay": space.choice([0.0, 1e-4, 1e-3, 1e-2]),
        },
        "model": {"dropout": space.choice([0.0, 0.1, 0.2, 0.3])},
    }
    return c
