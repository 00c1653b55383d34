"""Stress for the CPU kernel's dlahqr forms: graded matrices (entry (i, j) times g_i g_j, g falling from 1 to
10^-span), their Hessenberg parts and nearly skew ones, spans 1e-150 to 1e-600, orders 8 to 40, 64 of each:

    python benchmarks/graded_stress.py

Prints how many of the 8064 matrices the kernel did not converge on (they would go to LAPACK, counted) and how
many it converged on with |lambda|_max more than 1e-12 off numpy's LAPACK. At 8541881, before the dlahqr forms,
the kernel did not converge on 2121 of them (README)."""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from theory import _lockstep  # noqa: E402


def main() -> None:
    rng = np.random.default_rng(11)
    total = fails = wrong = 0
    for span in (150, 200, 250, 300, 400, 500, 600):
        for m in (8, 12, 16, 20, 31, 40):
            for kind in ("graded", "hessenberg", "nearly skew"):
                g = 10.0 ** (-span * np.arange(m) / (m - 1))
                A = rng.standard_normal((64, m, m))
                if kind == "hessenberg":
                    A = np.triu(A, -1)
                if kind == "nearly skew":  # mostly complex pairs
                    A = A - 0.9 * A.transpose(0, 2, 1)
                C = A * g[:, None] * g[None, :]
                re, im, ok = _lockstep.top_eigenvalue(C)
                ref = np.abs(np.linalg.eigvals(C)).max(-1)
                total += len(C)
                fails += int((~ok).sum())
                wrong += int((ok & (np.abs(np.hypot(re, im) - ref) > 1e-12 * ref)).sum())
    print(f"{total} graded matrices: {fails} not converged, {wrong} converged more than 1e-12 off LAPACK")


if __name__ == "__main__":
    main()
