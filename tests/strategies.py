"""Hypothesis strategies: small, bounded, finite inputs (n <= 8, entries in [-10, 10]), float64 numpy.

Token matrices, row-stochastic (general and softmax), symmetric doubly stochastic (Birkhoff mixtures of
(S + S^T)/2) and orthogonal matrices.
"""

from __future__ import annotations

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

N_TOKENS = st.integers(2, 8)
N_FEATURES = st.integers(1, 6)
ENTRY = st.floats(-10, 10, allow_nan=False, allow_infinity=False, width=64)
WEIGHT = st.floats(0, 1, allow_nan=False, width=64)
BETA = st.floats(0, 8, allow_nan=False)
TAU = st.floats(-3, 3, allow_nan=False)


def _shares(X: np.ndarray) -> tuple[float, float]:
    xbar = X.mean(0)
    a = X.shape[0] * float(xbar @ xbar)
    b = float(((X - xbar) ** 2).sum())
    return a / (a + b), b / (a + b)


@st.composite
def token_matrices(draw, n=None, d=None, *, mixed: bool = False) -> np.ndarray:
    """X (n, d), non-zero; with ``mixed``, t_sim(X) in (1e-6, 1 - 1e-6) so growth factors are defined."""
    n = draw(N_TOKENS) if n is None else n
    d = draw(N_FEATURES) if d is None else d
    X = draw(arrays(np.float64, (n, d), elements=ENTRY))
    assume(np.abs(X).max() > 1e-3)
    if mixed:
        s, t = _shares(X)
        assume(1e-6 < s and 1e-6 < t)
    return X


@st.composite
def row_stochastic(draw, n=None) -> np.ndarray:
    """General row-stochastic P (n, n): non-negative rows normalised; zeros (and reducible P) allowed."""
    n = draw(N_TOKENS) if n is None else n
    W = draw(arrays(np.float64, (n, n), elements=WEIGHT))
    W[np.arange(n), draw(st.lists(st.integers(0, n - 1), min_size=n, max_size=n))] += 1e-3
    return W / W.sum(1, keepdims=True)


@st.composite
def softmax_matrices(draw, n=None) -> np.ndarray:
    """P = softmax(beta Z) row-wise: positive and row-stochastic, generally not symmetric."""
    n = draw(N_TOKENS) if n is None else n
    Z = draw(arrays(np.float64, (n, n), elements=st.floats(-3, 3, allow_nan=False)))
    E = np.exp(draw(BETA) * (Z - Z.max(1, keepdims=True)))
    return E / E.sum(1, keepdims=True)


@st.composite
def symmetric_doubly_stochastic(draw, n=None) -> np.ndarray:
    """Birkhoff mixture sum_j w_j (S_j + S_j^T)/2 of permutation matrices: symmetric, doubly stochastic."""
    n = draw(N_TOKENS) if n is None else n
    k = draw(st.integers(1, 4))
    perms = [draw(st.permutations(range(n))) for _ in range(k)]
    w = np.array(draw(st.lists(st.floats(0.05, 1), min_size=k, max_size=k)))
    w /= w.sum()
    P = np.zeros((n, n))
    for wj, p in zip(w, perms):
        S = np.eye(n)[list(p)]
        P += wj * (S + S.T) / 2
    return (P + P.T) / 2


@st.composite
def orthogonal_matrices(draw, d=None) -> np.ndarray:
    """U (d, d) orthogonal: a product of d Householder reflections of drawn vectors (entries in [-1, 1]).

    Every orthogonal d x d matrix is a product of at most d reflections (Cartan-Dieudonne), and a vector of
    norm <= 1e-3 contributes the identity, so all of O(d), both determinants, is reachable.
    """
    d = draw(N_FEATURES) if d is None else d
    U = np.eye(d)
    for _ in range(d):
        v = draw(arrays(np.float64, d, elements=st.floats(-1, 1, allow_nan=False)))
        if np.linalg.norm(v) > 1e-3:
            v = v / np.linalg.norm(v)
            U = U - 2 * np.outer(U @ v, v)
    return U
