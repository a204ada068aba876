"""A mutation tree on the built-in regression task: 4 nodes per generation, 3 generations.

    jaxexp sweep --config=configs/mutation_tree.py --workdir=/tmp/tree
    # then steer it: more generations from chosen parents, with a hypothesis
    jaxexp sweep --config=configs/mutation_tree.py --workdir=/tmp/tree --config.sweep.generations=4 \
        --config.sweep.parent_ids='(5,)' --config.sweep.hypothesis='a lower lr lets dropout help'
    # or plan the next batch slot by slot (README "Mutation trees"), then record what each node showed
    jaxexp sweep --config=configs/mutation_tree.py --workdir=/tmp/tree --config.sweep.generations=5 \
        --config.sweep.plan=plan.yaml
    jaxexp tree annotate --workdir=/tmp/tree --node=9 --observation='...' --verdict=supported
"""

from jaxexp import space
from jaxexp.config import default_config


def get_config():
    c = default_config()
    c.name = "mutation_tree"
    c.metric = "val_mse"
    c.task.name = "regression"
    c.task.n_train = 1024
    c.task.n_val = 256
    c.model.hidden = (32,)
    c.train.epochs = 8
    c.train.batch_size = 64
    c.train.lr = 3e-3
    c.train.schedule = "cosine"
    c.sweep.seeds = 2
    c.sweep.strategy = "mutation"
    c.sweep.generations = 3
    c.sweep.slots = 4
    c.sweep.parent_pool = 2
    c.sweep.plan = ""  # a plan .yaml for the next batch: per slot parent, mutation, hypothesis, target
    # the parameters that may mutate, and their ranges
    c.sweep.space = {
        "train": {"lr": space.log_uniform(1e-4, 3e-2), "weight_decay": space.log_uniform(1e-5, 1e-1)},
        "model": {"dropout": space.q_uniform(0.0, 0.5, 0.05)},
    }
    return c
