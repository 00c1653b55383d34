r"""Symbolic (sympy) checks of claims C1-C13 of shared/THEORY.md: shared machinery and the registry.

Each check says exactly what it established (:class:`SymbolicResult`):

- ``"proved"`` (*proved for all n*): the argument is carried by sympy at symbolic size: words in
  noncommutative symbols reduced by the defining rules ($\mathbf 1^T\mathbf 1 = n$, $P\mathbf 1 = \mathbf 1$,
  $UU^T = I$; :mod:`proofs_check._sym_algebra`), 2 x 2 block forms in the basis $V = [\mathbf 1/\sqrt n \mid Q]$
  (Helmert columns proved orthonormal for every n), or scalar algebra in the squared norms.
- ``"verified"`` (*verified symbolically at n <= k*): exact only for explicit matrices of symbols up to size k.
- ``"reduced"`` (*reduced to named facts*): an inequality reduced by exact identities to standard facts that
  are cited, not re-proved; the facts are named (keys of :data:`FACTS`), and ``n_max`` says whether the
  reducing identities hold for every n (``None``) or were checked only up to a size.
- ``"example"`` (*proved by exact example*): an existence claim (C8) settled by exact rational instances.

Explicit small-n checks are kept beside the general ones as a cross-check of the rules. The bodies live in
``_sym_identities`` (C1-C4, C11-C13) and ``_sym_inequalities`` (C5-C10).

Every check computes: a false identity raises :class:`SymbolicCheckFailed`, and :func:`run_symbolic`
turns any exception into status ``"failed"`` with the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sympy as sp

__all__ = ["SymbolicResult", "SymbolicCheckFailed", "SYMBOLIC", "FACTS", "STATUSES", "run_symbolic",
           "assert_identity", "assert_zero", "assert_sign", "require", "gaussian_expectation"]

# The standard facts an inequality may be reduced to: cited, never re-proved here.
FACTS: dict[str, str] = {
    "spectral theorem": "a real symmetric matrix is orthogonally diagonalisable: its 2-norm is its spectral radius "
                        "and its squared Frobenius norm the sum of its squared eigenvalues",
    "||AB||_F <= ||A||_2 ||B||_F": "the Frobenius norm of a product is at most operator norm times Frobenius norm",
    "triangle inequality": "||A + B|| <= ||A|| + ||B||",
    "Perron-Frobenius": "an entrywise positive matrix has a simple eigenvalue of largest modulus; every other "
                        "eigenvalue has strictly smaller modulus",
}

STATUSES = ("proved", "verified", "reduced", "example", "failed")


@dataclass(frozen=True)
class SymbolicResult:
    """What a symbolic check established. ``label`` is the ledger's status column.

    ``status``: ``"proved"`` (for all n), ``"verified"`` (explicit symbols at n <= ``n_max``), ``"reduced"``
    (to the named ``facts``; reducing identities for all n when ``n_max`` is None), ``"example"`` (an existence
    claim settled by exact instances) or ``"failed"``. Inconsistent combinations are rejected, so a label
    cannot claim more than the check did.
    """

    status: str
    method: str  # one line: what was checked, at which sizes (or why it failed)
    n_max: int | None = None
    facts: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}; got {self.status!r}")
        if self.status in ("proved", "example") and (self.n_max is not None or self.facts):
            raise ValueError(f"status {self.status!r} takes no n_max and no facts; got {self.n_max}, {self.facts}")
        if self.status == "verified" and (not isinstance(self.n_max, int) or self.n_max < 2 or self.facts):
            raise ValueError(f"status 'verified' needs n_max >= 2 and no facts; got {self.n_max}, {self.facts}")
        if self.status == "reduced":
            unknown = [f for f in self.facts if f not in FACTS]
            if not self.facts or unknown:
                raise ValueError(f"status 'reduced' needs facts named in FACTS; got {self.facts}")

    @property
    def label(self) -> str:
        if self.status == "proved":
            return "proved for all n"
        if self.status == "verified":
            return f"verified at n <= {self.n_max}"
        if self.status == "reduced":
            return "reduced to named facts" + ("" if self.n_max is None else f", n <= {self.n_max}")
        if self.status == "example":
            return "proved by exact example"
        return "FAILED"


class SymbolicCheckFailed(AssertionError):
    """A symbolic identity or sign condition did not hold."""


SYMBOLIC: dict[str, Callable[[], SymbolicResult]] = {}


def register(claim_id: str) -> Callable[[Callable[[], SymbolicResult]], Callable[[], SymbolicResult]]:
    """Decorator: file the check of ``claim_id`` in :data:`SYMBOLIC`."""
    def wrap(check: Callable[[], SymbolicResult]) -> Callable[[], SymbolicResult]:
        if claim_id in SYMBOLIC:
            raise ValueError(f"a symbolic check for {claim_id} is already registered")
        SYMBOLIC[claim_id] = check
        return check
    return wrap


def run_symbolic(claim_id: str) -> SymbolicResult:
    """Run the symbolic check of ``claim_id``; any exception or failed assertion gives status ``"failed"``.

    An unknown ``claim_id`` is a caller error and raises ``ValueError``.
    """
    if claim_id not in SYMBOLIC:
        raise ValueError(f"no symbolic check for {claim_id!r}; expected one of {', '.join(SYMBOLIC)}")
    try:
        result = SYMBOLIC[claim_id]()
        if not isinstance(result, SymbolicResult) or result.status == "failed":
            raise SymbolicCheckFailed(f"check returned {result!r}")
        return result
    except Exception as exc:  # noqa: BLE001 -- the ledger records every failure, whatever its kind
        reason = " ".join(str(exc).split()) or type(exc).__name__
        return SymbolicResult("failed", f"{type(exc).__name__}: {reason[:300]}")


# ----------------------------------------------------------------------------------------------- assertions

def _is_zero(e: sp.Expr) -> bool:
    e = sp.expand(e)
    return e == 0 or sp.simplify(e) == 0


def assert_zero(expr, what: str) -> None:
    """Assert ``expr`` (scalar or explicit Matrix) is exactly zero."""
    if isinstance(expr, sp.MatrixBase):
        entries = list(expr)
    else:
        entries = [expr]
    bad = [e for e in entries if not _is_zero(e)]
    if bad:
        raise SymbolicCheckFailed(f"{what}: residual {sp.simplify(bad[0])} is not 0")


def assert_identity(lhs, rhs, what: str) -> None:
    """Assert ``lhs == rhs`` exactly (scalars or matrices), i.e. ``simplify(lhs - rhs) == 0``."""
    assert_zero(lhs - rhs, what)


def require(condition: bool, what: str) -> None:
    """Raise :class:`SymbolicCheckFailed` unless ``condition`` (not ``assert``: survives ``python -O``)."""
    if not bool(condition):  # sympy's true is not Python's True; an undecidable relation raises TypeError
        raise SymbolicCheckFailed(what)


def assert_sign(expr, sign: str, what: str) -> None:
    """Assert sympy's assumptions decide ``expr`` (factored) is ``positive``/``nonnegative``/``negative``."""
    e = sp.factor(sp.together(expr))
    if getattr(e, f"is_{sign}") is not True:
        raise SymbolicCheckFailed(f"{what}: cannot show {e} is {sign}")


