"""D5, C3 (invariant leading eigenspace) and C4 (column-sum defect)."""

import numpy as np
import pytest
import torch
from hypothesis import assume, example, given
from hypothesis import strategies as st

import theory as T
from tests.strategies import (N_TOKENS, row_stochastic, softmax_matrices, symmetric_doubly_stochastic,
                              token_matrices)


def any_attention(n=None):
    return st.one_of(row_stochastic(n), softmax_matrices(n), symmetric_doubly_stochastic(n))


ANY_ATTENTION = any_attention()


def reference_slem(P: np.ndarray) -> float:
    """numpy: spectral radius of P on 1-perp, in a basis from the SVD (not the Helmert basis of theory)."""
    n = P.shape[0]
    Q = np.linalg.svd(np.ones((1, n)))[2][1:].T  # (n, n-1), orthonormal, orthogonal to 1
    return float(np.max(np.abs(np.linalg.eigvals(Q.T @ P @ Q))))


def eigenvalue_condition(P: np.ndarray) -> float:
    """numpy: the largest eigenvalue condition number ||x|| ||y|| / |y^H x| of P restricted to 1-perp (inf if
    its eigenvector matrix is singular, i.e. P is numerically defective there)."""
    n = P.shape[0]
    Q = np.linalg.svd(np.ones((1, n)))[2][1:].T
    _, V = np.linalg.eig(Q.T @ P @ Q)
    with np.errstate(all="ignore"):
        if not np.isfinite(np.linalg.cond(V)) or np.linalg.cond(V) > 1e15:
            return float("inf")
        Yh = np.linalg.inv(V)  # rows: left eigenvectors with y^H x = 1
    return float(np.max(np.linalg.norm(V, axis=0) * np.linalg.norm(Yh, axis=1)))


def dobrushin(P: np.ndarray) -> float:
    """Dobrushin's ergodicity coefficient 1 - min_{i,k} sum_j min(P_ij, P_kj): bounds |lambda| for every
    eigenvalue lambda != 1 of a stochastic P (Seneta, Non-negative Matrices and Markov Chains, Thm 3.1)."""
    return float(1 - np.minimum(P[:, None, :], P[None, :, :]).sum(-1).min())


@pytest.mark.parametrize("a, b", [(0.3, 0.5), (0.9, 0.8), (0.0, 0.0), (1.0, 1.0), (0.2, 0.0)])
def test_attention_quantities_by_hand_n2(a, b):
    # P = [[1-a, a], [b, 1-b]]: eigenvalues 1 and 1-a-b; C = Q^T P Q = 1-a-b (1x1); column sums 1-a+b, 1+a-b.
    P = np.array([[1 - a, a], [b, 1 - b]])
    assert T.slem(P) == pytest.approx(abs(1 - a - b), abs=1e-15)
    assert T.diversity_gain(P) == pytest.approx(abs(1 - a - b), abs=1e-15)
    assert T.rms_diversity_gain(P) == pytest.approx(abs(1 - a - b), abs=1e-15)
    assert T.column_sum_defect(P) == pytest.approx(abs(b - a), abs=1e-15)  # ||(b-a, a-b)|| / sqrt 2


@given(ANY_ATTENTION)
def test_C3_ones_is_an_invariant_eigenvector_and_the_lower_left_block_vanishes(P):
    n = P.shape[0]
    Pi = np.full((n, n), 1 / n)
    np.testing.assert_allclose(P @ np.ones(n), np.ones(n), atol=1e-13)
    np.testing.assert_allclose(P @ Pi, Pi, atol=1e-13)
    np.testing.assert_allclose((np.eye(n) - Pi) @ P @ Pi, 0, atol=1e-13)
    b, z, C = T.attention_blocks(P)
    V = T.leading_basis(n).numpy()
    assert (V.T @ P @ V)[0, 0] == pytest.approx(1, abs=1e-13)
    np.testing.assert_allclose(z, 0, atol=1e-13)


@given(ANY_ATTENTION)
def test_C3_spectrum_is_one_together_with_the_spectrum_of_C(P):
    # Compare characteristic polynomials, not sorted eigenvalues: a defective block's eigenvalues are fixed
    # only to eps^(1/k), but a backward-stable solver's char-poly coefficients are accurate to rounding.
    _, _, C = T.attention_blocks(P)
    np.testing.assert_allclose(np.poly(P), np.convolve([1.0, -1.0], np.poly(C)), rtol=0, atol=1e-10)


@given(st.data())
def test_C3_products_of_row_stochastic_matrices_stay_row_stochastic(data):
    n = data.draw(N_TOKENS)  # one n for both factors, so every example multiplies
    P1, P2 = data.draw(any_attention(n)), data.draw(any_attention(n))
    assert T.is_row_stochastic(P1 @ P2)
    np.testing.assert_allclose(T.attention_blocks(P1 @ P2)[1], 0, atol=1e-12)


