r"""Symbolic checks of the bounds C5-C10 (registered in :mod:`proofs_check.symbolic`).

Each inequality is reduced, by exact identities checked here for every n (noncommutative symbols and their
defining rules, :mod:`proofs_check._sym_algebra`), to standard facts that are cited, not re-proved and named
in the result (:data:`proofs_check.symbolic.FACTS`): the spectral theorem (a symmetric matrix's 2-norm is its
spectral radius; its squared Frobenius norm is the sum of its squared eigenvalues),
$\|AB\|_F \le \|A\|_2\|B\|_F$, and the triangle inequality. Where n = 2 makes the bound an equality it is
checked end to end with explicit symbols. Gaussian expectations are exact second moments, no sampling
(:func:`proofs_check._sym_algebra.gaussian_nc_expectation` for every size,
:func:`proofs_check.symbolic.gaussian_expectation` for explicit matrices). C8 is an existence claim, settled
by exact rational instances.
"""

from __future__ import annotations

import sympy as sp

from ._sym_algebra import (ONES, PI, PI_PERP, assert_nc_identity, check_helmert_basis, cogram, gaussian_nc_expectation,
                           gram, nc, one, oneT, transpose)
from .symbolic import (Pi, Pi_perp, SymbolicResult, assert_identity, assert_sign, assert_zero, doubly_stochastic,
                       gaussian_expectation, helmert, register, require, row_stochastic, sqnorm, symmetric_stochastic,
                       t_sim, tokens)

a1, a2 = sp.symbols("a1 a2", real=True)
sigma = sp.Symbol("sigma", positive=True)  # sigma_w
SUBMULT, TRIANGLE, SPECTRAL = "||AB||_F <= ||A||_2 ||B||_F", "triangle inequality", "spectral theorem"

# every size: tokens X, attention P (P 1 = 1), Gaussian weights W
X_, XT_, P_, PT_, P2_, P2T_, W_, WT_, W2_, W2T_ = nc("X XT P PT P2 P2T W WT W2 W2T")
T_ = {one: oneT, X_: XT_, P_: PT_, P2_: P2T_, W_: WT_, W2_: W2T_}
ROW = ONES + [((P_, one), one), ((oneT, PT_), oneT), ((P2_, one), one), ((oneT, P2T_), oneT)]
DOUBLY = ROW + [((oneT, P_), oneT), ((PT_, one), one), ((oneT, P2_), oneT), ((P2T_, one), one)]
T_SYM = {**T_, P_: P_, P2_: P2_}  # symmetric P: P^T = P
# the Helmert basis Q (n x (n-1)): V = [1/sqrt n | Q] is orthogonal at every n (check_helmert_basis proves its
# columns orthonormal; a square matrix with orthonormal columns has V V^T = I), so Q^T Q = I and
# Q Q^T = I - 1 1^T / n = Pi_perp. C = Q^T P Q.
Q_, QT_ = nc("Q QT")
BASIS: list = [((QT_, Q_), sp.Integer(1)), ((Q_, QT_), PI_PERP)]
C_ = QT_ * P_ * Q_


def _sym2(a: sp.Symbol) -> sp.Matrix:
    r"""n = 2 symmetric row-stochastic $[[1-a, a], [a, 1-a]]$: spectrum $\{1, 1-2a\}$, so $\delta = |1 - 2a|$."""
    return sp.Matrix([[1 - a, a], [a, 1 - a]])


