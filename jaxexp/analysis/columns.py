"""Which columns of a trials table are hyperparameters, and which rows are one
configuration.

A table from another tool keeps ids, seeds, timings and states beside the
hyperparameters, each tool with its own names. Reading an id as a hyperparameter
is the mistake an analysis must not make: the seeds of one configuration are then
not averaged, the row count becomes the sample size, an id that grows with time
"correlates" with the metric, and the next space sweeps the ids. Every column of
a table whose parameters are not named (a plain CSV or DataFrame) gets one role:

- **id**: names a trial or a configuration; never a parameter. By name
  (``ID_NAMES``: Optuna's ``number``, W&B's ``Name``/``ID``, Ray Tune's
  ``trial_id``, scripts' ``trial``/``config``/``run``/``id`` ...), given
  (``--id``), or by its values: an integer row counter (one value per row,
  consecutive: counting up in row order from 0 or 1, or at least ``MIN_COUNTER``
  rows), an integer configuration counter (one value per configuration,
  consecutive from 0 or 1, at least ``MIN_COUNTER`` configurations, repeated
  across the configuration's rows) or text with one value per row.
- **seed**: a replicate index (``SEED_NAMES``: seed, rep, repeat, replicate ...,
  also ``train.seed``, ``data_seed``; or ``--seed``): rows that differ only in it
  are one configuration.
- **left out**: states, times, hosts, counters of progress (``BOOKKEEPING``,
  ``_*``, ``user_attrs_*``, ``system_attrs_*``), other metrics, free text.
- **parameter**: every other column. Where the table or the user names the
  parameters (``--params``, a space file, Optuna's ``params_*``, W&B's
  ``config.*``, Ray Tune's ``config/*``) those are the parameters and only
  seed/id names among them are moved (with a note).

**Ambiguous** columns are refused in one line that names the column and asks
(``--seed``, ``--id`` or ``--params``), rather than answered confidently: an
integer column, not named like an id, a seed or a hyperparameter (``HP_WORDS``),
whose values look like an index (consecutive from 0 or 1) and either (a) differ
between rows that are otherwise equal, each value once per such group, with at
least 3 values or beside a continuous parameter whose exact values repeat (a
run/seed index, or a grid dimension?), or (b) take one value per configuration
(or per nested group of configurations) with fewer than ``MIN_COUNTER``
configurations (a configuration id, or a hyperparameter that happened to differ
in every configuration?).

**Configurations** are rows with equal parameter values (NaN, an inactive
conditional parameter, is a value), unless an id column groups them: the first of
the ``--id`` columns, the configuration-id names (``CONFIG_ID_NAMES``) and the
other ids whose value repeats across rows that agree on every parameter (so
configurations that differ in a parameter the table lacks stay apart). jaxexp's own
``config_id`` also counts when unique per row (each member its own configuration),
unless a seed column shows that rows with equal parameters are replicates.

The names that say a column's role (and the flag-named columns) are in
:mod:`jaxexp.analysis.colnames` (re-exported here); this module reads roles
from a column's values and finds the configurations.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from jaxexp.analysis.colnames import (
    BOOKKEEPING,
    BOOKKEEPING_PREFIXES,
    CONFIG_ID_NAMES,
    HP_WORDS,
    ID_NAMES,
    METRIC_LIKE,
    SEED_NAMES,
    Roles,
    is_bookkeeping,
    is_id_name,
    is_lineage,
    is_seed_name,
    names,
    norm,
    split_named,
)
from jaxexp.errors import ConfigError

__all__ = [
    "BOOKKEEPING",
    "BOOKKEEPING_PREFIXES",
    "CONFIG_ID_NAMES",
    "HP_WORDS",
    "ID_NAMES",
    "MAX_TEXT_LEVELS",
    "METRIC_LIKE",
    "MIN_COUNTER",
    "SEED_NAMES",
    "Roles",
    "config_key",
    "guess",
    "is_bookkeeping",
    "is_id_name",
    "is_seed_name",
    "names",
    "norm",
    "split_named",
]

MIN_COUNTER = 8  # a counter over fewer rows/configurations could be a hyperparameter's values
MAX_TEXT_LEVELS = 20


def _integer(col: pd.Series) -> np.ndarray | None:
    """The column's non-null values as int64 when every one is an integer (not bool)."""
    present = col.dropna()
    if present.empty or pd.api.types.is_bool_dtype(col) or not pd.api.types.is_numeric_dtype(present):
        return None
    x = present.to_numpy(np.float64)
    if not np.all(np.isfinite(x)) or not np.all(x == np.round(x)):
        return None
    return x.astype(np.int64)


