r"""Symbolic checks of the exact identities: C1-C4 and C11-C13 (registered in :mod:`proofs_check.symbolic`).

Every identity is proved for all n in noncommutative symbols reduced by their defining rules
(:mod:`proofs_check._sym_algebra`: $\mathbf 1^T\mathbf 1 = n$, $P\mathbf 1 = \mathbf 1$, $UU^T = I$, ...), or as
a 2 x 2 block form in the basis $V = [\mathbf{1}/\sqrt n \mid Q]$ (Helmert columns, orthonormal for every n).
The explicit checks at n = 2, 3 (d = 2 or 3) stay as a cross-check of those rules. C3's "P > 0 => delta < 1"
rests on Perron-Frobenius, so C3 is "reduced" although its identities are proved for all n.
"""

from __future__ import annotations

from itertools import permutations

import sympy as sp

from ._sym_algebra import (ONES, PI, PI_PERP, assert_nc_identity, check_helmert_basis, cogram, gram, nc, normal_form,
                           one, oneT)
from ._sym_algebra import n as n_sym
from .symbolic import (Pi, Pi_perp, SymbolicCheckFailed, SymbolicResult, assert_identity, assert_sign, assert_zero,
                       basis, doubly_stochastic, helmert, ones, register, require, row_stochastic, sqnorm,
                       symmetric_stochastic, t_sim, tokens)

X_, XT_, W_, WT_ = nc("X XT W WT")  # tokens (n, d) and a right factor (d, d'), any sizes
P_, PT_, P2_, P2T_ = nc("P PT P2 P2T")  # attention matrices (n, n)
T_ = {one: oneT, X_: XT_, W_: WT_, P_: PT_, P2_: P2T_}  # transposes
ROW = ONES + [((P_, one), one), ((oneT, PT_), oneT), ((P2_, one), one), ((oneT, P2T_), oneT)]  # P 1 = 1


