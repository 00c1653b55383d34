"""A run's peak memory, estimated before it starts, against what the machine has free: a run or a sweep's grid
that would not fit is refused in one line instead of failing in an allocation after its work has begun."""

from __future__ import annotations

import math
import os

__all__ = ["MEMORY_SHARE", "run_bytes", "available_bytes", "check_memory"]

MEMORY_SHARE = 0.5  # a run (a sweep's grid point) may use at most this share of the memory available at its start


def run_bytes(figure: str, cfg) -> float:
    """A generous estimate of one run's peak memory: a block of trials with its per-step tensors, per worker."""
    n, d = cfg.tokens, cfg.width
    if figure == "fig3":
        per_trial = 8 * (24 * n * n + 16 * n * d + 4 * d * d) + 8 * 40 * (cfg.depth + 1)
        return per_trial * cfg.rng_block * max(1, os.cpu_count() or 1)
    per_trial = 8 * cfg.depth * (cfg.heads * n * n * 6 + 40 * n * d) + 8 * 12 * d * d * cfg.depth
    return per_trial * cfg.rng_block * max(1, os.cpu_count() or 1)


def available_bytes() -> float:
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return math.inf


def check_memory(figure: str, configs: list, what: str = "the run") -> None:
    """``ValueError`` where the largest of ``configs`` would need more than :data:`MEMORY_SHARE` of the memory
    available now. ``what`` names it in the message ('the run', 'the grid')."""
    need = max(run_bytes(figure, c) for c in configs)
    have = available_bytes()
    if need > MEMORY_SHARE * have:
        largest = "" if len(configs) == 1 else "its largest point "
        raise ValueError(f"{what} is too large for memory: {largest}needs about {need / 2**30:.1f} GiB, and "
                         f"{have / 2**30:.1f} GiB is available (lower --rng-block, --tokens or --width)")
