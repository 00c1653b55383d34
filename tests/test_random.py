"""The random families: shapes, the properties each promises, and seeded reproducibility."""

import numpy as np
import pytest
import torch

import theory as T

SAMPLERS = {
    "tokens": lambda g: T.random_tokens((3, 2), 5, 4, generator=g),
    "gaussian": lambda g: T.random_gaussian((3, 2), 4, 6, std=0.5, generator=g),
    "softmax": lambda g: T.softmax_attention((3, 2), 5, beta=4.0, generator=g),
    "row_stochastic": lambda g: T.random_row_stochastic((3, 2), 5, zero_prob=0.5, generator=g),
    "symmetric_ds": lambda g: T.random_symmetric_doubly_stochastic((3, 2), 5, generator=g),
    "orthogonal": lambda g: T.random_orthogonal((3, 2), 4, generator=g),
}


@pytest.mark.parametrize("name", SAMPLERS)
def test_samplers_are_reproducible_from_the_seed(name):
    a = SAMPLERS[name](T.make_generator(7))
    b = SAMPLERS[name](T.make_generator(7))
    c = SAMPLERS[name](T.make_generator(8))
    assert a.shape[:2] == (3, 2) and a.dtype == torch.float64
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("name", ["softmax", "row_stochastic", "symmetric_ds"])
def test_attention_samplers_are_row_stochastic(name):
    P = SAMPLERS[name](T.make_generator(1))
    assert bool(T.is_row_stochastic(P).all())


def test_softmax_attention_is_positive_and_not_symmetric():
    P = T.softmax_attention((50,), 6, beta=4.0, generator=T.make_generator(2))
    assert bool((P > 0).all())
    assert not torch.allclose(P, P.mT)


def test_sparse_row_stochastic_has_zeros_and_reducible_members():
    P = T.random_row_stochastic((200,), 4, zero_prob=0.7, generator=T.make_generator(3))
    assert bool((P == 0).any())
    assert float(T.slem(P).max()) == pytest.approx(1, abs=1e-9)


def test_symmetric_doubly_stochastic_is_symmetric_with_unit_column_sums():
    P = SAMPLERS["symmetric_ds"](T.make_generator(4))
    assert torch.equal(P, P.mT)
    torch.testing.assert_close(P.sum(-2), torch.ones_like(P.sum(-2)), atol=1e-14, rtol=0)


def test_orthogonal_matrices_are_orthogonal_and_haar_signed():
    U = SAMPLERS["orthogonal"](T.make_generator(5))
    eye = torch.eye(4, dtype=U.dtype).expand_as(U)
    torch.testing.assert_close(U.mT @ U, eye, atol=1e-13, rtol=0)
    # Haar: det is +1 or -1 with roughly equal frequency
    dets = torch.linalg.det(T.random_orthogonal((400,), 3, generator=T.make_generator(6)))
    assert 0.35 < float((dets > 0).double().mean()) < 0.65


def _qr_defects(Q: torch.Tensor, A: torch.Tensor) -> tuple[float, float, float]:
    """What makes Q the Q of A = QR with diag(R) >= 0, whatever computed it: max|Q^T Q - I|, and of R = Q^T A
    the largest entry below the diagonal and the most negative diagonal entry, both relative to ||A||_2."""
    d = A.shape[-1]
    R = Q.mT @ A
    scale = torch.linalg.matrix_norm(A, 2)[..., None, None].clamp_min(torch.finfo(A.dtype).tiny)
    orth = float((Q.mT @ Q - torch.eye(d, dtype=A.dtype)).abs().max())
    lower = float((torch.tril(R, -1) / scale).abs().max()) if d > 1 else 0.0
    negative = float((-torch.diagonal(R / scale, dim1=-2, dim2=-1)).clamp_min(0).max())
    return orth, lower, negative


@pytest.mark.parametrize("d", [1, 3, 64])
def test_cholesky_qr_gives_householders_q(d):
    # CUDA's weights come from Cholesky QR: the same Q as the CPU's Householder QR, to rounding
    from theory._random import _cholesky_qr_q, _householder_q

    A = torch.randn(200, d, d, generator=torch.Generator().manual_seed(d), dtype=torch.float64)
    Q = _cholesky_qr_q(A.clone())
    eps = torch.finfo(A.dtype).eps
    orth, lower, negative = _qr_defects(Q, A)
    assert orth <= 8 * d * eps and lower <= 8 * d * eps and negative == 0
    torch.testing.assert_close(Q, _householder_q(A), atol=1e-12, rtol=0)