def _index_like(values: np.ndarray, slack: float = 1.0) -> bool:
    """Distinct integers from 0 or 1 with at most ``slack`` x as many slots as values
    (a counter with a few gaps: trials left out of the export)."""
    u = np.unique(values)
    return bool(u.min() in (0, 1) and u.max() - u.min() + 1 <= slack * len(u) + 1)


def _row_counter(col: pd.Series) -> bool:
    """One integer per row, consecutive (gaps from rows left out allowed): counting up in
    row order from 0 or 1, or over at least MIN_COUNTER rows."""
    x = _integer(col)
    if x is None or len(x) < 5 or len(np.unique(x)) != len(x):
        return False
    if x.max() - x.min() + 1 > 1.5 * len(x) + 1:
        return False
    return bool(len(x) >= MIN_COUNTER or (x.min() in (0, 1) and np.all(np.diff(x) > 0)))


def _text_row_id(col: pd.Series) -> bool:
    present = col.dropna()
    if present.empty or pd.api.types.is_numeric_dtype(present) or pd.api.types.is_bool_dtype(present):
        return False
    if set(present.astype(str).str.lower().unique()) <= {"true", "false"}:
        return False
    return len(present) >= 5 and present.astype(str).nunique() == len(present)


def _continuous(col: pd.Series) -> bool:
    """Floats that are not all integers (a value drawn from a range)."""
    present = pd.to_numeric(col.dropna(), errors="coerce")
    if present.empty or present.isna().any():
        return False
    x = present.to_numpy(np.float64)
    return bool(not np.all(x == np.round(x)) and len(np.unique(x)) >= 5)


def _groups(rows: pd.DataFrame, by: list[str]):
    return rows.groupby(by, dropna=False, sort=False)


def _ambiguity(c: str, rows: pd.DataFrame, others: list[str]) -> tuple[str, str] | None:
    """("id", note) when the integer column ``c`` is confidently a configuration
    counter, ("ask", message) when it could be an id or a hyperparameter, else None."""
    x = _integer(rows[c])
    if x is None or not others or rows[c].isna().any():
        return None
    vals = np.unique(x)
    k = len(vals)
    shown = f"{vals.min()}..{vals.max()}" if k > 3 else ", ".join(map(str, vals))
    g = _groups(rows, others)[c]
    within = g.nunique()
    listed = [*others, c] if len(others) < 8 else [*others[:7], "...", c]
    as_param = f"--params={','.join(map(str, listed))} to analyse it as a hyperparameter"
    if (within <= 1).all():  # constant within the configurations the other parameters make
        if k != g.ngroups or len(rows) <= k or not _index_like(x):
            return None  # a parameter (one value shared by several configurations, or not a counter)
        if k >= MIN_COUNTER:
            return "id", (
                f"{c}: one value per configuration ({shown}, repeated across its {len(rows)} rows), read as a "
                "configuration id, not a parameter (pass --params=... naming it to analyse it)"
            )
        return "ask", (
            f"{c}: integer column ({shown}) with one value per configuration, not named like an id or a "
            f"hyperparameter, could be either (only {k} configurations); pass --id={c} if it numbers the "
            f"configurations, or {as_param}"
        )
    # varies between rows that are otherwise equal
    distinct = bool(g.apply(lambda s: s.is_unique).all())
    sizes = g.size()
    small = _index_like(x) and vals.max() <= sizes.max()
    repeat_draws = any(_continuous(rows[o]) for o in others) and (sizes > 1).any()
    if distinct and small and (k >= 3 or repeat_draws):
        return "ask", (
            f"{c}: integer column ({shown}) that differs between rows with equal other parameters, each value once, "
            f"like a seed or run index, but is not named like one; pass --seed={c} if those rows repeat one "
            f"configuration, or {as_param}"
        )
    nested = bool((rows.groupby(c, sort=False)[others].nunique(dropna=False) <= 1).all().all())
    if nested and len(rows) > k >= 5 and _index_like(x):
        return "ask", (
            f"{c}: integer column ({shown}) whose rows of one value agree on every other parameter, like a "
            f"configuration id not named like one; pass --id={c} if it numbers the configurations, or {as_param}"
        )
    return None


