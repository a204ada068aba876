"""Progress of a sweep: one line per segment (members done, epoch, best metric, ETA)."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable

from jaxexp import config as cfgmod


def print_progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class Progress:
    """Members done, epoch, best metric so far and ETA, one line per segment."""

    def __init__(self, name, n_members, total_epoch_work, metric, goal, report: Callable | None):
        self.name, self.n, self.total = name, n_members, max(total_epoch_work, 1)
        self.metric, self.sign = metric, cfgmod.goal_sign(goal)
        self.report = report
        self.done_work = 0
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
        self.finished += finished
        self.diverged += diverged
        if best is not None and (self.best[1] is None or self.sign * best[0] < self.sign * self.best[0]):
            self.best = best
        if self.report is None:
            return
        elapsed = time.perf_counter() - self.start
        eta = train_s / self.done_work * (self.total - self.done_work) if self.done_work else float("nan")
        best_s = f"{self.best[0]:.5g} (member {self.best[1]})" if self.best[1] is not None else "n/a"
        self.report(
            f"[{self.name}] {where} | epoch {epoch}/{max_epoch} | members done {self.finished}/{self.n}"
            f" (diverged {self.diverged}) | best {self.metric} {best_s} | {elapsed:.1f}s elapsed, ETA {eta:.1f}s"
        )
