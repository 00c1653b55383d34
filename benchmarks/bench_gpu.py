"""GPU benchmark for #13 (one ready command for a session that is lent a GPU):

    python benchmarks/bench_gpu.py [--trials 100000,1000000,10000000] [--budget 300] [--ensembles 40000]
        [--json FILE]

On a CUDA device it prints (and with ``--json`` writes), for Figure 3 at its defaults:
- the per-matrix rate of ``torch.linalg.eigvals`` on 31 x 31 matrices, on the GPU and on one CPU thread (torch
  >= 2.10 loops over cuSOLVER's geev per matrix: the reason #13 asks for a batched kernel), of theory's
  warp-per-matrix kernel (``theory/_hqr.cu``, which the engine uses on CUDA), and of ``torch.linalg.eigvalsh``
  against the kernel's symmetric solver (sigma); the top eigenvalue with delta's error estimate through the error
  kernel against torch's complex LU of C - sigma I;
- trials per second of ``simulate_fig3(device="cuda")`` at each ``--trials``, with the batches the CLI uses on
  CUDA (skipping a size whose time, extrapolated from the last one measured, would exceed ``--budget``
  seconds), and the peak GPU memory, which must not grow with the trials (it is bounded by the block size);
- the agreement of the GPU run's means with a CPU run of 10 000 trials: worst |z| over (step, metric) (metrics
  zero by construction in an ensemble left out: :data:`EXACT_ZEROS`);
- the rate of the two routes to Haar weights (Householder QR, as torch and the CPU do it, and Cholesky QR,
  which theory uses on CUDA), and fig3's time for every attention ensemble at ``--ensembles`` trials with its
  agreement with a CPU run of the same ensemble.

``--device cpu`` runs the same measurements on the CPU at small sizes, to check the command itself.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

import theory as T  # noqa: E402
from simulations import Fig3Config, simulate_fig3  # noqa: E402

# Not t_sim: within 1e-14 of 1 by step 10 in the symmetric and dirichlet ensembles, its standard error (7e-16)
# is float rounding and two runs' means differ by their summation order (|z| = 12 between two CPU runs of other
# blocks); log_t_div carries the same quantity to full precision.
# The stored H100 runs (benchmarks/measured/gpu-h100*.json) compared the first seven; the last four were added
# later, unmeasured until a GPU runs this again, and so are the logs of the stable rank's and the mean cosine's
# excesses (from the split parts), added later still. Not stable_rank and mean_cosine themselves, for t_sim's
# reason: they saturate at 1 to within rounding as t_div falls (their spread is then rounding); the GPU's
# symmetric kernel the stable rank goes through is checked against LAPACK by tests/test_hqr.py.
COMPARED = ("log_t_div", "r_minus_1", "xi_ratio_minus_1", "delta", "sigma", "mu", "omega",
            "t_div", "r_estimate_minus_1", "r_bound_minus_1", "dong_residual",
            "log_stable_rank_minus_1", "log_one_minus_mean_cosine")


def best_rate(fn, batch: torch.Tensor, device: str) -> float:
    """Matrices per second of ``fn(batch)``: the best of three runs after a warm-up on a slice."""
    fn(batch[:64])
    best = math.inf
    for _ in range(3):
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn(batch)
        if device == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return len(batch) / best


def eig_rate(device: str, count: int = 2048, solver=torch.linalg.eigvals, symmetric: bool = False) -> float:
    """Matrices per second of ``solver`` on (count, 31, 31) float64 on ``device`` (C = Q^T P Q at beta 4, or
    C^T C with ``symmetric``)."""
    P = T.softmax_attention((count,), 32, beta=4.0, generator=T.make_generator(0))
    _, _, C = T.attention_blocks(P)
    return best_rate(solver, (C.mT @ C if symmetric else C).to(device), device)


def haar_rates(device: str, count: int) -> dict[str, float]:
    """Matrices per second of the two routes to Haar weights (fig3's orthogonal W, 64 x 64 float64): Householder
    QR (``torch.linalg.qr``, the CPU's route) and Cholesky QR twice with its check (the CUDA route)."""
    from theory._random import _cholesky_qr_q, _householder_q

    A = torch.randn(count, 64, 64, generator=torch.Generator().manual_seed(0), dtype=torch.float64).to(device)
    return {"householder": best_rate(_householder_q, A, device), "cholesky": best_rate(_cholesky_qr_q, A, device)}


def batches(trials: int, rng_block: int, chunk: int) -> tuple[int, int]:
    """(rng_block, chunk) for a run of ``trials``: no block larger than the run, a chunk of whole blocks."""
    block = min(rng_block, trials)
    return block, block * max(1, min(trials, chunk) // block)


def ensemble_times(device: str, trials: int, rng_block: int, chunk: int,
                   reference_trials: int) -> dict[str, dict[str, float]]:
    """Seconds of ``simulate_fig3`` at ``trials`` for every attention ensemble (in-process, after the runs above
    have compiled the kernels), and the worst |z| of its means against a CPU run of the same ensemble at
    ``reference_trials``: each device's own route to the draws (Cholesky QR for Haar weights on CUDA, say) must
    give the same distribution."""
    from simulations.engine.config import ATTENTIONS

    block, chunk = batches(trials, rng_block, chunk)
    out = {}
    for attention in ATTENTIONS:
        t0 = time.perf_counter()
        res = simulate_fig3(Fig3Config(trials=trials, device=device, attention=attention, rng_block=block,
                                       chunk=chunk), progress=False)
        seconds = time.perf_counter() - t0
        ref = simulate_fig3(Fig3Config(trials=reference_trials, device="cpu", attention=attention), progress=False)
        out[attention] = dict(seconds=seconds, worst_z=worst_z(res, ref, EXACT_ZEROS.get(attention, ())))
        print(f"fig3 --attention {attention}, {trials:,} trials: {seconds:.1f} s; agreement with "
              f"{reference_trials:,} CPU trials: {said(out[attention]['worst_z'])}", flush=True)
    return out


# Metrics exactly zero in an ensemble by construction: omega of a doubly stochastic P (C4), i.e. symmetric
# attention (Sinkhorn's is its iterations' residual, a real quantity, and is compared). Their computed values are
# roundings of zero set by each device's order of summation, not samples of one law: measured, omega of symmetric
# attention was 2.19e-17 on an H100 against 2.40e-17 on the CPU at every step, |z| = 47.
EXACT_ZEROS = {"symmetric": ("omega",)}


MIN_COUNT = 30  # a cell with fewer values on either side is not compared: its |z| follows a t law with few degrees
# of freedom (data attention's last steps keep a handful of trials), which passes 4.5 by chance now and then


def worst_z(a, b, exact_zeros: tuple[str, ...] = ()) -> dict:
    """The largest |mean difference| in combined standard errors between two results over (metric, step), the
    cells paired by step, with where it is, how many cells of ``exact_zeros`` (metrics zero by construction) were
    left out, and how many had fewer than ``MIN_COUNT`` values on a side (or a step on one side only)."""
    from simulations.engine.stats import standard_error

    worst = dict(z=0.0, metric=None, step=None, exact_zero_cells=0, thin_cells=0)
    for metric in COMPARED:
        rows_a = {r.step: r for r in a.rows if r.metric == metric}
        rows_b = {r.step: r for r in b.rows if r.metric == metric}
        for step in sorted(rows_a.keys() | rows_b.keys()):
            ra, rb = rows_a.get(step), rows_b.get(step)
            if metric in exact_zeros:
                worst["exact_zero_cells"] += 1
                continue
            if ra is None or rb is None or min(ra.count, rb.count) < MIN_COUNT:
                worst["thin_cells"] += 1
                continue
            se = [standard_error(r.ci_low, r.ci_high, r.count) for r in (ra, rb)]
            if all(s > 0 for s in se) and abs(ra.mean - rb.mean) / math.hypot(*se) > worst["z"]:
                worst.update(z=abs(ra.mean - rb.mean) / math.hypot(*se), metric=metric, step=ra.step)
    return worst


def _json(value) -> str:
    """``value`` as strict JSON: a NaN or infinite float spelled out as a string, as every result file of the
    project writes it (:func:`simulations.output.writing._jsonable`; JSON itself has neither)."""
    from simulations.output.writing import _jsonable

    return json.dumps(_jsonable(value), indent=1, allow_nan=False)


def said(w: dict) -> str:
    """One worst_z result in words."""
    where = f" ({w['metric']}, step {w['step']})" if w["metric"] else ""
    left = f"; {w['exact_zero_cells']} cells of a metric zero by construction left out" if w["exact_zero_cells"] else ""
    thin = (f"; {w['thin_cells']} cells with fewer than {MIN_COUNT} values on a side left out"
            if w.get("thin_cells") else "")
    return f"worst |z| = {w['z']:.2f}{where} (bound 4.5){left}{thin}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    p.add_argument("--trials", default="100000,1000000", help="comma list of trial counts")
    p.add_argument("--rng-block", type=int, default=Fig3Config.cuda_batches["rng_block"])
    p.add_argument("--chunk", type=int, default=Fig3Config.cuda_batches["chunk"])
    p.add_argument("--budget", type=float, default=600.0, help="skip a size extrapolated to take longer (s)")
    p.add_argument("--reference-trials", type=int, default=10000)
    p.add_argument("--ensembles", type=int, default=40000,
                   help="trials of fig3 per attention ensemble, timed one by one (0: skip)")
    p.add_argument("--json", default=None, help="also write the numbers to this file")
    a = p.parse_args()
    if a.device == "cuda" and not torch.cuda.is_available():
        sys.exit("bench_gpu: no CUDA device here; run it where a GPU is lent (or pass --device cpu to check it)")
    out: dict = {"device": torch.cuda.get_device_name() if a.device == "cuda" else "cpu", "torch": torch.__version__}
    sizes = [int(s) for s in a.trials.split(",")]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    out["eigvals_cpu_thread"] = cpu_rate = eig_rate("cpu")
    torch.set_num_threads(threads)
    out["eigvals_device"] = dev_rate = eig_rate(a.device)
    print(f"torch.linalg.eigvals, 31 x 31 float64: {dev_rate:,.0f} matrices/s on {a.device}, "
          f"{cpu_rate:,.0f} on one CPU thread")
    if a.device == "cuda":
        from theory import _hqr

        print(f"GPU kernels: {_hqr.cuda_status()}")
        for count in (2 ** 14, 2 ** 18):
            rate = eig_rate("cuda", count, _hqr.top_eigenvalue_cuda)
            out[f"kernel_top_{count}"] = rate
            print(f"theory's warp-per-matrix kernel (theory/_hqr.cu), {count:,} matrices: {rate:,.0f} "
                  f"matrices/s ({rate / dev_rate:,.0f}x torch's eigvals on the device, {rate / cpu_rate:,.0f}x one "
                  f"CPU thread)")
        # (torch 2.11's batched eigvalsh failed here with CUSOLVER_STATUS_INTERNAL_ERROR at 65,536 matrices)
        sym_torch = eig_rate("cuda", 2 ** 14, lambda G: torch.linalg.eigvalsh(G)[..., -1], symmetric=True)
        sym_kernel = eig_rate("cuda", 2 ** 14, _hqr.symmetric_max_cuda, symmetric=True)
        out.update(eigvalsh_device=sym_torch, kernel_symmetric=sym_kernel)
        print(f"largest eigenvalue of C^T C (sigma), 16,384 matrices: torch.linalg.eigvalsh {sym_torch:,.0f} "
              f"matrices/s, the kernel {sym_kernel:,.0f} ({sym_kernel / sym_torch:,.1f}x)")
        # delta's error estimate: the error kernel on the saved Hessenberg forms, against torch's batched complex
        # LU of C - sigma I (theory._attention._eigenvalue_error, the GPU's route before the kernel)
        from theory._attention import _eigenvalue_error

        def torch_route(C):
            re, im, _ = _hqr.top_eigenvalue_cuda(C)
            return _eigenvalue_error(C, torch.complex(re, im))

        routes = {"torch_lu": eig_rate("cuda", 2 ** 14, torch_route),
                  "error_kernel": eig_rate("cuda", 2 ** 14, lambda C: _hqr.top_eigenvalue_cuda(C, errors=True))}
        out["top_with_error"] = routes
        print(f"top eigenvalue with its error estimate, 16,384 matrices: with torch's complex LU "
              f"{routes['torch_lu']:,.0f} matrices/s, with the error kernel {routes['error_kernel']:,.0f} "
              f"({routes['error_kernel'] / routes['torch_lu']:,.2f}x)")
        out["kernel_resources"] = {name: dict(registers=k.num_regs, local_bytes=k.local_size_bytes)
                                   for name, k in zip(("top", "symmetric", "error"), _hqr._load_gpu())}
        print(f"kernel resources (registers per thread, local bytes): {out['kernel_resources']}")
    ref = simulate_fig3(Fig3Config(trials=a.reference_trials, device="cpu"), progress=False)
    # one block, untimed: the first timed size must not carry first-use costs (torch's CUDA kernels, cuBLAS and
    # cuRAND set-up, the kernels' compilation)
    block, chunk = batches(sizes[0], a.rng_block, a.chunk)
    simulate_fig3(Fig3Config(trials=block, device=a.device, rng_block=block, chunk=block), progress=False)
    last_rate = None
    out["fig3"] = []
    for trials in sizes:
        if last_rate is not None and trials / last_rate > a.budget:
            print(f"fig3 at {trials:,} trials: skipped (about {trials / last_rate:,.0f} s at the last rate, over the "
                  f"{a.budget:g} s budget)")
            continue
        block, chunk = batches(trials, a.rng_block, a.chunk)
        if a.device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        res = simulate_fig3(Fig3Config(trials=trials, device=a.device, rng_block=block, chunk=chunk), progress=None)
        wall = time.perf_counter() - t0
        last_rate = trials / wall
        # torch's tensors (allocated) and its caching allocator's hold (reserved); neither counts the CUDA and CuPy
        # contexts. None on the CPU (JSON has no NaN)
        peak = torch.cuda.max_memory_allocated() / 2 ** 20 if a.device == "cuda" else None
        reserved = torch.cuda.max_memory_reserved() / 2 ** 20 if a.device == "cuda" else None
        z = worst_z(res, ref)
        out["fig3"].append(dict(trials=trials, rng_block=block, chunk=chunk, seconds=wall, trials_per_s=last_rate,
                                peak_mb=peak, peak_reserved_mb=reserved, worst_z=z, solver=res.checks["eigen_solver"]))
        memory = (f"peak device memory {peak:,.0f} MB allocated by torch ({reserved:,.0f} MB reserved)"
                  if peak is not None else "no device memory (CPU)")
        print(f"fig3 at {trials:,} trials on {res.device} (rng_block {block:,}): {wall:.1f} s, {last_rate:,.0f} "
              f"trials/s, {memory}; agreement with {a.reference_trials:,} CPU trials: "
              f"{said(z)}; LAPACK fallbacks {res.checks['eigen_solver']['lapack_fallbacks']}", flush=True)
        if a.json:  # after every size: a long run cut short keeps what it measured
            Path(a.json).write_text(_json(out))
    out["haar_weights"] = haar = haar_rates(a.device, 4096 if a.device == "cuda" else 256)
    print(f"Haar weights, 64 x 64 float64: Householder QR (torch.linalg.qr) {haar['householder']:,.0f} matrices/s, "
          f"Cholesky QR twice {haar['cholesky']:,.0f} ({haar['cholesky'] / haar['householder']:,.1f}x)")
    if a.ensembles:
        out["ensembles"] = dict(trials=a.ensembles, runs=ensemble_times(a.device, a.ensembles, a.rng_block, a.chunk,
                                                                       a.reference_trials))
    if a.json:
        Path(a.json).write_text(_json(out))


if __name__ == "__main__":
    main()
