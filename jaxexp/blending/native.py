"""A native CPU kernel for the blend's hot loop: ``sums[g] = sum_r |A[r] . B[g]|``.

XLA:CPU runs ``abs(A @ B.T).sum(0)`` with an inner dimension of 3-5 at about a
third of what the FMA units can do (``benchmarks/blend.py``); this C++ loop
(``native_abs_sum.cc``) keeps a block of 32 weightings in registers and costs
J multiply-adds, an abs and an add per (row, weighting). It runs as an XLA FFI
custom call inside the same jitted, sharded kernel (one call per device and
call of rows), so nothing else changes.

It is compiled on first use with the system C++ compiler (``$CXX``, else
``c++``) for this CPU (``-march=native``) into
``$JAXEXP_CACHE_DIR/native`` (else ``~/.cache/jaxexp/native``), keyed by the
source, the compiler, the JAX headers and the CPU's flags, and written
atomically with its sha256 beside it: a library whose bytes no longer match is
rebuilt, and a cache folder that other users can write to (or that belongs to
someone else) is not used (a private temporary one is). Without a compiler, or with ``JAXEXP_BLEND_KERNEL=xla``, the
jitted XLA form is used instead (same results within float32 rounding).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile

import jax

from jaxexp.run import compile_cache

SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "native_abs_sum.cc")
TARGET = "jaxexp_abs_sum"
MAX_J = 8  # columns of A and B the kernel takes (K <= 8 models with the last weight eliminated)
FLAGS = ["-O3", "-march=native", "-std=c++17", "-ffp-contract=fast", "-shared", "-fPIC"]
_STATE: dict = {}


def _cpu_flags() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next((line for line in f if line.startswith(("flags", "Features"))), "")
    except OSError:
        return ""


def _build() -> str:
    cxx = os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")
    if not cxx:
        raise RuntimeError("no C++ compiler ($CXX, c++, g++ or clang++)")
    version = subprocess.run([cxx, "--version"], capture_output=True, text=True, check=True).stdout
    with open(SOURCE, "rb") as f:
        source = f.read()
    key = hashlib.sha256(
        b"\0".join(
            x.encode() if isinstance(x, str) else x
            for x in (source, version, jax.ffi.include_dir(), _cpu_flags(), " ".join(FLAGS))
        )
    ).hexdigest()[:16]
    cache = os.path.join(os.environ.get("JAXEXP_CACHE_DIR") or os.path.dirname(compile_cache.default_dir()), "native")
    os.makedirs(cache, mode=0o700, exist_ok=True)
    if not _private(cache):  # another user could swap the library: build a private one for this process
        cache = _STATE.setdefault("private_dir", tempfile.mkdtemp(prefix="jaxexp-native-"))
    path = os.path.join(cache, f"abs_sum_{key}.so")
    if os.path.exists(path) and _sha256(path) == _read(path + ".sha256"):
        return path
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=cache)
    os.close(fd)
    try:
        cmd = [cxx, *FLAGS, f"-I{jax.ffi.include_dir()}", SOURCE, "-o", tmp]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed: {done.stderr.strip().splitlines()[-1:]}")
        digest = _sha256(tmp)
        with open(tmp + ".sha256", "w") as f:
            f.write(digest)
        # atomic: a concurrent or interrupted build never leaves half a library
        os.replace(tmp + ".sha256", path + ".sha256")
        os.replace(tmp, path)
    finally:
        for leftover in (tmp, tmp + ".sha256"):
            if os.path.exists(leftover):
                os.remove(leftover)
    return path


def _private(directory: str) -> bool:
    """Owned by this user and writable by no one else (a library loaded from it runs as us)."""
    st = os.stat(directory)
    return st.st_uid == os.getuid() and not st.st_mode & 0o022


def _sha256(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def available() -> bool:
    """Builds (once, cached on disk) and registers the kernel; False where it
    cannot be (the reason is in :func:`status`) or ``JAXEXP_BLEND_KERNEL=xla``."""
    if "ok" not in _STATE:
        if os.environ.get("JAXEXP_BLEND_KERNEL", "auto").lower() == "xla":
            _STATE.update(ok=False, why="JAXEXP_BLEND_KERNEL=xla")
        else:
            try:
                path = _build()
                lib = ctypes.cdll.LoadLibrary(path)
                jax.ffi.register_ffi_target(TARGET, jax.ffi.pycapsule(lib.JaxexpAbsSum), platform="cpu")
                _STATE.update(ok=True, why=f"native kernel {os.path.basename(path)}")
            except Exception as e:  # no compiler, no headers, a failed build: the XLA form serves
                _STATE.update(ok=False, why=f"native kernel unavailable ({type(e).__name__}: {e})")
    return _STATE["ok"]


def status() -> str:
    """Which kernel the blend scores MAE/MAPE with, and why."""
    available()
    return _STATE["why"]


def abs_sum(a, b):
    """``sum_r |a[r] . b[g]|`` (G,) float32 for ``a`` (R, J), ``b`` (G, J) float32 (inside jit)."""
    return jax.ffi.ffi_call(TARGET, jax.ShapeDtypeStruct((b.shape[0],), a.dtype))(a, b)
