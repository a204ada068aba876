"""Architecture records compared: the parameter spec of a pytree, the canonical JSON
and its sha256 fingerprint, and the named differences between two records (what a
refused checkpoint reports). Pure functions, no Orbax."""

from __future__ import annotations

import hashlib
import json

import jax


class ArchitectureMismatchError(ValueError):
    """A checkpoint holds another architecture than the one requested."""


class CheckpointError(ValueError):
    """A checkpoint is missing, unreadable or inconsistent."""


def spec_of(tree) -> dict:
    """{path: [shape, dtype]} of a pytree of arrays (or ShapeDtypeStructs)."""
    flat = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {"/".join(_key_name(k) for k in path): [list(leaf.shape), str(leaf.dtype)] for path, leaf in flat}


def _key_name(k) -> str:
    for attr in ("key", "name", "idx"):  # DictKey, GetAttrKey (NamedTuple fields), SequenceKey
        if hasattr(k, attr):
            return str(getattr(k, attr))
    return str(k)


def _canonical(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=list)


def _fingerprint(rec: dict) -> str:
    core = {k: rec.get(k) for k in ("schema_version", "model", "param_spec")}
    return hashlib.sha256(_canonical(core).encode()).hexdigest()


def check_fingerprint(rec: dict, where: str) -> None:
    """Raises CheckpointError when a record's sha256 fingerprint does not match its
    contents (edited or damaged after it was written)."""
    if rec.get("fingerprint") != _fingerprint(rec):
        raise CheckpointError(
            f"{where}: the architecture record does not match its sha256 fingerprint (edited or damaged after it "
            "was written); restore the original files or use another checkpoint"
        )


def differences(stored: dict, requested: dict) -> list[str]:
    """Every field where two records disagree, as ``name: stored (checkpoint) != requested (requested)``."""
    out = []
    if stored.get("schema_version") != requested.get("schema_version"):
        out.append(
            f"schema_version: {stored.get('schema_version')} (checkpoint) != {requested.get('schema_version')} "
            "(requested)"
        )
    sm, rm = stored.get("model", {}), requested.get("model", {})
    for key in sorted(set(sm) | set(rm)):
        if sm.get(key) != rm.get(key):
            out.append(f"model.{key}: {_show(sm.get(key))} (checkpoint) != {_show(rm.get(key))} (requested)")
    sp, rp = stored.get("param_spec", {}), requested.get("param_spec", {})
    for key in sorted(set(sp) | set(rp)):
        if key not in rp:
            out.append(f"params.{key}: {_show(sp[key])} in the checkpoint, absent from the requested model")
        elif key not in sp:
            out.append(f"params.{key}: absent from the checkpoint, {_show(rp[key])} in the requested model")
        elif sp[key] != rp[key]:
            out.append(f"params.{key}: {_show(sp[key])} (checkpoint) != {_show(rp[key])} (requested)")
    if "population" in stored and "population" in requested:
        s_pop, r_pop = stored["population"], requested["population"]
        if s_pop["size"] != r_pop["size"]:
            out.append(f"population.size: {s_pop['size']} (checkpoint) != {r_pop['size']} (requested)")
        elif s_pop["member_ids"] != r_pop["member_ids"]:
            out.append("population.member_ids: the checkpoint holds other members than requested")
    return out


def _show(v) -> str:
    if isinstance(v, list) and len(v) == 2 and isinstance(v[0], list):
        return f"{tuple(v[0])} {v[1]}"
    return str(tuple(v)) if isinstance(v, list) else repr(v)


def spec_differences(stored: dict, wanted: dict, prefix: str, stored_name: str) -> list[str]:
    """``prefix.path: shape dtype (stored_name) != shape dtype (requested)`` for every
    leaf where two ``spec_of`` dicts differ (missing leaves show as None)."""
    return [
        f"{prefix}.{k}: {_show(stored.get(k))} ({stored_name}) != {_show(wanted.get(k))} (requested)"
        for k in sorted(set(stored) | set(wanted))
        if stored.get(k) != wanted.get(k)
    ]
