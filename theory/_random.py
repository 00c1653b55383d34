r"""Random families the sandbox draws from, all seeded through one ``torch.Generator``.

Every sampler takes ``batch`` (a tuple of leading dims), the sizes, a ``generator`` and ``dtype``/``device``
keywords, and returns torch tensors shaped ``(*batch, ...)``. Draws happen in the generator's device.

- ``random_tokens``: $X$ iid $N(0, 1)$, ``(*batch, n, d)``;
- ``softmax_attention``: $P = \mathrm{softmax}(\beta Z)$, $Z$ iid $N(0,1)$ (positive, row-stochastic; C3, C8);
- ``attention_from_scores`` / ``data_attention``: $P = \mathrm{softmax}(X W_Q (X W_K)^T/\sqrt{d})$;
- ``random_row_stochastic``: Dirichlet(1) rows (uniform on the simplex), optionally sparse (reducible P);
- ``random_symmetric_doubly_stochastic``: Birkhoff mixture $\sum_j w_j (S_j + S_j^T)/2$ of permutations;
- ``causal_attention``: softmax of $\beta Z$ with a causal mask (token $i$ attends to $j \le i$): lower triangular;
- ``dirichlet_attention``: rows iid Dirichlet($\alpha$), any $\alpha > 0$ (sampled in log space);
- ``sinkhorn_attention``: $\mathrm{softmax}(\beta Z)$ Sinkhorn-scaled to doubly stochastic (not symmetric);
- ``banded_attention``: softmax of $\beta Z$ inside a local window $|i - j| \le w$;
- ``random_orthogonal``: Haar-distributed $U$ (Q of a Gaussian's QR with $\mathrm{diag}(R) > 0$);
- ``random_gaussian``: $W$ iid $N(0, \sigma_w^2)$.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor

from ._backend import array_function
from ._validate import check_finite, check_tokens

__all__ = [
    "make_generator",
    "random_tokens",
    "random_gaussian",
    "softmax_attention",
    "attention_from_scores",
    "data_attention",
    "random_row_stochastic",
    "random_symmetric_doubly_stochastic",
    "random_orthogonal",
    "causal_attention",
    "dirichlet_attention",
    "sinkhorn_attention",
    "banded_attention",
    "sinkhorn_scale",
    "SINKHORN_TOL",
]


def make_generator(seed: int, device: str | torch.device = "cpu") -> torch.Generator:
    """A ``torch.Generator`` on ``device`` seeded with ``seed`` (set once per run)."""
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0; got {seed!r}")
    return torch.Generator(device=device).manual_seed(seed)


def _device(generator: torch.Generator, device: str | torch.device | None) -> torch.device:
    return torch.device(device) if device is not None else generator.device


def _batch(batch: Sequence[int] | int) -> tuple[int, ...]:
    batch = (batch,) if isinstance(batch, int) else tuple(batch)
    if any((not isinstance(b, int)) or isinstance(b, bool) or b < 0 for b in batch):
        raise ValueError(f"batch must be a tuple of integers >= 0; got {batch!r}")
    return batch


def _sizes(**sizes: int) -> None:
    for name, (value, least) in sizes.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < least:
            raise ValueError(f"{name} must be an integer >= {least}; got {value!r}")


def _randn(shape: tuple[int, ...], generator: torch.Generator, dtype: torch.dtype,
           device: torch.device) -> Tensor:
    # Draw on the generator's device, then move: the same seed gives the same numbers wherever they land.
    return torch.randn(shape, generator=generator, dtype=dtype, device=generator.device).to(device)


def _rand(shape: tuple[int, ...], generator: torch.Generator, dtype: torch.dtype,
          device: torch.device) -> Tensor:
    return torch.rand(shape, generator=generator, dtype=dtype, device=generator.device).to(device)


def random_tokens(batch: Sequence[int] | int, n: int, d: int, *, generator: torch.Generator,
                  dtype: torch.dtype = torch.float64, device: str | torch.device | None = None) -> Tensor:
    """Token matrices ``(*batch, n, d)`` with iid N(0, 1) entries."""
    _sizes(n=(n, 2), d=(d, 1))
    return _randn((*_batch(batch), n, d), generator, dtype, _device(generator, device))


def random_gaussian(batch: Sequence[int] | int, rows: int, cols: int, *, std: float = 1.0,
                    generator: torch.Generator, dtype: torch.dtype = torch.float64,
                    device: str | torch.device | None = None) -> Tensor:
    r"""Weights ``(*batch, rows, cols)`` with iid $N(0, \mathrm{std}^2)$ entries."""
    _sizes(rows=(rows, 1), cols=(cols, 1))
    if not (isinstance(std, (int, float)) and not isinstance(std, bool) and math.isfinite(std) and std >= 0):
        raise ValueError(f"std must be a finite number >= 0; got {std!r}")
    Z = _randn((*_batch(batch), rows, cols), generator, dtype, _device(generator, device))
    return Z if std == 1 else std * Z  # 1 * Z is Z: no pass over it


@array_function
def attention_from_scores(scores: Tensor) -> Tensor:
    """Row softmax of ``scores`` ``(..., n, n)``; torch subtracts the row maximum, so beta = 1000 is safe."""
    if scores.ndim < 2 or scores.shape[-1] != scores.shape[-2]:
        raise ValueError(f"scores must be (..., n, n); got shape {tuple(scores.shape)}")
    check_finite("scores", scores)
    return torch.softmax(scores, dim=-1)


def softmax_attention(batch: Sequence[int] | int, n: int, *, beta: float = 4.0, generator: torch.Generator,
                      dtype: torch.dtype = torch.float64, device: str | torch.device | None = None) -> Tensor:
    r"""$P = \mathrm{softmax}(\beta Z)$ row-wise, $Z$ iid $N(0, 1)$: ``(*batch, n, n)``, independent of any X."""
    _sizes(n=(n, 2))
    _beta(beta)
    Z = _randn((*_batch(batch), n, n), generator, dtype, _device(generator, device))
    return attention_from_scores(beta * Z)


@array_function(keep=("width",))
def data_attention(X: Tensor, *, generator: torch.Generator, width: int | None = None) -> Tensor:
    r"""$P(X) = \mathrm{softmax}(X W_Q (X W_K)^T / \sqrt{d})$, $W_Q, W_K$ iid $N(0, 1/d)$ ``(d, width)``.

    ``X``: ``(..., n, d)``; one pair of weights per batch element. ``width`` defaults to ``d``.
    """
    check_tokens("X", X)
    d = X.shape[-1]
    width = d if width is None else width
    WQ = random_gaussian(X.shape[:-2], d, width, std=d ** -0.5, generator=generator, dtype=X.dtype,
                         device=X.device)
    WK = random_gaussian(X.shape[:-2], d, width, std=d ** -0.5, generator=generator, dtype=X.dtype,
                         device=X.device)
    return attention_from_scores((X @ WQ) @ (X @ WK).mT / math.sqrt(d))


def random_row_stochastic(batch: Sequence[int] | int, n: int, *, zero_prob: float = 0.0,
                          generator: torch.Generator, dtype: torch.dtype = torch.float64,
                          device: str | torch.device | None = None) -> Tensor:
    """Rows drawn from Dirichlet(1) (normalised Exp(1) entries); each entry is zeroed with ``zero_prob``,
    the row's largest entry always kept, so sparse and reducible P appear too. ``(*batch, n, n)``."""
    _sizes(n=(n, 2))
    if not (isinstance(zero_prob, (int, float)) and 0 <= zero_prob < 1):
        raise ValueError(f"zero_prob must be in [0, 1); got {zero_prob!r}")
    shape = (*_batch(batch), n, n)
    dev = _device(generator, device)
    E = -torch.log1p(-_rand(shape, generator, dtype, dev))  # Exp(1), (..., n, n)
    if zero_prob > 0:
        keep = _rand(shape, generator, dtype, dev) >= zero_prob
        keep |= E == E.amax(-1, keepdim=True)
        E = E * keep
    return E / E.sum(-1, keepdim=True)


