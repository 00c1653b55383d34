r"""Token-mixing operators of the two papers (C11 de-escalation, C12 context broadcasting, C13 LayerNorm).

C11 ([YZ]): $Y = (I - \tau\Pi)X$ scales the mean part by $1-\tau$ and keeps the centred part:
$\xi_1 = |1-\tau|$, $\xi_2 = 1$, $t_{sim}(Y) = (1-\tau)^2 s / ((1-\tau)^2 s + 1 - s)$.
C12 ([CB]): $CB(X) = (I + \Pi)X/2$, the $\tau = -1$ member scaled by 1/2: $\xi_1 = 1$, $\xi_2 = 1/2$,
$r = 1/(s + (1-s)/4)$. The two papers push similarity in opposite directions.
C13: LayerNorm centres each token over features (a right-multiplication, which commutes with $\Pi$) and
rescales each token; all-equal tokens stay all-equal, so $t_{sim} = 1$ is a fixed point.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from ._backend import array_function
from ._escalation import check_share_pair
from ._validate import check_broadcast, check_finite, check_tokens

__all__ = ["deescalate", "deescalated_similarity", "context_broadcast", "layer_norm"]


def _check_tau(tau: Tensor) -> None:
    if not bool(torch.isfinite(tau).all()):
        raise ValueError(f"tau must be finite; got {tau.flatten()[:4].tolist()}")


@array_function
def deescalate(X: Tensor, tau: Tensor) -> Tensor:
    r"""C11 ([YZ]): $Y = (I - \tau\Pi)X = X - \tau\,\mathbf{1}\bar x^T$. ``tau`` broadcasts against ``(...)``.

    $\tau = 1$ removes the mean token ($t_{sim}(Y) = 0$); $\tau \in (0, 2)$ lowers similarity; $\tau = -1$ is
    twice context broadcasting.
    """
    check_tokens("X", X, nonzero=False)
    _check_tau(tau)
    check_broadcast(tau=tau, batch=X[..., 0, 0])
    return _deescalate(X, tau)


def _deescalate(X: Tensor, tau: Tensor) -> Tensor:
    """:func:`deescalate` without its checks (a model's forward pass, where a diverging run's NaNs must flow on to
    its loss rather than raise)."""
    tau = tau.to(X.dtype)[..., None, None]  # (..., 1, 1); X's dtype, so a float32 batch stays float32
    return X - tau * X.mean(dim=-2, keepdim=True)


@array_function
def deescalated_similarity(s: Tensor, tau: Tensor, *, t_div: Tensor | None = None) -> Tensor:
    r"""C11: $t_{sim}((I - \tau\Pi)X) = (1-\tau)^2 s / ((1-\tau)^2 s + 1 - s)$ from $s = t_{sim}(X)$."""
    check_share_pair(s, t_div)
    _check_tau(tau)
    check_broadcast(s=s, tau=tau, t_div=t_div)
    one_minus_s = (1 - s) if t_div is None else t_div
    g = (1 - tau).square() * s
    if bool(((g == 0) & (one_minus_s == 0)).any()):  # s = 1 and tau = 1: Y = (I - Pi) X = 0, no t_sim
        raise ValueError("t_sim((I - tau Pi) X) is undefined where tau = 1 and s = 1 (all tokens equal): Y = 0")
    return g / (g + one_minus_s)


@array_function
def context_broadcast(X: Tensor) -> Tensor:
    r"""C12 ([CB]): $CB(X) = (X + \Pi X)/2$, every token averaged with the mean token (uniform attention)."""
    check_tokens("X", X, nonzero=False)
    return _context_broadcast(X)


def _context_broadcast(X: Tensor) -> Tensor:
    """:func:`context_broadcast` without its checks (a model's forward pass, as :func:`_deescalate`)."""
    return (X + X.mean(dim=-2, keepdim=True)) / 2


@array_function(keep=("eps",))
def layer_norm(X: Tensor, weight: Tensor | None = None, bias: Tensor | None = None, *, eps: float = 1e-5
               ) -> Tensor:
    r"""C13: LayerNorm over features, per token: $(x - \mathrm{mean}(x))/\sqrt{\mathrm{var}(x) + \epsilon}\,g + b$.

    Uses ``torch.nn.functional.layer_norm``. ``weight``/``bias``: ``(d,)`` or ``None``.
    """
    check_tokens("X", X, nonzero=False)
    for name, v in (("weight", weight), ("bias", bias)):
        if v is not None:
            check_finite(name, v)
            if tuple(v.shape) != (X.shape[-1],):
                raise ValueError(f"{name} must have shape (d,) = ({X.shape[-1]},); got {tuple(v.shape)}")
    if not (isinstance(eps, (int, float)) and not isinstance(eps, bool) and math.isfinite(eps) and eps >= 0):
        raise ValueError(f"eps must be a finite number >= 0; got {eps!r}")
    weight, bias = (None if v is None else v.to(X.dtype) for v in (weight, bias))  # numpy's float64 beside float32 X
    return F.layer_norm(X, X.shape[-1:], weight=weight, bias=bias, eps=float(eps))
