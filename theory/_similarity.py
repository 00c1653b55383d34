r"""Token similarity and diversity (D1, D2; the partition C1), to relative rounding at any scale (t_sim: see 3.).

[YZ] Def 1.1: $t_{sim}(X) = \|\Pi X\|^2 / \|X\|^2$ and $t_{div}(X) = \|\Pi_\perp X\|^2 / \|X\|^2$, with
$\Pi = \mathbf{1}\mathbf{1}^T/n$ (``mean_part``: every row replaced by the mean token $\bar x$) and
$\Pi_\perp = I - \Pi$ (``centred_part``). Both parts are computed directly, never one as ``1 -`` the other:
after ten layers of attention $t_{div}$ is ~1e-30 and ``1 - t_sim`` would be zero. Since
$\|X\|^2 = \|\Pi X\|^2 + \|\Pi_\perp X\|^2$ (C1), the denominator is that sum.

How the small part keeps its digits (shared/THEORY.md, "Precision"):

1. X is scaled by a power of two (exact) so that its largest entry lies in [1/2, 1): no difference overflows.
2. The centred part is formed from differences to one reference token, $D = X - \mathbf{1}x_1^T$, which are
   exact for nearly equal tokens (Sterbenz) and otherwise correct to one rounding of themselves; then
   $\Pi_\perp X = D - \mathbf{1}\bar d^T$ with $\bar d$ from a compensated sum. Centring X with its rounded mean
   instead would leave an error of ~eps ||X|| in every entry: a relative error of eps^2/t_div in t_div.
3. The mean token comes from a compensated (TwoSum) sum of the scaled tokens, as if in twice the precision:
   each entry of the mean to eps/2 of itself plus about eps^2 times the mean of the |x_i| (tested), so ||Pi X||
   is accurate where the mean nearly cancels down to that floor. Below it the mean part is rounding: X = [2^60,
   2^-10, 1, 2^-80, -2^60, -2^-10, -1, 0]^T (mean 1.03e-25, t_sim 3.2e-86) reads t_sim = 0 (a review); only a
   t_sim below ~eps^4 ~ 1e-62 relative to the tokens' spread can get there.
4. Each part's norm is taken after scaling that part by its own power of two, and kept as a
   :class:`ScaledNorm` ``value * 2**exp``: a centred part 1e-200 times the mean part neither underflows its
   squares nor loses its exponent. Shares, odds, logs and growth factors are formed from these pairs.

So t_div is accurate to a few ulps relative for every finite float64 input whose t_div is a normal number
(down to ~1e-300), at any scale of X, and t_sim likewise unless the mean token cancels below the floor of 3.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import torch
from torch import Tensor

from ._backend import array_function
from ._validate import check_tokens

__all__ = [
    "mean_part",
    "centred_part",
    "token_similarity",
    "token_diversity",
    "similarity_odds",
    "split_norms",
    "log_token_diversity",
]

_LN2 = math.log(2.0)


class ScaledNorm(NamedTuple):
    """A norm as ``value * 2**exp``: ``value`` of order 1 (or 0), ``exp`` an integer-valued float tensor."""

    value: Tensor
    exp: Tensor


def max_abs(A: Tensor, dims: tuple[int, ...]) -> Tensor:
    """max|A| over ``dims`` as max(max A, -min A): the same value (NaN where A has one), without forming |A|."""
    return torch.maximum(A.amax(dim=dims), -A.amin(dim=dims))


def pow2_exponent(A: Tensor, dims: tuple[int, ...]) -> Tensor:
    """The e with max|A| in [2^(e-1), 2^e) over ``dims`` (0 where A = 0), as a float tensor of A's dtype."""
    return exponent_of(max_abs(A, dims))


def exponent_of(x: Tensor) -> Tensor:
    """The e with |x| in [2^(e-1), 2^e) (0 where x = 0), as a float tensor of x's dtype."""
    return torch.frexp(x)[1].to(x.dtype)


@functools.cache
def _exp_range(dtype: torch.dtype) -> tuple[int, int]:
    """(lo, hi): 2^lo is the dtype's smallest subnormal, 2^hi its largest power of two."""
    fi = torch.finfo(dtype)
    # frexp, not floor(log2(max)): log2 of float64's largest rounds to 1024.0, and 2^1024 is inf (ldexp(0.9, 1024)
    # came out inf; a review of the engine's statistics near the float's largest)
    return round(math.log2(fi.tiny * fi.eps)), math.frexp(fi.max)[1] - 1


