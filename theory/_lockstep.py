r"""The CPU eigenvalue kernel: the eigenvalue of largest modulus of many small non-symmetric matrices at once.

LAPACK's ``geev`` (behind ``torch.linalg.eigvals``, numpy and scipy alike) solves one matrix at a time, and at
n = 31 its scalar loops leave the SIMD units idle: about 0.11 ms per matrix, most of fig3's compute. The kernel
(``_lockstep.c``) runs 16 matrices in lockstep across the SIMD lanes, each with its own shifts, deflations and
iteration count: a Householder reduction to Hessenberg form and the Francis double-shift QR of EISPACK's
``hqr``, eigenvalues only. Small windows (nearly one-hot attention splits into many) are queued, dropped where a
bound shows they cannot hold their matrix's largest eigenvalue, and the rest solved 16 at a time in a lockstep of
their own; the last few unfinished lanes of a group are finished one at a time by the same code, so a group does
not wait for its stragglers.

Why C and not numba: the same lockstep algorithm compiled with numba ran 1.2-1.8x faster than LAPACK here
(``benchmarks/lockstep_eig.py --numba``), because numba keeps the lanes' per-step scalars in memory; in C the
lane loops have a compile-time length, the scalars live in registers and every loop vectorises.

It is compiled on first use with the system's C compiler (``$CC``, else ``cc``; ``-O3 -march=native``) into a
cache directory (``$TSE_KERNEL_CACHE``, else ``$XDG_CACHE_HOME/tse-sandbox`` or ``~/.cache/tse-sandbox``; a
per-user temporary directory where that is not writable), keyed
by the source, the flags and the CPU, and loaded with ctypes (which releases the GIL, so the engine's worker
threads run it in parallel). Without a compiler, or with ``TSE_EIGEN=lapack``, :func:`available` is False and
theory uses LAPACK; :func:`status` says which and why. A matrix the QR iteration does not converge on within
``30 max(m, 10)`` iterations per eigenvalue is reported (``ok`` False) and the caller recomputes it with LAPACK.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shlex
import shutil
import stat
import subprocess
import tempfile
import threading
from pathlib import Path

import numpy as np

__all__ = ["LANES", "MAX_ORDER", "available", "status", "top_eigenvalue", "symmetric_max_eigenvalue"]

LANES = 16  # matrices per lockstep group: measured fastest of 8, 16 and 32 on the 2-core machine (AVX-512)
MAX_ORDER = 128  # largest m the kernel takes (its MAXM); larger matrices go to LAPACK
STRAGGLE = 3  # finish a group's lanes one at a time once at most this many are left
SMALL = 8  # queue a window that splits off a lane when it is at most this large (see _lockstep.c's solve_small)

_SOURCE = Path(__file__).with_name("_lockstep.c")
# no FMA contraction by the compiler: the kernel writes its fused multiply-adds out (its FMA macro), so the vector
# and scalar paths round alike and a matrix's result does not depend on the other matrices in its batch (tested).
# The second set where -march=native fails.
_COMMON = ["-O3", "-fno-math-errno", "-ffp-contract=off", "-fcx-fortran-rules"]
_FLAGS = [["-march=native", *_COMMON], _COMMON]
_lock = threading.Lock()
_lib = None
_status = "not loaded"


def _cache_dir() -> Path:
    """The configured cache: ``$TSE_KERNEL_CACHE``, else ``$XDG_CACHE_HOME/tse-sandbox`` (``~/.cache`` by default)."""
    if os.environ.get("TSE_KERNEL_CACHE"):
        return Path(os.environ["TSE_KERNEL_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")) / "tse-sandbox"


def _private_temp_dir() -> Path | None:
    """A per-user temporary directory, for where the cache cannot be written (a read-only home): created 0700 and
    used only if this user owns it and no one else may write to it; else None. The shared temporary directory is
    writable by everyone, so an unchecked directory there would let another user plant a library for us to load."""
    uid = os.getuid() if hasattr(os, "getuid") else None
    d = Path(tempfile.gettempdir()) / f"tse-sandbox-{uid if uid is not None else 'user'}"
    try:
        d.mkdir(mode=0o700, exist_ok=True)
        st = d.lstat()
    except OSError:
        return None
    if not stat.S_ISDIR(st.st_mode) or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH) or (uid is not None
                                                                                     and st.st_uid != uid):
        return None
    return d


def _cpu_id() -> str:
    """What -march=native depends on: the CPU's model and flags (a cache shared by different CPUs stays safe)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
        lines = [ln for ln in text.splitlines() if ln.startswith(("model name", "flags", "Features"))]
        return "\n".join(sorted(set(lines)))
    except OSError:
        return platform.processor() or platform.machine()


