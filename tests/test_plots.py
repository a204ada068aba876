"""The PNG plots researchers read: one colour per configuration across
history.png and groups.png, train and validation loss on one axis, the
analysis's importance and lineage plots, the labelled ternary map. Checks the
figure objects (colours, artists, texts), never pixels."""

import dataclasses

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_hex
from matplotlib.text import Text

import jaxexp
from jaxexp.analysis import plots as aplots
from jaxexp.blending import plots as bplots
from jaxexp.run import plots
from jaxexp.run.colors import TAB10, config_colors
from jaxexp.search import space


@pytest.fixture(scope="module")
def res():
    """A tiny grouped sweep: 3 configurations x 2 seeds, 3 epochs (per-group metrics)."""
    from conftest import tiny_config

    c = tiny_config(train={"lr": space.choice([1e-2, 3e-2, 1e-1])})
    c.task.name = "grouped"
    c.sweep.seeds = 2
    c.engine.plots = False
    return jaxexp.sweep(c)


def _gids(fig, prefix):
    """{gid: artist} of the lines (or bars) whose gid starts with ``prefix``."""
    out = {}
    for ax in fig.axes:
        for art in [*ax.lines, *ax.patches]:
            if (art.get_gid() or "").startswith(prefix):
                out.setdefault(art.get_gid(), []).append(art)
    return out


@pytest.mark.slow
def test_history_and_groups_give_each_configuration_one_colour(res):
    colors = config_colors(res)
    ids = [int(c) for c in res.summary["config_id"]]
    assert [colors[c] for c in ids] == list(TAB10[: len(ids)])  # by rank: the best is tab10's first
    hist, grp = plots.history_figure(res), plots.groups_figure(res)
    for cid in ids:
        means = _gids(hist, f"mean:{cid}:")
        seeds = [a for v in _gids(hist, f"seed:{cid}:").values() for a in v]
        bars = _gids(grp, f"bars:{cid}")[f"bars:{cid}"]
        assert {to_hex(a.get_color()) for v in means.values() for a in v} == {colors[cid]}
        assert len(seeds) == 2 and {to_hex(a.get_color()) for a in seeds} == {colors[cid]}
        assert all(a.get_alpha() == pytest.approx(0.3) and a.get_linewidth() == pytest.approx(0.7) for a in seeds)
        assert {to_hex(b.get_facecolor()) for b in bars} == {colors[cid]} and len(bars) == res.groups["group"].nunique()
        (star,) = _gids(hist, f"best:{cid}")[f"best:{cid}"]
        mean = res.history.merge(res.members[["member", "config_id"]]).query("config_id == @cid")
        mean = mean.groupby("epoch")[res.metric].mean()
        assert star.get_xdata()[0] == mean.idxmin() and star.get_ydata()[0] == pytest.approx(mean.min())
    # the group table (report.md's too) lists the configurations best first
    assert list(plots.group_table(res).columns) == [res.label(c) for c in ids]


@pytest.mark.slow
def test_train_and_validation_loss_share_one_axis_when_they_are_one_quantity(res):
    assert res.metric == "val_mse" and plots.loss_partner(res) == "val_mse"  # val_mse equals val_loss here
    fig = plots.history_figure(res)
    assert len(fig.axes) == 1
    cols = {g.split(":")[2] for g in _gids(fig, "mean:")}
    assert cols == {"train_loss", "val_mse"}
    train = [a for g, v in _gids(fig, "mean:").items() if g.endswith(":train_loss") for a in v]
    assert {a.get_linestyle() for a in train} == {"--"}
    cfg = res.config.copy_and_resolve_references()
    cfg.metric = "val_mae"  # another quantity: its own panel, train_loss with val_loss
    other = dataclasses.replace(res, config=cfg)
    assert plots.loss_partner(other) == "val_loss"
    fig = plots.history_figure(other)
    assert len(fig.axes) == 2
    assert {g.split(":")[2] for g in _gids(fig, "mean:")} == {"train_loss", "val_loss", "val_mae"}
    assert len(_gids(fig, "best:")) == len(res.summary)


def _table(n=24, seed=0):
    rng = np.random.default_rng(seed)
    lr = np.exp(rng.uniform(np.log(1e-4), np.log(1e-1), n))
    depth = rng.integers(2, 7, n)
    act = rng.choice(["relu", "gelu", "tanh"], n)
    y = (np.log10(lr) + 2.5) ** 2 - 0.3 * depth + 0.2 * (act == "relu") + 0.3 * rng.normal(size=n)
    return pd.DataFrame({"lr": lr, "depth": depth, "act": act, "loss": y})


