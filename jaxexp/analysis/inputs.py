"""Reading what ``jaxexp analyze`` analyses: a jaxexp workdir (finished or
mid-sweep), or a table of trials from elsewhere (Optuna ``trials_dataframe()``,
a W&B runs export, any CSV with one row per trial), and space files.

Every problem is a one-line ``ConfigError`` naming the flag and the fix.
"""

from __future__ import annotations

import json
import os
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from jaxexp.analysis import columns as colmod
from jaxexp.analysis import core
from jaxexp.errors import ConfigError


class Source(NamedTuple):
    """Arguments of ``analysis.analyze`` read from a file or workdir."""

    table: pd.DataFrame
    metric: str
    goal: str
    space: Any  # declared space (mapping) or None
    params: list | None
    method: str | None
    num_samples: int
    space_metric: str
    source: str
    notes: list
    default_out: str
    ids: list = []  # id columns named by the user or the table's format
    seeds: list = []  # seed columns named by the user or the table's format


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}"[:300]


# ----------------------------------------------------------------------------- space files


def read_space_file(path: str) -> dict:
    """A W&B-style space YAML file as a mapping (``parameters`` required)."""
    import yaml

    if not os.path.isfile(path):
        raise ConfigError(f"--space: {path} not found; pass a YAML space file")
    try:
        with open(path) as f:
            data = yaml.safe_load(f)
    except yaml.YAMLError as e:
        raise ConfigError(f"--space: {path} is not valid YAML ({_first_line(e)})") from None
    if not isinstance(data, dict) or not isinstance(data.get("parameters"), dict):
        raise ConfigError(f"--space: {path} needs a 'parameters:' mapping (W&B sweep format)")
    return data


def _space_metric(space: dict | None) -> tuple[str | None, str | None]:
    m = (space or {}).get("metric")
    if isinstance(m, dict):
        return m.get("name"), m.get("goal")
    return None, None


# ----------------------------------------------------------------------------- tables


def normalize_columns(df: pd.DataFrame) -> tuple[pd.DataFrame, str, list | None, list[str]]:
    """(table with plain names, kind "optuna"|"wandb"|"ray"|"wandb-ui"|"csv",
    parameter columns when the format names them (else None), notes).

    Optuna: ``params_<name>`` -> name (the parameters), ``state`` -> status
    (COMPLETE kept), ``user_attrs_<name>`` -> name where free. W&B (API export):
    ``config.x`` or ``config/x`` -> x (the parameters), ``summary.x``/``summary/x``
    -> x, ``State`` -> status (finished kept). Ray Tune: ``config/x`` -> x (the
    parameters). A W&B UI export (Name, State, Created/Runtime/Sweep beside plain
    parameter and metric columns) and any other CSV: parameters guessed
    (``columns.guess``).
    """
    cols = list(df.columns)
    notes: list[str] = []
    rename: dict[str, str] = {}
    params = None
    if any(c.startswith("params_") for c in cols):
        kind = "optuna"
        params = [c[len("params_") :] for c in cols if c.startswith("params_")]
        rename.update({c: c[len("params_") :] for c in cols if c.startswith("params_")})
        rename.update({c: c[len("user_attrs_") :] for c in cols if c.startswith("user_attrs_")})
    elif any(c.startswith(("config.", "config/")) for c in cols):
        ray = {"trial_id", "training_iteration", "time_total_s", "experiment_tag"}
        kind = "ray" if ray & set(cols) else "wandb"
        params = [c[len("config.") :] for c in cols if c.startswith(("config.", "config/"))]
        rename.update({c: c[len("config.") :] for c in cols if c.startswith(("config.", "config/"))})
        rename.update({c: c[len("summary.") :] for c in cols if c.startswith(("summary.", "summary/"))})
    else:
        low = {colmod.norm(c) for c in cols}
        kind = "wandb-ui" if {"name", "state"} <= low and low & {"created", "runtime", "sweep"} else "csv"
    if "status" not in cols:
        state = next((c for c in cols if c.lower() == "state"), None)
        if state:
            rename[state] = "status"
    taken = set(cols) - set(rename)
    final = {}
    for old, new in rename.items():
        if new in taken or new in final.values():  # a clash: keep the original name
            if params is not None and new in params:
                params[params.index(new)] = old
            continue
        final[old] = new
    return df.rename(columns=final), kind, params, notes


def check_metric(df: pd.DataFrame, metric: str, where: str) -> None:
    if metric not in df.columns:
        numeric = [c for c in df.columns if pd.api.types.is_numeric_dtype(df[c]) and c not in ("number", "seed")]
        raise ConfigError(
            f"--metric: no column {metric!r} in {where}; numeric columns: {', '.join(map(str, numeric[:12])) or 'none'}"
        )
    col = df[metric]
    num = pd.to_numeric(col, errors="coerce")
    bad = col.notna() & num.isna()
    if bad.any():
        raise ConfigError(
            f"--metric: column {metric!r} of {where} is not numeric (e.g. {col[bad].iloc[0]!r}); pick a numeric column"
        )


