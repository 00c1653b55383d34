"""GPU benchmark for #13 (one ready command for a session that is lent a GPU):

    python benchmarks/bench_gpu.py [--trials 100000,1000000] [--rng-block 10000] [--budget 600]

On a CUDA device it prints, for Figure 3 at its defaults:
- the per-matrix rate of ``torch.linalg.eigvals`` on 31 x 31 matrices, on the GPU and on one CPU thread (torch
  >= 2.10 loops over cuSOLVER's geev per matrix: the reason #13 asks for a batched kernel), and of theory's
  one-thread-per-matrix kernel (``theory/_hqr.py``, which the engine uses on CUDA);
- trials per second of ``simulate_fig3(device="cuda")`` at each ``--trials`` (skipping a size whose time,
  extrapolated from the last one measured, would exceed ``--budget`` seconds) and the peak GPU memory, which must
  not grow with the trials (it is bounded by ``--rng-block``);
- the agreement of the GPU run's means with a CPU run of 10 000 trials: worst |z| over (step, metric).

``--device cpu`` runs the same measurements on the CPU at small sizes, to check the command itself.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

import theory as T  # noqa: E402
from simulations import Fig3Config, simulate_fig3  # noqa: E402

COMPARED = ("t_sim", "log_t_div", "r_minus_1", "xi_ratio_minus_1", "delta", "sigma", "mu", "omega")


def eig_rate(device: str, count: int = 2048, solver=torch.linalg.eigvals) -> float:
    """Matrices per second of ``solver`` on (count, 31, 31) float64 on ``device``."""
    P = T.softmax_attention((count,), 32, beta=4.0, generator=T.make_generator(0))
    _, _, C = T.attention_blocks(P)
    C = C.to(device)
    solver(C[:8])
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    solver(C)
    if device == "cuda":
        torch.cuda.synchronize()
    return count / (time.perf_counter() - t0)


def worst_z(a, b) -> float:
    """Largest |mean difference| in combined standard errors between two results, over steps and metrics."""
    from scipy.special import stdtrit

    worst = 0.0
    for metric in COMPARED:
        for ra, rb in zip(sorted((r for r in a.rows if r.metric == metric), key=lambda r: r.step),
                          sorted((r for r in b.rows if r.metric == metric), key=lambda r: r.step)):
            se = [(r.ci_high - r.ci_low) / (2 * stdtrit(r.count - 1, 0.975)) for r in (ra, rb)]
            if all(s > 0 for s in se):
                worst = max(worst, abs(ra.mean - rb.mean) / math.hypot(*se))
    return worst


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    p.add_argument("--trials", default="100000,1000000", help="comma list of trial counts")
    p.add_argument("--rng-block", type=int, default=10000)
    p.add_argument("--budget", type=float, default=600.0, help="skip a size extrapolated to take longer (s)")
    p.add_argument("--reference-trials", type=int, default=10000)
    a = p.parse_args()
    if a.device == "cuda" and not torch.cuda.is_available():
        sys.exit("bench_gpu: no CUDA device here; run it where a GPU is lent (or pass --device cpu to check it)")
    sizes = [int(s) for s in a.trials.split(",")]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    cpu_rate = eig_rate("cpu")
    torch.set_num_threads(threads)
    dev_rate = eig_rate(a.device)
    print(f"torch.linalg.eigvals, 31 x 31 float64: {dev_rate:,.0f} matrices/s on {a.device}, "
          f"{cpu_rate:,.0f} on one CPU thread")
    if a.device == "cuda":
        from theory import _hqr

        for count in (2 ** 14, 2 ** 18):
            rate = eig_rate("cuda", count, _hqr.spectral_radius_cuda)
            print(f"theory's one-thread-per-matrix kernel (theory/_hqr.py), {count:,} matrices: {rate:,.0f} "
                  f"matrices/s ({rate / dev_rate:,.0f}x torch's eigvals on the device)")
    ref = simulate_fig3(Fig3Config(trials=a.reference_trials, device="cpu"), progress=False)
    last_rate = None
    for trials in sizes:
        if last_rate is not None and trials / last_rate > a.budget:
            print(f"fig3 at {trials:,} trials: skipped (about {trials / last_rate:,.0f} s at the last rate, over the "
                  f"{a.budget:g} s budget)")
            continue
        block = min(a.rng_block, trials)
        chunk = block * max(1, min(trials // block, 10))
        if a.device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        res = simulate_fig3(Fig3Config(trials=trials, device=a.device, rng_block=block, chunk=chunk), progress=None)
        wall = time.perf_counter() - t0
        last_rate = trials / wall
        peak = torch.cuda.max_memory_allocated() / 2 ** 20 if a.device == "cuda" else float("nan")
        print(f"fig3 at {trials:,} trials on {res.device}: {wall:.1f} s, {last_rate:,.0f} trials/s, peak device "
              f"memory {peak:,.0f} MB; agreement with {a.reference_trials:,} CPU trials: worst |z| = "
              f"{worst_z(res, ref):.2f} (bound 4.5)")


if __name__ == "__main__":
    main()
