"""Reference for the benchmark: Figure 3's workload as a researcher would first write it, one trial at a time
in plain float64 numpy (no torch, no batching). Same model and defaults as ``python -m simulations fig3``, and
every metric of its CSV (23); not the checks of its JSON (delta's error estimates, the C2 recomputation, the
per-step bound test), which only the engine does.

    python benchmarks/fig3_reference.py [--trials 1000] [--tokens 32] [--width 64] [--depth 24] [--beta 4]
        [--seed 0] [--out means.json] [--original]

``--original``: only the ten metrics this loop computed when it was written, before fig3 gained the literature's
metrics (stable rank, mean cosine, Dong's residual) and the derived columns (for comparison with earlier ratios).

Prints one line per step (mean t_div, r, delta) and writes the per-step means and standard errors as JSON,
which the benchmark compares with the engine's CSV.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--trials", type=int, default=1000)
    p.add_argument("--tokens", type=int, default=32)
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--depth", type=int, default=24)
    p.add_argument("--beta", type=float, default=4.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None)
    p.add_argument("--original", action="store_true", help="only the ten metrics of the loop's first version")
    a = p.parse_args()
    t0 = time.perf_counter()
    n, d, L = a.tokens, a.width, a.depth
    rng = np.random.default_rng(a.seed)
    # orthonormal basis of 1-perp, for delta = spectral radius of P restricted to 1-perp
    Q = np.linalg.svd(np.ones((1, n)))[2][1:].T
    names = ("t_sim", "t_div", "xi_ratio_minus_1", "r", "r_estimate", "r_bound", "delta", "sigma", "mu", "omega")
    if not a.original:
        names += ("log_t_div", "xi_estimate_minus_1", "xi_bound_minus_1", "r_minus_1", "r_estimate_minus_1",
                  "r_bound_minus_1", "stable_rank", "mean_cosine", "dong_residual", "stable_rank_minus_1",
                  "log_stable_rank_minus_1", "one_minus_mean_cosine", "log_one_minus_mean_cosine")
    values = {m: np.full((a.trials, L + 1), np.nan) for m in names}

    def composite(A):  # sqrt(||A||_1 ||A||_inf)
        return np.sqrt(np.linalg.norm(A, 1) * np.linalg.norm(A, np.inf))

    def collapse(i, k, X, xbar):  # the literature's metrics of the state X
        if a.original:
            return
        values["stable_rank"][i, k] = np.sum(X * X) / np.linalg.norm(X, 2) ** 2
        U = X / np.linalg.norm(X, axis=1, keepdims=True)
        G = U @ U.T
        values["mean_cosine"][i, k] = (G.sum() - np.trace(G)) / (n * (n - 1))
        values["dong_residual"][i, k] = composite(X - xbar) / composite(X)
        # the excesses as the ratios give them (the engine forms them from the split parts near collapse; at the
        # defaults t_div stays above 1e-7, where these keep about 9 digits)
        values["stable_rank_minus_1"][i, k] = values["stable_rank"][i, k] - 1
        values["one_minus_mean_cosine"][i, k] = 1 - values["mean_cosine"][i, k]
        for m in ("stable_rank_minus_1", "one_minus_mean_cosine"):
            values["log_" + m][i, k] = np.log(values[m][i, k])

    for i in range(a.trials):
        X = rng.standard_normal((n, d))
        xbar = X.mean(0)
        values["t_sim"][i, 0] = n * xbar @ xbar / np.sum(X * X)
        values["t_div"][i, 0] = np.sum((X - xbar) ** 2) / np.sum(X * X)
        if not a.original:
            values["log_t_div"][i, 0] = np.log(values["t_div"][i, 0])
        collapse(i, 0, X, xbar)
        for k in range(1, L + 1):
            Z = a.beta * rng.standard_normal((n, n))
            E = np.exp(Z - Z.max(1, keepdims=True))
            P = E / E.sum(1, keepdims=True)
            W = rng.standard_normal((d, d)) / np.sqrt(d)
            Y = P @ X @ W
            xbar, ybar = X.mean(0), Y.mean(0)
            cx, cy = X - xbar, Y - ybar
            mx, my = n * xbar @ xbar, n * ybar @ ybar
            vx, vy = np.sum(cx * cx), np.sum(cy * cy)
            s, t = mx / (mx + vx), vx / (mx + vx)
            C = Q.T @ P @ Q
            delta = np.max(np.abs(np.linalg.eigvals(C)))
            mu2 = np.sum(C * C) / (n - 1)
            values["t_sim"][i, k] = my / (my + vy)
            values["t_div"][i, k] = vy / (my + vy)
            values["xi_ratio_minus_1"][i, k] = np.sqrt(my / mx) / np.sqrt(vy / vx) - 1
            values["r"][i, k] = (my / (my + vy)) / s
            values["r_estimate"][i, k] = 1 / (s + mu2 * t)
            values["r_bound"][i, k] = 1 / (s + delta ** 2 * t)
            values["delta"][i, k] = delta
            values["sigma"][i, k] = np.linalg.norm(C, 2)
            values["mu"][i, k] = np.sqrt(mu2)
            values["omega"][i, k] = np.linalg.norm(P.sum(0) - 1) / np.sqrt(n)
            if not a.original:
                values["log_t_div"][i, k] = np.log(values["t_div"][i, k])
                values["xi_estimate_minus_1"][i, k] = 1 / np.sqrt(mu2) - 1
                values["xi_bound_minus_1"][i, k] = 1 / delta - 1
                for m in ("r", "r_estimate", "r_bound"):
                    values[m + "_minus_1"][i, k] = values[m][i, k] - 1
                collapse(i, k, Y, ybar)
            X = Y / np.linalg.norm(Y) * np.sqrt(n * d)
    out = {}
    for m, v in values.items():
        ok = np.isfinite(v)
        cnt = ok.sum(0)
        mean = np.where(cnt > 0, np.nansum(v, 0) / np.maximum(cnt, 1), np.nan)
        se = np.array([np.nanstd(v[:, j], ddof=1) / np.sqrt(cnt[j]) if cnt[j] > 1 else np.nan for j in range(L + 1)])
        out[m] = {"mean": mean.tolist(), "se": se.tolist(), "count": cnt.tolist()}
    elapsed = time.perf_counter() - t0
    for k in (1, L // 2, L):
        print(f"step {k}: t_div {out['t_div']['mean'][k]:.4g}  r {out['r']['mean'][k]:.6g}  "
              f"delta {out['delta']['mean'][k]:.4g}")
    print(f"reference loop: {a.trials} trials in {elapsed:.2f} s")
    if a.out:
        with open(a.out, "w") as f:
            json.dump({"elapsed_s": elapsed, "stats": out}, f)


if __name__ == "__main__":
    main()
