"""Three training recipes x 5 seeds on the grouped task, in one command:

  jaxexp sweep --config=configs/recipes.py --workdir=workdirs/recipes

"run2" (the earlier recipe), "run3" (the baseline the others are compared
with) and "run4" (more regularisation, shorter patience, ReduceLROnPlateau,
shorter warm-restart periods, earlier curriculum phases and a growing
hard-group weight min(5.0, 2.0 + (epoch - 60) * 0.08) with 1.3x / 1.1x on
the two hardest groups). Every difference between the recipes is a traced
value, so all 15 members share one compiled program.
"""

from jaxexp.config import default_config


def get_config():
    c = default_config()
    c.name = "recipes"
    c.metric = "val_mse"  # on the grouped task: the log2-MSE
    c.task.name = "grouped"
    c.task.n_train = 2048
    c.task.n_val = 1024
    c.model.hidden = (64, 64)
    c.train.epochs = 200
    c.train.batch_size = 128
    c.train.lr = 2e-3
    c.train.schedule = "cosine_restarts"
    c.train.min_lr_ratio = 0.05
    c.sweep.seeds = 5
    c.sweep.baseline = "run3"
    c.engine.segment_epochs = 10
    c.sweep.recipes = {
        "run2": {
            "model": {"dropout": 0.2, "final_dropout": 0.2},
            "train": {
                "weight_decay": 5e-4,
                "early_stop_patience": 50,
                "monitor_start_epoch": 80,
                "restart_epochs": 40.0,
                "curriculum_medium_epoch": 40,
                "curriculum_hard_epoch": 80,
                "hard_weight_start": 2.0,
                "hard_weight_slope": 0.025,
                "hard_weight_cap": 3.0,
            },
        },
        "run3": {
            "model": {"dropout": 0.2, "final_dropout": 0.2},
            "train": {
                "weight_decay": 5e-4,
                "early_stop_patience": 50,
                "monitor_start_epoch": 60,
                "restart_epochs": 40.0,
                "curriculum_medium_epoch": 30,
                "curriculum_hard_epoch": 60,
                "hard_weight_start": 2.0,
                "hard_weight_slope": 0.05,
                "hard_weight_cap": 3.0,
            },
        },
        "run4": {
            "model": {"dropout": 0.25, "final_dropout": 0.3},
            "train": {
                "weight_decay": 1e-3,
                "early_stop_patience": 25,
                "monitor_start_epoch": 60,  # patience counts from the hard phase on
                "plateau_patience": 10,
                "plateau_factor": 0.5,
                "restart_epochs": 30.0,
                # phases easy 0-30, medium 31-60, hard 61+; hard weight min(5, 2 + (epoch - 60) * 0.08)
                "curriculum_medium_epoch": 31,
                "curriculum_hard_epoch": 61,
                "hard_weight_origin": 60,
                "hard_weight_start": 2.0,
                "hard_weight_slope": 0.08,
                "hard_weight_cap": 5.0,
                # groups k1_m1 .. k4_m3; the two hardest get 1.1x and 1.3x
                "group_multipliers": (1.0,) * 10 + (1.1, 1.3),
            },
        },
    }
    return c