_MIN_NORMAL_EXP = {torch.float64: -1022, torch.float32: -126, torch.float16: -14, torch.bfloat16: -126}


def ldexp(x: Tensor, e: Tensor) -> Tensor:
    r"""$x \cdot 2^e$ for integer-valued float ``e``, exact unless the result leaves the normal range.

    Two factors, each a power of two the dtype can hold (``exp2`` is exact on integers), so exponents down to
    about twice the dtype's range work; beyond that the result is 0 (or inf), as the true value would round to.
    """
    lo, hi = _exp_range(x.dtype)
    e = e.to(x.dtype)
    least = _MIN_NORMAL_EXP.get(x.dtype)
    if e.numel() and least is not None and e.device.type == "cpu":
        # the common case, every 2^e a normal number: one exact factor (the same correctly rounded x 2^e, in
        # half the work; this runs dozens of times per chain step). On the CPU only: the test is a host sync.
        emin, emax = torch.aminmax(e)
        if float(emin) >= least and float(emax) <= hi:
            return x * torch.exp2(e)
    e = e.clamp(2 * lo, 2 * hi)
    e1 = torch.floor(e / 2)
    return x * torch.exp2(e1) * torch.exp2(e - e1)


def _scaled_frobenius(A: Tensor) -> ScaledNorm:
    """||A|| over the last two dims, A scaled by its own power of two first (no under- or overflow)."""
    e = pow2_exponent(A, (-2, -1))
    return ScaledNorm(torch.linalg.matrix_norm(ldexp(A, -e[..., None, None])), e)