@register("C1")
def check_c1() -> SymbolicResult:
    r"""C1 [R]: $\|\Pi X\|^2 + \|\Pi_\perp X\|^2 = \|X\|^2$; $t_{sim}$ invariant under $cX$, $XU$, $SX$;
    equal tokens give $\Pi_\perp X = 0$ ($t_{sim} = 1$), a zero mean token gives $\Pi X = 0$ ($t_{sim} = 0$)."""
    c = sp.Symbol("c", real=True, nonzero=True)
    t = sp.Symbol("t", real=True)
    R = sp.Matrix([[sp.cos(t), -sp.sin(t)], [sp.sin(t), sp.cos(t)]])
    for n in (2, 3):
        X = tokens("x", n, 2)
        assert_identity(sqnorm(Pi(n) * X) + sqnorm(Pi_perp(n) * X), sqnorm(X), f"C1 partition, n = {n}")
        assert_identity(t_sim(c * X), t_sim(X), f"C1 t_sim(cX) = t_sim(X), n = {n}")
        for U in (R, R * sp.diag(1, -1)):  # every 2x2 orthogonal matrix: rotation or reflection
            assert_identity(sqnorm(X * U), sqnorm(X), f"C1 ||XU|| = ||X||, n = {n}")
            assert_identity(sqnorm(Pi(n) * X * U), sqnorm(Pi(n) * X), f"C1 ||Pi XU|| = ||Pi X||, n = {n}")
        for perm in permutations(range(n)):
            S = sp.Matrix(n, n, lambda i, j: int(perm[i] == j))
            assert_identity(t_sim(S * X), t_sim(X), f"C1 t_sim(SX) = t_sim(X), S = {perm}")
        assert_zero(Pi_perp(n) * (ones(n) * tokens("y", 1, 2)), f"C1 equal tokens: Pi_perp X = 0, n = {n}")
        X0 = X.copy()
        X0[n - 1, :] = -sum((X[i, :] for i in range(n - 1)), sp.zeros(1, 2))
        assert_zero(Pi(n) * X0, f"C1 zero mean token: Pi X = 0, n = {n}")
    # every n: Pi = 1 1^T/n with 1^T 1 = n; U U^T = I; a permutation S has S 1 = 1, 1^T S = 1^T, S^T S = I
    U, UT, S, ST, yT = nc("U UT S ST yT")
    T = {**T_, U: UT, S: ST}
    rules = ONES + [((U, UT), 1), ((ST, S), 1), ((S, one), one), ((oneT, S), oneT), ((ST, one), one),
                    ((oneT, ST), oneT)]
    X = X_
    assert_nc_identity(gram(X, T), gram(PI * X, T) + gram(PI_PERP * X, T), rules, "C1 partition, every n")
    assert_nc_identity(gram(PI * c * X, T) / c**2, gram(PI * X, T), rules, "C1 ||Pi cX|| = |c| ||Pi X||, every n")
    assert_nc_identity(cogram(X * U, T), cogram(X, T), rules, "C1 ||XU|| = ||X||, every n")
    assert_nc_identity(cogram(PI * X * U, T), cogram(PI * X, T), rules, "C1 ||Pi XU|| = ||Pi X||, every n")
    assert_nc_identity(gram(S * X, T), gram(X, T), rules, "C1 ||SX|| = ||X||, every n")
    assert_nc_identity(gram(PI * S * X, T), gram(PI * X, T), rules, "C1 ||Pi SX|| = ||Pi X||, every n")
    assert_nc_identity(PI_PERP * one * yT, 0, rules, "C1 equal tokens X = 1 y^T: Pi_perp X = 0, every n")
    assert_nc_identity(PI * X, 0, rules + [((oneT, X), 0)], "C1 zero mean token 1^T X = 0: Pi X = 0, every n")
    # the converses: t_sim = 1 makes ||Pi_perp X|| = 0 by the partition, so X = Pi X = 1 (1^T X / n), equal tokens;
    # t_sim = 0 makes Pi X = 0, so 1^T X = 1^T Pi X = 0, a zero mean token
    assert_nc_identity(PI * X + PI_PERP * X, X, rules, "C1 X = Pi X + Pi_perp X (t_sim = 1 => equal tokens), every n")
    assert_nc_identity(oneT * PI * X, oneT * X, rules, "C1 1^T Pi X = 1^T X (t_sim = 0 => zero mean), every n")
    return SymbolicResult("proved", "every n: words in Pi = 1 1^T/n, U, S reduced by 1^T 1 = n, U U^T = I, "
                                    "S 1 = 1, 1^T S = 1^T, S^T S = I (partition, cX, XU, SX, equal tokens and zero "
                                    "mean, both ways); cross-checked with explicit symbols at n = 2, 3")


@register("C2")
def check_c2() -> SymbolicResult:
    r"""C2 ([YZ] Prop 2.3): $r = \xi_1^2/(\xi_1^2 s + \xi_2^2(1-s))$; $r - 1$ has the sign of $\xi_1 - \xi_2$;
    $\mathrm{odds}(Y)/\mathrm{odds}(X) = (\xi_1/\xi_2)^2$. Pure norm algebra, so valid for every n, d and map."""
    a, b, a2, b2 = sp.symbols("a b a2 b2", positive=True)  # ||Pi X||^2, ||Pi_perp X||^2, same for Y
    s = a / (a + b)
    xi1, xi2 = sp.sqrt(a2 / a), sp.sqrt(b2 / b)
    r = (a2 / (a2 + b2)) / s
    den = xi1**2 * s + xi2**2 * (1 - s)
    assert_identity(r, xi1**2 / den, "C2 escalation identity")
    assert_identity(r - 1, (1 - s) * (xi1**2 - xi2**2) / den, "C2 r - 1 = (1-s)(xi1^2 - xi2^2)/den")
    assert_sign(den, "positive", "C2 denominator")
    assert_sign(1 - s, "positive", "C2 1 - s")
    assert_identity((a2 / b2) / (a / b), (xi1 / xi2)**2, "C2 odds form")
    return SymbolicResult("proved", "exact in the four squared norms (positive symbols): identity, "
                                    "r - 1 = (1-s)(xi1^2 - xi2^2)/(positive), odds form; every n, d")


