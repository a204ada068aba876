"""A synthetic problem that reproduces the hand-tuning story of issue #6.

Three models predict a whole-number target (days, counts): ``notemporal``,
``multi`` (the same model re-run: it differs from notemporal on 2% of the rows,
by ~0.05) and ``finetuned`` (worse alone, partly independent errors). The
pipeline submits the blend **rounded to whole numbers and clipped at 0**.

Two mechanisms together make distinct weightings score exactly the same:
moving weight between notemporal and multi changes the blend on 2% of the rows
by a few thousandths, and rounding to whole numbers absorbs such changes unless
a row sits on a rounding boundary. So 50/30/20, 52/28/20, 53/27/20 ... 56/24/20
all score MAE 2.98875, exactly, in float64.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

NAMES = ("notemporal", "multi", "finetuned")
# The hand-picked weightings of the seed write-up (notemporal/multi/finetuned, %).
WEIGHTS = (
    "champion=50/30/20,variant_b=52/28/20,variant_e=53/27/20,"
    "micro_a=54/26/20,micro_b=55/25/20,micro_c=56/24/20,micro_d=57/23/20,"
    "micro_e=53/26/21,micro_f=53/28/19,micro_g=52/27/21,micro_h=54/27/19,"
    "micro_i=52/26/22,micro_j=51/26/23,micro_k=50/26/24,micro_l=51/25/24,"
    "micro_m=54/25/21,micro_n=55/24/21,micro_o=53/25/22"
)
ROUND_TO = 1.0  # the blend is submitted as whole numbers
CLIP = "0:"  # ... and never negative
COMPARE = "champion:micro_o"


def demo_data(n: int = 4000, seed: int = 7) -> pd.DataFrame:
    """Columns target, notemporal, multi, finetuned (predictions to 2 decimals)."""
    rng = np.random.default_rng(seed)
    truth = rng.gamma(3.0, 5.0, n)
    target = np.maximum(0.0, np.round(truth + rng.laplace(0.0, 2.38, n)))
    shared = rng.laplace(0.0, 1.6, n)  # errors the models have in common
    notemporal = truth + shared + rng.normal(0.0, 1.0, n)
    multi = notemporal.copy()
    rerun = rng.random(n) < 0.02
    multi[rerun] += rng.normal(0.0, 0.05, int(rerun.sum()))
    finetuned = truth + 0.85 * shared + rng.normal(0.3, 2.0, n)
    preds = np.round(np.stack([notemporal, multi, finetuned], axis=1), 2)
    return pd.DataFrame({"target": target, **{name: preds[:, i] for i, name in enumerate(NAMES)}})
