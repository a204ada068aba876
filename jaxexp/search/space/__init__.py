"""Search spaces: distributions, conditions, validation, grids, random and Sobol samples.

A space is a nested mapping that mirrors the config it sweeps. A leaf is a
parameter spec: a mapping with ``value`` (fixed), ``values`` (a choice, with
optional ``probabilities``) or ``distribution``: ``uniform``, ``log_uniform``,
``int_uniform``, ``int_log_uniform``, ``q_uniform``, ``q_log_uniform`` (each with
``min``/``max``; ``q`` for the quantised ones) or ``normal`` (``mu``, ``sigma``;
W&B's spelling); ``num`` makes a grid of a distribution. The W&B spelling
``log_uniform_values`` is accepted for ``log_uniform``. A group may also be
written in W&B form, ``{"train": {"parameters": {"lr": {...}}}}``.

Each parameter is named by its dotted config path, e.g. ``train.lr``.

A spec may carry ``when: {PARENT: VALUE or [VALUES]}``: the parameter is
*active* only when the parent parameter (a choice or fixed parameter of the
same space) takes one of those values (several parents: all must hold; an
inactive parent makes its children inactive). Expansions give inactive
parameters the value ``None``; the member keeps the base config's value.
"""

from jaxexp.search.space.params import (
    DISTRIBUTIONS,
    METHODS,
    Param,
    _is_spec,
    _takes,
    choice,
    describe,
    fixed,
    from_cell,
    int_uniform,
    is_active,
    log_uniform,
    nest,
    normal,
    q_uniform,
    topological,
    uniform,
)
from jaxexp.search.space.parse import _is_float_text, parse, parse_all, yaml_float
from jaxexp.search.space.sample import expand, from_unit, grid_values, sample, sobol_points

__all__ = [
    "DISTRIBUTIONS",
    "METHODS",
    "Param",
    "choice",
    "describe",
    "expand",
    "fixed",
    "from_cell",
    "from_unit",
    "grid_values",
    "int_uniform",
    "is_active",
    "log_uniform",
    "nest",
    "normal",
    "parse",
    "parse_all",
    "q_uniform",
    "sample",
    "sobol_points",
    "topological",
    "uniform",
    "yaml_float",
    "_is_float_text",
    "_is_spec",
    "_takes",
]
