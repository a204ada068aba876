"""Message passing on synthetic graphs: recover each node's net input drive from its activity.

A random search of 8 configurations x 2 seeds = 16 members (see jaxexp/examples/gnn.py):
SGD with momentum 0.9 and a learning rate drawn log-uniformly over 1e-2..3, so the
fastest ones blow up (above ~0.2 here; the engine marks them "diverged" in
members.csv and freezes their parameters while the others go on), plus the number
of message-passing rounds (1 or 2: two buckets, one compile each) and node dropout.
The rest reach a validation R2 of ~0.6-0.69 in 20 epochs (~1 min on 2 CPU cores);
``--config.hidden=64`` or more epochs go higher (a linear fit on lag-1 covariances: ~0.7).
Run: jaxexp sweep --config=configs/gnn.py --workdir=/tmp/gnn_run
"""

from jaxexp import space
from jaxexp.config import default_config


def get_config():
    c = default_config(workload="jaxexp.examples.gnn")
    c.name = "gnn"
    c.metric = "r2"
    c.goal = "max"
    c.graphs.n_train = 2048
    c.graphs.n_val = 512
    c.hidden = 32
    c.layers = 2
    c.train.optimizer = "sgd"
    c.train.b1 = 0.9  # SGD momentum
    c.train.weight_decay = 0.0
    c.train.epochs = 20
    c.train.batch_size = 64
    c.train.lr = 3e-2
    c.train.schedule = "cosine"
    c.engine.segment_epochs = 5
    c.sweep.method = "random"
    c.sweep.num_samples = 8
    c.sweep.seeds = 2
    c.sweep.space = {
        "train": {"lr": space.log_uniform(1e-2, 3.0)},
        "layers": space.choice((1, 2)),
        "dropout": space.uniform(0.0, 0.1),
    }
    return c
