"""Experiment: |lambda_2| of softmax attention by repeated squaring instead of a full eigen-decomposition.

    python benchmarks/slem_by_squaring.py [--batch 1000] [--tokens 32]

delta(P) is the spectral radius of C = Q^T P Q. Squaring C k times (normalised each time, logs of the norms
kept) gives C^(2^k); the Ritz values of C^(2^k) on a p-dimensional subspace, taken to the power 2^-k, estimate
the spectral radius with an error that shrinks like |lambda_(p+1) / lambda_1|^(2^k) / 2^k. Only batched matrix
products are needed, which is what a GPU does fast. Prints, per beta and (k, p), the time per matrix against
LAPACK's geev (torch.linalg.eigvals) and the relative error against it. The engine keeps geev: see README,
Performance.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository, as the other benchmarks

import torch  # noqa: E402

from theory._attention import _restrict  # noqa: E402


def slem_by_squaring(C: torch.Tensor, squarings: int, p: int) -> torch.Tensor:
    """Spectral radius of each ``C`` ``(B, m, m)`` from ``squarings`` squarings and a ``p``-dim Ritz step."""
    norm = torch.linalg.matrix_norm(C)
    M, log_rho, weight = C / norm[:, None, None], norm.log(), 1.0
    for _ in range(squarings):
        M = M @ M
        s = torch.linalg.matrix_norm(M)
        M, weight = M / s[:, None, None], weight / 2
        log_rho = log_rho + weight * s.log()
    omega = torch.randn(C.shape[-1], p, generator=torch.Generator().manual_seed(1), dtype=C.dtype)
    Q = torch.linalg.qr(M @ omega).Q
    ritz = torch.linalg.eigvals(Q.mT @ M @ Q).abs().amax(dim=-1)
    return (log_rho + weight * ritz.log()).exp()


def best_of(fn, repeats: int = 3) -> tuple[float, torch.Tensor]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=1000)
    p.add_argument("--tokens", type=int, default=32)
    a = p.parse_args()
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    for beta in (0.5, 4.0, 20.0, 1000.0):
        P = torch.softmax(beta * torch.randn(a.batch, a.tokens, a.tokens, generator=g, dtype=torch.float64), -1)
        C = _restrict(P)
        t_geev, exact = best_of(lambda: torch.linalg.eigvals(C).abs().amax(dim=-1))
        for k, dim in ((8, 4), (10, 4), (12, 4)):
            t_sq, approx = best_of(lambda: slem_by_squaring(C, k, dim))
            rel = (approx - exact).abs() / exact
            print(f"beta {beta:6g}  k {k:2d} p {dim}: geev {1e6 * t_geev / a.batch:5.1f} us, squaring "
                  f"{1e6 * t_sq / a.batch:5.1f} us per matrix; relative error max {rel.max():.1e}, "
                  f"99th percentile {rel.quantile(0.99):.1e}, above 1e-10 in {int((rel > 1e-10).sum())}")


if __name__ == "__main__":
    main()
