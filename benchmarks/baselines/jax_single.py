#!/usr/bin/env python
"""Baseline of benchmarks/sweep_e2e.py workload C: ONE digits run in plain JAX,
the way a single run is written without jaxexp: a flax.linen MLP
(64-128-128-10, ``nn.Dropout`` after each hidden layer, default
initialisation), ``optax.adamw``, a ``jax.jit`` train step called from a Python
loop over the batches of each epoch (a fresh NumPy order every epoch, the last
partial batch dropped), a jitted evaluation after every epoch.

JAX as it comes (one CPU device, no persistent compilation cache). Same data
as jaxexp (digits_data.digits), the base config of benchmarks/configs/
digits_single.py (lr 1e-3, weight_decay 1e-4, dropout 0.1, 30 epochs of batch
64). Writes OUT/runs.csv, OUT/history.csv and OUT/summary.json.

    python benchmarks/baselines/jax_single.py --out /tmp/jax_single
"""

from __future__ import annotations

import argparse
import sys
import time

T_START = time.perf_counter()

import digits_data  # noqa: E402
import flax.linen as nn  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402


class MLP(nn.Module):
    hidden: tuple
    n_out: int
    rate: float

    @nn.compact
    def __call__(self, x, train: bool):
        for width in self.hidden:
            x = nn.relu(nn.Dense(width)(x))
            x = nn.Dropout(self.rate, deterministic=not train)(x)
        return nn.Dense(self.n_out)(x)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--epochs", type=int, default=digits_data.EPOCHS)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lr", type=float, default=digits_data.BASE["lr"])
    p.add_argument("--weight-decay", type=float, default=digits_data.BASE["weight_decay"])
    p.add_argument("--dropout", type=float, default=digits_data.BASE["dropout"])
    args = p.parse_args(argv)
    t_import = time.perf_counter() - T_START
    arr = digits_data.digits()
    x_train, y_train = jnp.asarray(arr["x_train"]), jnp.asarray(arr["y_train"].astype(np.int32))
    x_val, y_val = jnp.asarray(arr["x_val"]), jnp.asarray(arr["y_val"].astype(np.int32))
    t_data = time.perf_counter() - T_START - t_import

    model = MLP(digits_data.HIDDEN, digits_data.N_CLASSES, args.dropout)
    tx = optax.adamw(args.lr, b1=digits_data.B1, b2=digits_data.B2, eps=digits_data.EPS, weight_decay=args.weight_decay)
    key = jax.random.key(args.seed)
    k_init, k_drop = jax.random.split(key)
    params = model.init(k_init, x_train[:1], train=False)["params"]
    opt_state = tx.init(params)

    @jax.jit
    def train_step(params, opt_state, xb, yb, rng):
        def objective(p):
            logits = model.apply({"params": p}, xb, train=True, rngs={"dropout": rng})
            return optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean()

        loss, grads = jax.value_and_grad(objective)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    @jax.jit
    def evaluate(params):
        logits = model.apply({"params": params}, x_val, train=False)
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, y_val).mean()
        return loss, (logits.argmax(-1) == y_val).mean()

    rng = np.random.default_rng(args.seed)
    n, bs = x_train.shape[0], digits_data.BATCH_SIZE
    steps = n // bs
    history, best_acc, best_epoch, step = [], -1.0, 0, 0
    t_train = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        perm = rng.permutation(n)
        losses = []
        for i in range(steps):
            idx = perm[i * bs : (i + 1) * bs]
            params, opt_state, loss = train_step(
                params, opt_state, x_train[idx], y_train[idx], jax.random.fold_in(k_drop, step)
            )
            losses.append(loss)
            step += 1
        val_loss, val_acc = (float(v) for v in evaluate(params))
        history.append(
            {
                "epoch": epoch,
                "train_loss": float(jnp.mean(jnp.stack(losses))),
                "val_loss": val_loss,
                "val_accuracy": val_acc,
            }
        )
        if val_acc > best_acc:
            best_acc, best_epoch = val_acc, epoch
    train_s = time.perf_counter() - t_train
    row = {
        "run": 0,
        "seed": args.seed,
        "lr": args.lr,
        "weight_decay": args.weight_decay,
        "dropout": args.dropout,
        "best_val_accuracy": best_acc,
        "best_epoch": best_epoch,
        "final_val_accuracy": history[-1]["val_accuracy"],
        "final_val_loss": history[-1]["val_loss"],
        "run_s": train_s,
    }
    summary = {
        "runs": 1,
        "epochs": args.epochs,
        "jax": jax.__version__,
        "devices": jax.local_device_count(),
        "import_s": t_import,
        "data_s": t_data,
        "train_s": train_s,  # the first epoch includes both compiles
        **digits_data.run_stats([row]),
    }
    t = time.perf_counter()
    digits_data.write_results(args.out, [row], [{"run": 0, **h} for h in history], summary)
    summary["write_s"] = time.perf_counter() - t
    summary["total_in_process_s"] = time.perf_counter() - T_START
    digits_data.write_results(args.out, [], [], summary)
    print(f"wrote {args.out}/runs.csv: 1 run in {train_s:.2f}s; best val_accuracy {best_acc:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
