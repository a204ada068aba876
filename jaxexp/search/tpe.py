"""TPE search with Optuna's sampler through its ask/tell interface.

``sweep.strategy = "tpe"``: ``sweep.generations`` batches of ``sweep.slots``
trials. Each batch asks Optuna's ``TPESampler`` (seeded by ``config.seed``) for
``slots`` trials, runs them as one population (each trial = one configuration x
``sweep.seeds`` seeds; its value is the mean over seeds of every member's best
metric) and tells the values back; a trial whose members all diverged is told
as failed. Optuna is an optional extra (``pip install 'jaxexp[tpe]'``): the
sampler is Optuna's, not a re-implementation.

The space is ``sweep.space`` (or ``sweep.space_file``): ranges become Optuna
distributions (log ranges ``log=True``, ``q_uniform`` a ``step``), choices
categorical ones (by index when a value is not a plain scalar, e.g. a tuple),
and a parameter with a ``when`` condition is only suggested when its parents
take the listed values (define-by-run). ``normal`` and ``q_log_uniform`` have no
Optuna equivalent and are refused.

A choice with ``probabilities`` is honoured, not searched: Optuna's samplers
have no weights for a categorical, so each trial draws it outside TPE with those
probabilities (an independent stream per trial and parameter, seeded by
``config.seed``, the trial number and the parameter name, so a run and its
continuation draw the same values) and enqueues the value as the trial's fixed
parameter (``study.enqueue_trial``): the trial records it through Optuna's
suggest API like any other parameter, and TPE searches the others. Over many
trials the draws follow the probabilities exactly as random search would (a
75/25 choice is about 75/25 however the values score); drop ``probabilities``
to let TPE search the choice.

With a workdir every batch is a checkpointed sweep workdir ``batch_<k>/`` (without
PNG plots: its report.html has the interactive views) and
``trials.csv`` (Optuna's ``trials_dataframe()`` layout: number, value,
params_<name>, state, batch) is rewritten after each batch, so
``jaxexp analyze --table=trials.csv`` reads it; running the command again
rebuilds the study from ``trials.csv`` and continues (a batch cut short runs
again with the trials it was asked for).
"""

from __future__ import annotations

import math
import os
import zlib

import ml_collections
import numpy as np
import pandas as pd

from jaxexp import config as cfgmod
from jaxexp.errors import ConfigError
from jaxexp.search import loop, spacefile, strategies
from jaxexp.search import space as spacemod
from jaxexp.search.protocol import Generation, Strategy


def _optuna():
    try:
        import optuna
    except ImportError:
        raise ConfigError("sweep.strategy: 'tpe' needs Optuna; pip install 'jaxexp[tpe]' (or optuna)") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def _plain(v) -> bool:
    return v is None or isinstance(v, (bool, int, float, str))


def distribution(optuna, p: spacemod.Param):
    """The Optuna distribution of one parameter (None for a fixed value)."""
    d = optuna.distributions
    if p.kind == "fixed":
        return None
    if p.kind == "choice":
        plain = all(_plain(v) for v in p.values)
        return d.CategoricalDistribution(list(p.values) if plain else list(range(len(p.values))))
    if p.kind in ("uniform", "log_uniform"):
        return d.FloatDistribution(p.low, p.high, log=p.kind == "log_uniform")
    if p.kind in ("int_uniform", "int_log_uniform"):
        return d.IntDistribution(int(p.low), int(p.high), log=p.kind == "int_log_uniform")
    if p.kind == "q_uniform":
        return d.FloatDistribution(p.low, p.low + math.floor((p.high - p.low) / p.q + 1e-9) * p.q, step=p.q)
    raise ConfigError(
        f"sweep.space.{p.name}: {p.kind} has no Optuna equivalent for TPE; use uniform/log_uniform/int/q_uniform"
    )


def _value(p: spacemod.Param, dist, raw):
    """A suggested (or stored) Optuna value -> the parameter's config value."""
    if p.kind == "choice" and not all(_plain(v) for v in p.values):
        return p.values[int(raw)]
    if p.kind.startswith("int"):
        return int(raw)
    return raw.item() if hasattr(raw, "item") else raw


def _ask_one(trial, name: str, dist):
    """One value from Optuna's public suggest API."""
    kind = type(dist).__name__
    if kind == "CategoricalDistribution":
        return trial.suggest_categorical(name, dist.choices)
    if kind == "IntDistribution":
        return trial.suggest_int(name, dist.low, dist.high, log=dist.log)
    return trial.suggest_float(name, dist.low, dist.high, step=dist.step, log=dist.log)


def weighted(params: list[spacemod.Param]) -> list[spacemod.Param]:
    """The choices with ``probabilities``: drawn outside TPE with those weights."""
    return [p for p in params if p.kind == "choice" and p.probabilities is not None]


