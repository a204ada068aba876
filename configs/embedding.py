"""Hyperbolic embedding of a 121-node tree (jaxexp/examples/embedding.py): 24 weightings x 3 seeds.

A grid over the loss weights (hierarchy_weight x richness_weight) and the
curvature of the ball (0 = Euclidean), all traced: the 72 members share one
compiled program. In 2 dimensions the tree only fits in curved space
(curvature 4: held-out ancestor AUC ~0.97, Euclidean ~0.76). A richness weight
at or above the hierarchy weight makes the score peak early (epochs 1-20) and
then degrade while the spread term keeps pushing items out to the rim (up to
-0.056 by epoch 40): compare best_hierarchy with final_hierarchy
(``degradation``) in members.csv and summary.csv. ~40 s on a 2-core CPU.
"""

from jaxexp import default_config, space


def get_config():
    c = default_config(workload="jaxexp.examples.embedding")
    c.name = "embedding"
    c.metric, c.goal = "hierarchy", "max"
    c.dim = 2
    c.train.epochs = 40
    c.train.batch_size = 128
    c.train.lr = 3e-2
    c.train.weight_decay = 0.0
    c.engine.segment_epochs = 10
    c.sweep.method = "grid"
    c.sweep.seeds = 3
    c.sweep.space = {
        "hierarchy_weight": space.choice((1.0, 3.0)),
        "richness_weight": space.choice((0.0, 0.3, 1.0, 3.0)),
        "curvature": space.choice((0.0, 1.0, 4.0)),
    }
    return c
