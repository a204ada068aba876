"""The default sweep: 3 learning rates x 2 weight decays x 4 seeds = 24 members.

A 16-64-1 MLP with dropout on the built-in regression task (val MSE floor
~0.01 in standardised units), AdamW with a cosine schedule, 20 epochs.
"""

from jaxexp import space
from jaxexp.config import default_config


def get_config():
    c = default_config()
    c.name = "quickstart"
    c.metric = "val_mse"
    c.task.name = "regression"
    c.model.hidden = (64,)
    c.model.dropout = 0.1
    c.train.epochs = 20
    c.train.batch_size = 128
    c.train.schedule = "cosine"
    c.train.warmup_epochs = 1.0
    c.sweep.seeds = 4
    c.sweep.space = {
        "train": {
            "lr": space.choice([1e-3, 3e-3, 1e-2]),
            "weight_decay": space.choice([1e-4, 1e-2]),
        }
    }
    return c
