"""Space files: W&B-sweep-style YAML search spaces.

::

    method: random            # grid | random | sobol (optional: the config's sweep.method stays)
    metric: {name: val_mse, goal: minimize}   # optional: sets config.metric / config.goal
    num_samples: 50           # optional: sets sweep.num_samples (random/sobol)
    parameters:
      train.lr: {distribution: log_uniform_values, min: 5.0e-05, max: 3.0e-04}
      model.activation: {values: [relu, gelu], probabilities: [0.75, 0.25]}
      train.b1: {distribution: uniform, min: 0.8, max: 0.95, when: {train.optimizer: [adam, adamw]}}
      train:                  # a nested group: names become train.<key>
        parameters:
          epochs: {value: 20}

Parameter specs are those of ``jaxexp.search.space``, read as W&B reads them:
``log_uniform``/``q_log_uniform`` take natural-log exponents (W&B's meaning),
``log_uniform_values``/``q_log_uniform_values`` take the values themselves. ``load`` checks the file
(every error is one line naming the key or parameter and the fix; ``check``
collects them all; ``check(path, standalone=True)`` checks a space of any
project, without its names); ``apply`` puts it into a config; ``resolve``
applies ``config.sweep.space_file`` when it is set.

A space never silently replaces a field given explicitly on the command line
(``--config.FIELD=VALUE``, noted in ``CLI_OVERRIDES`` by ``jaxexp.main``): a
fixed value that differs from the flag, a parameter the space sweeps (the flag
would have no effect; not for ``sweep.strategy=mutation``, whose base node the
flag sets) and a file's ``method``/``num_samples``/``metric`` that differ from
their flags are each a one-line ConfigError naming the field, both values and
the fix (``conflicts``). A conditional parameter is not a conflict: the flag
is its value where the condition is off.
"""

from __future__ import annotations

import os
from typing import Any, NamedTuple

import ml_collections
import numpy as np

from jaxexp import config as cfgmod
from jaxexp.errors import ConfigError
from jaxexp.search import space as spacemod
from jaxexp.search.space.params import _short

TOP_KEYS = ("description", "method", "metric", "num_samples", "parameters")  # description: free text, ignored
# W&B sweep keys about launching runs: a standalone check (``jaxexp validate FILE.yaml``) lists them as not
# checked; applied to a jaxexp config they are unknown keys.
WANDB_KEYS = ("program", "command", "name", "project", "entity", "early_terminate", "run_cap")
WANDB_METHODS = ("bayes",)  # W&B's own search: a standalone check accepts it (jaxexp: sweep.strategy=tpe)
# Config fields set explicitly on the command line (--config.FIELD=VALUE), noted by jaxexp.main: a space
# never silently replaces them (``conflicts``). Empty in the Python API.
CLI_OVERRIDES: frozenset[str] = frozenset()
GOALS = {"minimize": "min", "maximize": "max", "min": "min", "max": "max"}


class SpaceFile(NamedTuple):
    """A checked space file; None where the file leaves the config's value."""

    method: str | None
    metric: str | None
    goal: str | None  # "min" or "max"
    num_samples: int | None
    space: dict  # nested {section: {field: spec}} (dotted names split; ConfigDict-safe)
    path: str = ""
    ignored: tuple = ()  # W&B launch keys a standalone check found (WANDB_KEYS)


def load(path: str, base: ml_collections.ConfigDict | None = None) -> SpaceFile:
    """Reads and checks a space file (against ``base``'s fields: its workload's
    hyperparameters; default the built-in MLP's); raises ConfigError with the first error."""
    spacefile, errors = check(path, base)
    if errors:
        raise ConfigError(errors[0])
    return spacefile


