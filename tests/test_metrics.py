"""The literature's collapse metrics (theory._metrics): their definitions computed independently, the relations
to t_sim/t_div that the module documents, where they disagree, and the split-form version deep in a chain."""

import math

import numpy as np
import pytest
import torch
from hypothesis import assume, given

import theory as T
import theory._metrics as M

from tests.strategies import token_matrices


def _defs(X: np.ndarray) -> tuple[float, float, float]:
    """stable rank, mean cosine, Dong residual straight from their definitions (loops, numpy's SVD)."""
    n = X.shape[0]
    sv = np.linalg.svd(X, compute_uv=False)
    cos = [X[i] @ X[j] / (np.linalg.norm(X[i]) * np.linalg.norm(X[j])) for i in range(n) for j in range(n) if i != j]
    R = X - X.mean(0)

    def comp(A):
        return math.sqrt(max(np.abs(A[:, j]).sum() for j in range(A.shape[1]))
                         * max(np.abs(A[i]).sum() for i in range(A.shape[0])))

    return sv[0] ** -2 * (sv ** 2).sum(), float(np.mean(cos)), comp(R) / comp(X)


@given(token_matrices(mixed=True))
def test_metrics_agree_with_their_definitions(X):
    assume(np.linalg.norm(X, axis=1).min() > 1e-6)  # a zero token has no cosine
    sr, mc, dr = _defs(X)
    np.testing.assert_allclose(T.stable_rank(X), sr, rtol=1e-12)
    np.testing.assert_allclose(T.dong_residual(X), dr, rtol=1e-12)
    np.testing.assert_allclose(T.mean_cosine(X), mc, rtol=1e-9, atol=1e-12)


def test_mean_cosine_is_nan_when_a_token_is_zero():
    assert np.isnan(T.mean_cosine(np.array([[1.0, 2.0], [0.0, 0.0], [3.0, -1.0]])))


@given(token_matrices(mixed=True))
def test_stable_rank_lies_between_one_and_one_over_t_sim(X):
    s = T.token_similarity(X)
    sr = T.stable_rank(X)
    assert 1 - 1e-12 <= sr <= min(X.shape) * (1 + 1e-12)
    assert sr <= (1 / s) * (1 + 1e-12)


@given(token_matrices(mixed=True))
def test_mean_cosine_of_equal_norm_tokens_is_an_affine_function_of_t_sim(X):
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    if norms.min() < 1e-6:
        return
    U = X / norms  # equal norms, as after LayerNorm (up to its centring)
    n, s = U.shape[0], T.token_similarity(U)
    np.testing.assert_allclose(T.mean_cosine(U), (n * s - 1) / (n - 1), rtol=1e-9, atol=1e-12)


@given(token_matrices(mixed=True))
def test_dong_residual_squared_is_within_min_n_d_sqrt_nd_of_t_div(X):
    n, d = X.shape
    c = min(n, d) * math.sqrt(n * d)
    t, dong2 = T.token_diversity(X), T.dong_residual(X) ** 2
    assert t / c * (1 - 1e-12) <= dong2 <= c * t * (1 + 1e-12)


def test_the_metrics_disagree_on_a_rank_one_matrix_that_is_not_collapsed_to_its_mean():
    u = np.array([1.0, -2.0, 0.5, 3.0])
    X = np.outer(u, [1.0, 2.0, -1.0])  # rank one, tokens along one direction but not equal
    assert T.stable_rank(X) == pytest.approx(1.0, abs=1e-12)  # "rank collapse"
    assert T.token_diversity(X) > 0.5 and T.dong_residual(X) > 0.5  # yet far from token collapse
    assert T.mean_cosine(X) < 0.5  # and the cosines (+1 and -1 pairs) say "not collapsed" too


