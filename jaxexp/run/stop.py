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
_ARMED = {"on": False}


def _handler(signum, frame):
    first = REQUESTED["signal"] is None
    REQUESTED["signal"] = REQUESTED["signal"] or signum
    if _ARMED["on"] or not first:  # after start-up (or a second signal): at once, as Python's own handler
        raise KeyboardInterrupt
    # while starting up: acted on at the next ``check`` (raising here could be lost, see above)


def arm() -> None:
    """Start-up is over: a stop signal raises KeyboardInterrupt at once (a long blend or
    analysis stops; a sweep's training has its own graceful handler meanwhile)."""
    _ARMED["on"] = True


def install() -> None:
    """Records SIGINT/SIGTERM (main thread, command line): during start-up ``check`` acts on
    them (a second signal raises KeyboardInterrupt at once); after ``arm`` they raise it."""
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, _handler)


def check() -> None:
    """Raises KeyboardInterrupt if a stop signal came (even one whose exception was lost)."""
    if REQUESTED["signal"] is not None:
        raise KeyboardInterrupt


def exit_code() -> int:
    """143 after SIGTERM, else 130 (SIGINT / Ctrl-C)."""
    return 143 if REQUESTED["signal"] == signal.SIGTERM else 130