@register("C3")
def check_c3() -> SymbolicResult:
    r"""C3 [YZ]: row-stochastic $P$: $P\mathbf 1 = \mathbf 1$, $P\Pi = \Pi$, $\Pi_\perp P \Pi = 0$,
    $V^T P V = [[1, b^T], [0, C]]$, $\chi_P(\lambda) = (\lambda - 1)\chi_C(\lambda)$; closed under products;
    $\Pi(XW) = (\Pi X)W$; n = 2 Perron-Frobenius instance ($0 < a, b < 1 \Rightarrow |1 - a - b| < 1$)."""
    lam = sp.Symbol("lambda")
    for n in (2, 3, 4):
        V = basis(n)
        assert_identity(V.T * V, sp.eye(n), f"C3 V orthogonal, n = {n}")
        assert_identity(V.T * Pi(n) * V, sp.diag(1, *[0] * (n - 1)), f"C3 V^T Pi V = diag(1, 0), n = {n}")
    n = 3
    P, P2 = row_stochastic("p", n), row_stochastic("q", n)
    assert_identity(P * ones(n), ones(n), "C3 P 1 = 1")
    assert_identity(P * Pi(n), Pi(n), "C3 P Pi = Pi")
    assert_zero(Pi_perp(n) * P * Pi(n), "C3 Pi_perp P Pi = 0")
    M = basis(n).T * P * basis(n)
    assert_identity(M[:, 0], sp.eye(n)[:, 0], "C3 first column of V^T P V is e1")
    Q = helmert(n)
    C = Q.T * P * Q
    assert_identity(M[1:, 1:], C, "C3 lower block of V^T P V is C = Q^T P Q")
    assert_identity(P.charpoly(lam).as_expr(), (lam - 1) * C.charpoly(lam).as_expr(), "C3 spec(P) = {1} u spec(C)")
    assert_identity(P * P2 * ones(n), ones(n), "C3 products of row-stochastic matrices are row-stochastic")
    X, W = tokens("x", n, 2), tokens("w", 2, 2)
    assert_identity(Pi(n) * (X * W), (Pi(n) * X) * W, "C3 Pi (X W) = (Pi X) W")
    # n = 2: P = [[1-a, a], [b, 1-b]] has spectrum {1, 1-a-b}; 0 < a, b < 1 puts 1-a-b in (-1, 1)
    a, b, abar, bbar = sp.symbols("a b abar bbar", positive=True)  # abar = 1 - a, bbar = 1 - b
    P = sp.Matrix([[1 - a, a], [b, 1 - b]])
    require(P.eigenvals() == {1: 1, 1 - a - b: 1}, f"C3 n = 2 eigenvalues: got {P.eigenvals()}")
    lam2 = 1 - a - b
    assert_sign(1 - lam2, "positive", "C3 lambda_2 < 1")
    assert_sign((1 + lam2).subs({a: 1 - abar, b: 1 - bbar}), "positive", "C3 lambda_2 > -1")
    # every n: words reduced by 1^T 1 = n and P 1 = 1
    assert_nc_identity(P_ * one, one, ROW, "C3 P 1 = 1, every n")
    assert_nc_identity(P_ * PI, PI, ROW, "C3 P Pi = Pi, every n")
    assert_nc_identity(PI_PERP * P_ * PI, 0, ROW, "C3 Pi_perp P Pi = 0, every n")
    assert_nc_identity(P_ * P2_ * one, one, ROW, "C3 products of row-stochastic matrices are row-stochastic, every n")
    assert_nc_identity(PI * (X_ * W_), (PI * X_) * W_, ROW, "C3 Pi (X W) = (Pi X) W, every n")
    # V = [1/sqrt n | Q] is orthogonal at every n (Helmert); V e1 = 1/sqrt n, so the first column of V^T P V is
    # V^T P 1/sqrt n = V^T 1/sqrt n = V^T V e1 = e1: the lower-left block vanishes
    check_helmert_basis()
    V, VT, e1 = nc("V VT e1")
    assert_nc_identity(VT * P_ * V * e1, VT * V * e1, ROW + [((V, e1), one / sp.sqrt(n_sym))],
                       "C3 V^T P V e1 = V^T V e1 = e1, every n")
    # block form [[1, b^T], [0, C]] with block symbols, every n: products keep it; spec(P) = {1} u spec(C)
    b, C, b2, C2, yT, u, w = nc("bT C b2T C2 yT u w")
    lam = sp.Symbol("lambda")
    form, form2 = sp.Matrix([[1, b], [0, C]]), sp.Matrix([[1, b2], [0, C2]])
    prod = form * form2
    assert_nc_identity(sp.Matrix([prod[0, 0], prod[1, 0]]), sp.Matrix([1, 0]), [], "C3 products keep the form")
    assert_nc_identity(form * sp.diag(1, 0), sp.diag(1, 0), [], "C3 block form: P Pi = Pi")
    assert_nc_identity(sp.Matrix([[0, yT]]) * form, lam * sp.Matrix([[0, yT]]), [((yT, C), lam * yT)],
                       "C3 y^T C = lambda y^T => [0, y^T] is a left eigenvector of V^T P V")
    right = form * sp.Matrix([u, w]) - lam * sp.Matrix([u, w])  # P~ [u; w] = lambda [u; w] forces C w = lambda w
    assert_nc_identity(right[1], C * w - lam * w, [], "C3 lower block of (P~ - lambda)[u; w] is (C - lambda) w")
    assert_nc_identity(right[0].subs(w, 0), (1 - lam) * u, [], "C3 w = 0 leaves (1 - lambda) u: lambda = 1")
    return SymbolicResult("reduced", "every n: P 1 = 1, P Pi = Pi, Pi_perp P Pi = 0, products, Pi(XW) = (Pi X)W "
                                     "by rewriting; V orthogonal (Helmert, symbolic sums); block form "
                                     "[[1, b^T], [0, C]], its products and spec(P) = {1} u spec(C) (as sets, "
                                     "eigenvectors of the block form; multiplicities exact at n = 3); P > 0 => "
                                     "delta < 1 cited (n = 2 instance exact)", facts=("Perron-Frobenius",))


