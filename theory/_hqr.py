r"""The GPU eigenvalue kernels: one warp per matrix, the matrix in the block's shared memory (``_hqr.cu``).

torch >= 2.10 computes batched ``eigvals`` on CUDA by one cuSOLVER geev call per matrix (measured on an H100:
574 matrices per second at n = 31, twelve times slower than one CPU thread), and its batched ``eigvalsh`` of
small matrices (a divide-and-conquer solver) took 29% of a fig3 step's GPU time there, 11x the kernel below.
The two kernels replace them for matrices up to :data:`MAX_ORDER`:

- :func:`top_eigenvalue_cuda`: the eigenvalue of largest modulus of non-symmetric matrices (Householder to
  Hessenberg, then EISPACK's Francis double-shift QR with deflation and exceptional shifts), and with ``errors``
  its first-order error estimate (a third kernel, on the Hessenberg form the first saves: an LU of
  ``H - sigma I`` in O(m^2), the CPU kernel's estimate, where torch's batched complex LU of C took 1.3x as long for
  the eigenvalue and its estimate together);
- :func:`symmetric_max_cuda`: the largest eigenvalue of symmetric matrices (the same reduction, tridiagonal for
  them, then multisection on Sturm counts).

Each step's scalars are computed by all the matrix's lanes alike and its O(m) row and column updates are spread
over them: 32 lanes per matrix, the fastest layout measured (:data:`LANES`; 16 or 8 lanes, several matrices to a
warp, give bitwise the same results and ran 0.6-0.95x on an H100: the kernel is bound by issuing instructions,
and fewer warps leave it waiting on latency; ``benchmarks/bench_hqr_lanes.py``). Shared memory: one 31 x 31
matrix takes 8.2 KiB (the general and symmetric kernels) or 17.2 KiB (the error estimate); a block's need beyond
the default 48 KiB (the error estimate at m >= 54) is opted into at launch.
The CUDA source is compiled at run time by NVRTC through CuPy (``pip install -e ".[gpu]"``; compiled once per
process, cached on disk by CuPy); without CuPy a GPU run uses torch's solvers and says so
(:func:`cuda_status`). The same source compiles as C for the CPU (``-DHQR_CPU``), which is how the tests check
its algorithm against LAPACK on machines with no GPU (:func:`cpu_top`, :func:`cpu_symmetric_max`). A matrix the
QR iteration does not converge on within ``30 max(m, 10)`` iterations per eigenvalue is reported, and the caller
recomputes it with LAPACK (:func:`count_fallbacks`).

Why not numba's CUDA target (the first version of this kernel, one thread per matrix): numba-cuda is in
maintenance mode and fails on numpy >= 2.5 (``np.row_stack``), and one thread per matrix kept the matrix in
local memory: 0.8 million matrices per second on an H100, where a warp per matrix in shared memory runs 2.5
million (README, Performance).
"""

from __future__ import annotations

import ctypes
import math
import threading
from pathlib import Path

import numpy as np

from . import _lockstep
from ._similarity import ldexp

__all__ = ["MAX_ORDER", "cuda_available", "cuda_status", "takes", "top_eigenvalue_cuda", "symmetric_max_cuda", "cpu_top",
           "cpu_symmetric_max", "count_fallbacks", "fallbacks"]

MAX_ORDER = 64  # largest m the GPU kernels take (one matrix's shared memory: 34 KiB, 70 KiB for its error estimate)
SHARED_BUDGET = 48 * 1024  # bytes of shared memory per block (the default limit without an opt-in)
LANE_CHOICES = (32, 16, 8)  # lanes that may share one matrix (the source's LANES)
LANES = 32  # lanes per matrix of the kernels theory uses
_SOURCE = Path(__file__).with_name("_hqr.cu")

_FALLBACKS = 0  # matrices a kernel did not converge on, recomputed with LAPACK (this process)
_FALLBACK_LOCK = threading.Lock()  # the engine's workers are threads
_THREAD = threading.local()  # the same count per thread: a block runs in one thread, other threads run others


