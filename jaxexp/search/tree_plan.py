"""A mutation tree's planned batch (``sweep.plan``) and what a hypothesis asks of a node.

A plan is a small YAML file for the next generation the command runs: entry i
of ``slots`` plans slot i; slots it leaves out (or marks ``auto``) are filled
by the automatic rule::

    hypothesis: a lower lr lets dropout help    # optional: for the automatic slots
    slots:
      - parent: 4                               # node id (left out: the automatic parent)
        mutate: {train.lr: x0.5, model.dropout: 0.2}
        hypothesis: halving lr lets dropout 0.2 help
      - parent: 2
        mutate: {train.weight_decay: /2}
        target: {task.n_train: 2048}            # another config field, inherited by the children
        hypothesis: less weight decay helps on more data
      - parent: 5
        hypothesis: higher dropout helps        # no mutate: the automatic rule, steered by the text
      - auto

A value is absolute (``0.2``, ``adamw``) or a factor of the parent's value:
``x1.5`` (or ``*1.5``), ``/2``. ``mutate`` names parameters of ``sweep.space``
and stays in their ranges; ``target`` names any other config field (a dataset or
workload setting) and sets it for the node and its descendants. ``mutate: {}``
with a ``target`` runs the parent's configuration on the new target.

Hypotheses are read for directions: ``lower X``, ``smaller X``, ``less X``,
``reduce X``, ``X down`` (and ``higher``, ``larger``, ``more``, ``increase``,
``X up``), X a parameter's dotted name, its last part (``lr``, ``weight_decay``
or ``weight decay``) or ``learning rate``.
"""

from __future__ import annotations

import difflib
import math
import os
import re
from typing import Any, NamedTuple

from jaxexp import config as cfgmod
from jaxexp.errors import ConfigError
from jaxexp.search import space as spacemod

VERDICTS = ("supported", "falsified", "inconclusive")
_SLOT_KEYS = ("parent", "mutate", "hypothesis", "target")
_FACTOR = re.compile(r"^\s*([x*×/])\s*(.*?)\s*$")
_NUM = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


class Slot(NamedTuple):
    index: int
    parent: int | None  # None: the automatic parent
    mutate: dict | None  # {param: ("set", value) | ("mul", factor)}; None: the automatic rule
    hypothesis: str
    target: dict  # {config field: ("set", value) | ("mul", factor)}


class Plan(NamedTuple):
    where: str  # the file, for messages
    hypothesis: str  # for the automatic slots
    slots: list  # Slot per planned slot; None for an automatic one


def load(path: str, names: list[str], config, n_slots: int) -> Plan:
    """Reads and checks a plan file (structure, names, factors); one-line ConfigErrors."""
    import yaml

    where = os.path.basename(path) if path else "sweep.plan"
    if not os.path.isfile(path):
        raise ConfigError(f"sweep.plan: no such file {path!r}; give the path of a plan .yaml (see README)")
    try:
        with open(path) as f:
            doc = yaml.safe_load(f)
    except yaml.YAMLError as e:
        raise ConfigError(f"sweep.plan: {where} is not valid YAML ({str(e).splitlines()[0]})") from None
    return parse(doc, names, config, n_slots, where)


def parse(doc: Any, names: list[str], config, n_slots: int, where: str = "plan") -> Plan:
    """A plan from its YAML form (a mapping with ``hypothesis``/``slots``, or the list of slots)."""
    hypothesis = ""
    if isinstance(doc, dict):
        unknown = [k for k in doc if k not in ("hypothesis", "slots")]
        if unknown:
            raise ConfigError(f"{where}: unknown key {unknown[0]!r} (a plan has hypothesis and slots)")
        hypothesis = _text(doc.get("hypothesis"), f"{where}: hypothesis")
        doc = doc.get("slots")
    if not isinstance(doc, list) or not doc:
        raise ConfigError(f"{where}: expected a list of slots (under slots:), got {doc!r}")
    if len(doc) > n_slots:
        raise ConfigError(
            f"{where}: {len(doc)} slots planned but sweep.slots is {n_slots}; "
            f"pass --config.sweep.slots={len(doc)} or plan fewer"
        )
    fields = cfgmod.program_fields(config)
    return Plan(where, hypothesis, [_slot(e, i, names, fields, f"{where} slot {i}") for i, e in enumerate(doc)])


