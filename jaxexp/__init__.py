"""jaxexp: a sweep of (config x seed) members trained as one compiled program."""

import os as _os
import sys as _sys


def _split_cpu_into_devices() -> None:
    """On CPU, one XLA device per core lets a population use every core.

    XLA's CPU backend runs one program on ~1-1.5 cores; sharding the population
    over N host devices keeps all N cores busy. Only done when the user has not
    set the flag and JAX has not started yet; set JAXEXP_NO_CPU_SPLIT=1 to opt out.
    """
    flags = _os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" in flags or _os.environ.get("JAXEXP_NO_CPU_SPLIT"):
        return
    if "jax" in _sys.modules:  # flags are read when the backend starts: too late if it has
        try:
            from jax._src import xla_bridge

            if xla_bridge.backends_are_initialized():
                return
        except Exception:  # private API moved: be conservative
            return
    n = len(_os.sched_getaffinity(0)) if hasattr(_os, "sched_getaffinity") else (_os.cpu_count() or 1)
    if n > 1:
        _os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={n}".strip()


_split_cpu_into_devices()

from jaxexp import space  # noqa: E402
from jaxexp.analysis import analyze_sweep as analyze  # noqa: E402
from jaxexp.blending import blend  # noqa: E402
from jaxexp.checkpoint import ArchitectureMismatchError, load_member  # noqa: E402
from jaxexp.config import TRACED, default_config  # noqa: E402
from jaxexp.engine import TRACE_COUNTS, run_members, sweep, train_config  # noqa: E402
from jaxexp.errors import ConfigError, DataError  # noqa: E402
from jaxexp.layers import Dropout, NNXDropout, dropout, fold  # noqa: E402
from jaxexp.population import members_table  # noqa: E402
from jaxexp.results import Results  # noqa: E402
from jaxexp.tasks import Task, load_task, make_task  # noqa: E402
from jaxexp.workload import Dataset, Model, Workload, nnx_model, static, traced  # noqa: E402
from jaxexp.workload import load as load_workload  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "ArchitectureMismatchError",
    "TRACED",
    "TRACE_COUNTS",
    "ConfigError",
    "DataError",
    "Dataset",
    "Dropout",
    "Model",
    "NNXDropout",
    "Results",
    "Task",
    "analyze",
    "blend",
    "default_config",
    "load_member",
    "load_task",
    "dropout",
    "fold",
    "load_workload",
    "make_task",
    "members_table",
    "nnx_model",
    "run_members",
    "space",
    "static",
    "sweep",
    "traced",
    "train_config",
    "Workload",
]
