"""Stop signals on the command line before training starts (and after the results
are written): SIGINT/SIGTERM are recorded and acted on at the next safe point
(``check``: before the flags are used, before anything is written), so the command
ends with one line and 130/143. Raising KeyboardInterrupt from the handler, as
Python's own does, can be lost: JAX runs a garbage-collection callback while it
imports, and an exception raised inside it is printed and dropped.
While training runs, ``jaxexp.run.resume.graceful_stop`` takes over (stop at the next
checkpoint), and ``resume.deferred_signals`` while the results are written."""

from __future__ import annotations

import signal

REQUESTED: dict = {"signal": None}


def _handler(signum, frame):
    if REQUESTED["signal"] is not None:  # the second one: at once
        raise KeyboardInterrupt
    REQUESTED["signal"] = signum  # acted on at the next ``check`` (raising here could be lost, see above)


def install() -> None:
    """Records SIGINT/SIGTERM (main thread, command line); ``check`` acts on them, a second
    signal raises KeyboardInterrupt at once."""
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, _handler)


def check() -> None:
    """Raises KeyboardInterrupt if a stop signal came (even one whose exception was lost)."""
    if REQUESTED["signal"] is not None:
        raise KeyboardInterrupt


def exit_code() -> int:
    """143 after SIGTERM, else 130 (SIGINT / Ctrl-C)."""
    return 143 if REQUESTED["signal"] == signal.SIGTERM else 130
