"""In-run strategies between segments (host side): successive halving and
population-based training, their decisions rebuilt from the logs on resume."""

from __future__ import annotations

import math

import numpy as np

from jaxexp import config as cfgmod
from jaxexp import space, strategies


def strategy_records(out, ids, rungs, sign: float) -> tuple[dict, dict]:
    """This bucket's strategy state, rebuilt from the logs (empty on a fresh run):
    the signed metric values recorded at each rung in arrival order, and the
    hyperparameters population-based training gave members ({index into the
    bucket: {field: latest value}})."""
    mine = [f[f["member"].isin(ids)] for f in out.rungs]
    seen = {r: [sign * v for f in mine for v in f.loc[f["rung"] == r, "value"]] for r in rungs}
    index = {int(mid): i for i, mid in enumerate(ids)}
    overrides: dict[int, dict] = {}
    for f in out.pbt:
        for row in f[f["member"].isin(ids)].itertuples():
            overrides.setdefault(index[int(row.member)], {})[row.field] = row.new
    return seen, overrides


def halving(rungs, eta, seen: dict, epoch_now, active, signed, finished, member_ids) -> tuple[np.ndarray, list]:
    """Members (rows of this segment's outputs) pruned at a rung they reached in
    this segment (``jaxexp.strategies.rung_cut``), and the decisions as log rows
    (rung, member, signed value, kept); records the values in ``seen``."""
    pruned, log = np.zeros(len(epoch_now), bool), []
    for r in rungs:
        # reached r at this segment's last active epoch, and still running
        rows = np.nonzero(active[:, -1] & (epoch_now == r) & ~finished)[0]
        if not len(rows):
            continue
        arriving = {int(member_ids[k]): float(signed[k, -1]) for k in rows}
        keep = strategies.rung_cut(seen[r], arriving, eta)
        seen[r].extend(arriving.values())
        pruned[[k for k in rows if int(member_ids[k]) not in keep]] = True
        log += [{"rung": r, "member": mid, "value": v, "kept": mid in keep} for mid, v in arriving.items()]
    return pruned, log


def pbt(config, part, real, who, ids, overrides, n_slots, epoch_now, active, signed, finished, wave):
    """One exploit/explore step of population-based training at this segment's end.

    Candidates: running members (rows of this segment's outputs; ``real[k]`` is
    row k's slot, ``who[k]`` its index into ``part``) at a multiple of
    ``sweep.pbt_interval``. Returns (src, log): ``src[slot]`` is the slot whose
    parameters and optimizer state ``slot`` takes (itself if none) and the log
    rows; ``overrides`` gets the losers' new hyperparameters.
    """
    sw = config.sweep
    bounds = {p.name: (p.low, p.high) for p in space.parse(sw.space) if p.kind not in ("fixed", "choice")}
    for field, (lo, hi) in strategies.pbt_fields(config).items():  # else the workload's declared range
        if field not in bounds and (lo is not None or hi is not None):
            bounds[field] = (-math.inf if lo is None else lo, math.inf if hi is None else hi)
    rows = np.nonzero(active[:, -1] & ~finished & (epoch_now % sw.pbt_interval == 0))[0]
    rng = np.random.default_rng([config.seed, wave, 0x9B7])
    pairs = strategies.pbt_pairs({int(k): float(signed[k, -1]) for k in rows}, sw.pbt_fraction, rng)
    src, log = np.arange(n_slots), []
    for loser, winner in sorted(pairs.items()):
        src[real[loser]] = real[winner]
        li, wi = int(who[loser]), int(who[winner])
        for field in sw.pbt_params:
            old = overrides.get(li, {}).get(field, cfgmod.get_path(part[li].config, field))
            base = overrides.get(wi, {}).get(field, cfgmod.get_path(part[wi].config, field))
            new = strategies.pbt_explore(base, sw.pbt_perturb, rng, bounds.get(field), "dropout" in field)
            overrides.setdefault(li, {})[field] = new
            log.append(
                {
                    "wave": wave,
                    "epoch": int(epoch_now[loser]),
                    "member": int(ids[li]),
                    "source": int(ids[wi]),
                    "field": field,
                    "old": float(old),
                    "new": new,
                }
            )
    return src, log
