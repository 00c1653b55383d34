"""D1, D2 and C1 (partition): token similarity and diversity."""

import math
from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import theory as T
from tests.strategies import ENTRY, orthogonal_matrices, token_matrices


def reference_shares(X: np.ndarray) -> tuple[float, float]:
    """Plain float64 loop over tokens: ||Pi X||^2/||X||^2 and ||Pi_perp X||^2/||X||^2."""
    n, d = X.shape
    xbar = [sum(X[i, j] for i in range(n)) / n for j in range(d)]
    total = sum(X[i, j] ** 2 for i in range(n) for j in range(d))
    mean_sq = n * sum(v * v for v in xbar)
    centred_sq = sum((X[i, j] - xbar[j]) ** 2 for i in range(n) for j in range(d))
    return mean_sq / total, centred_sq / total


def test_token_similarity_by_hand_n2():
    # X = [1, 3]^T: xbar = 2, ||Pi X||^2 = 2 * 4 = 8, ||X||^2 = 10.
    X = np.array([[1.0], [3.0]])
    assert T.token_similarity(X) == pytest.approx(0.8, rel=1e-15)
    assert T.token_diversity(X) == pytest.approx(0.2, rel=1e-15)
    assert T.similarity_odds(X) == pytest.approx(4.0, rel=1e-15)


@given(token_matrices())
def test_C1_similarity_and_diversity_partition_unity(X):
    s, t = T.token_similarity(X), T.token_diversity(X)
    assert 0 <= s <= 1 and 0 <= t <= 1
    assert s + t == pytest.approx(1, abs=1e-14)


@given(token_matrices())
def test_C1_shares_match_an_independent_loop(X):
    s_ref, t_ref = reference_shares(X)
    assert T.token_similarity(X) == pytest.approx(s_ref, rel=1e-10, abs=1e-13)
    assert T.token_diversity(X) == pytest.approx(t_ref, rel=1e-10, abs=1e-13)


@given(token_matrices(), st.floats(-1e3, 1e3).filter(lambda c: abs(c) > 1e-3), st.data())
def test_C1_similarity_is_invariant_under_scaling_rotation_and_permutation(X, c, data):
    n, d = X.shape
    U = data.draw(orthogonal_matrices(d))
    S = np.eye(n)[data.draw(st.permutations(range(n)))]
    s = T.token_similarity(X)
    for Y in (c * X, X @ U, S @ X):
        assert T.token_similarity(Y) == pytest.approx(s, abs=1e-12)


@given(st.lists(ENTRY, min_size=1, max_size=6).filter(lambda v: max(map(abs, v)) > 1e-3), st.integers(2, 8))
def test_C1_similarity_is_one_exactly_when_tokens_are_equal(x, n):
    X = np.tile(np.array(x), (n, 1))
    assert T.token_similarity(X) == 1.0
    assert T.token_diversity(X) == 0.0


@given(token_matrices())
def test_C1_similarity_is_zero_when_the_mean_token_vanishes(X):
    Xc = X - X.mean(0)  # mean token zero up to rounding: |xbar| <= ~n eps max|X|
    if np.abs(Xc).max() > 1e-6:
        n = X.shape[0]
        rounding = n * (8 * n * np.finfo(float).eps * np.abs(X).max()) ** 2 / (Xc ** 2).sum()
        assert T.token_similarity(Xc) <= rounding


def test_token_diversity_is_accurate_at_1e_minus_24():
    # Tokens equal up to exactly representable 2^-40 perturbations; exact answer from rational arithmetic.
    eps = 2.0 ** -40
    base = np.array([1.0, -2.0, 0.5])
    E = np.array([[1, 0, -1], [0, 1, 0], [-1, -1, 1], [0, 0, 0]], dtype=float)
    X = base + eps * E
    Xq = [[Fraction(v) for v in row] for row in X]
    n, d = len(Xq), len(Xq[0])
    xbar = [sum(Xq[i][j] for i in range(n)) / n for j in range(d)]
    centred = sum((Xq[i][j] - xbar[j]) ** 2 for i in range(n) for j in range(d))
    exact = centred / sum(v * v for row in Xq for v in row)
    assert float(exact) < 1e-23
    assert T.token_diversity(X) == pytest.approx(float(exact), rel=1e-9)
    assert T.token_similarity(X) == pytest.approx(1.0, abs=1e-15)  # and 1 - t_sim would be 0


def test_shares_survive_tiny_and_huge_entries():
    X = np.array([[1.0, 2.0], [3.0, -1.0], [0.5, 0.5]])
    s = T.token_similarity(X)
    for scale in (1e-300, 1e300):
        assert T.token_similarity(X * scale) == pytest.approx(s, rel=1e-12)
        assert T.token_diversity(X * scale) == pytest.approx(1 - s, rel=1e-12)


def test_batched_shares_equal_one_at_a_time():
    g = T.make_generator(3)
    X = T.random_tokens((4, 5), 6, 3, generator=g)
    s = T.token_similarity(X)
    assert s.shape == (4, 5)
    for i in range(4):
        for j in range(5):
            assert float(s[i, j]) == pytest.approx(float(T.token_similarity(X[i, j])), rel=1e-14)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_torch_input_keeps_dtype_and_numpy_input_gives_numpy(dtype):
    X = torch.tensor([[1.0, 2.0], [3.0, 5.0]], dtype=dtype)
    s = T.token_similarity(X)
    assert isinstance(s, torch.Tensor) and s.dtype == dtype and s.device == X.device
    s_np = T.token_similarity(X.numpy())
    assert isinstance(s_np, np.floating) and s_np.dtype == X.numpy().dtype
    assert float(s_np) == pytest.approx(float(s), rel=1e-6)


def test_mean_and_centred_parts_add_up_to_X():
    X = np.array([[1.0, 2.0], [3.0, 5.0], [-1.0, 0.0]])
    np.testing.assert_allclose(T.mean_part(X) + T.centred_part(X), X, rtol=0, atol=1e-15)
    np.testing.assert_allclose(T.mean_part(X), np.tile(X.mean(0), (3, 1)), rtol=0, atol=1e-15)
    a, b = T.split_norms(X)
    assert a ** 2 + b ** 2 == pytest.approx((X ** 2).sum(), rel=1e-14)


@given(st.lists(st.tuples(st.floats(-1.0, 1.0, allow_subnormal=False), st.integers(-60, 60), st.integers(0, 60)),
                min_size=1, max_size=40))
def test_the_mean_is_a_sum_in_twice_the_precision_rounded_once(terms):
    # the module doc's floor for ||Pi X||: each entry of the sum to eps/2 of itself plus log2(n) eps^2 sum |x_i|;
    # pairs x, -x (1 + 2^-k) make it cancel to any depth
    from theory._similarity import compensated_sum

    x = [v * 2.0 ** e for v, e, _ in terms] + [-v * 2.0 ** e * (1 + 2.0 ** -k) for v, e, k in terms[::2]]
    exact = sum(Fraction(v) for v in x)
    got = float(compensated_sum(torch.tensor(x, dtype=torch.float64)[:, None], 0)[0])
    eps = np.finfo(float).eps
    bound = eps / 2 * abs(float(exact)) + max(1, math.ceil(math.log2(len(x)))) * eps ** 2 * sum(abs(v) for v in x)
    assert float(abs(Fraction(got) - exact)) <= bound