def test_analysis_writes_importance_and_labels_the_lineage(tmp_path):
    df = _table()
    df["node_id"] = range(len(df))
    df["parent_id"] = [np.nan, *[i // 2 for i in range(1, len(df))]]
    a = jaxexp.analyze(df, metric="loss", goal="min")
    written = aplots.write_all(a, str(tmp_path))
    assert {"importance.png", "parallel.png", "lineage.png"} <= set(written)
    assert all((tmp_path / name).stat().st_size > 0 for name in written)
    # parallel coordinates: each axis labelled in its own units (log range: low, geometric middle, high)
    d = next(d for d in a.dims if d.name == "lr")
    ticks = aplots._axis_ticks(d, a.configs["lr"], (df["lr"].min(), df["lr"].max()))
    assert [t for t, _ in ticks] == [0.0, 0.5, 1.0]
    assert float(ticks[1][1]) == pytest.approx(np.sqrt(df["lr"].min() * df["lr"].max()), rel=1e-2)
    # a lineage with generation, mutation and status columns (a mutation tree's lineage.csv)
    lin = pd.DataFrame(
        {
            "node_id": [0, 1, 2, 3, 4],
            "parent_id": [-1, 0, 0, 1, 1],
            "loss": [0.5, 0.4, 0.6, 0.3, np.nan],
            "generation": [0, 1, 2, 2, 2],
            "mutation": [
                "",
                "train.lr: 0.01 -> 0.02",
                "model.dropout: 0.1 -> 0",
                "train.lr: 0.02 -> 0.04",
                "x: 1 -> 2",
            ],
            "status": ["ok", "ok", "ok", "ok", "failed"],
        }
    )
    t = aplots.lineage_layout(dataclasses.replace(a, lineage=lin)).set_index("node_id")
    assert t["generation"].tolist() == [0, 1, 2, 2, 2]  # the column, not the depth (node 2's is 1)
    assert t.loc["1", "label"] == "#1 lr 0.01→0.02 · 0.4" and t.loc["0", "label"] == "#0 root · 0.5"
    assert t.loc["4", "failed"] and t.loc["4", "label"] == "#4 x 1→2 failed" and not t["failed"][:4].any()
    assert t.loc["3", "row"] < t.loc["4", "row"] and t.loc["2", "row"] < t.loc["3", "row"]  # children by parent
    aplots.lineage(dataclasses.replace(a, lineage=lin), str(tmp_path / "tree.png"))


def _simplex(n=40):
    w = np.array([(i, j, n - i - j) for i in range(n + 1) for j in range(n + 1 - i)], float) / n
    scores = (w[:, 0] - 0.5) ** 2 + (w[:, 2] - 0.3) ** 2
    return w, scores


@pytest.mark.parametrize("clustered", [False, True])
def test_ternary_has_ticks_and_labels_every_listed_weighting_without_overlap(clustered):
    w, scores = _simplex()
    if clustered:  # 18 weightings 0.01 apart: a zoomed panel, 15 names, the rest numbered with a key
        w_list = np.array(
            [(0.5 + 0.01 * (i % 6), 0.3 - 0.01 * (i % 6) - 0.01 * (i // 6), 0.2 + 0.01 * (i // 6)) for i in range(18)]
        )
    else:
        w_list = np.array([(0.6, 0.2, 0.2), (0.2, 0.6, 0.2), (0.2, 0.2, 0.6), (0.34, 0.33, 0.33)])
    labels = [f"w{i}" for i in range(len(w_list))]
    best = w[np.argmin(scores)]
    fig = bplots.ternary(
        ("a", "b", "c"), w, scores, "mae", scores < 0.01, scores == scores.min(), best, None, labels, w_list
    )
    main = fig.axes[0]
    ticks = [t.get_text() for t in main.texts]
    for v in ("0.2", "0.4", "0.6", "0.8"):
        assert ticks.count(v) == 3  # one per edge
    assert any("a weight" in s for s in ticks) and any("c weight" in s for s in ticks)
    axes = fig.axes[:2] if clustered else fig.axes[:1]
    ann = [t for ax in axes for t in ax.texts if hasattr(t, "xyann") and t.xy is not None and t.get_text()]
    ann = [t for t in ann if t.get_text() not in ("a", "b", "c")]  # the vertices' names
    shown = sorted(t.get_text() for t in ann)
    if clustered:
        assert len(fig.axes) == 3 and fig.axes[1].get_title() == "zoom on the listed weightings"
        named = sum(s.startswith("w") for s in shown)
        assert named <= bplots.MAX_NAMED and len(shown) == 18
        key = " ".join(t.get_text() for t in fig.texts)
        assert "16 w15" in key and "18 w17" in key
    else:
        assert shown == sorted(labels)
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    boxes = [Text.get_window_extent(t, r) for t in ann]
    assert not any(boxes[i].overlaps(boxes[j]) for i in range(len(boxes)) for j in range(i))
