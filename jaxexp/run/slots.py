"""The slot queue of one bucket (host side): which member trains in which
resident slot, who is done, who is queued; saved in every checkpoint and
restored on resume (``SlotQueue.position`` / ``SlotQueue.restore``)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd


@dataclasses.dataclass
class SlotQueue:
    """``slot[s]``: the index into the bucket's members of the member in slot s, or
    -1 (no member); ``queued``: the first member not started yet."""

    slot: np.ndarray  # [slots] int
    done: np.ndarray  # [members] bool: finished (done, early-stopped, diverged, pruned)
    queued: int
    limit: np.ndarray  # [members] the epoch each member may train to (its rung once pruned)
    wave: int  # segments run in this bucket

    @classmethod
    def fresh(cls, size: int, epochs: np.ndarray) -> SlotQueue:
        return cls(np.full(size, -1), np.zeros(len(epochs), bool), 0, epochs.copy(), 0)

    @classmethod
    def restore(cls, host: dict, epochs: np.ndarray) -> SlotQueue:
        """From a checkpoint's position (``position``)."""
        return cls(
            np.asarray(host["slot"]),
            np.asarray(host["done"], bool),
            int(host["queued"]),
            np.asarray(host["limit"], epochs.dtype),
            int(host["wave"]),
        )

    def position(self, base: dict) -> dict:
        """What a checkpoint records of the queue (plus ``base``: bucket index)."""
        return {
            **base,
            "in_bucket": not self.done.all(),
            "slot": self.slot.tolist(),
            "done": self.done.tolist(),
            "queued": self.queued,
            "limit": self.limit.tolist(),
            "wave": self.wave,
        }

    @property
    def empty(self) -> bool:
        """Nothing left to start."""
        return self.queued == len(self.done)

    def refill(self) -> np.ndarray:
        """Puts queued members into free slots (empty, or holding a finished
        member); returns the slots filled."""
        free = np.nonzero((self.slot < 0) | self.done[np.maximum(self.slot, 0)])[0]
        fill = free[: len(self.done) - self.queued]
        self.slot[fill] = np.arange(self.queued, self.queued + len(fill))
        self.queued += len(fill)
        return fill

    def running(self) -> tuple[np.ndarray, np.ndarray]:
        """(slots holding a member, those members' indices)."""
        real = np.nonzero(self.slot >= 0)[0]
        return real, self.slot[real]

    def compact(self, alive: np.ndarray, size: int) -> np.ndarray:
        """Keeps slots ``alive`` in a queue of ``size`` slots (padded with copies of
        the first, empty); returns the old slot of each new one."""
        keep = np.concatenate([alive, np.full(size - len(alive), alive[0])])
        self.slot = np.concatenate([self.slot[alive], np.full(size - len(alive), -1)])
        return keep


def history_frames(m: dict, member_ids, metric_names, group_names, groups) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """A segment's metrics (``m``: name -> [n, E], rows of running members) as
    history rows (member, epoch, metrics, lr, diverged) and, for per-group
    metrics, group-history rows (member, epoch, group, metrics)."""
    mi, ei = np.nonzero(m["active"])
    block = {"member": member_ids[mi], "epoch": m["epoch"][mi, ei].astype(np.int64) + 1}
    for name in (*metric_names, "lr"):
        block[name] = m[name][mi, ei].astype(np.float64)
    block["diverged"] = m["diverged"][mi, ei]
    if not group_names:
        return pd.DataFrame(block), None
    g = len(groups)
    gblock = {
        "member": np.repeat(block["member"], g),
        "epoch": np.repeat(block["epoch"], g),
        "group": np.tile(np.asarray(groups), len(mi)),
    }
    for name in group_names:
        gblock[name] = m[f"group_{name}"][mi, ei].reshape(-1).astype(np.float64)
    return pd.DataFrame(block), pd.DataFrame(gblock)


def best_of(m: dict, member_ids, metric: str, sign: float) -> tuple[float, int] | None:
    """(metric, member id) of the segment's best epoch of a member not diverged; None if none."""
    vals = np.where(m["active"] & ~m["diverged"], sign * m[metric], np.inf)
    if not np.isfinite(vals).any():
        return None
    i, j = np.unravel_index(np.argmin(vals), vals.shape)
    return float(m[metric][i, j]), int(member_ids[i])