@register("C5")
def check_c5() -> SymbolicResult:
    r"""C5 ([YZ] xi1/xi2 bound): $\Pi_\perp P X = (\Pi_\perp P\Pi_\perp)(\Pi_\perp X)$ gives $\xi_2 \le \sigma$ by
    $\|AB\|_F \le \|A\|_2\|B\|_F$; $\Pi P X = \Pi X + (\Pi P \Pi_\perp)(\Pi_\perp X)$ gives $|\xi_1 - 1| \le
    \omega\sqrt{t_{div}/t_{sim}}$ by the triangle inequality; symmetric $P$: $\Pi_\perp P \Pi_\perp$ symmetric, so
    $\sigma = \delta$ (spectral theorem). ($U$ orthogonal keeps both norms: C1.)"""
    n = 3
    P, X = row_stochastic("p", n), tokens("x", n, 2)
    Pp, P1, Q = Pi_perp(n), Pi(n), helmert(n)
    assert_identity(Pp * P * X, (Pp * P * Pp) * (Pp * X), "C5 Pi_perp P X = (Pi_perp P Pi_perp)(Pi_perp X)")
    assert_identity(P1 * P * X, P1 * X + (P1 * P * Pp) * (Pp * X), "C5 Pi P X = Pi X + (Pi P Pi_perp)(Pi_perp X)")
    assert_identity(Q * Q.T, Pp, "C5 Q Q^T = Pi_perp")
    assert_identity(Pp * P * Pp, Q * (Q.T * P * Q) * Q.T, "C5 Pi_perp P Pi_perp = Q C Q^T (sigma = ||C||_2)")
    S = symmetric_stochastic("s", n)
    assert_zero(Pp * S * Pp - (Pp * S * Pp).T, "C5 symmetric P: Pi_perp P Pi_perp symmetric (sigma = delta)")
    B = doubly_stochastic("b", n)
    assert_identity(P1 * B * X, P1 * X, "C5 doubly stochastic: Pi P X = Pi X (xi1 = 1)")
    # n = 2 symmetric, end to end: xi1 = 1 and xi2 = |1 - 2a| = delta exactly
    a = sp.Symbol("a", real=True)
    P, X = _sym2(a), tokens("x", 2, 2)
    assert_identity(sqnorm(Pi(2) * P * X), sqnorm(Pi(2) * X), "C5 n = 2: xi1 = 1")
    assert_identity(sqnorm(Pi_perp(2) * P * X), (1 - 2 * a)**2 * sqnorm(Pi_perp(2) * X), "C5 n = 2: xi2 = |1-2a|")
    require(P.eigenvals() == {1: 1, 1 - 2 * a: 1}, f"C5 n = 2 spectrum: got {P.eigenvals()}")
    # every n: the two splittings (P 1 = 1), symmetry of Pi_perp P Pi_perp, xi1 = 1 for doubly stochastic P
    assert_nc_identity(PI_PERP * P_ * X_, (PI_PERP * P_ * PI_PERP) * (PI_PERP * X_), ROW,
                       "C5 Pi_perp P X = (Pi_perp P Pi_perp)(Pi_perp X), every n")
    assert_nc_identity(PI * P_ * X_, PI * X_ + (PI * P_ * PI_PERP) * (PI_PERP * X_), ROW,
                       "C5 Pi P X = Pi X + (Pi P Pi_perp)(Pi_perp X), every n")
    Pp = PI_PERP * P_ * PI_PERP
    assert_nc_identity(transpose(Pp, T_SYM), Pp, ROW, "C5 symmetric P: Pi_perp P Pi_perp symmetric, every n")
    assert_nc_identity(PI * P_ * X_, PI * X_, DOUBLY, "C5 doubly stochastic: Pi P X = Pi X, every n")
    check_helmert_basis()
    assert_nc_identity(Q_ * C_ * QT_, PI_PERP * P_ * PI_PERP, ROW + BASIS,
                       "C5 Pi_perp P Pi_perp = Q C Q^T (sigma = ||C||_2, Q^T Q = I), every n")
    return SymbolicResult("reduced", "every n: Pi_perp P X = (Pi_perp P Pi_perp)(Pi_perp X), Pi P X = Pi X + "
                                     "(Pi P Pi_perp)(Pi_perp X), Pi_perp P Pi_perp = Q C Q^T (Helmert basis), "
                                     "symmetric => Pi_perp P Pi_perp symmetric (sigma = delta), doubly "
                                     "stochastic => xi1 = 1; explicit at n = 2, 3",
                          facts=(SUBMULT, TRIANGLE, SPECTRAL))