# ------------------------------------------------------------------------------------------ the objects

def ones(n: int) -> sp.Matrix:
    return sp.ones(n, 1)


def Pi(n: int) -> sp.Matrix:
    r"""$\Pi = \mathbf{1}\mathbf{1}^T/n$."""
    return sp.ones(n, n) / n


def Pi_perp(n: int) -> sp.Matrix:
    return sp.eye(n) - Pi(n)


def helmert(n: int) -> sp.Matrix:
    """Q (n, n-1), exact: column k-1 is (1, ..., 1, -k, 0, ..., 0)/sqrt(k(k+1)) (as theory.complement_basis)."""
    return sp.Matrix(n, n - 1, lambda i, j: (1 if i <= j else -(j + 1) if i == j + 1 else 0)
                     / sp.sqrt((j + 1) * (j + 2)))


def basis(n: int) -> sp.Matrix:
    r"""$V = [\mathbf{1}/\sqrt n \mid Q]$ (n, n), orthogonal."""
    return (ones(n) / sp.sqrt(n)).row_join(helmert(n))


def tokens(name: str, n: int, d: int) -> sp.Matrix:
    """X (n, d) of real symbols ``name_i_j``."""
    return sp.Matrix(n, d, lambda i, j: sp.Symbol(f"{name}_{i}_{j}", real=True))


def row_stochastic(name: str, n: int) -> sp.Matrix:
    """P (n, n) with real symbols in the first n-1 columns and last column 1 - (sum of the others)."""
    P = sp.Matrix(n, n, lambda i, j: sp.Symbol(f"{name}_{i}_{j}", real=True))
    for i in range(n):
        P[i, n - 1] = 1 - sum(P[i, :n - 1])
    return P


def doubly_stochastic(name: str, n: int) -> sp.Matrix:
    """P (n, n): a free (n-1, n-1) block of real symbols, last row and column fixed by unit sums."""
    P = row_stochastic(name, n)
    for j in range(n - 1):
        P[n - 1, j] = 1 - sum(P[:n - 1, j])
    P[n - 1, n - 1] = 1 - sum(P[n - 1, :n - 1])
    return P


def symmetric_stochastic(name: str, n: int) -> sp.Matrix:
    """P = P^T (n, n): real symbols off the diagonal, diagonal 1 - (off-diagonal row sum)."""
    P = sp.Matrix(n, n, lambda i, j: sp.Symbol(f"{name}_{min(i, j)}_{max(i, j)}", real=True) if i != j else 0)
    for i in range(n):
        P[i, i] = 1 - sum(P[i, :])
    return P


def sqnorm(M: sp.Matrix) -> sp.Expr:
    """Squared Frobenius norm (entries real)."""
    return sum(e**2 for e in M)


def t_sim(X: sp.Matrix) -> sp.Expr:
    r"""D1: $\|\Pi X\|^2/\|X\|^2$."""
    return sqnorm(Pi(X.rows) * X) / sqnorm(X)


def gaussian_expectation(expr: sp.Expr, ws, var: sp.Expr) -> sp.Expr:
    r"""$\mathbb{E}[\mathrm{expr}]$ for ``ws`` iid $N(0, \mathrm{var})$, ``expr`` a polynomial of degree <= 2 in ``ws``.

    Moments: $\mathbb{E}w_i = 0$, $\mathbb{E}w_iw_j = \mathrm{var}\,[i = j]$ (used by C6, C9, C10).
    """
    ws = list(ws)
    total = sp.Integer(0)
    for monom, coeff in sp.Poly(sp.expand(expr), *ws).terms():
        degree = sum(monom)
        if degree > 2:
            raise ValueError(f"gaussian_expectation handles degree <= 2 in the ws; got a degree-{degree} term")
        if degree == 0:
            total += coeff
        elif 2 in monom:  # E[w_i^2] = var; E[w_i] = E[w_i w_j] = 0 otherwise
            total += coeff * var
    return sp.expand(total)


# The checks register themselves on import; sort the registry as C1..C13 for whoever iterates it.
from . import _sym_identities, _sym_inequalities  # noqa: E402,F401

for _cid in sorted(SYMBOLIC, key=lambda c: int(c[1:])):
    SYMBOLIC[_cid] = SYMBOLIC.pop(_cid)