@register("C4")
def check_c4() -> SymbolicResult:
    r"""C4 [R]: $\Pi P \Pi_\perp = \frac1n \mathbf 1 (c - \mathbf 1)^T$, $c = P^T\mathbf 1$, rank one so
    $\omega = \|\cdot\|_2 = \|\cdot\|_F = \|c - \mathbf 1\|/\sqrt n$; $P\Pi - \Pi P = -\frac1n\mathbf 1(c-\mathbf 1)^T$,
    so $\omega = 0 \iff$ doubly stochastic $\iff P\Pi = \Pi P$; symmetric $\Rightarrow$ doubly stochastic."""
    n = 3
    P = row_stochastic("p", n)
    c = P.T * ones(n)
    D = Pi(n) * P * Pi_perp(n)
    assert_identity(D, ones(n) * (c - ones(n)).T / n, "C4 Pi P Pi_perp = 1 (c-1)^T / n")
    G = D.T * D
    assert_identity(G.trace(), sqnorm(c - ones(n)) / n, "C4 ||Pi P Pi_perp||_F^2 = ||c - 1||^2 / n")
    assert_identity(G * G, G.trace() * G, "C4 rank one: (D^T D)^2 = tr(D^T D) D^T D, so ||D||_2 = ||D||_F")
    assert_identity(P * Pi(n) - Pi(n) * P, -D, "C4 P Pi - Pi P = -Pi P Pi_perp")
    S = symmetric_stochastic("s", n)
    assert_identity(S * ones(n), ones(n), "C4 symmetric P is row-stochastic")
    assert_identity(S.T * ones(n), ones(n), "C4 symmetric row-stochastic => column sums 1")
    B = doubly_stochastic("b", n)
    assert_identity(B * Pi(n), Pi(n) * B, "C4 doubly stochastic => P Pi = Pi P")
    assert_zero(Pi(n) * B * Pi_perp(n), "C4 doubly stochastic => omega = 0")
    # every n, rewriting with 1^T 1 = n and P 1 = 1; c^T - 1^T = 1^T P - 1^T
    D = PI * P_ * PI_PERP
    assert_nc_identity(D, one * (oneT * P_ - oneT) / n_sym, ROW, "C4 Pi P Pi_perp = 1 (c-1)^T / n, every n")
    assert_nc_identity(P_ * PI - PI * P_, -D, ROW, "C4 P Pi - Pi P = -Pi P Pi_perp, every n")
    doubly = ROW + [((oneT, P_), oneT), ((PT_, one), one)]  # 1^T P = 1^T
    assert_nc_identity(D, 0, doubly, "C4 doubly stochastic => Pi P Pi_perp = 0, every n")
    assert_nc_identity(P_ * PI, PI * P_, doubly, "C4 doubly stochastic => P Pi = Pi P, every n")
    # symmetric: 1^T P = 1^T P^T = (P 1)^T = 1^T. ROW holds P 1 = 1 and its transpose 1^T P^T = 1^T; P = P^T
    # turns the latter into 1^T P = 1^T. Without that symmetry the same words do not reduce (checked: the
    # identity is not a consequence of row-stochasticity alone, which would make this check vacuous)
    symmetric = [(tuple(P_ if w == PT_ else w for w in lhs), rhs) for lhs, rhs in ROW]
    if normal_form(oneT * P_ - oneT, ROW) == 0:
        raise SymbolicCheckFailed("C4: 1^T P = 1^T reduced without P = P^T: the rules prove too much")
    assert_nc_identity(oneT * P_, oneT, symmetric, "C4 symmetric row-stochastic => 1^T P = 1^T, every n")
    # rank one D = u v^T (any sizes): (D^T D)^2 = (u^T u)(v^T v) D^T D and tr(D^T D) = (u^T u)(v^T v), so the
    # eigenvalues of D^T D are 0 and ||D||_F^2: ||D||_2 = ||D||_F; here u = 1, v^T = (1^T P - 1^T)/n
    uu, vv = sp.symbols("uTu vTv", positive=True)
    u, uT, v, vT = nc("u uT v vT")
    DtD = gram(u * vT, {u: uT, v: vT})
    assert_nc_identity(DtD * DtD, uu * vv * DtD, [((uT, u), uu), ((vT, v), vv)], "C4 rank one, every n")
    return SymbolicResult("proved", "every n: Pi P Pi_perp = 1 (c-1)^T/n, P Pi - Pi P = -Pi P Pi_perp, doubly "
                                    "stochastic => both vanish, symmetric => doubly stochastic (rewriting with "
                                    "1^T 1 = n, P 1 = 1 and its transpose, P^T = P); rank one so 2-norm = Frobenius; explicit at n = 3")


