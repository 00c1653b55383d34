"""Every public function rejects bad input with a ValueError that names what was expected and what arrived."""

import numpy as np
import pytest
import torch

import theory as T

X = np.array([[1.0, 2.0], [3.0, -1.0], [0.0, 1.0]])  # a good (3, 2) token matrix
P = np.full((3, 3), 1 / 3)  # a good row-stochastic matrix
NOT_STOCHASTIC = np.array([[0.5, 0.2, 0.0], [0.3, 0.3, 0.4], [1.0, 0.0, 0.0]])
NEGATIVE = np.array([[1.5, -0.5, 0.0], [0.3, 0.3, 0.4], [1.0, 0.0, 0.0]])
NAN_X = np.array([[1.0, np.nan], [0.0, 1.0], [1.0, 1.0]])
INF_X = np.array([[1.0, np.inf], [0.0, 1.0], [1.0, 1.0]])
ZERO_X = np.zeros((3, 2))
EQUAL_TOKENS = np.ones((3, 2))
CENTRED = np.array([[1.0, 2.0], [-1.0, -2.0], [0.0, 0.0]])  # mean token exactly 0
g = T.make_generator(0)

# function -> [(case, args, kwargs, what the message must say)]
REJECTIONS = {
    T.token_similarity: [
        ("rank 1", (np.ones(3),), {}, r"\(\.\.\., n, d\).*rank 1"),
        ("one token", (np.ones((1, 3)),), {}, "n >= 2"),
        ("NaN", (NAN_X,), {}, "finite.*1 NaN/Inf"),
        ("Inf", (INF_X,), {}, "finite"),
        ("X = 0", (ZERO_X,), {}, "non-zero"),
        ("complex", (X.astype(complex),), {}, "real"),
        ("string dtype", (np.array([["a", "b"], ["c", "d"]]),), {}, "floating"),
        ("a string", ("abc",), {}, r"X must be an array .*got str 'abc'"),
    ],
    T.token_diversity: [("X = 0", (ZERO_X,), {}, "non-zero"), ("NaN", (NAN_X,), {}, "finite")],
    T.similarity_odds: [("X = 0", (ZERO_X,), {}, "non-zero")],
    T.mean_part: [("rank 1", (np.ones(3),), {}, "rank 1")],
    T.centred_part: [("Inf", (INF_X,), {}, "finite")],
    T.split_norms: [("rank 0", (1.0,), {}, "rank 0")],
    T.growth_factors: [
        ("zero mean token", (CENTRED, X), {}, "xi1 is undefined.*t_sim\\(X\\) = 0"),
        ("equal tokens", (EQUAL_TOKENS, X), {}, "xi2 is undefined.*t_sim\\(X\\) = 1"),
        ("token count differs", (X, np.ones((4, 2))), {}, "batch shape and token count"),
        ("Y = 0", (X, ZERO_X), {}, "Y must be non-zero"),
    ],
    T.escalation_rate: [
        ("zero mean token", (CENTRED, X), {}, "t_sim\\(X\\) = 0"),
        ("batch differs", (np.stack([X, X]), X), {}, "batch shape"),
    ],
    T.escalation_identity: [
        ("s above 1", (1.5, 1.0, 1.0), {}, r"s \(t_sim\) must lie in \[0, 1\].*1\.5"),
        ("negative xi", (0.5, -1.0, 1.0), {}, "xi1 must be >= 0"),
        ("NaN xi2", (0.5, 1.0, np.nan), {}, "xi2 must be finite"),
        ("inconsistent t_div", (0.5, 1.0, 1.0), {"t_div": 0.2}, "add to 1"),
        ("s = 0 (C2 needs s in (0, 1))", (0.0, 1.0, 1.0), {}, r"C2 needs s = t_sim\(X\) in \(0, 1\)"),
        ("s = 1", (1.0, 1.0, 1.0), {}, r"t_div > 0.*t_div down to 0"),
        ("Y = 0", (0.5, 0.0, 0.0), {}, "C2 needs Y != 0"),
        ("shapes that do not broadcast", (np.full(3, 0.5), np.ones(2), np.ones(2)), {}, "must broadcast"),
    ],
    T.odds_growth: [("negative xi2", (1.0, -0.1), {}, "xi2 must be >= 0"),
                    ("shapes that do not broadcast", (np.ones(2), np.ones(3)), {}, r"xi1 \(2,\), xi2 \(3,\)")],
    T.slem: [
        ("not stochastic", (NOT_STOCHASTIC,), {}, r"row-stochastic.*row sum - 1\| = 0\.3"),
        ("negative entry", (NEGATIVE,), {}, "most negative entry = -0.5"),
        ("not square", (np.ones((3, 2)) / 2,), {}, r"\(\.\.\., n, n\).*\(3, 2\)"),
        ("n = 1", (np.ones((1, 1)),), {}, "n >= 2"),
        ("NaN", (np.full((2, 2), np.nan),), {}, "finite"),
    ],
    T.diversity_gain: [("not stochastic", (NOT_STOCHASTIC,), {}, "row-stochastic")],
    T.rms_diversity_gain: [("not stochastic", (NOT_STOCHASTIC,), {}, "row-stochastic")],
    T.column_sum_defect: [("not stochastic", (NOT_STOCHASTIC,), {}, "row-stochastic")],
    T.attention_blocks: [("not square", (np.ones((2, 3)),), {}, "square")],
    T.double_centre: [("rank 1", (np.ones(3),), {}, "square")],
    T.is_row_stochastic: [("not square", (np.ones((2, 3)),), {}, "square")],
    T.complement_basis: [("n = 1", (1,), {}, "n must be an integer >= 2")],
    T.leading_basis: [("n = 0", (0,), {}, "n must be an integer >= 2")],
    T.uniform_attention: [("n float", (2.5,), {}, "n must be an integer >= 2")],
    T.xi_bounds: [
        ("P not stochastic", (X, NOT_STOCHASTIC), {}, "row-stochastic"),
        ("P of other n", (X, np.full((2, 2), 0.5)), {}, "batch shape and token count"),
    ],
    T.escalation_lower_bound: [
        ("s negative", (-0.1, 0.5), {}, r"\[0, 1\]"),
        ("delta negative", (0.5, -0.5), {}, "delta must be >= 0"),
        ("delta NaN", (0.5, np.nan), {}, "delta must be finite"),
        ("delta above 1", (0.5, 1.5), {}, r"delta must lie in \[0, 1\].*1\.5"),
        ("shapes that do not broadcast", (np.full(3, 0.5), np.full(2, 0.5)), {}, r"s \(3,\), delta \(2,\)"),
    ],
    T.spectral_rate_estimate: [("mu negative", (0.5, -1.0), {}, "mu must be >= 0"),
                               ("shapes", (np.full(3, 0.5), np.full(2, 0.5)), {}, "must broadcast")],
    T.diversity_decay_bound: [
        ("odds negative", (-1.0, 0.5, 2), {}, "odds0 must be >= 0"),
        ("k negative", (1.0, 0.5, -1), {}, "k must be >= 0"),
        ("shapes", (np.ones(2), 0.5, np.ones(3)), {}, "must broadcast"),
    ],
    T.diversity_step_ratio_bound: [
        ("odds negative", (-1.0, 0.5), {}, "odds must be >= 0"),
        ("dbar NaN", (1.0, np.nan), {}, "dbar must be finite"),
    ],
    T.escalation_bound_slack: [
        ("P not stochastic", (X, X, NOT_STOCHASTIC), {}, "row-stochastic"),
        ("zero mean token", (CENTRED, X, P), {}, "t_sim\\(X\\) = 0"),
    ],
    T.residual_second_moments: [
        ("gamma negative", (X, P, -1.0), {}, "gamma must be >= 0"),
        ("P of other n", (X, np.full((2, 2), 0.5), 1.0), {}, "token count"),
    ],
    T.residual_odds_growth_bound: [("gamma NaN", (np.nan, 0.5), {}, "gamma must be finite"),
                                   ("delta above 1", (1.0, 2.0), {}, r"delta must lie in \[0, 1\]")],
    T.multihead_lower_bound: [
        ("no head axis", (0.5, 0.3), {}, "trailing head axis"),
        ("negative delta", (0.5, [0.3, -0.1]), {}, "deltas must be >= 0"),
        ("delta above 1", (0.5, [0.3, 1.2]), {}, r"deltas must lie in \[0, 1\]"),
        ("no heads", (np.full(3, 0.5), np.zeros((3, 0))), {}, "at least one head"),
        ("s of another batch", (np.full(3, 0.5), np.full((2, 4), 0.5)), {}, "must broadcast"),
    ],
    T.multihead_mean_rate: [
        ("no head axis", (X, P), {}, r"\(\.\.\., H, n, n\)"),
        ("not stochastic", (X, NOT_STOCHASTIC[None]), {}, "row-stochastic"),
    ],
    T.deescalate: [
        ("tau NaN", (X, np.nan), {}, "tau must be finite"),
        ("tau Inf", (X, np.inf), {}, "tau must be finite"),
        ("X NaN", (NAN_X, 0.5), {}, "X must be finite"),
    ],
    T.deescalated_similarity: [
        ("tau NaN", (0.5, np.nan), {}, "tau must be finite"),
        ("s above 1", (2.0, 0.5), {}, r"\[0, 1\]"),
        ("tau = 1 at s = 1 (Y = 0)", (1.0, 1.0), {}, "undefined where tau = 1 and s = 1"),
    ],
    T.context_broadcast: [("rank 1", (np.ones(3),), {}, "rank 1")],
    T.layer_norm: [
        ("weight shape", (X, np.ones(3)), {}, r"weight must have shape \(d,\) = \(2,\)"),
        ("negative eps", (X,), {"eps": -1.0}, "eps must be a finite number >= 0"),
    ],
    T.make_generator: [("negative seed", (-1,), {}, "seed must be an integer >= 0")],
    T.random_tokens: [
        ("one token", ((2,), 1, 3), {"generator": g}, "n must be an integer >= 2"),
        ("bad batch", ((-1,), 3, 3), {"generator": g}, "batch must be"),
        ("bool batch", ((True,), 3, 3), {"generator": g}, "batch must be"),
    ],
    T.random_gaussian: [("negative std", ((2,), 3, 3), {"std": -1.0, "generator": g}, "std must be"),
                        ("bool std", ((2,), 3, 3), {"std": True, "generator": g}, "std must be")],
    T.softmax_attention: [("beta NaN", ((2,), 3), {"beta": float("nan"), "generator": g}, "beta must be"),
                          ("bool beta", ((2,), 3), {"beta": True, "generator": g}, "beta must be")],
    T.attention_from_scores: [("not square", (torch.ones(2, 3),), {}, r"\(\.\.\., n, n\)")],
    T.data_attention: [("X = 0", (torch.zeros(3, 2),), {"generator": g}, "non-zero")],
    T.random_row_stochastic: [("zero_prob 1", ((2,), 3), {"zero_prob": 1.0, "generator": g}, "zero_prob")],
    T.random_symmetric_doubly_stochastic: [("no terms", ((2,), 3), {"terms": 0, "generator": g}, "terms")],
    T.random_orthogonal: [("d = 0", ((2,), 0), {"generator": g}, "d must be an integer >= 1")],
    T.step_metrics: [
        ("P not stochastic", (torch.tensor(X), torch.tensor(X), torch.tensor(NOT_STOCHASTIC)), {}, "row-stochastic"),
        ("P of other n", (torch.tensor(X), torch.tensor(X), torch.full((2, 2), 0.5, dtype=torch.float64)), {},
         r"\(\.\.\., n, n\) or \(\.\.\., H, n, n\)"),
        ("Y of other n", (torch.tensor(X), torch.ones(4, 2, dtype=torch.float64), torch.tensor(P)), {}, "token count"),
        ("X = 0", (ZERO_X, X, P), {}, "X must be non-zero"),
    ],
    T.claim: [("unknown id", ("C99",), {}, "unknown claim 'C99'")],
    T.escalation_excess: [
        ("zero mean token", (CENTRED, X), {}, "undefined where t_sim\\(X\\) = 0"),
        ("Y = 0", (X, ZERO_X), {}, "Y must be non-zero"),
        ("NaN", (NAN_X, X), {}, "finite"),
        ("token count differs", (X, np.ones((4, 2))), {}, "batch shape and token count"),
    ],
    T.log_token_diversity: [("X = 0", (ZERO_X,), {}, "non-zero")],
    T.slem_with_error: [("not stochastic", (NOT_STOCHASTIC,), {}, "row-stochastic")],
    T.split_tokens: [("Inf", (torch.tensor(INF_X),), {}, "finite"), ("rank 1", (torch.ones(3),), {}, "rank 1")],
    T.attend: [
        ("X not split", (torch.tensor(X), torch.zeros(3, 3, dtype=torch.float64), torch.eye(2, dtype=torch.float64)),
         {}, "SplitTokens"),
        ("D of other n", (T.split_tokens(torch.tensor(X)), torch.zeros(2, 2, dtype=torch.float64),
                          torch.eye(2, dtype=torch.float64)), {}, r"D must be \(\.\.\., n, n\)"),
        ("W of other d", (T.split_tokens(torch.tensor(X)), torch.zeros(3, 3, dtype=torch.float64),
                          torch.eye(3, dtype=torch.float64)), {}, "W must be"),
    ],
    T.split_scores: [("WQ of other d", (T.split_tokens(torch.tensor(X)), torch.ones(3, 2, dtype=torch.float64),
                                        torch.ones(2, 2, dtype=torch.float64)), {}, "WQ must be")],
    T.split_softmax: [("S not square", (torch.zeros(1, 3), torch.tensor(0.0), torch.zeros(2, 3), torch.tensor(0.0)),
                       {}, "S must be"),
                      ("NaN scores", (torch.zeros(1, 2), torch.tensor(0.0), torch.full((2, 2), float("nan")),
                                      torch.tensor(0.0)), {}, "finite")],
    T.split_step_metrics: [("X not split", (torch.tensor(X), torch.tensor(X), torch.zeros(3, 3)), {}, "SplitTokens")],
    # the lab's ensembles, predictions and metrics
    T.causal_attention: [("negative beta", ((2,), 4), {"beta": -1.0, "generator": torch.Generator()}, "beta")],
    T.banded_attention: [("window 0", ((2,), 4), {"window": 0, "generator": torch.Generator()}, "window")],
    T.dirichlet_attention: [("alpha 0", ((2,), 4), {"alpha": 0.0, "generator": torch.Generator()}, "alpha")],
    T.sinkhorn_attention: [("infinite beta", ((2,), 4), {"beta": float("inf"), "generator": torch.Generator()},
                            "beta")],
    T.sinkhorn_scale: [("zero entry", (torch.tensor([[1.0, 0.0], [1.0, 1.0]]),), {}, "positive"),
                       ("not square", (torch.ones(2, 3),), {}, r"\(\.\.\., n, n\)")],
    T.slem_prediction: [("unknown", ("gaussian", 8), {}, "unknown attention"), ("n = 1", ("softmax", 1), {}, "n"),
                        ("beta NaN", ("softmax", 8), {"beta": float("nan")}, "beta must be"),
                        ("negative beta", ("softmax", 8), {"beta": -1.0}, "beta must be"),
                        ("infinite alpha", ("dirichlet", 8), {"alpha": float("inf")}, "alpha must be"),
                        ("bool window", ("banded", 8), {"window": True}, "window must be")],
    T.prediction_regime: [("unknown", ("gaussian", 8), {}, "unknown attention"), ("n = 1", ("softmax", 1), {}, "n")],
    T.stable_rank: [("X = 0", (ZERO_X,), {}, "non-zero"), ("NaN", (NAN_X,), {}, "finite")],
    T.mean_cosine: [("rank 1", (np.ones(3),), {}, "rank 1")],
    T.dong_residual: [("Inf", (INF_X,), {}, "finite")],
    T.split_collapse_metrics: [("not split", (torch.tensor(X),), {}, "SplitTokens")],
}

