r"""Attention quantities of a row-stochastic P (D5), its invariant eigenvector (C3) and column-sum defect (C4).

Orthonormal basis $V = [\mathbf{1}/\sqrt n \mid Q]$ with $Q \in \mathbb{R}^{n \times (n-1)}$ (Helmert columns).
C3: a row-stochastic $P$ ($P \ge 0$, $P\mathbf{1} = \mathbf{1}$) has $V^T P V = [[1, b^T], [0, C]]$, so
$\mathrm{spec}(P) = \{1\} \cup \mathrm{spec}(C)$ with $C = Q^T P Q$ ($P$ restricted to $\mathbf{1}^\perp$).

- $\delta(P) = |\lambda_2(P)|$ = spectral radius of $C$ (SLEM) -- ``slem``;
- $\sigma(P) = \|\Pi_\perp P \Pi_\perp\|_2 = \|C\|_2$ -- ``diversity_gain``;
- $\mu(P) = \|\Pi_\perp P \Pi_\perp\|_F/\sqrt{n-1}$ -- ``rms_diversity_gain``;
- $\omega(P) = \|\Pi P \Pi_\perp\|_2 = \|P^T\mathbf{1} - \mathbf{1}\|/\sqrt n$ -- ``column_sum_defect`` (C4).

$\delta \le \sigma$ always and $\mu \le \sigma$; for symmetric $P$, $\sigma = \delta$ and $\mu \le \delta$. Public code
often mixes the three up; they are kept apart here. Eigen- and singular values are taken in float64 whatever
the input dtype, and returned in the input dtype.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from . import _hqr, _lockstep
from ._backend import array_function, matmul
from ._similarity import ldexp, pow2_exponent
from ._validate import check_row_stochastic, check_square, row_stochastic_tolerance

__all__ = [
    "complement_basis",
    "leading_basis",
    "attention_blocks",
    "double_centre",
    "slem",
    "slem_with_error",
    "diversity_gain",
    "rms_diversity_gain",
    "column_sum_defect",
    "is_row_stochastic",
    "uniform_attention",
]


def _helmert(n: int, dtype: torch.dtype, device: torch.device | None) -> Tensor:
    """Q (n, n-1): column k-1 is (1, ..., 1, -k, 0, ..., 0)/sqrt(k(k+1)) with k ones."""
    k = torch.arange(1, n, dtype=torch.float64)
    rows = torch.arange(n, dtype=torch.float64)[:, None]  # (n, 1)
    Q = (rows < k).double() - k * (rows == k).double()  # (n, n-1)
    return (Q / torch.sqrt(k * (k + 1))).to(dtype=dtype, device=device)


def complement_basis(n: int, *, dtype: torch.dtype = torch.float64, device: str | torch.device | None = None
                     ) -> Tensor:
    r"""$Q$ ``(n, n-1)``: an orthonormal basis of $\mathbf{1}^\perp$ (Helmert), as a tensor."""
    if not isinstance(n, int) or n < 2:
        raise ValueError(f"n must be an integer >= 2; got {n!r}")
    return _helmert(n, dtype, None if device is None else torch.device(device))


def leading_basis(n: int, *, dtype: torch.dtype = torch.float64, device: str | torch.device | None = None
                  ) -> Tensor:
    r"""$V = [\mathbf{1}/\sqrt n \mid Q]$ ``(n, n)``: orthogonal, first column the invariant direction."""
    Q = complement_basis(n, dtype=dtype, device=device)
    ones = Q.new_full((n, 1), 1 / math.sqrt(n))
    return torch.cat([ones, Q], dim=1)


def _restrict(P: Tensor) -> Tensor:
    """C = Q^T P Q, batched."""
    Q = _helmert(P.shape[-1], P.dtype, P.device)
    return matmul(matmul(Q.mT, P), Q)


def _double_centre(P: Tensor) -> Tensor:
    """Pi_perp P Pi_perp = P - row means - column means + grand mean, computed directly."""
    return (P - P.mean(-1, keepdim=True) - P.mean(-2, keepdim=True)
            + P.mean(dim=(-2, -1), keepdim=True))


@array_function
def attention_blocks(P: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    r"""C3: the blocks of $V^T P V = [[a, b^T], [z, C]]$; returns ``(b, z, C)``.

    For row-stochastic P, $a = 1$ and $z = 0$, so $\mathrm{spec}(P) = \{1\} \cup \mathrm{spec}(C)$.
    ``P``: ``(..., n, n)`` (any square matrix); ``b``, ``z``: ``(..., n-1)``; ``C``: ``(..., n-1, n-1)``.
    """
    check_square("P", P)
    V = leading_basis(P.shape[-1], dtype=P.dtype, device=P.device)
    M = V.mT @ P @ V
    return M[..., 0, 1:], M[..., 1:, 0], M[..., 1:, 1:]


@array_function
def double_centre(P: Tensor) -> Tensor:
    r"""$\Pi_\perp P \Pi_\perp$ ``(..., n, n)``: $P$ with row, column and grand means removed."""
    check_square("P", P)
    return _double_centre(P)


def _slem_of(C: Tensor, P: Tensor | None = None, *, offset: float = 0.0, errors: bool = False
             ) -> Tensor | tuple[Tensor, Tensor]:
    r"""Spectral radius of C = Q^T P Q (float64), chosen by the structure of ``P + offset`` (P itself, or its
    deviation ``P - 1/n`` with ``offset = 1/n``), with an absolute error estimate when ``errors``.

    - symmetric P: C is symmetric: the symmetric solver (4x faster, backward stable: error ~ eps ||C||);
    - lower-triangular P (causal attention): the eigenvalues are the diagonal entries, so
      $\delta = \max_{i \ge 2} P_{ii}$, exactly from P itself (through C it would lose digits, the more the larger
      beta); from ``P - 1/n`` to eps (1/n + |P_ii|) absolute, the roundings of taking 1/n away and adding it back;
    - otherwise the eigenvalue of largest modulus (:func:`_top_eigenvalue`: the lockstep kernel on the CPU, else
      LAPACK's geev), and with ``errors`` its first-order error $\epsilon\|C\|_F\,\kappa(\lambda)$,
      $\kappa = \|x\|\|y\|/|y^H x|$ from one step of inverse iteration for its right and left eigenvectors: a
      near-defective C (nearly one-hot rows) gets a huge or infinite estimate.
    """
    batch = C.shape[:-2]
    Cf = C.reshape(-1, *C.shape[-2:])
    if not Cf.shape[0]:
        delta = C.new_zeros(batch)
        return (delta, C.new_zeros(batch)) if errors else delta
    if P is not None:
        Pf = P.reshape(-1, *P.shape[-2:])
        corner = Pf.shape[-1] > 1  # a first test on one entry, so that the full tests run only where it passes
        triangular = _all_where(Pf[:, 0, -1] + offset == 0 if corner else None, Pf,
                                lambda S: ((S + offset).triu(1) == 0).flatten(-2))
        symmetric = _all_where(Pf[:, 0, 1] == Pf[:, 1, 0] if corner else None, Pf,
                               lambda S: (S == S.mT).flatten(-2)) & ~triangular
    if P is None or not bool((triangular | symmetric).any()):  # all general (the common case): no masks, no copies
        top, top_err = _top_eigenvalue(Cf, errors=errors)
        delta = top.abs().reshape(batch)
        return (delta, top_err.reshape(batch)) if errors else delta
    delta, err = Cf.new_zeros(Cf.shape[0]), Cf.new_zeros(Cf.shape[0])
    if bool(triangular.any()):
        given = Pf[triangular].diagonal(dim1=-2, dim2=-1)[:, 1:]
        diag = given + offset
        delta[triangular] = diag.abs().amax(-1).to(torch.float64)  # exact from P itself: err stays 0
        if offset:  # from D = P - 1/n: P_ii - 1/n and then + 1/n were each rounded, eps/n absolute where P_ii << 1/n
            err[triangular] = torch.finfo(Pf.dtype).eps * (given.abs() + diag.abs()).amax(-1).to(torch.float64)
    if bool(symmetric.any()):
        Cs = Cf[symmetric]
        delta[symmetric] = _symmetric_radius((Cs + Cs.mT) / 2)
        err[symmetric] = 4 * torch.finfo(torch.float64).eps * torch.linalg.matrix_norm(Cs)
    general = ~(triangular | symmetric)
    if bool(general.any()):
        Cg = Cf[general]
        top, top_err = _top_eigenvalue(Cg, errors=errors)
        delta[general] = top.abs()
        if errors:
            err[general] = top_err
    delta = delta.reshape(batch)
    return (delta, err.reshape(batch)) if errors else delta


def _symmetric_radius(S: Tensor) -> Tensor:
    """max |lambda| of each symmetric S ``(g, m, m)``: on CUDA with the GPU kernels the larger of the top
    eigenvalues of S and -S (torch's batched ``eigvalsh`` there is 11x slower and failed on large batches),
    elsewhere ``eigvalsh``."""
    if _hqr.takes(S):
        return torch.maximum(_hqr.symmetric_max_cuda(S), _hqr.symmetric_max_cuda(-S))
    return torch.linalg.eigvalsh(S).abs().amax(-1)


def _all_where(candidate: Tensor | None, P: Tensor, entries) -> Tensor:
    """Per matrix of P ``(g, n, n)``: whether ``entries(P)`` ``(g, k)`` is all true, evaluated only where the
    necessary condition ``candidate`` ``(g,)`` holds (None: everywhere)."""
    if candidate is None:
        return entries(P).all(-1)
    out = candidate.clone()
    if bool(candidate.any()):
        out[candidate] = entries(P[candidate]).all(-1)
    return out


def _top_eigenvalue(C: Tensor, *, errors: bool = False) -> tuple[Tensor, Tensor | None]:
    """The eigenvalue of largest modulus of each C ``(g, m, m)`` float64, complex ``(g,)``, and with ``errors``
    its first-order absolute error estimate (:func:`_eigenvalue_error`), else None.

    On a CUDA device one GPU warp per matrix (:mod:`theory._hqr`; batched eigvals there is one cuSOLVER call
    per matrix); on the CPU the lockstep kernel (:mod:`theory._lockstep`, 16 matrices per SIMD group); both
    estimate the error on the Hessenberg form in O(m^2). LAPACK's geev where neither is available; LAPACK
    for any matrix a kernel does not converge on (counted: :func:`theory._hqr.fallbacks`, in fig3's JSON).
    """
    if _hqr.takes(C):
        out = _hqr.top_eigenvalue_cuda(C, errors=errors)
    elif (C.device.type == "cpu" and C.dtype == torch.float64 and C.shape[-1] <= _lockstep.MAX_ORDER
          and _lockstep.available()):
        out = [torch.from_numpy(a) for a in _lockstep.top_eigenvalue(C.detach().numpy(), errors=errors)]
    else:
        top = _lapack_top(C)
        return top, (_eigenvalue_error(C, top) if errors else None)
    top, ok, err = torch.complex(out[0], out[1]), out[2], (out[3] if errors else None)
    if bool((~ok).any()):
        finite = torch.isfinite(C).flatten(-2).all(-1)
        undefined = ~ok & ~finite  # NaN or inf in C: no eigenvalue to fall back for, and not a convergence failure
        top[undefined] = complex(math.nan, math.nan)
        if err is not None:
            err[undefined] = math.inf
        bad = ~ok & finite
        if bool(bad.any()):  # not converged: LAPACK's answer, counted
            _hqr.count_fallbacks(int(bad.sum()))
            top[bad] = _lapack_top(C[bad].cpu()).to(top.device)
            if err is not None:
                err[bad] = _eigenvalue_error(C[bad], top[bad]).nan_to_num(nan=math.inf)  # NaN top: no digits
    return top, err


def _lapack_top(C: Tensor) -> Tensor:
    """The eigenvalue of largest modulus of each C ``(g, m, m)`` by LAPACK's geev. Where geev fails on a matrix
    (MKL's did on graded ones, entries spanning 1e-100, that the kernels do not converge on either), that matrix
    alone goes to numpy's LAPACK, and is NaN if that fails too: one matrix never aborts a batch."""
    try:
        lam = torch.linalg.eigvals(C)
    except torch.linalg.LinAlgError:
        return torch.stack([_lapack_top_one(c) for c in C])
    return lam.gather(-1, lam.abs().argmax(-1, keepdim=True))[..., 0]


def _lapack_top_one(c: Tensor) -> Tensor:
    for solve in (lambda: torch.linalg.eigvals(c), lambda: torch.from_numpy(np.linalg.eigvals(c.numpy()))):
        try:
            lam = solve().to(torch.complex128)
        except (torch.linalg.LinAlgError, np.linalg.LinAlgError):
            continue
        return lam[lam.abs().argmax()]
    return torch.tensor(complex(math.nan, math.nan), dtype=torch.complex128)


def _eigenvalue_error(C: Tensor, lam: Tensor) -> Tensor:
    """First-order error bound eps ||C||_F kappa(lam) of a computed simple eigenvalue ``lam`` of each C."""
    eps = torch.finfo(torch.float64).eps
    m = C.shape[-1]
    norm = torch.linalg.matrix_norm(C)
    # shift off lam by a few ulps of ||C||, so the factorisation is not exactly singular
    shift = lam + 8 * eps * norm.clamp_min(1e-300) * (1 + 1j)
    M = C.to(torch.complex128) - shift[..., None, None] * torch.eye(m, dtype=torch.complex128, device=C.device)
    LU, piv = torch.linalg.lu_factor(M)
    b = torch.ones(*C.shape[:-1], 1, dtype=torch.complex128, device=C.device)
    x = torch.linalg.lu_solve(LU, piv, b)[..., 0]
    y = torch.linalg.lu_solve(LU, piv, b, adjoint=True)[..., 0]
    x, y = x / torch.linalg.vector_norm(x, dim=-1, keepdim=True), y / torch.linalg.vector_norm(y, dim=-1, keepdim=True)
    kappa = 1 / (y.conj() * x).sum(-1).abs()
    return torch.nan_to_num(eps * norm * kappa, nan=float("inf"))


def _sigma_of(C: Tensor) -> Tensor:
    # ||C||_2^2 = largest eigenvalue of C^T C: a symmetric eigenproblem, cheaper than an SVD, and as accurate
    # in sigma (relative error ~eps for sigma of order 1, the only regime where sigma matters here).
    return symmetric_max_eigenvalue(matmul(C.mT, C)).clamp_min(0).sqrt()


def symmetric_max_eigenvalue(G: Tensor) -> Tensor:
    """The largest eigenvalue of each symmetric G ``(..., m, m)``: on the CPU in float64 the lockstep kernel
    (:func:`theory._lockstep.symmetric_max_eigenvalue`, 4x faster than a batched ``eigvalsh`` at m = 31, the same
    ~eps ||G|| accuracy), on CUDA in float64 the warp kernel (:func:`theory._hqr.symmetric_max_cuda`), elsewhere
    ``torch.linalg.eigvalsh``."""
    m = G.shape[-1]
    if G.dtype == torch.float64 and G.numel():
        if G.device.type == "cpu" and 1 <= m <= _lockstep.MAX_ORDER and _lockstep.available():
            out = _lockstep.symmetric_max_eigenvalue(G.detach().reshape(-1, m, m).numpy())
            return torch.from_numpy(out).reshape(G.shape[:-2])
        if _hqr.takes(G):
            return _hqr.symmetric_max_cuda(G.detach().reshape(-1, m, m)).reshape(G.shape[:-2])
    return torch.linalg.eigvalsh(G)[..., -1]


def _restrict_deviation(P64: Tensor) -> Tensor:
    """C = Q^T (P - 1/n) Q, equal to Q^T P Q (Q^T 1 = 0) but formed from the deviation: C's rounding is then eps
    times the deviation, not eps ||P||, which for nearly uniform P (delta ~ 1e-15) was every digit of delta."""
    return _restrict(P64 - 1 / P64.shape[-1])


def _slem(P: Tensor) -> Tensor:
    P64 = P.to(torch.float64)
    return _slem_of(_restrict_deviation(P64), P64).to(P.dtype)


def _sigma(P: Tensor) -> Tensor:
    return _sigma_of(_restrict(P.to(torch.float64))).to(P.dtype)


def deviation_stats(D: Tensor, exp: Tensor | None = None, row: Tensor | None = None, *, P: Tensor | None = None
                    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    r"""(delta, sigma, mu, omega) of $P = \Pi + \mathbf{1}\rho^T + 2^{e} D$ from its deviation from uniform attention.

    C3 makes delta, sigma and mu functions of $D$ alone ($Q^T \mathbf{1} = 0$, $\Pi_\perp \mathbf{1} = 0$), and D
    keeps digits that P cannot hold where attention is nearly uniform (data attention near collapse), so they
    stay relatively accurate far below eps; omega also needs the common row $\rho$ ``(..., 1, n)``. ``exp``
    (shape ``(...)``) scales D by a power of two; default 0. For a plain P pass ``D = P - 1/n``, and P itself as
    ``P`` where the caller holds it: a causal P's delta is then exact (its diagonal read from P, not from D).

    The fifth value is delta's absolute error estimate (see :func:`_slem_of`): for triangular (causal) P 0 given
    ``P``, else eps (1/n + delta) (the diagonal read back from D); ~eps for symmetric P; first-order perturbation
    theory otherwise (inf for a numerically defective C).
    """
    n = D.shape[-1]
    if exp is None and row is None:  # a plain P = Pi + D: its structure (symmetric, causal) picks the solver
        D64 = D.to(torch.float64)
        C = _restrict(D64)
        if P is None:
            delta, delta_err = _slem_of(C, D64, offset=1 / n, errors=True)
        else:
            delta, delta_err = _slem_of(C, P.to(torch.float64), errors=True)
        out = (delta, _sigma_of(C), _mu_of(C), _omega_of_sums(D.sum(dim=-2)), delta_err)
        return tuple(v.to(D.dtype) for v in out)
    f = pow2_exponent(D, (-2, -1))  # eigensolvers fail on subnormal entries: work at D's own scale
    Ds = ldexp(D, -f[..., None, None])
    f = f if exp is None else f + exp
    C = _restrict(Ds.to(torch.float64))
    delta, delta_err = (ldexp(v.to(D.dtype), f) for v in _slem_of(C, errors=True))
    c = ldexp(Ds.sum(dim=-2), f[..., None])  # column sums of P - Pi, (..., n)
    if row is not None:
        c = c + n * row[..., 0, :]
    return (delta, ldexp(_sigma_of(C).to(D.dtype), f), ldexp(_mu_of(C).to(D.dtype), f), _omega_of_sums(c),
            delta_err)


def _mu_of(C: Tensor) -> Tensor:
    """mu from C = Q^T P Q ``(..., n-1, n-1)``: Pi_perp P Pi_perp = Q C Q^T has C's Frobenius norm (Q orthonormal),
    so no second pass over P to centre it (the double centring cost about 4 us a 32 x 32 matrix)."""
    return torch.linalg.matrix_norm(C) / math.sqrt(C.shape[-1])


def _mu(P: Tensor) -> Tensor:
    n = P.shape[-1]
    return torch.linalg.matrix_norm(_double_centre(P), ord="fro") / math.sqrt(n - 1)


def _omega(P: Tensor) -> Tensor:
    return _omega_of_sums(P.sum(dim=-2))


def _omega_of_sums(c: Tensor) -> Tensor:
    """omega from P's column sums c ``(..., n)`` (or those of P - Pi, or of P + any common row: c's mean is removed)."""
    return torch.linalg.vector_norm(c - c.mean(-1, keepdim=True), dim=-1) / math.sqrt(c.shape[-1])


@array_function
def slem(P: Tensor) -> Tensor:
    r"""$\delta(P) = |\lambda_2(P)|$ (D5): the second-largest eigenvalue modulus of row-stochastic ``P``.

    Computed as the spectral radius of $C = Q^T P Q$ (C3), in float64: eigenvalue 1 of $P\mathbf{1}$ is removed
    exactly, not by sorting, so a repeated eigenvalue 1 (reducible P) correctly gives $\delta = 1$. By P's
    structure: causal (lower-triangular) P exactly from its diagonal, symmetric P by the symmetric solver, any
    other P by LAPACK's geev (:func:`slem_with_error` also says how many digits to trust).
    """
    check_row_stochastic("P", P)
    return _slem(P)


@array_function
def slem_with_error(P: Tensor) -> tuple[Tensor, Tensor]:
    r"""$(\delta(P), e)$: the SLEM and an estimate $e$ of its absolute error (float64 work, P's dtype out).

    Causal (lower-triangular) P: $\delta = \max_{i \ge 2} P_{ii}$ exactly, $e = 0$. Symmetric P: the symmetric
    solver, $e \approx \epsilon\|C\|$. Otherwise $e = \epsilon\|C\|_F\,\kappa$ with $\kappa$ the condition number of
    the eigenvalue (first-order perturbation theory): for nearly one-hot rows (softmax at beta >= 100) C can be
    nearly defective and float64 fixes delta only to a few digits, which $e$ says (``inf`` where C is
    numerically defective). Checked against 50-digit arithmetic in ``tests/test_attention.py``. In a narrower dtype
    than float64, $e$ also counts delta's rounding to it (exactly: the float64 delta less the one returned).
    """
    check_row_stochastic("P", P)
    P64 = P.to(torch.float64)
    delta, err = _slem_of(_restrict_deviation(P64), P64, errors=True)
    out = delta.to(P.dtype)
    rounding = (delta - out.to(torch.float64)).abs()  # 0 in float64; NaN for a NaN lane, whose err stays inf
    return out, (err + torch.where(rounding.isnan(), 0.0, rounding)).to(P.dtype)


@array_function
def diversity_gain(P: Tensor) -> Tensor:
    r"""$\sigma(P) = \|\Pi_\perp P \Pi_\perp\|_2 = \|C\|_2$ (D5): the largest gain of the centred part."""
    check_row_stochastic("P", P)
    return _sigma(P)


@array_function
def rms_diversity_gain(P: Tensor) -> Tensor:
    r"""$\mu(P) = \|\Pi_\perp P \Pi_\perp\|_F / \sqrt{n-1}$ (D5): the root-mean-square diversity gain."""
    check_row_stochastic("P", P)
    return _mu(P)


@array_function
def column_sum_defect(P: Tensor) -> Tensor:
    r"""$\omega(P) = \|\Pi P \Pi_\perp\|_2 = \|P^T\mathbf{1} - \mathbf{1}\|/\sqrt n$ (D5, C4).

    Zero exactly for doubly stochastic P. Computed as $\|c - \bar c\,\mathbf{1}\|/\sqrt n$, $c = P^T\mathbf{1}$,
    which equals the operator norm for any square P.
    """
    check_row_stochastic("P", P)
    return _omega(P)


@array_function
def is_row_stochastic(P: Tensor) -> Tensor:
    """Boolean ``(...)``: entries >= 0 and rows summing to 1, to a rounding tolerance of 16 n eps."""
    check_square("P", P)
    tol = row_stochastic_tolerance(P)
    return ((P.sum(-1) - 1).abs() <= tol).all(-1) & (P >= -tol).flatten(-2).all(-1)


def uniform_attention(n: int, *, dtype: torch.dtype = torch.float64, device: str | torch.device | None = None
                      ) -> Tensor:
    r"""$\Pi = \mathbf{1}\mathbf{1}^T/n$ ``(n, n)``: uniform attention (C12), $\delta(\Pi) = 0$."""
    if not isinstance(n, int) or n < 2:
        raise ValueError(f"n must be an integer >= 2; got {n!r}")
    return torch.full((n, n), 1 / n, dtype=dtype, device=None if device is None else torch.device(device))
