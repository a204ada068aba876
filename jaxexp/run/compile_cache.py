"""The persistent XLA compilation cache: a re-run or resumed sweep does not recompile.

JAX reads its cache directory once per process (on the first compile after it
is set), so ``enable`` is called at the start of every run and the first
directory wins for the life of the process.
"""

from __future__ import annotations

import collections
import os

import jax

from jaxexp.errors import ConfigError

# Persistent-cache events of this process (JAX's monitoring events), for timings.
EVENTS: collections.Counter = collections.Counter()
_HIT, _MISS = "/jax/compilation_cache/cache_hits", "/jax/compilation_cache/cache_misses"


def _listen(event: str, **_) -> None:
    if event in (_HIT, _MISS):
        EVENTS[event.rsplit("_", 1)[-1]] += 1  # "hits" / "misses"


jax.monitoring.register_event_listener(_listen)


def default_dir() -> str:
    """``$JAXEXP_CACHE_DIR``, else ``$XDG_CACHE_HOME/jaxexp/xla``, else ``~/.cache/jaxexp/xla``."""
    if os.environ.get("JAXEXP_CACHE_DIR"):
        return os.environ["JAXEXP_CACHE_DIR"]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "jaxexp", "xla")


def resolve(setting: str) -> str | None:
    """``engine.compile_cache`` -> a directory, or None when off."""
    setting = setting.strip()
    if setting.lower() in ("off", "none", "false", "0", ""):
        return None
    return default_dir() if setting.lower() == "auto" else os.path.expanduser(setting)


def enable(setting: str) -> str | None:
    """Turns the persistent cache on (unless ``setting`` is off); returns the
    directory in use. A directory already set (``JAX_COMPILATION_CACHE_DIR`` or
    an earlier run in this process) is kept."""
    path = resolve(setting)
    if path is None:
        return jax.config.jax_compilation_cache_dir
    current = jax.config.jax_compilation_cache_dir
    if current:
        return current
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        raise ConfigError(
            f"engine.compile_cache: cannot create {path!r} ({e.strerror}); give a writable directory or 'off'"
        ) from None
    jax.config.update("jax_compilation_cache_dir", path)
    # Cache every program, also the sub-second ones: a resumed sweep then compiles nothing.
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    return path
