"""C11 (de-escalation), C12 (context broadcasting), C13 (LayerNorm fixed point)."""

import numpy as np
import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import theory as T
from tests.strategies import ENTRY, TAU, token_matrices


def test_deescalation_by_hand_n2():
    # X = [1, 3]^T, s = 0.8; tau = 0.5: Y = X - 0.5 * 2 = [0, 2]^T, t_sim(Y) = 2/4 = 0.5.
    X = np.array([[1.0], [3.0]])
    Y = T.deescalate(X, 0.5)
    np.testing.assert_allclose(Y, [[0.0], [2.0]], atol=1e-15)
    assert T.deescalated_similarity(0.8, 0.5) == pytest.approx(0.5, rel=1e-15)
    assert T.token_similarity(Y) == pytest.approx(0.5, rel=1e-14)


@given(token_matrices(mixed=True), TAU)
def test_C11_deescalation_scales_the_mean_by_one_minus_tau_and_keeps_diversity(X, tau):
    assume(abs(1 - tau) > 1e-6)
    Y = T.deescalate(X, tau)
    xi1, xi2 = T.growth_factors(X, Y)
    assert xi1 == pytest.approx(abs(1 - tau), rel=1e-9)
    assert xi2 == pytest.approx(1, rel=1e-12)
    s, t = T.token_similarity(X), T.token_diversity(X)
    assert T.token_similarity(Y) == pytest.approx(T.deescalated_similarity(s, tau, t_div=t), rel=1e-9, abs=1e-15)


@given(token_matrices(mixed=True), st.floats(0.01, 1.99))
def test_C11_tau_in_zero_two_lowers_similarity_and_tau_one_removes_it(X, tau):
    assert T.token_similarity(T.deescalate(X, tau)) < T.token_similarity(X)
    assert T.token_similarity(T.deescalate(X, 1.0)) == pytest.approx(0, abs=1e-25)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_deescalate_and_context_broadcast_keep_the_dtype_of_X(dtype):
    X = torch.tensor([[1.0, 2.0], [3.0, 5.0]], dtype=dtype)
    assert T.deescalate(X, 0.5).dtype == dtype and T.deescalate(X, np.float64(0.5)).dtype == dtype
    assert T.context_broadcast(X).dtype == dtype


def test_C11_deescalate_is_batched_over_tau():
    g = T.make_generator(4)
    X = T.random_tokens((3,), 5, 2, generator=g)
    tau = torch.tensor([0.1, 0.5, 1.0], dtype=torch.float64)
    Y = T.deescalate(X, tau)
    for i in range(3):
        torch.testing.assert_close(Y[i], T.deescalate(X[i], float(tau[i])))


@given(token_matrices(mixed=True))
def test_C12_context_broadcasting_keeps_the_mean_halves_diversity_and_escalates(X):
    Y = T.context_broadcast(X)
    xi1, xi2 = T.growth_factors(X, Y)
    assert xi1 == pytest.approx(1, rel=1e-12) and xi2 == pytest.approx(0.5, rel=1e-12)
    s = T.token_similarity(X)
    r = T.escalation_rate(X, Y)
    assert r == pytest.approx(1 / (s + T.token_diversity(X) / 4), rel=1e-9)
    assert r >= 1 - 1e-12
    np.testing.assert_allclose(Y, T.deescalate(X, -1.0) / 2, atol=1e-12)  # the tau = -1 member, halved


@given(token_matrices(), st.integers(2, 8))
def test_C12_uniform_attention_has_zero_slem_and_makes_tokens_equal(X, n):
    Pi = T.uniform_attention(n)
    assert float(T.slem(Pi)) == pytest.approx(0, abs=1e-15)
    X = X[:1].repeat(n, 0) + np.arange(n)[:, None]  # some (n, d) matrix
    assume(np.abs(X.mean(0)).max() > 1e-9)  # Pi X = 0 has no similarity
    assert T.token_similarity(Pi.numpy() @ X) == pytest.approx(1, abs=1e-15)


