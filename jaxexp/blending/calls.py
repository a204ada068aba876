"""What every blend scoring kernel shares: block sizes, the post-processing of the
blend, and the loop of device calls over blocks of rows x weightings."""

from __future__ import annotations

import dataclasses
import math
import time

import jax
import numpy as np

MEMORY_BUDGET = 256 << 20  # bytes of rows replicated over the devices per call
ROW_BLOCK = 512  # rows per scan step: a 512 x 512 float32 block (1 MiB) stays in L2
G_BLOCK = 512  # weightings per lax.map step on one device (tuned on a 2-core EPYC)


@dataclasses.dataclass(frozen=True)
class Postprocess:
    """What the pipeline does to the blended prediction before scoring:
    clip to [clip_lo, clip_hi] (None = open), then round to a multiple of
    ``round_to`` (0 = no rounding)."""

    clip_lo: float | None = None
    clip_hi: float | None = None
    round_to: float = 0.0

    @property
    def active(self) -> bool:
        return self.clip_lo is not None or self.clip_hi is not None or self.round_to > 0

    def apply(self, pred, xp=np):
        if self.clip_lo is not None or self.clip_hi is not None:
            pred = xp.clip(pred, self.clip_lo, self.clip_hi)
        if self.round_to > 0:
            pred = xp.round(pred / self.round_to) * self.round_to
        return pred

    def describe(self) -> str:
        parts = []
        if self.clip_lo is not None or self.clip_hi is not None:
            parts.append(
                f"clipped to [{self.clip_lo if self.clip_lo is not None else '-inf'}, "
                f"{self.clip_hi if self.clip_hi is not None else 'inf'}]"
            )
        if self.round_to > 0:
            parts.append(f"rounded to multiples of {self.round_to:g}")
        return " and ".join(parts) or "none"


def _next_pow2(x: int) -> int:
    return 1 << max(0, math.ceil(math.log2(max(1, x))))


def run_calls(kernel, rows: tuple, b: np.ndarray, r_call: int, g_call: int, progress, what: str) -> np.ndarray:
    """Sums (G_pad,) float64 of ``kernel = (fn, rep, shard)`` over calls of
    ``r_call`` rows (of each array in ``rows``, replicated) x ``g_call``
    weightings (of ``b``, sharded), accumulated on the host; progress every 2 s."""
    fn, rep, shard = kernel
    n_pad, g_pad = len(rows[0]), len(b)
    out = np.zeros(g_pad)
    t0, calls, done, shown = time.perf_counter(), (g_pad // g_call) * (n_pad // r_call), 0, time.perf_counter()
    b_chunks = [jax.device_put(b[c : c + g_call], shard) for c in range(0, g_pad, g_call)]
    for i in range(0, n_pad, r_call):  # one block of rows on the devices at a time
        block = tuple(jax.device_put(x[i : i + r_call], rep) for x in rows)
        parts = [fn(*block, bc) for bc in b_chunks]  # dispatched asynchronously, collected below
        for c, part in enumerate(parts):
            out[c * g_call : (c + 1) * g_call] += np.asarray(part, np.float64)
            done += 1
            if progress is not None and time.perf_counter() - shown > 2.0:
                shown, el = time.perf_counter(), time.perf_counter() - t0
                progress(
                    f"[blend] {done}/{calls} calls ({what}) | {el:.1f}s elapsed, ETA {el / done * (calls - done):.1f}s"
                )
        del block, parts
    return out