def _two_sum(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """(fl(a + b), the rounding error of that sum), exactly (Knuth's TwoSum)."""
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def compensated_sum(A: Tensor, dim: int = -2) -> Tensor:
    """Sum over ``dim`` as if in twice the precision, then rounded once: pairwise TwoSum, log2(n) passes."""
    A = A.movedim(dim, 0)
    hi, lo = A, torch.zeros_like(A)
    while hi.shape[0] > 1:
        if hi.shape[0] % 2:
            hi, lo = torch.cat([hi, hi.new_zeros(1, *hi.shape[1:])]), torch.cat([lo, lo.new_zeros(1, *lo.shape[1:])])
        hi, err = _two_sum(hi[0::2], hi[1::2])
        lo = lo[0::2] + lo[1::2] + err
    return (hi[0] + lo[0]).unsqueeze(0).movedim(0, dim)


def _scaled_parts(X: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(xbar (..., 1, d), Pi_perp X (..., n, d), e): both parts of X 2^-e, e the exponent of max|X|."""
    n = X.shape[-2]
    e = pow2_exponent(X, (-2, -1))
    Xs = ldexp(X, -e[..., None, None])
    D = Xs - Xs[..., :1, :]  # exact where tokens are close (Sterbenz)
    centred = D - compensated_sum(D) / n
    return compensated_sum(Xs) / n, centred, e


def split_scaled_norms(X: Tensor) -> tuple[ScaledNorm, ScaledNorm]:
    r"""$(\|\Pi X\|, \|\Pi_\perp X\|)$ as :class:`ScaledNorm` pairs (no under- or overflow, relative rounding)."""
    return part_norms(*_scaled_parts(X), X.shape[-2])


def part_norms(xbar: Tensor, centred: Tensor, e: Tensor, n: int) -> tuple[ScaledNorm, ScaledNorm]:
    """(||Pi X||, ||Pi_perp X||) of X from its parts as :func:`_scaled_parts` gives them (``n`` tokens)."""
    a, b = _scaled_frobenius(xbar), _scaled_frobenius(centred)
    return ScaledNorm(a.value * math.sqrt(n), a.exp + e), ScaledNorm(b.value, b.exp + e)


def larger_exponent(ea: Tensor, eb: Tensor, a_zero: Tensor, b_zero: Tensor) -> Tensor:
    """The larger of two parts' exponents, a part that is exactly 0 left out: its exponent is arbitrary (it keeps
    whatever it was given), and a zero mean part carrying a large one would flush the other part to 0."""
    return torch.where(a_zero, eb, torch.where(b_zero, ea, torch.maximum(ea, eb)))


def common_scale(a: ScaledNorm, b: ScaledNorm) -> tuple[Tensor, Tensor, Tensor]:
    """(a, b, e) with a = a.value 2^(a.exp - e), b likewise, e the larger exponent of a non-zero norm
    (:func:`larger_exponent`): the larger is of order 1."""
    e = larger_exponent(a.exp, b.exp, a.value == 0, b.value == 0)
    return ldexp(a.value, a.exp - e), ldexp(b.value, b.exp - e), e


def shares(a: ScaledNorm, b: ScaledNorm) -> tuple[Tensor, Tensor]:
    """(a^2/(a^2 + b^2), b^2/(a^2 + b^2)): (t_sim, t_div) from the two part norms, each to relative rounding."""
    a_, b_, _ = common_scale(a, b)
    total = a_.square() + b_.square()
    return a_.square() / total, b_.square() / total


def log_share(b: ScaledNorm, a: ScaledNorm) -> Tensor:
    r"""$\ln(b^2/(a^2 + b^2))$, finite however small b is (unless b = 0): ``log_share(b, a)`` is ln t_div."""
    a_, b_, e = common_scale(a, b)
    return 2 * (torch.log(b.value) + (b.exp - e) * _LN2) - torch.log(a_.square() + b_.square())


def norm_ratio(num: ScaledNorm, den: ScaledNorm) -> Tensor:
    """num / den as a plain tensor (inf or 0 only where the true ratio leaves the dtype's range)."""
    return ldexp(num.value / den.value, num.exp - den.exp)


def _split_norms(X: Tensor) -> tuple[Tensor, Tensor]:
    """(||Pi X||, ||Pi_perp X||) over the last two dims."""
    a, b = split_scaled_norms(X)
    return ldexp(a.value, a.exp), ldexp(b.value, b.exp)


def _split_shares(X: Tensor) -> tuple[Tensor, Tensor]:
    """(t_sim, t_div)."""
    return shares(*split_scaled_norms(X))


@array_function
def mean_part(X: Tensor) -> Tensor:
    r"""$\Pi X$: every token replaced by the mean token. ``X``: ``(..., n, d)``."""
    check_tokens("X", X, nonzero=False)
    xbar, _, e = _scaled_parts(X)
    return ldexp(xbar, e[..., None, None]).expand_as(X).clone()


@array_function
def centred_part(X: Tensor) -> Tensor:
    r"""$\Pi_\perp X = X - \mathbf{1}\bar x^T$: the tokens with their mean removed, each entry to relative rounding
    of the centred part's size (not of X's). ``X``: ``(..., n, d)``."""
    check_tokens("X", X, nonzero=False)
    _, centred, e = _scaled_parts(X)
    return ldexp(centred, e[..., None, None])


@array_function
def split_norms(X: Tensor) -> tuple[Tensor, Tensor]:
    r"""$(\|\Pi X\|, \|\Pi_\perp X\|)$ in the Frobenius norm, batched: shapes ``(...)``; each to relative rounding
    (the first unless the mean token cancels below eps^2 times the tokens' size: module doc, 3.)."""
    check_tokens("X", X, nonzero=False)
    return _split_norms(X)


@array_function
def token_similarity(X: Tensor) -> Tensor:
    r"""Token similarity (D1): $t_{sim}(X) = \|\Pi X\|^2/\|X\|^2 = n\|\bar x\|^2/\|X\|^2 \in [0, 1]$.

    ``X``: ``(..., n, d)``, finite, non-zero. Returns shape ``(...)``.
    """
    check_tokens("X", X)
    return _split_shares(X)[0]


@array_function
def token_diversity(X: Tensor) -> Tensor:
    r"""Token diversity (D1): $t_{div}(X) = \|\Pi_\perp X\|^2/\|X\|^2$, from the centred part.

    Accurate to relative rounding for any finite X at any scale, down to t_div ~ 1e-300 (module doc), where
    ``1 - t_sim`` is zero.
    """
    check_tokens("X", X)
    return _split_shares(X)[1]


@array_function
def log_token_diversity(X: Tensor) -> Tensor:
    r"""$\ln t_{div}(X)$, finite even where $t_{div}$ itself underflows (``-inf`` only when all tokens agree)."""
    check_tokens("X", X)
    a, b = split_scaled_norms(X)
    return log_share(b, a)


@array_function
def similarity_odds(X: Tensor) -> Tensor:
    r"""Similarity odds (D2): $t_{sim}/t_{div} = \|\Pi X\|^2/\|\Pi_\perp X\|^2$ (``inf`` when all tokens agree)."""
    check_tokens("X", X)
    a, b = split_scaled_norms(X)
    return norm_ratio(a, b).square()
