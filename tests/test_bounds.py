"""C5 (xi bounds), C6 (escalation lower bound), C7 (linear rate), C9 (residual), C10 (multi-head)."""

from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st

import theory as T
from tests.strategies import (orthogonal_matrices, row_stochastic, softmax_matrices, symmetric_doubly_stochastic,
                              token_matrices)

TOL = 1e-10


@st.composite
def step(draw, attention=None):
    """(X, P, U) with X of mixed similarity, P from ``attention`` (default: any row-stochastic), U orthogonal."""
    P = draw(attention if attention is not None else st.one_of(row_stochastic(), softmax_matrices()))
    X = draw(token_matrices(n=P.shape[0], mixed=True))
    U = draw(orthogonal_matrices(d=X.shape[1]))
    Y = P @ X @ U
    assume(np.abs(Y).max() > 1e-6 and T.token_diversity(Y) > 1e-12)  # growth factors defined
    return X, P, U


@given(step())
def test_C5_growth_factors_obey_the_sigma_and_omega_bounds_for_any_row_stochastic_P(XPU):
    X, P, U = XPU
    xi1, xi2 = T.growth_factors(X, P @ X @ U)
    xi2_max, xi1_dev = T.xi_bounds(X, P)
    assert xi2 <= xi2_max * (1 + TOL) + TOL
    assert abs(xi1 - 1) <= xi1_dev * (1 + TOL) + TOL


@given(step())
def test_C5_bounds_are_sigma_and_omega_as_defined(XPU):
    # the bounds were only ever checked as upper bounds: twice sigma plus 0.5 passed everything. Here against
    # values formed independently in numpy: sigma = ||(I - Pi) P (I - Pi)||_2, omega = ||P^T 1 - 1|| / sqrt n
    X, P, _ = XPU
    n = P.shape[0]
    C = np.eye(n) - np.full((n, n), 1 / n)
    sigma = np.linalg.norm(C @ P @ C, 2)
    omega = np.linalg.norm(P.T @ np.ones(n) - 1) / np.sqrt(n)
    mean = X.mean(0)
    t_div = np.linalg.norm(X - mean) ** 2 / np.linalg.norm(X) ** 2
    xi2_max, xi1_dev = T.xi_bounds(X, P)
    assert float(xi2_max) == pytest.approx(sigma, rel=1e-12, abs=1e-15)
    assert float(xi1_dev) == pytest.approx(omega * np.sqrt(t_div / (1 - t_div)), rel=1e-9, abs=1e-15)


def test_C5_the_sigma_bound_is_attained_at_n_2():
    # n = 2, P symmetric: the centred part is one direction, scaled by exactly sigma = delta = |1 - 2p|
    P = np.array([[0.8, 0.2], [0.2, 0.8]])
    X = np.array([[3.0, 1.0], [1.0, -2.0]])
    xi1, xi2 = T.growth_factors(X, P @ X)
    assert float(xi2) == pytest.approx(float(T.xi_bounds(X, P)[0]), rel=1e-14) == pytest.approx(0.6, rel=1e-14)
    assert float(xi1) == pytest.approx(1.0, rel=1e-14)


@given(step(symmetric_doubly_stochastic()))
def test_C5_symmetric_attention_keeps_the_mean_and_contracts_diversity_by_delta(XPU):
    X, P, U = XPU
    xi1, xi2 = T.growth_factors(X, P @ X @ U)
    assert xi1 == pytest.approx(1, abs=1e-9)
    assert xi2 <= T.slem(P) * (1 + TOL) + TOL


@given(step(symmetric_doubly_stochastic()))
def test_C6_escalation_rate_is_at_least_the_slem_bound_for_symmetric_attention(XPU):
    X, P, U = XPU
    slack = T.escalation_bound_slack(X, P @ X @ U, P)
    assert slack >= -TOL * T.escalation_rate(X, P @ X @ U)


