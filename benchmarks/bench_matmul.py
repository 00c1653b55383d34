"""Benchmark: torch's CPU batched matmul against numpy's (OpenBLAS gemm per matrix) for the small products of
fig3's step, one thread, in-process; prints milliseconds per product of 250 matrices and the ratio.

    python benchmarks/bench_matmul.py [--rounds 10]

Why ``theory._backend.matmul`` routes CPU float products through numpy: on the 2-core machine numpy was 2-3x
faster for every shape here (torch 2.13's CPU bmm for 31-64-row float64 matrices runs at about 17-20 GFLOP/s,
OpenBLAS at 44).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

SHAPES = {  # (a, b) of fig3's step at defaults (n = 32, d = 64), 250 trials per block
    "D E (attend)": ((250, 32, 32), (250, 32, 64)),
    "E W (attend)": ((250, 32, 64), (250, 64, 64)),
    "Q^T P (restrict)": ((31, 32), (250, 32, 32)),
    "C^T C (sigma)": ((250, 31, 31), (250, 31, 31)),
    "X X^T (stable rank)": ((250, 32, 64), (250, 64, 32)),
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=10)
    a = p.parse_args()
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    for name, (sa, sb) in SHAPES.items():
        A = torch.randn(*sa, generator=g, dtype=torch.float64)
        B = torch.randn(*sb, generator=g, dtype=torch.float64)
        An, Bn = A.numpy(), B.numpy()
        best = {"torch": float("inf"), "numpy": float("inf")}
        for _ in range(a.rounds):  # alternated, best of the rounds
            for k, fn in (("torch", lambda: A @ B), ("numpy", lambda: np.matmul(An, Bn))):
                t = time.perf_counter()
                fn()
                best[k] = min(best[k], time.perf_counter() - t)
        assert np.allclose((A @ B).numpy(), np.matmul(An, Bn), rtol=1e-12, atol=1e-12)
        print(f"{name:22s} torch {best['torch'] * 1e3:6.2f} ms  numpy {best['numpy'] * 1e3:6.2f} ms  "
              f"torch/numpy {best['torch'] / best['numpy']:.2f}x")


if __name__ == "__main__":
    main()
