"""Precision to the floor (shared/THEORY.md, "Precision"): t_div, its log, the growth factors and every excess
over 1 against exact rational arithmetic, on nearly collapsed inputs whose mean token is not representable, at
any scale. Tolerances are relative to the quantity checked."""

from fractions import Fraction as F
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import theory as T

SCALES = (1e-150, 2.0 ** -700 * 3, 1.0, 7.3e41, 1e150)
GAPS = (1e-3, 1e-8, 1e-15, 1e-22, 1e-40, 1e-90, 1e-140)  # relative size of the centred part


def nearly_collapsed(seed: int, n: int, d: int, gap: float, scale: float) -> np.ndarray:
    """Tokens equal up to a relative ``gap``: a common token with non-dyadic entries (so the mean is not a
    float), perturbed in the features where the common token is small enough to carry the perturbation."""
    rng = np.random.default_rng(seed)
    small = np.arange(d) >= d // 2  # features where the common token is 0.1 gap: the perturbation survives
    base = np.where(small, 0.1 * gap, 1.0) * rng.normal(size=d) / 3
    X = np.tile(base, (n, 1)) + gap * rng.normal(size=(n, d)) * np.where(small, 1.0, 2.0 ** -3)
    return X * scale


def exact_parts(X: np.ndarray) -> tuple[F, F]:
    """(||Pi X||^2, ||Pi_perp X||^2) of the float matrix X, exactly."""
    Xq = [[F(float(v)) for v in row] for row in X]
    n, d = len(Xq), len(Xq[0])
    xbar = [sum(Xq[i][j] for i in range(n)) / n for j in range(d)]
    centred = sum((Xq[i][j] - xbar[j]) ** 2 for i in range(n) for j in range(d))
    return n * sum(v * v for v in xbar), centred


def rel(a, exact: F) -> float:
    return float(abs(F(float(a)) - exact) / abs(exact))


def rel_sq(norm, exact_sq: F) -> float:
    """Relative error of norm^2 against an exact square, without squaring in floating point (no underflow)."""
    return float(abs(F(float(norm)) ** 2 - exact_sq) / exact_sq)


def exact_ln(x: F) -> float:
    """ln of a positive rational far outside float range, to double precision."""
    k = x.numerator.bit_length() - x.denominator.bit_length()
    return math.log(float(x / F(2) ** k)) + k * math.log(2)


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("gap", GAPS)
def test_D1_diversity_is_exact_to_rounding_on_nearly_collapsed_tokens_at_any_scale(gap, scale):
    if gap * scale < 1e-290:
        pytest.skip("the input itself cannot hold a perturbation that small (it would be subnormal)")
    X = nearly_collapsed(7, 6, 5, gap, scale)
    a2, b2 = exact_parts(X)
    assert b2 > 0 and F(float(X.mean(0)[-1])) * 6 != sum(F(float(v)) for v in X[:, -1])  # mean not a float
    t_div = b2 / (a2 + b2)
    if t_div > F(1, 10 ** 300):
        assert rel(T.token_diversity(X), t_div) < 1e-13
        assert rel(T.similarity_odds(X), a2 / b2) < 1e-13
    assert abs(T.log_token_diversity(X) - exact_ln(t_div)) < 1e-13 * abs(exact_ln(t_div)) + 1e-15
    a, b = T.split_norms(X)
    assert rel_sq(a, a2) < 1e-13
    if b > 0:  # ||Pi_perp X|| itself underflows only where X does (1e-150 times 1e-140)
        assert rel_sq(b, b2) < 1e-13


@pytest.mark.parametrize("gap", [1e-11, 1e-12, 1e-13, 1e-14])
def test_D1_centred_part_keeps_the_digits_that_centring_with_a_rounded_mean_loses(gap):
    # Every feature O(1) and shared, the tokens apart by gap: t_div ~ gap^2 ~ 1e-22..1e-28.
    rng = np.random.default_rng(3)
    X = rng.normal(size=4) / 3 + gap * rng.normal(size=(5, 4))
    _, b2 = exact_parts(X)
    naive = ((X - X.mean(0)) ** 2).sum()  # a rounded mean shifts every column: eps^2/t_div relative error
    assert rel(((T.centred_part(X)) ** 2).sum(), b2) < 1e-13
    assert rel(T.token_diversity(X), b2 / sum(exact_parts(X))) < 1e-13
    if gap <= 1e-13:
        assert rel(naive, b2) > 1e-8  # so this test would catch a plain centring