def random_symmetric_doubly_stochastic(batch: Sequence[int] | int, n: int, *, terms: int | None = None,
                                       generator: torch.Generator, dtype: torch.dtype = torch.float64,
                                       device: str | torch.device | None = None) -> Tensor:
    r"""Birkhoff mixture $\sum_j w_j (S_j + S_j^T)/2$, $S_j$ uniform random permutations, $w \sim$ Dirichlet(1).

    Symmetric and doubly stochastic (C4, C5, C6 hypotheses). ``terms`` permutations (default ``n``).
    ``(*batch, n, n)``.
    """
    _sizes(n=(n, 2))
    terms = n if terms is None else terms
    _sizes(terms=(terms, 1))
    batch = _batch(batch)
    dev = _device(generator, device)
    perm = _rand((*batch, terms, n), generator, torch.float64, dev).argsort(-1)  # (..., terms, n)
    w = -torch.log1p(-_rand((*batch, terms), generator, dtype, dev))
    half_w = w / (2 * w.sum(-1, keepdim=True))  # (..., terms)
    M = torch.zeros((*batch, n, n), dtype=dtype, device=dev)
    for j in range(terms):  # M = sum_j w_j S_j / 2 with S_j[i, perm_j(i)] = 1, without n^3 one-hot tensors
        M.scatter_add_(-1, perm[..., j, :, None], half_w[..., j, None, None].expand(*batch, n, 1))
    return M + M.mT  # symmetric exactly


