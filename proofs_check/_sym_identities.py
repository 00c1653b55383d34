r"""Symbolic checks of the exact identities: C1-C4 and C11-C13 (registered in :mod:`proofs_check.symbolic`).

Sizes: explicit matrices of real symbols at n = 2, 3 (d = 2 or 3); general n through the block form
$\Pi = \mathrm{diag}(1, 0)$, $\Pi_\perp = \mathrm{diag}(0, I_{n-1})$ in the basis $V = [\mathbf{1}/\sqrt n \mid Q]$
(whose first column and $V^T \Pi V$ are checked exactly at n = 2, 3, 4).
"""

from __future__ import annotations

from itertools import permutations

import sympy as sp

from .symbolic import (Pi, Pi_perp, SymbolicResult, assert_identity, assert_sign, assert_zero, basis,
                       block_projectors, doubly_stochastic, helmert, ones, register, require, row_stochastic, sqnorm,
                       symmetric_stochastic, t_sim, tokens)

n_ = sp.Symbol("n", integer=True, positive=True)  # symbolic n for the block forms
d_ = sp.Symbol("d", integer=True, positive=True)


def _block_tokens() -> sp.BlockMatrix:
    r"""$V^T X = [x; Z]$: mean coordinate $x$ (1, d) over the centred coordinates $Z$ (n-1, d), symbolic n, d."""
    return sp.BlockMatrix([[sp.MatrixSymbol("x", 1, d_)], [sp.MatrixSymbol("Z", n_ - 1, d_)]])


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
    # general n: in the basis V the Pythagorean split is a block identity (V orthogonal keeps norms)
    P1, P0 = block_projectors(n_)
    Xt = _block_tokens()
    gram = lambda M: sp.block_collapse(M.T * M)  # noqa: E731 -- ||M||^2 = tr(M^T M)
    assert_zero(gram(Xt) - gram(P1 * Xt) - gram(P0 * Xt), "C1 partition, general n (block form)")
    return SymbolicResult("proved", "exact at n = 2, 3 (d = 2: c, rotations/reflections U, all permutations S) "
                                    "and the partition for general n via block form")


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
    # general n: V^T P V = [[1, b^T], [0, C]] (first column e1 <=> P 1 = 1); the block identities follow
    P1, P0 = block_projectors(n_)
    form = lambda k: sp.BlockMatrix([[sp.Identity(1), sp.MatrixSymbol(f"b{k}", 1, n_ - 1)],  # noqa: E731
                                     [sp.ZeroMatrix(n_ - 1, 1), sp.MatrixSymbol(f"C{k}", n_ - 1, n_ - 1)]])
    assert_zero(form(1) * P1 - P1, "C3 P Pi = Pi, general n")
    assert_zero(P0 * form(1) * P1, "C3 Pi_perp P Pi = 0, general n")
    prod = sp.block_collapse(form(1) * form(2))
    assert_zero(prod.blocks[1, 0], "C3 products keep the form, general n (zero block)")
    assert_zero(prod.blocks[0, 0] - sp.Identity(1), "C3 products keep the form, general n (unit corner)")
    return SymbolicResult("proved", "exact at n = 3 (V at n = 2, 3, 4), n = 2 spectrum and Perron-Frobenius "
                                    "instance, general n via block form")


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
    return SymbolicResult("proved", "exact at n = 3 (general, symmetric and doubly stochastic P), "
                                    "rank one so 2-norm = Frobenius")


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
    # general n: only Pi^2 = Pi is used (noncommutative symbols)
    Pn, Xn = sp.symbols("Pi X", commutative=False)
    idem = lambda e: sp.expand(sp.expand(e).subs(Pn**2, Pn))  # noqa: E731
    assert_zero(idem(Pn * (1 - tau * Pn) * Xn - (1 - tau) * Pn * Xn), "C11 Pi Y, general n (Pi^2 = Pi)")
    assert_zero(idem((1 - Pn) * (1 - tau * Pn) * Xn - (1 - Pn) * Xn), "C11 Pi_perp Y, general n (Pi^2 = Pi)")
    return SymbolicResult("proved", "exact at n = 2, 3 and general n from Pi^2 = Pi (noncommutative symbols); "
                                    "t_sim(Y) formula exact at n = 2")


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
    return SymbolicResult("proved", "exact at n = 2, 3; r - 1 = 3(1-s)/(1+3s) factored")


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
    return SymbolicResult("proved", "exact at n = 2 (d = 3) for centring, n = 2, 3 (d = 3, symbolic g, b, eps) "
                                    "for LayerNorm")