@given(symmetric_doubly_stochastic())
def test_C6_rms_gain_is_at_most_the_slem_for_symmetric_attention(P):
    assert T.rms_diversity_gain(P) <= T.slem(P) + 1e-12


def test_C6_bound_by_hand_n2():
    # P = [[1-a, a], [a, 1-a]], delta = |1 - 2a|; X = [2, -1]^T: s = 1/10. C6 is tight at n = 2 (xi2 = delta).
    a = 0.2
    P = np.array([[1 - a, a], [a, 1 - a]])
    X = np.array([[2.0], [-1.0]])
    bound = T.escalation_lower_bound(0.1, T.slem(P))
    assert bound == pytest.approx(1 / (0.1 + 0.36 * 0.9), rel=1e-14)
    assert T.escalation_rate(X, P @ X) == pytest.approx(bound, rel=1e-13)


def test_C6_ratio_of_expectations_with_gaussian_weights_is_bounded_and_matches_sampling():
    # rbar = (E||Pi Y||^2 / E||Y||^2)/s for Y = P X W equals r(X, P X) exactly (E||A W||^2 ∝ ||A||^2).
    g = T.make_generator(11)
    P = T.random_symmetric_doubly_stochastic((), 5, generator=g)
    X = T.random_tokens((), 5, 3, generator=g)
    W = T.random_gaussian((40000,), 3, 4, std=0.7, generator=g)
    Y = P @ X @ W  # (40000, 5, 4)
    a, b = T.split_norms(Y)
    rbar_mc = float((a.square().mean() / (a.square() + b.square()).mean()) / T.token_similarity(X))
    rbar = float(T.multihead_mean_rate(X, P[None]))
    assert rbar == pytest.approx(float(T.escalation_rate(X, P @ X)), rel=1e-12)
    assert rbar_mc == pytest.approx(rbar, rel=0.02)  # 40 000 draws: sampling error well under 1%
    assert rbar >= float(T.escalation_lower_bound(T.token_similarity(X), T.slem(P))) * (1 - 1e-12)


@given(st.integers(2, 8), st.integers(1, 5), st.integers(1, 12), st.integers(0, 10 ** 6), st.floats(0.05, 0.95))
def test_C7_diversity_decays_linearly_along_a_symmetric_chain_overall_and_per_step(n, d, L, seed, mix):
    g = T.make_generator(seed)
    # a Birkhoff mixture is often a single permutation at small n (dbar = 1, where the bounds hold trivially):
    # mixed with uniform attention, P = (1 - mix) B + mix Pi is still symmetric doubly stochastic, and
    # delta(P) = (1 - mix) delta(B) <= 0.95: C7's hypothesis dbar < 1 holds
    P = (1 - mix) * T.random_symmetric_doubly_stochastic((L,), n, generator=g) + mix / n
    U = T.random_orthogonal((L,), d, generator=g)
    X0 = T.random_tokens((), n, d, generator=g)
    dbar = T.slem(P).max()
    # the chain in split form (theory.attend): it collapses fast here, and a full-form product P X leaks
    # eps ||Pi X|| into the centred part, a relative error of eps/sqrt(t_div) that the 1e-9 below would catch
    X = T.split_tokens(X0)
    odds0 = T.similarity_odds(X0)
    for k in range(L):
        Y = T.attend(X, P[k] - 1 / n, U[k])
        (s_x, t_x), (_, t_y) = X.shares(), Y.shares()
        if float(t_y) < 1e-200:
            break
        overall = T.diversity_decay_bound(odds0, dbar, k + 1)  # R-linear, rate dbar^2
        per_step = T.diversity_step_ratio_bound(s_x / t_x, dbar)  # the corrected Q-linear ratio
        assert float(t_y) <= float(overall) * (1 + 1e-9)
        assert float(t_y / t_x) <= float(per_step) * (1 + 1e-9)
        X = Y


