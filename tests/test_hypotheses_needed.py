"""C8: drop the symmetry hypothesis and C5's corollary and C6 fail; Hypothesis must find that by itself."""

from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import find, settings
from hypothesis import strategies as st
from hypothesis.errors import NoSuchExample

import theory as T
from tests.strategies import row_stochastic, softmax_matrices, symmetric_doubly_stochastic, token_matrices

SEARCH = settings(max_examples=400, derandomize=True, deadline=None, database=None)


@st.composite
def steps(draw, attention):
    P = draw(attention)
    X = draw(token_matrices(n=P.shape[0], mixed=True))
    return X, P


def violates_C6(XP) -> bool:
    X, P = XP
    Y = P @ X
    if np.abs(Y).max() < 1e-6:
        return False
    return T.escalation_bound_slack(X, Y, P) < -1e-6


def violates_C5_corollary(XP) -> bool:
    """xi1/xi2 >= 1/delta(P) fails (written as xi1 * delta < xi2 to avoid dividing by zero)."""
    X, P = XP
    Y = P @ X
    if np.abs(Y).max() < 1e-6 or T.token_diversity(Y) < 1e-12:
        return False
    xi1, xi2 = T.growth_factors(X, Y)
    return xi1 * T.slem(P) < xi2 * (1 - 1e-6)


@pytest.mark.parametrize("violates", [violates_C6, violates_C5_corollary], ids=["C6", "C5"])
@pytest.mark.parametrize("attention", [row_stochastic(), softmax_matrices()], ids=["row_stochastic", "softmax"])
def test_C8_hypothesis_finds_a_counterexample_without_symmetry(violates, attention):
    X, P = find(steps(attention), violates, settings=SEARCH)
    assert violates((X, P))
    assert T.is_row_stochastic(P) and not np.allclose(P, P.T)


@pytest.mark.parametrize("violates", [violates_C6, violates_C5_corollary], ids=["C6", "C5"])
def test_C8_no_counterexample_exists_with_symmetric_attention(violates):
    with pytest.raises(NoSuchExample):
        find(steps(symmetric_doubly_stochastic()), violates, settings=SEARCH)


def test_C8_escalation_rate_can_fall_below_one_by_hand_n2():
    # X = [2, -1]^T, P = [[0, 1], [0.6, 0.4]]: t_sim 1/10 -> 1/82, r = 5/41; delta(P) = 0.6.
    X, P = T.counterexample_n2()
    Y = P @ X
    assert T.escalation_rate(X, Y) == pytest.approx(5 / 41, rel=1e-14)
    assert T.slem(P) == pytest.approx(0.6, rel=1e-14)
    bound = T.escalation_lower_bound(T.token_similarity(X), T.slem(P))
    assert bound == pytest.approx(125 / 53, rel=1e-14)
    assert T.escalation_bound_slack(X, Y, P) == pytest.approx(5 / 41 - 125 / 53, rel=1e-13)
    xi1, xi2 = T.growth_factors(X, Y)
    assert float(xi1 / xi2) == pytest.approx(1 / 3, rel=1e-14)  # < 1/delta = 5/3


def test_C8_escalation_rate_can_fall_below_one_with_strictly_positive_attention():
    # counterexample_n2's P has a zero entry, so it is no softmax matrix; this P > 0 is softmax(log P), n = 3.
    # Exact (fractions): X = [-3, 2, -1]^T, PX = [3/10, 9/10, -13/10]^T, t_sim 2/21 -> 1/777, r = 1/74;
    # delta = (1 + sqrt 41)/20 (chi_P = (lambda - 1)(lambda^2 + lambda/10 - 1/10)).
    X, P = T.counterexample_positive()
    assert X.shape == (3, 1) and P.shape == (3, 3) and X.dtype == P.dtype == torch.float64
    assert float(P.min()) > 0 and T.is_row_stochastic(P) and not np.allclose(P, P.T)
    P_exact = [[Fraction(k, 10) for k in row] for row in ([1, 5, 4], [1, 7, 2], [6, 3, 1])]
    np.testing.assert_allclose(P.numpy(), np.array(P_exact, dtype=float), rtol=1e-15)
    Y_exact = [sum(p * x for p, x in zip(row, (-3, 2, -1))) for row in P_exact]
    assert Y_exact == [Fraction(3, 10), Fraction(9, 10), Fraction(-13, 10)]
    t_sim = lambda v: 3 * (sum(v) / 3) ** 2 / sum(x * x for x in v)  # noqa: E731 -- D1 for one feature
    assert t_sim([Fraction(-3), Fraction(2), Fraction(-1)]) == Fraction(2, 21) and t_sim(Y_exact) == Fraction(1, 777)
    r = T.escalation_rate(X, P @ X)
    assert float(r) == pytest.approx(1 / 74, rel=1e-12)
    delta = (1 + 41 ** 0.5) / 20
    assert float(T.slem(P)) == pytest.approx(delta, rel=1e-12)
    bound = T.escalation_lower_bound(T.token_similarity(X), T.slem(P))
    assert float(r) < 1 < float(bound)  # C6 fails, and r < 1 outright
    xi1, xi2 = T.growth_factors(X, P @ X)
    assert float(xi1) * delta < float(xi2)  # C5's symmetric corollary xi1/xi2 >= 1/delta fails


def test_C8_random_softmax_chains_violate_the_per_step_bound_in_a_fraction_of_steps():
    # THEORY.md C8: in Fig 3's chain (n = 32, beta = 4) 15-35% of steps violate C6, yet layer means of r
    # stay above layer means of the bound. Small T here; the ledger runs a larger sweep.
    g = T.make_generator(2024)
    n, d, L, trials = 32, 64, 8, 40
    X = T.random_tokens((trials,), n, d, generator=g)
    violations, r_means, bound_means = [], [], []
    for _ in range(L):
        P = T.softmax_attention((trials,), n, beta=4.0, generator=g)
        W = T.random_gaussian((trials,), d, d, std=d ** -0.5, generator=g)
        Y = P @ X @ W
        slack = T.escalation_bound_slack(X, Y, P)
        r = T.escalation_rate(X, Y)
        violations.append(float((slack < 0).double().mean()))
        r_means.append(float(r.mean()))
        bound_means.append(float((r - slack).mean()))
        X = Y / T.split_norms(Y)[0].hypot(T.split_norms(Y)[1])[:, None, None]
    share = float(np.mean(violations))
    assert 0.15 < share < 0.35  # THEORY.md's range; about 0.25 over the first 8 layers (1000 trials, another seed)
    assert all(rm >= bm for rm, bm in zip(r_means, bound_means))
