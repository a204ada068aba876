"""The workload interface: the user's own model, loss, evaluation, data and hyperparameters.

A workload is one Python module (an import path such as ``"mypkg.cnn"`` or a
file ``"path/to/cnn.py"``) that defines::

    HPARAMS = {"width": jaxexp.static(32, low=1), "dropout": jaxexp.traced(0.1, low=0.0, high=0.9)}
    METRIC = ("accuracy", "max")          # default selection metric and goal (optional)

    def data(cfg) -> jaxexp.Dataset       # train/val pytrees, leaves [n, ...]
    def model(cfg, data)                  # a flax.linen Module, jaxexp.nnx_model(...) or jaxexp.Model(init, apply)
    def loss(model, params, batch, hp, rng) -> (scalar, {name: scalar})
    def evaluate(model, params, val, hp) -> {metric: scalar or [groups]}

and optionally ``predict(model, params, split, hp) -> (targets, predictions)``,
``make_batch(train, idx, hp, rng) -> batch`` (default: the rows ``idx`` of every
train leaf), ``inputs(batch) -> tuple`` (the arguments a linen/NNX model is
initialised with; default ``(batch["x"],)``), ``check(cfg)`` (cross-field
checks; raise ``jaxexp.ConfigError``) and ``NAME``.

``cfg`` is a ``ml_collections.ConfigDict`` of the workload's *static*
hyperparameters (dotted names nest: ``cfg.model.hidden``). ``hp`` maps every
*traced* hyperparameter (the workload's and the engine's ``train.*`` ones) to a
scalar of this member, plus ``hp["epoch"]`` (0-based) and ``hp["step"]``
(optimizer steps so far). ``rng`` is a uint32 seed unique to (member, step):
``jaxexp.dropout(x, rate, jaxexp.fold(rng, i))`` draws a mask, and
``jax.random.key(rng)`` gives a JAX key where one is needed.

A hyperparameter's name is its config path: ``--config.width=64`` and a space
``{"width": ...}`` reach it like any built-in field.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import json
import os
import sys
import types
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from jaxexp.dataset import Dataset, check_dataset, n_rows  # noqa: F401 - part of this module's API
from jaxexp.errors import ConfigError

BUILTIN = "jaxexp.workloads.mlp"
# Config paths the engine owns: a workload may not declare these.
RESERVED_TOP = ("name", "seed", "metric", "goal", "workload", "sweep", "engine", "off")
# Keys the engine adds to ``hp`` for the loss.
HP_EXTRA = ("epoch", "step")


class Hparam(NamedTuple):
    """One declared hyperparameter (see ``traced`` and ``static``)."""

    default: Any
    traced: bool
    low: float | None = None
    high: float | None = None
    choices: tuple | None = None
    dtype: str = "float32"  # traced: dtype of the per-member array
    doc: str = ""
    check: Callable[[Any], str | None] | None = None  # value -> "must be ..." or None
    encode: Callable[[Any, Any], np.ndarray] | None = None  # traced vectors: (value, Dataset) -> array
    arch: bool = True  # static: part of the architecture record (changes the parameters)
    skippable: str = ""  # traced: a name put in cfg.off when its hparams are <= 0 in every member of a bucket
    optimizer_arg: str = ""  # traced: the optax argument it feeds (the engine's train.* fields)
    pbt: bool = True  # traced scalar float: population-based training may perturb it


def traced(
    default,
    low=None,
    high=None,
    *,
    dtype: str | None = None,
    doc: str = "",
    check=None,
    encode=None,
    skippable=False,
    pbt: bool = True,
    optimizer_arg: str = "",
):
    """A per-member value fed to the compiled program as an array (never recompiles):
    loss weights, temperature, dropout rates. ``low``/``high``: inclusive bounds.
    ``skippable``: True (or a name shared by several hyperparameters): in a bucket
    where it is (they all are) <= 0 for every member, that name is in the model's
    ``cfg.off`` (the model may skip that work, e.g. a dropout mask). ``pbt=False``:
    population-based training never perturbs it. ``optimizer_arg``: the engine's
    optimizer argument it feeds (``jaxexp.core.train_hparams``)."""
    if dtype is None:  # int only when the default and the bounds are all ints (a weight of 0 is a float)
        ints = all(_is_int(v) for v in (default, low, high) if v is not None)
        dtype = "int32" if ints else "float32"
    return Hparam(
        default,
        True,
        low,
        high,
        None,
        dtype,
        doc,
        check,
        encode,
        skippable=skippable or "",
        optimizer_arg=optimizer_arg,
        pbt=pbt,
    )


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def is_number(v) -> bool:
    """An int or float, not a bool."""
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def static(default, low=None, high=None, *, choices=None, doc: str = "", check=None, arch: bool = True):
    """A structural value (depth, width, encoder type): members that differ in it
    run in different buckets, each compiled once. ``arch=False``: a static value
    that does not change the parameters (data settings), left out of the
    architecture record."""
    return Hparam(
        default, False, low, high, tuple(choices) if choices is not None else None, "", doc, check, None, arch
    )


class Model(NamedTuple):
    """A model as a pair of pure functions: ``init(key, batch) -> params`` and
    ``apply(params, *args, **kwargs)``."""

    init: Callable
    apply: Callable


def _default_inputs(batch):
    if isinstance(batch, dict) and "x" in batch:
        return (batch["x"],)
    raise ConfigError("inputs: the batch has no 'x'; define inputs(batch) -> the model's init arguments")


def build_model(wl: Workload, config, dataset: Dataset, off: tuple[str, ...] = ()) -> Model:
    """The workload's model of a member config, as a ``Model``. ``off``: the
    skippable names that are off in the bucket (``cfg.off``)."""
    static = wl.static_config(config)
    static.off = tuple(off)
    return as_model(wl.model(static, dataset), wl.inputs)


def sample_batch(wl: Workload, dataset: Dataset, hp: dict):
    """One training row as the loss sees it (``make_batch``'s output): what a
    linen/NNX model is initialised with. ``hp``: one member's traced values."""
    import jax

    idx = np.zeros(1, np.int32)
    if wl.make_batch is None:
        return jax.tree.map(lambda a: a[idx], dataset.train)
    return jax.tree.map(np.asarray, wl.make_batch(dataset.train, idx, {**hp, "epoch": 0, "step": 0}, np.uint32(0)))


def abstract_params(model: Model, sample):
    """The parameter tree of ``model`` as ShapeDtypeStructs (``jax.eval_shape``; nothing computed)."""
    import jax

    return jax.eval_shape(model.init, jax.random.key(0), sample)


def as_model(obj, inputs: Callable = _default_inputs) -> Model:
    """A linen Module, a ``jaxexp.Model`` or an ``nnx_model`` as a ``Model``."""
    import flax.linen as nn

    if isinstance(obj, Model):
        return obj
    if isinstance(obj, nn.Module):
        return Model(
            init=lambda key, batch: obj.init(key, *inputs(batch))["params"],
            apply=lambda params, *a, **k: obj.apply({"params": params}, *a, **k),
        )
    if isinstance(obj, _NNX):
        return obj.model()
    raise ConfigError(
        f"model: returned {type(obj).__name__}; return a flax.linen Module, jaxexp.nnx_model(factory) "
        "or jaxexp.Model(init, apply)"
    )


class _NNX(NamedTuple):
    factory: Callable  # rngs -> nnx.Module

    def model(self) -> Model:
        import jax
        from flax import nnx

        # Only nnx.Param variables train and are saved; other state (BatchNorm statistics,
        # rng streams) keeps the values of one instance built here (documented).
        graphdef, abstract_params, rest = nnx.split(self.factory(nnx.Rngs(0)), nnx.Param, ...)
        abstract_params = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), abstract_params)

        def init(key, batch):
            del batch
            return nnx.to_pure_dict(nnx.split(self.factory(nnx.Rngs(key)), nnx.Param, ...)[1])

        def apply(params, *a, **k):
            state = jax.tree.map(lambda x: x, abstract_params)  # a fresh State to fill in place
            nnx.replace_by_pure_dict(state, params)
            return nnx.merge(graphdef, state, rest)(*a, **k)

        return Model(init, apply)


