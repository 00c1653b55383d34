"""What the dtype can resolve: token diversity below the precision floor is rounding noise, not data."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["precision_floor", "mask_below_floor"]


def precision_floor(dtype: torch.dtype) -> float:
    """Smallest t_div told apart from rounding: tokens carry relative error ~eps, so the centred part is noise
    below ~eps ||X||, i.e. t_div below ~(64 eps)^2 (2e-28 in float64, 6e-11 in float32)."""
    return (64 * torch.finfo(dtype).eps) ** 2


def mask_below_floor(t_div: Tensor, *others: Tensor, dtype: torch.dtype) -> tuple[Tensor, ...]:
    """NaN (left out of the statistics, counted as excluded) where ``t_div`` is below the precision floor."""
    bad = t_div < precision_floor(dtype)
    return tuple(torch.where(bad, torch.full_like(v, float("nan")), v) for v in (t_div, *others))