def random_orthogonal(batch: Sequence[int] | int, d: int, *, generator: torch.Generator,
                      dtype: torch.dtype = torch.float64, device: str | torch.device | None = None) -> Tensor:
    """Haar-distributed orthogonal matrices ``(*batch, d, d)``: Q of the QR factorisation of a Gaussian with
    diag(R) > 0. On the CPU by Householder QR (LAPACK); on CUDA by Cholesky QR, see :func:`_cholesky_qr_q`."""
    _sizes(d=(d, 1))
    A = _randn((*_batch(batch), d, d), generator, dtype, _device(generator, device))
    return _cholesky_qr_q(A) if A.device.type == "cuda" else _householder_q(A)


def _householder_q(A: Tensor) -> Tensor:
    """Q of A = QR with diag(R) >= 0, by Householder QR (``torch.linalg.qr``) and a sign fix."""
    Q, R = torch.linalg.qr(A)
    sign = torch.sign(torch.diagonal(R, dim1=-2, dim2=-1))
    sign = torch.where(sign == 0, torch.ones_like(sign), sign)
    return Q * sign[..., None, :]


def _cholesky_qr_q(A: Tensor) -> Tensor:
    r"""Q of square A = QR with diag(R) > 0 by Cholesky QR twice (CholeskyQR2): $R_1 = \mathrm{chol}(A^T A)^T$,
    $Q_1 = A R_1^{-1}$, then the same on $Q_1$. Every step is a batched product, Cholesky or triangular solve.

    Why: torch's CUDA QR forms Q one matrix at a time (cuSOLVER has no batched orgqr; pytorch issue #143281, open,
    reports 0.21 s for 8,192 small matrices on an RTX 3090), and on an H100 ``fig3 --attention symmetric``, the one
    ensemble drawing Haar weights, did not finish 40,000 trials in 60 s where the others took 9-13 s. Cholesky QR
    computes the same Q (diag(R) > 0 makes it unique); one pass loses orthogonality as cond(A)^2 eps, the second
    pass restores it to rounding while cond(A) is below about eps^-1/2. Each Q is checked,
    $\max|Q^T Q - I| \le 8 d \epsilon$; a matrix that fails (or whose Cholesky fails: rank-deficient or too
    ill-conditioned) is recomputed by Householder QR."""
    d = A.shape[-1]
    Q, ok = A, torch.ones(A.shape[:-2], dtype=torch.bool, device=A.device)
    for _ in range(2):
        L, info = torch.linalg.cholesky_ex(Q.mT @ Q)
        ok &= info == 0
        Q = torch.linalg.solve_triangular(L.mT, Q, upper=True, left=False)
    eye = torch.eye(d, dtype=A.dtype, device=A.device)
    ok &= (Q.mT @ Q - eye).abs().amax((-2, -1)) <= 8 * d * torch.finfo(A.dtype).eps  # NaN fails too
    if not bool(ok.all()):
        bad = ~ok
        Q[bad] = _householder_q(A[bad])
    return Q


def _beta(beta: object) -> None:
    if not (isinstance(beta, (int, float)) and not isinstance(beta, bool) and math.isfinite(beta) and beta >= 0):
        raise ValueError(f"beta must be a finite number >= 0; got {beta!r}")


def _alpha(alpha: object) -> None:
    if not (isinstance(alpha, (int, float)) and not isinstance(alpha, bool) and math.isfinite(alpha) and alpha > 0):
        raise ValueError(f"alpha must be a finite number > 0; got {alpha!r}")