def count_fallbacks(k: int) -> None:
    """Record ``k`` more matrices handed back to LAPACK (in this process and in the calling thread)."""
    global _FALLBACKS
    with _FALLBACK_LOCK:
        _FALLBACKS += int(k)
    _THREAD.count = getattr(_THREAD, "count", 0) + int(k)


def fallbacks(*, thread: bool = False) -> int:
    """Matrices handed back to LAPACK so far in this process, or with ``thread`` in the calling thread only: the
    difference over a computation that runs in one thread (one block of the engine's) is exactly its own, whatever
    the other threads do meanwhile."""
    return getattr(_THREAD, "count", 0) if thread else _FALLBACKS


def warp_doubles(m: int) -> int:
    """Doubles of shared memory one matrix takes (``warp_doubles`` in the source)."""
    return m * (m | 1) + 2 * m + 32


# --- the CPU build of the source: the algorithm, checked against LAPACK where there is no GPU ---------------

_cpu_lib = None
_cpu_lock = threading.Lock()


def _cpu():
    global _cpu_lib
    with _cpu_lock:
        if _cpu_lib is None:
            lib, how = _lockstep.build(_SOURCE, "hqr-cpu", [["-x", "c", "-O2", "-DHQR_CPU", "-ffp-contract=off"]])
            if lib is None:
                raise RuntimeError(f"the CPU build of {_SOURCE.name} is not available: {how}")
            lib.hqr_top_cpu.argtypes = [ctypes.c_int64, ctypes.c_int] + [ctypes.c_void_p] * 5
            lib.sym_max_cpu.argtypes = [ctypes.c_int64, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
            lib.hqr_top_cpu.restype = lib.sym_max_cpu.restype = ctypes.c_int
            _cpu_lib = lib
    return _cpu_lib


def _square(X) -> np.ndarray:
    X = np.ascontiguousarray(X, dtype=np.float64)
    if X.ndim != 3 or X.shape[1] != X.shape[2] or X.shape[1] < 1:
        raise ValueError(f"expected (b, m, m) with m >= 1; got {X.shape}")
    return X


def cpu_top(C, *, errors: bool = False) -> tuple[np.ndarray, ...]:
    """(re, im, converged) of the eigenvalue of largest modulus of each C ``(b, m, m)``, and with ``errors`` its
    first-order error estimate: the GPU kernels' code compiled for the CPU, one matrix at a time (for tests)."""
    C = _square(C)
    b, m = C.shape[:2]
    re, im, ok = np.empty(b), np.empty(b), np.empty(b, dtype=np.uint8)
    err = np.empty(b) if errors else None
    if b and _cpu().hqr_top_cpu(b, m, C.ctypes.data, re.ctypes.data, im.ctypes.data, ok.ctypes.data,
                                err.ctypes.data if errors else None):
        raise MemoryError("hqr_top_cpu failed")
    return (re, im, ok.astype(bool)) + ((err,) if errors else ())


def cpu_symmetric_max(G) -> np.ndarray:
    """The largest eigenvalue of each symmetric G ``(b, m, m)`` by the GPU kernel's code compiled for the CPU."""
    G = _square(G)
    out = np.empty(G.shape[0])
    if G.shape[0] and _cpu().sym_max_cpu(G.shape[0], G.shape[1], G.ctypes.data, out.ctypes.data):
        raise MemoryError("sym_max_cpu failed")
    return out


# --- the CUDA build, through CuPy ---------------------------------------------------------------------------

_KERNELS = ("top_kernel", "sym_max_kernel", "error_kernel")
_gpu: dict[int, tuple | bool] = {}  # lanes per matrix -> the _KERNELS, compiled, or False: not built
_gpu_status: dict[int, str] = {}  # lanes per matrix -> which solver a CUDA tensor goes through, and why
_gpu_lock = threading.Lock()


def _load_gpu(lanes: int = LANES):
    if lanes not in LANE_CHOICES:
        raise ValueError(f"lanes per matrix must be one of {LANE_CHOICES}; got {lanes!r}")
    with _gpu_lock:
        if lanes not in _gpu:  # recorded with its status, or not at all (an unexpected error: tried again next call)
            _gpu[lanes], _gpu_status[lanes] = _build_gpu(lanes)
        return _gpu[lanes] or None


def _build_gpu(lanes: int) -> tuple[tuple | bool, str]:
    """(the _KERNELS compiled for ``lanes`` lanes per matrix, how), or (False, why not)."""
    import torch

    if not torch.cuda.is_available():
        return False, "no CUDA device"
    try:
        import cupy
    except ImportError as exc:
        return False, f"torch's solvers (CuPy is not installed: {exc}; pip install -e \".[gpu]\")"
    try:
        code, options = _SOURCE.read_text(), ("--std=c++17", f"-DLANES={lanes}")
        kernels = tuple(cupy.RawKernel(code, name, options=options) for name in _KERNELS)
        for kernel in kernels:
            kernel.compile()
    except Exception as exc:  # a CUDA/NVRTC error: say why, use torch's solvers
        return False, f"torch's solvers (the CUDA kernels did not build: {str(exc)[:300]})"
    return kernels, f"warp-per-matrix CUDA kernels (theory/_hqr.cu, CuPy {cupy.__version__})"


def cuda_available() -> bool:
    """Whether the GPU kernels are in use on CUDA tensors (False: torch's solvers; :func:`cuda_status` says why)."""
    return _load_gpu() is not None


def takes(X) -> bool:
    """Whether theory sends ``X`` ``(..., m, m)`` to the GPU kernels: a CUDA float64 tensor, 1 <= m <= 64, with the
    kernels built."""
    import torch

    return X.is_cuda and X.dtype == torch.float64 and 1 <= X.shape[-1] <= MAX_ORDER and cuda_available()


def cuda_status() -> str:
    """Which solver a CUDA tensor's eigenvalues go through, and why."""
    _load_gpu()
    return _gpu_status[LANES]


def error_doubles(m: int) -> int:
    """Doubles of shared memory one matrix's error estimate takes (``error_doubles`` in the source)."""
    return 2 * m * (m | 1) + 9 * m


def per_block(m: int, lanes: int = LANES, shared_budget: int = SHARED_BUDGET, doubles: int | None = None) -> int:
    """Matrices per block, each taking ``doubles`` of shared memory (default :func:`warp_doubles`): as many as
    ``shared_budget`` bytes hold, at most 16 warps' worth (the registers of 512 threads at up to 128 each fit a
    multiprocessor), and a whole number of warps where at least one warp's fit."""
    group = 32 // lanes
    fit = max(1, min(16 * group, shared_budget // (8 * (warp_doubles(m) if doubles is None else doubles))))
    return fit - fit % group if fit >= group else fit


def _launch(kernel, X, args, lanes: int, shared_budget: int, doubles: int | None = None) -> None:
    """``lanes`` lanes per matrix of the contiguous CUDA float64 X ``(b, m, m)``, on torch's current stream: the
    kernel's arguments are (b, m, X, *args) (tensors, numpy scalars); ``doubles``: as :func:`per_block`."""
    import cupy
    import torch

    b, m = X.shape[0], X.shape[-1]
    if not b:
        return
    count = per_block(m, lanes, shared_budget, doubles)
    blocks = (b + count - 1) // count
    shared = 8 * (warp_doubles(m) if doubles is None else doubles) * count
    stream = torch.cuda.current_stream(X.device)
    try:  # CuPy >= 14 takes torch's stream through the CUDA stream protocol
        stream = cupy.cuda.Stream.from_external(stream)
    except (AttributeError, TypeError, ValueError):
        stream = cupy.cuda.ExternalStream(stream.cuda_stream)
    with cupy.cuda.Device(X.device.index), stream:
        if shared > SHARED_BUDGET and kernel.max_dynamic_shared_size_bytes < shared:  # an opt-in past 48 KB
            kernel.max_dynamic_shared_size_bytes = shared
        args = [np.int64(b), np.int32(m), *(cupy.from_dlpack(t) if isinstance(t, torch.Tensor) else t
                                            for t in (X, *args))]
        kernel((blocks,), (lanes * count,), tuple(args), shared_mem=shared)


def _cuda_batch(X, lanes: int):
    import torch

    if not X.is_cuda or X.dtype != torch.float64 or X.ndim != 3 or X.shape[1] != X.shape[2]:
        raise ValueError(f"expected a CUDA float64 (b, m, m) tensor; got {X.dtype} {tuple(X.shape)} on {X.device}")
    if not 1 <= X.shape[-1] <= MAX_ORDER:
        raise ValueError(f"the GPU kernels take 1 <= m <= {MAX_ORDER}; got {tuple(X.shape)}")
    kernels = _load_gpu(lanes)
    if kernels is None:
        raise RuntimeError(f"the GPU kernels ({lanes} lanes per matrix) are not available: {_gpu_status[lanes]}")
    return kernels, X.contiguous()


def top_eigenvalue_cuda(C, *, errors: bool = False, lanes: int = LANES, shared_budget: int = SHARED_BUDGET):
    """(re, im, converged) of the eigenvalue of largest modulus of each C, a CUDA float64 ``(b, m, m)`` tensor,
    ``m <= 64``: CUDA tensors ``(b,)``, no host round trip; with ``errors`` also each eigenvalue's first-order
    absolute error estimate (as the CPU kernel's, from the Hessenberg form the kernel saves: a second kernel, O(m^2)
    a matrix). ``lanes`` (32, 16, 8) lanes share a matrix, and a block takes up to ``shared_budget`` bytes of
    shared memory: speed only, the results are bitwise the same."""
    import torch

    kernels, C = _cuda_batch(C, lanes)
    b, m = C.shape[0], C.shape[-1]
    re, im = torch.empty(b, dtype=C.dtype, device=C.device), torch.empty(b, dtype=C.dtype, device=C.device)
    ok = torch.empty(b, dtype=torch.uint8, device=C.device)  # bytes: the one boolean layout both sides share
    H = torch.empty((b, m, m) if errors else (1,), dtype=C.dtype, device=C.device)
    e = torch.empty(b, dtype=torch.int32, device=C.device)  # each matrix was scaled by 2^-e (the source's scale_unit)
    _launch(kernels[0], C, (re, im, ok, np.int32(errors), H, e), lanes, shared_budget)
    if not errors:
        return _scaled_back(re, im, ok, None, e)
    err = torch.empty(b, dtype=C.dtype, device=C.device)
    _launch(kernels[2], H, (re, im, err), lanes, shared_budget, error_doubles(m))  # of the scaled matrices
    return _scaled_back(re, im, ok, err, e)


def _scaled_back(re, im, ok, err, e) -> tuple:
    """top_kernel's outputs (of each matrix times 2^-e) for the matrices themselves: (re, im, converged[, err]),
    err infinite where the iteration did not converge."""
    import torch

    converged, e = ok != 0, e.to(re.dtype)
    out = (ldexp(re, e), ldexp(im, e), converged)
    return out if err is None else (*out, torch.where(converged, ldexp(err, e), math.inf))


def symmetric_max_cuda(G, *, lanes: int = LANES, shared_budget: int = SHARED_BUDGET):
    """The largest eigenvalue of each symmetric G, a CUDA float64 ``(b, m, m)`` tensor, ``m <= 64``, to about
    eps ||G|| (``lanes`` and ``shared_budget`` as :func:`top_eigenvalue_cuda`)."""
    import torch

    kernels, G = _cuda_batch(G, lanes)
    out = torch.empty(G.shape[0], dtype=G.dtype, device=G.device)
    _launch(kernels[1], G, (out,), lanes, shared_budget)
    return out
