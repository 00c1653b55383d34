"""Benchmark: Figure 3's chain in the split form of C3 against the same chain on whole matrices, in one process.

    python benchmarks/bench_split_chain.py [--rounds 5] [--trials 250] [--depth 24] [--attention softmax]

Both run one random-number block of ``trials`` trials on one thread with the same draws, alternately, and record
the same quantities. The split chain is :func:`simulations.studies.fig3._chain` itself (``X = 1 m^T + E`` carried in
parts, :func:`theory.attend`, :func:`theory.split_step_metrics`, the literature's three metrics, its rescaling and
its sampled C2 check, which only it does: about 3% of a step). The whole-matrix chain is what it replaced:
``Y = P X W`` as one product (through theory's matmul, as the split chain's products) and
:func:`theory.step_metrics` of X and Y (which must centre both), with the same three literature metrics of Y.
Until a later session the whole side left out the three metrics and used torch's slower CPU matmul, two biases
the other way round of each other (its ratio then read 0.61-0.98 over sessions). Prints the median time per block of each and their ratio; the ratio is what to read
(absolute times vary on a shared machine). The split form must cost no more: ratio <= 1 within noise.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

import theory as T  # noqa: E402
from theory._backend import matmul  # noqa: E402
from theory._metrics import _dong_residual, _mean_cosine, _stable_rank  # noqa: E402
from simulations.engine.config import Fig3Config  # noqa: E402
from simulations.engine.runner import iter_chunks  # noqa: E402
from simulations.studies import fig3  # noqa: E402


def whole_matrix_chain(cfg: Fig3Config, ch) -> dict[str, torch.Tensor]:
    """The chain as it was before the split form: the same draws, full matrices, centred at every step."""
    n, d = cfg.tokens, cfg.width
    X = fig3.initial_tokens(cfg, ch)
    out, out_metrics = [], []
    for _ in range(cfg.depth):
        attention, W = fig3.draw_step(cfg, ch, T.split_tokens(X) if cfg.attention == "data" else None)
        P = attention["D"] + 1 / n
        Y = matmul(matmul(P, X), W)
        out.append(T.step_metrics(X, Y, P, validate=False)["t_div"])
        out_metrics.append(torch.stack([_stable_rank(Y), _mean_cosine(Y), _dong_residual(Y)], -1))  # unchecked
        Y = Y / Y.abs().amax(dim=(-2, -1), keepdim=True)
        X = Y * (math.sqrt(n * d) / torch.linalg.matrix_norm(Y)[..., None, None])
    return {"t_div": torch.stack(out, -1), "collapse_metrics": torch.stack(out_metrics, -2)}


def measure(*, rounds: int = 5, trials: int = 250, depth: int = 24, attention: str = "softmax"
            ) -> tuple[float, float]:
    """Median seconds per block of (the split chain, the whole-matrix chain), alternating, one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    cfg = Fig3Config(trials=trials, rng_block=trials, chunk=trials, depth=depth, attention=attention, device="cpu")
    times = {"split": [], "whole": []}
    try:
        for r in range(rounds + 1):  # round 0 warms up
            for name, chain in (("split", fig3._chain), ("whole", whole_matrix_chain)):
                ch = next(iter_chunks(trials, r, chunk=trials, rng_block=trials, device=torch.device("cpu"),
                                      dtype=torch.float64)).blocks[0]
                t0 = time.perf_counter()
                chain(cfg, ch)
                if r:
                    times[name].append(time.perf_counter() - t0)
    finally:
        torch.set_num_threads(threads)
    return statistics.median(times["split"]), statistics.median(times["whole"])


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--trials", type=int, default=250)
    p.add_argument("--depth", type=int, default=24)
    p.add_argument("--attention", default="softmax", choices=("softmax", "symmetric"))
    a = p.parse_args()
    split, whole = measure(rounds=a.rounds, trials=a.trials, depth=a.depth, attention=a.attention)
    print(f"fig3 chain, {a.attention} attention, one block of {a.trials} trials x {a.depth} layers, one thread, "
          f"median of {a.rounds} alternating rounds:")
    print(f"  split form (C3, theory.attend):      {split * 1e3:8.1f} ms")
    print(f"  whole matrices (P X W, step_metrics): {whole * 1e3:8.1f} ms")
    print(f"  ratio split / whole: {split / whole:.2f}")


if __name__ == "__main__":
    main()
