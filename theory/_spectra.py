r"""What theory predicts for $\delta = |\lambda_2(P)|$ of each attention ensemble, and where it holds.

- ``softmax`` ($\mathrm{softmax}(\beta Z)$) and ``sinkhorn`` (its Sinkhorn scaling): $n(P - \Pi)$ has iid-like
  entries of variance $\kappa^2 = \mathrm{Var}(e^{\beta Z})/(\mathbb{E}e^{\beta Z})^2 = e^{\beta^2} - 1$, so the circular
  law (Bordenave-Caputo-Chafai, for random Markov matrices; the scalings of Sinkhorn are asymptotically
  constant) puts the spectrum of $P - \Pi$ in the disc of radius $\delta \approx \kappa/\sqrt n$. It needs
  $\kappa \ll \sqrt n$ and light tails: measured within ~5% for beta <= 1 at n >= 32 (softmax; 12% low at n = 16,
  beta = 1, and 25-67% low at n = 8 and 2) and at n >= 64 (sinkhorn: 9-10% low at n = 32, beta = 1, its
  scalings not yet constant), failing from beta ~ 2, where rows are heavy-tailed (0.77 measured against 527
  predicted at beta 4, n 32). At beta = 0 both are exact at any n: $P = \Pi$, $\delta = 0$, and the law says 0.
- ``dirichlet`` (rows Dirichlet($\alpha$)): the same law with $\kappa^2 = 1/\alpha$, $\delta \approx 1/\sqrt{\alpha n}$,
  which needs $\alpha n \gg 1$ and n itself not small: measured within 5% for $\alpha n \ge 8$ at n = 16-64
  (delta's mean 0.8-4.8% above the law in a review's 2,000 draws at $\alpha n$ = 16-1024; "within 4%" was said
  before, on fewer draws), 17% low at $\alpha n$ = 1.6 (below that it even exceeds 1, which no delta can), 6% high
  at n = 8 and 45% at n = 2 (where $\delta = |a - b|$, a and b Beta($\alpha, \alpha$), has mean about
  $0.4/\sqrt\alpha$, not $0.71/\sqrt\alpha$), whatever $\alpha$; so it is claimed for $\alpha n \ge 8$ and
  $n \ge 16$.
- ``banded`` (window $w$): a local chain mixes diffusively. For $\beta = 0$ the rows average up to $2w + 1$
  neighbours and the slowest mode $\cos(\pi i/n)$ gives $\delta \approx 1 - \pi^2 w(w+1)/(6n^2)$ for $w \ll n$. The
  law is about the gap $1 - \delta$ (a delta near 1 within 1% can have its gap 25% off): the edge rows, which see
  fewer neighbours, widen the gap by a relative $O(w/n)$, exact at $\beta = 0$ (the matrix is fixed): 6.5-9.2% at
  $n = 11w + 10$ (measured at $w$ = 1-40 and 48-300: the excess grows with $w$ towards its continuum limit at
  $w/n = 1/11$, 9.2%), 14% at $n = 10$, $w = 1$, and 24% at $w = n/4$. At $n = 10(w + 1)$, the regime claimed
  before, it is 6.8% at $w = 1$ but 10.0% at $w = 48$ and more beyond (10.08% in the limit; a review's
  counterexample). So the law is claimed for $n \ge 11w + 10$ and given (unclaimed) for any $2w + 1 < n$. Once
  $w \ge n - 1$ every row sees every token and the ensemble is softmax's (its law and regime); between, no
  prediction. Random weights ($\beta > 0$) make the walk lazier and its gap smaller than the law's: by 15-35% at
  $w = 1$, beta 0.5 and 58-81% at beta 1 (n = 32-64), the deficit growing with n (at $w = 2$, beta 0.5, within
  5%), so the law is claimed at $\beta = 0$ only.
- ``causal``: exact, not asymptotic: $\delta = \max_{i \ge 2} P_{ii}$ (triangular). At $\beta = 0$,
  $P_{ii} = 1/i$ and $\delta = 1/2$; as $\beta \to \infty$ rows become one-hot on a uniform $j \le i$, and
  $\mathbb{E}\delta \to P(\exists i \ge 2: P_{ii} = 1) = 1 - 1/n$. Between, no closed form is used: the
  prediction is given at $\beta = 0$ only, with the limit as a bound for the figure's reading.
- ``symmetric`` (Birkhoff mixtures) and ``data`` (depends on X): no prediction here (NaN).
"""