def test_split_metrics_equal_the_plain_ones_and_keep_dongs_digits_when_tokens_nearly_coincide():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((3, 6, 5))
    S = T.split_tokens(torch.from_numpy(X))
    got = T.split_collapse_metrics(S)
    for name, f in (("stable_rank", T.stable_rank), ("mean_cosine", T.mean_cosine), ("dong_residual", T.dong_residual)):
        np.testing.assert_allclose(got[name].numpy(), f(X), rtol=1e-12)
    # tokens equal up to 1e-200: the whole matrix cannot hold the difference, the split form can
    m, E = rng.standard_normal((1, 5)), rng.standard_normal((6, 5))
    E -= E.mean(0)
    tiny = T.SplitTokens(torch.from_numpy(m)[None], torch.from_numpy(E / np.abs(E).max())[None],
                         torch.tensor([0.0], dtype=torch.float64), torch.tensor([-664.0], dtype=torch.float64))
    dong = float(T.split_collapse_metrics(tiny)["dong_residual"][0])
    Xm = np.repeat(m, 6, axis=0)
    comp = lambda A: math.sqrt(np.abs(A).sum(0).max() * np.abs(A).sum(1).max())  # noqa: E731
    expected = comp(E / np.abs(E).max()) / comp(Xm) * 2.0 ** -664
    assert dong == pytest.approx(expected, rel=1e-12) and dong < 1e-190


@pytest.mark.parametrize("f", [T.stable_rank, T.mean_cosine, T.dong_residual])
def test_metrics_reject_bad_input(f):
    with pytest.raises(ValueError):
        f(np.zeros((4, 3)))
    with pytest.raises(ValueError):
        f(np.array([[1.0, np.nan], [0.0, 1.0]]))
    with pytest.raises(ValueError):
        f(np.ones(3))


def test_metrics_keep_torch_in_torch_out():
    X = torch.randn(2, 5, 4, dtype=torch.float32)
    for f in (T.stable_rank, T.mean_cosine, T.dong_residual):
        y = f(X)
        assert isinstance(y, torch.Tensor) and y.dtype == torch.float32 and y.shape == (2,)


def test_dong_residual_centres_exactly_like_the_split_chain():
    # tokens one ulp apart: centring with the rounded mean gave 1.92e-16 where the exact value is 1.18e-16
    u = 2.0 ** -52
    X = np.array([[1.0], [1 + u], [1 + u], [1 + u]])
    E = np.array([-3 * u / 4, u / 4, u / 4, u / 4])  # the exact centred part (mean 1 + 3u/4)
    exact = np.sqrt(np.abs(E).sum() * np.abs(E).max()) / np.sqrt(np.abs(X).sum() * np.abs(X).max())
    assert T.dong_residual(X) == pytest.approx(exact, rel=1e-14, abs=0)
    split = T.split_collapse_metrics(T.split_tokens(torch.from_numpy(X)))["dong_residual"]
    assert float(split) == pytest.approx(exact, rel=1e-14, abs=0)


def test_mean_cosine_of_a_token_far_smaller_than_the_others_is_its_cosine_not_nan():
    assert T.mean_cosine(np.array([[1.0, 1.0], [1e-170, 1e-170]])) == pytest.approx(1.0, rel=1e-15, abs=0)
    assert T.mean_cosine(np.array([[1.0, 0.0], [0.0, 1e-170], [2.0, 0.0]])) == pytest.approx(1 / 3, rel=1e-15, abs=0)
    assert np.isnan(T.mean_cosine(np.array([[1.0, 1.0], [0.0, 0.0]])))  # a zero token has no cosine


def test_step_metrics_returns_the_literature_metrics_of_its_output():
    # the API contract: step_metrics returns, beside [YZ]'s quantities, every metric of fig3's CSV
    g = T.make_generator(3)
    X = T.random_tokens((4,), 6, 5, generator=g)
    P = T.softmax_attention((4,), 6, beta=2.0, generator=g)
    Y = P @ X
    m = T.step_metrics(X, Y, P)
    for name, f in (("stable_rank", T.stable_rank), ("mean_cosine", T.mean_cosine), ("dong_residual", T.dong_residual)):
        torch.testing.assert_close(m[name], f(Y), rtol=0, atol=0)
    assert set(T.COLLAPSE_METRICS) <= set(m)


