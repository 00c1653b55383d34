r"""Growth factors, escalation rate and the escalation identity (D3, D4, C2).

For a map $X \mapsto Y$ (any map: attention, a weight matrix, a whole block):
$\xi_1 = \|\Pi Y\|/\|\Pi X\|$ grows the mean part, $\xi_2 = \|\Pi_\perp Y\|/\|\Pi_\perp X\|$ the centred part
(D3), and $r(X, Y) = t_{sim}(Y)/t_{sim}(X)$ (D4; [YZ] name the rate $r(X,Y)$, the ratio form is ours).

C2 ([YZ] Prop 2.3), exact for every map with $s = t_{sim}(X) \in (0, 1)$ and $Y \ne 0$:
$$ r(X, Y) = \frac{\xi_1^2}{\xi_1^2 s + \xi_2^2 (1 - s)}, \qquad
   \frac{\mathrm{odds}(Y)}{\mathrm{odds}(X)} = \Big(\frac{\xi_1}{\xi_2}\Big)^2, $$
so $r > 1 \iff \xi_1 > \xi_2$.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ._backend import array_function
from ._similarity import ScaledNorm, common_scale, ldexp, norm_ratio, shares, split_scaled_norms
from ._validate import check_broadcast, check_nonnegative, check_pair, check_tokens, check_unit_interval

__all__ = ["growth_factors", "escalation_rate", "escalation_excess", "escalation_identity", "odds_growth"]


def _check_map(X: Tensor, Y: Tensor) -> None:
    check_tokens("X", X)
    check_tokens("Y", Y)
    check_pair(X, Y)


def _growth_of(x_norms: tuple[ScaledNorm, ScaledNorm], y_norms: tuple[ScaledNorm, ScaledNorm]
               ) -> tuple[Tensor, Tensor]:
    """(xi1, xi2) from ``split_scaled_norms`` of X and of Y."""
    return norm_ratio(y_norms[0], x_norms[0]), norm_ratio(y_norms[1], x_norms[1])


def excess_of(x_norms: tuple[ScaledNorm, ScaledNorm], y_norms: tuple[ScaledNorm, ScaledNorm]) -> Tensor:
    r"""r - 1 from the split norms $(a, b)$ of X and $(A, B)$ of Y: $(t_{div}(X) - t_{div}(Y))/t_{sim}(X)$, written
    as $((Ab)^2 - (aB)^2) / (a^2 (A^2 + B^2))$ with the difference taken as $(Ab - aB)(Ab + aB)$. The two forms are
    equal; the first cancels where t_sim(X) is small (both diversities near 1: every digit lost at
    t_sim ~ 1e-20), the second only as far as r - 1 itself is ill-conditioned in the four norms."""
    (a, b), (A, B) = x_norms, y_norms
    u, v, e = common_scale(ScaledNorm(A.value * b.value, A.exp + b.exp), ScaledNorm(a.value * B.value, a.exp + B.exp))
    A_, B_, f = common_scale(A, B)
    return ldexp((u - v) * (u + v) / (a.value.square() * (A_.square() + B_.square())), 2 * (e - a.exp - f))


@array_function
def growth_factors(X: Tensor, Y: Tensor) -> tuple[Tensor, Tensor]:
    r"""Growth factors (D3): $(\xi_1, \xi_2) = (\|\Pi Y\|/\|\Pi X\|,\ \|\Pi_\perp Y\|/\|\Pi_\perp X\|)$.

    ``X``: ``(..., n, d)``; ``Y``: ``(..., n, d')``. Needs $0 < t_{sim}(X) < 1$ (both parts of X non-zero).
    """
    _check_map(X, Y)
    x_norms = split_scaled_norms(X)
    a, b = x_norms[0].value, x_norms[1].value
    if bool((a == 0).any()):
        raise ValueError("xi1 is undefined where X has a zero mean token (t_sim(X) = 0); "
                         f"got {int((a == 0).sum())} such matrices")
    if bool((b == 0).any()):
        raise ValueError("xi2 is undefined where all tokens of X are equal (t_sim(X) = 1); "
                         f"got {int((b == 0).sum())} such matrices")
    return _growth_of(x_norms, split_scaled_norms(Y))


@array_function
def escalation_rate(X: Tensor, Y: Tensor) -> Tensor:
    r"""Escalation rate (D4): $r(X, Y) = t_{sim}(Y)/t_{sim}(X)$. Needs $t_{sim}(X) > 0$ and $Y \ne 0$."""
    x_norms = _checked_rate_input(X, Y)
    return shares(*split_scaled_norms(Y))[0] / shares(*x_norms)[0]


def _checked_rate_input(X: Tensor, Y: Tensor) -> tuple[ScaledNorm, ScaledNorm]:
    _check_map(X, Y)
    x_norms = split_scaled_norms(X)
    zero = x_norms[0].value == 0
    if bool(zero.any()):
        raise ValueError("the escalation rate is undefined where t_sim(X) = 0 (zero mean token); "
                         f"got {int(zero.sum())} such matrices")
    return x_norms


@array_function
def escalation_excess(X: Tensor, Y: Tensor) -> Tensor:
    r"""$r(X, Y) - 1 = (t_{div}(X) - t_{div}(Y))/t_{sim}(X)$, computed from the diversities (D4).

    Never as ``r - 1``: near collapse $r$ is 1 to every digit of a float while its excess is ~$t_{div}$, and
    here it is exact to about eps $t_{div}(X)/t_{sim}(X)$ absolute: to its own rounding where it is of the order
    of $t_{div}(X)$ (its usual size), to fewer digits where the two diversities agree to many (it is their
    difference, and each is known to its rounding): ``Y = X diag(1, 1 + 2^-41)`` beside an X of
    $t_{div} \approx 4 \cdot 10^{-26}$ keeps 4 digits of its $r - 1 \approx 3 \cdot 10^{-38}$, and ``Y = 3X`` gives
    $-10^{-41}$ for its 0 (a review). Needs $t_{sim}(X) > 0$ and $Y \ne 0$, like :func:`escalation_rate`.
    """
    x_norms = _checked_rate_input(X, Y)
    return excess_of(x_norms, split_scaled_norms(Y))


def _rate_from_ratio(s: Tensor, q: Tensor, t_div: Tensor | None) -> Tensor:
    r"""$1/(s + q^2 (1 - s))$, with $1 - s$ taken from ``t_div`` when given (it is the accurate one)."""
    one_minus_s = (1 - s) if t_div is None else t_div
    return 1 / (s + q.square() * one_minus_s)


def check_share_pair(s: Tensor, t_div: Tensor | None) -> None:
    check_unit_interval("s (t_sim)", s)
    if t_div is not None:
        check_unit_interval("t_div", t_div)
        check_broadcast(s=s, t_div=t_div)
        tol = 64 * max(torch.finfo(s.dtype).eps, torch.finfo(t_div.dtype).eps)  # the coarser of the two
        err = float((s + t_div - 1).abs().max()) if s.numel() and t_div.numel() else 0.0
        if err > tol:
            raise ValueError(f"s and t_div must add to 1 (C1); max |s + t_div - 1| = {err:.3g}")


@array_function
def escalation_identity(s: Tensor, xi1: Tensor, xi2: Tensor, *, t_div: Tensor | None = None) -> Tensor:
    r"""C2 ([YZ] Prop 2.3): $r = \xi_1^2 / (\xi_1^2 s + \xi_2^2 (1 - s))$ for $s = t_{sim}(X) \in (0, 1)$.

    Pass ``t_div`` ($= 1 - s$, computed directly) when $s$ is close to 1: ``1 - s`` loses every digit there.
    Arguments broadcast against each other.
    """
    check_share_pair(s, t_div)
    check_nonnegative("xi1", xi1)
    check_nonnegative("xi2", xi2)
    check_broadcast(s=s, xi1=xi1, xi2=xi2, t_div=t_div)
    _check_c2_domain(s, xi1, xi2, t_div)
    return _rate_from_ratio(s, xi2 / xi1, t_div)


def _check_c2_domain(s: Tensor, xi1: Tensor, xi2: Tensor, t_div: Tensor | None) -> None:
    """C2 holds for s in (0, 1) (t_div > 0 where given: s itself may round to 1) and Y != 0 (xi1, xi2 not both 0)."""
    t = (1 - s) if t_div is None else t_div
    if bool(((s <= 0) | (t <= 0)).any()):
        raise ValueError(f"C2 needs s = t_sim(X) in (0, 1) (t_div > 0); got s in [{float(s.min()):.3g}, "
                         f"{float(s.max()):.3g}], t_div down to {float(t.min()):.3g}")
    if bool(((xi1 == 0) & (xi2 == 0)).any()):
        raise ValueError("C2 needs Y != 0; got xi1 = xi2 = 0")


@array_function
def odds_growth(xi1: Tensor, xi2: Tensor) -> Tensor:
    r"""C2, odds form: $\mathrm{odds}(Y)/\mathrm{odds}(X) = (\xi_1/\xi_2)^2$."""
    check_nonnegative("xi1", xi1)
    check_nonnegative("xi2", xi2)
    check_broadcast(xi1=xi1, xi2=xi2)
    return (xi1 / xi2).square()  # xi2 = 0 (all tokens made equal): odds(Y) = inf
