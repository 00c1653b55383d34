"""One fresh model and input per trial, for the Transformer figures (1, 2, 4, 5).

Trials cannot share a batch (each has its own weights), so a block is a loop over its trials, run on one CPU
thread (the engine's workers: :func:`simulations.engine.run_chunks`). Each trial draws, from its random-number block's generator and in this
order, the model seed (an integer), then ``X_0`` iid N(0,1) ``(1, n, d)``, then whatever the figure draws itself
(Fig 1's readout). With ``rng_block = 1`` (the default) every trial has its own generator; in any case no
result depends on the chunk size.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from torch import Tensor

from .checkpoint import Checkpoint
from .config import TransformerConfig
from .runner import Block, resolve_device, resolve_dtype, run_chunks
from .stats import StreamingStats

__all__ = ["Trial", "run_trials"]

Trial = Callable[[int, Tensor, torch.Generator], dict[str, Tensor]]


def _block_values(cfg: TransformerConfig, block: Block, trial: Trial) -> dict[str, Tensor]:
    n, d, r = cfg.tokens, cfg.width, block.random
    rows: list[dict[str, Tensor]] = []
    for _ in range(block.trials):
        seed = int(torch.randint(0, 2 ** 62, (1,), generator=r.generator, device=r.device).item())
        X0 = torch.randn((1, n, d), generator=r.generator, dtype=r.dtype, device=r.device)
        rows.append({m: v.detach() for m, v in trial(seed, X0, r.generator).items()})
    return {m: torch.stack([row[m] for row in rows]) for m in rows[0]}  # (block trials, steps of m)


def run_trials(cfg: TransformerConfig, trial: Trial, first_step: dict[str, int], *, desc: str,
               keep_trials: bool = False, progress: bool | None = None, checkpoint: Checkpoint | None = None
               ) -> tuple[StreamingStats, torch.device, float]:
    """``trial(seed, X0, generator) -> {metric: (steps - first_step[metric],)}`` over all trials.

    Returns the merged statistics (steps 0..L), the device and the elapsed seconds (a resumed run's included).
    """
    device, dtype = resolve_device(cfg.device), resolve_dtype(cfg.dtype)
    t0 = time.perf_counter()
    # the engine runs one worker per core, each on one torch thread (a trial's tensors are small: threads cost)
    stats = run_chunks(lambda block: (_block_values(cfg, block, trial), first_step), trials=cfg.trials, seed=cfg.seed,
                       steps=cfg.depth + 1, chunk=cfg.chunk, rng_block=cfg.rng_block, device=device, dtype=dtype,
                       keep_trials=keep_trials, progress=progress, desc=desc, checkpoint=checkpoint)
    return stats, device, time.perf_counter() - t0 + stats.earlier_seconds  # a resumed run's earlier processes too