def _masked_softmax(batch: Sequence[int] | int, n: int, beta: float, keep: Tensor, generator: torch.Generator,
                    dtype: torch.dtype, device: str | torch.device | None) -> Tensor:
    """Row softmax of beta Z over the entries where ``keep`` (n, n) is True, exactly 0 elsewhere."""
    Z = _randn((*_batch(batch), n, n), generator, dtype, _device(generator, device))
    scores = (beta * Z).masked_fill(~keep.to(Z.device), float("-inf"))
    return torch.softmax(scores, dim=-1)  # masked entries are exactly 0; every row keeps its diagonal


def causal_attention(batch: Sequence[int] | int, n: int, *, beta: float = 4.0, generator: torch.Generator,
                     dtype: torch.dtype = torch.float64, device: str | torch.device | None = None) -> Tensor:
    r"""Causal softmax attention: $P_{ij} \propto e^{\beta Z_{ij}}$ for $j \le i$, $0$ for $j > i$ (decoders).

    Lower triangular and row-stochastic, so its eigenvalues are its diagonal entries:
    $\delta = \max_{i \ge 2} P_{ii}$ exactly, and the first token is a fixed point ($P_{11} = 1$). ``(*batch, n, n)``.
    """
    _sizes(n=(n, 2))
    _beta(beta)
    keep = torch.ones(n, n, dtype=torch.bool).tril()
    return _masked_softmax(batch, n, beta, keep, generator, dtype, device)


def banded_attention(batch: Sequence[int] | int, n: int, *, beta: float = 4.0, window: int = 2,
                     generator: torch.Generator, dtype: torch.dtype = torch.float64,
                     device: str | torch.device | None = None) -> Tensor:
    r"""Local attention: $P_{ij} \propto e^{\beta Z_{ij}}$ for $|i - j| \le w$ (``window``), $0$ outside the band.

    Row-stochastic with bandwidth $w \ge 1$; a slowly mixing chain, $\delta \to 1$ as $n/w$ grows
    (:func:`theory.slem_prediction`). ``(*batch, n, n)``.
    """
    _sizes(n=(n, 2), window=(window, 1))
    _beta(beta)
    i = torch.arange(n)
    keep = (i[:, None] - i[None, :]).abs() <= window
    return _masked_softmax(batch, n, beta, keep, generator, dtype, device)


def dirichlet_attention(batch: Sequence[int] | int, n: int, *, alpha: float = 1.0, generator: torch.Generator,
                        dtype: torch.dtype = torch.float64, device: str | torch.device | None = None) -> Tensor:
    r"""Rows iid Dirichlet($\alpha$): normalised Gamma($\alpha$) entries. ``(*batch, n, n)``.

    Drawn in log space, $\log G_\alpha = \log G_{\alpha+1} + \log(U)/\alpha$ (exact in law), then a row softmax,
    so small $\alpha$ (nearly one-hot rows) neither underflows to 0/0 nor loses the smaller entries' ratios.
    Entry variance: $\kappa^2 = \mathrm{Var}\,G/(\mathbb{E}\,G)^2 = 1/\alpha$ (the circular law's constant).
    """
    _sizes(n=(n, 2))
    _alpha(alpha)
    shape = (*_batch(batch), n, n)
    dev = _device(generator, device)
    conc = torch.full(shape, alpha + 1.0, dtype=torch.float64, device=generator.device)
    log_g = torch.log(torch._standard_gamma(conc, generator=generator))  # G(alpha + 1) >= tiny, never 0 in practice
    u = torch.rand(shape, generator=generator, dtype=torch.float64, device=generator.device)
    log_g = log_g + torch.log(u) / alpha
    return torch.softmax(log_g, dim=-1).to(dtype=dtype, device=dev)


SINKHORN_TOL = 1e-13  # the largest |column sum - 1| a Sinkhorn-scaled P may keep (float64)


