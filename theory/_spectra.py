r"""What theory predicts for $\delta = |\lambda_2(P)|$ of each attention ensemble, and where it holds.

- ``softmax`` ($\mathrm{softmax}(\beta Z)$) and ``sinkhorn`` (its Sinkhorn scaling): $n(P - \Pi)$ has iid-like
  entries of variance $\kappa^2 = \mathrm{Var}(e^{\beta Z})/(\mathbb{E}e^{\beta Z})^2 = e^{\beta^2} - 1$, so the circular
  law (Bordenave-Caputo-Chafai, for random Markov matrices; the scalings of Sinkhorn are asymptotically
  constant) puts the spectrum of $P - \Pi$ in the disc of radius $\delta \approx \kappa/\sqrt n$. It needs
  $\kappa \ll \sqrt n$ and light tails: measured within ~5% for beta <= 1 at n >= 32 and failing from beta ~ 2,
  where rows are heavy-tailed (0.77 measured against 527 predicted at beta 4, n 32).
- ``dirichlet`` (rows Dirichlet($\alpha$)): the same law with $\kappa^2 = 1/\alpha$, $\delta \approx 1/\sqrt{\alpha n}$.
- ``banded`` (window $w$): a local chain mixes diffusively. For $\beta = 0$ the rows average $2w + 1$ neighbours
  and the slowest mode $\cos(\pi i/n)$ gives $\delta \approx 1 - \pi^2 w(w+1)/(6n^2)$ for $w \ll n$; it holds while
  the random weights are mild (beta <= 1); larger beta makes the walk lazier and $\delta$ closer to 1.
- ``causal``: exact, not asymptotic: $\delta = \max_{i \ge 2} P_{ii}$ (triangular). At $\beta = 0$,
  $P_{ii} = 1/i$ and $\delta = 1/2$; as $\beta \to \infty$ rows become one-hot on a uniform $j \le i$, and
  $\mathbb{E}\delta \to P(\exists i \ge 2: P_{ii} = 1) = 1 - 1/n$. Between, no closed form is used: the
  prediction is given at $\beta = 0$ only, with the limit as a bound for the figure's reading.
- ``symmetric`` (Birkhoff mixtures) and ``data`` (depends on X): no prediction here (NaN).
"""

from __future__ import annotations

import math

__all__ = ["slem_prediction", "prediction_regime", "SLEM_LAWS"]

_ATTENTIONS = ("softmax", "symmetric", "data", "causal", "dirichlet", "sinkhorn", "banded")
SLEM_LAWS = {
    "softmax": "circular law delta ~ sqrt((e^(beta^2) - 1)/n) (holds for beta <= 1)",
    "sinkhorn": "circular law delta ~ sqrt((e^(beta^2) - 1)/n) (holds for beta <= 1)",
    "dirichlet": "circular law delta ~ 1/sqrt(alpha n)",
    "banded": "diffusive gap delta ~ 1 - pi^2 w(w+1)/(6 n^2) (beta <= 1, w << n)",
    "causal": "delta = max_{i>=2} P_ii exactly; 1/2 at beta = 0, E delta -> 1 - 1/n as beta -> inf",
}


def slem_prediction(attention: str, n: int, *, beta: float = 4.0, alpha: float = 1.0, window: int = 2) -> float:
    """The predicted mean delta of ``attention``'s ensemble at size ``n`` (NaN where none is known; see module)."""
    if not isinstance(n, int) or n < 2:
        raise ValueError(f"n must be an integer >= 2; got {n!r}")
    if attention in ("softmax", "sinkhorn"):
        return math.sqrt(math.expm1(beta * beta) / n) if beta * beta < 700 else math.inf
    if attention == "dirichlet":
        if not alpha > 0:
            raise ValueError(f"alpha must be > 0; got {alpha!r}")
        return 1 / math.sqrt(alpha * n)
    if attention == "banded":
        if not (isinstance(window, int) and window >= 1):
            raise ValueError(f"window must be an integer >= 1; got {window!r}")
        return 1 - math.pi ** 2 * window * (window + 1) / (6 * n * n) if 2 * window + 1 < n else 0.0
    if attention == "causal":
        return 0.5 if beta == 0 else math.nan
    if attention in ("symmetric", "data"):
        return math.nan
    raise ValueError(f"unknown attention {attention!r}; one of {', '.join(_ATTENTIONS)}")


def prediction_regime(attention: str, *, beta: float = 4.0) -> bool:
    """Whether ``attention``'s prediction is claimed to hold at ``beta`` (the regimes stated in the module doc:
    beta <= 1 for the softmax-score ensembles, any alpha for dirichlet, beta = 0 for causal)."""
    if attention not in _ATTENTIONS:
        raise ValueError(f"unknown attention {attention!r}; one of {', '.join(_ATTENTIONS)}")
    if attention in ("softmax", "sinkhorn", "banded"):
        return beta <= 1
    if attention == "causal":
        return beta == 0
    return attention == "dirichlet"
