"""How many lanes per matrix, and how much shared memory per block, the GPU eigenvalue kernels should use:

    python benchmarks/bench_hqr_lanes.py [--count 262144] [--repeats 5] [--json FILE]

``theory/_hqr.cu`` computes each step's scalars (norms, shifts, reflectors, deflation tests) in every lane of a
matrix's group alike, and spreads only the O(m) row and column updates over the lanes. With 32 lanes per matrix
the scalar work is issued once per matrix per warp instruction; with 16 or 8 lanes a warp instruction serves two
or four matrices, at the price of longer loops over the updates and fewer warps per multiprocessor (shared memory,
8.4 KB per 31 x 31 matrix, bounds the matrices a multiprocessor holds either way). Which wins depends on whether
the kernel is bound by issuing instructions or by their latency: this measures it, for each of the families the
CPU kernel is benchmarked on, at the default 48 KB of shared memory per block and at two opt-in budgets.

Every variant's results are checked bitwise against the default's on the same matrices (which lane computes an
entry never changes its arithmetic). Times are CUDA events around one launch over ``--count`` matrices, the median
of ``--repeats`` after a warm-up.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

import theory as T  # noqa: E402
from theory import _hqr  # noqa: E402
from theory._attention import _restrict  # noqa: E402


def families(count: int, n: int = 32) -> dict[str, torch.Tensor]:
    """C = Q^T P Q (m = n - 1) of the five families of benchmarks/lockstep_eig.py, drawn on the GPU."""
    g = T.make_generator(0, "cuda")
    out = {f"softmax beta {b:g}": T.softmax_attention((count,), n, beta=b, generator=g) for b in (0.5, 4.0, 1000.0)}
    perm = torch.rand(count, n, generator=g, device="cuda").argsort(-1)
    eye = torch.eye(n, dtype=torch.float64, device="cuda")
    out["permutation-like"] = 0.9 * eye[perm] + 0.1 * T.random_row_stochastic((count,), n, generator=g)
    out["sparse (often reducible)"] = T.random_row_stochastic((count,), n, zero_prob=0.8, generator=g)
    return {name: _restrict(P).contiguous() for name, P in out.items()}


def median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up: compilation, the shared-memory opt-in
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--count", type=int, default=2 ** 18)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--json", default=None)
    a = p.parse_args()
    if not torch.cuda.is_available() or not _hqr.cuda_available():
        sys.exit(f"bench_hqr_lanes: needs a CUDA GPU with the kernels built ({_hqr.cuda_status()})")
    import cupy

    attributes = cupy.cuda.Device().attributes
    # beyond 48 KB a block must opt in; budgets that tile a multiprocessor's shared memory with 3 or 2 blocks
    # (1 KB of it reserved per block) let it hold a few more matrices than 48 KB blocks do
    per_sm = attributes["MaxSharedMemoryPerMultiprocessor"]
    budgets = [_hqr.SHARED_BUDGET] + [min(per_sm // k - 1024, attributes["MaxSharedMemoryPerBlockOptin"])
                                      for k in (3, 2)]
    variants = [(lanes, budget) for budget in budgets for lanes in _hqr.LANE_CHOICES]
    data = families(a.count)
    out = {"device": torch.cuda.get_device_name(), "count": a.count, "budgets": budgets, "rows": []}
    print(f"{torch.cuda.get_device_name()}: {a.count:,} matrices 31 x 31 per launch, median of {a.repeats}; "
          f"default {_hqr.LANES} lanes, {_hqr.SHARED_BUDGET // 1024} KB per block")

    def symmetric(X, **kw):  # as a tuple, like the general kernel's outputs
        return (_hqr.symmetric_max_cuda(X, **kw),)

    C4 = data["softmax beta 4"]
    runs = [("top", _hqr.top_eigenvalue_cuda, 0, data),
            ("symmetric", symmetric, 1, {"C^T C, softmax beta 4": C4.mT @ C4})]
    for kind, fn, index, inputs in runs:
        for name, X in inputs.items():
            want = fn(X)
            base = None
            for lanes, budget in variants:
                same = all(torch.equal(u, v) for u, v in zip(fn(X, lanes=lanes, shared_budget=budget), want))
                seconds = median_seconds(lambda: fn(X, lanes=lanes, shared_budget=budget), a.repeats)
                rate = len(X) / seconds
                base = rate if base is None else base
                per = _hqr.per_block(X.shape[-1], lanes, budget)
                kernel = _hqr._load_gpu(lanes)[index]
                row = dict(kernel=kind, family=name, lanes=lanes, shared_budget=budget, per_block=per,
                           rate=rate, speedup=rate / base, bitwise_same=same, registers=kernel.num_regs,
                           local_bytes=kernel.local_size_bytes)
                out["rows"].append(row)
                print(f"{kind:9s} {name:26s} lanes {lanes:2d} block {per:2d} matrices ({budget // 1024:3d} KB): "
                      f"{rate:13,.0f} matrices/s  {rate / base:5.2f}x  registers {kernel.num_regs:3d}  "
                      f"{'bitwise same' if same else 'DIFFERENT'}", flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1))
    if not all(r["bitwise_same"] for r in out["rows"]):
        sys.exit("bench_hqr_lanes: a variant's results differ from the default's")


if __name__ == "__main__":
    main()