from __future__ import annotations

import math

from ._random import _alpha, _beta, _sizes

__all__ = ["slem_prediction", "prediction_regime", "SLEM_LAWS"]

_ATTENTIONS = ("softmax", "symmetric", "data", "causal", "dirichlet", "sinkhorn", "banded")
SLEM_LAWS = {
    "softmax": "circular law delta ~ sqrt((e^(beta^2) - 1)/n) (holds for beta <= 1, n >= 32)",
    "sinkhorn": "circular law delta ~ sqrt((e^(beta^2) - 1)/n) (holds for beta <= 1, n >= 64)",
    "dirichlet": "circular law delta ~ 1/sqrt(alpha n) (holds for alpha n >= 8, n >= 16)",
    "banded": "diffusive gap 1 - delta ~ pi^2 w(w+1)/(6 n^2) (holds within 10% for beta = 0, n >= 11w + 10; "
              "softmax's law for w >= n - 1)",
    "causal": "delta = max_{i>=2} P_ii exactly; 1/2 at beta = 0, E delta -> 1 - 1/n as beta -> inf",
}


def slem_prediction(attention: str, n: int, *, beta: float = 4.0, alpha: float = 1.0, window: int = 2) -> float:
    """The predicted mean delta of ``attention``'s ensemble at size ``n`` (NaN where none is known; see module)."""
    _sizes(n=(n, 2))
    _beta(beta)  # the samplers' own checks: a prediction takes what they take
    if attention in ("softmax", "sinkhorn"):
        return math.sqrt(math.expm1(beta * beta) / n) if beta * beta < 700 else math.inf
    if attention == "dirichlet":
        _alpha(alpha)
        return 1 / math.sqrt(alpha * n)
    if attention == "banded":
        _sizes(window=(window, 1))
        if window >= n - 1:  # every row sees every token: softmax attention (at beta = 0, P = Pi and delta = 0)
            return slem_prediction("softmax", n, beta=beta)
        return 1 - math.pi ** 2 * window * (window + 1) / (6 * n * n) if 2 * window + 1 < n else math.nan
    if attention == "causal":
        return 0.5 if beta == 0 else math.nan
    if attention in ("symmetric", "data"):
        return math.nan
    raise ValueError(f"unknown attention {attention!r}; one of {', '.join(_ATTENTIONS)}")


def prediction_regime(attention: str, n: int, *, beta: float = 4.0, alpha: float = 1.0, window: int = 2) -> bool:
    """Whether ``attention``'s prediction at size ``n`` is claimed to hold (the regimes of the module doc, where it
    was measured: softmax beta <= 1 and n >= 32, sinkhorn beta <= 1 and n >= 64, both exact at beta = 0; dirichlet
    alpha n >= 8 and n >= 16; banded beta = 0 and n >= 11w + 10, softmax's regime for w >= n - 1; causal
    beta = 0). Bad parameters raise ``ValueError`` as :func:`slem_prediction` does."""
    if attention not in _ATTENTIONS:
        raise ValueError(f"unknown attention {attention!r}; one of {', '.join(_ATTENTIONS)}")
    _sizes(n=(n, 2))
    _beta(beta)
    if attention == "softmax":
        return beta == 0 or (beta <= 1 and n >= 32)
    if attention == "sinkhorn":
        return beta == 0 or (beta <= 1 and n >= 64)
    if attention == "dirichlet":
        _alpha(alpha)
        return alpha * n >= 8 and n >= 16
    if attention == "banded":
        _sizes(window=(window, 1))
        if window >= n - 1:
            return prediction_regime("softmax", n, beta=beta)
        return beta == 0 and n >= 11 * window + 10
    if attention == "causal":
        return beta == 0
    return False