def nnx_model(factory: Callable) -> _NNX:
    """A Flax NNX model: ``factory(rngs) -> nnx.Module`` (its ``nnx.Param``
    variables are the member's parameters; call it like the module)."""
    return _NNX(factory)


class Workload(NamedTuple):
    """A loaded workload module (see the module docstring)."""

    name: str
    spec: str  # what config.workload holds: an import path or a file path
    hparams: dict[str, Hparam]
    metric: tuple[str, str] | None
    data: Callable
    model: Callable
    loss: Callable
    evaluate: Callable
    predict: Callable | None
    make_batch: Callable | None
    inputs: Callable
    check: Callable | None

    @property
    def traced(self) -> dict[str, Hparam]:
        return {k: h for k, h in self.hparams.items() if h.traced}

    @property
    def static(self) -> dict[str, Hparam]:
        return {k: h for k, h in self.hparams.items() if not h.traced}

    def fn_name(self, attr: str) -> str:
        """``module.function`` for messages."""
        return f"{self.name}.{attr}"

    def static_config(self, config):
        """The member config's static hyperparameters as a nested ConfigDict."""
        import ml_collections

        nested: dict = {}
        for path in self.static:
            *parents, leaf = path.split(".")
            node, value = nested, config
            for p in parents:
                node, value = node.setdefault(p, {}), value[p]
            node[leaf] = value[leaf]
        return ml_collections.ConfigDict(nested)

    def dataset(self, config) -> Dataset:
        """The data of a member config (cached by its static hyperparameters)."""
        static = self.static_config(config)
        return _load_data(self.spec, json.dumps(static.to_dict(), sort_keys=True, default=list))


