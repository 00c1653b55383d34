r"""The eigenvalue of largest modulus of one small non-symmetric matrix, as scalar code for a GPU thread.

One thread per matrix (``spectral_radius_cuda``): a Householder reduction to Hessenberg form, then the Francis
double-shift QR of EISPACK's ``hqr`` (Numerical Recipes' form) with deflation and exceptional shifts, on a copy
of the matrix in the thread's local memory. Nothing but scalar arithmetic and loops, so the same source compiles
with ``numba.njit`` for the CPU (where the tests check it against LAPACK) and with ``numba.cuda.jit`` for the GPU
(checked in numba's CUDA simulator where no GPU is present). torch >= 2.10 computes batched ``eigvals`` on CUDA
by one cuSOLVER geev call per matrix (about 1e3 matrices per second); this kernel is the batched replacement.
A matrix that does not converge within ``30 m`` QR iterations is reported, and the caller falls back to LAPACK.
"""

from __future__ import annotations

import math
import threading

__all__ = ["MAX_ORDER", "hqr_top", "spectral_radius_cuda", "cuda_available", "cpu_reference", "count_fallbacks",
           "fallbacks"]

_FALLBACKS = 0  # matrices the device kernel did not converge on, recomputed with LAPACK (this process)
_FALLBACK_LOCK = threading.Lock()  # the engine's workers are threads


def count_fallbacks(k: int) -> None:
    """Record ``k`` more matrices handed back to LAPACK."""
    global _FALLBACKS
    with _FALLBACK_LOCK:
        _FALLBACKS += int(k)


def fallbacks() -> int:
    """Matrices handed back to LAPACK so far in this process (a run reports the difference over itself)."""
    return _FALLBACKS

MAX_ORDER = 64  # largest m = n - 1 the kernel takes (its local array is MAX_ORDER x MAX_ORDER)


