"""Where fig3's GPU time goes: ``python benchmarks/profile_gpu.py [TRIALS] [RNG_BLOCK]`` (default 100000 20000).

Runs one warm-up block (compilation, allocator), times ``simulate_fig3`` on CUDA plainly, then again under
torch's profiler with CPU and CUDA activities, and prints the kernels by self CUDA time, then the CPU-side ops by
self CPU time (``benchmarks/measured/gpu-h100-profile.txt`` is its output on an H100).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402

from simulations import Fig3Config, simulate_fig3  # noqa: E402


def main() -> None:
    if not torch.cuda.is_available():
        sys.exit("profile_gpu: no CUDA device here")
    trials = int(sys.argv[1]) if len(sys.argv) > 1 else 100000
    block = int(sys.argv[2]) if len(sys.argv) > 2 else 20000
    cfg = Fig3Config(trials=trials, device="cuda", rng_block=block, chunk=trials)
    simulate_fig3(Fig3Config(trials=block, device="cuda", rng_block=block, chunk=block), progress=False)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    simulate_fig3(cfg, progress=False)
    torch.cuda.synchronize()
    print(f"plain run {trials} trials block {block} {time.perf_counter() - t0:.2f} s", flush=True)
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        simulate_fig3(cfg, progress=False)
        torch.cuda.synchronize()
    print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=30, max_name_column_width=60))
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25, max_name_column_width=60))


if __name__ == "__main__":
    main()