# last on every compile command, so that they win over anything in CC: -ffast-math (-ffinite-math-only) removes the
# kernel's NaN checks, and a NaN matrix came back as a finite eigenvalue marked converged. -fno-fast-math also turns
# errno for math functions back on, and GCC then wraps every sqrt in a branch that sets it, which kept the QR
# sweep's reflector loop over the lanes from vectorising (scalar, one lane at a time): -fno-math-errno after it
# (measured: the kernel 0.78-0.80x its time, the same bits; benchmarks/lockstep_eig.py --without-flag=-fno-math-errno)
STRICT_FLAGS = ("-fno-fast-math", "-fno-finite-math-only", "-fno-associative-math", "-fno-math-errno")


def _compile(cc: str, flags: list[str], target: Path, source: Path) -> str | None:
    """Compile ``source`` into the shared library ``target`` (atomically); None on success, else the compiler's
    complaint."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(suffix=".so", dir=target.parent)
    except OSError as exc:
        return f"cannot write {target.parent}: {exc}"
    os.close(fd)
    cmd = [*shlex.split(cc), *flags, *STRICT_FLAGS, "-shared", "-fPIC", "-std=gnu11", "-o", tmp, str(source), "-lm"]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        os.unlink(tmp)
        return str(exc)
    if done.returncode != 0:
        os.unlink(tmp)
        msg = (done.stderr or done.stdout).strip()
        return msg.splitlines()[-1] if msg else f"exit status {done.returncode}"
    os.replace(tmp, target)
    return None


def _load_or_compile(cc: str, flags: list[str], name: str, source: Path) -> tuple[ctypes.CDLL | None, str]:
    """(the library ``name``, '') from the cache, compiled there first if it is not there (or does not load: a file
    damaged from outside, since this module writes atomically); in the private temporary directory only where the
    cache cannot be written. (None, why) otherwise."""
    errors = []
    for where in (_cache_dir, _private_temp_dir):
        d = where()
        if d is None:
            errors.append("no private temporary directory")
            break
        target = d / name
        if target.exists():
            try:
                return ctypes.CDLL(str(target)), ""
            except OSError as exc:
                errors.append(f"{target.name} did not load ({exc})")
                try:
                    target.unlink()  # compiled again below (or, where the cache is read-only, elsewhere)
                except OSError:
                    pass
        err = _compile(cc, flags, target, source)
        if err is None:
            try:
                return ctypes.CDLL(str(target)), ""
            except OSError as exc:
                return None, "; ".join([*errors, str(exc)])
        errors.append(err)
        if not err.startswith("cannot write"):
            break  # a compiler error: another directory will not help
    return None, "; ".join(errors)


def build(source: Path, stem: str, flag_sets: list[list[str]]) -> tuple[ctypes.CDLL | None, str]:
    """(the library compiled from the C ``source`` with the first of ``flag_sets`` that works, how), or
    (None, why not): compiled once into the cache directory, keyed by the source, the flags and the CPU."""
    cc = os.environ.get("CC") or "cc"  # a command line, as make reads it: "ccache gcc" is a compiler too
    words = shlex.split(cc)
    if not words or shutil.which(words[0]) is None:
        return None, f"no C compiler: {cc!r} not found"
    text = source.read_bytes()
    errors = []
    for flags in flag_sets:
        command = " ".join([cc, *flags, *STRICT_FLAGS]).encode()
        key = hashlib.sha256(b"\0".join([text, command, platform.machine().encode(),
                                          _cpu_id().encode()])).hexdigest()[:20]
        lib, err = _load_or_compile(cc, flags, f"{stem}-{key}.so", source)
        if lib is not None:
            return lib, f"{cc} {' '.join(flags)}"
        errors.append(f"{' '.join(flags)}: {err}")
    return None, "did not compile: " + "; ".join(errors)[:300]


def _load():
    global _status
    if os.environ.get("TSE_EIGEN", "").lower() == "lapack":
        _status = "LAPACK (TSE_EIGEN=lapack)"
        return None
    lib, how = build(_SOURCE, "lockstep", [[*flags, f"-DLANES={LANES}"] for flags in _FLAGS])
    if lib is None:
        _status = f"LAPACK (the kernel {how})" if how.startswith("did not") else f"LAPACK ({how})"
        return None
    lib.lockstep_top.argtypes = [ctypes.c_int64, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p,
                                 ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
    lib.lockstep_sym_max.argtypes = [ctypes.c_int64, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
    lib.lockstep_top.restype = lib.lockstep_sym_max.restype = ctypes.c_int
    _status = f"lockstep kernel ({LANES} lanes, {how.replace(f' -DLANES={LANES}', '')})"
    return lib


def _kernel():
    global _lib
    if _lib is None:
        with _lock:
            if _lib is None:
                _lib = _load() or False
    return _lib or None


def available() -> bool:
    """Whether the compiled kernel is in use (False: theory uses LAPACK; :func:`status` says why)."""
    return _kernel() is not None


def status() -> str:
    """Which solver the CPU path of ``theory.slem`` uses for general matrices, and why."""
    _kernel()
    return _status


def _batch(X: np.ndarray):
    """(the loaded library, X as a contiguous float64 ``(b, m, m)`` array): what both entry points check first."""
    lib = _kernel()
    if lib is None:
        raise RuntimeError(f"the lockstep kernel is not available: {_status}")
    X = np.ascontiguousarray(X, dtype=np.float64)
    if X.ndim != 3 or X.shape[1] != X.shape[2] or not 1 <= X.shape[1] <= MAX_ORDER:
        raise ValueError(f"expected (b, m, m) with 1 <= m <= {MAX_ORDER}; got {X.shape}")
    return lib, X


def _done(code: int) -> None:
    if code != 0:
        raise MemoryError(f"the lockstep kernel failed (code {code})")


def top_eigenvalue(C: np.ndarray, *, errors: bool = False):
    """(re, im, ok) of the eigenvalue of largest modulus of each C ``(b, m, m)`` float64, ``1 <= m <= 128``, and
    with ``errors`` a fourth array: its first-order absolute error estimate eps ||C||_F kappa(lambda) (inf where
    the eigenvalue is numerically defective or the iteration failed).

    ``ok`` is False where the QR iteration did not converge (recompute those with LAPACK). Raises RuntimeError
    when the kernel is not available.
    """
    lib, C = _batch(C)
    b, m = C.shape[0], C.shape[1]
    re, im, ok = np.empty(b), np.empty(b), np.empty(b, dtype=np.uint8)
    err = np.empty(b) if errors else None
    if b:
        _done(lib.lockstep_top(b, m, C.ctypes.data, re.ctypes.data, im.ctypes.data, ok.ctypes.data,
                               err.ctypes.data if errors else None, STRAGGLE, SMALL))
    return (re, im, ok.astype(bool), err) if errors else (re, im, ok.astype(bool))


def symmetric_max_eigenvalue(G: np.ndarray) -> np.ndarray:
    """The largest eigenvalue of each symmetric G ``(b, m, m)`` float64, ``1 <= m <= 128``: tridiagonal reduction
    in lockstep, then bisection on Sturm counts, to ~eps ||G|| (G must be symmetric to rounding, as a computed
    ``C^T C`` is: an asymmetry enters the result at its own size).
    Raises RuntimeError when the kernel is not available."""
    lib, G = _batch(G)
    out = np.empty(G.shape[0])
    if G.shape[0]:
        _done(lib.lockstep_sym_max(G.shape[0], G.shape[1], G.ctypes.data, out.ctypes.data))
    return out
