r"""The literature's collapse metrics, beside [YZ]'s t_sim and t_div, so they can be compared on one trajectory.

With $X \in \mathbb{R}^{n \times d}$, $\bar x$ its mean token, $s$ = t_sim and $t$ = t_div:

- ``stable_rank`` (Mind the Gap 2025; rank collapse): $\|X\|_F^2/\|X\|_2^2 \in [1, \min(n, d)]$. Since
  $\|X\|_2^2 \ge \|X^T\mathbf 1\|^2/n = s\|X\|_F^2$, it obeys $1 \le$ stable_rank $\le 1/s = 1 + t/s$: token
  collapse ($t \to 0$) forces rank collapse, but not conversely: $X = u v^T$ with $u \not\parallel \mathbf 1$ has
  stable rank 1 and any $t$ (the metrics disagree on "collapse" exactly there). Computed as a ratio of order-1
  numbers, it keeps its distance from 1 only to rounding: near collapse stable rank - 1 (= O(t)) is lost below
  ~1e-16 (a rounding below 1 is clamped to 1). Its excess ``stable_rank_minus_1`` (and its natural
  log, finite where it underflows) is computed from the split parts instead (:func:`_split_excesses`) and keeps
  its digits however small t is.
- ``mean_cosine`` (fig1, Noci et al., [CB]): mean of $\cos(x_i, x_j)$ over pairs $i \ne j$. With equal token
  norms (after LayerNorm) it is exactly $(ns - 1)/(n - 1) = 1 - \frac{n}{n-1} t$; with unequal norms it can be
  far from it either way (a token of norm 0 has no cosine: NaN). Its deficit ``one_minus_mean_cosine`` (and its
  log) is computed from the split parts too: $1 - $ mean cosine $= \sum_i \|\hat x_i - \bar{\hat x}\|^2/(n-1)$
  over the unit tokens $\hat x_i$, and $\hat x_i - \hat m$ is formed from the centred part alone (from the
  token itself where it is shorter than half the mean token $m$).
- ``dong_residual`` (Dong et al. 2021): $\|X - \mathbf 1\bar x^T\|_{1,\infty}/\|X\|_{1,\infty}$ with the
  composite norm $\|A\|_{1,\infty} = \sqrt{\|A\|_1\|A\|_\infty}$ (max column and max row absolute sums). Since
  $\|A\|_F/\sqrt{\min(n,d)} \le \|A\|_{1,\infty} \le (nd)^{1/4}\|A\|_F$, dong_residual$^2$ and t_div agree up to
  a factor $c = \min(n, d)\sqrt{nd}$ either way ($t/c \le$ dong$^2 \le c\,t$): a linear rate of t_div is a linear rate of dong_residual at half the exponent (half the slope of
  the log), which is why Dong et al.'s doubly exponential rate and [YZ]'s linear one can describe one chain.

``split_collapse_metrics`` computes them on a chain carried in split form: dong_residual from the centred part
itself (so it keeps its digits however small it is), and the two excesses from the parts where t_div < 1e-2 (from
the whole matrix above, where each loses a few hundred eps t_div to rounding: up to 361 eps measured at 0.01). The stable rank and the mean cosine
are 1 plus or minus their excess where the excess comes from the parts, else the whole matrix's (of order 1 there);
on the CPU the whole matrix's Gram and eigensolve are then computed only for the trials with t_div >= 1e-2 (none
near collapse).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ._attention import symmetric_max_eigenvalue
from ._backend import array_function, matmul
from ._similarity import _scaled_parts, _two_sum, larger_exponent, ldexp, pow2_exponent
from ._split import SplitTokens, _split_unchecked
from ._validate import check_tokens

__all__ = ["stable_rank", "mean_cosine", "dong_residual", "split_collapse_metrics", "COLLAPSE_METRICS"]

COLLAPSE_METRICS = ("stable_rank", "mean_cosine", "dong_residual", "stable_rank_minus_1", "log_stable_rank_minus_1",
                    "one_minus_mean_cosine", "log_one_minus_mean_cosine")
# below this t_div both excesses come from the split parts (_split_excesses): the stable rank's series needs it;
# the cosines' identity holds at any t_div, but above it the whole matrix's values serve, and the parts' passes over
# E and the whole matrix's Gram are not both computed
PARTS_T_DIV = 1e-2
_SERIES_TERMS = 8  # of mu's series there: the next term is below (t_div / t_sim)^8 ~ 1.2e-16 of the first
_FIXED_POINT_STEPS = 8  # on it: the error falls by t_div / t_sim <= 0.0102 per step, from about that much


def _scaled(X: Tensor) -> Tensor:
    """X times an exact power of two with max |X| in [1/2, 1): every metric here is scale-free."""
    return ldexp(X, -pow2_exponent(X, (-2, -1))[..., None, None])


def _gram(X: Tensor, scaled: Tensor | None = None) -> Tensor:
    """The smaller Gram matrix of the scaled X in float64: X X^T (n <= d) or X^T X; both hold ||X||_2^2.
    ``scaled``: X already scaled by a power of two and in float64, if the caller has it."""
    Xs = _scaled(X).to(torch.float64) if scaled is None else scaled
    return matmul(Xs, Xs.mT) if Xs.shape[-2] <= Xs.shape[-1] else matmul(Xs.mT, Xs)


def _stable_rank(X: Tensor, G: Tensor | None = None, dtype: torch.dtype | None = None) -> Tensor:
    # ||X||_F^2 = trace G, ||X||_2^2 = lambda_max(G): one symmetric eigensolve, no SVD; lambda_max is
    # well-conditioned (relative error ~eps) however ill-conditioned G is. In X's dtype unless ``dtype`` is given
    G = _gram(X) if G is None else G
    trace = G.diagonal(dim1=-2, dim2=-1).sum(-1)
    # a rounding below 1 (X of rank one) is 1, the bound
    return (trace / symmetric_max_eigenvalue(G)).clamp_min(1).to(dtype or X.dtype)


def _mean_cosine(X: Tensor, G: Tensor | None = None, dtype: torch.dtype | None = None) -> Tensor:
    n = X.shape[-2]
    # the token Gram X X^T (``G`` where it is one), or where a squared token norm lost digits to underflow in it
    # (a token 1e-170 times the largest; its cosines would be NaN), the Gram of the tokens each first scaled by its
    # own power of two (cosines do not change): chosen per matrix, so a matrix's value does not depend on its batch
    small = None if G is None or G.shape[-1] != n else (G.diagonal(dim1=-2, dim2=-1) < _SAFE_SQUARE).any(-1)
    if small is None or bool(small.any()):
        Xr = ldexp(X, -pow2_exponent(X, (-1,))[..., None]).to(torch.float64)
        G = Xr @ Xr.mT if small is None else torch.where(small[..., None, None], Xr @ Xr.mT, G)
    inv = torch.rsqrt(G.diagonal(dim1=-2, dim2=-1))  # inf for a zero token: its cosines are NaN
    C = G * inv[..., :, None] * inv[..., None, :]
    off = C.sum((-2, -1)) - C.diagonal(dim1=-2, dim2=-1).sum(-1)
    return (off / (n * (n - 1))).clamp_max(1).to(dtype or X.dtype)  # a rounding above 1 (parallel tokens) is 1


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


def _split_excesses(mean: Tensor, centred: Tensor, k: Tensor, tokens=None, use: Tensor | None = None
                    ) -> tuple[Tensor, Tensor]:
    r"""(a, b) with stable rank - 1 $= 2^{2k} a$ and 1 - mean cosine $= 2^{2k} b$ of $X = \mathbf 1 m^T + 2^k E$
    (float64 parts: ``mean`` $m$ ``(..., 1, d)``, ``centred`` $E$ ``(..., n, d)``, each of order 1) however small
    $2^k$ is: a where $2^{2k}\|E\|^2 \ll n\|m\|^2$ (t_div < 1e-2; a series), b at any $2^k$ (an identity).

    Stable rank: with $a = \sqrt n\, m$ and $\alpha = \|a\|^2$, $X^T X = a a^T + E^T E$ ($\mathbf 1^T E = 0$), so
    $\|X\|_F^2 = \alpha + \|E\|_F^2$ and $\|X\|_2^2 = \alpha + \mu$, $\mu = \sum_{j \ge 1}
    a^T (E^T E)^j a/(\alpha + \mu)^j$ (the secular equation of $X X^T$ in the basis $\mathbf 1/\sqrt n$, $Q$):
    stable rank - 1 $= (\|E\|_F^2 - \mu)/(\alpha + \mu)$, a difference of two numbers of the centred part's
    size, never of two of order 1. $\mu$ by fixed-point steps on its series (terms fall by t_div / t_sim or more).

    Cosines: with $w_i = 1/\|x_i\|$ and $\hat m = m/\|m\|$, $w_i - 1/\|m\| = 2^k\delta_i$, $\delta_i =
    -(2 m\cdot E_i + 2^k\|E_i\|^2)/((\|x_i\| + \|m\|)\|x_i\|\|m\|)$ (from $\|x_i\|^2 - \|m\|^2$), the unit tokens
    are $\hat x_i = \hat m + 2^k G_i$, $G_i = \delta_i m + w_i E_i$, and 1 - mean cosine $= \sum_i \|\hat x_i -
    \bar{\hat x}\|^2/(n - 1) = 2^{2k}(\sum_i \|G_i\|^2 - n\|\bar G\|^2)/(n - 1)$ ($\bar G$ is of second order: the
    first-order parts of the $G_i$ sum to 0 with the $E_i$). A token shorter than half of $m$ (its norm from the
    parts would cancel, and its $G_i$ with it: a review measured 1 - mean cosine 8e-5 relative off for a token a
    millionth of $m$'s length, and a zero token read as a finite cosine) has $G_i = (\hat x_i - \hat m)/2^k$
    formed from the token itself instead: $x_i = m + 2^k E_i$ as an exact two-term sum (:func:`_short_tokens`), or
    ``tokens()``, X itself on the mean's scale (float64, ``(..., n, d)``), where the caller has it: the split form
    holds such a token only to eps ||m|| absolute (its centred part is $x_i - m$ rounded), so its direction only to
    eps ||m|| / ||x_i||, and X holds it exactly. ``use``: the matrices whose values the caller keeps (the others'
    short tokens are not formed: early in a chain, t_div ~ 1, most batches have some).

    Both are differences of numbers of the centred part's size: each is exact to about eps t_div, so to its own
    rounding where it is of the order of t_div (its usual size: stable rank - 1 <= t_div/t_sim, and
    1 - mean cosine = n/(n-1) t_div for tokens of equal norms); where the tokens are nearly parallel (X nearly of
    rank one, or tokens differing in norm only) it is that small absolute error instead. (A short token's unit
    vector is far from the mean's: the excess is then of order 1/n at least, and its part exact to about eps.)"""
    n = centred.shape[-2]
    one = torch.ones_like(k)
    rho2 = ldexp(one, 2 * k)  # 0 where it underflows (as 2^k below): it weighs higher orders only
    mm = mean.square().sum((-2, -1))  # |m|^2
    # products through _backend.matmul (one gemm per matrix): torch's batched matvec rounded a matrix's product
    # differently alone and in a batch (at n = 31, d = 64), so its excesses depended on its batch (a review)
    m_dot = matmul(centred, mean.mT)[..., 0]  # m . E_i (..., n)
    sq = torch.linalg.vector_norm(centred, dim=-1).square()  # |E_i|^2
    sr = _stable_rank_excess(centred, mm, m_dot, sq, rho2)
    r = ldexp(one, k)[..., None]
    norm_m = mm.sqrt()[..., None]
    norms2 = mm[..., None] + r * (2 * m_dot + r * sq)  # ||x_i||^2, its parts of very different sizes
    short = norms2 < 0.25 * mm[..., None]  # ||x_i|| < ||m|| / 2: the parts cancel, the token itself is used
    if use is not None:
        short = short & use[..., None]
    norms = torch.sqrt(norms2)
    delta = -(2 * m_dot + r * sq) / ((norms + norm_m) * norms * norm_m)
    w, kept = 1 / norms, ~short
    g2 = delta.square() * mm[..., None] + 2 * delta * w * m_dot + w.square() * sq  # ||G_i||^2 from (..., n) parts
    # n G-bar = (sum_i delta_i) m + E^T w over the tokens kept (one product E^T w: no (..., n, d) temporary)
    gsum = (torch.where(kept, delta, 0.0).sum(-1)[..., None] * mean[..., 0, :]
            + matmul(torch.where(kept, w, 0.0)[..., None, :], centred)[..., 0, :])
    if bool(short.any()):  # rare (a token far shorter than the mean token); a host sync on a GPU, once a call
        G = _short_tokens(mean, centred, r, norm_m, None if tokens is None else tokens())
        g2 = torch.where(short, G.square().sum(-1), g2)
        gsum = gsum + torch.where(short[..., None], G, 0.0).sum(-2)
    total = g2.sum(-1) - gsum.square().sum(-1) / n
    return sr, total.clamp_min(0) / (n - 1)


def _short_tokens(mean: Tensor, centred: Tensor, r: Tensor, norm_m: Tensor, tokens: Tensor | None = None) -> Tensor:
    r""":func:`_split_excesses`' $G_i = (\hat x_i - \hat m)/2^k$ ``(..., n, d)`` formed from the tokens themselves:
    $x_i = m + 2^k E_i$ as an exact sum hi + lo (Knuth's two-sum; $2^k E_i$ is exact, a power of two times $E_i$),
    its norm from both. Exact to about eps/2^k absolute for any token; :func:`_split_excesses` uses it for tokens
    shorter than half the mean token, whose unit vectors the parts give only to eps ||m|| / ||x_i||. ``tokens``:
    the x_i themselves on the mean's scale, where the caller has them (then hi, and lo = 0)."""
    if tokens is None:
        hi, lo = _two_sum(mean, r[..., None] * centred)
    else:
        hi, lo = tokens, torch.zeros_like(tokens)
    norms = torch.sqrt(hi.square().sum(-1) + 2 * (hi * lo).sum(-1))[..., None]
    return ((hi / norms - mean / norm_m[..., None]) + lo / norms) / r[..., None]


def _stable_rank_excess(centred: Tensor, mm: Tensor, m_dot: Tensor, sq: Tensor, rho2: Tensor) -> Tensor:
    """:func:`_split_excesses`' a from E, |m|^2, m . E_i, |E_i|^2 and 2^(2k)."""
    n = centred.shape[-2]
    alpha = n * mm
    fro = sq.sum(-1)  # in float64 whatever the chain's dtype: a float32 norm's rounding swamped ||E||^2 - mu
    c = [n * m_dot.square().sum(-1)]  # c_j = a^T (E^T E)^(j+1) a: ||E a||^2 = n ||E m||^2, ||E^T E a||^2, ...
    v = m_dot[..., None, :] * math.sqrt(n)  # E a, as a row
    for j in range(1, _SERIES_TERMS):  # E^T v as v^T E (a row), E v as a column
        v = matmul(v, centred) if j % 2 else matmul(centred, v.mT).mT
        c.append(v.square().sum((-2, -1)))
    c = torch.stack(c, -1)  # (..., J)
    powers = torch.arange(_SERIES_TERMS, dtype=c.dtype, device=c.device)
    # nu = mu / 2^(2k) solves nu = sum_j c_j z^j / g, g = alpha + rho2 nu, z = rho2 / g: fixed-point steps from
    # nu = c_0 / alpha, each gaining a factor of about z c_0 / alpha <= t_div / t_sim (<= 0.0102 below the switch)
    nu = c[..., 0] / alpha
    for _ in range(_FIXED_POINT_STEPS):
        g = alpha + rho2 * nu
        nu = (c * (rho2 / g)[..., None] ** powers).sum(-1) / g  # 0^0 = 1: the first term where rho2 underflowed
    return ((fro - nu) / (alpha + rho2 * nu)).clamp_min(0)


def _uses(X: SplitTokens) -> tuple[Tensor, Tensor]:
    """(k, use): where the excesses come from the parts (t_div < PARTS_T_DIV, the mean part not 0), and there the
    centred part's exponent over the mean's (float64; 0 elsewhere and where the centred part is 0, so 2^k stays
    finite)."""
    a, b = X.norms()
    use = (a.value != 0) & (X.shares()[1] < PARTS_T_DIV)
    return torch.where(use & (b.value != 0), X.centred_exp - X.mean_exp, 0.0).to(torch.float64), use


def _whole_metrics(scaled: Tensor, need: Tensor) -> tuple[Tensor, Tensor]:
    """(stable rank, mean cosine) in float64 of the whole matrices ``scaled`` (X times a power of two, float64),
    NaN where ``need`` is False. On the CPU only the needed matrices are computed (near collapse none is: the
    parts give both, :func:`_excess_metrics`, and the Gram matrix and its eigensolve are saved); elsewhere all are
    (a host sync would cost more)."""
    if scaled.device.type == "cpu" and not bool(need.all()):
        stable = torch.full(need.shape, torch.nan, dtype=torch.float64)
        cosine = stable.clone()
        if bool(need.any()):
            stable[need], cosine[need] = _whole_metrics(scaled[need], need[need])
        return stable, cosine
    G = _gram(scaled, scaled)  # one Gram for both where it is the token Gram (n <= d)
    return _stable_rank(scaled, G), _mean_cosine(scaled, G)


def _excess_metrics(X: SplitTokens, k: Tensor, use: Tensor, stable: Tensor, cosine: Tensor,
                    tokens=None) -> dict[str, Tensor]:
    """The stable rank and the mean cosine of X, their excesses stable rank - 1 and 1 - mean cosine, and the
    excesses' natural logs (finite where they underflow), in X's dtype: from the parts (:func:`_split_excesses`)
    where ``use`` says (:func:`_uses`), the metric itself then 1 + or 1 - its excess; else from ``stable`` and
    ``cosine`` (X's stable rank and mean cosine from the whole matrix, float64, clamped to their ranges, so the
    excess is >= 0 there too). ``tokens``: :func:`_split_excesses`' (the whole matrices, where the caller has
    them)."""
    # on the CPU the parts are computed only where a trial of the batch needs them (the check is a host sync
    # elsewhere)
    parts = (_split_excesses(X.mean.to(torch.float64), X.centred.to(torch.float64), k, tokens, use)
             if k.device.type != "cpu" or bool(use.any()) else (None, None))
    out = {}
    for part, whole, (name, excess_name, sign) in zip(parts, (stable, cosine), _EXCESS_OF):
        whole_excess = sign * (whole - 1) + 0.0  # >= 0 (clamped values; + 0.0 makes -0.0 a 0)
        if part is None:
            out[name], out[excess_name], out["log_" + excess_name] = whole, whole_excess, torch.log(whole_excess)
        else:
            excess = torch.where(use, ldexp(part, 2 * k), whole_excess)
            out[name] = torch.where(use, 1 + sign * excess, whole)
            out[excess_name] = excess
            out["log_" + excess_name] = torch.where(use, torch.log(part) + 2 * k * _LN2, torch.log(whole_excess))
    return {name: v.to(X.centred.dtype) for name, v in out.items()}


_LN2 = math.log(2.0)
_EXCESS_OF = (("stable_rank", "stable_rank_minus_1", 1.0), ("mean_cosine", "one_minus_mean_cosine", -1.0))


def collapse_metrics(X: Tensor) -> dict[str, Tensor]:
    """The metrics of whole token matrices ``(..., n, d)``, unchecked (NaN where undefined, e.g. X = 0)."""
    S = _split_unchecked(X)  # X as theory.split_tokens splits it
    k, use = _uses(S)
    stable, cosine = _whole_metrics(_scaled(X).to(torch.float64), ~use)
    # a token far shorter than the mean token is taken from X itself, which holds it exactly (_split_excesses)
    tokens = lambda: ldexp(X.to(torch.float64), -S.mean_exp.to(torch.float64)[..., None, None])  # noqa: E731
    return _in_order({"dong_residual": _dong_residual(X), **_excess_metrics(S, k, use, stable, cosine, tokens)})


def split_collapse_metrics(X: SplitTokens) -> dict[str, Tensor]:
    """The three metrics of a chain state in split form ``X = 1 m^T + E`` (see the module doc)."""
    if not isinstance(X, SplitTokens):
        raise ValueError(f"X must be a SplitTokens (theory.split_tokens); got {type(X).__name__}")
    # X 2^-e, e the larger part's exponent: its entries are of order 1 (each part's largest entry is in [1/2, 1)),
    # and every metric is scale-free (an exact power of two changes none of their digits)
    a, b = X.norms()  # (a part that is exactly 0 does not set e)
    e = larger_exponent(X.mean_exp, X.centred_exp, a.value == 0, b.value == 0)
    scaled = (ldexp(X.mean, (X.mean_exp - e)[..., None, None])
              + ldexp(X.centred, (X.centred_exp - e)[..., None, None])).to(torch.float64)
    num = _composite(X.centred.to(torch.float64))  # ||E||_{1,inf} of the normalised centred part
    dong = ldexp(num / _composite(scaled), (X.centred_exp - e).to(torch.float64)).to(X.centred.dtype)
    k, use = _uses(X)
    stable, cosine = _whole_metrics(scaled, ~use)
    return _in_order({"dong_residual": dong, **_excess_metrics(X, k, use, stable, cosine)})


def _in_order(metrics: dict[str, Tensor]) -> dict[str, Tensor]:
    return {name: metrics[name] for name in COLLAPSE_METRICS}
