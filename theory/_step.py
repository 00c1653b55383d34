r"""All per-step quantities of one attention step $X \to Y$ at once, for Monte Carlo engines.

Unlike the single-claim functions, these never raise on degenerate values: where a quantity is undefined
(t_div(X) = 0 gives $\xi_2 = 0/0$, a step to Y = 0 every quantity of Y) they return NaN or Inf, and the engine
decides what to keep. Bad inputs still raise ``ValueError``, checked once: shapes, finiteness, X = 0 (nothing is
defined for it: the public contract) and a P that is not row-stochastic.

Every quantity near 1 also comes as its excess, computed directly (shared/THEORY.md, "Precision"), with
$s = t_{sim}(X)$, $t = t_{div}(X)$:
$$ r - 1 = \frac{t - t_{div}(Y)}{s}, \quad r_{bound} - 1 = \frac{t(1 - \overline{\delta^2})}{s + \overline{\delta^2} t},
   \quad r_{estimate} - 1 = \frac{t(1 - \overline{\mu^2})}{s + \overline{\mu^2} t}, $$
so near collapse, where $r$ and its bound are both 1.0 in floating point, the excesses still differ in their
leading digits. C6 is checked in its odds form, exactly equivalent for $t > 0$ (C2):
$r \ge 1/(s + \delta^2 t) \iff \mathrm{odds}(Y)/\mathrm{odds}(X) = (\xi_1/\xi_2)^2 \ge \delta^{-2}$; ``odds_slack``
$= \delta^2 (\xi_1/\xi_2)^2 - 1$ is a relative slack that does not shrink with t.
"""

from __future__ import annotations

from torch import Tensor

from ._attention import deviation_stats
from ._backend import array_function
from ._escalation import _growth_of, excess_of
from ._metrics import collapse_metrics
from ._similarity import ScaledNorm, log_share, norm_ratio, shares, split_scaled_norms
from ._split import SplitTokens
from ._validate import check_pair, check_row_stochastic, check_tokens

__all__ = ["step_metrics", "split_step_metrics", "STEP_METRICS"]

STEP_METRICS = ("t_sim", "t_div", "log_t_div", "xi_ratio_minus_1", "xi_estimate_minus_1", "xi_bound_minus_1",
                "r", "r_minus_1", "r_estimate", "r_estimate_minus_1", "r_bound", "r_bound_minus_1",
                "delta", "sigma", "mu", "omega")


@array_function
def step_metrics(X: Tensor, Y: Tensor, P: Tensor, *, validate: bool = True) -> dict[str, Tensor]:
    r"""Quantities of the step $X \to Y$ driven by attention $P$ (numpy or torch in, the same out; shapes ``(...)``).

    ``X``: ``(..., n, d)``, ``Y``: ``(..., n, d')``, ``P``: ``(..., n, n)`` or ``(..., H, n, n)`` (heads: delta,
    sigma, mu, omega are head means, and the estimate and bound use the head mean of $\mu^2$ and $\delta^2$, C10).

    - ``t_sim``, ``t_div``, ``log_t_div`` (natural log): of $Y$ (D1);
    - ``xi_ratio_minus_1`` $= \xi_1/\xi_2 - 1$ (D3), beside its spectral estimate ``xi_estimate_minus_1``
      $= 1/\sqrt{\overline{\mu^2}} - 1$ and C5/C6's symmetric bound ``xi_bound_minus_1`` $= 1/\sqrt{\overline{\delta^2}} - 1$;
    - ``r`` (D4) and ``r_minus_1``; ``r_estimate`` $= 1/(s + \overline{\mu^2}(1-s))$ and ``r_bound``
      $= 1/(s + \overline{\delta^2}(1-s))$ (C6, C10), each with its ``_minus_1`` excess (module doc);
    - ``delta``, ``sigma``, ``mu``, ``omega`` of $P$ (D5);
    - ``bound_slack`` $= (r - 1) - (r_{bound} - 1)$ and ``odds_slack`` $= \overline{\delta^2}(\xi_1/\xi_2)^2 - 1$
      (C6 when $P$ is symmetric, C8's counterexamples otherwise; the two have the same sign);
    - the literature's ``stable_rank``, ``mean_cosine``, ``dong_residual`` of $Y$ (:mod:`theory._metrics`).

    ``validate=False`` skips the value checks (finiteness, X = 0, row sums): for engines whose inputs come from
    :mod:`theory`'s own samplers, where each check is a full pass over the batch. Shapes are always checked.
    For chains use :func:`split_step_metrics`, which needs no centring at all.
    """
    if validate:
        check_tokens("X", X)  # X = 0: no quantity of the step is defined
        check_tokens("Y", Y, nonzero=False)  # a step to Y = 0 is degenerate, not bad: NaN where undefined
        check_row_stochastic("P", P)
    check_pair(X, Y)
    if P.shape[-1] != X.shape[-2] or P.shape[: X.ndim - 2] != X.shape[:-2] or P.ndim not in (X.ndim, X.ndim + 1):
        raise ValueError(f"P must be (..., n, n) or (..., H, n, n) matching X {tuple(X.shape)}; got {tuple(P.shape)}")
    D = P - 1 / P.shape[-1]
    out = _metrics(split_scaled_norms(X), split_scaled_norms(Y), deviation_stats(D, P=P), heads=P.ndim == X.ndim + 1)
    return {**out, **collapse_metrics(Y)}