@settings(max_examples=30)
@given(st.integers(0, 2 ** 31), st.sampled_from(GAPS[1:6]), st.sampled_from(SCALES))
def test_D3_D4_growth_factors_and_escalation_excess_are_exact_to_rounding(seed, gap, scale):
    # Y = P X W for a positive P and a rotation-like W: a nearly collapsed step; compared with rationals.
    rng = np.random.default_rng(seed)
    n, d = 5, 4
    X = nearly_collapsed(seed, n, d, gap, scale)
    P = rng.random((n, n)) + 0.1
    P /= P.sum(1, keepdims=True)
    W = rng.normal(size=(d, d))
    Y = P @ X @ W
    ax, bx = exact_parts(X)
    ay, by = exact_parts(Y)
    xi1, xi2 = T.growth_factors(X, Y)
    assert rel_sq(xi1, ay / ax) < 1e-13
    if by == 0:  # W mixed the centred part into features where it is below Y's rounding: exactly collapsed
        assert xi2 == 0
    else:
        assert rel_sq(xi2, by / bx) < 1e-13
    s, t, t_y = ax / (ax + bx), bx / (ax + bx), by / (ay + by)
    excess = (t - t_y) / s
    if abs(excess) > F(1, 10 ** 300):
        assert rel(T.escalation_excess(X, Y), excess) < 1e-9
    assert T.escalation_rate(X, Y) == pytest.approx(float(1 + excess), rel=1e-15)


def test_D4_escalation_excess_by_hand_and_where_r_is_one_in_floating_point():
    # X = [1, 3]^T: s = 4/5, t = 1/5; Y = [2, 2]^T: t_div(Y) = 0, so r - 1 = (1/5)/(4/5) = 1/4.
    assert T.escalation_excess(np.array([[1.0], [3.0]]), np.array([[2.0], [2.0]])) == pytest.approx(0.25, rel=1e-15)
    X = np.array([[1.0, 2.0], [1.0, 2.0 + 2.0 ** -40]])
    Y = np.array([[1.0, 2.0], [1.0, 2.0 + 2.0 ** -41]])
    assert T.escalation_rate(X, Y) == 1.0  # r itself says nothing here
    ax, bx = exact_parts(X)
    ay, by = exact_parts(Y)
    exact = (bx / (ax + bx) - by / (ay + by)) / (ax / (ax + bx))
    assert rel(T.escalation_excess(X, Y), exact) < 1e-13


@pytest.mark.parametrize("k", [None, 20, 41, 50])
def test_D4_escalation_excess_is_exact_to_eps_t_div_absolute_where_the_diversities_nearly_agree(k):
    # README's snippet claimed all digits for Y = X diag(1, 1 + 2^-41): r - 1 ~ 3e-38 there is the difference of
    # two diversities ~4e-26 that agree to 12 digits, so 4 are left (a review); what holds is eps t_div absolute
    X = np.array([[1.0, 2.0], [1.0, 2.0 + 2.0 ** -40]])
    Y = 3 * X if k is None else X * [1.0, 1.0 + 2.0 ** -k]  # k = None: r - 1 = 0 exactly (C1: scale-free)
    ax, bx = exact_parts(X)
    ay, by = exact_parts(Y)
    s, t = ax / (ax + bx), bx / (ax + bx)
    exact = (t - by / (ay + by)) / s
    err = abs(T.escalation_excess(X, Y) - exact)
    assert err <= 4 * np.finfo(float).eps * t / s, (float(err), float(t / s))
    if k == 20:  # diversities 6 digits apart: r - 1 keeps about 10
        assert rel(T.escalation_excess(X, Y), exact) < 1e-8