@register("C11")
def check_c11() -> SymbolicResult:
    r"""C11 [YZ] de-escalation $Y = (I - \tau\Pi)X$: $\Pi Y = (1-\tau)\Pi X$, $\Pi_\perp Y = \Pi_\perp X$,
    $t_{sim}(Y) = (1-\tau)^2 s/((1-\tau)^2 s + 1 - s)$; $\tau = 1$ gives 0; $\tau \in (0, 2)$ lowers it."""
    tau = sp.Symbol("tau", real=True)
    for n in (2, 3):
        X = tokens("x", n, 2)
        Y = (sp.eye(n) - tau * Pi(n)) * X
        assert_identity(Pi(n) * Y, (1 - tau) * Pi(n) * X, f"C11 Pi Y = (1 - tau) Pi X, n = {n}")
        assert_identity(Pi_perp(n) * Y, Pi_perp(n) * X, f"C11 Pi_perp Y = Pi_perp X, n = {n}")
    X = tokens("x", 2, 2)
    s = t_sim(X)
    t_Y = (1 - tau)**2 * s / ((1 - tau)**2 * s + 1 - s)
    assert_identity(t_sim((sp.eye(2) - tau * Pi(2)) * X), t_Y, "C11 t_sim(Y), n = 2")
    assert_zero(t_Y.subs(tau, 1), "C11 tau = 1 gives t_sim(Y) = 0")
    # with shares s, 1 - s > 0: t_sim(Y) - s = s (1-s) tau (tau - 2)/(positive) < 0 on tau in (0, 2)
    s_, g = sp.symbols("s g", positive=True)  # g = (1 - tau)^2
    t_Ys = g * s_ / (g * s_ + 1 - s_)
    assert_identity(t_Ys - s_, s_ * (1 - s_) * (g - 1) / (g * s_ + 1 - s_), "C11 t_sim(Y) - s")
    assert_identity((1 - tau)**2 - 1, tau * (tau - 2), "C11 (1 - tau)^2 < 1 iff tau in (0, 2)")
    # every n: Pi = 1 1^T/n with 1^T 1 = n (so Pi^2 = Pi by rewriting)
    Y = (1 - tau * PI) * X_
    assert_nc_identity(PI * Y, (1 - tau) * PI * X_, ONES, "C11 Pi Y = (1 - tau) Pi X, every n")
    assert_nc_identity(PI_PERP * Y, PI_PERP * X_, ONES, "C11 Pi_perp Y = Pi_perp X, every n")
    # hence ||Pi Y||^2 = (1-tau)^2 a, ||Pi_perp Y||^2 = b with a, b = ||Pi X||^2, ||Pi_perp X||^2 (C1 partition)
    a, b = sp.symbols("a b", positive=True)
    assert_identity((1 - tau)**2 * a / ((1 - tau)**2 * a + b), t_Ys.subs({g: (1 - tau)**2, s_: a / (a + b)}),
                    "C11 t_sim(Y), every n")
    return SymbolicResult("proved", "every n: Pi Y = (1-tau) Pi X, Pi_perp Y = Pi_perp X (rewriting with "
                                    "1^T 1 = n), t_sim(Y) from the two squared norms; explicit at n = 2, 3")