def _slot(entry: Any, i: int, names: list[str], fields: list[str], where: str) -> Slot | None:
    if entry is None or entry == "auto" or entry == {}:
        return None
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: expected a mapping (parent, mutate, hypothesis, target) or 'auto', got {entry!r}")
    unknown = [k for k in entry if k not in _SLOT_KEYS]
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} (use {', '.join(_SLOT_KEYS)})")
    parent = entry.get("parent")
    if parent is not None and (isinstance(parent, bool) or not isinstance(parent, int) or parent < 0):
        raise ConfigError(f"{where}: parent must be a node id (an integer >= 0), got {parent!r}")
    mutate = None
    if "mutate" in entry:
        mutate = _changes(entry["mutate"], f"{where} mutate")
        for name in mutate:
            if name not in names:
                near = difflib.get_close_matches(name, names, n=1)
                hint = f"did you mean '{near[0]}'? " if near else ""
                raise ConfigError(
                    f"{where} mutate: unknown parameter '{name}'; {hint}sweep.space has {', '.join(names)} "
                    "(other config fields go under target:)"
                )
    target = _changes(entry.get("target") or {}, f"{where} target")
    for name in target:
        if name in names:
            raise ConfigError(f"{where} target: {name} is a parameter of sweep.space; put it under mutate:")
        if name not in fields:
            near = difflib.get_close_matches(name, fields, n=1)
            hint = f"; did you mean '{near[0]}'?" if near else ""
            raise ConfigError(f"{where} target: no config field '{name}'{hint}")
    if mutate == {} and not target:
        raise ConfigError(f"{where}: mutate is empty and there is no target; the node would repeat its parent")
    return Slot(i, parent, mutate, _text(entry.get("hypothesis"), f"{where} hypothesis"), target)


def _text(v: Any, where: str) -> str:
    if v is None:
        return ""
    if not isinstance(v, (str, int, float)):
        raise ConfigError(f"{where}: expected text, got {v!r}")
    return str(v).strip()


def _changes(d: Any, where: str) -> dict:
    if not isinstance(d, dict):
        raise ConfigError(f"{where}: expected a mapping of dotted names to values, e.g. {{train.lr: x0.5}}, got {d!r}")
    return {k: spec(v, f"{where} {k}") for k, v in _flat(d).items()}


def _flat(d: dict, prefix: str = "") -> dict:
    """{"train": {"lr": x}} and {"train.lr": x} alike -> {"train.lr": x}."""
    out = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


def spec(v: Any, where: str) -> tuple:
    """("mul", factor) for ``x1.5``/``*1.5``/``/2``, else ("set", value)."""
    if isinstance(v, str):
        m = _FACTOR.match(v)
        if m and (m.group(1) != "x" or _NUM.match(m.group(2))):
            if not _NUM.match(m.group(2)) or not float(m.group(2)) > 0 or not math.isfinite(float(m.group(2))):
                raise ConfigError(f"{where}: bad factor {v!r}; write x1.5, *1.5 or /2 (a number > 0)")
            f = float(m.group(2))
            if f == 1:
                raise ConfigError(f"{where}: factor {v!r} changes nothing")
            return ("mul", 1 / f if m.group(1) == "/" else f)
        if _NUM.match(v.strip()):  # YAML reads 1e-3 (no dot) as text
            return ("set", float(v) if any(c in v for c in ".eE") else int(v))
    return ("set", list(v) if isinstance(v, tuple) else v)


def new_value(change: tuple, old: Any, where: str) -> Any:
    kind, v = change
    if kind == "set":
        return v
    if isinstance(old, bool) or not isinstance(old, (int, float)):
        raise ConfigError(f"{where}: a factor needs a number; the parent's value is {old!r} (give the new value)")
    return old * v


def apply(slot: Slot, by_name: dict, values: dict, target: dict, base, where: str) -> tuple[dict, dict]:
    """(values, target) of a planned node from its parent's; checks each value
    against sweep.space (ranges, choices) and each target field's type."""
    values, target = dict(values), dict(target)
    for name, change in (slot.mutate or {}).items():
        p, old = by_name[name], values[name]
        new = _in_space(p, new_value(change, old, f"{where} mutate {name}"), f"{where} mutate {name}")
        if spacemod.from_cell(p, new) == spacemod.from_cell(p, old) and change[0] == "mul":
            raise ConfigError(f"{where} mutate {name}: {_desc(change)} of {old!r} gives {new!r}, the same value")
        values[name] = new
    for name, change in slot.target.items():
        old = target.get(name, cfgmod.get_path(base, name))
        new = new_value(change, old, f"{where} target {name}")
        if isinstance(old, int) and not isinstance(old, bool) and isinstance(new, float) and change[0] == "mul":
            new = int(round(new))
        try:
            new = cfgmod.get_path(cfgmod.with_values(base, {name: new}), name)
        except ConfigError as e:
            raise ConfigError(f"{where} target {e}") from None
        target[name] = new
    return values, target


def _desc(change: tuple) -> str:
    return f"x{change[1]:g}" if change[0] == "mul" else repr(change[1])


