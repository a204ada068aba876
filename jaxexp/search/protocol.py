"""The strategy protocol.

An outer strategy (``Strategy``) decides which members train, one population
(*generation*) at a time: ``ask`` gives the next population or None when the
search is done, ``tell`` hands back that population's members table (one row
per member: status, ``best_<metric>``...). A plain sweep asks once; TPE asks a
batch of trials per generation; a mutation tree asks the children of chosen
parents. Every generation is trained by the same engine (``runner.run_members``),
in its own sweep workdir when the search has one.

An in-run rule (``InRunRule``) acts inside a population at segment boundaries:
it may stop members (successive halving) or copy one member's parameters and
optimizer state into another's slot with new hyperparameters (population-based
training). Its decisions are logged, and rebuilt from the logs on resume.
"""

from __future__ import annotations

from typing import Any, ClassVar, NamedTuple

import ml_collections
import numpy as np
import pandas as pd


class Generation(NamedTuple):
    """One population a strategy asks for."""

    table: pd.DataFrame  # members: member, config_id, seed, one column per searched parameter
    config: ml_collections.ConfigDict  # the config they run with
    workdir: str | None  # their sweep workdir (None: nothing written)
    label: str = ""  # the progress line announcing it ("": none)
    members: pd.DataFrame | None = None  # finished by an earlier command: told without training


class Strategy:
    """Base class of the outer strategies (``sweep.strategy``).

    Subclasses set ``name``, take ``(config, workdir)`` (validating the config:
    ConfigError, one line; continuing from what ``workdir`` holds) and
    implement ``ask``, ``tell`` and ``result``.
    """

    name: ClassVar[str] = ""
    continues = "the same command continues the search"  # said when a generation is interrupted

    def __init__(self, config: ml_collections.ConfigDict, workdir: str | None) -> None:
        self.config, self.workdir = config, workdir
        self.interrupted = None  # the Results of the generation a signal stopped

    @classmethod
    def planned(cls, config: ml_collections.ConfigDict) -> tuple[int, str] | None:
        """(configurations it will try, a line saying so) for ``jaxexp validate``; None:
        the space's expansion (``sweep.method``) is what runs."""
        return None

    def ask(self) -> Generation | None:
        raise NotImplementedError

    def tell(self, generation: Generation, members: pd.DataFrame, results: Any | None) -> None:
        """``members``: the generation's members table; ``results``: its Results (None
        when the generation finished before this command)."""
        raise NotImplementedError

    def result(self) -> Any:
        """What ``jaxexp.sweep`` returns."""
        raise NotImplementedError

    def summary(self) -> str | None:
        """The command line's last line (None: nothing to say)."""
        return None

    def stopped(self) -> str:
        """The line a signal's stop ends with."""
        return f"jaxexp: interrupted: {self.continues}"


class Boundary(NamedTuple):
    """A segment boundary as in-run rules see it: one row per member in a slot
    (host arrays; E = epochs of the segment)."""

    ids: np.ndarray  # [n] member ids
    who: np.ndarray  # [n] index into the bucket's members
    real: np.ndarray  # [n] the slot of each row
    n_slots: int
    epoch_now: np.ndarray  # [n] epochs done
    active: np.ndarray  # [n, E] bool: trained that epoch
    signed: np.ndarray  # [n, E] the selection metric, signed so that smaller is better
    finished: np.ndarray  # [n] bool: ends at this boundary (done, diverged, stopped, or pruned by a rule before)
    wave: int  # segments run so far in this bucket


class Decision(NamedTuple):
    """What an in-run rule does at a boundary."""

    pruned: np.ndarray | None = None  # [n] bool: stop these members now
    src: np.ndarray | None = None  # [n_slots]: the slot whose parameters and optimizer state each slot takes
    log: list | tuple = ()  # rows of the rule's log table


class InRunRule:
    """Base class of the in-run rules (``IN_RUN_RULES``).

    Built per bucket with ``(config, part, ids, out, overrides)``: ``part`` the
    bucket's members, ``ids`` their member ids, ``out`` the run's output so far
    (its ``log`` frames rebuild the rule's state on resume), ``overrides``
    {index into part: {field: value}} the hyperparameters rules gave members (a
    rule may add to it; the engine re-encodes them).
    """

    log: ClassVar[str] = ""  # the RunOutput field its log frames go to ("rungs", "pbt")

    @classmethod
    def enabled(cls, config) -> bool:
        raise NotImplementedError

    @classmethod
    def epochs(cls, config) -> tuple[int, ...]:
        """Epochs at which it needs a segment boundary (their gcd divides the segment)."""
        return ()

    def __init__(self, config, part, ids, out, overrides: dict) -> None:
        self.config, self.part, self.ids, self.overrides = config, part, ids, overrides

    def at_boundary(self, b: Boundary) -> Decision:
        raise NotImplementedError
