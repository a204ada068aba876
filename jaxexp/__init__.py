"""jaxexp: a sweep of (config x seed) members trained as one compiled program."""

__version__ = "0.1.0"

# The public API, imported on first use: `import jaxexp` loads nothing heavy and changes
# nothing (JAX sets environment variables when it is imported; scipy and matplotlib load
# only for the commands that need them).
_EXPORTS = {
    "ArchitectureMismatchError": ("jaxexp.run.checkpoint", "ArchitectureMismatchError"),
    "load_member": ("jaxexp.run.checkpoint", "load_member"),
    "TRACED": ("jaxexp.config", "TRACED"),
    "default_config": ("jaxexp.config", "default_config"),
    "TRACE_COUNTS": ("jaxexp.run.engine", "TRACE_COUNTS"),
    "run_members": ("jaxexp.run.runner", "run_members"),
    "sweep": ("jaxexp.api", "sweep"),
    "train_config": ("jaxexp.api", "train_config"),
    "ConfigError": ("jaxexp.errors", "ConfigError"),
    "DataError": ("jaxexp.errors", "DataError"),
    "Conv3x3": ("jaxexp.core.layers", "Conv3x3"),
    "conv3x3": ("jaxexp.core.layers", "conv3x3"),
    "Dropout": ("jaxexp.core.layers", "Dropout"),
    "NNXDropout": ("jaxexp.core.layers", "NNXDropout"),
    "dropout": ("jaxexp.core.layers", "dropout"),
    "fold": ("jaxexp.core.layers", "fold"),
    "members_table": ("jaxexp.run.population", "members_table"),
    "Results": ("jaxexp.run.results", "Results"),
    "Task": ("jaxexp.tasks", "Task"),
    "load_task": ("jaxexp.tasks", "load_task"),
    "make_task": ("jaxexp.tasks", "make_task"),
    "Dataset": ("jaxexp.workload", "Dataset"),
    "Model": ("jaxexp.workload", "Model"),
    "Workload": ("jaxexp.workload", "Workload"),
    "nnx_model": ("jaxexp.workload", "nnx_model"),
    "static": ("jaxexp.workload", "static"),
    "traced": ("jaxexp.workload", "traced"),
    "load_workload": ("jaxexp.workload", "load"),
    "analyze": ("jaxexp.analysis", "analyze_sweep"),
    "blend": ("jaxexp.blending", "blend"),
    "space": ("jaxexp.search.space", None),
    "curriculum": ("jaxexp.core.curriculum", None),
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'jaxexp' has no attribute {name!r}")
    import importlib

    module, attr = _EXPORTS[name]
    value = importlib.import_module(module)
    value = value if attr is None else getattr(value, attr)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
