r"""C8: the seeded search that found ``theory.counterexample_positive`` (exact rational arithmetic, no rounding).

Candidates are short enough to read: P (n, n) with rows in tenths and every entry >= 1/10 (so P > 0 and
P = softmax(log P) for finite scores), X (n, 1) with integer entries in [-3, 3]. Among the draws with
0 < t_sim(X) < 1 and PX != 0 the search keeps the smallest r(X, PX) > 0 (r = 0, a zero mean token after one
step, is a degenerate extreme that leaves xi1 = 0).
"""

from __future__ import annotations

from fractions import Fraction

import torch

__all__ = ["search_positive_counterexample", "exact_t_sim"]


def exact_t_sim(X: list[list[Fraction]]) -> Fraction:
    r"""D1 in rationals: $n\|\bar x\|^2/\|X\|^2$."""
    n, d = len(X), len(X[0])
    mean = [sum(X[i][j] for i in range(n)) / n for j in range(d)]
    return n * sum(m * m for m in mean) / sum(x * x for row in X for x in row)


def search_positive_counterexample(seed: int = 0, draws: int = 3000, n: int = 3
                                   ) -> tuple[list[list[Fraction]], list[list[Fraction]], Fraction, int]:
    """``(X, P, r, hits)``: the draw with the smallest exact r in (0, 1), and how many draws had r in (0, 1)."""
    g = torch.Generator().manual_seed(seed)
    best, hits = None, 0
    for _ in range(draws):
        P = []
        for _ in range(n):  # a composition of 10 into n positive parts: n - 1 distinct cuts among 1..9
            cuts = sorted(torch.randperm(9, generator=g)[:n - 1].tolist())
            P.append([Fraction(b - a, 10) for a, b in zip([-1] + cuts, cuts + [9])])
        X = [[Fraction(int(v))] for v in torch.randint(-3, 4, (n,), generator=g)]
        if all(x[0] == 0 for x in X):
            continue
        s = exact_t_sim(X)
        Y = [[sum(P[i][k] * X[k][0] for k in range(n))] for i in range(n)]
        if s in (0, 1) or all(y[0] == 0 for y in Y):
            continue
        r = exact_t_sim(Y) / s
        if 0 < r < 1:
            hits += 1
            if best is None or r < best[2]:
                best = (X, P, r)
    if best is None:
        raise RuntimeError(f"no positive counterexample in {draws} draws (seed {seed})")
    return (*best, hits)