@register("C6")
def check_c6() -> SymbolicResult:
    r"""C6 ([YZ] bound via $|\lambda_2|$): $r = 1/(s + q^2(1-s))$ with $q = \xi_2/\xi_1 \le \delta$ (C5) is
    decreasing in $q$; $\mathbb{E}\|AW\|^2 = \sigma_w^2 d_{out}\|A\|^2$ so $\bar r = r(X, PX)$;
    $\|PX\|^2 = \|\Pi X\|^2 + \|\Pi_\perp P\Pi_\perp X\|^2$ (doubly stochastic); $\mu^2 \le \delta^2$ as a mean of
    squared eigenvalues of the symmetric $C$ (spectral theorem)."""
    s, sbar, q, xi1 = sp.symbols("s sbar q xi1", positive=True)  # sbar = 1 - s
    assert_identity((xi1**2 / (xi1**2 * s + (q * xi1)**2 * (1 - s))), 1 / (s + q**2 * (1 - s)),
                    "C6 C2's identity as a function of q = xi2/xi1")
    assert_sign(sp.diff(1 / (s + q**2 * sbar), q), "negative", "C6 dr/dq < 0")
    A, W = tokens("A", 2, 2), tokens("w", 2, 3)  # d_out = 3
    assert_identity(gaussian_expectation(sqnorm(A * W), W, sigma**2), sigma**2 * 3 * sqnorm(A),
                    "C6 E||A W||^2 = sigma^2 d_out ||A||^2")
    a, X, W = sp.Symbol("a", real=True), tokens("x", 2, 2), tokens("w", 2, 2)
    P = _sym2(a)
    rbar = (gaussian_expectation(sqnorm(Pi(2) * P * X * W), W, sigma**2)
            / gaussian_expectation(sqnorm(P * X * W), W, sigma**2))
    assert_identity(rbar, t_sim(P * X), "C6 ratio of expectations = t_sim(P X), n = 2")
    B, X = doubly_stochastic("b", 3), tokens("x", 3, 2)
    assert_identity(sqnorm(B * X), sqnorm(Pi(3) * X) + sqnorm(Pi_perp(3) * B * Pi_perp(3) * X),
                    "C6 ||P X||^2 = ||Pi X||^2 + ||Pi_perp P Pi_perp X||^2, n = 3 doubly stochastic")
    S, Q = symmetric_stochastic("s", 3), helmert(3)
    C = Q.T * S * Q
    assert_zero(C - C.T, "C6 C symmetric")
    lams = [lam for lam, k in C.eigenvals().items() for _ in range(k)]
    assert_identity(sum(lam**2 for lam in lams), sqnorm(Pi_perp(3) * S * Pi_perp(3)),
                    "C6 (n-1) mu^2 = sum of squared eigenvalues of C, n = 3 symmetric")
    # every size: E[W W^T] = gamma I gives E||A W||^2 = gamma ||A||^2, so rbar = t_sim(P X); doubly stochastic
    # P splits ||P X||^2; C = Q^T P Q is symmetric for symmetric P (then mu <= delta, the spectral theorem)
    gamma = sp.Symbol("gamma", positive=True)
    A, AT = nc("A AT")
    E = lambda e: gaussian_nc_expectation(e, [(W_, WT_)], gamma)  # noqa: E731
    assert_nc_identity(E(cogram(A * W_, {**T_, A: AT})), gamma * cogram(A, {A: AT}), [],
                       "C6 E||A W||^2 = gamma ||A||^2, every size")
    assert_nc_identity(E(cogram(PI * P_ * X_ * W_, T_)), gamma * cogram(PI * P_ * X_, T_), ROW,
                       "C6 E||Pi P X W||^2 = gamma ||Pi P X||^2: rbar = t_sim(P X), every n")
    assert_nc_identity(gram(P_ * X_, T_), gram(PI * X_, T_) + gram(PI_PERP * P_ * PI_PERP * X_, T_), DOUBLY,
                       "C6 ||P X||^2 = ||Pi X||^2 + ||Pi_perp P Pi_perp X||^2 (doubly stochastic), every n")
    T_Q = {**T_SYM, Q_: QT_}
    assert_nc_identity(transpose(C_, T_Q), C_, [], "C6 C = Q^T P Q symmetric, every n")
    # (n-1) mu^2 = ||Pi_perp P Pi_perp||^2 = ||Q C Q^T||^2 = ||C Q^T||^2 = ||C||^2 (Gram matrices, Q^T Q = I;
    # C5 gives Pi_perp P Pi_perp = Q C Q^T), the sum of C's squared eigenvalues (spectral theorem)
    check_helmert_basis()
    assert_nc_identity(gram(Q_ * (C_ * QT_), T_Q), gram(C_ * QT_, T_Q), BASIS, "C6 ||Q C Q^T|| = ||C Q^T||, every n")
    assert_nc_identity(cogram(C_ * QT_, T_Q), cogram(C_, T_Q), BASIS, "C6 ||C Q^T|| = ||C||, every n")
    return SymbolicResult("reduced", "every n: r monotone in xi2/xi1 (derivative sign) with xi2 <= delta, xi1 = 1 "
                                     "(C5); E[W W^T] = gamma I gives rbar = t_sim(P X); ||P X||^2 split "
                                     "(doubly stochastic); C symmetric and (n-1) mu^2 = ||C||_F^2 (Helmert basis), "
                                     "so mu <= delta; explicit at n = 2, 3",
                          facts=(SUBMULT, SPECTRAL))


