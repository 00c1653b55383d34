r"""All per-step quantities of one attention step $X \to Y$ at once, for Monte Carlo engines.

Unlike the single-claim functions, :func:`step_metrics` never raises on degenerate values: where a quantity
is undefined (t_div(X) = 0 gives $\xi_2 = 0/0$) it returns NaN or Inf, and the engine decides what to keep.
Shapes and finiteness of the inputs are still checked, once.
"""

from __future__ import annotations

from torch import Tensor

from ._attention import _mu, _omega, _slem_and_sigma
from ._escalation import _growth_of
from ._similarity import _scaled_split_norms, _shares_of
from ._validate import check_pair, check_row_stochastic, check_tokens

__all__ = ["step_metrics", "STEP_METRICS"]

STEP_METRICS = ("t_sim", "t_div", "xi_ratio_minus_1", "r", "r_estimate", "r_bound", "delta", "sigma", "mu",
                "omega")


def step_metrics(X: Tensor, Y: Tensor, P: Tensor, *, validate: bool = True) -> dict[str, Tensor]:
    r"""Quantities of the step $X \to Y$ driven by attention $P$ (torch in, torch out; shapes ``(...)``).

    ``X``: ``(..., n, d)``, ``Y``: ``(..., n, d')``, ``P``: ``(..., n, n)`` or ``(..., H, n, n)`` (heads: delta,
    sigma, mu, omega are head means, and the estimate and bound use the head mean of $\mu^2$ and $\delta^2$, C10).

    - ``t_sim``, ``t_div``: of $Y$ (D1); ``xi_ratio_minus_1`` $= \xi_1/\xi_2 - 1$ (D3); ``r`` (D4);
    - ``r_estimate`` $= 1/(s + \overline{\mu^2}(1-s))$ and ``r_bound`` $= 1/(s + \overline{\delta^2}(1-s))$ (C6, C10);
    - ``delta``, ``sigma``, ``mu``, ``omega`` of $P$ (D5);
    - ``identity_error``: $|C2(s, \xi_1, \xi_2) - r|/r$, the escalation identity as a consistency check;
    - ``bound_slack``: $r - $ ``r_bound`` (C6 when $P$ is symmetric; C8's counterexamples otherwise).

    ``validate=False`` skips the value checks (finiteness, row sums): for engines whose inputs come from
    :mod:`theory`'s own samplers, where each check is a full pass over the batch. Shapes are always checked.
    """
    if validate:
        check_tokens("X", X, nonzero=False)
        check_tokens("Y", Y, nonzero=False)
        check_row_stochastic("P", P)
    check_pair(X, Y)
    heads = P.ndim == X.ndim + 1
    if P.shape[-1] != X.shape[-2] or P.shape[: X.ndim - 2] != X.shape[:-2]:
        raise ValueError(f"P must be (..., n, n) or (..., H, n, n) matching X {tuple(X.shape)}; got {tuple(P.shape)}")
    x_norms, y_norms = _scaled_split_norms(X), _scaled_split_norms(Y)  # each matrix's one pass, shared below
    s, t = _shares_of(*x_norms[:2])
    s_y, t_y = _shares_of(*y_norms[:2])
    xi1, xi2 = _growth_of(x_norms, y_norms)
    r = s_y / s
    (delta, sigma), mu, omega = _slem_and_sigma(P), _mu(P), _omega(P)
    if heads:
        delta2, mu2 = delta.square().mean(-1), mu.square().mean(-1)
        delta, sigma, mu, omega = delta.mean(-1), sigma.mean(-1), mu.mean(-1), omega.mean(-1)
    else:
        delta2, mu2 = delta.square(), mu.square()
    r_bound = 1 / (s + delta2 * t)
    identity = xi1.square() / (xi1.square() * s + xi2.square() * t)
    return {
        "t_sim": s_y, "t_div": t_y, "xi_ratio_minus_1": xi1 / xi2 - 1, "r": r,
        "r_estimate": 1 / (s + mu2 * t), "r_bound": r_bound,
        "delta": delta, "sigma": sigma, "mu": mu, "omega": omega,
        "identity_error": (identity - r).abs() / r, "bound_slack": r - r_bound,
    }
