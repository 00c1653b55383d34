"""The claim registry: one entry per claim C1-C13 of shared/THEORY.md.

It drives the ledger (``python -m proofs_check``) and the test parametrisation, so the four views of a claim
(code here, symbolic check, property tests, ledger row) stay tied to one ID instead of four hand-kept lists.
Tags: [YZ] stated in Yu & Zhang's summary, [R] the project's reconstruction, [CB] from Hyeon-Woo et al.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Claim", "CLAIMS", "claim"]


@dataclass(frozen=True)
class Claim:
    id: str
    tag: str
    label: str  # the paper's label where known
    hypotheses: str
    statement: str
    api: tuple[str, ...]  # the theory functions that encode it


CLAIMS: tuple[Claim, ...] = (
    Claim("C1", "R", "Def 1.1 (partition)", "X != 0",
          "t_sim + t_div = 1, both in [0,1], invariant under cX, XU, SX; t_sim = 1 iff tokens equal",
          ("token_similarity", "token_diversity", "mean_part", "centred_part")),
    Claim("C2", "YZ", "Prop 2.3", "s = t_sim(X) in (0,1), Y != 0, any map",
          "r = xi1^2/(xi1^2 s + xi2^2 (1-s)); r > 1 iff xi1 > xi2; odds ratio (xi1/xi2)^2",
          ("growth_factors", "escalation_rate", "escalation_identity", "odds_growth")),
    Claim("C3", "YZ", "invariant leading eigenspace", "P row-stochastic",
          "P1 = 1, P Pi = Pi, Pi_perp P Pi = 0, V^T P V = [[1,b^T],[0,C]], spec(P) = {1} u spec(C); "
          "closed under products; P > 0 => delta < 1",
          ("attention_blocks", "slem", "is_row_stochastic", "complement_basis")),
    Claim("C4", "R", "column-sum defect", "P row-stochastic",
          "Pi P Pi_perp = 1 (c-1)^T / n; omega = 0 iff doubly stochastic iff P Pi = Pi P; symmetric => doubly",
          ("column_sum_defect",)),
    Claim("C5", "YZ", "xi1/xi2 bound", "Y = P X U, P row-stochastic, U orthogonal",
          "xi2 <= sigma(P), |xi1 - 1| <= omega sqrt(t_div/t_sim); doubly stochastic: xi1 = 1; "
          "symmetric: sigma = delta, xi1/xi2 >= 1/delta",
          ("xi_bounds", "diversity_gain", "slem", "column_sum_defect")),
    Claim("C6", "YZ", "lower bound on r via |lambda_2(P)| (rbar, a ratio of expectations, for Gaussian W)",
          "P symmetric row-stochastic; U orthogonal (or W iid Gaussian, ratio of expectations)",
          "r(X, PXU) >= 1/(s + delta^2 (1-s)); estimate 1/(s + mu^2 (1-s)), mu <= delta",
          ("escalation_lower_bound", "spectral_rate_estimate", "rms_diversity_gain", "escalation_bound_slack")),
    Claim("C7", "YZ", "escalates at a linear rate",
          "X_{k+1} = P_k X_k U_k, P_k symmetric row-stochastic, delta(P_k) <= dbar < 1",
          "odds(X_k) >= odds(X_0) dbar^{-2k}; t_div(X_k) <= dbar^{2k}/odds(X_0) (R-linear); per step "
          "t_div ratio <= dbar^2 (1+odds_k)/(dbar^2+odds_k) -> dbar^2 (not dbar^2 itself: Q-linear only in the limit)",
          ("diversity_decay_bound", "diversity_step_ratio_bound", "similarity_odds")),
    Claim("C8", "R", "hypotheses are needed", "P row-stochastic, not symmetric (softmax)",
          "C5's symmetric corollary and C6 fail; r < 1 happens (n = 2: X = [2,-1], P = [[0,1],[.6,.4]]; "
          "every entry > 0, n = 3: X = [-3,2,-1], P = [[.1,.5,.4],[.1,.7,.2],[.6,.3,.1]], r = 1/74)",
          ("escalation_bound_slack", "counterexample_n2", "counterexample_positive", "softmax_attention")),
    Claim("C9", "R", "residual slows escalation (Fig 4)",
          "Y = X + P X W, P doubly stochastic (symmetric for the bound), W iid N(0, sigma_w^2), gamma = sigma_w^2 d",
          "E||Pi Y||^2 = (1+gamma)||Pi X||^2; E||Pi_perp Y||^2 = ||Pi_perp X||^2 + gamma ||Pi_perp P Pi_perp X||^2 "
          "<= (1+gamma delta^2)||Pi_perp X||^2; (E||Pi Y||^2 / E||Pi_perp Y||^2)/odds(X) "
          ">= (1+gamma)/(1+gamma delta^2) (a ratio of expectations: not per draw, not E[odds(Y)]/odds(X); the odds, "
          "not rbar: rbar -> 1 as s -> 1)",
          ("residual_second_moments", "residual_odds_growth_bound")),
    Claim("C10", "R", "multi-head (Fig 2)", "Y = sum_h P_h X W_h, W_h independent iid N(0, sigma_w^2), P_h symmetric",
          "rbar >= 1/(s + mean_h(delta_h^2) (1-s))",
          ("multihead_lower_bound", "multihead_mean_rate")),
    Claim("C11", "YZ", "de-escalation", "tau finite, s in (0,1)",
          "Y = (I - tau Pi)X: xi1 = |1-tau|, xi2 = 1, t_sim(Y) = (1-tau)^2 s/((1-tau)^2 s + 1-s)",
          ("deescalate", "deescalated_similarity")),
    Claim("C12", "CB", "context broadcasting", "s in (0,1)",
          "CB(X) = (I + Pi)X/2: xi1 = 1, xi2 = 1/2, r = 1/(s + (1-s)/4) >= 1; delta(Pi) = 0, t_sim(Pi X) = 1",
          ("context_broadcast", "uniform_attention")),
    Claim("C13", "R", "LayerNorm fixed point", "LN over features, eps >= 0, output non-zero",
          "feature centring commutes with Pi; t_sim(X) = 1 => t_sim(LN(X)) = 1",
          ("layer_norm",)),
)

_BY_ID = {c.id: c for c in CLAIMS}


def claim(claim_id: str) -> Claim:
    """The registry entry for ``claim_id`` (``"C1"`` .. ``"C13"``)."""
    try:
        return _BY_ID[claim_id]
    except KeyError:
        raise ValueError(f"unknown claim {claim_id!r}; expected one of {', '.join(_BY_ID)}") from None