def test_C7_bound_by_hand():
    # odds0 = 1/9 (s = 0.1), dbar = 0.5, k = 3: 0.5^6 * 9.
    assert T.diversity_decay_bound(1 / 9, 0.5, 3) == pytest.approx(9 / 64, rel=1e-14)
    # 0.5^1000 underflows alone and 1/1e-300 nearly overflows; in logs the product is fine.
    assert T.diversity_decay_bound(1e-300, 0.5, 500) == pytest.approx(2.0 ** -1000 * 1e300, rel=1e-10)


@given(step(symmetric_doubly_stochastic()), st.floats(0.01, 4))
def test_C9_residual_second_moments_take_the_doubly_stochastic_form(XPU, gamma):
    X, P, _ = XPU
    n = X.shape[0]
    Pp = np.eye(n) - np.full((n, n), 1 / n)
    Em, Ec = T.residual_second_moments(X, P, gamma)
    a, b = T.split_norms(X)
    assert Em == pytest.approx((1 + gamma) * a ** 2, rel=1e-10)
    assert Ec == pytest.approx(b ** 2 + gamma * np.linalg.norm(Pp @ P @ Pp @ X) ** 2, rel=1e-10)
    assert Ec <= (1 + gamma * T.slem(P) ** 2) * b ** 2 * (1 + 1e-10)
    odds_ratio = (Em / Ec) / (a ** 2 / b ** 2)
    assert odds_ratio >= T.residual_odds_growth_bound(gamma, T.slem(P)) * (1 - 1e-10)
    assert T.residual_odds_growth_bound(gamma, T.slem(P)) >= 1 - 1e-12  # slem(I) = 1 + rounding


def test_C9_second_moments_match_sampling():
    g = T.make_generator(5)
    n, d, sw = 6, 4, 0.3
    P = T.random_symmetric_doubly_stochastic((), n, generator=g)
    X = T.random_tokens((), n, d, generator=g)
    W = T.random_gaussian((50000,), d, d, std=sw, generator=g)
    a, b = T.split_norms(X + P @ X @ W)
    Em, Ec = T.residual_second_moments(X, P, sw ** 2 * d)
    assert float(a.square().mean()) == pytest.approx(float(Em), rel=0.02)
    assert float(b.square().mean()) == pytest.approx(float(Ec), rel=0.02)


def test_C9_bounds_the_ratio_of_expectations_not_the_expected_odds_ratio():
    # THEORY.md's "odds ratio ... in expectation": E||Pi Y||^2 / E||Pi_perp Y||^2 meets the bound (exactly, at
    # n = 2), while the mean of odds(Y)/odds(X) lies below it (1.5779 +- 0.0003 against 1.6 on 400,000 draws)
    n, d, draws = 2, 20, 20_000
    X = np.zeros((n, d))
    X[0, 0] = 2.0
    P = np.array([[0.75, 0.25], [0.25, 0.75]])  # symmetric, delta = 1/2
    W = np.random.default_rng(0).normal(scale=d ** -0.5, size=(draws, d, d))  # gamma = sigma^2 d = 1
    Y = X + (P @ X) @ W

    def odds(M):
        mean = M.mean(-2, keepdims=True)
        return n * (mean ** 2).sum((-2, -1)) / ((M - mean) ** 2).sum((-2, -1))

    bound = float(T.residual_odds_growth_bound(1.0, 0.5))
    a, b = T.residual_second_moments(X, P, 1.0)
    assert float(a / b) / odds(X) == pytest.approx(bound, rel=1e-14)  # the ratio of expectations: exactly
    ratio = odds(Y) / odds(X)
    assert ratio.mean() + 5 * ratio.std(ddof=1) / np.sqrt(draws) < bound  # the expected ratio: below it


