r"""Token similarity and diversity (D1, D2; the partition C1).

[YZ] Def 1.1: $t_{sim}(X) = \|\Pi X\|^2 / \|X\|^2$ and $t_{div}(X) = \|\Pi_\perp X\|^2 / \|X\|^2$, with
$\Pi = \mathbf{1}\mathbf{1}^T/n$ (``mean_part``: every row replaced by the mean token $\bar x$) and
$\Pi_\perp = I - \Pi$ (``centred_part``). Both parts are computed directly, never one as ``1 -`` the other:
after ten layers of attention $t_{div}$ is ~1e-30 and ``1 - t_sim`` would be zero. Since
$\|X\|^2 = \|\Pi X\|^2 + \|\Pi_\perp X\|^2$ (C1), the denominator is that sum, so the two shares add to one
to rounding. Each matrix is scaled by its largest entry first, so neither tiny nor huge entries under- or
overflow the squares.
"""

from __future__ import annotations

from torch import Tensor

from ._backend import array_function
from ._validate import check_tokens

__all__ = [
    "mean_part",
    "centred_part",
    "token_similarity",
    "token_diversity",
    "similarity_odds",
    "split_norms",
]


def _mean_part(X: Tensor) -> Tensor:
    return X.mean(dim=-2, keepdim=True).expand_as(X)


def _centre(X: Tensor) -> tuple[Tensor, Tensor]:
    """(xbar (..., 1, d), X - 1 xbar^T), with the mean taken of differences to the first token.

    For nearly equal tokens the differences are exact (Sterbenz), so the centred part keeps its relative
    accuracy however small it is, and equal tokens give exactly zero.
    """
    D = X - X[..., :1, :]
    dbar = D.mean(dim=-2, keepdim=True)  # (..., 1, d)
    return X[..., :1, :] + dbar, D - dbar


def _scaled_split_norms(X: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(||Pi X||, ||Pi_perp X||, scale) of X / scale, scale = the largest |entry| (1 for X = 0)."""
    n = X.shape[-2]
    scale = X.abs().amax(dim=(-2, -1), keepdim=True)
    scale = scale.masked_fill(scale == 0, 1)
    xbar, centred = _centre(X / scale)
    mean_norm = xbar.square().sum(dim=(-2, -1)).mul(n).sqrt()
    centred_norm = centred.square().sum(dim=(-2, -1)).sqrt()
    return mean_norm, centred_norm, scale[..., 0, 0]


def _split_norms(X: Tensor) -> tuple[Tensor, Tensor]:
    """(||Pi X||, ||Pi_perp X||) over the last two dims."""
    a, b, scale = _scaled_split_norms(X)
    return a * scale, b * scale


def _shares_of(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """(t_sim, t_div) from the two part norms (scaled or not: the shares are scale-free)."""
    a2, b2 = a.square(), b.square()
    total = a2 + b2
    return a2 / total, b2 / total


def _split_shares(X: Tensor) -> tuple[Tensor, Tensor]:
    """(t_sim, t_div): scale-free, so the scaled norms serve without scaling back."""
    a, b, _ = _scaled_split_norms(X)
    return _shares_of(a, b)


@array_function
def mean_part(X: Tensor) -> Tensor:
    r"""$\Pi X$: every token replaced by the mean token. ``X``: ``(..., n, d)``."""
    check_tokens("X", X, nonzero=False)
    return _mean_part(X).clone()


@array_function
def centred_part(X: Tensor) -> Tensor:
    r"""$\Pi_\perp X = X - \mathbf{1}\bar x^T$: the tokens with their mean removed. ``X``: ``(..., n, d)``."""
    check_tokens("X", X, nonzero=False)
    return _centre(X)[1]


@array_function
def split_norms(X: Tensor) -> tuple[Tensor, Tensor]:
    r"""$(\|\Pi X\|, \|\Pi_\perp X\|)$ in the Frobenius norm, batched: shapes ``(...)``."""
    check_tokens("X", X, nonzero=False)
    return _split_norms(X)


@array_function
def token_similarity(X: Tensor) -> Tensor:
    r"""Token similarity (D1): $t_{sim}(X) = \|\Pi X\|^2/\|X\|^2 = n\|\bar x\|^2/\|X\|^2 \in [0, 1]$.

    ``X``: ``(..., n, d)``, finite, non-zero. Returns shape ``(...)``.
    """
    check_tokens("X", X)
    return _split_shares(X)[0]


@array_function
def token_diversity(X: Tensor) -> Tensor:
    r"""Token diversity (D1): $t_{div}(X) = \|\Pi_\perp X\|^2/\|X\|^2$, from the centred matrix.

    Accurate to relative rounding even at 1e-24 and below, where ``1 - t_sim`` is zero.
    """
    check_tokens("X", X)
    return _split_shares(X)[1]


@array_function
def similarity_odds(X: Tensor) -> Tensor:
    r"""Similarity odds (D2): $t_{sim}/t_{div} = \|\Pi X\|^2/\|\Pi_\perp X\|^2$ (``inf`` when all tokens agree)."""
    check_tokens("X", X)
    a, b, _ = _scaled_split_norms(X)
    return (a / b).square()