def load_table(
    path: str, metric: str | None, goal: str | None, space=None, params=None, ids=None, seeds=None
) -> Source:
    """A CSV of trials (Optuna, W&B, Ray Tune or plain) with an optional space file.
    params/ids/seeds: columns named by the user (``--params``/``--id``/``--seed``,
    "a,b" or a list); without --params, the format's parameters (Optuna's
    ``params_*``, W&B's/Ray's ``config.*``/``config/*``, seed and id names moved
    out) or, for a plain CSV, those ``columns.guess`` finds in ``analyze``."""
    if not os.path.isfile(path):
        raise ConfigError(f"--table: {path} not found; pass a CSV file with one row per trial")
    try:
        raw = pd.read_csv(path)
    except Exception as e:  # noqa: BLE001 - pandas raises many kinds
        raise ConfigError(f"--table: cannot read {path} as CSV ({_first_line(e)})") from None
    declared = read_space_file(space) if isinstance(space, str) else space
    m_name, m_goal = _space_metric(declared if isinstance(declared, dict) else None)
    metric = metric or m_name
    if not metric:
        raise ConfigError("--metric: missing; pass --metric=COLUMN (Optuna's trial value is 'value')")
    goal = goal or m_goal
    if not goal:
        raise ConfigError("--goal: missing; pass --goal=min or --goal=max")
    goal = core.normalize_goal(goal)
    df, kind, named, notes = normalize_columns(raw)
    check_metric(df, metric, path)
    ids = colmod.names(ids, "--id", df, metric)
    seeds = colmod.names(seeds, "--seed", df, metric)
    if params is not None:
        params = colmod.names(params, "--params", df, metric)
    elif named is not None and declared is None:
        roles = colmod.split_named([p for p in named if p not in ids and p not in seeds])
        moved = [*roles.ids, *roles.seeds]
        if moved:
            notes.append(
                f"{', '.join(moved)}: named as parameters by the table but read as "
                f"{'seed' if roles.seeds else 'id'} column(s), not parameters (pass --params=... to analyse them)"
            )
        params, ids, seeds = roles.params, [*ids, *roles.ids], [*seeds, *roles.seeds]
    label = {
        "optuna": "an Optuna trials_dataframe() export",
        "wandb": "a W&B runs export",
        "ray": "a Ray Tune results table",
        "wandb-ui": "a W&B runs export (UI CSV)",
        "csv": "a CSV table",
    }
    stem = os.path.splitext(os.path.abspath(path))[0]
    return Source(
        table=df,
        metric=metric,
        goal=goal,
        space=declared,
        params=params,
        method=(declared or {}).get("method") if isinstance(declared, dict) else None,
        num_samples=int((declared or {}).get("num_samples", 0) or 0) if isinstance(declared, dict) else 0,
        space_metric=metric,
        source=f"{path} ({label[kind]})",
        notes=notes,
        default_out=f"{stem}_analysis",
        ids=ids,
        seeds=seeds,
    )


def parse_limits(text) -> dict:
    """``--limits=lr=:1,dropout=0:0.9`` as {name: (low, high)} (None: that side open);
    a mapping passes through."""
    if not text:
        return {}
    if isinstance(text, dict):
        return {k: tuple(v) for k, v in text.items()}
    out = {}
    for part in str(text).split(","):
        name, eq, bounds = part.strip().rpartition("=")
        lo, colon, hi = bounds.partition(":")
        try:
            pair = tuple(float(v) if v.strip() else None for v in (lo, hi))
        except ValueError:
            pair = None
        if not eq or not name or not colon or pair is None or pair == (None, None):
            raise ConfigError(f"--limits: {part.strip()!r} is not NAME=LOW:HIGH; e.g. --limits=lr=:1,dropout=0:0.9")
        if None not in pair and pair[0] >= pair[1]:
            raise ConfigError(f"--limits: {name}: low {pair[0]:g} must be below high {pair[1]:g}")
        out[name] = pair
    return out


# ----------------------------------------------------------------------------- workdirs


def _config_from(d: dict, where: str):
    from jaxexp import config as cfgmod

    try:
        return cfgmod.from_dict(d)
    except ConfigError as e:
        raise ConfigError(f"--workdir: {where} does not load as a jaxexp config ({e})") from None


def load_workdir(workdir: str) -> Source:
    """A jaxexp workdir: members.csv + config.json, or (mid-sweep, before
    members.csv is written) the latest checkpoint's history."""
    if not os.path.isdir(workdir):
        raise ConfigError(f"--workdir: {workdir} is not a directory; pass the workdir of a jaxexp sweep")
    members = os.path.join(workdir, "members.csv")
    notes: list[str] = []
    if not os.path.isfile(members) and os.path.isfile(os.path.join(workdir, "lineage.csv")):
        return _mutation_tree(workdir)
    if os.path.isfile(members):
        cfg_path = os.path.join(workdir, "config.json")
        if not os.path.isfile(cfg_path):
            raise ConfigError(
                f"--workdir: {workdir} has members.csv but no config.json; "
                f"use --table={members} --metric=... --goal=..."
            )
        with open(cfg_path) as f:
            cfg = _config_from(json.load(f), cfg_path)
        try:
            table = pd.read_csv(members)
        except Exception as e:  # noqa: BLE001
            raise ConfigError(f"--workdir: cannot read {members} ({_first_line(e)})") from None
        source = f"{workdir} (members.csv)"
    else:
        cfg, table, note = _from_checkpoint(workdir)
        notes.append(note)
        source = f"{workdir} (mid-sweep: latest checkpoint)"
    metric = f"best_{cfg.metric}"
    check_metric(table, metric, source)
    recipe = ["recipe"] if "recipe" in table.columns else []
    return Source(
        table=table,
        metric=metric,
        goal=cfg.goal,
        space=cfg.sweep.space.to_dict(),
        params=recipe,
        method=cfg.sweep.method,
        num_samples=int(cfg.sweep.num_samples),
        space_metric=cfg.metric,
        source=source,
        notes=notes,
        default_out=os.path.join(workdir, "analysis"),
    )


