"""Where fig3's CPU time goes, per trial and layer: ``python benchmarks/profile_cpu.py [TRIALS]`` (default 500).

Runs fig3's chain (defaults otherwise) on one worker and one thread under cProfile, after a warm-up block, and
prints microseconds per trial and layer (one step) for the parts any fig3 needs before its first metric (the
draws, the chain's products, the kernel for delta with its error estimate), the rest of the step, and the whole;
then the functions by internal time; last, how the engine's workers scale (2000 trials on one worker against
one worker per core, each on one thread, twice). cProfile times calls into C (torch ops, numpy's matmul, the kernels through
ctypes) as wall time, so those parts are not inflated by it; the interpreter-bound rest is, a little.
``benchmarks/measured/cpu-profile.txt`` is its output on the 2-core machine.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from simulations.engine.config import Fig3Config  # noqa: E402
from simulations.engine.runner import default_workers, run_chunks  # noqa: E402
from simulations.studies import fig3  # noqa: E402

# (label, (file suffix, function name, caller function or None)): cumulative time of the function, counted only
# when called from that caller where one is named
PARTS = [
    ("draws (scores, weights, softmax)", ("studies/fig3.py", "draw_step", None)),
    ("chain's products (X W, P X: numpy's matmul in attend)", ("theory/_backend.py", "matmul", "attend")),
    ("kernel for delta with its error estimate", ("theory/_lockstep.py", "top_eigenvalue", None)),
    ("symmetric kernel (sigma, stable rank)", ("theory/_lockstep.py", "symmetric_max_eigenvalue", None)),
    ("attention quantities (deviation_stats: delta, sigma, mu)", ("theory/_attention.py", "deviation_stats", None)),
    ("literature metrics (split_collapse_metrics)", ("theory/_metrics.py", "split_collapse_metrics", None)),
    ("C2 check (full-form recomputation)", ("studies/fig3.py", "_c2_errors", None)),
]


def _seconds(stats: pstats.Stats, where: tuple[str, str, str | None]) -> float:
    suffix, name, caller = where
    total = 0.0
    for (path, _, fn), (_, _, _, cum, callers) in stats.stats.items():
        if fn != name or not path.endswith(suffix):
            continue
        if caller is None:
            total += cum
        else:
            total += sum(c[3] for (_, _, cfn), c in callers.items() if cfn == caller)
    return total


def main() -> None:
    trials = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    block = min(250, trials)  # fig3's CPU block, or one block for a smaller run
    cfg = Fig3Config(trials=trials, chunk=block * -(-trials // block), rng_block=block)
    threads = torch.get_num_threads()
    workers = default_workers(torch.device("cpu"))  # the engine's: one per thread torch may use
    torch.set_num_threads(1)

    def chain(cfg_, workers=1):
        return run_chunks(lambda ch: fig3._chain(cfg_, ch), trials=cfg_.trials, seed=0, steps=cfg_.depth + 1,
                          chunk=cfg_.chunk, rng_block=cfg_.rng_block, device=torch.device("cpu"),
                          dtype=torch.float64, progress=False, workers=workers)

    chain(Fig3Config(trials=250, chunk=250, rng_block=250))  # warm-up: kernel load, allocator
    t0 = time.perf_counter()
    chain(cfg)
    plain = time.perf_counter() - t0
    prof = cProfile.Profile()
    prof.enable()
    chain(cfg)
    prof.disable()
    stats = pstats.Stats(prof)
    steps = trials * cfg.depth
    whole = _seconds(stats, ("studies/fig3.py", "_chain", None))
    print(f"fig3 chain, {trials} trials x {cfg.depth} layers, one worker, one thread: {plain:.2f} s plain "
          f"({plain / steps * 1e6:.1f} us per step), {whole:.2f} s under cProfile")
    needed = 0.0
    for i, (label, where) in enumerate(PARTS):
        us = _seconds(stats, where) / steps * 1e6
        needed += us if i < 3 else 0.0
        print(f"  {label:58s} {us:6.1f} us per step")
    print(f"  {'the first three together (what any fig3 needs)':58s} {needed:6.1f} us per step")
    print(f"  {'the whole step (_chain)':58s} {whole / steps * 1e6:6.1f} us per step")
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(25)
    print(out.getvalue())
    big = Fig3Config(trials=2000, chunk=1000, rng_block=250)
    for _ in range(2):  # one worker on one thread against the engine's workers, one thread each, alternated
        torch.set_num_threads(1)
        t0 = time.perf_counter()
        chain(big, 1)
        one = time.perf_counter() - t0
        torch.set_num_threads(threads)
        t0 = time.perf_counter()
        chain(big, workers)
        many = time.perf_counter() - t0
        print(f"2000 trials: one worker {one:.2f} s, {workers} workers {many:.2f} s: {one / many:.2f}x")


if __name__ == "__main__":
    main()
