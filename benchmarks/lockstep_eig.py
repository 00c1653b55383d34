r"""Benchmark for #13: the CPU eigenvalue kernel (``theory/_lockstep.c``, what ``theory.slem`` uses) against
LAPACK's geev per matrix (torch and numpy) on five families of fig3-like matrices C = Q^T P Q, one thread.

    python benchmarks/lockstep_eig.py [--count 2048] [--tokens 32] [--rounds 5]
    python benchmarks/lockstep_eig.py --numba      # also the same lockstep algorithm compiled with numba (pip install -e ".[bench]")
    python benchmarks/lockstep_eig.py --against REV --rounds 21   # the kernel against its source at a git revision
    python benchmarks/lockstep_eig.py --without-flag=-fno-math-errno --rounds 11   # ... against itself without a flag

Prints, per family, microseconds per matrix (best of ``--rounds``, the solvers alternated within each round),
the speed-up against torch's geev (#13's target: >= 2.5x at n = 31), the agreement with LAPACK (median and
largest relative difference of |lambda|_max; at beta 1000 the eigenvalues are intrinsically ill-conditioned and
the largest differences there are the conditioning, not an error: ``theory.slem_with_error`` flags them), and how
many matrices did not converge (those go to LAPACK in the engine, counted).

The ``--numba`` variant below is the first attempt, kept for the comparison that chose C: its lane loops have a
run-time length, so numba keeps the lanes' per-step scalars in memory and the reflector step does not
vectorise (1.2-1.8x LAPACK on this machine, 0.7x at beta 1000).
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

LANES = 64  # numba variant: matrices per lockstep group (64 measured fastest of 8, 32, 64 there)

def _kernel(A, radius, failed):  # pragma: no cover - compiled by numba
    """A: (m, m, L) float64, overwritten. radius[l] = max |eigenvalue| of lane l; failed[l] = 1 on no convergence."""
    m = A.shape[0]
    L = A.shape[2]
    v = np.zeros((m, L))
    tau = np.zeros(L)
    s = np.zeros(L)
    # --- Householder reduction to upper Hessenberg form, all lanes alike ---
    norm2 = np.zeros(L)
    for k in range(m - 2):
        for l in range(L):
            norm2[l] = 0.0
        for i in range(k + 1, m):
            for l in range(L):
                norm2[l] += A[i, k, l] * A[i, k, l]
        for i in range(k + 2, m):
            for l in range(L):
                v[i, l] = A[i, k, l]
        for l in range(L):
            x0 = A[k + 1, k, l]
            alpha = -math.copysign(math.sqrt(norm2[l]), x0)
            v[k + 1, l] = x0 - alpha
            vnorm2 = norm2[l] - x0 * x0 + (x0 - alpha) * (x0 - alpha)
            tau[l] = 2.0 / vnorm2 if vnorm2 > 0.0 else 0.0
        # left: rows k+1.., columns k..
        for j in range(k, m):
            for l in range(L):
                s[l] = 0.0
            for i in range(k + 1, m):
                for l in range(L):
                    s[l] += v[i, l] * A[i, j, l]
            for i in range(k + 1, m):
                for l in range(L):
                    A[i, j, l] -= tau[l] * s[l] * v[i, l]
        # right: all rows, columns k+1..
        for i in range(m):
            for l in range(L):
                s[l] = 0.0
            for j in range(k + 1, m):
                for l in range(L):
                    s[l] += A[i, j, l] * v[j, l]
            for j in range(k + 1, m):
                for l in range(L):
                    A[i, j, l] -= tau[l] * s[l] * v[j, l]
        for i in range(k + 2, m):
            for l in range(L):
                A[i, k, l] = 0.0
    # --- Francis double-shift QR, each lane with its own window [lo, nn] ---
    nn = np.full(L, m - 1, dtype=np.int64)
    its = np.zeros(L, dtype=np.int64)
    total = np.zeros(L, dtype=np.int64)
    lo = np.zeros(L, dtype=np.int64)
    start = np.zeros(L, dtype=np.int64)
    t = np.zeros(L)
    anorm = np.zeros(L)
    rx = np.zeros(L)
    ry = np.zeros(L)
    rz = np.zeros(L)
    rq = np.zeros(L)
    rr = np.zeros(L)
    sp = np.zeros(L)
    sq = np.zeros(L)
    sr = np.zeros(L)
    for l in range(L):
        radius[l] = 0.0
        failed[l] = 0
        a = 0.0
        for i in range(m):
            for j in range(max(i - 1, 0), m):
                a += abs(A[i, j, l])
        anorm[l] = a
    maxit = 30 * m
    while True:
        active = 0
        kmin = m
        kmax = -1
        ilo = m
        for l in range(L):
            # deflate: finish 1x1 and 2x2 blocks until this lane needs a QR step or is done
            while nn[l] >= 0 and failed[l] == 0:
                n1 = nn[l]
                q = n1
                while q >= 1:
                    ss = abs(A[q - 1, q - 1, l]) + abs(A[q, q, l])
                    if ss == 0.0:
                        ss = anorm[l]
                    if abs(A[q, q - 1, l]) + ss == ss:
                        A[q, q - 1, l] = 0.0
                        break
                    q -= 1
                x = A[n1, n1, l]
                if q == n1:
                    radius[l] = max(radius[l], abs(x + t[l]))
                    nn[l] = n1 - 1
                    its[l] = 0
                    continue
                y = A[n1 - 1, n1 - 1, l]
                w = A[n1, n1 - 1, l] * A[n1 - 1, n1, l]
                if q == n1 - 1:
                    p = 0.5 * (y - x)
                    qq = p * p + w
                    zz = math.sqrt(abs(qq))
                    x += t[l]
                    if qq >= 0.0:
                        zz = p + math.copysign(zz, p)
                        r1 = x + zz
                        r2 = x - w / zz if zz != 0.0 else r1
                        radius[l] = max(radius[l], abs(r1), abs(r2))
                    else:
                        radius[l] = max(radius[l], math.hypot(x + p, zz))
                    nn[l] = n1 - 2
                    its[l] = 0
                    continue
                # a QR step is needed on [q, n1]
                if total[l] >= maxit:
                    failed[l] = 1
                    break
                if its[l] == 10 or its[l] == 20:  # exceptional shift
                    t[l] += x
                    for i in range(n1 + 1):
                        A[i, i, l] -= x
                    ss = abs(A[n1, n1 - 1, l]) + abs(A[n1 - 1, n1 - 2, l])
                    x = 0.75 * ss
                    y = x
                    w = -0.4375 * ss * ss
                its[l] += 1
                total[l] += 1
                # look for two consecutive small subdiagonal elements: the bulge starts at mm
                mm = n1 - 2
                while mm >= q:
                    z = A[mm, mm, l]
                    r = x - z
                    s2 = y - z
                    p = (r * s2 - w) / A[mm + 1, mm, l] + A[mm, mm + 1, l]
                    qv = A[mm + 1, mm + 1, l] - z - r - s2
                    rv = A[mm + 2, mm + 1, l]
                    ss = abs(p) + abs(qv) + abs(rv)
                    p /= ss
                    qv /= ss
                    rv /= ss
                    if mm == q:
                        break
                    u = abs(A[mm, mm - 1, l]) * (abs(qv) + abs(rv))
                    vv = abs(p) * (abs(A[mm - 1, mm - 1, l]) + abs(z) + abs(A[mm + 1, mm + 1, l]))
                    if u + vv == vv:
                        break
                    mm -= 1
                for i in range(mm + 2, n1 + 1):
                    A[i, i - 2, l] = 0.0
                    if i != mm + 2:
                        A[i, i - 3, l] = 0.0
                lo[l] = q
                start[l] = mm
                sp[l] = p
                sq[l] = qv
                sr[l] = rv
                break
            if nn[l] >= 0 and failed[l] == 0:
                active += 1
                kmin = min(kmin, start[l])
                kmax = max(kmax, nn[l] - 1)
                ilo = min(ilo, lo[l])
        if active == 0:
            break
        # one Francis sweep for every active lane, k over the union of their bulge paths
        for k in range(kmin, kmax + 1):
            km1 = max(k - 1, 0)
            k2 = min(k + 2, m - 1)
            for l in range(L):  # branch-free, so this loop vectorises too
                n1 = nn[l]
                act = (n1 >= 0) & (failed[l] == 0) & (k >= start[l]) & (k <= n1 - 1)
                first = k == start[l]
                last = k == n1 - 1
                pb = A[k, km1, l]
                qb = A[k + 1, km1, l]
                rb = 0.0 if last else A[k2, km1, l]
                xb = abs(pb) + abs(qb) + abs(rb)
                xs = xb if xb != 0.0 else 1.0
                p = sp[l] if first else pb / xs
                qv = sq[l] if first else qb / xs
                rv = sr[l] if first else rb / xs
                x = 1.0 if first else xb
                ss = math.copysign(math.sqrt(p * p + qv * qv + rv * rv), p)
                ok = act & (ss != 0.0)
                ssafe = ss if ok else 1.0
                pp = p + ssafe
                pps = pp if pp != 0.0 else 1.0
                rx[l] = pp / ssafe if ok else 0.0
                ry[l] = qv / ssafe if ok else 0.0
                rz[l] = rv / ssafe if ok else 0.0
                rq[l] = qv / pps if ok else 0.0
                rr[l] = rv / pps if ok else 0.0
                old = A[k, km1, l]
                flipped = -old if lo[l] != start[l] else old
                A[k, km1, l] = (flipped if first else -ss * x) if ok else old
                inner = ok & (not first)
                A[k + 1, km1, l] = 0.0 if inner else A[k + 1, km1, l]
                A[k2, km1, l] = 0.0 if (inner & (not last)) else A[k2, km1, l]
            three = k + 2 <= m - 1
            for j in range(k, kmax + 2):  # columns up to the largest window's end
                if three:
                    for l in range(L):
                        pj = A[k, j, l] + rq[l] * A[k + 1, j, l] + rr[l] * A[k + 2, j, l]
                        A[k + 2, j, l] -= pj * rz[l]
                        A[k + 1, j, l] -= pj * ry[l]
                        A[k, j, l] -= pj * rx[l]
                else:
                    for l in range(L):
                        pj = A[k, j, l] + rq[l] * A[k + 1, j, l]
                        A[k + 1, j, l] -= pj * ry[l]
                        A[k, j, l] -= pj * rx[l]
            ihi = min(k + 3, m - 1)
            for i in range(ilo, ihi + 1):
                if three:
                    for l in range(L):
                        pi = rx[l] * A[i, k, l] + ry[l] * A[i, k + 1, l] + rz[l] * A[i, k + 2, l]
                        A[i, k + 2, l] -= pi * rr[l]
                        A[i, k + 1, l] -= pi * rq[l]
                        A[i, k, l] -= pi
                else:
                    for l in range(L):
                        pi = rx[l] * A[i, k, l] + ry[l] * A[i, k + 1, l]
                        A[i, k + 1, l] -= pi * rq[l]
                        A[i, k, l] -= pi
    return radius, failed


_compiled = None


def _get_kernel():
    global _compiled
    if _compiled is None:
        import numba

        _compiled = numba.njit(cache=True, fastmath={"contract", "arcp", "nsz"}, error_model="numpy", boundscheck=False)(_kernel)
    return _compiled


def spectral_radius_lockstep(C: np.ndarray, lanes: int = LANES) -> tuple[np.ndarray, np.ndarray]:
    """(radius ``(b,)``, failed ``(b,)`` bool) of C ``(b, m, m)`` float64, in groups of ``lanes`` matrices."""
    kernel = _get_kernel()
    b, m, _ = C.shape
    radius = np.zeros(b)
    failed = np.zeros(b, dtype=bool)
    if m == 1:
        return np.abs(C[:, 0, 0]), failed
    for g0 in range(0, b, lanes):
        g = C[g0:g0 + lanes]
        k = g.shape[0]
        A = np.zeros((m, m, lanes))
        A[:, :, :k] = np.moveaxis(g, 0, -1)
        r = np.zeros(lanes)
        f = np.zeros(lanes, dtype=np.int64)
        kernel(A, r, f)
        radius[g0:g0 + k] = r[:k]
        failed[g0:g0 + k] = f[:k] != 0
    return radius, failed


def _families(count: int, n: int):
    import torch

    import theory as T

    g = T.make_generator(0)
    perm = torch.rand(count, n, generator=g).argsort(-1)
    near_perm = 0.9 * torch.eye(n, dtype=torch.float64)[perm] + 0.1 * T.random_row_stochastic((count,), n, generator=g)
    reducible = T.random_row_stochastic((count,), n, zero_prob=0.8, generator=g)
    out = {f"softmax beta {b:g}": T.softmax_attention((count,), n, beta=b, generator=g) for b in (0.5, 4.0, 1000.0)}
    out.update({"permutation-like": near_perm, "sparse (often reducible)": reducible})
    from theory._attention import _restrict

    return {name: _restrict(P).numpy().copy() for name, P in out.items()}


def symmetric_kernel(count: int, n: int, rounds: int) -> None:
    """The largest eigenvalue of ``count`` symmetric n x n Gram matrices X X^T (as the stable rank's), one thread:
    the lockstep symmetric kernel against torch's batched eigvalsh, best of ``rounds``, alternated."""
    import torch

    from theory import _lockstep

    X = torch.randn(count, n, n, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    G = X @ X.mT
    kernel, lapack = [], []
    for _ in range(rounds):
        t = time.perf_counter()
        top = _lockstep.symmetric_max_eigenvalue(G.numpy())
        kernel.append(time.perf_counter() - t)
        t = time.perf_counter()
        ref = torch.linalg.eigvalsh(G)[:, -1]
        lapack.append(time.perf_counter() - t)
    err = float((torch.from_numpy(top) - ref).abs().max() / ref.abs().max())
    print(f"largest eigenvalue of {count} symmetric {n} x {n} Gram matrices, one thread, best of {rounds}: lockstep "
          f"kernel {min(kernel) / count * 1e6:.1f} us per matrix, torch eigvalsh {min(lapack) / count * 1e6:.1f} us "
          f"({min(lapack) / min(kernel):.1f}x); largest difference {err:.1e} of the largest eigenvalue")


def against(rev: str | None, count: int, tokens: int, rounds: int, without: str | None = None) -> None:
    """The kernel against its own source at git revision ``rev``, built alike (or, with ``without``, against this
    checkout's source built without that flag among the compile command's last flags, ``STRICT_FLAGS``), in the same
    process: for each family, microseconds per matrix (best of ``rounds``) and the median of the paired per-round
    ratios, the two run alternately, first one then the other (the machine's drift cancels in the pairs)."""
    import subprocess
    import tempfile

    from theory import _lockstep

    root = Path(__file__).resolve().parents[1]
    if without is not None:
        if without not in _lockstep.STRICT_FLAGS:
            sys.exit(f"{without!r} is not among the compile command's last flags {_lockstep.STRICT_FLAGS}")
        text, rev = _lockstep._SOURCE.read_text(), f"without {without}"
    else:
        try:
            text = subprocess.run(["git", "show", f"{rev}:theory/_lockstep.c"], cwd=root, capture_output=True,
                                  text=True, check=True).stdout
        except (OSError, subprocess.CalledProcessError) as exc:
            sys.exit(f"cannot read theory/_lockstep.c at {rev!r}: {getattr(exc, 'stderr', '') or exc}")
    strict = _lockstep.STRICT_FLAGS
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "_lockstep.c"
        source.write_text(text)
        flags = [[*f, f"-DLANES={_lockstep.LANES}"] for f in _lockstep._FLAGS]
        try:
            _lockstep.STRICT_FLAGS = tuple(f for f in strict if f != without)
            old, how = _lockstep.build(source, "lockstep-against", flags)
        finally:
            _lockstep.STRICT_FLAGS = strict
    if old is None:
        sys.exit(f"the kernel ({rev}) did not build: {how}")
    new = _lockstep._kernel()
    for fn in ("lockstep_top", "lockstep_sym_max"):
        getattr(old, fn).argtypes, getattr(old, fn).restype = getattr(new, fn).argtypes, getattr(new, fn).restype

    def run(lib, C, symmetric=False):
        b, m = C.shape[:2]
        if symmetric:
            out = np.empty(b)
            if lib.lockstep_sym_max(b, m, C.ctypes.data, out.ctypes.data):
                raise MemoryError("lockstep_sym_max failed")
            return out, np.ones(b, dtype=bool)
        re, im, ok = np.empty(b), np.empty(b), np.empty(b, dtype=np.uint8)
        if lib.lockstep_top(b, m, C.ctypes.data, re.ctypes.data, im.ctypes.data, ok.ctypes.data, None,
                            _lockstep.STRAGGLE, _lockstep.SMALL):
            raise MemoryError("lockstep_top failed")
        return np.hypot(re, im), ok.astype(bool)

    print(f"the kernel in this checkout against {'itself ' if without else 'theory/_lockstep.c at '}{rev} (n = {tokens}; {count} matrices per "
          f"family; one thread; {rounds} rounds alternated), microseconds per matrix")
    families = {name: (C, False) for name, C in _families(count, tokens).items()}
    X = np.random.default_rng(1).standard_normal((count, tokens, 2 * tokens))
    families["symmetric kernel: X X^T"] = (X @ X.transpose(0, 2, 1), True)  # as the stable rank's (n x n, d = 2n)
    for name, (C, symmetric) in families.items():
        times = {"this": [], rev: []}
        for r in range(rounds):
            for key, lib in ((("this", new), (rev, old)) if r % 2 else ((rev, old), ("this", new))):
                t0 = time.perf_counter()
                run(lib, C, symmetric)
                times[key].append((time.perf_counter() - t0) / count * 1e6)
        (a, oka), (b, okb) = run(new, C, symmetric), run(old, C, symmetric)
        both = oka & okb
        rel = np.abs(a - b)[both] / np.maximum(b[both], 1e-300)
        ratio = np.median(np.array(times["this"]) / np.array(times[rev]))
        print(f"  {name:26s} this {min(times['this']):5.1f}  {rev} {min(times[rev]):5.1f}  this / {rev}: median "
              f"{ratio:.3f}  rel. diff max {rel.max():.0e}  not converged {int((~oka).sum())} vs {int((~okb).sum())}")


def main() -> None:
    import argparse
    import time

    import torch

    from theory import _lockstep

    p = argparse.ArgumentParser()
    p.add_argument("--lanes", type=int, default=LANES, help="lanes of the numba variant")
    p.add_argument("--count", type=int, default=2048)
    p.add_argument("--tokens", type=int, default=32)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--numba", action="store_true", help="also time the numba variant")
    p.add_argument("--symmetric", action="store_true", help="only the symmetric kernel against torch's eigvalsh")
    p.add_argument("--against", metavar="REV", help="only the kernel against its source at git revision REV, paired")
    p.add_argument("--without-flag", metavar="FLAG",
                   help="only the kernel against itself built without FLAG among the last compile flags, paired")
    a = p.parse_args()
    torch.set_num_threads(1)
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")  # numpy's OpenBLAS too: torch.set_num_threads does not reach it
    if a.symmetric:
        return symmetric_kernel(a.count, a.tokens, a.rounds)
    if a.against or a.without_flag:
        return against(a.against, a.count, a.tokens, a.rounds, without=a.without_flag)
    if not _lockstep.available():
        sys.exit(f"the kernel is not available: {_lockstep.status()}")
    if a.numba:
        spectral_radius_lockstep(np.random.rand(4, 5, 5), a.lanes)  # compile (cached afterwards)

    print(f"|lambda|_max of C (n = {a.tokens}, so {a.tokens - 1} x {a.tokens - 1}; {a.count} matrices per family; "
          f"one thread; best of {a.rounds}), microseconds per matrix; solver: {_lockstep.status()}")
    speedups = []
    for name, C in _families(a.count, a.tokens).items():
        Ct = torch.from_numpy(C)
        solvers = {"kernel": lambda: _lockstep.top_eigenvalue(C), "torch": lambda: torch.linalg.eigvals(Ct),
                   "numpy": lambda: np.linalg.eigvals(C)}
        if a.numba:
            solvers["numba"] = lambda: spectral_radius_lockstep(C, a.lanes)
        best = {k: float("inf") for k in solvers}
        for _ in range(a.rounds):
            for k, fn in solvers.items():
                t0 = time.perf_counter()
                fn()
                best[k] = min(best[k], (time.perf_counter() - t0) / a.count * 1e6)
        re, im, ok = _lockstep.top_eigenvalue(C)
        ref = torch.linalg.eigvals(Ct).abs().amax(-1).numpy()
        rel = np.abs(np.hypot(re, im) - ref) / np.maximum(ref, 1e-300)
        speedups.append(best["torch"] / best["kernel"])
        extra = (f"  numba {best['numba']:5.1f} ({best['torch'] / best['numba']:.2f}x)" if a.numba else "")
        print(f"  {name:26s} kernel {best['kernel']:5.1f}  torch {best['torch']:5.1f}  numpy {best['numpy']:5.1f}"
              f"  speed-up vs torch {speedups[-1]:4.2f}x{extra}  rel. diff median {np.median(rel):.0e} "
              f"max {rel.max():.0e}  not converged {int((~ok).sum())}")
    print(f"speed-up against torch's geev: {min(speedups):.2f}x to {max(speedups):.2f}x (#13's target: >= 2.5x)")


if __name__ == "__main__":
    main()
