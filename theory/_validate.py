"""Input checks, done once at each public entry, with messages that say what was expected and what arrived."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = [
    "check_finite",
    "check_tokens",
    "check_pair",
    "check_square",
    "check_row_stochastic",
    "check_unit_interval",
    "check_nonnegative",
    "row_stochastic_tolerance",
    "check_broadcast",
]


def _shape(t: Tensor) -> tuple[int, ...]:
    return tuple(t.shape)


def check_array(name: str, t) -> None:
    """``t`` arrived as an array (numpy, torch, a number or a list of them), not as something else entirely."""
    if not isinstance(t, Tensor):
        raise ValueError(f"{name} must be an array (numpy, torch, a number or a list); got {type(t).__name__} "
                         f"{t!r:.40}")


def check_broadcast(**arrays: Tensor | None) -> None:
    """The arrays (``None``: absent) broadcast against each other, as every elementwise argument must."""
    shapes = {name: tuple(t.shape) for name, t in arrays.items() if t is not None}
    try:
        torch.broadcast_shapes(*shapes.values())
    except RuntimeError:
        got = ", ".join(f"{name} {shape}" for name, shape in shapes.items())
        raise ValueError(f"{' and '.join(shapes)} must broadcast against each other; got {got}") from None


def check_finite(name: str, t: Tensor) -> None:
    check_array(name, t)
    # a finite sum has no NaN or Inf among its terms (either would make it NaN or Inf): one cheap reduction
    # (torch.isfinite(t).all() is 10-20x slower on the CPU); only a sum that overflowed needs the full check
    if t.is_floating_point() and bool(torch.isfinite(t.sum())):
        return
    if not bool(torch.isfinite(t).all()):
        bad = int((~torch.isfinite(t)).sum())
        raise ValueError(f"{name} must be finite; got {bad} NaN/Inf entr{'y' if bad == 1 else 'ies'}")


def check_tokens(name: str, X: Tensor, *, nonzero: bool = True) -> None:
    """``X`` is a batch of token matrices ``(..., n, d)`` with ``n >= 2``, finite, and no ``X = 0``."""
    check_array(name, X)
    if X.ndim < 2:
        raise ValueError(f"{name} must be a (..., n, d) token matrix; got shape {_shape(X)} (rank {X.ndim})")
    n, d = X.shape[-2:]
    if n < 2 or d < 1:
        raise ValueError(f"{name} must have n >= 2 tokens and d >= 1 features; got n = {n}, d = {d}")
    check_finite(name, X)
    if nonzero and X.numel() and bool((X == 0).flatten(-2).all(-1).any()):
        zeros = int((X == 0).flatten(-2).all(-1).sum())
        raise ValueError(f"{name} must be non-zero (similarity is undefined for X = 0); got {zeros} zero matri"
                         f"{'x' if zeros == 1 else 'ces'}")


def check_pair(X: Tensor, Y: Tensor, xname: str = "X", yname: str = "Y") -> None:
    """``Y`` is the image of ``X`` under a map: same batch shape and token count, any feature width."""
    if X.shape[:-1] != Y.shape[:-1]:
        raise ValueError(f"{yname} must have the batch shape and token count of {xname}, (..., n) = "
                         f"{_shape(X)[:-1]}; got {yname} of shape {_shape(Y)}")


def check_square(name: str, P: Tensor) -> None:
    check_array(name, P)
    if P.ndim < 2 or P.shape[-1] != P.shape[-2]:
        raise ValueError(f"{name} must be a (..., n, n) square matrix; got shape {_shape(P)}")
    if P.shape[-1] < 2:
        raise ValueError(f"{name} must act on n >= 2 tokens; got n = {P.shape[-1]}")
    check_finite(name, P)


def row_stochastic_tolerance(P: Tensor) -> float:
    """Rounding allowance for row sums: 16 n eps of P's dtype (1e-13 at n = 32 in float64, 6e-5 in float32)."""
    return 16 * P.shape[-1] * torch.finfo(P.dtype).eps


def check_row_stochastic(name: str, P: Tensor) -> None:
    """``P >= 0`` and ``P 1 = 1`` up to :func:`row_stochastic_tolerance`."""
    check_square(name, P)
    if P.numel() == 0:
        return
    tol = row_stochastic_tolerance(P)
    row_err = float((P.sum(-1) - 1).abs().max())
    neg = float((-P).max())
    if row_err > tol or neg > tol:
        raise ValueError(f"{name} must be row-stochastic (entries >= 0, rows summing to 1); "
                         f"max |row sum - 1| = {row_err:.3g}, most negative entry = {-max(neg, 0.0):.3g} "
                         f"(tolerance {tol:.1g})")


def check_unit_interval(name: str, t: Tensor, *, open_interval: bool = False) -> None:
    check_finite(name, t)
    if t.numel() == 0:
        return
    lo, hi = float(t.min()), float(t.max())
    bad = (lo <= 0 or hi >= 1) if open_interval else (lo < 0 or hi > 1)
    if bad:
        interval = "(0, 1)" if open_interval else "[0, 1]"
        raise ValueError(f"{name} must lie in {interval}; got values in [{lo:.6g}, {hi:.6g}]")


def check_nonnegative(name: str, t: Tensor) -> None:
    check_finite(name, t)
    if t.numel() and float(t.min()) < 0:
        raise ValueError(f"{name} must be >= 0; got minimum {float(t.min()):.6g}")