@register("C7")
def check_c7() -> SymbolicResult:
    r"""C7 ([YZ] linear rate): $\mathrm{odds}_{k+1} = \mathrm{odds}_k(\xi_1/\xi_2)^2 \ge \mathrm{odds}_k\bar\delta^{-2}$
    (C2, C5 with $\xi_1 = 1$), so by induction $\mathrm{odds}_k \ge \mathrm{odds}_0\bar\delta^{-2k}$, and
    $t_{div} = 1/(1 + \mathrm{odds}) \le 1/\mathrm{odds}$. The sharp one-step ratio of $t_{div}$ is
    $\bar\delta^2(1+\mathrm{odds})/(\bar\delta^2 + \mathrm{odds}) > \bar\delta^2$: Q-linear with ratio
    $\bar\delta^2$ only asymptotically (R-linear with rate $\bar\delta^2$ from the start)."""
    a, b, a2, b2 = sp.symbols("a b a2 b2", positive=True)
    odds = a / b
    assert_identity(a2 / b2, odds * (sp.sqrt(a2 / a) / sp.sqrt(b2 / b))**2, "C7 odds(Y) = odds(X) (xi1/xi2)^2")
    assert_identity(b / (a + b), 1 / (1 + odds), "C7 t_div = 1/(1 + odds)")
    assert_sign(1 / odds - 1 / (1 + odds), "positive", "C7 1/(1 + odds) < 1/odds")
    odds0, odds_k, dbar = sp.symbols("odds0 odds_k dbar", positive=True)
    e, h = sp.symbols("e h", nonnegative=True)  # xi2 = dbar/(1+e) <= dbar; odds_k = odds0 dbar^(-2k) + h
    k = sp.Symbol("k", integer=True, nonnegative=True)
    xi2 = dbar / (1 + e)
    assert_sign(odds_k / xi2**2 - odds_k / dbar**2, "nonnegative", "C7 xi2 <= dbar => odds_{k+1} >= odds_k/dbar^2")
    bound = lambda j: odds0 * dbar**(-2 * j)  # noqa: E731  the claimed lower bound on odds_j, defined once
    # the induction: one step from odds_k = bound(k) + h (h >= 0) gives at least odds_k/dbar^2 (above), which is
    # bound(k + 1) plus h/dbar^2 >= 0: the step's target is tied to the same bound at k + 1
    assert_identity(sp.powsimp(bound(k) / dbar**2), sp.powsimp(bound(k + 1)), "C7 bound(k)/dbar^2 = bound(k + 1)")
    assert_identity(sp.powsimp((bound(k) + h) / dbar**2 - bound(k + 1)), h / dbar**2,
                    "C7 induction step odds_k dbar^-2 >= odds0 dbar^-2(k+1)")
    assert_identity(sp.powsimp(1 / bound(k)), dbar**(2 * k) / odds0, "C7 t_div_k <= 1/odds_k <= dbar^2k/odds0")
    # one step: t_div' = 1/(1 + odds') with odds' = o/xi2^2 >= o/dbar^2, so t_div' <= dbar^2/(dbar^2 + o)
    o = odds_k
    assert_sign(1 / (1 + o / dbar**2) - 1 / (1 + o / xi2**2), "nonnegative", "C7 xi2 <= dbar => t_div' <= "
                "1/(1 + o/dbar^2)")
    assert_identity(1 / (1 + o / dbar**2), dbar**2 / (dbar**2 + o), "C7 1/(1 + o/dbar^2) = dbar^2/(dbar^2 + o)")
    ratio = (dbar**2 / (dbar**2 + o)) / (1 / (1 + o))  # that bound over t_div = 1/(1 + o)
    assert_identity(ratio - dbar**2, dbar**2 * (1 - dbar**2) / (dbar**2 + o), "C7 one-step t_div ratio - dbar^2")
    P, X = _sym2(sp.Rational(1, 4)), sp.Matrix([[2], [0]])  # delta = 1/2, odds(X) = 1
    t_div = lambda Z: sqnorm(Pi_perp(2) * Z) / sqnorm(Z)  # noqa: E731
    assert_identity(t_div(P * X) / t_div(X), ratio.subs({dbar: sp.Rational(1, 2), o: 1}), "C7 n = 2 witness 2/5")
    return SymbolicResult("reduced", "every n (scalar algebra in the squared norms): odds recursion (C2), "
                                     "induction step, per-step t_div ratio dbar^2(1+odds)/(dbar^2+odds) > dbar^2 "
                                     "(n = 2 witness: 2/5 vs 1/4); xi1 = 1, xi2 <= dbar from C5",
                          facts=(SUBMULT, SPECTRAL))