@given(softmax_matrices())
def test_C3_positive_attention_has_a_spectral_gap(P):
    # At beta up to 8 some entries underflow towards 0 (exp(-48)): keep the entrywise positive draws, so the
    # assertion runs on every kept example (Hypothesis fails with Unsatisfiable if it finds none).
    assume(P.min() > 1e-12)
    tau = dobrushin(P)
    assert tau < 1  # P > 0 makes every pair of rows overlap
    assert T.slem(P) <= tau + 1e-12  # a quantitative gap, not only delta < 1 (Perron-Frobenius)
    assert T.slem(P) < 1


def test_C3_reducible_attention_has_slem_one():
    assert T.slem(np.eye(4)) == pytest.approx(1.0, abs=1e-15)
    blocks = np.kron(np.eye(2), np.full((2, 2), 0.5))
    assert T.slem(blocks) == pytest.approx(1.0, abs=1e-14)


@example(np.array([[1.0, 0, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1], [0, 1, 0, 0]]))  # nilpotent chain 2 -> 3 -> 1
@example(np.full((5, 5), 0.2))  # uniform attention: C = 0, well-conditioned (normal)
@given(ANY_ATTENTION)
def test_D5_quantities_match_independent_numpy_references(P):
    n = P.shape[0]
    Pp = np.eye(n) - np.full((n, n), 1 / n)
    # A backward-stable solver moves an eigenvalue of condition kappa by about kappa eps ||P||: with kappa
    # below 1e4 (measured independently, in numpy) two correct solvers agree far inside 1e-9. Only a nearly
    # defective C (a Jordan block of size k, e.g. a chain i -> f(i) in a 0/1 P; kappa above 1e4 or infinite)
    # has eigenvalues fixed by the data to ~eps^(1/k), k <= n - 1: only there the loose tolerance is honest.
    kappa = eigenvalue_condition(P)
    tol = 1e-9 if kappa < 1e4 else 1e-9 + np.finfo(np.float64).eps ** (1 / (n - 1))
    assert T.slem(P) == pytest.approx(reference_slem(P), abs=tol), f"kappa = {kappa:.3g}"
    assert T.diversity_gain(P) == pytest.approx(np.linalg.norm(Pp @ P @ Pp, 2), abs=1e-12)
    assert T.rms_diversity_gain(P) == pytest.approx(np.linalg.norm(Pp @ P @ Pp) / np.sqrt(n - 1), abs=1e-12)
    Pi = np.full((n, n), 1 / n)
    assert T.column_sum_defect(P) == pytest.approx(np.linalg.norm(Pi @ P @ Pp, 2), abs=1e-12)


@given(ANY_ATTENTION)
def test_D5_slem_and_rms_gain_never_exceed_the_operator_gain(P):
    sigma = T.diversity_gain(P)
    assert T.slem(P) <= sigma + 1e-12
    assert T.rms_diversity_gain(P) <= sigma + 1e-12


@given(ANY_ATTENTION)
def test_C4_defect_block_is_rank_one_from_column_sums(P):
    n = P.shape[0]
    Pi = np.full((n, n), 1 / n)
    c = P.sum(0)
    np.testing.assert_allclose(Pi @ P @ (np.eye(n) - Pi), np.outer(np.ones(n), c - 1) / n, atol=1e-13)
    assert T.column_sum_defect(P) == pytest.approx(np.linalg.norm(c - 1) / np.sqrt(n), abs=1e-13)


@given(ANY_ATTENTION)
def test_C4_zero_defect_iff_doubly_stochastic_iff_commuting_with_Pi(P):
    n = P.shape[0]
    Pi = np.full((n, n), 1 / n)
    omega = T.column_sum_defect(P)
    doubly = np.allclose(P.sum(0), 1, rtol=0, atol=1e-12)
    commutes = np.allclose(P @ Pi, Pi @ P, rtol=0, atol=1e-12)
    assert doubly == commutes == (omega < 1e-12)


@given(symmetric_doubly_stochastic())
def test_C4_symmetric_row_stochastic_is_doubly_stochastic(P):
    assert T.column_sum_defect(P) < 1e-14
    assert T.slem(P) == pytest.approx(T.diversity_gain(P), abs=1e-12)  # sigma = delta for symmetric P


@given(token_matrices(), st.data())
def test_C3_mean_projection_commutes_with_right_multiplication(X, data):
    W = data.draw(token_matrices(n=X.shape[1]))
    np.testing.assert_allclose(T.mean_part(X @ W), T.mean_part(X) @ W, atol=1e-9)


def test_eigenvalues_are_taken_in_float64_for_float32_input():
    g = T.make_generator(0)
    P = T.softmax_attention((8,), 16, generator=g, dtype=torch.float32)
    d32 = T.slem(P)
    assert d32.dtype == torch.float32
    P64 = P.double() / P.double().sum(-1, keepdim=True)  # float32 rows sum to 1 only to float32 precision
    torch.testing.assert_close(d32.double(), T.slem(P64), atol=1e-6, rtol=0)