def test_C9_odds_growth_bound_tends_to_one_as_the_residual_dominates():
    gammas = np.array([10.0, 1.0, 0.1, 1e-3, 1e-6])
    g = T.residual_odds_growth_bound(gammas, 0.5)
    assert np.all(np.diff(g) < 0) and np.all(g > 1)
    assert g[-1] == pytest.approx(1, abs=1e-6)


@given(st.integers(2, 7), st.integers(1, 4), st.integers(1, 5), st.integers(0, 10 ** 6))
def test_C10_multihead_rate_is_bounded_by_the_mean_square_of_head_slems(n, d, H, seed):
    g = T.make_generator(seed)
    P = T.random_symmetric_doubly_stochastic((H,), n, generator=g)
    X = T.random_tokens((), n, d, generator=g)
    rbar = T.multihead_mean_rate(X, P)
    bound = T.multihead_lower_bound(T.token_similarity(X), T.slem(P), t_div=T.token_diversity(X))
    assert float(rbar) >= float(bound) * (1 - 1e-10)


def test_C10_one_head_reduces_to_C6():
    s, delta = 0.3, 0.6
    assert T.multihead_lower_bound(s, [delta]) == pytest.approx(T.escalation_lower_bound(s, delta), rel=1e-15)
    # Two heads: deltas enter through their mean square, (0.36 + 0.04)/2 = 0.2.
    assert T.multihead_lower_bound(s, [0.6, 0.2]) == pytest.approx(1 / (0.3 + 0.2 * 0.7), rel=1e-14)


def _second_modulus(P: np.ndarray) -> float:
    return float(np.sort(np.abs(np.linalg.eigvals(P)))[-2])


def test_C10_multihead_mean_rate_and_step_metrics_match_independent_values_with_several_heads():
    # every earlier multi-head check was 'rbar >= bound' or H = 1: the mean of the per-head rates (>= the true
    # rbar by Jensen with symmetric heads) and the square of the mean delta in place of the mean square passed
    rng = np.random.default_rng(8)
    n, d, H = 5, 3, 3
    X = rng.normal(size=(n, d)) + rng.normal(size=d)
    P = rng.random((H, n, n)) + 0.05
    P /= P.sum(-1, keepdims=True)
    centre = np.eye(n) - 1 / n
    a = sum(np.linalg.norm(P[h] @ X - centre @ P[h] @ X) ** 2 for h in range(H))  # sum_h ||Pi P_h X||^2
    b = sum(np.linalg.norm(centre @ P[h] @ X) ** 2 for h in range(H))  # sum_h ||Pi_perp P_h X||^2
    s = np.linalg.norm(X - centre @ X) ** 2 / np.linalg.norm(X) ** 2
    assert T.multihead_mean_rate(X, P) == pytest.approx(a / (a + b) / s, rel=1e-13)
    # step_metrics on a multi-head step: the bound and estimate from the heads' mean squares (C10)
    Y = sum(P[h] @ X @ rng.normal(size=(d, d)) for h in range(H))
    m = T.step_metrics(X, Y, P)
    deltas = np.array([_second_modulus(P[h]) for h in range(H)])
    mus = np.array([np.linalg.norm(centre @ P[h] @ centre) / np.sqrt(n - 1) for h in range(H)])
    for key, gains in (("r_bound", deltas), ("r_estimate", mus)):
        m2 = np.mean(gains ** 2)
        assert float(m[key]) == pytest.approx(1 / (s + m2 * (1 - s)), rel=1e-12), key
    assert float(m["delta"]) == pytest.approx(deltas.mean(), rel=1e-12)


def test_bounds_are_batched_and_keep_torch_kind():
    g = T.make_generator(1)
    P = T.random_symmetric_doubly_stochastic((3, 2), 5, generator=g, dtype=torch.float32)
    X = T.random_tokens((3, 2), 5, 4, generator=g, dtype=torch.float32)
    xi2_max, xi1_dev = T.xi_bounds(X, P)
    assert xi2_max.shape == (3, 2) and xi2_max.dtype == torch.float32
    slack = T.escalation_bound_slack(X, P @ X, P)
    assert slack.shape == (3, 2) and bool((slack > -1e-4).all())