@register("C8")
def check_c8() -> SymbolicResult:
    r"""C8 [R] exact counterexamples. n = 2: $X = [2, -1]^T$, $P = [[0, 1], [3/5, 2/5]]$: $r = 5/41 < 1$,
    $\xi_1/\xi_2 = 1/3 < 1/\delta = 5/3$, C6's bound $125/53 > r$; C5's general bounds still hold.
    Every entry positive (a softmax matrix), n = 3: $X = [-3, 2, -1]^T$,
    $P = [[1/10, 1/2, 2/5], [1/10, 7/10, 1/5], [3/5, 3/10, 1/10]]$: $r = 1/74$, $\delta = (1 + \sqrt{41})/20$."""
    R = sp.Rational
    X, P = sp.Matrix([[2], [-1]]), sp.Matrix([[0, 1], [R(3, 5), R(2, 5)]])
    Y = P * X
    s, r = t_sim(X), t_sim(Y) / t_sim(X)
    require((s, t_sim(Y), r) == (R(1, 10), R(1, 82), R(5, 41)), f"C8 t_sim: got {(s, t_sim(Y), r)}")
    require(P.eigenvals() == {1: 1, R(-3, 5): 1}, f"C8 spectrum: got {P.eigenvals()}")
    delta = R(3, 5)
    xi1 = sp.sqrt(sqnorm(Pi(2) * Y) / sqnorm(Pi(2) * X))
    xi2 = sp.sqrt(sqnorm(Pi_perp(2) * Y) / sqnorm(Pi_perp(2) * X))
    require((xi1, xi2) == (R(1, 5), R(3, 5)), f"C8 growth factors: got {(xi1, xi2)}")
    require(xi1 / xi2 == R(1, 3) < 1 / delta, "C8 C5's symmetric corollary xi1/xi2 >= 1/delta fails")
    bound = 1 / (s + delta**2 * (1 - s))
    require(bound == R(125, 53) and r < 1 < bound, f"C8 C6's bound: got {bound} vs r = {r}")
    omega = sp.sqrt(sqnorm(P.T * sp.ones(2, 1) - sp.ones(2, 1)) / 2)
    require(abs(xi1 - 1) <= omega * sp.sqrt((1 - s) / s), "C8 C5's general xi1 bound holds")  # 4/5 <= 6/5
    # strictly positive P (theory.counterexample_positive, found by proofs_check._search): a softmax matrix
    X = sp.Matrix([-3, 2, -1])
    P = sp.Matrix([[R(1, 10), R(1, 2), R(2, 5)], [R(1, 10), R(7, 10), R(1, 5)], [R(3, 5), R(3, 10), R(1, 10)]])
    require(min(P) > 0 and P * sp.ones(3, 1) == sp.ones(3, 1), "C8 positive P is positive and row-stochastic")
    Y = P * X
    s, r = t_sim(X), t_sim(Y) / t_sim(X)
    require((Y.T, s, t_sim(Y), r) == (sp.Matrix([[R(3, 10), R(9, 10), R(-13, 10)]]), R(2, 21), R(1, 777), R(1, 74)),
            f"C8 positive: got PX = {Y.T}, t_sim {s} -> {t_sim(Y)}, r = {r}")
    lam = sp.Symbol("lambda")
    assert_identity(P.charpoly(lam).as_expr(), (lam - 1) * (lam**2 + lam / 10 - R(1, 10)), "C8 positive: chi_P")
    delta = (1 + sp.sqrt(41)) / 20  # the larger root modulus of lambda^2 + lambda/10 - 1/10
    require(sorted(abs(e) for e in P.eigenvals()) == sorted([delta, (sp.sqrt(41) - 1) / 20, 1]),
            f"C8 positive: spectrum {P.eigenvals()}")
    bound = 1 / (s + delta**2 * (1 - s))
    require(r < 1 < bound, f"C8 positive: C6's bound {bound} vs r = {r}")
    xi1, xi2 = (sp.sqrt(sqnorm(M * Y) / sqnorm(M * X)) for M in (Pi(3), Pi_perp(3)))
    require(xi1 * delta < xi2, "C8 positive: C5's symmetric corollary xi1/xi2 >= 1/delta fails")
    return SymbolicResult("example", "exact rationals: n = 2, r = 5/41 < 1, xi1/xi2 = 1/3 < 5/3, bound 125/53; "
                                     "every entry > 0, n = 3, r = 1/74 < 1 < C6's bound, delta = (1+sqrt 41)/20")