@register("C12")
def check_c12() -> SymbolicResult:
    r"""C12 [CB]: $CB(X) = (I + \Pi)X/2 = \frac12(I - (-1)\Pi)X$; $\xi_1 = 1$, $\xi_2 = 1/2$,
    $r = 1/(s + (1-s)/4) = 1 + 3(1-s)/(1+3s) \ge 1$; uniform attention $P = \Pi$ has $C = Q^T\Pi Q = 0$
    ($\delta = 0$) and $t_{sim}(\Pi X) = 1$."""
    for n in (2, 3):
        X = tokens("x", n, 2)
        CB = (X + ones(n) * (ones(n).T * X) / n) / 2  # each token averaged with the mean token
        assert_identity(CB, (sp.eye(n) - (-1) * Pi(n)) * X / 2, f"C12 CB = (I - (-1) Pi) X / 2, n = {n}")
        assert_identity(Pi(n) * CB, Pi(n) * X, f"C12 xi1 = 1, n = {n}")
        assert_identity(Pi_perp(n) * CB, Pi_perp(n) * X / 2, f"C12 xi2 = 1/2, n = {n}")
        assert_zero(helmert(n).T * Pi(n) * helmert(n), f"C12 C(Pi) = 0 so delta(Pi) = 0, n = {n}")
        assert_identity(sqnorm(Pi(n) * (Pi(n) * X)), sqnorm(Pi(n) * X), f"C12 t_sim(Pi X) = 1, n = {n}")
    X = tokens("x", 2, 2)
    s = t_sim(X)
    assert_identity(t_sim((sp.eye(2) + Pi(2)) * X / 2) / s, 1 / (s + (1 - s) / 4), "C12 r, n = 2")
    s_, sbar = sp.symbols("s sbar", positive=True)  # shares: s + sbar = 1
    r = 1 / (s_ + (1 - s_) / 4)
    assert_identity(r - 1, 3 * (1 - s_) / (1 + 3 * s_), "C12 r - 1 = 3(1-s)/(1+3s)")
    assert_sign((s_ + sbar) / (s_ + sbar / 4) - 1, "positive", "C12 r > 1 for s in (0, 1) (homogeneous form)")
    # every n: CB(X) = (X + 1 xbar^T)/2 with 1 xbar^T = Pi X; Q^T 1 = 0 (Helmert columns are orthogonal to 1)
    CB = (X_ + PI * X_) / 2
    assert_nc_identity(PI * CB, PI * X_, ONES, "C12 Pi CB = Pi X (xi1 = 1), every n")
    assert_nc_identity(PI_PERP * CB, PI_PERP * X_ / 2, ONES, "C12 Pi_perp CB = Pi_perp X / 2 (xi2 = 1/2), every n")
    assert_nc_identity(PI_PERP * PI * X_, 0, ONES, "C12 Pi_perp Pi X = 0 (t_sim(Pi X) = 1), every n")
    check_helmert_basis()
    Q, QT = nc("Q QT")
    assert_nc_identity(QT * PI * Q, 0, ONES + [((QT, one), 0)], "C12 C(Pi) = Q^T Pi Q = 0 (delta = 0), every n")
    a, b = sp.symbols("a b", positive=True)  # ||Pi X||^2, ||Pi_perp X||^2
    assert_identity((a / (a + b / 4)) / (a / (a + b)), r.subs(s_, a / (a + b)), "C12 r from xi1, xi2, every n")
    return SymbolicResult("proved", "every n: xi1 = 1, xi2 = 1/2, t_sim(Pi X) = 1 (rewriting with 1^T 1 = n), "
                                    "C(Pi) = 0 (Q^T 1 = 0, Helmert), r from the squared norms; r - 1 = "
                                    "3(1-s)/(1+3s) factored; explicit at n = 2, 3")


