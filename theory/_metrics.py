r"""The literature's collapse metrics, beside [YZ]'s t_sim and t_div, so they can be compared on one trajectory.

With $X \in \mathbb{R}^{n \times d}$, $\bar x$ its mean token, $s$ = t_sim and $t$ = t_div:

- ``stable_rank`` (Mind the Gap 2025; rank collapse): $\|X\|_F^2/\|X\|_2^2 \in [1, \min(n, d)]$. Since
  $\|X\|_2^2 \ge \|X^T\mathbf 1\|^2/n = s\|X\|_F^2$, it obeys $1 \le$ stable_rank $\le 1/s = 1 + t/s$: token
  collapse ($t \to 0$) forces rank collapse, but not conversely: $X = u v^T$ with $u \not\parallel \mathbf 1$ has
  stable rank 1 and any $t$ (the metrics disagree on "collapse" exactly there). Computed as a ratio of order-1
  numbers, it keeps its distance from 1 only to rounding: near collapse stable rank - 1 (= O(t)) and 1 - mean
  cosine are lost below ~1e-16 (and stable rank may come out a rounding below 1); t_div, carried in split form,
  keeps those digits.
- ``mean_cosine`` (fig1, Noci et al., [CB]): mean of $\cos(x_i, x_j)$ over pairs $i \ne j$. With equal token
  norms (after LayerNorm) it is exactly $(ns - 1)/(n - 1) = 1 - \frac{n}{n-1} t$; with unequal norms it can be
  far from it either way (a token of norm 0 has no cosine: NaN).
- ``dong_residual`` (Dong et al. 2021): $\|X - \mathbf 1\bar x^T\|_{1,\infty}/\|X\|_{1,\infty}$ with the
  composite norm $\|A\|_{1,\infty} = \sqrt{\|A\|_1\|A\|_\infty}$ (max column and max row absolute sums). Since
  $\|A\|_F/\sqrt{\min(n,d)} \le \|A\|_{1,\infty} \le (nd)^{1/4}\|A\|_F$, dong_residual$^2$ and t_div agree up to
  a factor $c = \min(n, d)\sqrt{nd}$ either way ($t/c \le$ dong$^2 \le c\,t$): a linear rate of t_div is a linear rate of dong_residual at half the exponent (half the slope of
  the log), which is why Dong et al.'s doubly exponential rate and [YZ]'s linear one can describe one chain.

``split_collapse_metrics`` computes them on a chain carried in split form: dong_residual from the centred part
itself (so it keeps its digits however small it is), the other two from the whole matrix, where they are of
order 1.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ._attention import symmetric_max_eigenvalue
from ._backend import array_function, matmul
from ._similarity import _scaled_parts, larger_exponent, ldexp, pow2_exponent
from ._split import SplitTokens
from ._validate import check_tokens

__all__ = ["stable_rank", "mean_cosine", "dong_residual", "split_collapse_metrics", "COLLAPSE_METRICS"]

COLLAPSE_METRICS = ("stable_rank", "mean_cosine", "dong_residual")


def _scaled(X: Tensor) -> Tensor:
    """X times an exact power of two with max |X| in [1/2, 1): every metric here is scale-free."""
    return ldexp(X, -pow2_exponent(X, (-2, -1))[..., None, None])


def _gram(X: Tensor, scaled: Tensor | None = None) -> Tensor:
    """The smaller Gram matrix of the scaled X in float64: X X^T (n <= d) or X^T X; both hold ||X||_2^2.
    ``scaled``: X already scaled by a power of two and in float64, if the caller has it."""
    Xs = _scaled(X).to(torch.float64) if scaled is None else scaled
    return matmul(Xs, Xs.mT) if Xs.shape[-2] <= Xs.shape[-1] else matmul(Xs.mT, Xs)


def _stable_rank(X: Tensor, G: Tensor | None = None) -> Tensor:
    # ||X||_F^2 = trace G, ||X||_2^2 = lambda_max(G): one symmetric eigensolve, no SVD; lambda_max is
    # well-conditioned (relative error ~eps) however ill-conditioned G is
    G = _gram(X) if G is None else G
    trace = G.diagonal(dim1=-2, dim2=-1).sum(-1)
    return (trace / symmetric_max_eigenvalue(G)).to(X.dtype)


def _mean_cosine(X: Tensor, G: Tensor | None = None) -> Tensor:
    n = X.shape[-2]
    if G is None or G.shape[-1] != n or bool((G.diagonal(dim1=-2, dim2=-1) < _SAFE_SQUARE).any()):
        # the token Gram X X^T, each token first scaled by its own power of two (cosines do not change): a token
        # 1e-170 times the largest would otherwise have a squared norm that underflows, and a NaN cosine
        Xr = ldexp(X, -pow2_exponent(X, (-1,))[..., None]).to(torch.float64)
        G = Xr @ Xr.mT
    inv = torch.rsqrt(G.diagonal(dim1=-2, dim2=-1))  # inf for a zero token: its cosines are NaN
    C = G * inv[..., :, None] * inv[..., None, :]
    off = C.sum((-2, -1)) - C.diagonal(dim1=-2, dim2=-1).sum(-1)
    return (off / (n * (n - 1))).to(X.dtype)


_SAFE_SQUARE = torch.finfo(torch.float64).tiny ** 0.5  # a float64 Gram diagonal above it lost nothing to underflow


def _composite(A: Tensor) -> Tensor:
    """sqrt(||A||_1 ||A||_inf): max column abs sum times max row abs sum, square-rooted."""
    a = A.abs()
    return torch.sqrt(a.sum(-2).amax(-1) * a.sum(-1).amax(-1))


def _dong_residual(X: Tensor) -> Tensor:
    # the centred part from _scaled_parts (differences to one token, a compensated mean), X at the same power of
    # two: centring with the rounded mean would leave eps ||X|| in every entry of a centred part that small
    _, centred, e = _scaled_parts(X)
    Xs = ldexp(X, -e[..., None, None])
    return (_composite(centred.to(torch.float64)) / _composite(Xs.to(torch.float64))).to(X.dtype)


@array_function
def stable_rank(X: Tensor) -> Tensor:
    r"""$\|X\|_F^2/\|X\|_2^2$ of token matrices ``(..., n, d)``: in $[1, \min(n, d)]$, 1 for rank one."""
    check_tokens("X", X)
    return _stable_rank(X)


@array_function
def mean_cosine(X: Tensor) -> Tensor:
    r"""Mean cosine similarity of token pairs $i \ne j$ of ``(..., n, d)`` (NaN if a token is 0)."""
    check_tokens("X", X)
    return _mean_cosine(X)


@array_function
def dong_residual(X: Tensor) -> Tensor:
    r"""Dong et al.'s relative residual $\|X - \mathbf 1\bar x^T\|_{1,\infty}/\|X\|_{1,\infty}$ of ``(..., n, d)``."""
    check_tokens("X", X)
    return _dong_residual(X)