def _causal_softmax(batch: int, n: int, beta: float, seed: int) -> torch.Tensor:
    S = beta * torch.randn(batch, n, n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    mask = torch.ones(n, n, dtype=torch.bool).triu(1)  # token i attends to j <= i
    return torch.softmax(S.masked_fill(mask, float("-inf")), dim=-1)


@pytest.mark.parametrize("beta", [0.5, 4.0, 50.0])
def test_C3_causal_attention_slem_is_exactly_the_largest_later_diagonal_entry(beta):
    # Lower-triangular P: spec(P) = its diagonal, P_11 = 1, so delta = max_{i >= 2} P_ii exactly; through
    # C = Q^T P Q a general solver loses digits (relative 1e-5 and worse at large beta).
    P = _causal_softmax(200, 9, beta, 3)
    delta, err = T.slem_with_error(P)
    exact = P.diagonal(dim1=-2, dim2=-1)[:, 1:].amax(-1)
    assert torch.equal(T.slem(P), exact) and torch.equal(delta, exact)
    assert bool((err == 0).all())


def test_C3_symmetric_attention_slem_by_the_symmetric_solver_matches_a_general_one():
    P = T.random_symmetric_doubly_stochastic((200,), 9, generator=T.make_generator(4))
    _, _, C = T.attention_blocks(P)
    general = torch.linalg.eigvals(C).abs().amax(-1)
    delta, err = T.slem_with_error(P)
    np.testing.assert_allclose(delta, general, rtol=1e-12, atol=1e-14)
    assert bool((err < 1e-14).all())


def test_D5_slem_error_estimate_says_which_digits_to_trust_against_50_digit_arithmetic():
    # Nearly one-hot rows (beta = 1000) make C nearly defective: float64 fixes delta only to a few digits there.
    # Every delta whose estimate promises 1e-6 relative must deliver it; well-conditioned P are all trusted.
    import mpmath as mp

    mp.mp.dps = 50
    g = T.make_generator(1)
    for beta, trusted_share in ((4.0, 1.0), (1000.0, None)):
        P = T.softmax_attention((60,), 6, beta=beta, generator=g)
        delta, err = T.slem_with_error(P)
        trusted = err / delta <= 1e-6
        if trusted_share is not None:
            assert float(trusted.double().mean()) == trusted_share
        for i in range(60):
            ev = sorted(mp.eig(mp.matrix(P[i].tolist()), left=False, right=False), key=lambda z: abs(z - 1))
            true = max(abs(z) for z in ev[1:])  # the eigenvalue 1 of P 1 = 1 removed
            if trusted[i]:
                assert abs(float(true) - float(delta[i])) <= 1e-6 * float(delta[i]), (beta, i)
    assert not bool(trusted.all())  # at beta = 1000 some deltas are flagged: the estimate is not blind


@pytest.mark.parametrize("scale", [2.0 ** -30, 2.0 ** -50, 2.0 ** -52])
def test_slem_of_nearly_uniform_attention_keeps_its_digits_and_its_error_estimate_holds(scale):
    # C was formed as Q^T P Q: eps ||P|| of rounding against a delta of ~1e-15 gave 3e-3 relative error (1e-2 at
    # 2^-52) with an estimate of 8e-31. The deviation P - 1/n is exact here, so delta is scale times that of D
    D = np.array([[1, 1, 1, -3], [0, 0, 0, 0], [2, -1, -1, 0], [-1, 0, 2, -1]], dtype=np.float64)
    P = D * scale + 0.25
    n = 4
    Q = np.linalg.qr(np.eye(n) - 1 / n)[0][:, :n - 1]  # any orthonormal basis of 1's complement
    want = scale * np.abs(np.linalg.eigvals(Q.T @ D @ Q)).max()
    delta, err = T.slem_with_error(P)
    assert abs(float(delta) - want) <= float(err) + 1e-13 * want
    assert float(T.slem(P)) == pytest.approx(want, rel=1e-13)


def test_slem_with_error_in_float32_counts_the_rounding_of_delta_to_float32():
    # the work is float64 and delta is returned in P's dtype: e was float64's (1e-16 relative) while the float32
    # delta is off by up to half a float32 ulp (3e-8 relative)
    from theory._attention import _restrict_deviation, _slem_of

    P = T.softmax_attention((200,), 9, beta=2.0, generator=T.make_generator(5)).float()
    delta, err = T.slem_with_error(P)
    assert delta.dtype == err.dtype == torch.float32
    P64 = P.double()  # the float32 matrix itself, whose rows sum to 1 only to float32's rounding
    delta64, err64 = _slem_of(_restrict_deviation(P64), P64, errors=True)
    gap = (delta.double() - delta64).abs() + err64  # how far the float32 delta may be from the float32 P's own
    assert bool(((delta.double() - delta64).abs() > 1e-12).any())  # rounding to float32 moved them
    assert bool((gap <= err.double() * (1 + 1e-6)).all())
