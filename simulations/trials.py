"""One fresh model and input per trial, for the Transformer figures (1, 2, 4, 5).

Trials cannot share a batch (each has its own weights), so a chunk is a loop over its trials. Trial ``j`` of a
random-number block draws, from that block's generator and in this order, the model seed (an integer), then
``X_0`` iid N(0,1) ``(1, n, d)``, then whatever the figure draws itself (Fig 1's loss). With ``rng_block = 1``
(the default) every trial has its own generator, so no result depends on the chunk size.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from torch import Tensor

from .config import TransformerConfig
from .engine import Chunk, resolve_device, resolve_dtype, run_chunks
from .stats import StreamingStats

__all__ = ["Trial", "run_trials", "precision_floor", "mask_below_floor"]

Trial = Callable[[int, Tensor, torch.Generator], dict[str, Tensor]]


def precision_floor(dtype: torch.dtype) -> float:
    """Smallest t_div told apart from rounding, ~(64 eps)^2 (as in Fig 3): tokens carry relative error ~eps."""
    return (64 * torch.finfo(dtype).eps) ** 2


def mask_below_floor(t_div: Tensor, *others: Tensor, dtype: torch.dtype) -> tuple[Tensor, ...]:
    """NaN (left out of the statistics, counted as excluded) where ``t_div`` is below the precision floor."""
    bad = t_div < precision_floor(dtype)
    return tuple(torch.where(bad, torch.full_like(v, float("nan")), v) for v in (t_div, *others))


def _chunk_values(cfg: TransformerConfig, ch: Chunk, trial: Trial) -> dict[str, Tensor]:
    n, d = cfg.tokens, cfg.width
    rows: list[dict[str, Tensor]] = []
    for g, size in zip(ch.random.generators, ch.random.sizes):
        for _ in range(size):
            seed = int(torch.randint(0, 2 ** 62, (1,), generator=g, device=g.device).item())
            X0 = torch.randn((1, n, d), generator=g, dtype=ch.random.dtype, device=ch.random.device)
            rows.append({m: v.detach() for m, v in trial(seed, X0, g).items()})
    return {m: torch.stack([r[m] for r in rows]) for m in rows[0]}  # (chunk trials, steps of m)


def run_trials(cfg: TransformerConfig, trial: Trial, first_step: dict[str, int], *, desc: str,
               keep_trials: bool = False, progress: bool | None = None
               ) -> tuple[StreamingStats, torch.device, float]:
    """``trial(seed, X0, generator) -> {metric: (steps - first_step[metric],)}`` over all trials.

    Returns the merged statistics (steps 0..L), the device and the elapsed seconds.
    """
    device, dtype = resolve_device(cfg.device), resolve_dtype(cfg.dtype)
    t0 = time.perf_counter()
    stats = run_chunks(lambda ch: (_chunk_values(cfg, ch, trial), first_step), trials=cfg.trials, seed=cfg.seed,
                       steps=cfg.depth + 1, chunk=cfg.chunk, rng_block=cfg.rng_block, device=device, dtype=dtype,
                       keep_trials=keep_trials, progress=progress, desc=desc)
    return stats, device, time.perf_counter() - t0