def test_C7_one_step_shrinks_diversity_by_more_than_dbar_squared_counterexample_n2():
    # "Q-linear with ratio dbar^2" (THEORY.md's first statement, since corrected there) is false: at n = 2 (tight:
    # xi2 = delta) one step from s = 1/2 with delta = 1/2 takes t_div from 1/2 to 1/5: a ratio 2/5 > dbar^2 = 1/4,
    # equal to the corrected bound.
    X = np.array([[1.0], [0.0]])
    P = np.array([[0.75, 0.25], [0.25, 0.75]])
    ratio = T.token_diversity(P @ X) / T.token_diversity(X)
    assert ratio == pytest.approx(0.4, rel=1e-14)
    assert ratio > T.slem(P) ** 2
    assert T.diversity_step_ratio_bound(T.similarity_odds(X), T.slem(P)) == pytest.approx(0.4, rel=1e-14)


def test_C6_per_step_bound_needs_orthogonal_weights_counterexample():
    # With a non-orthogonal W (here diag(0.1, 1), a possible draw of Gaussian W) one step can fall below C6's
    # bound even for symmetric P: C6 then holds only for the ratio of expectations. THEORY.md's Fig 3
    # "symmetric variant, where C6 must hold in every step" therefore needs orthogonal W.
    X = np.array([[1.0, 0.0], [1.0, 1.0]])
    P = np.array([[0.75, 0.25], [0.25, 0.75]])
    W = np.diag([0.1, 1.0])
    bound = T.escalation_lower_bound(T.token_similarity(X), T.slem(P))
    assert bound == pytest.approx(8 / 7, rel=1e-14)
    # exact: t_sim(X) = (5/2)/3 = 5/6; P X W = [[1/10, 1/4], [1/10, 3/4]] has t_sim = (52/100)/(129/200) = 104/129
    r_exact = Fraction(104, 129) / Fraction(5, 6)
    assert r_exact == Fraction(208, 215)
    assert T.escalation_rate(X, P @ X @ W) == pytest.approx(float(r_exact), rel=1e-12) and bound > 1
    assert T.escalation_bound_slack(X, P @ X @ W, P) < 0
    assert T.multihead_mean_rate(X, P[None]) >= bound  # the ratio of expectations still obeys it


@pytest.mark.parametrize("scale", [2.0 ** -1000, 2.0 ** -20, 1.0, 2.0 ** 500, 2.0 ** 1000])
def test_C5_C10_bounds_do_not_depend_on_the_scale_of_X_up_to_the_float_range(scale):
    # sqrt(t_div/t_sim) and r-bar are scale-free: plain norms overflowed (xi_bounds gave 0 at X ~ 1e308) or
    # underflowed in their squares (multihead_mean_rate gave NaN at X ~ 1e-200)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((4, 3))
    Ph = rng.random((2, 4, 4))
    Ph /= Ph.sum(-1, keepdims=True)
    assert T.xi_bounds(X * scale, Ph[0])[1] == pytest.approx(T.xi_bounds(X, Ph[0])[1], rel=1e-14, abs=0)
    assert T.multihead_mean_rate(X * scale, Ph) == pytest.approx(T.multihead_mean_rate(X, Ph), rel=1e-14, abs=0)


