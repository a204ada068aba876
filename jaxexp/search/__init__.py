"""Search strategies: one protocol (``jaxexp.search.protocol``), one loop
(``jaxexp.search.loop.drive``) shared by ``jaxexp sweep`` and ``jaxexp.sweep``.

A strategy is a class with ``ask``/``tell`` over populations of members; its
name is the value of ``sweep.strategy``. Adding one = one module with a
``Strategy`` subclass plus a line in ``STRATEGIES`` (or ``register`` from user
code, e.g. a config file's ``get_config``). In-run rules (successive halving, population-based training) act between
segments inside a population: ``jaxexp.search.protocol.InRunRule`` and
``IN_RUN_RULES`` (``register_rule``).
"""

from __future__ import annotations

import importlib

from jaxexp.errors import ConfigError

# sweep.strategy -> "module:Class" (imported on first use: the registry stays light)
STRATEGIES: dict[str, str] = {
    "sweep": "jaxexp.search.expand:Expand",
    "tpe": "jaxexp.search.tpe:TPE",
    "mutation": "jaxexp.search.mutation:MutationTree",
}

# In-run rules, asked in this order at every segment boundary.
IN_RUN_RULES: list = ["jaxexp.search.inrun:Halving", "jaxexp.search.inrun:PBT"]


def register(name: str, target) -> None:
    """Makes ``sweep.strategy=name`` run ``target`` (a Strategy subclass or "module:Class")."""
    STRATEGIES[name] = target


def register_rule(target) -> None:
    """Adds an in-run rule (an InRunRule subclass or "module:Class"); it acts where
    its ``enabled(config)`` is true, after the rules before it."""
    if target not in IN_RUN_RULES:
        IN_RUN_RULES.append(target)


def _load(target):
    if not isinstance(target, str):
        return target
    module, _, cls = target.partition(":")
    return getattr(importlib.import_module(module), cls)


def strategy(name: str):
    """The Strategy class of ``sweep.strategy=name``; ConfigError naming the known ones."""
    if name not in STRATEGIES:
        raise ConfigError(f"sweep.strategy: unknown strategy {name!r}; use one of {', '.join(map(repr, STRATEGIES))}")
    return _load(STRATEGIES[name])


def in_run_rules() -> list:
    """The InRunRule classes, in the order they act."""
    return [_load(t) for t in IN_RUN_RULES]