def check(
    path: str, base: ml_collections.ConfigDict | None = None, standalone: bool = False
) -> tuple[SpaceFile | None, list[str]]:
    """(the space file or None, every error found as one line each).

    ``standalone``: the space of any project: structure, ranges, probabilities and
    conditions are checked, names are not (no config to check them against), and
    W&B's launch keys (``WANDB_KEYS``) and ``method: bayes`` are accepted (listed
    in ``ignored``; such a file cannot be applied to a jaxexp config as it is)."""
    import yaml

    if not os.path.isfile(path):
        return None, [
            f"sweep.space_file: no such file {path!r}; give the path of a .yaml space file "
            "(relative paths resolve against the current directory)"
        ]
    try:
        with open(path) as f:
            doc = yaml.load(f, Loader=_unique_key_loader())  # yaml.safe_load, refusing repeated keys
    except UnicodeDecodeError as e:
        return None, [f"{path}: not UTF-8 text (byte {e.start}); save the file as UTF-8"]
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        return None, [f"{path}: not valid YAML ({problem}{where}); fix the file there"]
    if not isinstance(doc, dict):
        return None, [f"{path}: expected a mapping with 'parameters' (and optional method, metric, num_samples)"]
    known = TOP_KEYS + (WANDB_KEYS if standalone else ())
    errors = [f"{path}: unknown top-level key {key!r}; allowed: {', '.join(known)}" for key in doc if key not in known]
    ignored = tuple(key for key in doc if key in WANDB_KEYS and standalone)
    method = doc.get("method")
    if method is not None and method not in spacemod.METHODS + (WANDB_METHODS if standalone else ()):
        errors.append(f"{path}: method: {method!r} is not supported; use one of {', '.join(spacemod.METHODS)}")
    metric, goal = _metric(path, doc.get("metric"), errors)
    num_samples = doc.get("num_samples")
    if num_samples is not None and (
        isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1
    ):
        errors.append(f"{path}: num_samples: must be an integer >= 1, got {num_samples!r}")
    raw = doc.get("parameters")
    if raw is None:
        errors.append(f"{path}: missing 'parameters'; add a mapping of dotted config fields to specs")
        return None, errors
    if not isinstance(raw, dict) or not raw:
        errors.append(f"{path}: parameters: expected a non-empty mapping of dotted config fields to specs")
        return None, errors
    prefix = f"{path}: parameters"
    raw = _wandb_exponents(raw)
    params, param_errors = spacemod.parse_all(raw, prefix)
    errors.extend(param_errors)
    if not standalone:
        errors.extend(check_fields(params, prefix, base))
    if method == "grid":
        for p in params:
            try:
                spacemod.grid_values(p, prefix)
            except ConfigError as e:
                errors.append(str(e))
    if errors:
        return None, errors
    return SpaceFile(method, metric, goal, num_samples, _nested(raw), path, ignored), []


_EXPONENTS = {"log_uniform": "log_uniform_values", "q_log_uniform": "q_log_uniform_values"}


def _wandb_exponents(node):
    """W&B's ``log_uniform``/``q_log_uniform`` in a YAML file take natural-log exponents
    (``min: -9.2`` is e^-9.2 = 1e-4); as values (``*_values``, jaxexp's own spelling)
    they mean the same range. Python spaces (``jaxexp.search.space.log_uniform``) take values."""
    if not isinstance(node, dict):
        return node
    out = {}
    for key, spec in node.items():
        if isinstance(spec, dict) and spec.get("distribution") in _EXPONENTS:
            spec = dict(spec, distribution=_EXPONENTS[spec["distribution"]])
            for bound in ("min", "max"):
                if isinstance(spec.get(bound), (int, float)) and not isinstance(spec.get(bound), bool):
                    spec[bound] = float(np.exp(spec[bound]))
        elif isinstance(spec, dict) and set(spec) == {"parameters"}:  # a nested group, W&B's way
            spec = {"parameters": _wandb_exponents(spec["parameters"])}
        elif isinstance(spec, dict) and not {"distribution", "value", "values", "min", "max"} & set(spec):
            spec = _wandb_exponents(spec)  # a plain nested group
        out[key] = spec
    return out


def _unique_key_loader():
    """PyYAML's SafeLoader, but a key repeated in a mapping is an error (safe_load keeps the
    last one silently: a parameter written twice would lose its first spec)."""
    import yaml

    class Loader(yaml.SafeLoader):
        def construct_mapping(self, node, deep=False):
            seen = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                if not isinstance(key, (str, int, float, bool)):
                    continue  # unhashable keys: left to the checks that follow
                if key in seen:
                    raise yaml.constructor.ConstructorError(None, None, f"key {key!r} given twice", key_node.start_mark)
                seen.add(key)
            return super().construct_mapping(node, deep)

    return Loader


def _metric(path: str, metric: Any, errors: list[str]) -> tuple[str | None, str | None]:
    if metric is None:
        return None, None
    if not isinstance(metric, dict) or "name" not in metric or not isinstance(metric["name"], str):
        errors.append(f"{path}: metric: expected {{name: METRIC, goal: minimize|maximize}}, got {metric!r}")
        return None, None
    extra = sorted(set(metric) - {"name", "goal"}, key=str)  # keys of any type (1, true, ...)
    if extra:
        errors.append(f"{path}: metric: unknown key(s) {extra}; give name and goal")
    goal = metric.get("goal")
    if goal is not None and (not isinstance(goal, str) or goal not in GOALS):  # a list or mapping: unhashable
        errors.append(f"{path}: metric.goal: {goal!r} is not a goal; use minimize or maximize")
        goal = None
    return metric["name"], GOALS.get(goal) if goal is not None else None


def check_fields(params: list[spacemod.Param], prefix: str, base=None) -> list[str]:
    """Errors for names that are not sweepable fields of ``base`` (default: the
    built-in workload's config), and for values whose type the field refuses
    (e.g. a YAML 1.1 float written '1e-5' reads as text)."""
    base = cfgmod.default_config() if base is None else base
    fields = set(cfgmod.program_fields(base))
    errors = []
    for p in params:
        if p.name not in fields:
            try:
                cfgmod.check_param_names(base, [p.name], where=prefix)
            except ConfigError as e:
                errors.append(str(e))
            continue
        default = cfgmod.get_path(base, p.name)
        numeric = isinstance(default, (int, float)) and not isinstance(default, bool)
        texts = [v for v in p.values if isinstance(v, str)] if numeric else []
        if texts:
            fix = ", ".join(spacemod.yaml_float(v) if spacemod._is_float_text(v) else "a number" for v in texts)
            errors.append(
                f"{prefix}.{p.name}: {', '.join(repr(v) for v in texts)} read as text but {p.name} is a number; "
                f"write {fix} (a YAML float needs a dot and a signed exponent)"
            )
    return errors


