"""Token similarity escalation: the definitions and claims of [YZ] (and [CB]) as batched numpy/torch code.

Every function takes ``(..., n, d)`` token matrices and ``(..., n, n)`` attention matrices; numpy in gives
numpy out, torch in gives torch out on the same device and dtype. Bad input raises ``ValueError``.
Claim IDs (C1-C13) follow shared/THEORY.md; :data:`CLAIMS` lists them.
"""

from ._attention import (attention_blocks, column_sum_defect, complement_basis, diversity_gain, double_centre,
                         is_row_stochastic, leading_basis, rms_diversity_gain, slem, slem_with_error,
                         uniform_attention)
from ._bounds import (counterexample_n2, counterexample_positive, diversity_decay_bound, diversity_step_ratio_bound, escalation_bound_slack, escalation_lower_bound,
                      multihead_lower_bound, multihead_mean_rate, residual_odds_growth_bound,
                      residual_second_moments, spectral_rate_estimate, xi_bounds)
from ._claims import CLAIMS, Claim, claim
from ._escalation import escalation_excess, escalation_identity, escalation_rate, growth_factors, odds_growth
from ._operators import context_broadcast, deescalate, deescalated_similarity, layer_norm
from ._metrics import COLLAPSE_METRICS, dong_residual, mean_cosine, split_collapse_metrics, stable_rank
from ._random import (SINKHORN_TOL, attention_from_scores, banded_attention, causal_attention, data_attention,
                      dirichlet_attention, make_generator, random_gaussian, random_orthogonal, random_row_stochastic,
                      random_symmetric_doubly_stochastic, random_tokens, sinkhorn_attention, sinkhorn_scale,
                      softmax_attention)
from ._spectra import SLEM_LAWS, prediction_regime, slem_prediction
from ._split import SplitTokens, attend, split_softmax, split_scores, split_tokens
from ._step import STEP_METRICS, split_step_metrics, step_metrics
from ._similarity import (centred_part, log_token_diversity, mean_part, similarity_odds, split_norms, token_diversity,
                          token_similarity)

__all__ = [
    # D1, D2, C1
    "token_similarity", "token_diversity", "log_token_diversity", "similarity_odds", "mean_part", "centred_part", "split_norms",
    # D3, D4, C2
    "growth_factors", "escalation_rate", "escalation_excess", "escalation_identity", "odds_growth",
    # D5, C3, C4
    "slem", "slem_with_error", "diversity_gain", "rms_diversity_gain", "column_sum_defect", "attention_blocks", "double_centre",
    "complement_basis", "leading_basis", "is_row_stochastic", "uniform_attention",
    # C5-C10
    "xi_bounds", "escalation_lower_bound", "spectral_rate_estimate", "diversity_decay_bound",
    "diversity_step_ratio_bound",
    "escalation_bound_slack", "counterexample_n2", "counterexample_positive", "residual_second_moments", "residual_odds_growth_bound",
    "multihead_lower_bound", "multihead_mean_rate",
    # C11-C13
    "deescalate", "deescalated_similarity", "context_broadcast", "layer_norm",
    # random families
    "make_generator", "random_tokens", "random_gaussian", "softmax_attention", "attention_from_scores",
    "data_attention", "random_row_stochastic", "random_symmetric_doubly_stochastic", "random_orthogonal",
    "causal_attention", "dirichlet_attention", "sinkhorn_attention", "sinkhorn_scale", "SINKHORN_TOL",
    "banded_attention",
    # what theory predicts for each ensemble's delta
    "slem_prediction", "prediction_regime", "SLEM_LAWS",
    # the literature's collapse metrics
    "stable_rank", "mean_cosine", "dong_residual", "split_collapse_metrics", "COLLAPSE_METRICS",
    # all quantities of one step, for Monte Carlo engines
    "step_metrics", "STEP_METRICS",
    # the split form of C3 for chains (X = 1 m^T + E carried in parts)
    "SplitTokens", "split_tokens", "attend", "split_scores", "split_softmax", "split_step_metrics",
    # registry
    "CLAIMS", "Claim", "claim",
]