def hqr_top(A, v, m):  # pragma: no cover - compiled by numba (CPU and CUDA)
    """Eigenvalue of largest modulus of A[:m, :m] (overwritten): returns (re, im, converged)."""
    # Householder reduction to upper Hessenberg form, reflectors as LAPACK's dlarfg (v[k+1] = 1, the norm taken
    # on the column scaled by its largest entry: tiny columns of nearly one-hot attention neither underflow nor
    # make tau overflow)
    for k in range(m - 2):
        amax = 0.0
        for i in range(k + 1, m):
            amax = max(amax, abs(A[i, k]))
        if amax == 0.0:
            continue
        ssq = 0.0
        for i in range(k + 2, m):
            ssq += (A[i, k] / amax) * (A[i, k] / amax)
        if ssq == 0.0:
            continue
        x0 = A[k + 1, k]
        beta = -math.copysign(amax * math.sqrt(ssq + (x0 / amax) * (x0 / amax)), x0)
        tau = (beta - x0) / beta
        den = x0 - beta
        v[k + 1] = 1.0
        for i in range(k + 2, m):
            v[i] = A[i, k] / den
        for j in range(k + 1, m):
            s = 0.0
            for i in range(k + 1, m):
                s += v[i] * A[i, j]
            s *= tau
            for i in range(k + 1, m):
                A[i, j] -= s * v[i]
        A[k + 1, k] = beta
        for i in range(m):
            s = 0.0
            for j in range(k + 1, m):
                s += A[i, j] * v[j]
            s *= tau
            for j in range(k + 1, m):
                A[i, j] -= s * v[j]
        for i in range(k + 2, m):
            A[i, k] = 0.0
    anorm = 0.0
    for i in range(m):
        for j in range(max(i - 1, 0), m):
            anorm += abs(A[i, j])
    best_re = 0.0
    best_im = 0.0
    best = -1.0
    nn = m - 1
    t = 0.0
    its = 0
    maxit = 30 * max(m, 10)  # per eigenvalue, as LAPACK's dlahqr
    while nn >= 0:
        q = nn
        while q >= 1:
            ss = abs(A[q - 1, q - 1]) + abs(A[q, q])
            if ss == 0.0:
                ss = anorm
            if abs(A[q, q - 1]) + ss == ss:
                A[q, q - 1] = 0.0
                break
            q -= 1
        x = A[nn, nn]
        if q == nn:
            re = x + t
            if abs(re) > best:
                best, best_re, best_im = abs(re), re, 0.0
            nn -= 1
            its = 0
            continue
        y = A[nn - 1, nn - 1]
        w = A[nn, nn - 1] * A[nn - 1, nn]
        if q == nn - 1:
            p = 0.5 * (y - x)
            qq = p * p + w
            z = math.sqrt(abs(qq))
            x += t
            if qq >= 0.0:
                z = p + math.copysign(z, p)
                r1 = x + z
                r2 = x - w / z if z != 0.0 else r1
                if abs(r1) > best:
                    best, best_re, best_im = abs(r1), r1, 0.0
                if abs(r2) > best:
                    best, best_re, best_im = abs(r2), r2, 0.0
            else:
                mod = math.hypot(x + p, z)
                if mod > best:
                    best, best_re, best_im = mod, x + p, z
            nn -= 2
            its = 0
            continue
        if its >= maxit:
            return best_re, best_im, False
        if its > 0 and its % 10 == 0:  # exceptional shift
            t += x
            for i in range(nn + 1):
                A[i, i] -= x
            ss = abs(A[nn, nn - 1]) + abs(A[nn - 1, nn - 2])
            x = 0.75 * ss
            y = x
            w = -0.4375 * ss * ss
        its += 1
        mm = nn - 2
        p = 0.0
        qv = 0.0
        rv = 0.0
        while mm >= q:
            # the first column of (H - s1)(H - s2) from row mm, times h21 (Numerical Recipes divides by h21,
            # which overflows when h21 is tiny beside the shifts; only the direction is used)
            z = A[mm, mm]
            r = x - z
            s2 = y - z
            h21 = A[mm + 1, mm]
            p = r * s2 - w + A[mm, mm + 1] * h21
            qv = h21 * (A[mm + 1, mm + 1] - z - r - s2)
            rv = h21 * A[mm + 2, mm + 1]
            ss = abs(p) + abs(qv) + abs(rv)
            if not ss > 0.0:  # all underflowed: any reflector is a valid similarity
                p, qv, rv, ss = 0.0, 0.0, 1.0, 1.0
            p /= ss
            qv /= ss
            rv /= ss
            if mm == q:
                break
            u = abs(A[mm, mm - 1]) * (abs(qv) + abs(rv))
            vv = abs(p) * (abs(A[mm - 1, mm - 1]) + abs(z) + abs(A[mm + 1, mm + 1]))
            if u + vv == vv:
                break
            mm -= 1
        for i in range(mm + 2, nn + 1):
            A[i, i - 2] = 0.0
            if i != mm + 2:
                A[i, i - 3] = 0.0
        for k in range(mm, nn):
            x = 1.0
            if k != mm:
                p = A[k, k - 1]
                qv = A[k + 1, k - 1]
                rv = A[k + 2, k - 1] if k != nn - 1 else 0.0
                x = abs(p) + abs(qv) + abs(rv)
                if x == 0.0:
                    continue
                p /= x
                qv /= x
                rv /= x
            ss = math.copysign(math.sqrt(p * p + qv * qv + rv * rv), p)
            if ss == 0.0:
                continue
            if k == mm:
                if q != mm:
                    A[k, k - 1] = -A[k, k - 1]
            else:
                A[k, k - 1] = -ss * x
            p += ss
            xr = p / ss
            yr = qv / ss
            zr = rv / ss
            qr = qv / p
            rr = rv / p
            for j in range(k, nn + 1):
                pj = A[k, j] + qr * A[k + 1, j]
                if k != nn - 1:
                    pj += rr * A[k + 2, j]
                    A[k + 2, j] -= pj * zr
                A[k + 1, j] -= pj * yr
                A[k, j] -= pj * xr
            top = nn if nn < k + 3 else k + 3
            for i in range(q, top + 1):
                pi = xr * A[i, k] + yr * A[i, k + 1]
                if k != nn - 1:
                    pi += zr * A[i, k + 2]
                    A[i, k + 2] -= pi * rr
                A[i, k + 1] -= pi * qr
                A[i, k] -= pi
    return best_re, best_im, True


