"""The command line's commands, one module each (``jaxexp.main`` parses the flags and
dispatches): ``search`` (tpe, mutation trees, ``tree annotate``), ``checkpoints``
(export, inspect), ``blend``, ``analyze``, ``validate``."""

from __future__ import annotations

import sys


def fail(message: str) -> None:
    """One line on stderr and exit 2: how every bad input ends on the command line."""
    print(f"jaxexp: error: {message}", file=sys.stderr)
    sys.exit(2)
