r"""Bounds on growth and escalation (C5-C10) and the quantities they are stated in.

Conventions: $s = t_{sim}(X)$; $1 - s$ is taken from an explicit ``t_div`` when one is passed.

- C5 ($Y = PXU$, $U$ orthogonal): $\xi_2 \le \sigma(P)$ and $|\xi_1 - 1| \le \omega(P)\sqrt{t_{div}/t_{sim}}$.
- C6 ($P$ symmetric): $r(X, PXU) \ge 1/(s + \delta^2(1-s))$; spectral estimate $1/(s + \mu^2(1-s))$.
- C7 (chain, $\delta(P_k) \le \bar\delta < 1$): $t_{div}(X_k) \le \bar\delta^{2k}/\mathrm{odds}(X_0)$; one step
  shrinks $t_{div}$ by at most $\bar\delta^2(1+o_k)/(\bar\delta^2+o_k)$, not by $\bar\delta^2$.
- C8: without symmetry C5's corollary and C6 fail; ``escalation_bound_slack`` measures by how much;
  ``counterexample_n2`` and ``counterexample_positive`` (every entry > 0) have $r < 1$.
- C9 ($Y = X + PXW$): exact second moments; the odds ratio (not $\bar r$, which tends to 1 as $s \to 1$)
  is at least $(1+\gamma)/(1+\gamma\delta^2)$.
- C10 ($Y = \sum_h P_h X W_h$): $\bar r \ge 1/(s + \overline{\delta_h^2}(1-s))$.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ._attention import _omega, _sigma, _slem
from ._backend import array_function
from ._escalation import _check_map, _rate_from_ratio, check_share_pair, excess_of
from ._similarity import (_scaled_parts, _split_norms, _split_shares, ldexp, norm_ratio, part_norms, shares,
                          split_scaled_norms)
from ._validate import check_broadcast, check_nonnegative, check_pair, check_row_stochastic, check_tokens

__all__ = [
    "escalation_lower_bound",
    "spectral_rate_estimate",
    "xi_bounds",
    "diversity_decay_bound",
    "diversity_step_ratio_bound",
    "escalation_bound_slack",
    "residual_second_moments",
    "residual_odds_growth_bound",
    "multihead_lower_bound",
    "multihead_mean_rate",
    "counterexample_n2",
    "counterexample_positive",
]


@array_function
def escalation_lower_bound(s: Tensor, delta: Tensor, *, t_div: Tensor | None = None) -> Tensor:
    r"""C6 ([YZ] bound on $r$ via $|\lambda_2(P)|$): $1/(s + \delta^2 (1 - s))$, $\ge 1$ for $\delta \le 1$.

    A lower bound on $r(X, PXU)$ for symmetric row-stochastic $P$ and orthogonal $U$, and on the
    ratio-of-expectations rate when $U$ is replaced by Gaussian $W$. Arguments broadcast.
    """
    check_share_pair(s, t_div)
    _check_slem("delta", delta)
    check_broadcast(s=s, delta=delta, t_div=t_div)
    return _rate_from_ratio(s, delta, t_div)


SLEM_ROUNDING = {torch.float64: 1e-6, torch.float32: 1e-3}  # how far above 1 a computed SLEM may lie


def _check_slem(name: str, delta: Tensor) -> None:
    """A SLEM of a row-stochastic P lies in [0, 1]. A computed one may exceed 1 by the rounding of P's rows (the
    row-stochastic check allows 16 n eps) and of its eigenvalues: :data:`SLEM_ROUNDING` (float32's for any dtype
    coarser than float64) covers that for n up to about 1e8 in float64 and 500 in float32, and a float32 SLEM
    passed as a Python number, while a delta of 1.01 is still refused."""
    check_nonnegative(name, delta)
    if delta.numel() and float(delta.max()) > 1 + SLEM_ROUNDING.get(delta.dtype, 1e-3):
        raise ValueError(f"{name} must lie in [0, 1] (the SLEM of a row-stochastic P); got {float(delta.max()):.6g}")


@array_function
def spectral_rate_estimate(s: Tensor, mu: Tensor, *, t_div: Tensor | None = None) -> Tensor:
    r"""C6 estimate ([YZ] "if $P = P^T$"): $r \approx 1/(s + \mu^2(1-s))$ for random $X$, $\mu$ the RMS gain."""
    check_share_pair(s, t_div)
    check_nonnegative("mu", mu)
    check_broadcast(s=s, mu=mu, t_div=t_div)
    return _rate_from_ratio(s, mu, t_div)


@array_function
def xi_bounds(X: Tensor, P: Tensor) -> tuple[Tensor, Tensor]:
    r"""C5: for $Y = PXU$ ($U$ orthogonal), returns $(\sigma(P),\ \omega(P)\sqrt{t_{div}(X)/t_{sim}(X)})$.

    The first bounds $\xi_2$ from above, the second bounds $|\xi_1 - 1|$. ``X``: ``(..., n, d)``,
    ``P``: ``(..., n, n)`` row-stochastic.
    """
    check_tokens("X", X)
    check_row_stochastic("P", P)
    check_pair(X, P, "X", "P")
    a, b = split_scaled_norms(X)
    return _sigma(P), _omega(P) * norm_ratio(b, a)  # b/a from the scaled pairs: no overflow at X ~ 1e308


@array_function
def diversity_decay_bound(odds0: Tensor, dbar: Tensor, k: Tensor) -> Tensor:
    r"""C7: $t_{div}(X_k) \le \bar\delta^{2k} / \mathrm{odds}(X_0)$ for $X_{j+1} = P_j X_j U_j$, $\delta(P_j) \le \bar\delta$.

    R-linear convergence of $t_{sim} \to 1$ with rate $\bar\delta^2$ (the odds are Q-linear,
    $o_{k+1} \ge o_k/\bar\delta^2$; $t_{div}$'s one-step ratio is only bounded by ``diversity_step_ratio_bound``).
    Evaluated in logs, so deep chains neither underflow early nor overflow. Arguments broadcast.
    """
    check_nonnegative("odds0", odds0.nan_to_num(nan=float("nan"), posinf=0.0))  # inf: all tokens agree
    check_nonnegative("dbar", dbar)
    check_nonnegative("k", k)
    check_broadcast(odds0=odds0, dbar=dbar, k=k)
    return torch.exp(torch.where(k == 0, 0, 2 * k * torch.log(dbar)) - torch.log(odds0))  # dbar^0 = 1, dbar = 0 too


@array_function
def diversity_step_ratio_bound(odds: Tensor, dbar: Tensor) -> Tensor:
    r"""C7, one step: $t_{div}(X_{k+1})/t_{div}(X_k) \le \bar\delta^2 (1 + o_k)/(\bar\delta^2 + o_k)$, $o_k = \mathrm{odds}(X_k)$.

    Larger than $\bar\delta^2$, tending to it as $o_k \to \infty$: t_sim converges R-linearly with rate
    $\bar\delta^2$ (``diversity_decay_bound``) and only asymptotically Q-linearly with that ratio; the odds are
    Q-linear ($o_{k+1} \ge o_k/\bar\delta^2$). Tight at n = 2, where $\xi_2 = \delta$ exactly.
    """
    check_nonnegative("odds", odds.nan_to_num(nan=float("nan"), posinf=0.0))  # inf: all tokens agree; NaN refused
    check_nonnegative("dbar", dbar)
    check_broadcast(odds=odds, dbar=dbar)
    d2 = dbar.square()
    return torch.where(torch.isinf(odds), d2, d2 * (1 + odds) / (d2 + odds))


@array_function
def escalation_bound_slack(X: Tensor, Y: Tensor, P: Tensor) -> Tensor:
    r"""C6/C8: $r(X, Y) - 1/(s + \delta(P)^2(1-s))$ for the step $Y = PXU$ (or $PXW$).

    Non-negative whenever C6's hypotheses hold (symmetric $P$, orthogonal $U$); negative values are C8's
    counterexamples. ``X``: ``(..., n, d)``, ``Y``: ``(..., n, d')``, ``P``: ``(..., n, n)`` row-stochastic.
    Formed from the two excesses, $(r - 1) - t(1 - \delta^2)/(s + \delta^2 t)$, never from two numbers near 1, so it
    keeps its digits near collapse (where both are 1.0 in floating point).
    """
    _check_map(X, Y)
    check_row_stochastic("P", P)
    check_pair(X, P, "X", "P")
    x_norms = split_scaled_norms(X)
    s, t = shares(*x_norms)
    if bool((s == 0).any()):
        raise ValueError("the escalation rate is undefined where t_sim(X) = 0 (zero mean token)")
    delta = _slem(P)
    return excess_of(x_norms, split_scaled_norms(Y)) - t * ((1 - delta) * (1 + delta)) / (s + delta.square() * t)


@array_function
def residual_second_moments(X: Tensor, P: Tensor, gamma: Tensor) -> tuple[Tensor, Tensor]:
    r"""C9: exact $(\mathbb{E}\|\Pi Y\|^2, \mathbb{E}\|\Pi_\perp Y\|^2)$ for $Y = X + PXW$, $W_{ij}$ iid $N(0, \sigma_w^2)$.

    With $\gamma = \sigma_w^2 d_{out}$ ($d_{out} = d$ here): $\|\Pi X\|^2 + \gamma\|\Pi P X\|^2$ and
    $\|\Pi_\perp X\|^2 + \gamma\|\Pi_\perp P X\|^2$. For doubly stochastic $P$ the first is $(1+\gamma)\|\Pi X\|^2$
    and the second $\|\Pi_\perp X\|^2 + \gamma\|\Pi_\perp P \Pi_\perp X\|^2 \le (1+\gamma\delta^2)\|\Pi_\perp X\|^2$.
    """
    check_tokens("X", X)
    check_row_stochastic("P", P)
    check_pair(X, P, "X", "P")
    check_nonnegative("gamma", gamma)
    xbar, centred, e = _scaled_parts(X)  # X's two parts once: its norms and P's action on its centred part
    a, b = (ldexp(v.value, v.exp) for v in part_norms(xbar, centred, e, X.shape[-2]))
    pa = _split_norms(P @ X)[0]
    # Pi_perp P X = Pi_perp P Pi_perp X (C3: P 1 = 1), from the centred part: the full product P X would leak
    # eps ||Pi X|| into it, a relative error of eps^2/t_div in its square
    pb = ldexp(_split_norms(P.to(centred.dtype) @ centred)[1], e)
    return a.square() + gamma * pa.square(), b.square() + gamma * pb.square()


@array_function
def residual_odds_growth_bound(gamma: Tensor, delta: Tensor) -> Tensor:
    r"""C9: the odds ratio $\frac{\mathbb{E}\|\Pi Y\|^2/\mathbb{E}\|\Pi_\perp Y\|^2}{\mathrm{odds}(X)} \ge
    \frac{1+\gamma}{1+\gamma\delta^2} \ge 1$ per residual step (symmetric $P$).

    A bound on the odds ratio only: the ratio-of-expectations rate $\bar r$ tends to 1 as $s \to 1$ whatever
    $\gamma$, so it obeys no such bound. Tends to 1 as $\gamma \to 0$: a growing residual stream slows
    escalation but does not stop it.
    """
    check_nonnegative("gamma", gamma)
    _check_slem("delta", delta)
    check_broadcast(gamma=gamma, delta=delta)
    return (1 + gamma) / (1 + gamma * delta.square())


@array_function
def multihead_lower_bound(s: Tensor, deltas: Tensor, *, t_div: Tensor | None = None) -> Tensor:
    r"""C10: $\bar r \ge 1/(s + \mathrm{mean}_h(\delta_h^2)(1-s))$ for $Y = \sum_h P_h X W_h$, symmetric $P_h$.

    ``deltas``: ``(..., H)``, one SLEM per head; ``s`` broadcasts against ``(...)``.
    """
    check_share_pair(s, t_div)
    if deltas.ndim < 1:
        raise ValueError(f"deltas must have a trailing head axis (..., H); got shape {tuple(deltas.shape)}")
    if deltas.shape[-1] < 1:
        raise ValueError(f"deltas must hold at least one head's SLEM (..., H >= 1); got shape {tuple(deltas.shape)}")
    _check_slem("deltas", deltas)
    check_broadcast(s=s, deltas=deltas[..., 0], t_div=t_div)
    return _rate_from_ratio(s, deltas.square().mean(-1).sqrt(), t_div)


@array_function
def multihead_mean_rate(X: Tensor, P: Tensor) -> Tensor:
    r"""C10: the ratio-of-expectations rate $\bar r = (\mathbb{E}\|\Pi Y\|^2/\mathbb{E}\|Y\|^2)/s$ for
    $Y = \sum_h P_h X W_h$ with independent iid Gaussian $W_h$ of one variance (exact; no sampling).

    Independence kills the cross terms, so $\mathbb{E}\|\cdot\|^2 \propto \sum_h \|\cdot P_h X\|^2$.
    ``X``: ``(..., n, d)``; ``P``: ``(..., H, n, n)`` row-stochastic. One head gives C6's $\bar r = r(X, PX)$.
    """
    check_tokens("X", X)
    check_row_stochastic("P", P)
    if P.ndim < 3 or P.shape[:-3] != X.shape[:-2] or P.shape[-1] != X.shape[-2]:
        raise ValueError(f"P must be (..., H, n, n) with (...) and n of X {tuple(X.shape)}; got {tuple(P.shape)}")
    a, b = split_scaled_norms(P @ X.unsqueeze(-3))  # (..., H), as value 2^exp: no under- or overflow in squares
    e = torch.maximum(a.exp, b.exp).amax(-1, keepdim=True)  # one exponent for every head
    a_, b_ = ldexp(a.value, a.exp - e), ldexp(b.value, b.exp - e)
    s = _split_shares(X)[0]
    return (a_.square().sum(-1) / (a_.square() + b_.square()).sum(-1)) / s


def counterexample_n2(*, dtype: torch.dtype = torch.float64) -> tuple[Tensor, Tensor]:
    r"""C8's hand example: $X = [2, -1]^T$, $P = [[0, 1], [0.6, 0.4]]$ (row-stochastic, not symmetric).

    $t_{sim}(X) = 1/10$, $t_{sim}(PX) = 1/82$: $r = 5/41 < 1$, while C6 would promise $\ge 1/(0.1 + 0.36 \cdot 0.9)$.
    """
    X = torch.tensor([[2.0], [-1.0]], dtype=dtype)
    P = torch.tensor([[0.0, 1.0], [0.6, 0.4]], dtype=dtype)
    return X, P


def counterexample_positive(*, dtype: torch.dtype = torch.float64) -> tuple[Tensor, Tensor]:
    r"""C8 with every entry of $P$ positive (so $P = \mathrm{softmax}(\log P)$, finite scores), n = 3:
    $X = [-3, 2, -1]^T$, $P = [[1/10, 1/2, 2/5], [1/10, 7/10, 1/5], [3/5, 3/10, 1/10]]$.

    $PX = [3/10, 9/10, -13/10]^T$; $t_{sim}(X) = 2/21$, $t_{sim}(PX) = 1/777$: $r = 1/74 < 1$, while
    $\delta(P) = (1 + \sqrt{41})/20 \approx 0.370$ ($\chi_P = (\lambda - 1)(\lambda^2 + \lambda/10 - 1/10)$) and C6
    would promise $r \ge 1/(s + \delta^2(1-s)) > 1$. Unlike ``counterexample_n2`` (a zero entry) this P is a
    softmax matrix. Found by a seeded search (``proofs_check._search.search_positive_counterexample``: P rows in
    tenths, each entry >= 1/10, X integer in [-3, 3]; the smallest r > 0); exact check in proofs_check (C8).
    """
    X = torch.tensor([[-3.0], [2.0], [-1.0]], dtype=dtype)
    P = torch.tensor([[1, 5, 4], [1, 7, 2], [6, 3, 1]], dtype=dtype) / 10
    return X, P
