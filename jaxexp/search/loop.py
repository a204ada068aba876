"""The one search loop: ask a strategy for a population, train it, tell it the
members, until it asks for nothing. ``jaxexp sweep`` and ``jaxexp.sweep`` both
run it."""

from __future__ import annotations

import ml_collections

from jaxexp import search as registry
from jaxexp.run import runner
from jaxexp.run.progress import print_progress
from jaxexp.search.protocol import Strategy


def drive(
    config: ml_collections.ConfigDict, workdir: str | None = None, progress=print_progress, strategy=None
) -> Strategy:
    """Runs (or continues) the search ``config.sweep.strategy`` (or ``strategy``, a
    Strategy class or instance); returns the strategy, whose ``result()`` is what
    ``jaxexp.sweep`` returns. A generation cut short by a signal ends the loop with
    ``strategy.interrupted`` set to its partial Results."""
    progress = progress or None  # False: silent, as None
    if strategy is None:
        strategy = registry.strategy(config.sweep.strategy)
    if isinstance(strategy, type):
        strategy = strategy(config, workdir)
    done = 0  # generations told
    while (generation := strategy.ask()) is not None:
        if generation.members is not None:  # finished before an interruption: not trained again
            strategy.tell(generation, generation.members, None)
            done += 1
            continue
        if progress and generation.label:
            progress(generation.label)
        try:
            res = runner.run_members(generation.config, generation.table, generation.workdir, progress)
        except KeyboardInterrupt as e:  # before this population trained: say what is kept
            e.generations_done = done
            raise

        if res.interrupted:
            strategy.interrupted = res
            break
        strategy.tell(generation, res.members, res)
        done += 1
    return strategy