def _mutation_tree(workdir: str) -> Source:
    """A mutation tree's workdir (``sweep.strategy=mutation``): lineage.csv, one
    row per node (a configuration; its metric is already the mean over seeds),
    with the space and metric of its generations' config.json."""
    import glob

    configs = sorted(glob.glob(os.path.join(workdir, "gen_*", "config.json")))
    if not configs:
        raise ConfigError(
            f"--workdir: {workdir} has lineage.csv but no gen_*/config.json; is the tree's first generation done?"
        )
    with open(configs[0]) as f:
        cfg = _config_from(json.load(f), configs[0])
    path = os.path.join(workdir, "lineage.csv")
    try:
        table = pd.read_csv(path)
    except Exception as e:  # noqa: BLE001
        raise ConfigError(f"--workdir: cannot read {path} ({_first_line(e)})") from None
    check_metric(table, "metric", path)
    table = table.rename(columns={"node": "node_id", "parent": "parent_id"})
    table["config_id"] = table["node_id"]  # one node = one configuration
    note = (
        f"mutation tree: lineage.csv holds one row per node, whose metric is the mean over its seeds of each "
        f"member's best {cfg.metric}; n = nodes"
    )
    return Source(
        table=table,
        metric="metric",
        goal=cfg.goal,
        space=cfg.sweep.space.to_dict(),
        params=[],
        method="random",  # a tree's sweep.method is unused; its space holds ranges to sample
        num_samples=len(table),
        space_metric=cfg.metric,
        source=f"{workdir} (mutation tree: lineage.csv)",
        notes=[note],
        default_out=os.path.join(workdir, "analysis"),
    )


def _from_checkpoint(workdir: str):
    """(config, members table with best-so-far metrics, note) from the latest
    readable checkpoint step."""
    from jaxexp.run import checkpoint, population, resume

    directory = checkpoint.sweep_dir(workdir)
    if not os.path.isdir(directory) or not any(n.isdigit() for n in os.listdir(directory)):
        raise ConfigError(
            f"--workdir: {workdir} has no members.csv and no checkpoint; analyse a sweep's workdir "
            "(checkpoints are on by default), or pass --table=FILE.csv"
        )
    saver = checkpoint.SweepCheckpoints.reader(workdir)
    host = results = None
    errors = []
    try:
        for step in reversed(saver.steps()):
            try:
                host = saver.read_json(step)[0]
                results = saver.read_arrays(step, None)[1]
                break
            except Exception as e:  # noqa: BLE001 - a step being written or corrupted: the previous one
                errors.append(f"step {step}: {_first_line(e)}")
    finally:
        saver.close()
    if host is None:
        raise ConfigError(f"--workdir: no readable checkpoint in {directory} ({'; '.join(errors)})")
    cfg = _config_from(host["config"], f"checkpoint step {step}")
    parts = resume.unpack(results, host)  # (history, group history, ..., finals, initial)
    history, finals = parts[0], parts[-2]
    table = population.members_table(cfg)
    hist = pd.concat(history, ignore_index=True) if history else pd.DataFrame(columns=["member", "epoch", "diverged"])
    metric, sign = cfg.metric, core.goal_sign(cfg.goal)
    rows = []
    for member, h in hist.groupby("member"):
        good = h[~h["diverged"].astype(bool) & np.isfinite(h[metric].astype(float))]
        best = good[metric].iloc[int(np.argmin(sign * good[metric].to_numpy(float)))] if len(good) else np.nan
        rows.append(
            {
                "member": int(member),
                "status": "diverged" if h["diverged"].astype(bool).any() else "ok",
                "epochs_run": int(h["epoch"].max()),
                "finished": int(member) in finals,
                f"best_{metric}": best,
            }
        )
    progress = pd.DataFrame(rows, columns=["member", "status", "epochs_run", "finished", f"best_{metric}"])
    table = table.merge(progress, on="member", how="inner")
    note = (
        f"mid-sweep: no members.csv yet, so checkpoint step {step} was read: {len(table)} of "
        f"{len(population.members_table(cfg))} members have trained ({int(progress['finished'].sum())} finished); "
        f"each member's best {metric} so far is used, so members still running may improve"
    )
    return cfg, table, note
