"""Attention + mixture-of-experts regressor on the built-in grouped task (log2 targets, 12 groups).

Each row of the grouped task (``jaxexp.tasks.synthetic.grouped``) holds
``task.n_features`` Gaussian features and a one-hot block of its group. The
Gaussian features are split into ``feature_tokens`` chunks, each embedded by its
own linear map into a ``d_model`` token, and the group block becomes one more
token. One pre-LayerNorm transformer block follows: multi-head self-attention,
then a soft-routed mixture of ``n_experts`` small MLP experts (every expert runs
on every token and a softmax gate mixes them, so all shapes are static), each
with a residual connection; the tokens are mean-pooled into a linear head that
also sees the raw inputs (a linear shortcut: it picks up the groups' log2
centres, 1..19, within the first epochs).

Four dropout rates are traced (one compiled program serves any mix of them),
each with its own seed folded from the step's rng: ``attn_dropout`` (on the
attention weights), ``expert_dropout`` (on the experts' hidden units),
``residual_dropout`` (on both residual branches, a mask each) and ``main_dropout`` (on the
pooled vector before the head). The loss is the curriculum-weighted MSE
(``jaxexp.core.curriculum``) plus ``balance_weight`` times a gate load-balance term
(1 when the gate uses every expert equally, reported as ``train_balance``).
The targets are log2 values, which ``standardize`` only centres, so ``mse`` is
the log2-MSE; ``evaluate`` also reports it per group.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

import jaxexp
from jaxexp.core import curriculum, hashing
from jaxexp.tasks import load_task

NAME = "moe"
METRIC = ("mse", "min")

RATES = ("attn_dropout", "expert_dropout", "residual_dropout", "main_dropout")


def _rate(v) -> str | None:
    return None if 0.0 <= v < 1.0 else "must be in [0, 1)"


def _positive(v) -> str | None:
    return None if isinstance(v, int) and not isinstance(v, bool) and v > 0 else "must be a positive integer"


_DATA = dict(arch=False)
HPARAMS = {
    "task.seed": jaxexp.static(0, 0, 2**32 - 1, doc="data seed (the data are shared by all members)", **_DATA),
    "task.n_train": jaxexp.static(2048, 1, **_DATA),
    "task.n_val": jaxexp.static(512, 1, **_DATA),
    "task.n_features": jaxexp.static(
        16, 1, doc="Gaussian features (the 12 one-hot group columns come on top)", **_DATA
    ),
    "task.noise": jaxexp.static(0.1, 0.0, doc="noise std of the easiest group, log2 units", **_DATA),
    "d_model": jaxexp.static(16, check=_positive, doc="token width"),
    "n_heads": jaxexp.static(2, check=_positive, doc="attention heads (must divide d_model)"),
    "n_experts": jaxexp.static(4, check=_positive, doc="experts of the mixture-of-experts feed-forward"),
    "expert_hidden": jaxexp.static(32, check=_positive, doc="hidden width of each expert"),
    "feature_tokens": jaxexp.static(4, check=_positive, doc="tokens the Gaussian features are split into"),
    "attn_dropout": jaxexp.traced(0.0, check=_rate, skippable=True, doc="dropout on the attention weights"),
    "expert_dropout": jaxexp.traced(0.0, check=_rate, skippable=True, doc="dropout on the experts' hidden units"),
    "residual_dropout": jaxexp.traced(
        0.0, check=_rate, skippable=True, doc="dropout on the attention and expert residual branches"
    ),
    "main_dropout": jaxexp.traced(0.0, check=_rate, skippable=True, doc="dropout on the pooled vector before the head"),
    "balance_weight": jaxexp.traced(0.01, 0.0, doc="weight of the gate load-balance loss (1 = uniform use)"),
    **curriculum.HPARAMS,
}


def check(cfg) -> None:
    if cfg.d_model % cfg.n_heads:
        raise jaxexp.ConfigError(f"n_heads: must divide d_model={cfg.d_model} (got {cfg.n_heads})")
    if cfg.feature_tokens > cfg.task.n_features:
        raise jaxexp.ConfigError(
            f"feature_tokens: at most task.n_features={cfg.task.n_features} (got {cfg.feature_tokens})"
        )


def data(cfg) -> jaxexp.Dataset:
    task_cfg = ml_collections.ConfigDict(
        {
            "name": "grouped",
            "seed": cfg.task.seed,
            "n_train": cfg.task.n_train,
            "n_val": cfg.task.n_val,
            "n_features": cfg.task.n_features,
            "noise": cfg.task.noise,
            "standardize": True,  # features z-scored; the log2 targets only centred (task.info["target_units"])
        }
    )
    task = load_task(task_cfg)
    g_train, g_val = task.groups
    levels = np.asarray(task.group_levels, np.int32)

    def split(x, y, g):
        return {"x": x, "y": y[:, 0].astype(np.float32), "group": g, "level": levels[g]}

    info = {**task.info, "task": task.name, "n_features": int(cfg.task.n_features)}
    return jaxexp.Dataset(
        split(task.x_train, task.y_train, g_train), split(task.x_val, task.y_val, g_val), task.group_names, info
    )


class MoERegressor(nn.Module):
    """Tokens -> self-attention -> soft mixture of experts -> mean pool -> scalar.

    ``__call__(x, rates=None, seed=None)`` returns (predictions [n], balance):
    ``rates`` maps the names of ``RATES`` to (traced) dropout rates; ``seed``
    None (evaluation) applies no dropout. ``use``: the rates whose dropout is
    built into the program (a bucket where a rate is 0 for every member skips it).
    Its parameters come from ``init_params`` (``model`` wires that up).
    """

    n_features: int
    feature_tokens: int = 4
    d_model: int = 16
    n_heads: int = 2
    n_experts: int = 4
    expert_hidden: int = 32
    use: tuple[str, ...] = RATES

    def _drop(self, x, name, rates, seed, salt=0):
        if seed is None or rates is None or name not in self.use:
            return x
        return jaxexp.dropout(x, rates[name], jaxexp.fold(jaxexp.fold(seed, name), salt))

    @nn.compact
    def __call__(self, x, rates=None, seed=None):
        d, n, e = self.d_model, x.shape[0], self.n_experts
        dh = d // self.n_heads
        zeros = nn.initializers.zeros
        # tokens: feature chunks (zero-padded to equal size), each with its own embedding, and the group block
        feats, group_block = x[:, : self.n_features], x[:, self.n_features :]
        size = -(-self.n_features // self.feature_tokens)
        feats = jnp.pad(feats, ((0, 0), (0, size * self.feature_tokens - self.n_features)))
        w_tok = self.param("token_kernel", zeros, (self.feature_tokens, size, d))
        b_tok = self.param("token_bias", zeros, (self.feature_tokens, d))
        tokens = jnp.einsum("nts,tsd->ntd", feats.reshape(n, self.feature_tokens, size), w_tok) + b_tok
        group_tok = nn.Dense(d, kernel_init=zeros, name="group_embed")(group_block)[:, None, :]
        h = jnp.concatenate([tokens, group_tok], axis=1)  # [n, T, d]

        # self-attention (pre-LN), dropout on the attention weights and on the residual branch
        qkv = nn.DenseGeneral((3, self.n_heads, dh), kernel_init=zeros, use_bias=False, name="qkv")(
            nn.LayerNorm(use_bias=False, name="ln_attn")(h)
        )  # [n, T, 3, H, dh]
        q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
        w = jax.nn.softmax(jnp.einsum("nqhd,nkhd->nhqk", q, k) / np.sqrt(dh), axis=-1)
        w = self._drop(w, "attn_dropout", rates, seed)
        o = jnp.einsum("nhqk,nkhd->nqhd", w, v).reshape(n, -1, d)
        o = nn.Dense(d, kernel_init=zeros, name="attn_out")(o)
        h = h + self._drop(o, "residual_dropout", rates, seed, salt=1)

        # soft-routed mixture of experts (pre-LN): every expert on every token, mixed by the gate
        m = nn.LayerNorm(use_bias=False, name="ln_moe")(h)
        gate = jax.nn.softmax(nn.Dense(e, kernel_init=zeros, name="gate")(m), axis=-1)  # [n, T, E]
        w1 = self.param("expert_w1", zeros, (e, d, self.expert_hidden))
        b1 = self.param("expert_b1", zeros, (e, self.expert_hidden))
        w2 = self.param("expert_w2", zeros, (e, self.expert_hidden, d))
        b2 = self.param("expert_b2", zeros, (e, d))
        z = nn.gelu(jnp.einsum("ntd,edh->nteh", m, w1) + b1)
        z = self._drop(z, "expert_dropout", rates, seed)
        y = jnp.sum((jnp.einsum("nteh,ehd->nted", z, w2) + b2) * gate[..., None], axis=2)
        h = h + self._drop(y, "residual_dropout", rates, seed, salt=2)

        pooled = nn.LayerNorm(use_bias=False, name="ln_out")(h).mean(axis=1)
        pooled = self._drop(pooled, "main_dropout", rates, seed)
        # the head also sees the raw inputs: a linear shortcut that learns the groups' log2 centres quickly
        pred = nn.Dense(1, kernel_init=zeros, name="head")(jnp.concatenate([pooled, x], axis=-1))[:, 0]
        # load balance: E * sum_e (mean gate_e)^2, 1 when the experts are used equally
        importance = gate.reshape(-1, e).mean(axis=0)
        return pred, e * jnp.sum(importance**2)


def init_params(module: nn.Module, key, x) -> dict:
    """Parameters of ``module`` for inputs like ``x``: weights uniform with variance 1 / fan-in
    (expert weights: per expert), biases 0, LayerNorm scales 1.

    The draws come from one counter-based hash (``jaxexp.core.hashing``) seeded by ``key``:
    flax's per-parameter ``jax.random`` initialisers (threefry, erf_inv) made the vmapped
    init program take ~5x longer to compile on CPU than the whole training step.
    """
    shapes = jax.eval_shape(lambda: module.init(jax.random.key(0), x)["params"])
    seed = jax.random.key_data(key).reshape(-1)
    seed = hashing.fold(seed[0], seed[-1])
    flat, treedef = jax.tree_util.tree_flatten_with_path(shapes)
    leaves = []
    for i, (path, leaf) in enumerate(flat):
        name = path[-1].key
        if name == "scale":
            leaves.append(jnp.ones(leaf.shape, leaf.dtype))
        elif "bias" in name or "b1" in name or "b2" in name:
            leaves.append(jnp.zeros(leaf.shape, leaf.dtype))
        else:
            fan_in = leaf.shape[-2] if name.startswith(("expert", "token")) else int(np.prod(leaf.shape[:-1]))
            if name == "kernel" and leaf.ndim > 2:  # DenseGeneral kernels [in, out...]
                fan_in = leaf.shape[0]
            u = hashing.uniform(hashing.fold(seed, i), leaf.shape)
            leaves.append(((2.0 * u - 1.0) * np.sqrt(3.0 / fan_in)).astype(leaf.dtype))
    return jax.tree_util.tree_unflatten(treedef, leaves)


def model(cfg, data: jaxexp.Dataset):
    off = set(cfg.get("off", ()))
    module = MoERegressor(
        n_features=int(data.info["n_features"]),
        feature_tokens=int(cfg.feature_tokens),
        d_model=int(cfg.d_model),
        n_heads=int(cfg.n_heads),
        n_experts=int(cfg.n_experts),
        expert_hidden=int(cfg.expert_hidden),
        use=tuple(r for r in RATES if r not in off),
    )
    return jaxexp.Model(
        init=lambda key, batch: init_params(module, key, batch["x"]),
        apply=lambda params, *a, **k: module.apply({"params": params}, *a, **k),
    )


def loss(model, params, batch, hp, rng):
    rates = {r: hp[r] for r in RATES}
    pred, balance = model.apply(params, batch["x"], rates, rng)
    w = curriculum.row_weights(hp, batch["level"], batch["group"])
    # curriculum: weighted mean over the batch (0 when every weight is 0)
    mse = jnp.sum(w * (pred - batch["y"]) ** 2) / jnp.maximum(jnp.sum(w), 1e-12)
    return mse + hp["balance_weight"] * balance, {"mse": mse, "balance": balance}


def evaluate(model, params, val, hp) -> dict:
    """Val log2-MSE and MAE, overall and per group ([groups])."""
    pred, _ = model.apply(params, val["x"])
    err = pred - val["y"]
    rows = {"mse": err**2, "mae": jnp.abs(err)}
    n_groups = hp["train.group_multipliers"].shape[-1]  # one multiplier per group: a static length
    count = jax.ops.segment_sum(jnp.ones_like(err), val["group"], n_groups)
    groups = {}
    for k, v in rows.items():
        per_group = jax.ops.segment_sum(v, val["group"], n_groups) / jnp.maximum(count, 1.0)
        groups[k] = jnp.where(count > 0, per_group, jnp.nan)
    return {**{k: v.mean() for k, v in rows.items()}, "groups": groups}


def predict(model, params, split, hp):
    del hp
    return split["y"], model.apply(params, split["x"])[0]