_cpu = None


def cpu_reference(C):
    """The same scalar code compiled for the CPU (numba.njit), one matrix at a time: for tests.

    ``C``: numpy ``(b, m, m)`` float64. Returns numpy ``(re, im, converged)`` arrays ``(b,)``.
    """
    import numba
    import numpy as np

    global _cpu
    if _cpu is None:
        top = numba.njit(cache=True)(hqr_top)

        def batch(C, re, im, ok):
            b, m = C.shape[0], C.shape[1]
            A = np.empty((m, m))
            v = np.empty(m)
            for i in range(b):
                for r in range(m):
                    for c in range(m):
                        A[r, c] = C[i, r, c]
                re[i], im[i], ok[i] = top(A, v, m)

        _cpu = numba.njit(cache=True)(batch)
    b = C.shape[0]
    re, im, ok = np.zeros(b), np.zeros(b), np.zeros(b, dtype=np.bool_)
    _cpu(np.ascontiguousarray(C, dtype=np.float64), re, im, ok)
    return re, im, ok


_kernel = None


def cuda_available() -> bool:
    try:
        from numba import cuda
    except ImportError:
        return False
    return bool(cuda.is_available())


cuda = None  # numba.cuda, bound on first use; the kernel below names it as a global (numba's simulator swaps it)
float64 = None


def _cuda_kernel():
    global _kernel, cuda, float64
    if _kernel is None:
        import numba
        from numba import cuda as numba_cuda

        cuda, float64 = numba_cuda, numba.float64
        top = numba_cuda.jit(device=True)(hqr_top)

        def kernel(C, re, im, ok):
            i = cuda.grid(1)
            if i >= C.shape[0]:
                return
            m = C.shape[1]
            A = cuda.local.array((MAX_ORDER, MAX_ORDER), float64)
            v = cuda.local.array(MAX_ORDER, float64)
            for r in range(m):
                for c in range(m):
                    A[r, c] = C[i, r, c]
            re[i], im[i], ok[i] = top(A, v, m)

        _kernel = numba_cuda.jit(kernel)
    return _kernel


def spectral_radius_cuda(C, threads: int = 128):
    """(re, im, converged) of the eigenvalue of largest modulus of every C ``(b, m, m)``, one GPU thread each.

    ``C``: a float64 CUDA tensor (or, under ``NUMBA_ENABLE_CUDASIM=1``, a numpy array); results alike.
    """
    if C.shape[-1] > MAX_ORDER:
        raise ValueError(f"the GPU kernel takes matrices up to {MAX_ORDER} x {MAX_ORDER}; got {tuple(C.shape)}")
    kernel = _cuda_kernel()
    b = C.shape[0]
    if hasattr(C, "is_cuda"):  # a torch tensor: hand numba its device memory, no host round trip
        import torch

        C = C.contiguous()
        re, im = torch.empty(b, dtype=C.dtype, device=C.device), torch.empty(b, dtype=C.dtype, device=C.device)
        ok = torch.empty(b, dtype=torch.uint8, device=C.device)  # bytes: the one boolean layout both sides share
        args = [cuda.as_cuda_array(t) for t in (C, re, im, ok)]  # noqa: F821 -- bound by _cuda_kernel
    else:
        import numpy as np

        re, im, ok = np.zeros(b), np.zeros(b), np.zeros(b, dtype=np.uint8)
        args = [C, re, im, ok]
    if b:
        kernel[(b + threads - 1) // threads, threads](*args)
    return re, im, (ok != 0)