def test_C9_second_moments_take_the_centred_part_of_PX_from_the_centred_part_of_X():
    # exact rationals: X = 1 + (a few ulps) (t_div ~ 1e-30; Fractions of the floats themselves) and an exactly
    # representable doubly stochastic P; the full product P X rounds, leaking eps ||Pi X|| into Pi_perp P X
    P = np.array([[2, 1, 1], [1, 2, 1], [1, 1, 2]]) / 4
    X = 1 + np.ldexp(np.random.default_rng(9).integers(-1000, 1000, (3, 2)).astype(float), -60)
    gamma = 0.75
    Xq = [[Fraction(float(v)) for v in row] for row in X]
    Pq = [[Fraction(float(v)) for v in row] for row in P]
    PX = [[sum(Pq[i][l] * Xq[l][j] for l in range(3)) for j in range(2)] for i in range(3)]

    def centred_sq(A):
        means = [sum(A[i][j] for i in range(3)) / 3 for j in range(2)]
        return sum((A[i][j] - means[j]) ** 2 for i in range(3) for j in range(2))

    exact = centred_sq(Xq) + Fraction(gamma) * centred_sq(PX)
    got = T.residual_second_moments(X, P, np.float64(gamma))[1]
    assert abs(Fraction(float(got)) - exact) <= 1e-14 * exact


def test_C7_bounds_refuse_nan_and_take_the_limits_at_zero_and_infinite_odds():
    with pytest.raises(ValueError, match="odds"):
        T.diversity_step_ratio_bound(np.array(np.nan), np.array(0.5))
    with pytest.raises(ValueError, match="odds0"):
        T.diversity_decay_bound(np.array(np.nan), np.array(0.5), np.array(1.0))
    assert T.diversity_step_ratio_bound(np.array(0.0), np.array(0.5)) == 1.0  # d2 (1 + 0)/(d2 + 0)
    assert T.diversity_step_ratio_bound(np.array(np.inf), np.array(0.5)) == 0.25  # all tokens agree: d2
    expected = 0.25 * 4 / 3.25
    assert T.diversity_step_ratio_bound(np.array(3.0), np.array(0.5)) == pytest.approx(expected, rel=1e-15, abs=0)
    assert T.diversity_decay_bound(np.array(2.0), np.array(0.0), np.array(0.0)) == 0.5  # dbar^0 = 1, even dbar = 0
    assert T.diversity_decay_bound(np.array(np.inf), np.array(0.5), np.array(3.0)) == 0.0


def test_C9_odds_bound_is_attained_at_n2_and_has_its_value_by_hand():
    # a bound checked only for being below the odds ratio, above 1 and decreasing passed with delta unsquared
    assert T.residual_odds_growth_bound(np.float64(1.0), np.float64(0.5)) == pytest.approx(1.6, rel=1e-15, abs=0)
    rng = np.random.default_rng(5)
    for a, gamma in [(0.9, 1.0), (0.3, 0.5), (0.55, 4.0)]:
        P = np.array([[a, 1 - a], [1 - a, a]])  # n = 2: Pi_perp P Pi_perp X = (2a - 1) Pi_perp X exactly
        X = rng.standard_normal((2, 3))
        mean_sq, centred_sq = T.residual_second_moments(X, P, np.float64(gamma))
        ratio = (mean_sq / centred_sq) / T.similarity_odds(X)
        bound = T.residual_odds_growth_bound(np.float64(gamma), np.float64(abs(2 * a - 1)))
        assert ratio == pytest.approx(bound, rel=1e-12, abs=0)


def test_C6_spectral_estimate_by_hand_and_as_step_metrics_computes_it():
    # only its input checks were tested: mu unsquared passed
    assert T.spectral_rate_estimate(np.float64(0.5), np.float64(0.5)) == pytest.approx(1.6, rel=1e-15, abs=0)
    X = np.random.default_rng(6).standard_normal((5, 4))
    P = T.random_symmetric_doubly_stochastic((), 5, generator=T.make_generator(1)).numpy()
    m = T.step_metrics(X, P @ X, P)
    s, t = T.token_similarity(X), T.token_diversity(X)
    est = T.spectral_rate_estimate(s, m["mu"], t_div=t)
    assert est - 1 == pytest.approx(m["r_estimate_minus_1"], rel=1e-12, abs=0)
