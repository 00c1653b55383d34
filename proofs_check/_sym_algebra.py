r"""Identities for every n: matrices as noncommutative symbols, reduced by the rules that define them.

A matrix of unspecified size is a noncommutative sympy symbol (``A`` and its transpose ``AT``); a product is a
word. What makes $\Pi$, $P$, $U$ special is written as rewriting rules on words, each one a definition:
$\mathbf 1^T\mathbf 1 = n$ (so $\Pi = \mathbf 1\mathbf 1^T/n$ gives $\Pi^2 = \Pi$ by rewriting, not by fiat),
$P\mathbf 1 = \mathbf 1$ (row-stochastic), $\mathbf 1^T P = \mathbf 1^T$ (doubly stochastic), $UU^T = I$
(orthogonal). :func:`normal_form` expands and rewrites to a fixed point; two sides are equal for every n when
their normal forms agree. Squared norms are compared as Gram matrices ($\|M\|^2 = \mathrm{tr}(MM^T)$, and equal
Gram matrices have equal traces), so no cyclic trace rule is needed. A false identity leaves a non-zero normal
form and fails (tests/test_symbolic.py shows it).

Block forms in the basis $V = [\mathbf 1/\sqrt n \mid Q]$ are explicit 2 x 2 sympy matrices whose entries are
such symbols (the blocks $b^T$, $C$), so their products keep the order of the factors.
:func:`check_helmert_basis` proves, with symbolic indices, that the Helmert columns are orthonormal and
orthogonal to $\mathbf 1$ for every n: $V$ exists at every size.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import sympy as sp

from .symbolic import SymbolicCheckFailed, assert_identity

__all__ = ["nc", "Rule", "normal_form", "transpose", "assert_nc_identity", "gaussian_nc_expectation",
           "check_helmert_basis", "n", "one", "oneT", "PI", "PI_PERP", "ONES", "gram", "cogram"]

Rule = tuple[tuple[sp.Symbol, ...], sp.Expr]  # a word (tuple of nc symbols) and what replaces it


def nc(names: str) -> tuple[sp.Symbol, ...]:
    """Noncommutative symbols (matrices of unspecified size)."""
    return sp.symbols(names, commutative=False, seq=True)


def _terms(expr: sp.Expr) -> Iterable[tuple[sp.Expr, list[sp.Symbol]]]:
    """(commutative coefficient, word) for each term of the expanded ``expr``; powers are spelled out."""
    for term in sp.Add.make_args(sp.expand(expr)):
        c, factors = term.args_cnc()
        word: list[sp.Symbol] = []
        for f in factors:
            if f.is_Pow:
                if not (f.exp.is_Integer and f.exp > 0):
                    raise SymbolicCheckFailed(f"cannot rewrite the power {f}")
                word += [f.base] * int(f.exp)
            else:
                word.append(f)
        yield sp.Mul(*c), word


def _find(word: list[sp.Symbol], lhs: Sequence[sp.Symbol]) -> int:
    k = len(lhs)
    for i in range(len(word) - k + 1):
        if tuple(word[i:i + k]) == tuple(lhs):
            return i
    return -1


def normal_form(expr: sp.Expr, rules: Sequence[Rule], *, max_rounds: int = 200) -> sp.Expr:
    """Expand ``expr`` and rewrite every term by the first applicable rule until none applies."""
    for _ in range(max_rounds):
        out, changed = sp.Integer(0), False
        for c, word in _terms(expr):
            for lhs, rhs in rules:
                i = _find(word, lhs)
                if i >= 0:
                    out += c * sp.Mul(*word[:i]) * rhs * sp.Mul(*word[i + len(lhs):])
                    changed = True
                    break
            else:
                out += c * sp.Mul(*word)
        expr = sp.expand(out)
        if not changed:
            return expr
    raise SymbolicCheckFailed(f"rewriting did not terminate in {max_rounds} rounds")


def transpose(expr: sp.Expr, T: dict[sp.Symbol, sp.Symbol]) -> sp.Expr:
    """Transpose of a polynomial in nc symbols: each word reversed, each letter mapped by ``T`` (both ways)."""
    both = {**T, **{v: k for k, v in T.items()}}
    out = sp.Integer(0)
    for c, word in _terms(expr):
        missing = [w for w in word if w not in both]
        if missing:
            raise SymbolicCheckFailed(f"no transpose given for {missing[0]}")
        out += c * sp.Mul(*(both[w] for w in reversed(word)))
    return out


def assert_nc_identity(lhs, rhs, rules: Sequence[Rule], what: str) -> None:
    """``lhs == rhs`` for every size: the normal form of ``lhs - rhs`` (entrywise for a block matrix) is 0."""
    diff = lhs - rhs
    entries = list(diff) if isinstance(diff, sp.MatrixBase) else [diff]
    for e in entries:
        res = normal_form(e, rules)
        if res != 0:
            raise SymbolicCheckFailed(f"{what}: normal form {res} is not 0")


def gaussian_nc_expectation(expr: sp.Expr, pairs: Sequence[tuple[sp.Symbol, sp.Symbol]], gamma: sp.Expr
                            ) -> sp.Expr:
    r"""$\mathbb{E}$ over independent Gaussian $W_h$ (iid $N(0, \sigma_w^2)$ entries, $d_{out}$ columns) of a
    polynomial in which each term holds at most one $W$ and one $W^T$: $\mathbb{E}W_h = 0$,
    $\mathbb{E}W_hW_g^T = [h = g]\,\gamma I$ with $\gamma = \sigma_w^2 d_{out}$ (a Gram matrix is a sum over the
    $d_{out}$ columns, each of covariance $\sigma_w^2 I$). ``pairs``: the ``(W_h, W_h^T)`` symbols."""
    letters = {s: (h, side) for h, pair in enumerate(pairs) for side, s in enumerate(pair)}
    total = sp.Integer(0)
    for c, word in _terms(expr):
        hits = [(i, letters[w]) for i, w in enumerate(word) if w in letters]
        if not hits:
            total += c * sp.Mul(*word)
        elif len(hits) == 1:
            continue  # E[W] = 0
        elif len(hits) == 2 and hits[0][1][1] == 0 and hits[1][1][1] == 1 and hits[1][0] == hits[0][0] + 1:
            if hits[0][1][0] == hits[1][1][0]:  # E[W_h W_h^T] = gamma I; independent heads give 0
                i = hits[0][0]
                total += c * gamma * sp.Mul(*word[:i]) * sp.Mul(*word[i + 2:])
        else:
            raise SymbolicCheckFailed(f"gaussian_nc_expectation handles one adjacent W W^T per term; got {word}")
    return sp.expand(total)


def check_helmert_basis() -> None:
    r"""Helmert columns $q_k = (1, \dots, 1, -k, 0, \dots)/\sqrt{k(k+1)}$ ($k$ ones), $k = 1..n-1$, for every n:
    $\|q_k\| = 1$, $q_j \perp q_k$ ($j < k$), $q_k \perp \mathbf 1$, computed as sums over symbolic supports.
    So $V = [\mathbf 1/\sqrt n \mid Q]$ is orthogonal at every size, which the block forms rely on."""
    j, k, i = sp.symbols("j k i", integer=True, positive=True)
    norm = lambda m: sp.sqrt(m * (m + 1))  # noqa: E731
    one_to = lambda m, f: sp.summation(f, (i, 1, m))  # noqa: E731 -- sum over rows 1..m
    # q_k: rows 1..k hold 1, row k+1 holds -k; q_j for j < k lives on rows 1..j+1 <= k, where q_k is 1
    assert_identity((one_to(k, 1) + k**2) / norm(k)**2, 1, "Helmert ||q_k|| = 1")
    assert_identity((one_to(j, 1) - j) / (norm(j) * norm(k)), 0, "Helmert q_j . q_k = 0 for j < k")
    assert_identity(one_to(k, 1) - k, 0, "Helmert 1 . q_k = 0")


# ------------------------------------------------------------------------------ the objects, every size

n = sp.Symbol("n", integer=True, positive=True)
one, oneT = nc("one oneT")  # the all-ones column (n, 1) and its transpose
PI = one * oneT / n  # Pi = 1 1^T / n: Pi^2 = Pi follows from 1^T 1 = n by rewriting
PI_PERP = 1 - PI  # the nc unit 1 is the identity matrix
ONES: list[Rule] = [((oneT, one), n)]  # 1^T 1 = n


def gram(M: sp.Expr, T: dict[sp.Symbol, sp.Symbol]) -> sp.Expr:
    r"""$M^TM$: its trace is $\|M\|^2$, so equal Gram matrices give equal squared norms."""
    return transpose(M, T) * M


def cogram(M: sp.Expr, T: dict[sp.Symbol, sp.Symbol]) -> sp.Expr:
    r"""$MM^T$: also traces to $\|M\|^2$ (the form that lets a right factor $U$ meet $U^T$)."""
    return M * transpose(M, T)
