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
    if "jax" in sys.modules:
        try:
            from jax._src import xla_bridge

            if xla_bridge.backends_are_initialized():
                return
        except Exception:  # private API moved: be conservative
            return
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if n > 1:
        os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={n}".strip()
