"""D3, D4 and C2 (escalation identity, [YZ] Prop 2.3)."""

import numpy as np
import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import theory as T
from tests.strategies import ENTRY, token_matrices


@st.composite
def maps(draw):
    """A pair (X, Y) with Y = X M + 1 v^T for drawn M and v: an arbitrary (affine) map of X."""
    X = draw(token_matrices(mixed=True))
    n, d = X.shape
    d_out = draw(st.integers(1, 6))
    M = draw(arrays(np.float64, (d, d_out), elements=ENTRY))
    v = draw(arrays(np.float64, (d_out,), elements=ENTRY))
    A = draw(arrays(np.float64, (n, n), elements=st.floats(-2, 2)))  # token mixing too
    Y = A @ X @ M + v
    assume(np.abs(Y).max() > 1e-3)
    return X, Y


def test_growth_factors_and_rate_by_hand_n2():
    # C8's example: X = [2, -1]^T -> Y = PX = [-1, 0.8]^T; xbar = 0.5, ybar = -0.1.
    X, P = T.counterexample_n2()
    Y = (P @ X).numpy()
    xi1, xi2 = T.growth_factors(X.numpy(), Y)
    assert xi1 == pytest.approx(0.1 / 0.5, rel=1e-14)
    assert xi2 == pytest.approx(0.9 / 1.5, rel=1e-14)
    assert T.escalation_rate(X.numpy(), Y) == pytest.approx(5 / 41, rel=1e-14)


@given(maps())
def test_C2_escalation_identity_holds_for_any_map(XY):
    X, Y = XY
    s, t = T.token_similarity(X), T.token_diversity(X)
    xi1, xi2 = T.growth_factors(X, Y)
    assume(xi1 > 1e-6 or xi2 > 1e-6)
    r = T.escalation_rate(X, Y)
    assert T.escalation_identity(s, xi1, xi2, t_div=t) == pytest.approx(r, rel=1e-9, abs=1e-12)


@given(maps())
def test_C2_rate_exceeds_one_exactly_when_xi1_exceeds_xi2(XY):
    X, Y = XY
    xi1, xi2 = T.growth_factors(X, Y)
    r = T.escalation_rate(X, Y)
    assume(abs(xi1 - xi2) > 1e-9 * max(xi1, xi2))  # away from the tie, where rounding decides
    assert (r > 1) == (xi1 > xi2)


@given(maps())
def test_C2_odds_grow_by_the_squared_ratio_of_growth_factors(XY):
    X, Y = XY
    xi1, xi2 = T.growth_factors(X, Y)
    assume(xi2 > 1e-6 * xi1 and xi1 > 1e-6 * xi2)
    assert T.similarity_odds(Y) / T.similarity_odds(X) == pytest.approx(T.odds_growth(xi1, xi2), rel=1e-9)


@given(maps())
def test_growth_factors_match_an_independent_numpy_reference(XY):
    X, Y = XY
    n = X.shape[0]
    Pi = np.full((n, n), 1 / n)
    Pp = np.eye(n) - Pi
    xi1, xi2 = T.growth_factors(X, Y)
    assert xi1 == pytest.approx(np.linalg.norm(Pi @ Y) / np.linalg.norm(Pi @ X), rel=1e-8, abs=1e-10)
    assert xi2 == pytest.approx(np.linalg.norm(Pp @ Y) / np.linalg.norm(Pp @ X), rel=1e-8, abs=1e-10)


def test_escalation_identity_broadcasts_and_uses_t_div():
    s = np.array([0.2, 0.5, 0.9])
    r = T.escalation_identity(s, 1.0, 0.5)
    np.testing.assert_allclose(r, 1 / (s + 0.25 * (1 - s)), rtol=1e-15)
    # Near s = 1 only t_div carries the information: 1 - s is 0 in float64.
    assert T.escalation_identity(1.0, 1.0, 1e6, t_div=1e-20) == pytest.approx(1 / (1 + 1e12 * 1e-20), rel=1e-15)


def test_a_python_number_beside_a_float32_tensor_does_not_widen_it():
    s0 = torch.tensor(0.5, dtype=torch.float32)  # 0-d: a float64 0-d tensor made from 0.3 would win promotion
    assert T.escalation_lower_bound(s0, 0.3).dtype == torch.float32 == (s0 * 0.3).dtype
    assert T.escalation_identity(s0, 1.2, 0.5).dtype == torch.float32
    assert T.escalation_lower_bound(torch.tensor(0.5, dtype=torch.float64), 0.3).dtype == torch.float64