def _nested(raw: dict) -> dict:
    """The space as nested dicts: dotted names split, W&B groups unwrapped, ``when`` nested."""
    flat = {}

    def walk(node: dict, path: tuple[str, ...]):
        for key, child in node.items():
            sub = path + (str(key),)
            if isinstance(child, dict) and spacemod._is_spec(child):
                spec = dict(child)
                if "when" in spec:
                    spec["when"] = spacemod.nest(spec["when"])
                flat[".".join(sub)] = spec
            elif isinstance(child, dict) and set(child) == {"parameters"}:
                walk(child["parameters"], sub)
            else:
                walk(child, sub)

    walk(raw, ())
    out: dict = {}
    for name, spec in flat.items():
        *parents, leaf = name.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = spec
    return out


def apply(config: ml_collections.ConfigDict, spacefile: SpaceFile) -> ml_collections.ConfigDict:
    """A copy of ``config`` sweeping ``spacefile``: its space replaces ``sweep.space``;
    method, num_samples and metric/goal replace the config's where the file gives them.
    ``sweep.space_file`` is emptied: the copy holds the space itself (config.json,
    resume and export do not need the file). A conflict with an explicit
    command-line flag (``conflicts``) is a ConfigError."""
    found = conflicts(config, spacefile)
    if found:
        raise ConfigError(found[0])
    out = ml_collections.ConfigDict(config.to_dict())
    out.sweep.space = spacefile.space
    out.sweep.space_file = ""
    if spacefile.method is not None:
        out.sweep.method = spacefile.method
    if spacefile.num_samples is not None:
        out.sweep.num_samples = spacefile.num_samples
    if spacefile.metric is not None:
        out.metric = spacefile.metric
    if spacefile.goal is not None:
        out.goal = spacefile.goal
    out.lock()
    return out


def resolve(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """``config`` with ``sweep.space_file`` applied (``config`` itself when it is empty);
    a space (file or ``sweep.space``) that would replace an explicit flag: ConfigError."""
    path = config.sweep.space_file
    if not path:
        found = conflicts(config)
        if found:
            raise ConfigError(found[0])
        return config
    return apply(config, load(path, config))


def conflicts(config: ml_collections.ConfigDict, spacefile: SpaceFile | None = None, explicit=None) -> list[str]:
    """One line per field that ``spacefile`` (default: ``config.sweep.space``) would
    silently take from an explicit flag: ``explicit`` names the fields given on the
    command line (default ``CLI_OVERRIDES``; config values are the flags' values).

    A fixed value that differs from the flag, an unconditional parameter the space
    sweeps (the flag would have no effect; a mutation tree's space only bounds its
    mutations, the flag sets the base node) and a file's method, num_samples,
    metric or goal that differ from their flags. Conditional parameters are not
    conflicts: the flag is their value where the condition is off."""
    explicit = CLI_OVERRIDES if explicit is None else frozenset(explicit)
    if not explicit:
        return []
    source = f"the space file {spacefile.path}" if spacefile is not None else "sweep.space"
    why = "(a space never silently replaces an explicit flag)"
    errors = []
    if spacefile is not None:
        for field, key, value in (
            ("sweep.method", "method", spacefile.method),
            ("sweep.num_samples", "num_samples", spacefile.num_samples),
            ("metric", "metric.name", spacefile.metric),
            ("goal", "metric.goal", spacefile.goal),
        ):
            flag = cfgmod.get_path(config, field)
            if value is not None and field in explicit and flag != value:
                errors.append(
                    f"{field}: --config.{field}={flag} but {source} sets {key}: {value}; "
                    f"drop the flag or the file's {key} {why}"
                )
    try:
        params = spacemod.parse(spacefile.space if spacefile is not None else config.sweep.space)
    except ConfigError:
        return errors  # reported where the space itself is checked
    for p in params:
        if p.name not in explicit or p.when:
            continue
        try:
            value = cfgmod.get_path(config, p.name)
        except (KeyError, AttributeError):
            continue
        flag = f"--config.{p.name}={_short(value)}"
        if p.kind == "fixed" and not spacemod._takes(p.values, value):
            shown = _short(p.values[0])
            errors.append(f"{p.name}: {flag} but {source} fixes {p.name} to {shown}; drop the flag or that value {why}")
        elif p.kind != "fixed" and config.sweep.strategy != "mutation":
            kind, shown, _ = spacemod.describe(p)
            errors.append(
                f"{p.name}: {flag} has no effect: {source} sweeps {p.name} ({kind} {shown}); "
                f"drop the flag or {p.name} from the space {why}"
            )
    return errors