def draw_weighted(p: spacemod.Param, seed: int, number: int):
    """Trial ``number``'s draw of the weighted choice ``p`` (its Optuna value: the
    choice, or its index for a non-scalar choice). Its own stream per (seed, trial,
    parameter): independent of TPE and of the other parameters, reproducible."""
    rng = np.random.default_rng([seed, number, zlib.crc32(p.name.encode())])
    i = int(rng.choice(len(p.values), p=np.asarray(p.probabilities) / sum(p.probabilities)))
    return p.values[i] if all(_plain(v) for v in p.values) else i


def ask(study, params: list[spacemod.Param], dists: dict, seed: int) -> tuple[int, dict]:
    """Asks ``study`` for one trial: (its number, {parameter: config value}).

    Weighted choices (``weighted``) are drawn here with their probabilities and
    enqueued as the trial's fixed parameters, so Optuna records them (one drawn for
    an inactive parameter is simply never suggested); TPE suggests the rest.
    """
    fixed = weighted(params)
    number = len(study.get_trials(deepcopy=False))  # the number the next trial gets (numbers count from 0)
    if fixed:
        study.enqueue_trial({p.name: draw_weighted(p, seed, number) for p in fixed})
    trial = study.ask()
    if fixed and trial.number != number:  # a trial queued by someone else was popped: its draws would be off
        raise ConfigError(f"sweep.strategy=tpe: asked trial {trial.number}, expected {number}; use a fresh study")
    return trial.number, _suggest(trial, params, dists)


def _suggest(trial, params: list[spacemod.Param], dists: dict) -> dict:
    """Define-by-run: parents first; a conditional parameter only when active."""
    values: dict = {}
    for p in spacemod.topological(params):
        if not spacemod.is_active(p, values):
            values[p.name] = None
        elif p.kind == "fixed":
            values[p.name] = p.values[0]
        else:
            values[p.name] = _value(p, dists[p.name], _ask_one(trial, p.name, dists[p.name]))
    return values


def _optuna_params(values: dict, params: list[spacemod.Param]) -> dict:
    """Config values -> the values Optuna stores (choice indices where needed)."""
    out = {}
    for p in params:
        v = values.get(p.name)
        if v is None or p.kind == "fixed":
            continue
        if p.kind == "choice" and not all(_plain(x) for x in p.values):
            v = next(i for i, x in enumerate(p.values) if spacemod._takes((x,), v))
        out[p.name] = v
    return out


def run(config: ml_collections.ConfigDict, workdir: str | None = None, progress=None) -> pd.DataFrame:
    """Runs (or continues) the TPE search; returns the trials table."""
    from jaxexp.run import progress as progress_mod

    progress = progress if progress is not None else progress_mod.print_progress
    return loop.drive(config, workdir, progress, TPE).result()


