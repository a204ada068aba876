"""Digits (8x8) with a conditional encoder: a random search over CNN vs self-attention "context" encoders.

``depth`` and ``width`` are sampled only for CNN members (``when=``); the
context members keep the base values and share one bucket. Dropout before the
head, label smoothing and the learning rate are traced: one compile per
(encoder, depth, width) bucket.

    jaxexp sweep --config=configs/cnn_encoder.py --workdir=/tmp/cnn_run
"""

from jaxexp import space
from jaxexp.config import default_config


def get_config():
    c = default_config(workload="jaxexp.examples.cnn_encoder")
    c.name = "cnn_encoder"
    c.metric = "accuracy"
    c.goal = "max"
    c.train.epochs = 12
    c.train.batch_size = 64
    c.train.lr = 3e-3
    c.train.schedule = "cosine"
    c.train.warmup_epochs = 1.0
    c.engine.segment_epochs = 6
    c.sweep.method = "random"
    c.sweep.num_samples = 8
    c.sweep.seeds = 2
    c.sweep.space = {
        "encoder_type": space.choice(("cnn", "context"), probabilities=(0.75, 0.25)),
        "depth": space.choice((1, 2), when={"encoder_type": "cnn"}),
        "width": space.choice((8, 16), when={"encoder_type": "cnn"}),
        "dropout": space.uniform(0.0, 0.3),
        "label_smoothing": space.uniform(0.0, 0.2),
        "train": {"lr": space.log_uniform(1e-3, 1e-2)},
    }
    return c