def split_step_metrics(X: SplitTokens, Y: SplitTokens, D: Tensor, D_exp: Tensor | None = None,
                       row: Tensor | None = None) -> dict[str, Tensor]:
    r""":func:`step_metrics` of a step held in split form: $Y = PXW$ with $P = \Pi + \mathbf{1}\rho^T + 2^{e_D} D$
    (the arguments of :func:`theory.attend`). The norms come from the parts themselves, so t_div is exact to
    rounding however small, and every excess keeps its digits."""
    for name, Z in (("X", X), ("Y", Y)):
        if not isinstance(Z, SplitTokens):
            raise ValueError(f"{name} must be SplitTokens (from theory.split_tokens or theory.attend); got "
                             f"{type(Z).__name__}")
    n = X.centred.shape[-2]
    if D.shape[-2:] != (n, n) or D.shape[:-2] != X.centred.shape[:-2] or Y.centred.shape[:-1] != X.centred.shape[:-1]:
        raise ValueError(f"D must be (..., n, n) and Y (..., n, d') matching X {tuple(X.centred.shape)}; got D "
                         f"{tuple(D.shape)}, Y {tuple(Y.centred.shape)}")
    return _metrics(X.norms(), Y.norms(), deviation_stats(D, D_exp, row), heads=False)


def _metrics(x_norms: tuple[ScaledNorm, ScaledNorm], y_norms: tuple[ScaledNorm, ScaledNorm],
             attention: tuple[Tensor, Tensor, Tensor, Tensor, Tensor], *, heads: bool) -> dict[str, Tensor]:
    s, t = shares(*x_norms)
    s_y, t_y = shares(*y_norms)
    xi1, xi2 = _growth_of(x_norms, y_norms)
    # xi1/xi2 from the four norms at once: the two ratios may each leave the float range where theirs does not
    q = norm_ratio(ScaledNorm(y_norms[0].value * x_norms[1].value, y_norms[0].exp + x_norms[1].exp),
                   ScaledNorm(x_norms[0].value * y_norms[1].value, x_norms[0].exp + y_norms[1].exp))
    delta, sigma, mu, omega, delta_err = attention
    # relative error estimate of delta (of the head whose delta is least certain): 0 causal, ~eps symmetric
    delta_rel_err = (delta_err / delta).nan_to_num(nan=0.0)
    if heads:
        delta_rel_err = delta_rel_err.amax(-1)
        delta2, mu2 = delta.square().mean(-1), mu.square().mean(-1)
        one_minus_delta2 = ((1 - delta) * (1 + delta)).mean(-1)
        one_minus_mu2 = ((1 - mu) * (1 + mu)).mean(-1)
        delta, sigma, mu, omega = delta.mean(-1), sigma.mean(-1), mu.mean(-1), omega.mean(-1)
    else:
        delta2, mu2 = delta.square(), mu.square()
        one_minus_delta2, one_minus_mu2 = (1 - delta) * (1 + delta), (1 - mu) * (1 + mu)
    r_minus_1 = excess_of(x_norms, y_norms)
    r_bound_minus_1 = t * one_minus_delta2 / (s + delta2 * t)
    r_estimate_minus_1 = t * one_minus_mu2 / (s + mu2 * t)
    return {
        "t_sim": s_y, "t_div": t_y, "log_t_div": log_share(y_norms[1], y_norms[0]),
        # 1/sqrt(m) - 1 = (1 - m)/(sqrt(m) (1 + sqrt(m))), from 1 - m computed directly: no cancellation near 1
        "xi_ratio_minus_1": q - 1, "xi_estimate_minus_1": one_minus_mu2 / (mu2.sqrt() * (1 + mu2.sqrt())),
        "xi_bound_minus_1": one_minus_delta2 / (delta2.sqrt() * (1 + delta2.sqrt())),
        "r": s_y / s, "r_minus_1": r_minus_1,
        "r_estimate": 1 + r_estimate_minus_1, "r_estimate_minus_1": r_estimate_minus_1,
        "r_bound": 1 + r_bound_minus_1, "r_bound_minus_1": r_bound_minus_1,
        "delta": delta, "sigma": sigma, "mu": mu, "omega": omega,
        "xi1": xi1, "xi2": xi2, "delta_rel_err": delta_rel_err,
        "bound_slack": r_minus_1 - r_bound_minus_1, "odds_slack": delta2 * q.square() - 1,
    }