_GIVEN: dict[str, types.ModuleType] = {}  # modules passed as objects, by the spec recorded for them


def _module_of(spec) -> tuple[types.ModuleType, str]:
    if isinstance(spec, types.ModuleType):
        # A module inside a package (it may import its siblings) is recorded by its import
        # path; a single-file module by its file, so that a resume or an export in another
        # process (another working directory) finds it again. This process keeps using
        # the object itself: it is never executed a second time.
        file = getattr(spec, "__file__", None)
        in_package = "." in spec.__name__ and spec.__name__ != "__main__"
        recorded = spec.__name__ if in_package or file is None else os.path.abspath(file)
        _GIVEN[recorded] = spec
        return spec, recorded
    if spec in _GIVEN:
        return _GIVEN[spec], spec
    if not isinstance(spec, str) or not spec:
        raise ConfigError("workload: give an import path (mypkg.cnn) or a .py file")
    if spec.endswith(".py") or os.sep in spec:
        path = os.path.abspath(os.path.expanduser(spec))
        if not os.path.isfile(path):
            raise ConfigError(f"workload: no file {spec}; give an existing .py file or an import path")
        name = "_wl_" + os.path.splitext(os.path.basename(path))[0] + f"_{abs(hash(path)) % 10**8}"
        if name not in sys.modules:
            loader = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(loader)
            sys.modules[name] = module
            try:
                loader.loader.exec_module(module)
            except Exception:
                del sys.modules[name]
                raise
        return sys.modules[name], path
    try:
        return importlib.import_module(spec), spec
    except ModuleNotFoundError as e:
        raise ConfigError(f"workload: cannot import {spec!r} ({e}); give an import path or a .py file") from None


@functools.lru_cache(maxsize=64)
def _load(spec: str) -> Workload:
    module, spec = _module_of(spec)
    return from_module(module, spec)


def of_config(config) -> Workload:
    """The workload a config names (its ``workload`` field)."""
    return load(config.get("workload") or None)


