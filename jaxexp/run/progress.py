"""Progress of a sweep: members done, epoch, best metric and ETA after every segment.

On a terminal the line redraws in place (``end_line`` closes it before anything else
is printed); otherwise, e.g. into a log file, one plain line per segment."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable

from jaxexp import config as cfgmod

_LIVE = {"open": False}  # a redrawn line is on the terminal, not ended yet


def print_progress(line: str) -> None:
    """Writes a progress line to stderr: redrawn in place on a terminal."""
    if sys.stderr.isatty():
        sys.stderr.write("\r\033[K" + line)
        sys.stderr.flush()
        _LIVE["open"] = True
    else:
        print(line, file=sys.stderr, flush=True)


def end_line() -> None:
    """Ends a redrawn progress line, so the next message starts on its own line."""
    if _LIVE["open"]:
        sys.stderr.write("\n")
        sys.stderr.flush()
        _LIVE["open"] = False


class Progress:
    """Members done, epoch, best metric so far and ETA, one line per segment."""

    def __init__(self, name, n_members, total_epoch_work, metric, goal, report: Callable | None):
        self.name, self.n, self.total = name, n_members, max(total_epoch_work, 1)
        self.metric, self.sign = metric, cfgmod.goal_sign(goal)
        self.report = report
        self.done_work = 0
        self.trained_work = 0  # member-epochs trained by this process (the ETA's rate)
        self.finished = 0
        self.diverged = 0
        self.best = (math.inf, None)
        self.start = time.perf_counter()

    def update(
        self, where: str, epoch: int, max_epoch: int, work: int, finished: int, diverged: int, best, train_s: float
    ):
        """``work``: member-epochs just done; ``train_s``: seconds spent in segments
        so far (the ETA excludes compile time, which is paid once)."""
        self.done_work += work
        self.trained_work += work
        self.finished += finished
        self.diverged += diverged
        if best is not None and (self.best[1] is None or self.sign * best[0] < self.sign * self.best[0]):
            self.best = best
        if self.report is None:
            return
        elapsed = time.perf_counter() - self.start
        rate = train_s / self.trained_work if self.trained_work else float("nan")
        eta = rate * (self.total - self.done_work)
        self.report(
            f"[{self.name}] {where} | epoch {epoch}/{max_epoch} | members done {self.finished}/{self.n}"
            f" (diverged {self.diverged}) | best {self.metric} {self._best()} | {elapsed:.1f}s elapsed, ETA {eta:.1f}s"
        )

    def _best(self) -> str:
        return f"{self.best[0]:.5g} (member {self.best[1]})" if self.best[1] is not None else "n/a"

    def resumed(self, step: int, history, finals: dict, max_epoch: int) -> None:
        """Counts what a checkpoint already holds (``history``: its per-epoch frames,
        ``finals``: finished members) and reports it in one line."""
        rows = [h for h in history if len(h)]
        self.done_work = sum(len(h) for h in rows)
        self.finished = len(finals)
        epoch = 0
        for h in rows:
            epoch = max(epoch, int(h["epoch"].max()))
            ok = h[~h["diverged"].astype(bool)] if "diverged" in h else h
            self.diverged += int(h.loc[h["diverged"].astype(bool), "member"].nunique()) if "diverged" in h else 0
            if self.metric in ok and ok[self.metric].notna().any():
                i = (self.sign * ok[self.metric]).idxmin()
                value = float(ok.loc[i, self.metric])
                if self.best[1] is None or self.sign * value < self.sign * self.best[0]:
                    self.best = (value, int(ok.loc[i, "member"]))
        if self.report is not None:
            self.report(
                f"[{self.name}] resumed from checkpoint step {step} | epoch {epoch}/{max_epoch} | members done "
                f"{self.finished}/{self.n} (diverged {self.diverged}) | best {self.metric} {self._best()} | "
                f"{self.done_work}/{self.total} member-epochs already trained"
            )