@array_function(keep=("tol", "max_iter"))
def sinkhorn_scale(A: Tensor, *, tol: float = SINKHORN_TOL, max_iter: int = 10_000) -> Tensor:
    r"""Scale a positive ``A`` ``(..., n, n)`` to the doubly stochastic $D_1 A D_2$ (Sinkhorn 1964: it exists and
    is unique for positive A).

    In float64: a few Sinkhorn-Knopp sweeps (alternate column and row normalisation), then Newton's method on the
    log-scalings, $J = [[\mathrm{diag}(P\mathbf 1), P], [P^T, \mathrm{diag}(P^T\mathbf 1)]]$ made regular on its null
    vector $(\mathbf 1, -\mathbf 1)$, which converges quadratically where plain sweeps need thousands of iterations
    (beta = 4: up to ~3500 sweeps at n = 32, against under ten Newton steps). A matrix whose Newton step fails
    (singular J: entries at the float floor) goes on with plain sweeps. Every matrix ends with a row
    normalisation, so rows sum to 1 to rounding and columns to within ``tol``; one that has not converged after
    ``max_iter`` iterations raises ``ValueError``.
    """
    if A.ndim < 2 or A.shape[-1] != A.shape[-2]:
        raise ValueError(f"A must be (..., n, n); got shape {tuple(A.shape)}")
    check_finite("A", A)
    if not bool((A > 0).all()):
        raise ValueError("A must be positive for Sinkhorn scaling")
    shape, n = A.shape, A.shape[-1]
    P = A.to(torch.float64).reshape(-1, n, n)
    P = P / P.sum(-1, keepdim=True)
    for _ in range(min(20, max_iter)):  # plain sweeps: a start inside Newton's basin
        P = P / P.sum(-2, keepdim=True)
        P = P / P.sum(-1, keepdim=True)
    e = torch.cat([torch.ones(n), -torch.ones(n)]).to(P)
    gauge = torch.outer(e, e) / (2 * n)  # J + gauge is regular; the residual is orthogonal to e (equal masses)
    active = torch.arange(P.shape[0], device=P.device)
    newton = torch.ones(P.shape[0], dtype=torch.bool, device=P.device)  # Newton still trusted for this matrix
    for _ in range(max_iter):
        Q = P[active]
        r, c = Q.sum(-1), Q.sum(-2)
        done = (c - 1).abs().amax(-1) <= tol
        if bool(done.all()):
            return P.reshape(shape).to(A.dtype)
        active, Q, r, c = active[~done], Q[~done], r[~done], c[~done]
        use = newton[active]
        if bool(use.any()):
            Qn = Q[use]
            J = torch.zeros(Qn.shape[0], 2 * n, 2 * n, dtype=Q.dtype, device=Q.device)
            J[:, :n, :n] = torch.diag_embed(r[use])
            J[:, n:, n:] = torch.diag_embed(c[use])
            J[:, :n, n:] = Qn
            J[:, n:, :n] = Qn.mT
            x, info = torch.linalg.solve_ex(J + gauge, -torch.cat([r[use] - 1, c[use] - 1], -1))
            step = Qn * torch.exp(x[:, :n])[:, :, None] * torch.exp(x[:, n:])[:, None, :]
            step = step / step.sum(-1, keepdim=True)
            ok = (info == 0) & torch.isfinite(step).flatten(-2).all(-1) & (step > 0).flatten(-2).all(-1)
            # a step that does not shrink the column residual (outside Newton's basin) hands the matrix to sweeps
            ok &= (step.sum(-2) - 1).abs().amax(-1) < (c[use] - 1).abs().amax(-1)
            Qn = torch.where(ok[:, None, None], step, Qn)
            newton[active[use]] = ok
            Q[use] = Qn
        sweep = ~newton[active]  # plain Sinkhorn-Knopp sweeps where Newton failed
        if bool(sweep.any()):
            Qs = Q[sweep]
            Q[sweep] = Qs / Qs.sum(-2, keepdim=True)
        P[active] = Q / Q.sum(-1, keepdim=True)
    raise ValueError(f"Sinkhorn scaling did not reach column sums within {tol:g} of 1 in {max_iter} iterations "
                     f"({active.numel()} of {P.shape[0]} matrices)")


def sinkhorn_attention(batch: Sequence[int] | int, n: int, *, beta: float = 4.0, generator: torch.Generator,
                       dtype: torch.dtype = torch.float64, device: str | torch.device | None = None) -> Tensor:
    r"""$\mathrm{softmax}(\beta Z)$ Sinkhorn-scaled to doubly stochastic (Sinkformer-style attention).

    Row- and column-stochastic ($\omega = 0$ to ``SINKHORN_TOL``, so the mean token is kept: C4, C5) but not
    symmetric, so C6's per-step hypotheses do not hold. ``(*batch, n, n)``.
    """
    _sizes(n=(n, 2))
    _beta(beta)
    Z = _randn((*_batch(batch), n, n), generator, torch.float64, _device(generator, device))
    scores = beta * Z
    A = torch.exp(scores - scores.amax((-2, -1), keepdim=True))  # one shift per matrix: D1 A D2 is unchanged
    return sinkhorn_scale(A.clamp_min(torch.finfo(torch.float64).tiny)).to(dtype)