@register("C13")
def check_c13() -> SymbolicResult:
    r"""C13 [R]: feature centring $J = I_d - \mathbf 1\mathbf 1^T/d$ commutes with $\Pi$ ($(\Pi X)J = \Pi(XJ)$);
    LayerNorm $(x - \bar x)/\sqrt{\mathrm{var} + \epsilon}\, g + b$ of equal tokens gives equal tokens
    ($t_{sim} = 1$)."""
    n, d = 2, 3
    X = tokens("x", n, d)
    J = sp.eye(d) - sp.ones(d, d) / d
    assert_identity((Pi(n) * X) * J, Pi(n) * (X * J), "C13 (Pi X) J = Pi (X J)")
    eps = sp.Symbol("epsilon", positive=True)
    g, b = tokens("g", 1, d), tokens("b", 1, d)

    def layer_norm(row: sp.Matrix) -> sp.Matrix:
        centred = row * J
        var = sqnorm(centred) / d
        return centred.multiply_elementwise(g) / sp.sqrt(var + eps) + b

    for n in (2, 3):
        Xeq = ones(n) * tokens("y", 1, d)  # n equal tokens
        Z = sp.Matrix.vstack(*(layer_norm(Xeq[i, :]) for i in range(n)))
        assert_zero(Pi_perp(n) * Z, f"C13 LN(equal tokens) has equal tokens, n = {n}")
        assert_identity(sqnorm(Pi(n) * Z), sqnorm(Z), f"C13 t_sim(LN(X)) = 1, n = {n}")
    # every n, d: centring is a right factor J, so (Pi X) J = Pi (X J); LN maps each row by one function f, so
    # equal tokens X = 1 y^T give LN(X) = 1 f(y)^T =: 1 z^T, which Pi_perp kills and Pi keeps
    J, zT = nc("J zT")
    assert_nc_identity((PI * X_) * J, PI * (X_ * J), ONES, "C13 (Pi X) J = Pi (X J), every n")
    assert_nc_identity(PI_PERP * one * zT, 0, ONES, "C13 LN(1 y^T) = 1 z^T: Pi_perp LN(X) = 0, every n")
    assert_nc_identity(gram(PI * one * zT, {one: oneT, zT: J}), gram(one * zT, {one: oneT, zT: J}), ONES,
                       "C13 ||Pi LN(X)|| = ||LN(X)|| (t_sim = 1), every n")
    return SymbolicResult("proved", "every n, d: centring commutes with Pi, LN of equal tokens has equal tokens "
                                    "and t_sim = 1 (rewriting with 1^T 1 = n); LN explicit at n = 2, 3 (d = 3, "
                                    "symbolic g, b, eps)")
