"""The PyTorch MLP run of the baselines (torch_sweep.py, optuna_tpe.py): jaxexp's digits run, written plainly.

Network: 64 -> Linear(128) -> ReLU -> Dropout -> Linear(128) -> ReLU -> Dropout
-> Linear(10), i.e. jaxexp.core.models.MLP with ``model.hidden = (128, 128)`` (dropout
after every hidden layer, none on the inputs), with flax's initialisation
(``nn.Dense``: LeCun-normal kernels, a normal truncated at +-2 std, and zero
biases) instead of torch's default. Training: AdamW (decoupled weight decay,
betas 0.9/0.999, eps 1e-8, like optax.adamw), mean softmax cross-entropy,
batches of 64 in a fresh random order every epoch (the last partial batch
dropped: 22 steps of 1438 rows), the validation loss and accuracy after every
epoch; a run reports its best and final validation accuracy.
"""

from __future__ import annotations

import math
import time

import torch
from digits_data import B1, B2, BATCH_SIZE, EPS, HIDDEN, N_CLASSES
from torch import nn

# flax.linen.initializers.lecun_normal(): variance_scaling(1, "fan_in", "truncated_normal"),
# whose std is divided by the std of a unit normal truncated to [-2, 2].
_TRUNC_STD = 0.87962566103423978


def make_model(n_in: int, dropout: float) -> nn.Sequential:
    layers, width = [], n_in
    for h in HIDDEN:
        layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(dropout)]
        width = h
    model = nn.Sequential(*layers, nn.Linear(width, N_CLASSES))
    with torch.no_grad():
        for m in model:
            if isinstance(m, nn.Linear):
                std = math.sqrt(1.0 / m.in_features) / _TRUNC_STD
                nn.init.trunc_normal_(m.weight, std=std, a=-2 * std, b=2 * std)
                nn.init.zeros_(m.bias)
    return model


def tensors(data: dict) -> dict:
    return {k: torch.from_numpy(v) for k, v in data.items()}


def train_run(data: dict, lr: float, weight_decay: float, dropout: float, epochs: int, seed: int) -> dict:
    """One run; ``data``: tensors from ``tensors()``. Returns its metrics and per-epoch history."""
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    x_train, y_train, x_val, y_val = data["x_train"], data["y_train"], data["x_val"], data["y_val"]
    model = make_model(x_train.shape[1], dropout)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(B1, B2), eps=EPS, weight_decay=weight_decay)
    loss_fn = nn.CrossEntropyLoss()
    n, bs = x_train.shape[0], BATCH_SIZE
    steps = n // bs
    history, best_acc, best_epoch = [], -1.0, 0
    for epoch in range(1, epochs + 1):
        model.train()
        perm = torch.randperm(n)
        total = 0.0
        for i in range(steps):
            idx = perm[i * bs : (i + 1) * bs]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x_train[idx]), y_train[idx])
            loss.backward()
            opt.step()
            total += loss.item()
        model.eval()
        with torch.no_grad():
            out = model(x_val)
            val_loss = loss_fn(out, y_val).item()
            val_acc = (out.argmax(-1) == y_val).float().mean().item()
        history.append({"epoch": epoch, "train_loss": total / steps, "val_loss": val_loss, "val_accuracy": val_acc})
        if val_acc > best_acc:
            best_acc, best_epoch = val_acc, epoch
    return {
        "best_val_accuracy": best_acc,
        "best_epoch": best_epoch,
        "final_val_accuracy": history[-1]["val_accuracy"],
        "final_val_loss": history[-1]["val_loss"],
        "run_s": time.perf_counter() - t0,
        "history": history,
    }