@pytest.mark.parametrize("offset", [1e-3, 1e-10, 1e-40, 1e-120])
def test_D4_escalation_excess_keeps_its_digits_where_t_sim_is_tiny(offset):
    # tokens in +-pairs plus a tiny common offset: t_sim(X) ~ offset^2, and a doubly stochastic P keeps Y's mean
    # as small, so both diversities are 1 to within t_sim. (t_div(X) - t_div(Y))/t_sim(X) then lost every digit
    # (r - 1 = 8 came out 0 at t_sim = 5e-21): r - 1 is now taken from the four split norms without that cancellation
    rng = np.random.default_rng(3)
    n, d = 6, 4
    V = rng.normal(size=(n // 2, 2))
    X = np.zeros((n, d))
    X[:, :2] = np.concatenate([V, -V])  # centred exactly
    X[:, 2:] = offset * rng.normal(size=2)  # the mean token, in features of its own: exactly representable
    P = T.random_symmetric_doubly_stochastic((), n, generator=T.make_generator(4)).numpy()
    Y = P @ X @ rng.normal(size=(d, d))
    ax, bx = exact_parts(X)
    ay, by = exact_parts(Y)
    s, t, t_y = ax / (ax + bx), bx / (ax + bx), by / (ay + by)
    assert float(s) < 10 * offset ** 2
    exact = (t - t_y) / s
    assert rel(T.escalation_excess(X, Y), exact) < 1e-13
    assert rel(T.step_metrics(X, Y, P)["r_minus_1"], exact) < 1e-13
    X2 = np.array([[1, 0], [-1, 0], [0, 1e-10], [0, 1e-10]])  # the case that came out 0
    Y2 = np.array([[1, 1e-10], [-1, 1e-10], [0, 2e-10], [0, 2e-10]])
    a2, b2 = exact_parts(X2)
    c2, e2 = exact_parts(Y2)
    assert rel(T.escalation_excess(X2, Y2), (b2 / (a2 + b2) - e2 / (c2 + e2)) / (a2 / (a2 + b2))) < 1e-13


@pytest.mark.parametrize("gap", [1e-4, 1e-9, 1e-13])
def test_xi_excesses_keep_their_digits_where_delta_and_mu_are_near_1(gap):
    # 1/delta - 1 was delta^-1 - 1 in floating point: relative error eps/(1 - delta), 1e-3 at 1 - delta = 1e-13
    n = 4
    P = np.zeros((n, n))  # causal: delta = max_{i >= 2} P_ii exactly
    P[0, 0], P[1, :2], P[2, :3], P[3] = 1.0, [gap, 1 - gap], [0.3, 0.3, 0.4], 0.25
    X = np.random.default_rng(0).normal(size=(n, 3))
    m = T.step_metrics(X, P @ X, P)
    delta = F(float(m["delta"]))
    assert float(delta) == 1 - gap
    assert rel(m["xi_bound_minus_1"], 1 / delta - 1) < 1e-14
    Q = (1 - gap) * np.eye(n)[[1, 2, 3, 0]] + gap / n  # near a permutation: mu near 1
    m = T.step_metrics(X, Q @ X, Q)
    mu = F(float(m["mu"]))
    assert 0 < 1 - float(mu) < 10 * gap
    assert rel(m["xi_estimate_minus_1"], 1 / mu - 1) < 1e-14


def test_step_excesses_match_rationals_near_collapse():
    # r - 1, r_bound - 1 and r_estimate - 1 of step_metrics against exact arithmetic, given P's delta and mu.
    rng = np.random.default_rng(5)
    n, d = 4, 3
    X = nearly_collapsed(11, n, d, 1e-20, 1.0)
    P = T.random_symmetric_doubly_stochastic((), n, generator=T.make_generator(2)).numpy()
    U = np.linalg.qr(rng.normal(size=(d, d)))[0]
    Y = P @ X @ U
    m = T.step_metrics(torch.from_numpy(X), torch.from_numpy(Y), torch.from_numpy(P))
    ax, bx = exact_parts(X)
    ay, by = exact_parts(Y)
    s, t, t_y = ax / (ax + bx), bx / (ax + bx), by / (ay + by)
    assert float(t) < 1e-35
    d2, mu2 = F(float(m["delta"])) ** 2, F(float(m["mu"])) ** 2
    assert rel(m["r_minus_1"], (t - t_y) / s) < 1e-9
    assert rel(m["r_bound_minus_1"], t * (1 - d2) / (s + d2 * t)) < 1e-12
    assert rel(m["r_estimate_minus_1"], t * (1 - mu2) / (s + mu2 * t)) < 1e-12
    assert float(m["r"]) == 1.0 and float(m["r_bound"]) == 1.0  # where the old check went blind
    exact_slack = (t - t_y) / s - t * (1 - d2) / (s + d2 * t)
    assert rel(m["bound_slack"], exact_slack) < 1e-9
    assert rel(T.escalation_bound_slack(X, Y, P), exact_slack) < 1e-9  # the single-claim function alike
    # C6 in odds form, exactly equivalent to r >= bound: positive slack, of order one, not of order t
    assert float(m["odds_slack"]) > 1e-3
    assert float(m["bound_slack"]) > 0


def test_ldexp_reaches_twice_the_float_range_and_split_norms_survive_subnormal_inputs():
    x = torch.tensor([0.75, 1.5], dtype=torch.float64)
    e = torch.tensor([-1100.0, 1000.0], dtype=torch.float64)
    out = T._similarity.ldexp(x, e)
    assert out[0] == math.ldexp(0.75, -1100) and out[1] == math.ldexp(1.5, 1000)
    X = np.array([[3e-310, 1e-311], [5e-310, 0.0]])  # subnormal entries only
    a, b = T.split_norms(X)
    a2, b2 = exact_parts(X)
    assert rel_sq(a, a2) < 1e-5 and rel_sq(b, b2) < 1e-5  # subnormals carry ~1e-6 relative digits


def test_split_softmax_keeps_rows_whose_weight_sits_far_below_their_maximum():
    # pi = softmax(s) with a tiny entry that the scores S lift to most of the row: 1/n + rho had rounded that
    # entry to 0 and 1 + gbar cancelled (NaN), or the row summed to 0.9997
    z = torch.zeros(1, dtype=torch.float64)
    for s_gap, S_gap in [(46.0, 50.0), (30.0, 30.0), (800.0, 900.0)]:
        s = torch.tensor([[[0.0, -s_gap]]], dtype=torch.float64)
        S = torch.tensor([[[0.0, S_gap], [0.0, 0.0]]], dtype=torch.float64)
        rho, D, e = T.split_softmax(s, z, S, z)
        pi = torch.softmax(s, -1)
        P = torch.softmax(s + S, -1)
        assert torch.isfinite(D).all()
        assert torch.allclose(D * 2.0 ** e, P - pi, rtol=0, atol=1e-15)
        assert D.sum(-1).abs().max() <= 1e-15


def test_split_softmax_matches_the_softmax_of_the_whole_scores_across_regimes():
    g = torch.Generator().manual_seed(0)
    z = torch.zeros(40, dtype=torch.float64)
    for scale_s, scale_S in [(3, 5), (1, 1e-3), (30, 50), (0.1, 1e-8)]:
        s = torch.randn(40, 1, 6, generator=g, dtype=torch.float64) * scale_s
        S = torch.randn(40, 6, 6, generator=g, dtype=torch.float64) * scale_S
        _, D, e = T.split_softmax(s, z, S, z)
        pi, P = torch.softmax(s, -1), torch.softmax(s + S, -1)
        # P - pi as torch forms it is itself only good to eps (|s| + |S|) max(P, pi): compare at that size
        tol = 8 * torch.finfo(torch.float64).eps * (1 + scale_s + scale_S) * torch.maximum(P, pi.expand_as(P))
        assert ((D * 2.0 ** e[:, None, None] - (P - pi)).abs() <= tol).all()


@pytest.mark.parametrize("sep", [10, 20, 30, 40])
def test_split_softmax_keeps_its_digits_where_the_shared_scores_are_peaked(sep):
    # s = [sep, 0, ...]: pi_1 = 1 - ~e^-sep, and g - sum_l pi_l g_l cancelled in pi_1 g_1 (D off by 0.3% at
    # sep = 30, by 100% at 40); against exact softmaxes of the same float scores
    n = 5
    s = torch.zeros(1, n, dtype=torch.float64)
    s[0, 0] = sep
    S = torch.randn(n, n, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    e_S = -40
    zero, exp_S = torch.tensor(0.0, dtype=torch.float64), torch.tensor(float(e_S), dtype=torch.float64)
    _, D, e = T.split_softmax(s, zero, S, exp_S)
    assert float(e) == 0  # 2^-40 S is above the first-order path's 2^-60
    mp = pytest.importorskip("mpmath")  # sympy's own dependency
    mp.mp.dps = 80
    worst, largest = 0, 0
    for i in range(n):
        both = [mp.mpf(float(s[0, j])) + mp.mpf(float(S[i, j])) * mp.mpf(2) ** e_S for j in range(n)]
        alone = [mp.mpf(float(s[0, j])) for j in range(n)]
        p_both = [mp.e ** (v - max(both)) for v in both]
        p_alone = [mp.e ** (v - max(alone)) for v in alone]
        for j in range(n):
            exact = p_both[j] / sum(p_both) - p_alone[j] / sum(p_alone)
            worst, largest = max(worst, abs(mp.mpf(float(D[i, j])) - exact)), max(largest, abs(exact))
    assert float(worst / largest) < 1e-14


def test_step_metrics_causal_delta_is_exact_and_from_D_alone_says_how_far_to_trust_it():
    from theory._attention import deviation_stats

    P = np.array([[1.0, 0, 0], [1 - 1e-30, 1e-30, 0], [1 - 2e-30, 1e-30, 1e-30]])
    X = np.random.default_rng(1).standard_normal((3, 4))
    assert T.step_metrics(X, P @ X, P)["delta"] == 1e-30  # the diagonal read from P itself
    delta, *_, err = deviation_stats(torch.from_numpy(P - 1 / 3))  # from D = P - 1/n: rounded, and said so
    assert abs(float(delta) - 1e-30) <= float(err)
    assert 0 < float(err) <= 1e-15


def test_split_tokens_takes_numpy_and_refuses_what_is_not_an_array():
    X = np.ones((3, 2)) + np.arange(3)[:, None]
    s, t = T.split_tokens(X).shares()
    assert float(t) == pytest.approx(float(T.token_diversity(X)), rel=1e-15, abs=0)
    with pytest.raises(ValueError, match="X must be"):
        T.split_tokens("tokens")


def _split(mean, centred, mean_exp, centred_exp):
    t = lambda v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
    return T.SplitTokens(t(mean), t(centred), t(float(mean_exp)), t(float(centred_exp)))


def test_a_step_keeps_a_mean_part_far_below_the_centred_one_when_u_is_exactly_0():
    # m' = (m + u) W summed at the scale of the largest term: the old scale was the largest exponent, a centred
    # part's at 2^0 included, so a mean at 2^-1100 was flushed to 0 (t_sim 0) although u = 0 exactly (symmetric D)
    X = _split([[0.5, 0.0]], [[0.75, -0.5], [-0.75, 0.5]], -1100, 0)
    D = torch.tensor([[0.25, -0.25], [-0.25, 0.25]], dtype=torch.float64)  # symmetric, rows sum to 0: u = 0
    Y = T.attend(X, D, torch.eye(2, dtype=torch.float64))
    assert torch.equal(Y.mean, X.mean) and float(Y.mean_exp) == -1100  # Pi P X = Pi X: the mean is unchanged
    a, b = Y.norms()
    # ||1 m^T||^2 = 2 (0.5 2^-1100)^2; the centred part D E = [[.375, -.25], [-.375, .25]]: ln t_sim by hand
    mean2, centred2 = 2 * 0.5 ** 2, 2 * (0.375 ** 2 + 0.25 ** 2)
    assert math.isclose(float(T._similarity.log_share(a, b)), math.log(mean2 / centred2) - 2200 * math.log(2),
                        rel_tol=1e-14)


def test_an_exactly_zero_part_never_sets_the_scale_its_exponent_is_arbitrary():
    # a zero-mean X through a step with D at 2^-1100 leaves a zero mean part at exponent 0 beside the centred part
    # at 2^-1100: shares, the literature's metrics and the next step's mean all went to NaN or 0
    X = T.split_tokens(torch.tensor([[0.75, -0.5], [-0.75, 0.5]], dtype=torch.float64))
    W, e = torch.eye(2, dtype=torch.float64), torch.tensor(-1100.0, dtype=torch.float64)
    Y = T.attend(X, torch.tensor([[0.5, -0.5], [-0.5, 0.5]], dtype=torch.float64), W, D_exp=e)
    assert [float(v) for v in Y.shares()] == [0.0, 1.0] and float(Y.log_diversity()) == 0.0
    metrics = T.split_collapse_metrics(Y)  # Y = 2^-1100 [[.75, -.5], [-.75, .5]]: rank one, opposite tokens
    assert [float(metrics[k]) for k in ("stable_rank", "mean_cosine", "dong_residual")] == pytest.approx([1, -1, 1])
    # the next step: u = mean row of D2 Y != 0 at 2^-2200 is the whole new mean, exactly
    Z = T.attend(Y, torch.tensor([[0.25, -0.25], [0.5, -0.5]], dtype=torch.float64), W, D_exp=e)
    assert (Z.mean * 2.0 ** (float(Z.mean_exp) + 2200)).tolist() == [[0.5625, -0.375]]
    # D2 Y = 2^-2200 [[.375, -.25], [.75, -.5]]: ||1 m^T||^2 and ||E||^2 (times 2^-4400), E's rows +-[.1875, -.125]
    mean2, centred2 = 2 * (0.5625 ** 2 + 0.375 ** 2), 2 * (0.1875 ** 2 + 0.125 ** 2)
    assert float(Z.shares()[0]) == pytest.approx(mean2 / (mean2 + centred2), rel=1e-14)
