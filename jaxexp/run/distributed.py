"""Multi-process (multi-host) runs on JAX's own runtime: ``jax.distributed``.

One command runs in every process (one per host, or several on one box). The
population is sharded over a global ``Mesh`` of every process's devices; each
process runs the same compiled programs on its own devices. Every host-side
decision (which members finished, which slots to refill or drop) must be the
same in every process, so the small per-segment outputs are gathered to all
processes (``to_host``) and every process keeps the same host state; process 0
alone writes files.

With one process every function here is the plain single-process operation.
"""

from __future__ import annotations

import os
import sys
import traceback

import jax
import numpy as np
from jax.experimental import multihost_utils

from jaxexp.errors import ConfigError


def initialize(coordinator_address: str = "", num_processes: int = 0, process_id: int = -1) -> None:
    """Joins a multi-process run; call before anything touches a JAX device.

    Empty arguments are left to JAX, which reads ``JAX_COORDINATOR_ADDRESS`` and
    detects SLURM, Open MPI and Kubernetes jobs. An uncaught error then ends the
    process at once (exit 1): otherwise the other processes would wait in
    their next collective until JAX's heartbeat timeout.
    """
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    try:
        jax.distributed.initialize(
            coordinator_address=coordinator_address or None,
            num_processes=num_processes or None,
            process_id=None if process_id < 0 else process_id,
            heartbeat_timeout_seconds=60,
            shutdown_timeout_seconds=60,
        )
    except (ValueError, RuntimeError) as e:
        raise ConfigError(
            f"--distributed: cannot join the run ({str(e).splitlines()[0]}); give --coordinator_address, "
            "--num_processes and --process_id, or run under SLURM/Open MPI"
        ) from None

    def fail_fast(kind, value, tb):
        traceback.print_exception(kind, value, tb)
        sys.stderr.flush()
        os._exit(1)

    sys.excepthook = fail_fast


def multiprocess() -> bool:
    return jax.process_count() > 1


def is_primary() -> bool:
    """The process that writes files (process 0)."""
    return jax.process_index() == 0


def to_host(tree):
    """A pytree of (possibly sharded) arrays as numpy, whole, in every process."""
    if not multiprocess():
        return jax.device_get(tree)
    return multihost_utils.process_allgather(tree, tiled=True)


def put(tree, sharding):
    """Host numpy arrays (the same in every process) onto ``sharding``.

    Each process builds only its own shards: ``jax.device_put`` onto a global
    sharding would first all-gather the value to check it is the same
    everywhere (measured: ~0.5 s per 16 MB over gloo).
    """

    def one(a):
        a = np.asarray(a)
        return jax.make_array_from_callback(a.shape, sharding, lambda idx: a[idx])

    return jax.tree.map(one, tree)


def any_process(flag: bool) -> bool:
    """True in every process when ``flag`` is True in any (e.g. a signal that
    reached one process: all must stop at the same segment)."""
    if not multiprocess():
        return flag
    return bool(np.any(multihost_utils.process_allgather(np.asarray([flag]))))


def smallest(value: int | None) -> int | None:
    """The smallest ``value`` over the processes (None = no limit), in every process."""
    if not multiprocess():
        return value
    mine = np.asarray([-1 if value is None else value], np.int64)
    every = multihost_utils.process_allgather(mine)
    limited = every[every >= 0]
    return int(limited.min()) if limited.size else None


def barrier(name: str) -> None:
    if multiprocess():
        multihost_utils.sync_global_devices(name)