CASES = [pytest.param(fn, args, kwargs, match, id=f"{fn.__name__}-{case}")
         for fn, cases in REJECTIONS.items() for case, args, kwargs, match in cases]


@pytest.mark.parametrize("fn, args, kwargs, match", CASES)
def test_bad_input_raises_a_value_error_that_says_why(fn, args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        fn(*args, **kwargs)


def test_every_public_function_has_a_rejection_case():
    no_input = {"Claim", "counterexample_n2", "counterexample_positive",  # they take no data to reject
                "SplitTokens"}  # a plain container, built by split_tokens and attend, which check their input
    public = {name for name in T.__all__ if callable(getattr(T, name)) and name not in no_input}
    covered = {fn.__name__ for fn in REJECTIONS}
    assert public - covered == set()


def test_s_in_float32_and_t_div_in_float64_add_to_1_within_float32s_rounding():
    # C1's check used the finer dtype's eps, and refused a correct float32 t_sim beside a float64 t_div
    Xt = torch.tensor(X)
    s, t = T.token_similarity(Xt.float()), T.token_diversity(Xt)
    assert float(T.escalation_lower_bound(s, 0.5, t_div=t)) > 1
    with pytest.raises(ValueError, match="add to 1"):
        T.escalation_lower_bound(s, 0.5, t_div=t + 1e-5)


def test_a_slem_a_few_ulps_above_1_is_rounding_not_a_bad_input():
    # a permutation's |lambda_2| is 1, and a computed one may come out 1 + 2e-16
    assert T.escalation_lower_bound(0.5, 1 + 2e-16) == pytest.approx(1.0, abs=1e-15)
    assert T.multihead_lower_bound(0.5, [1 + 2e-16, 0.0]) > 1
    # what slem itself returns for a P the row-stochastic check accepts (rows within 16 n eps), in either dtype,
    # and a float32 SLEM one ulp above 1 passed as a Python number
    for dtype, excess in ((torch.float64, 5e-14), (torch.float32, 2e-5)):
        P = torch.eye(32, dtype=dtype) * (1 + excess)
        assert T.is_row_stochastic(P)
        T.escalation_lower_bound(torch.tensor(0.5, dtype=dtype), T.slem(P))
    T.escalation_lower_bound(0.5, float(np.nextafter(np.float32(1), np.float32(2))))


def test_the_torch_samplers_take_numpy_too():
    # check_array's message says numpy is accepted: these three were torch-only (an AttributeError before)
    assert isinstance(T.attention_from_scores(np.ones((3, 3))), np.ndarray)
    assert isinstance(T.data_attention(X, generator=T.make_generator(0)), np.ndarray)
    np.testing.assert_allclose(T.sinkhorn_scale(P * 2 + NOT_STOCHASTIC.clip(0.1)).sum(-2), 1.0, rtol=0, atol=1e-12)


def test_step_metrics_takes_a_degenerate_step_to_y_0_and_reports_nan_not_an_error():
    # the contract's bad inputs raise (X = 0 above); a step's degenerate result is the engine's to keep or drop
    m = T.step_metrics(X, ZERO_X, P)
    assert np.isnan(m["r"]) and np.isnan(m["stable_rank"]) and np.isnan(m["dong_residual"])


def test_tensors_on_different_devices_are_rejected_and_mixed_kinds_give_torch():
    Xt = torch.tensor(X)
    out = T.escalation_rate(Xt, X)  # numpy joins the tensor's device
    assert isinstance(out, torch.Tensor)
    if torch.cuda.is_available():
        with pytest.raises(ValueError, match="one device"):
            T.escalation_rate(Xt, Xt.cuda())