class TPE(Strategy):
    """``sweep.strategy = "tpe"`` (the module's docstring)."""

    name = "tpe"

    @classmethod
    def planned(cls, config):
        sw = config.sweep
        return sw.generations * sw.slots, f"strategy: tpe ({sw.generations} batches of {sw.slots} trials"

    def __init__(self, config: ml_collections.ConfigDict, workdir: str | None) -> None:
        optuna = self.optuna = _optuna()
        config = spacefile.resolve(config)
        cfgmod.validate_top(config)
        super().__init__(config, workdir)
        sw = config.sweep
        if sw.generations < 1 or sw.slots < 1:
            raise ConfigError("sweep.generations (batches), sweep.slots (trials per batch): must be >= 1")
        self.params = spacemod.parse(sw.space)
        if not self.params:
            raise ConfigError("sweep.space: TPE needs a space to search")
        cfgmod.check_param_names(config, [p.name for p in self.params])
        self.dists = {p.name: distribution(optuna, p) for p in self.params}
        self.names = [p.name for p in self.params]
        # Batches are short sweeps: their PNG plots would cost about as much as their
        # training (trials.csv and each batch's report.md/report.html say it all).
        self.batch_config = ml_collections.ConfigDict(config.to_dict())
        self.batch_config.engine.plots = False
        direction = "minimize" if config.goal == "min" else "maximize"
        self.study = optuna.create_study(direction=direction, sampler=optuna.samplers.TPESampler(seed=config.seed))
        trials = pd.DataFrame()
        self.path = None if workdir is None else os.path.join(workdir, "trials.csv")
        if self.path and os.path.exists(self.path):
            trials = pd.read_csv(self.path)
            for row in trials[trials["state"].isin(["COMPLETE", "FAIL"])].to_dict("records"):
                values = _cells(row, self.params)
                self._add(values, float(row["value"]) if row["state"] == "COMPLETE" else math.nan)
        self.trials = trials
        running = (trials["state"] == "RUNNING") if len(trials) else pd.Series(dtype=bool)
        self.batch = int(trials["batch"].max()) + 1 if len(trials) and not running.any() else 0
        if running.any():
            self.batch = int(trials.loc[running, "batch"].min())

    def _add(self, values: dict, value: float) -> None:
        """Adds a finished trial to the study (one asked by an earlier command)."""
        trial_state = self.optuna.trial.TrialState
        raw = _optuna_params(values, self.params)
        self.study.add_trial(
            self.optuna.trial.create_trial(
                params=raw,
                distributions={n: self.dists[n] for n in raw},
                value=value if np.isfinite(value) else None,
                state=trial_state.COMPLETE if np.isfinite(value) else trial_state.FAIL,
            )
        )

    def ask(self) -> Generation | None:
        sw, trials = self.config.sweep, self.trials
        if self.batch >= sw.generations:
            return None
        pending = trials[(trials["batch"] == self.batch) & (trials["state"] == "RUNNING")] if len(trials) else trials
        self.pending = len(pending) > 0
        if self.pending:  # cut short before: the same trials again
            asked = [_cells(r, self.params) for r in pending.to_dict("records")]
            numbers = list(pending["number"])
        else:
            numbers, asked = map(
                list, zip(*(ask(self.study, self.params, self.dists, self.config.seed) for _ in range(sw.slots)))
            )
            self.trials = _record(trials, self.batch, numbers, asked, self.names, None, "RUNNING")
            if self.path:
                os.makedirs(self.workdir, exist_ok=True)
                _write(self.trials, self.path)
        self.asked = list(zip(numbers, asked))
        table = pd.DataFrame.from_records(
            [
                {"member": num * sw.seeds + s, "config_id": num, "seed": s, **values}
                for num, values in self.asked
                for s in range(sw.seeds)
            ],
            columns=["member", "config_id", "seed", *self.names],
        )
        label = f"[{self.config.name}] TPE batch {self.batch + 1}/{sw.generations}: {len(asked)} trial(s)"
        batch_dir = None if self.workdir is None else os.path.join(self.workdir, f"batch_{self.batch}")
        return Generation(table, self.batch_config, batch_dir, label)

    def tell(self, generation, members, results) -> None:
        scores = strategies.config_scores(members, self.config.metric)
        trial_state, trials = self.optuna.trial.TrialState, self.trials
        for num, values in self.asked:
            value = scores.get(num, (math.nan,))[0]
            if self.pending:
                self._add(values, value)
            else:
                state = trial_state.COMPLETE if np.isfinite(value) else trial_state.FAIL
                self.study.tell(num, value if np.isfinite(value) else None, state=state)
            trials.loc[trials["number"] == num, "value"] = value
            trials.loc[trials["number"] == num, "state"] = "COMPLETE" if np.isfinite(value) else "FAIL"
        if self.path:
            _write(trials, self.path)
        self.batch += 1

    def result(self) -> pd.DataFrame:
        return self.trials

    def summary(self) -> str | None:
        trials = self.trials
        done = trials[trials["state"] == "COMPLETE"] if len(trials) else trials
        if done.empty:
            return None
        best = done.loc[done["value"].idxmin() if self.config.goal == "min" else done["value"].idxmax()]
        return (
            f"wrote {self.workdir}/trials.csv; {len(done)} trial(s); best trial {int(best['number'])}: "
            f"{best['value']:.5g}"
        )


def _cells(row: dict, params: list[spacemod.Param]) -> dict:
    """A trials.csv row -> {parameter: config value} (empty cells: inactive)."""
    out = {}
    for p in params:
        v = row.get(f"params_{p.name}")
        out[p.name] = None if v is None or (isinstance(v, float) and math.isnan(v)) else spacemod.from_cell(p, v)
    return out


def _record(trials: pd.DataFrame, batch: int, numbers, asked, names, value, state) -> pd.DataFrame:
    rows = [
        {
            "number": num,
            "value": math.nan if value is None else float(value),
            **{f"params_{n}": (str(v) if isinstance(v, tuple) else v) for n, v in values.items()},
            "state": state,
            "batch": batch,
        }
        for num, values in zip(numbers, asked)
    ]
    new = pd.DataFrame(rows, columns=["number", "value", *[f"params_{n}" for n in names], "state", "batch"])
    return pd.concat([trials, new], ignore_index=True) if len(trials) else new


def _write(trials: pd.DataFrame, path: str) -> None:
    """trials.csv, written whole then renamed (by process 0 of a multi-process run)."""
    from jaxexp.run import distributed

    if not distributed.is_primary():
        return
    tmp = path + ".tmp"
    trials.to_csv(tmp, index=False)
    os.replace(tmp, path)