@pytest.mark.parametrize("scale", [2.0 ** 665, 2.0 ** -665])
def test_metrics_are_scale_free_down_to_the_float_range(scale):
    # every metric is scaled by a power of two first: without it ||X||^2 overflows at 2^665 (stable rank NaN)
    # and underflows at 2^-665; an exact power of two changes no digit
    X = np.array([[1.0, 2.0, -1.0], [0.5, -1.0, 3.0], [2.0, 0.25, 1.0], [-1.0, 1.0, 0.5]])
    for f in (T.stable_rank, T.mean_cosine, T.dong_residual):
        assert f(X * scale) == f(X)


def test_split_mean_cosine_of_a_token_far_smaller_than_the_others_is_its_cosine_with_n_at_most_d():
    # n <= d: the split form's cosines come from the token Gram it shares with the stable rank; a token 1e-170
    # times the others has a squared norm below the float range there, and its cosines went to NaN unless the
    # Gram is rebuilt with each token scaled by its own power of two
    # (the tiny token must survive the split: X = 1 m^T + E holds it where it is not far below the mean token)
    X = np.array([[1.0, 0.0, 0.0, 0.0], [-1.0, 0.0, 0.0, 0.0], [0.0, 1e-170, 0.0, 0.0]])
    got = T.split_collapse_metrics(T.split_tokens(X))["mean_cosine"]
    assert float(got) == pytest.approx(-1 / 3, rel=1e-14)  # cos(x1, x2) = -1, the tiny token orthogonal to both


def test_a_matrix_gets_the_same_metrics_alone_and_beside_one_with_a_tiny_token():
    # the mean cosine chose the per-token rescaled Gram for the whole batch when one matrix had a token 1e-170
    # times its largest: the others' cosines then moved by an ulp (a review); now the choice is per matrix
    rng = np.random.default_rng(2)
    A = rng.standard_normal((1, 5, 7))
    B = rng.standard_normal((1, 5, 7))
    B[0, 2] *= 1e-170
    both = np.concatenate([A, B])
    for f in (lambda X: T.split_collapse_metrics(T.split_tokens(X)), M.collapse_metrics):
        alone, batch = f(torch.from_numpy(A)), f(torch.from_numpy(both))
        for name in T.COLLAPSE_METRICS:
            assert torch.equal(batch[name][:1], alone[name]), name


def test_near_collapse_a_matrix_gets_the_same_excesses_alone_and_in_a_batch():
    # the parts' products went through torch's batched matvec, which at n = 31, d = 64 rounded a matrix's product
    # differently alone and in a batch: 1 and 2 of 32 excesses differed (a review)
    X = np.random.default_rng(0).standard_normal((32, 31, 64))
    X = X.mean(1, keepdims=True) + 1e-3 * (X - X.mean(1, keepdims=True)) + 1.0  # t_div ~ 1e-6
    S = T.split_tokens(torch.from_numpy(X))
    batch = T.split_collapse_metrics(S)
    for i in range(32):
        alone = T.split_collapse_metrics(T.SplitTokens(S.mean[i:i + 1], S.centred[i:i + 1], S.mean_exp[i:i + 1],
                                                       S.centred_exp[i:i + 1]))
        for name in T.COLLAPSE_METRICS:
            assert torch.equal(batch[name][i:i + 1], alone[name]), (i, name)


@given(token_matrices(mixed=True))
def test_the_stable_rank_is_never_below_one_nor_the_mean_cosine_above_one(X):
    # rank-one X: trace / lambda_max came out a rounding below 1 in 145 of 400 trials (a review); the stable rank
    # is then 1 + its excess exactly, as near collapse
    Xr = np.outer(X[:, 0], X[0]) if np.abs(X[0]).max() > 0 else X
    for Y in (X, Xr):
        got = M.collapse_metrics(torch.from_numpy(Y))
        sr, mc = float(got["stable_rank"]), float(got["mean_cosine"])
        assert not sr < 1 and not mc > 1
        assert sr == 1 + float(got["stable_rank_minus_1"]) or math.isnan(sr)