def test_C12_context_broadcasting_by_hand_n2():
    # X = [1, 3]^T: CB(X) = ([1, 3] + [2, 2])/2 = [1.5, 2.5]; t_sim = 2 * 4 / 8.5.
    X = np.array([[1.0], [3.0]])
    np.testing.assert_allclose(T.context_broadcast(X), [[1.5], [2.5]], atol=1e-15)
    assert T.token_similarity(T.context_broadcast(X)) == pytest.approx(8 / 8.5, rel=1e-14)


@given(arrays(np.float64, st.integers(2, 6), elements=ENTRY), st.integers(2, 6),
       st.floats(0.1, 3), st.floats(-2, 2))
def test_C13_layer_norm_maps_equal_tokens_to_equal_tokens(x, n, w, b):
    assume(np.ptp(x) > 1e-3)  # a constant token normalises to 0 + bias
    X = np.tile(x, (n, 1))
    d = x.shape[0]
    Y = T.layer_norm(X, np.full(d, w), np.linspace(-1, 1, d) * b)
    assume(np.abs(Y).max() > 1e-6)
    assert T.token_similarity(Y) == pytest.approx(1, abs=1e-14)


@given(token_matrices())
def test_C13_feature_centring_commutes_with_the_mean_projection(X):
    d = X.shape[1]
    J = np.eye(d) - np.full((d, d), 1 / d)
    np.testing.assert_allclose(T.mean_part(X @ J), T.mean_part(X) @ J, atol=1e-12)


def test_layer_norm_matches_a_numpy_reference():
    X = np.array([[1.0, 2.0, 4.0], [0.0, -1.0, 3.0]])
    mu = X.mean(1, keepdims=True)
    var = X.var(1, keepdims=True)
    np.testing.assert_allclose(T.layer_norm(X, eps=1e-5), (X - mu) / np.sqrt(var + 1e-5), rtol=1e-12)


@given(token_matrices(), st.integers(0, 2 ** 32 - 1), st.floats(0.0, 1e-2))
def test_C13_layer_norm_with_weight_and_bias_matches_numpy_and_torchs_module(X, seed, eps):
    # the references above used the default weight and bias only: dropping the affine part passed them all
    rng = np.random.default_rng(seed)
    d = X.shape[1]
    w, b = rng.uniform(0.5, 2.0, d), rng.normal(size=d)
    # a (nearly) constant token divides its rounding by sqrt(eps): 0/0 at eps = 0, ill-conditioned near it
    assume((np.ptp(X, axis=1) > 1e-3 * np.abs(X).max(axis=1)).all())
    mu, var = X.mean(1, keepdims=True), X.var(1, keepdims=True)
    assume((var + eps > 1e-290).all())  # a token's variance underflowed (entries ~1e-160): no reference to compare
    want = (X - mu) / np.sqrt(var + eps) * w + b
    got = T.layer_norm(X, w, b, eps=eps)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12 * (1 + np.abs(b).max()))
    module = torch.nn.LayerNorm(d, eps=eps, dtype=torch.float64)
    with torch.no_grad():
        module.weight.copy_(torch.from_numpy(w))
        module.bias.copy_(torch.from_numpy(b))
        np.testing.assert_allclose(got, module(torch.from_numpy(X)).numpy(), rtol=1e-12, atol=1e-13)


def test_operators_refuse_shapes_and_values_they_cannot_take_in_one_line():
    with pytest.raises(ValueError, match="tau and batch must broadcast"):
        T.deescalate(np.random.rand(2, 3, 4), np.ones(3) * 0.5)  # was torch's RuntimeError
    with pytest.raises(ValueError, match="s and tau must broadcast"):
        T.deescalated_similarity(np.array([0.2, 0.3]), np.array([0.1, 0.2, 0.3]))
    with pytest.raises(ValueError, match="eps must be a finite number"):
        T.layer_norm(np.random.rand(3, 4), eps=float("inf"))  # was accepted: every token came back 0
    X = np.random.default_rng(0).random((3, 4)).astype(np.float32)
    out = T.layer_norm(X, np.ones(4), np.zeros(4))  # numpy's float64 weight beside float32 X: was a RuntimeError
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, T.layer_norm(X), rtol=1e-6)
