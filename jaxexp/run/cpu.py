"""One XLA device per CPU core, so a population uses every core.

XLA's CPU backend runs one program on ~1-1.5 cores; sharding the population
over N host devices keeps all N cores busy. The entry points (the CLI,
``jaxexp.sweep`` / ``run_members``, ``jaxexp.blend``) call ``use_all_cores``
before JAX's backend starts; ``import jaxexp`` itself changes nothing.
"""

from __future__ import annotations

import os
import sys


def use_all_cores() -> None:
    """Sets ``--xla_force_host_platform_device_count`` to the usable cores, unless
    the user set it, ``JAXEXP_NO_CPU_SPLIT=1``, or JAX's backend already started
    (the flag is read then: too late)."""
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" in flags or os.environ.get("JAXEXP_NO_CPU_SPLIT"):
        return
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if n < 2:
        return
    if "jax" in sys.modules:
        try:
            from jax._src import xla_bridge

            started = xla_bridge.backends_are_initialized()
        except Exception:  # private API moved: be conservative
            return
        if started:
            _too_late(n)
            return
    os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={n}".strip()


_WARNED: list = []


def _too_late(n: int) -> None:
    """One notice per process when JAX's CPU backend already runs on one device."""
    import jax

    if _WARNED or jax.default_backend() != "cpu" or jax.local_device_count() > 1:
        return
    _WARNED.append(True)
    print(
        f"jaxexp: note: JAX started before jaxexp could split the CPU into {n} devices, so a sweep uses ~1 core; "
        f"run jaxexp before other JAX work, or set XLA_FLAGS=--xla_force_host_platform_device_count={n}",
        file=sys.stderr,
    )