def _split(m: np.ndarray, E: np.ndarray, k: int) -> T.SplitTokens:
    """X = 1 m^T + 2^k E in split form, one matrix (m (1, d), E (n, d) centred, both of order 1)."""
    f = lambda a: torch.from_numpy(a)[None]  # noqa: E731
    return T.SplitTokens(f(m), f(E), torch.tensor([0.0], dtype=torch.float64),
                         torch.tensor([float(k)], dtype=torch.float64))


def _parts(seed: int, n: int, d: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    m, E = rng.standard_normal((1, d)), rng.standard_normal((n, d))
    E -= E.mean(0)
    return m / np.abs(m).max(), E / np.abs(E).max()


def _exact_excesses(m: np.ndarray, E: np.ndarray, k: int, dps: int) -> tuple[float, float]:
    """(ln(stable rank - 1), ln(1 - mean cosine)) of the X that (m, E, k) represents, in dps-digit arithmetic from
    the definitions: the largest eigenvalue of X^T X (mpmath's symmetric solver) and the cosines of token pairs."""
    import mpmath

    with mpmath.workdps(dps):
        n, d = E.shape
        X = mpmath.matrix([[mpmath.mpf(m[0, j]) + mpmath.ldexp(mpmath.mpf(E[i, j]), k) for j in range(d)]
                           for i in range(n)])
        G = X.T * X
        top = max(mpmath.eigsy(G, eigvals_only=True))
        fro = sum(X[i, j] ** 2 for i in range(n) for j in range(d))
        norms = [mpmath.sqrt(sum(X[i, j] ** 2 for j in range(d))) for i in range(n)]
        cos = [sum(X[i, j] * X[l, j] for j in range(d)) / (norms[i] * norms[l])
               for i in range(n) for l in range(n) if i != l]
        return float(mpmath.log(fro / top - 1)), float(mpmath.log(1 - mpmath.fsum(cos) / len(cos)))


@pytest.mark.parametrize("k", [-8, -30, -100, -160])
@pytest.mark.parametrize("n, d, seed", [(4, 3, 0), (5, 7, 1), (8, 8, 2)])
def test_excesses_keep_their_digits_near_collapse_against_high_precision(k, n, d, seed):
    # stable rank - 1 and 1 - mean cosine are O(t_div) = O(2^(2k)): from the whole matrix (stable_rank - 1) they
    # are rounding from 2^-27 on (0 or a few eps, even negative); from the split parts they keep their digits
    m, E = _parts(seed, n, d)
    S = _split(m, E, k)
    got = T.split_collapse_metrics(S)
    want_sr, want_cd = _exact_excesses(m, E, k, dps=40 + int(-k * 0.61))
    # a log's absolute error is the value's relative error
    assert float(got["log_stable_rank_minus_1"]) == pytest.approx(want_sr, abs=1e-13, rel=0)
    assert float(got["log_one_minus_mean_cosine"]) == pytest.approx(want_cd, abs=1e-13, rel=0)
    for name in ("stable_rank_minus_1", "one_minus_mean_cosine"):  # the values themselves where float64 holds them
        assert float(got[name]) == pytest.approx(math.exp(float(got["log_" + name])), rel=1e-12)
    if k <= -30:  # what the whole matrix gives instead: no digit of the excess
        assert abs(float(got["stable_rank"]) - 1) < 1e-14 and float(got["stable_rank_minus_1"]) < 1e-17


@pytest.mark.parametrize("t", [0.0099, 0.005])
@pytest.mark.parametrize("n, d, seed", [(4, 3, 0), (5, 2, 1), (8, 8, 2), (32, 64, 3)])
def test_excesses_keep_their_digits_just_below_the_switch(t, n, d, seed):
    # t_div just below 1e-2, where the stable rank's series converges slowest: with 4 terms or 3 fixed-point steps
    # it was off by 1e-8 to 1e-7 relative here (a review); 8 and 8 reach rounding
    m, E = _parts(seed, n, d)
    f = math.sqrt(t / (1 - t) * n * float((m ** 2).sum()) / float((E ** 2).sum()))  # t_div(1 m^T + f E) = t
    S = T.SplitTokens(torch.from_numpy(m)[None], torch.from_numpy(E * f)[None],
                      torch.tensor([0.0], dtype=torch.float64), torch.tensor([0.0], dtype=torch.float64))
    assert float(S.shares()[1]) == pytest.approx(t, rel=1e-12)
    got = T.split_collapse_metrics(S)
    want_sr, want_cd = _exact_excesses(m, E * f, 0, dps=50)
    assert float(got["log_stable_rank_minus_1"]) == pytest.approx(want_sr, abs=1e-13, rel=0)
    assert float(got["log_one_minus_mean_cosine"]) == pytest.approx(want_cd, abs=1e-13, rel=0)


def _exact_one_minus_mean_cosine(X: np.ndarray, dps: int = 50) -> float:
    """1 - mean cosine of the rows of X in dps-digit arithmetic: sum_i ||u_i - mean u||^2 / (n - 1), u_i the unit
    tokens (an identity; O(n d) where the pairs' cosines are O(n^2 d))."""
    import mpmath

    with mpmath.workdps(dps):
        n, d = X.shape
        rows = [[mpmath.mpf(float(v)) for v in row] for row in X]
        units = [[v / mpmath.sqrt(mpmath.fsum(c * c for c in row)) for v in row] for row in rows]
        mean = [mpmath.fsum(u[j] for u in units) / n for j in range(d)]
        return float(mpmath.fsum(mpmath.fsum((u[j] - mean[j]) ** 2 for j in range(d)) for u in units) / (n - 1))


def _one_short_token(s: float, at: int, n: int = 150, d: int = 6) -> np.ndarray:
    """n tokens 1e-3 apart around one mean token, and token ``at`` s times its length in another direction: t_div
    about 1/n, below the switch, so the excesses come from the parts."""
    rng = np.random.default_rng(4)
    m, v = rng.standard_normal(d), rng.standard_normal(d)
    X = m + 1e-3 * rng.standard_normal((n, d))
    X[at] = s * v
    return X


@pytest.mark.parametrize("at", [0, 77])
@pytest.mark.parametrize("s", [1e-4, 1e-8, 1e-12])
def test_a_token_far_shorter_than_the_mean_token_keeps_the_cosine_excess_exact(s, at):
    # the parts built such a token's norm as ||m||^2 + 2^k (2 m.E_i + 2^k |E_i|^2), cancelling to eps ||m||^2
    # absolute, and its unit vector from parts of size ||m|| / ||x_i||: 1 - mean cosine 4e-9, 8e-5 and 5e-3
    # relative off at s = 1e-4, 1e-6 and 1e-8, NaN at 1e-10 (a review; token 0 was also every delta's reference).
    # Short tokens are now taken from X itself (collapse_metrics), or from the split form as an exact two-term sum
    X = _one_short_token(s, at)
    S = T.split_tokens(torch.from_numpy(X)[None])
    assert float(S.shares()[1]) < M.PARTS_T_DIV
    got = float(M.collapse_metrics(torch.from_numpy(X)[None])["one_minus_mean_cosine"][0])
    assert got == pytest.approx(_exact_one_minus_mean_cosine(X), rel=1e-13, abs=0)
    # the split form holds the short token only to eps ||m|| absolute (its centred part is x_i - m rounded): the
    # chain's metrics are exact for the X it represents
    k = int((S.centred_exp - S.mean_exp)[0])
    represented = S.mean[0].numpy() + np.ldexp(S.centred[0].numpy(), k)  # each entry to eps of itself
    got_split = float(T.split_collapse_metrics(S)["one_minus_mean_cosine"][0])
    assert got_split == pytest.approx(_exact_one_minus_mean_cosine(represented), rel=1e-13, abs=0)


def test_a_matrix_gets_the_same_excesses_alone_and_beside_one_with_a_short_token():
    # a batch with a short token runs the two-sum path for all its matrices and keeps it for the short tokens only
    plain, short = _one_short_token(1.0, 0), _one_short_token(1e-8, 0)
    plain[0] = plain[1]  # a token like the others
    both = np.stack([plain, short])
    for f in (lambda X: T.split_collapse_metrics(T.split_tokens(X)), M.collapse_metrics):
        alone, batch = f(torch.from_numpy(plain[None])), f(torch.from_numpy(both))
        for name in T.COLLAPSE_METRICS:
            assert torch.equal(batch[name][:1], alone[name]), name


def test_a_zero_token_has_no_cosine_where_the_excess_comes_from_the_parts_too():
    # n = 200, d = 3: the parts' norm of the zero token came out a rounding above 0, and the mean cosine finite
    # (0.99254; a review), where the whole matrix's is NaN
    rng = np.random.default_rng(3)
    for n, d in [(120, 8), (200, 8), (200, 3)]:  # the review's draws; the last is the case
        X = np.repeat(rng.standard_normal((1, d)), n, 0)
        X[0] = 0.0
        X[1:] += 1e-3 * rng.standard_normal((n - 1, d))
    assert float(T.split_tokens(torch.from_numpy(X)[None]).shares()[1]) < M.PARTS_T_DIV
    for got in (M.collapse_metrics(torch.from_numpy(X)[None]), T.split_collapse_metrics(T.split_tokens(X[None]))):
        assert math.isnan(float(got["mean_cosine"][0])) and math.isnan(float(got["one_minus_mean_cosine"][0]))


@pytest.mark.parametrize("n, d, seed", [(4, 3, 3), (6, 10, 4)])
def test_excesses_from_the_parts_and_from_the_whole_matrix_agree_where_both_hold(n, d, seed):
    # below the switch (t_div = 1e-2), where the whole matrix still resolves the excesses, both ways agree: the
    # parts' series (8 terms) and the whole matrix's ratio
    from theory._metrics import _split_excesses

    m, E = _parts(seed, n, d)
    for k in (-3, -5, -7, -9):
        S = _split(m, E, k)
        X = S.tokens()  # whole, as the public metrics take it (k >= -9: it loses no digit that matters here)
        kk = torch.tensor([float(k)], dtype=torch.float64)
        sr, cd = _split_excesses(S.mean, S.centred, kk)
        np.testing.assert_allclose(sr * 2.0 ** (2 * k), T.stable_rank(X) - 1, rtol=1e-9)
        np.testing.assert_allclose(cd * 2.0 ** (2 * k), 1 - T.mean_cosine(X), rtol=1e-9)


def test_near_collapse_the_metrics_are_one_plus_or_minus_their_excesses_and_need_no_whole_matrix(monkeypatch):
    # a batch with trials on both sides of the switch (t_div 1e-2): each trial's metrics are those it has alone,
    # 1 +- the excess where that comes from the parts; and where every trial is below the switch the CPU computes
    # neither the Gram matrix nor its eigensolve
    import theory._metrics as M

    m, E = _parts(7, 6, 5)
    ks = [-2, -4, -9, -40]  # t_div 0.044, 0.0029, 1e-5, 1e-24: above the switch, below it, far below (twice)
    batch = T.SplitTokens(*(torch.cat(parts) for parts in zip(*((S.mean, S.centred, S.mean_exp, S.centred_exp)
                                                                 for S in (_split(m, E, k) for k in ks)))))
    got = T.split_collapse_metrics(batch)
    t = batch.shares()[1]
    assert float(t[0]) > M.PARTS_T_DIV > float(t[1]) > 1e-3
    for i, k in enumerate(ks):
        alone = T.split_collapse_metrics(_split(m, E, k))
        for name in T.COLLAPSE_METRICS:
            assert torch.equal(got[name][i:i + 1], alone[name]), (k, name)
    for i in (1, 2, 3):
        assert float(got["stable_rank"][i]) == 1 + float(got["stable_rank_minus_1"][i])
        assert float(got["mean_cosine"][i]) == 1 - float(got["one_minus_mean_cosine"][i])
    X = batch.tokens()  # the trials the whole matrix still resolves, against the whole-matrix definitions
    np.testing.assert_allclose(got["stable_rank"][:2], T.stable_rank(X[:2]), rtol=1e-13)
    np.testing.assert_allclose(got["mean_cosine"][:2], T.mean_cosine(X[:2]), rtol=1e-13)
    np.testing.assert_allclose(got["stable_rank_minus_1"][:2], T.stable_rank(X[:2]) - 1, rtol=1e-10)

    def refuse(*args, **kwargs):
        raise AssertionError("the whole matrix's eigensolve ran where every trial is near collapse")

    monkeypatch.setattr(M, "symmetric_max_eigenvalue", refuse)
    monkeypatch.setattr(M, "_gram", refuse)
    near = T.SplitTokens(batch.mean[1:], batch.centred[1:], batch.mean_exp[1:], batch.centred_exp[1:])
    again = T.split_collapse_metrics(near)
    for name in T.COLLAPSE_METRICS:
        assert torch.equal(again[name], got[name][1:]), name


@pytest.mark.parametrize("k", [-200, -600, -1500])
def test_excesses_scale_exactly_with_the_centred_part_past_the_float_range(k):
    # t_div = 2^(2k) beyond float64 (data attention's chains reach ln t_div = -1e4): the logs stay finite, follow
    # the centred part's exponent (2 ln 2 per unit of k; the first-order terms are exact there) and keep
    # stable rank - 1 <= t_div / t_sim (the module's bound)
    m, E = _parts(5, 6, 4)
    ref = T.split_collapse_metrics(_split(m, E, -100))
    got = T.split_collapse_metrics(_split(m, E, k))
    for name in ("log_stable_rank_minus_1", "log_one_minus_mean_cosine"):
        assert math.isfinite(float(got[name]))
        assert float(got[name]) - float(ref[name]) == pytest.approx(2 * (k + 100) * math.log(2), rel=1e-14)
    S = _split(m, E, k)
    log_t = float(S.log_diversity())
    assert float(got["log_stable_rank_minus_1"]) <= log_t + 1e-12 * abs(log_t)  # t_sim = 1 to rounding here


def test_excesses_of_exactly_collapsed_and_of_rank_one_tokens():
    m, E = _parts(6, 5, 3)
    zero = T.split_collapse_metrics(_split(m, np.zeros_like(E), 7))  # E = 0: its exponent means nothing
    for name in ("stable_rank_minus_1", "one_minus_mean_cosine"):
        assert float(zero[name]) == 0 and float(zero["log_" + name]) == -math.inf
    # tokens c_i m, all parallel but of different norms: rank one and every cosine 1, at any t_div
    c = np.array([1.0, 2.0, 3.0, -0.5, 0.5])[:, None]
    X = T.split_tokens(torch.from_numpy(c * m))
    got = T.split_collapse_metrics(X)
    assert float(got["stable_rank_minus_1"]) < 1e-15
    assert float(got["mean_cosine"]) < 1  # the negative token: cosines -1 with it
    near = T.split_collapse_metrics(_split(m, (c - c.mean()) * m / 3, -300))  # parallel, t_div ~ 2^-600
    assert float(near["log_stable_rank_minus_1"]) < -600 * math.log(2) - 25  # 0 to rounding relative to t_div
    assert float(near["log_one_minus_mean_cosine"]) < -600 * math.log(2) - 25