def _in_space(p: spacemod.Param, v: Any, where: str) -> Any:
    if p.kind == "fixed":
        raise ConfigError(f"{where}: {p.name} is fixed in sweep.space ({p.values[0]!r}); give it values or a range")
    if p.kind == "choice":
        match = [x for x in p.values if spacemod.from_cell(p, v) == x or str(x) == str(v)]
        if not match:
            raise ConfigError(f"{where}: {v!r} is not one of sweep.space's values {list(p.values)}")
        return match[0]
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ConfigError(f"{where}: {v!r} is neither a number nor a factor (x1.5, *1.5, /2)")
    if p.kind.startswith("int"):
        v = int(round(v))
    elif p.kind.startswith("q_"):
        v = float(round(p.low + round((v - p.low) / p.q) * p.q, 12))
    else:
        v = float(v)
    if p.kind != "normal" and not p.low - 1e-12 * abs(p.low) <= v <= p.high + 1e-12 * abs(p.high):
        raise ConfigError(f"{where}: {v:g} is outside sweep.space's range [{p.low:g}, {p.high:g}]; widen the range")
    return v


# ----------------------------------------------------------------------------- hypotheses

_DOWN = "lower|lowering|lowered|smaller|less|fewer|reduce|reduced|reducing|decrease|decreased|decreasing|cut|halve"
_UP = "higher|raise|raised|raising|larger|bigger|more|increase|increased|increasing|double|doubled"
_DOWN_AFTER = "down|lower|lowered|smaller|reduced|decreased|halved"
_UP_AFTER = "up|higher|raised|larger|increased|doubled"
_WAYS = (("down", _DOWN, "↓", _DOWN_AFTER), ("up", _UP, "↑", _UP_AFTER))
_SYNONYMS = {"lr": ("learning rate", "learning-rate"), "weight_decay": ("wd",), "batch_size": ("batch",)}


def _aliases(fields: list[str], preferred: list[str]) -> dict[str, list[str]]:
    """Spelling -> the fields it names: the dotted name, its last part (with _ or
    spaces), a few synonyms; a short spelling of a ``preferred`` field (the
    space's) names only the preferred ones."""
    out: dict[str, list[str]] = {}
    for f in fields:
        out.setdefault(f.lower(), []).append(f)
        leaf = f.split(".")[-1].lower()
        for s in {leaf, leaf.replace("_", " "), *_SYNONYMS.get(leaf, ())}:
            out.setdefault(s, []).append(f)
    for s, named in out.items():
        if any(n in preferred for n in named):
            out[s] = [n for n in named if n in preferred]
    return out


def _says(low: str, word: str, before: str, arrow: str, after: str) -> bool:
    """``lower X`` / ``lower the X``, ``X lower`` / ``X down`` / ``X↓`` in ``low``."""
    return bool(
        re.search(rf"\b(?:{before})\s+(?:the\s+)?{word}", low)
        or re.search(rf"{word}\s*(?:{arrow}|\s(?:{after})\b)", low)
    )


def read(text: str, fields: list[str], space_names: list[str]) -> tuple[dict[str, str], list[str]]:
    """({field: "up"|"down"|"both"} the text gives a direction for, [fields it
    names without one]), fields among ``fields`` (``space_names`` first)."""
    low = f" {text.lower()} "
    directed: dict[str, str] = {}
    named: list[str] = []
    for alias, targets in sorted(_aliases(fields, space_names).items(), key=lambda kv: -len(kv[0])):
        a = r"\s+".join(map(re.escape, alias.split()))
        word = rf"(?<![\w.]){a}(?![\w])"
        if not re.search(word, low):
            continue
        found = {d for d, before, arrow, after in _WAYS if _says(low, word, before, arrow, after)}
        d = next(iter(found)) if len(found) == 1 else ("both" if found else None)
        for t in targets:
            if d:
                directed[t] = d if directed.get(t) in (None, d) else "both"
            elif t not in named:
                named.append(t)
    return directed, [n for n in named if n not in directed]


def check_planned(hypothesis: str, moved: dict[str, str], fields: list[str], space_names: list[str]) -> str:
    """The hypothesis test of a planned node: "planned mutation", plus where the
    plan moves a parameter against the direction the hypothesis names, or leaves
    one it names unmoved. ``moved``: {field: "up"|"down"|"set"}."""
    if not hypothesis:
        return "planned mutation"
    directed, _ = read(hypothesis, fields, space_names)
    notes = []
    for f, d in directed.items():
        if d == "both":
            continue
        if f not in moved:
            notes.append(f"the hypothesis says {'lower' if d == 'down' else 'higher'} {f}, the plan leaves it")
        elif moved[f] in ("up", "down") and moved[f] != d:
            notes.append(f"the plan moves {f} {moved[f]}, the hypothesis says {d}")
    return "planned mutation" + "".join(f"; {n}" for n in notes)
