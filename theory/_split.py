r"""The split form of C3 for chains: $X = \mathbf{1} m^T + E$ carried as its two parts, never added up.

C3 gives $P\mathbf{1} = \mathbf{1}$, so with $P = \Pi + D$ ($D$ the deviation from uniform attention, $D\mathbf{1} = 0$)
and $\Pi E = 0$:
$$ P X W = \mathbf{1}\,(m + u)^T W + (DE - \mathbf{1}u^T) W, \qquad u = \mathrm{mean\_rows}(DE), $$
i.e. $m' = (m + \mathrm{mean\_rows}(PE))W$ and $E' = \Pi_\perp P E W$. Each part is held with its own power-of-two
exponent (:class:`SplitTokens`), so a centred part 1e-150 times the mean part (t_div ~ 1e-300) keeps every
digit, and t_div is never formed by centring a matrix whose tokens agree to more digits than a float has.

The model's $P$ is exactly row-stochastic (C3): the rounding of a float P's row sums (~eps) is not propagated.
A full-form product $PXW$ would leak eps ||m|| of the mean into the centred part at every step, a floor at
t_div ~ eps^2 that this form does not have.

Data attention ([YZ] Fig 3's ``data`` variant) needs its scores from X itself; :func:`split_scores` forms only
the part of $X W_Q (X W_K)^T$ that varies along a row (softmax ignores the rest), at its own exponent, and
:func:`split_softmax` returns $P - \Pi$ in parts directly, so the chain stays exact while the scores
are far below eps (the doubly exponential collapse).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch
from torch import Tensor

from ._backend import _tensor_in, matmul
from ._similarity import (ScaledNorm, _scaled_frobenius, _scaled_parts, common_scale, exponent_of, ldexp,
                          log_share, max_abs, pow2_exponent, shares)
from ._validate import check_finite, check_tokens

__all__ = ["SplitTokens", "split_tokens", "attend", "split_scores", "split_softmax"]


def _check_step(X: "SplitTokens", D: Tensor, W: Tensor) -> None:
    """Shapes of a split step (the engine's hot path checks shapes only; finiteness where cheap)."""
    if not isinstance(X, SplitTokens):
        raise ValueError(f"X must be SplitTokens (from theory.split_tokens); got {type(X).__name__}")
    n, d = X.centred.shape[-2:]
    batch = X.centred.shape[:-2]
    if D.ndim < 2 or D.shape[-2:] != (n, n) or D.shape[:-2] != batch:
        raise ValueError(f"D must be (..., n, n) = {(*batch, n, n)} matching X; got shape {tuple(D.shape)}")
    if W.ndim < 2 or W.shape[-2] != d or W.shape[:-2] != batch:
        raise ValueError(f"W must be (..., d, d') with (...) = {tuple(batch)} and d = {d}; got shape {tuple(W.shape)}")
    check_finite("D", D)


def _top_exponent(A: Tensor, e: Tensor) -> Tensor:
    """The exponent of max|A 2^e| over the last two dims (max|A| in [2^(f-1), 2^f): e + f); -inf where A = 0."""
    top = max_abs(A, (-2, -1))
    return torch.where(top == 0, -math.inf, e + exponent_of(top))


def _normalised(A: Tensor, e: Tensor) -> tuple[Tensor, Tensor]:
    """(A 2^-f, e + f), f the exponent of max|A| over the last two dims: the value's largest entry in [1/2, 1)."""
    f = pow2_exponent(A, (-2, -1))
    return ldexp(A, -f[..., None, None]), e + f


def _normalised_product(A: Tensor, c: Tensor, e: Tensor) -> tuple[Tensor, Tensor]:
    """:func:`_normalised` of ``A * c`` (``c`` ``(...)``, > 0) in one pass over A: rounding is monotonic, so
    max|fl(A c)| = fl(max|A| c) gives f first, and fl(A (c 2^-f)) = fl(A c) 2^-f (c 2^-f is exact)."""
    f = exponent_of(max_abs(A, (-2, -1)) * c)
    return A * ldexp(c, -f)[..., None, None], e + f


def _part_norm(A: Tensor) -> ScaledNorm:
    """||A|| over the last two dims of a part of :class:`SplitTokens`. A normalised part (largest entry in [1/2, 1))
    has a norm of order 1, whose squares can neither overflow nor lose anything that matters to underflow: then
    directly, exactly what scaling by the part's own power of two (which is 1) would give; else by that scaling."""
    v = torch.linalg.matrix_norm(A)
    lo, hi = _safe_norm(A.dtype)
    if bool(((v >= lo) & (v <= hi)).all()):
        return ScaledNorm(v, torch.zeros_like(v))
    return _scaled_frobenius(A)


@functools.cache
def _safe_norm(dtype: torch.dtype) -> tuple[float, float]:
    """Norms in [tiny^(1/4), max^(1/4)] come out right from the plain sum of squares: no square overflows, and the
    squares that underflow are each below tiny, at most tiny^(1/2) relative to the norm's square."""
    fi = torch.finfo(dtype)
    return fi.tiny ** 0.25, fi.max ** 0.25


@dataclass(frozen=True)
class SplitTokens:
    r"""$X = \mathbf{1}\,(2^{e_m} m)^T + 2^{e_E} E$ ``(..., n, d)``: mean token and centred part, each normalised.

    ``mean``: ``(..., 1, d)``; ``centred``: ``(..., n, d)`` (columns sum to 0); exponents ``(...)``, integer-valued
    floats. Build one with :func:`split_tokens`; advance it with :func:`attend`.
    """

    mean: Tensor
    centred: Tensor
    mean_exp: Tensor
    centred_exp: Tensor

    def norms(self) -> tuple[ScaledNorm, ScaledNorm]:
        r"""$(\|\Pi X\|, \|\Pi_\perp X\|)$ as :class:`~theory._similarity.ScaledNorm` pairs (no rounding of the split)."""
        return self._norms

    @functools.cached_property
    def _norms(self) -> tuple[ScaledNorm, ScaledNorm]:  # a chain step asks for them several times
        a, b = _part_norm(self.mean), _part_norm(self.centred)
        n = self.centred.shape[-2]
        return (ScaledNorm(a.value * math.sqrt(n), a.exp + self.mean_exp), ScaledNorm(b.value, b.exp + self.centred_exp))

    def shares(self) -> tuple[Tensor, Tensor]:
        """(t_sim, t_div) of X, each to relative rounding however small."""
        return shares(*self.norms())

    def log_diversity(self) -> Tensor:
        """ln t_div(X), finite where t_div itself underflows (-inf only for equal tokens)."""
        a, b = self.norms()
        return log_share(b, a)

    def tokens(self) -> Tensor:
        """X as one tensor: rounds the centred part away where it is below eps of the mean (for display only)."""
        return ldexp(self.mean, self.mean_exp[..., None, None]) + ldexp(self.centred, self.centred_exp[..., None, None])

    def scaled_to(self, norm: float) -> "SplitTokens":
        r"""The same tokens times $c > 0$ with $\|cX\| = $ ``norm`` (scale-free quantities do not change)."""
        a, b = self.norms()
        a_, b_, e = common_scale(a, b)
        c = norm / torch.sqrt(a_.square() + b_.square())  # of order 1: the larger part is of order 1
        mean, mean_exp = _normalised_product(self.mean, c, self.mean_exp - e)
        centred, centred_exp = _normalised_product(self.centred, c, self.centred_exp - e)
        return SplitTokens(mean, centred, mean_exp, centred_exp)


def split_tokens(X: Tensor) -> SplitTokens:
    r"""X ``(..., n, d)`` (torch, or numpy as float64) in split form, each part to relative rounding (see
    :mod:`theory._similarity`); the parts are torch tensors."""
    X = _tensor_in("X", X, None)  # a tensor as it is (integers as float64), an array-like as float64, else ValueError
    check_tokens("X", X, nonzero=False)
    return _split_unchecked(X)


def _split_unchecked(X: Tensor) -> SplitTokens:
    """:func:`split_tokens` of a tensor, without its checks (NaN in, NaN out)."""
    xbar, centred, e = _scaled_parts(X)
    mean, mean_exp = _normalised(xbar, e)
    centred, centred_exp = _normalised(centred, e)
    return SplitTokens(mean, centred, mean_exp, centred_exp)


def attend(X: SplitTokens, D: Tensor, W: Tensor, D_exp: Tensor | None = None, row: Tensor | None = None
           ) -> SplitTokens:
    r"""$Y = P X W$ in split form, $P = \Pi + \mathbf{1}\rho^T + 2^{e_D} D$ row-stochastic (module doc).

    ``D``: ``(..., n, n)`` with zero row sums (for a given P simply ``P - 1/n``); ``W``: ``(..., d, d')``;
    ``D_exp``: ``(...)`` (default 0); ``row`` $\rho$: ``(..., 1, n)`` summing to 0, a part common to every row
    (data attention: it moves only the mean, since $\Pi_\perp \mathbf{1} = 0$), default none. Nothing is
    centred twice: $E' = (DE - \mathbf{1}u^T)W$ and $m' = (m + \rho^T E + u)W$, $u$ the mean row of $DE$.
    """
    _check_step(X, D, W)
    DE = matmul(D, X.centred)  # (..., n, d), at exponent centred_exp + D_exp
    u = DE.mean(dim=-2, keepdim=True)  # (..., 1, d): mean_rows(P E) - rho^T E, since Pi E = 0
    e_u = X.centred_exp if D_exp is None else X.centred_exp + D_exp
    # m's terms summed at the scale of the largest term actually present: a part or term that is exactly 0 has an
    # arbitrary exponent (a zero mean part at 2^0 beside u at 2^-2200 flushed u, the whole new mean, to 0; and a
    # u exactly 0, as symmetric D gives, must not flush the mean either)
    terms = [(X.mean, X.mean_exp), (u, e_u)]
    if row is not None:
        terms.append((matmul(row, X.centred), X.centred_exp))
    tops = [_top_exponent(A, e) for A, e in terms]
    e0 = functools.reduce(torch.maximum, tops)
    e0 = torch.where(e0 == -math.inf, 0.0, e0)  # every term 0: the new mean is 0 at any scale
    # a zero term is not shifted (0 times 2^2200 would be NaN where 2^2200 overflows)
    m = functools.reduce(torch.add, [ldexp(A, torch.where(top == -math.inf, 0.0, e - e0)[..., None, None])
                                     for (A, e), top in zip(terms, tops)])
    mean, mean_exp = _normalised(matmul(m, W), e0)
    centred, centred_exp = _normalised(matmul(DE - u, W), e_u)
    return SplitTokens(mean, centred, mean_exp, centred_exp)


def split_scores(X: SplitTokens, WQ: Tensor, WK: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    r"""Data-attention scores $X W_Q (X W_K)^T/\sqrt{d}$ in parts, ``(s, e_s, S, e_S)``: scores
    $\mathbf{1} (2^{e_s} s) + 2^{e_S} S$ plus terms constant along each row, which softmax ignores.

    With $X = \mathbf{1}m^T + E$ and $A = W_Q W_K^T/\sqrt d$: $s_j = m^T A E_j$ ``(..., 1, n)`` is the same in
    every row and $S_{ij} = E_i^T A E_j$ ``(..., n, n)``; near collapse $S$ is $t_{div}$ times smaller than $s$ and
    is all that separates the rows, so the two are never added. ``WQ``, ``WK``: ``(..., d, w)``.
    """
    d = X.mean.shape[-1]
    for name, M in (("WQ", WQ), ("WK", WK)):
        if M.ndim < 2 or M.shape[-2] != d or M.shape[:-2] != X.mean.shape[:-2]:
            raise ValueError(f"{name} must be (..., d, w) with d = {d} matching X; got shape {tuple(M.shape)}")
    K = X.centred @ WK / math.sqrt(d)  # (..., n, w), at centred_exp
    s = (X.mean @ WQ) @ K.mT  # (..., 1, n)
    S = (X.centred @ WQ) @ K.mT  # (..., n, n)
    return s, X.mean_exp + X.centred_exp, S, 2 * X.centred_exp


def _centred_row_softmax(s: Tensor) -> Tensor:
    """softmax(s) - 1/n along the last dim without the cancellation of forming softmax(s) first."""
    g = torch.expm1(s - s.amax(dim=-1, keepdim=True))
    gbar = g.mean(dim=-1, keepdim=True)
    return (g - gbar) / (s.shape[-1] * (1 + gbar))


def split_softmax(s: Tensor, s_exp: Tensor, S: Tensor, S_exp: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    r"""Row softmax of the scores $\mathbf{1}(2^{e_s}s) + 2^{e_S}S$ as $P = \Pi + \mathbf{1}\rho^T + 2^{e_D} D$:
    returns ``(rho, D, e_D)`` (the arguments of :func:`attend`).

    With $\pi = \mathrm{softmax}(2^{e_s}s) = 1/n + \rho$ (the softmax itself, each entry to relative rounding:
    $1/n + \rho$ has lost the digits of the small ones), $g = \mathrm{expm1}(2^{e_S}S - M)$ ($M_i$ the row's
    maximum) and $Z_i = \sum_l \pi_l e^{2^{e_S}S_{il} - M_i} = 1 + \bar g_i$, $\bar g_i = \sum_l \pi_l g_{il}$:
    $P_{ij} = \pi_j e^{2^{e_S}S_{ij} - M_i}/Z_i$, so $P - \mathbf{1}\pi^T = D$ with
    $D_{ij} = \pi_j (g_{ij} - \bar g_i)/Z_i$: rows summing to 0, every digit of scores that barely differ kept.
    That form holds where $Z_i \ge 1/2$; in a row whose weight sits on scores far below its maximum ($Z_i < 1/2$)
    $g - \bar g$ would cancel (and $Z_i$ may underflow), and there $D = \mathrm{softmax}(2^{e_s}s + 2^{e_S}S) - \pi$
    directly, which is then as accurate. Where $2^{e_S}S$ is below $2^{-60}$ the first-order term
    $\pi_j(S_{ij} - \sum_l \pi_l S_{il})$ is exact to rounding and is returned at $S$'s own exponent, so D may lie
    far below the smallest float.
    """
    if S.ndim < 2 or S.shape[-1] != S.shape[-2] or s.shape != (*S.shape[:-2], 1, S.shape[-1]):
        raise ValueError(f"S must be (..., n, n) and s (..., 1, n) of the same n; got {tuple(S.shape)} and "
                         f"{tuple(s.shape)}")
    check_finite("S", S)
    check_finite("s", s)
    s_abs = ldexp(s, s_exp[..., None, None])
    rho = _centred_row_softmax(s_abs)  # (..., 1, n)
    pi = torch.softmax(s_abs, dim=-1)  # each entry to relative rounding, however small
    tiny = pow2_exponent(S, (-2, -1)) + S_exp < -60  # (...)
    first = pi * (S - (S * pi).sum(dim=-1, keepdim=True))
    S_abs = ldexp(S, torch.where(tiny, 0, S_exp)[..., None, None])
    x = S_abs - S_abs.amax(dim=-1, keepdim=True)
    g = torch.expm1(x)
    Z = (torch.exp(x) * pi).sum(dim=-1, keepdim=True)  # a sum of positive terms: no cancellation
    # g - sum_l pi_l g_l is unchanged by a shift of g along the row: shifted by its value at pi's largest entry k,
    # the weighted sum no longer carries pi_k g_k, which cancelled (D's digits lost as 1 - pi_k -> 0, all of them
    # once the shared scores separate by ~40)
    k = pi.argmax(dim=-1, keepdim=True).expand(*g.shape[:-1], 1)  # (..., n, 1): s is shared by every row
    h = g - g.gather(-1, k)
    near = pi * (h - (h * pi).sum(dim=-1, keepdim=True)) / Z
    full = torch.where(Z >= 0.5, near, torch.softmax(s_abs + S_abs, dim=-1) - pi)
    return rho, torch.where(tiny[..., None, None], first, full), torch.where(tiny, S_exp, 0)