@register("C9")
def check_c9() -> SymbolicResult:
    r"""C9 [R] $Y = X + PXW$, $P$ doubly stochastic, $\gamma = \sigma_w^2 d$:
    $\mathbb{E}\|\Pi Y\|^2 = (1+\gamma)\|\Pi X\|^2$,
    $\mathbb{E}\|\Pi_\perp Y\|^2 = \|\Pi_\perp X\|^2 + \gamma\|\Pi_\perp P\Pi_\perp X\|^2$;
    odds ratio $\ge (1+\gamma)/(1+\gamma\delta^2)$ (equality at n = 2), $> 1$ iff $\delta < 1$,
    $\to 1$ as $\gamma \to 0$. A bound on the odds ratio, not on $\bar r$ (which tends to 1 as $s \to 1$)."""
    gamma = sigma**2 * 2  # d = 2
    W = tokens("w", 2, 2)
    for n, P in ((2, _sym2(a1)), (3, doubly_stochastic("b", 3))):
        X = tokens("x", n, 2)
        Y = X + P * X * W
        assert_identity(gaussian_expectation(sqnorm(Pi(n) * Y), W, sigma**2), (1 + gamma) * sqnorm(Pi(n) * X),
                        f"C9 E||Pi Y||^2, n = {n}")
        assert_identity(gaussian_expectation(sqnorm(Pi_perp(n) * Y), W, sigma**2),
                        sqnorm(Pi_perp(n) * X) + gamma * sqnorm(Pi_perp(n) * P * Pi_perp(n) * X),
                        f"C9 E||Pi_perp Y||^2, n = {n}")
    # odds ratio of expectations R = (1+g) b/(b + g e), e = ||Pi_perp P Pi_perp X||^2 = delta^2 b - h, h >= 0
    A, e, g, delta = sp.symbols("A e g delta", positive=True)
    h = sp.Symbol("h", nonnegative=True)
    b = (e + h) / delta**2
    R = ((1 + g) * A / (b + g * e)) / (A / b)
    assert_sign(R - (1 + g) / (1 + g * delta**2), "nonnegative", "C9 odds ratio >= (1+g)/(1+g delta^2)")
    bound = (1 + g) / (1 + g * delta**2)
    assert_identity(bound - 1, g * (1 - delta**2) / (1 + g * delta**2), "C9 bound - 1 = g(1-delta^2)/(...)")
    require(sp.limit(bound, g, 0) == 1, "C9 bound -> 1 as gamma -> 0")
    # every n and d: the two expectations from E[W] = 0, E[W W^T] = gamma I and 1^T P = 1^T, P 1 = 1
    Y = X_ + P_ * X_ * W_
    E = lambda e: gaussian_nc_expectation(e, [(W_, WT_)], g)  # noqa: E731
    assert_nc_identity(E(cogram(PI * Y, T_)), (1 + g) * cogram(PI * X_, T_), DOUBLY, "C9 E||Pi Y||^2, every n")
    assert_nc_identity(E(cogram(PI_PERP * Y, T_)),
                       cogram(PI_PERP * X_, T_) + g * cogram(PI_PERP * P_ * PI_PERP * X_, T_), DOUBLY,
                       "C9 E||Pi_perp Y||^2, every n")
    # the odds ratio (not rbar: rbar -> 1 as s -> 1) needs ||Pi_perp P Pi_perp X|| <= delta ||Pi_perp X||
    return SymbolicResult("reduced", "expectations proved for every n, d (E[W W^T] = gamma I, rewriting with "
                                     "1^T P = 1^T, P 1 = 1; explicit at n = 2, 3); the odds ratio bound "
                                     "(1+gamma)/(1+gamma delta^2) from ||Pi_perp P Pi_perp X|| <= delta ||Pi_perp X||"
                                     " (a ratio of expectations)",
                          facts=(SUBMULT, SPECTRAL))