def guess(table: pd.DataFrame, rows: pd.DataFrame, metric: str, ids: list, seeds: list, notes: list) -> Roles:
    """Roles of the columns of a table whose parameters are not named (module doc).
    ``table``: every row (counters are judged on it); ``rows``: the usable ones."""
    params, metric_like, text, found_ids, found_seeds, by_values = [], [], [], [], [], []
    lineage = is_lineage(table)
    for c in table.columns:
        if c == metric or c in ids or c in seeds:
            continue
        if is_seed_name(c):
            found_seeds.append(c)
        elif is_id_name(c):
            found_ids.append(c)
        elif is_bookkeeping(c, lineage):
            continue
        elif METRIC_LIKE.search(str(c)):
            metric_like.append(c)
        elif _text_row_id(table[c]):
            by_values.append((c, "text with one value per row"))
        else:
            col = table[c].dropna()
            numeric = pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col)
            if not numeric and col.nunique() > max(MAX_TEXT_LEVELS, len(col) // 2) and col.nunique() > 2:
                text.append(c)
            else:
                params.append(c)
    if metric_like:
        notes.append(
            f"left out as probable metrics, not parameters: {', '.join(metric_like)} (pass --params or --space "
            "to choose)"
        )
    if text:
        notes.append(f"left out as free text (too many distinct values): {', '.join(text)}")
    # integer columns judged by their values; hyperparameter-like names are parameters
    for c in list(params):
        if len(params) > 1 and not HP_WORDS.search(str(c)) and _row_counter(table[c]):
            params.remove(c)
            by_values.append((c, "a row counter: one integer per row, consecutive"))
    for c in list(params):
        if HP_WORDS.search(str(c)):
            continue
        verdict = _ambiguity(c, rows, [p for p in params if p != c])
        if verdict is None:
            continue
        kind, message = verdict
        if kind == "ask":
            raise ConfigError(message)
        params.remove(c)
        found_ids.append(c)
        notes.append(message)
    for c, why in by_values:
        if not params:  # the only candidate: a parameter after all
            params.append(c)
            continue
        found_ids.append(c)
        if "row counter" in why or "text" in why:
            notes.append(f"{c}: {why}, read as an id, not a parameter (pass --params=... naming it to analyse it)")
    return Roles(params, [*ids, *found_ids], [*seeds, *found_seeds])


def config_key(
    rows: pd.DataFrame, params: list[str], ids: list[str], seeds: list[str], notes: list, explicit=()
) -> str | None:
    """The id column that groups rows into configurations, or None (equal parameter values):
    the first of the ``explicit`` (--id) columns, the configuration-id names and the other ids
    whose value repeats across rows that agree on every parameter."""
    named = [c for c in ids if norm(c) in CONFIG_ID_NAMES]
    named.sort(key=lambda c: CONFIG_ID_NAMES.index(norm(c)))
    order = list(dict.fromkeys([*explicit, *named, *ids]))
    for c in order:
        col = rows[c]
        if col.isna().any() or not params:
            continue
        repeats = col.nunique() < len(col)
        if not repeats and c != "config_id":
            continue
        agree = bool((rows.groupby(c, sort=False)[params].nunique(dropna=False) <= 1).all().all())
        if not agree:
            notes.append(f"rows sharing a {c} value differ in their parameters: {c} does not group configurations")
            continue
        if not repeats and _replicates(rows, params, seeds):
            notes.append(
                f"{c} is unique per row while rows with equal parameters differ only in {', '.join(seeds)}: "
                "configurations are the parameter values"
            )
            continue
        return c
    return None


def _replicates(rows: pd.DataFrame, params: list[str], seeds: list[str]) -> bool:
    """Do rows with equal parameters differ in a seed column?"""
    if not seeds:
        return False
    g = _groups(rows, params)[seeds]
    return bool((g.nunique(dropna=False) > 1).any().any())