def load(spec=None) -> Workload:
    """The workload named by ``spec`` (an import path, a .py path or a module; None: the built-in MLP)."""
    if spec is None or spec == "":
        spec = BUILTIN
    if isinstance(spec, types.ModuleType):
        return from_module(*_module_of(spec))
    return _load(spec)


def from_module(module: types.ModuleType, spec: str) -> Workload:
    """Reads a workload's attributes; a missing or malformed one is a ConfigError."""
    default = os.path.splitext(os.path.basename(spec))[0] if spec.endswith(".py") else spec.split(".")[-1]
    name = getattr(module, "NAME", None) or default
    missing = [a for a in ("HPARAMS", "data", "model", "loss", "evaluate") if not hasattr(module, a)]
    if missing:
        raise ConfigError(
            f"workload {name}: defines no {', '.join(missing)}; a workload module defines HPARAMS, data(cfg), "
            "model(cfg, data), loss(model, params, batch, hp, rng) and evaluate(model, params, val, hp)"
        )
    if not isinstance(module.HPARAMS, dict):
        raise ConfigError(f"{name}.HPARAMS: must be a dict {{name: jaxexp.traced(...) or jaxexp.static(...)}}")
    hparams = dict(module.HPARAMS)
    for path, h in hparams.items():
        if not isinstance(path, str) or not all(part.isidentifier() for part in path.split(".")):
            raise ConfigError(f"{name}.HPARAMS[{path!r}]: names are identifiers, dotted for sections ('model.width')")
        if not isinstance(h, Hparam):
            raise ConfigError(f"{name}.HPARAMS[{path!r}]: declare it with jaxexp.traced(...) or jaxexp.static(...)")
        if path.split(".")[0] in RESERVED_TOP or path in HP_EXTRA:
            raise ConfigError(f"{name}.HPARAMS[{path!r}]: the name is the engine's; choose another")
        clash = [p for p in hparams if isinstance(p, str) and p.startswith(path + ".")]
        if clash:
            raise ConfigError(f"{name}.HPARAMS: {path!r} is both a value and the section of {clash[0]!r}; rename one")
        if h.skippable is True:
            hparams[path] = h._replace(skippable=path)
    metric = getattr(module, "METRIC", None)
    ok = isinstance(metric, (tuple, list)) and len(metric) == 2 and isinstance(metric[0], str)
    if metric is not None and not (ok and metric[1] in ("min", "max")):
        raise ConfigError(f"{name}.METRIC: must be (metric name, 'min' or 'max'), got {metric!r}")
    return Workload(
        name=name,
        spec=spec,
        hparams=hparams,
        metric=tuple(metric) if metric is not None else None,
        data=module.data,
        model=module.model,
        loss=module.loss,
        evaluate=module.evaluate,
        predict=getattr(module, "predict", None),
        make_batch=getattr(module, "make_batch", None),
        inputs=getattr(module, "inputs", _default_inputs),
        check=getattr(module, "check", None),
    )


@functools.lru_cache(maxsize=16)
def _load_data(spec: str, static_json: str) -> Dataset:
    import ml_collections

    wl = _load(spec)
    data = wl.data(ml_collections.ConfigDict(json.loads(static_json)))
    return check_dataset(data, wl.fn_name("data"))


def check_value(path: str, h: Hparam, value) -> None:
    """Raises ConfigError when ``value`` is outside the declaration's range or choices."""
    if h.choices is not None and value not in h.choices:
        raise ConfigError(f"{path}: must be one of {', '.join(map(repr, h.choices))} (got {value!r})")
    values = value if isinstance(value, tuple) else (value,)  # a vector: every element
    for v in values if (h.low is not None or h.high is not None) else ():
        if is_number(v) and ((h.low is not None and v < h.low) or (h.high is not None and v > h.high)):
            lo = "-inf" if h.low is None else h.low
            hi = "inf" if h.high is None else h.high
            raise ConfigError(f"{path}: must be in [{lo}, {hi}] (got {value!r})")
    if h.check is not None:
        msg = h.check(value)
        if msg:
            raise ConfigError(f"{path}: {msg} (got {value!r})")