def collapse_metrics(X: Tensor) -> dict[str, Tensor]:
    """The three metrics of whole token matrices ``(..., n, d)``, unchecked (NaN where undefined, e.g. X = 0)."""
    G = _gram(X)  # one Gram for stable rank and, where it is the token Gram (n <= d), mean cosine
    return {"stable_rank": _stable_rank(X, G), "mean_cosine": _mean_cosine(X, G), "dong_residual": _dong_residual(X)}


def split_collapse_metrics(X: SplitTokens) -> dict[str, Tensor]:
    """The three metrics of a chain state in split form ``X = 1 m^T + E`` (see the module doc)."""
    if not isinstance(X, SplitTokens):
        raise ValueError(f"X must be a SplitTokens (theory.split_tokens); got {type(X).__name__}")
    # X 2^-e, e the larger part's exponent: its entries are of order 1 (each part's largest entry is in [1/2, 1)),
    # and every metric is scale-free (an exact power of two changes none of their digits)
    a, b = X.norms()  # (a part that is exactly 0 does not set e)
    e = larger_exponent(X.mean_exp, X.centred_exp, a.value == 0, b.value == 0)
    scaled = (ldexp(X.mean, (X.mean_exp - e)[..., None, None])
              + ldexp(X.centred, (X.centred_exp - e)[..., None, None])).to(torch.float64)  # shared by all three
    num = _composite(X.centred.to(torch.float64))  # ||E||_{1,inf} of the normalised centred part
    dtype = X.centred.dtype
    dong = ldexp(num / _composite(scaled), (X.centred_exp - e).to(torch.float64)).to(dtype)
    G = _gram(scaled, scaled)
    return {"stable_rank": _stable_rank(scaled, G).to(dtype), "mean_cosine": _mean_cosine(scaled, G).to(dtype),
            "dong_residual": dong}
