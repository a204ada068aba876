"""Attention + mixture-of-experts regressor on the grouped task (jaxexp/examples/moe.py).

A random sweep of 8 configurations x 2 seeds over the four traced dropout rates
and the curriculum (when the hard groups join, how fast their weight grows):
every member shares one compiled program. The selection metric is the val
log2-MSE (``mse``); groups.csv / group_history.csv hold it per group.

    jaxexp sweep --config=configs/moe.py --workdir=/tmp/moe_run
"""

from jaxexp import space
from jaxexp.config import default_config


def get_config():
    c = default_config(workload="jaxexp.examples.moe")
    c.name = "moe"
    c.metric = "mse"
    c.goal = "min"
    c.task.n_train = 2048
    c.task.n_val = 512
    c.d_model = 16
    c.n_experts = 4
    c.train.epochs = 30
    c.train.batch_size = 128
    c.train.lr = 1e-2
    c.train.schedule = "cosine"
    c.train.warmup_epochs = 1.0
    c.engine.segment_epochs = 5
    c.sweep.seeds = 2
    c.sweep.method = "random"
    c.sweep.num_samples = 8
    # continuous rates: random draws never repeat a configuration (repeated labels break groups.png)
    c.sweep.space = {
        "attn_dropout": space.uniform(0.0, 0.2),
        "expert_dropout": space.uniform(0.0, 0.3),
        "residual_dropout": space.uniform(0.0, 0.2),
        "main_dropout": space.uniform(0.0, 0.2),
        "train": {
            "curriculum_hard_epoch": space.choice([0, 4]),
            "hard_weight_slope": space.choice([0.0, 0.25]),
        },
    }
    return c