def test_cholesky_qr_checks_each_q_and_falls_back_to_householder():
    # the zero matrix fails Cholesky at the first pivot; rank-deficient and cond 1e12 matrices fail or are caught
    # by the orthogonality check; every Q must still be a QR factor of its A
    from theory._random import _cholesky_qr_q, _householder_q

    g = torch.Generator().manual_seed(3)
    A = torch.randn(6, 8, 8, generator=g, dtype=torch.float64)
    A[1] = 0
    A[2, :, 3] = A[2, :, 0]  # two equal columns
    U, V = (torch.linalg.qr(torch.randn(2, 8, 8, generator=g, dtype=torch.float64)).Q).unbind()
    A[3] = U @ torch.diag(torch.logspace(0, -12, 8, dtype=torch.float64)) @ V.mT  # cond 1e12
    A[4] = 1e-200 * A[5]  # scale alone must not matter
    Q = _cholesky_qr_q(A.clone())
    assert torch.equal(Q[1], _householder_q(A[1]))
    orth, lower, negative = _qr_defects(Q, A)
    eps = torch.finfo(A.dtype).eps
    assert orth <= 64 * eps and lower <= 64 * eps and negative <= 64 * eps
    torch.testing.assert_close(Q[[0, 4, 5]], _householder_q(A[[0, 4, 5]]), atol=1e-12, rtol=0)


def test_random_orthogonal_on_the_cpu_is_householders_q_of_the_draws():
    # the CPU keeps LAPACK's Householder QR: its stored results do not move
    from theory._random import _householder_q

    U = T.random_orthogonal((5,), 6, generator=T.make_generator(11))
    A = torch.randn(5, 6, 6, generator=T.make_generator(11), dtype=torch.float64)
    assert torch.equal(U, _householder_q(A))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_random_orthogonal_on_cuda_is_the_cpus_q_of_the_same_draws():
    from theory._random import _householder_q

    U = T.random_orthogonal((4000,), 64, generator=T.make_generator(12, "cuda"))
    A = torch.randn(4000, 64, 64, generator=T.make_generator(12, "cuda"), dtype=torch.float64, device="cuda")
    assert U.device.type == "cuda"
    orth, lower, negative = _qr_defects(U.cpu(), A.cpu())
    eps = torch.finfo(A.dtype).eps
    assert orth <= 8 * 64 * eps and lower <= 8 * 64 * eps and negative == 0
    torch.testing.assert_close(U.cpu(), _householder_q(A.cpu()), atol=1e-12, rtol=0)


def test_gaussian_weights_have_the_requested_variance():
    W = T.random_gaussian((200,), 16, 16, std=0.25, generator=T.make_generator(9))
    assert float(W.var()) == pytest.approx(0.0625, rel=0.05)


def test_softmax_is_stable_at_beta_1000_and_float32():
    P = T.softmax_attention((10,), 8, beta=1000.0, generator=T.make_generator(0), dtype=torch.float32)
    assert bool(torch.isfinite(P).all()) and bool(T.is_row_stochastic(P).all())
    delta = T.slem(P)  # near-permutation rows: still finite and in [0, 1]
    assert bool(((delta >= 0) & (delta <= 1 + 1e-5)).all())


def test_data_attention_depends_on_X_and_is_row_stochastic():
    g = T.make_generator(10)
    X = T.random_tokens((4,), 6, 8, generator=g)
    P = T.data_attention(X, generator=g)
    assert P.shape == (4, 6, 6) and bool(T.is_row_stochastic(P).all())


def test_dtype_and_device_keywords_are_honoured():
    g = T.make_generator(0)
    X = T.random_tokens((2,), 3, 2, generator=g, dtype=torch.float32, device="cpu")
    assert X.dtype == torch.float32 and X.device.type == "cpu"


def test_complement_basis_is_orthonormal_and_orthogonal_to_ones():
    for n in (2, 3, 7):
        Q = T.complement_basis(n).numpy()
        np.testing.assert_allclose(Q.T @ Q, np.eye(n - 1), atol=1e-14)
        np.testing.assert_allclose(np.ones(n) @ Q, 0, atol=1e-14)
        V = T.leading_basis(n).numpy()
        np.testing.assert_allclose(V.T @ V, np.eye(n), atol=1e-14)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_functions_keep_cuda_tensors_on_the_gpu():
    g = T.make_generator(0, device="cuda")
    P = T.softmax_attention((4,), 8, generator=g, device="cuda")
    X = T.random_tokens((4,), 8, 3, generator=g, device="cuda")
    for out in (T.slem(P), T.token_similarity(X), T.escalation_bound_slack(X, P @ X, P)):
        assert out.device.type == "cuda"
    torch.testing.assert_close(T.slem(P).cpu(), T.slem(P.cpu()))
