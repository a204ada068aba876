"""In-run rules between segments (host side): successive halving and
population-based training (``jaxexp.search.strategies`` has their arithmetic and
docs), as ``jaxexp.search.protocol.InRunRule``s; their state is rebuilt from
their logs on resume."""

from __future__ import annotations

import math

import numpy as np

from jaxexp import config as cfgmod
from jaxexp.search import space, strategies
from jaxexp.search.protocol import Boundary, Decision, InRunRule


def pbt_overrides(out, ids) -> dict[int, dict]:
    """The hyperparameters population-based training gave this bucket's members
    so far, from its log: {index into the bucket: {field: latest value}}."""
    index = {int(mid): i for i, mid in enumerate(ids)}
    overrides: dict[int, dict] = {}
    for f in out.pbt:
        for row in f[f["member"].isin(ids)].itertuples():
            overrides.setdefault(index[int(row.member)], {})[row.field] = row.new
    return overrides


class Halving(InRunRule):
    """Successive halving at ``sweep.halving_rungs`` (``strategies.rung_cut``)."""

    log = "rungs"

    @classmethod
    def enabled(cls, config) -> bool:
        return bool(config.sweep.halving_rungs)

    @classmethod
    def epochs(cls, config) -> tuple[int, ...]:
        return tuple(config.sweep.halving_rungs)

    def __init__(self, config, part, ids, out, overrides) -> None:
        super().__init__(config, part, ids, out, overrides)
        self.rungs, self.eta = tuple(config.sweep.halving_rungs), config.sweep.halving_eta
        self.sign = cfgmod.goal_sign(config.goal)
        mine = [f[f["member"].isin(ids)] for f in out.rungs]
        # the signed values recorded at each rung, in arrival order
        self.seen = {r: [self.sign * v for f in mine for v in f.loc[f["rung"] == r, "value"]] for r in self.rungs}

    def at_boundary(self, b: Boundary) -> Decision:
        pruned, log = np.zeros(len(b.epoch_now), bool), []
        for r in self.rungs:
            # reached r at this segment's last active epoch, and still running
            rows = np.nonzero(b.active[:, -1] & (b.epoch_now == r) & ~b.finished)[0]
            if not len(rows):
                continue
            arriving = {int(b.ids[k]): float(b.signed[k, -1]) for k in rows}
            keep = strategies.rung_cut(self.seen[r], arriving, self.eta)
            self.seen[r].extend(arriving.values())
            pruned[[k for k in rows if int(b.ids[k]) not in keep]] = True
            log += [
                {"rung": r, "member": m, "value": self.sign * v, "kept": m in keep, "wave": b.wave}
                for m, v in arriving.items()
            ]
        return Decision(pruned=pruned, log=log)


class PBT(InRunRule):
    """Population-based training every ``sweep.pbt_interval`` epochs: each loser
    (``strategies.pbt_pairs``) takes a winner's parameters and optimizer state
    (``src``) and its ``pbt_params`` times a random factor (``overrides``)."""

    log = "pbt"

    @classmethod
    def enabled(cls, config) -> bool:
        return bool(config.sweep.pbt_interval)

    @classmethod
    def epochs(cls, config) -> tuple[int, ...]:
        return (config.sweep.pbt_interval,)

    def __init__(self, config, part, ids, out, overrides) -> None:
        super().__init__(config, part, ids, out, overrides)
        sw = config.sweep
        bounds = {p.name: (p.low, p.high) for p in space.parse(sw.space) if p.kind not in ("fixed", "choice")}
        for field, (lo, hi) in strategies.pbt_fields(config).items():  # else the workload's declared range
            if field not in bounds and (lo is not None or hi is not None):
                bounds[field] = (-math.inf if lo is None else lo, math.inf if hi is None else hi)
        self.bounds = bounds

    def value(self, i: int, field: str):
        """Member ``part[i]``'s current value of ``field``."""
        return self.overrides.get(i, {}).get(field, cfgmod.get_path(self.part[i].config, field))

    def at_boundary(self, b: Boundary) -> Decision:
        sw = self.config.sweep
        rows = np.nonzero(b.active[:, -1] & ~b.finished & (b.epoch_now % sw.pbt_interval == 0))[0]
        rng = np.random.default_rng([self.config.seed, b.wave, 0x9B7])
        pairs = strategies.pbt_pairs({int(k): float(b.signed[k, -1]) for k in rows}, sw.pbt_fraction, rng)
        src, log = np.arange(b.n_slots), []
        for loser, winner in sorted(pairs.items()):
            src[b.real[loser]] = b.real[winner]
            li, wi = int(b.who[loser]), int(b.who[winner])
            for field in sw.pbt_params:
                old, base = self.value(li, field), self.value(wi, field)
                new = strategies.pbt_explore(base, sw.pbt_perturb, rng, self.bounds.get(field), "dropout" in field)
                self.overrides.setdefault(li, {})[field] = new
                log.append(
                    {
                        "wave": b.wave,
                        "epoch": int(b.epoch_now[loser]),
                        "member": int(self.ids[li]),
                        "source": int(self.ids[wi]),
                        "field": field,
                        "old": float(old),
                        "new": new,
                    }
                )
        return Decision(src=src if log else None, log=log)
