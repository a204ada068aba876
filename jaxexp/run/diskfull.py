"""A full disk (``ENOSPC``, or a quota: ``EDQUOT``) while a run writes: one error type,
one line on the command line, no traceback.

It surfaces in several forms: an ``OSError`` from ``open``/``write`` (result files, the
lock), and from Orbax's background save threads a ``ValueError`` of TensorStore
(``RESOURCE_EXHAUSTED: ... No space left on device [os_error_code='28']``), raised
at the next save, wait or close and logged with a traceback by each thread it
passes. ``converted`` turns any of them into ``DiskFull`` naming what was being
written and where; ``quiet_logs`` drops those thread logs (the error itself still
reaches the caller). Nothing half-written is used afterwards: result files are
written into a temporary folder and renamed, and an unfinished checkpoint step
stays a temporary folder that the next run removes, resuming from the previous step.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import sys

_CODES = (errno.ENOSPC, errno.EDQUOT)
_TEXTS = ("No space left on device", "Disk quota exceeded", "os_error_code='28'", "os_error_code='122'")


class DiskFull(OSError):
    """The disk filled up while writing ``what`` into ``directory``; freeing space and
    running the same command again resumes the run."""

    def __init__(self, what: str, directory: str):
        self.message = (
            f"disk full while writing {what} in {directory}: free space and run the same command again (it resumes)"
        )
        super().__init__(errno.ENOSPC, self.message)
        self.what, self.directory = what, directory

    def __str__(self) -> str:
        return self.message


def is_disk_full(e: BaseException | None) -> bool:
    """Whether ``e`` (or an exception it was raised from) is a full disk."""
    seen = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno in _CODES:
            return True
        if any(t in str(e) for t in _TEXTS):  # TensorStore: a ValueError carrying the OS error
            return True
        e = e.__cause__ or e.__context__
    return False


def of(e: OSError, directory: str) -> DiskFull:
    """``e`` as a DiskFull: itself, or naming the file it was writing (else ``directory``)."""
    if isinstance(e, DiskFull):
        return e
    name = getattr(e, "filename", None)
    if isinstance(name, str) and name:
        return DiskFull(os.path.basename(name), os.path.dirname(os.path.abspath(name)))
    return DiskFull("files", directory)


@contextlib.contextmanager
def converted(what: str, directory: str):
    """Raises ``DiskFull(what, directory)`` for a full disk inside the block (a
    ``DiskFull`` from deeper down passes through: it names its own file)."""
    try:
        yield
    except DiskFull:
        raise
    except Exception as e:
        if is_disk_full(e):
            raise DiskFull(what, directory) from e
        raise


class _DropDiskFull(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        try:
            text = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record: let logging report it
            return True
        return not (is_disk_full(exc) or any(t in text for t in _TEXTS))


_FILTER = _DropDiskFull()


def _loop_closed(unraisable) -> bool:
    """A TensorStore write finishing after its save's event loop closed (the save had
    already failed, and that failure is raised to the caller)."""
    e, tb = unraisable.exc_value, unraisable.exc_traceback
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return (
        isinstance(e, RuntimeError)
        and str(e) == "Event loop is closed"
        and tb is not None
        and tb.tb_frame.f_code.co_filename.endswith(os.path.join("asyncio", "base_events.py"))
    )


def quiet_logs() -> None:
    """Drops what Orbax's background threads print when a save fails on a full disk:
    their log records with tracebacks (absl and asyncio loggers) and the "Event loop is
    closed" of writes that finish after their save failed. The error itself still
    reaches the caller. Idempotent."""
    for name in ("absl", "asyncio"):
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
    previous = sys.unraisablehook
    if getattr(previous, "_jaxexp", False):
        return

    def hook(unraisable) -> None:
        if not _loop_closed(unraisable):
            previous(unraisable)

    hook._jaxexp = True
    sys.unraisablehook = hook