@register("C10")
def check_c10() -> SymbolicResult:
    r"""C10 [R] $Y = \sum_h P_h X W_h$, H = 2, independent $W_h$: cross terms vanish,
    $\mathbb{E}\|Y\|^2 = \gamma\sum_h\|P_hX\|^2$, $\mathbb{E}\|\Pi Y\|^2 = H\gamma\|\Pi X\|^2$; at n = 2
    $\bar r = 1/(s + \mathrm{mean}_h(\delta_h^2)(1-s))$ exactly; general n: $\|\Pi_\perp P_h\Pi_\perp X\| \le \delta_h
    \|\Pi_\perp X\|$ (spectral theorem) and $\bar r$ decreasing in $\mathbb{E}\|\Pi_\perp Y\|^2$."""
    gamma, H = sigma**2 * 2, 2  # d_out = 2
    W1, W2, X = tokens("u", 2, 2), tokens("v", 2, 2), tokens("x", 2, 2)
    P1, P2 = _sym2(a1), _sym2(a2)
    Y = P1 * X * W1 + P2 * X * W2
    ws = list(W1) + list(W2)
    E = lambda expr: gaussian_expectation(expr, ws, sigma**2)  # noqa: E731
    assert_identity(E(sqnorm(Y)), gamma * (sqnorm(P1 * X) + sqnorm(P2 * X)), "C10 E||Y||^2 (no cross terms)")
    assert_identity(E(sqnorm(Pi(2) * Y)), H * gamma * sqnorm(Pi(2) * X), "C10 E||Pi Y||^2 = H gamma ||Pi X||^2")
    deltas2 = [(1 - 2 * a1)**2, (1 - 2 * a2)**2]
    assert_identity(E(sqnorm(Pi_perp(2) * Y)), gamma * sum(deltas2) * sqnorm(Pi_perp(2) * X),
                    "C10 E||Pi_perp Y||^2 = gamma sum_h delta_h^2 ||Pi_perp X||^2, n = 2")
    A, B, Eperp = sp.symbols("A B E_perp", positive=True)  # ||Pi X||^2, ||Pi_perp X||^2, E||Pi_perp Y||^2
    s = A / (A + B)
    rbar = lambda Ep: (H * gamma * A / (H * gamma * A + Ep)) / s  # noqa: E731
    mean_d2 = sum(deltas2) / H
    assert_identity(rbar(gamma * sum(deltas2) * B), 1 / (s + mean_d2 * (1 - s)), "C10 rbar at n = 2")
    assert_sign(sp.diff(rbar(Eperp), Eperp), "negative", "C10 rbar decreasing in E||Pi_perp Y||^2")
    # every n (H = 2 heads, independent W_h): cross terms vanish; Pi part grows by H gamma; the centred part is
    # gamma sum_h ||Pi_perp P_h Pi_perp X||^2 <= gamma sum_h delta_h^2 ||Pi_perp X||^2 (spectral theorem)
    g = sp.Symbol("gamma", positive=True)
    Yn = P_ * X_ * W_ + P2_ * X_ * W2_
    En = lambda e: gaussian_nc_expectation(e, [(W_, WT_), (W2_, W2T_)], g)  # noqa: E731
    assert_nc_identity(En(cogram(Yn, T_)), g * (cogram(P_ * X_, T_) + cogram(P2_ * X_, T_)), DOUBLY,
                       "C10 E||Y||^2 = gamma sum_h ||P_h X||^2 (no cross terms), every n")
    assert_nc_identity(En(cogram(PI * Yn, T_)), H * g * cogram(PI * X_, T_), DOUBLY,
                       "C10 E||Pi Y||^2 = H gamma ||Pi X||^2, every n")
    assert_nc_identity(En(cogram(PI_PERP * Yn, T_)),
                       g * (cogram(PI_PERP * P_ * PI_PERP * X_, T_) + cogram(PI_PERP * P2_ * PI_PERP * X_, T_)),
                       DOUBLY, "C10 E||Pi_perp Y||^2 = gamma sum_h ||Pi_perp P_h Pi_perp X||^2, every n")
    return SymbolicResult("reduced", "every n, checked at H = 2 (one pair of heads; any H sums the same terms over "
                                     "pairs, a step not checked here): expectations by E[W_h W_g^T] = [h = g] gamma I "
                                     "and rewriting; rbar decreasing in E||Pi_perp Y||^2, equal to the bound at n = 2 "
                                     "(explicit, H = 2, d = 2); ||Pi_perp P_h Pi_perp X|| <= delta_h ||Pi_perp X||",
                          facts=(SUBMULT, SPECTRAL))
