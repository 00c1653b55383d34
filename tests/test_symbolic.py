"""The symbolic (sympy) view of every claim: each check passes, says exactly what it proved, and can fail.

Runtime: the 13 checks take about 12 s together on 2 cores, each under 3 s.
"""

from fractions import Fraction

import numpy as np
import pytest
import sympy as sp

import theory
from proofs_check import _sym_identities
from proofs_check._search import exact_t_sim, search_positive_counterexample
from proofs_check._sym_algebra import (ONES, PI, PI_PERP, assert_nc_identity, check_helmert_basis,
                                       gaussian_nc_expectation, gram, nc, normal_form, one, oneT)
from proofs_check.symbolic import (FACTS, SYMBOLIC, SymbolicCheckFailed, SymbolicResult, assert_identity, assert_sign,
                                   gaussian_expectation, run_symbolic)

CLAIM_IDS = [c.id for c in theory.CLAIMS]
# What each check establishes. Identities: proved for all n. Inequalities rest on cited spectral/norm facts:
# reduced, never "proved" (C3 too: its identities hold for all n, but P > 0 => delta < 1 is Perron-Frobenius;
# C9's expectations hold for all n, its odds bound needs the spectral theorem). C8 is an existence claim.
STATUS = {"C1": "proved", "C2": "proved", "C3": "reduced", "C4": "proved", "C5": "reduced", "C6": "reduced",
          "C7": "reduced", "C8": "example", "C9": "reduced", "C10": "reduced", "C11": "proved", "C12": "proved",
          "C13": "proved"}
FACTS_NEEDED = {"C3": {"Perron-Frobenius"}, "C5": {"spectral theorem", "triangle inequality"},
                "C6": {"spectral theorem"}, "C9": {"spectral theorem", "||AB||_F <= ||A||_2 ||B||_F"},
                "C10": {"spectral theorem", "||AB||_F <= ||A||_2 ||B||_F"}}


@pytest.mark.parametrize("claim_id", CLAIM_IDS)
def test_symbolic_check_passes_for_every_claim(claim_id):
    result = run_symbolic(claim_id)
    assert result.status == STATUS[claim_id], result
    assert result.method
    assert FACTS_NEEDED.get(claim_id, set()) <= set(result.facts)
    # every general-n claim says so; no check claims more than explicit sizes without saying "every n"
    if result.status in ("proved", "reduced"):
        assert result.n_max is None and "every n" in result.method


def test_status_labels_say_what_was_proved():
    assert SymbolicResult("proved", "m").label == "proved for all n"
    assert SymbolicResult("verified", "m", n_max=3).label == "verified at n <= 3"
    assert SymbolicResult("reduced", "m", facts=("spectral theorem",)).label == "reduced to named facts"
    partly = SymbolicResult("reduced", "m", n_max=3, facts=("spectral theorem",))
    assert partly.label == "reduced to named facts, n <= 3"
    assert SymbolicResult("example", "m").label == "proved by exact example"


@pytest.mark.parametrize("bad", [
    dict(status="proved", method="m", n_max=3),  # "proved" must hold for all n
    dict(status="proved", method="m", facts=("spectral theorem",)),  # a cited fact makes it "reduced"
    dict(status="verified", method="m"),  # verified at which size?
    dict(status="reduced", method="m"),  # reduced to what?
    dict(status="reduced", method="m", facts=("it is well known",)),  # facts must be named in FACTS
    dict(status="QED", method="m"),
])
def test_a_status_cannot_claim_more_than_its_check(bad):
    with pytest.raises(ValueError):
        SymbolicResult(**bad)
    assert "spectral theorem" in FACTS and "Perron-Frobenius" in FACTS


def test_symbolic_registry_covers_exactly_the_thirteen_claims():
    assert list(SYMBOLIC) == CLAIM_IDS == [f"C{i}" for i in range(1, 14)]


def test_unknown_claim_id_is_rejected():
    with pytest.raises(ValueError, match="C14"):
        run_symbolic("C14")


def _escalation_terms():
    a, b, a2, b2 = sp.symbols("a b a2 b2", positive=True)
    s, xi1, xi2 = a / (a + b), sp.sqrt(a2 / a), sp.sqrt(b2 / b)
    return (a2 / (a2 + b2)) / s, s, xi1, xi2


def test_identity_helper_accepts_the_escalation_identity():
    r, s, xi1, xi2 = _escalation_terms()
    assert_identity(r, xi1**2 / (xi1**2 * s + xi2**2 * (1 - s)), "C2")


def test_identity_helper_rejects_escalation_identity_with_xi1_and_xi2_swapped():
    r, s, xi1, xi2 = _escalation_terms()
    with pytest.raises(SymbolicCheckFailed, match="C2 swapped"):
        assert_identity(r, xi2**2 / (xi2**2 * s + xi1**2 * (1 - s)), "C2 swapped")


def test_identity_helper_rejects_deescalation_with_one_plus_tau():
    tau = sp.Symbol("tau", real=True)
    X = sp.Matrix(3, 2, lambda i, j: sp.Symbol(f"x_{i}_{j}", real=True))
    Pi = sp.ones(3, 3) / 3
    with pytest.raises(SymbolicCheckFailed):
        assert_identity(Pi * (sp.eye(3) - tau * Pi) * X, (1 + tau) * Pi * X, "C11 with (1 + tau)")


def test_sign_helper_refuses_an_undecided_sign():
    a, b = sp.symbols("a b", positive=True)
    with pytest.raises(SymbolicCheckFailed):
        assert_sign(a - b, "positive", "a > b is not implied")


def test_run_symbolic_reports_a_false_check_as_failed(monkeypatch):
    def false_c2():
        r, s, xi1, xi2 = _escalation_terms()
        assert_identity(r, xi2**2 / (xi2**2 * s + xi1**2 * (1 - s)), "C2 swapped")
        return SymbolicResult("proved", "should not get here")

    monkeypatch.setitem(SYMBOLIC, "C2", false_c2)
    result = run_symbolic("C2")
    assert result.status == "failed" and "C2 swapped" in result.method


def test_run_symbolic_reports_an_exception_as_failed(monkeypatch):
    monkeypatch.setitem(SYMBOLIC, "C8", lambda: 1 / 0)
    assert run_symbolic("C8") == SymbolicResult("failed", "ZeroDivisionError: division by zero")


def test_gaussian_expectation_uses_the_second_moments():
    w1, w2, c = sp.symbols("w1 w2 c", real=True)
    var = sp.Symbol("var", positive=True)
    assert gaussian_expectation(c + 3 * w1 + w1 * w2 + 2 * w2**2, [w1, w2], var) == c + 2 * var
    with pytest.raises(ValueError, match="degree"):
        gaussian_expectation(w1**2 * w2, [w1, w2], var)


def test_exact_counterexample_matches_the_numeric_one():
    """C8: the sympy check's exact values agree with ``theory.counterexample_n2`` in float64."""
    X, P = theory.counterexample_n2()
    assert np.isclose(float(theory.token_similarity(X)), 1 / 10)
    assert np.isclose(float(theory.escalation_rate(X, P @ X)), 5 / 41)
    assert np.isclose(float(theory.slem(P)), 3 / 5)
    assert np.allclose([float(v) for v in theory.growth_factors(X, P @ X)], [1 / 5, 3 / 5])


# ------------------------------------------------------------------ every n: the rewriting can fail

P, PT, X, XT = nc("P PT X XT")
T = {one: oneT, P: PT, X: XT}
ROW = ONES + [((P, one), one), ((oneT, PT), oneT)]


def test_rewriting_derives_pi_idempotent_from_ones_t_ones_equal_n():
    assert normal_form(PI * PI - PI, ONES) == 0
    assert normal_form(PI * PI - PI, []) != 0  # without 1^T 1 = n nothing is proved


def test_every_n_identity_fails_when_false_C11_with_one_plus_tau():
    tau = sp.Symbol("tau", real=True)
    with pytest.raises(SymbolicCheckFailed, match="C11 wrong"):
        assert_nc_identity(PI * (1 - tau * PI) * X, (1 + tau) * PI * X, ONES, "C11 wrong")


def test_every_n_identity_fails_when_false_C1_partition_counted_twice():
    with pytest.raises(SymbolicCheckFailed):
        assert_nc_identity(gram(X, T), 2 * gram(PI * X, T) + gram(PI_PERP * X, T), ONES, "C1 wrong")


def test_every_n_identity_fails_when_false_C4_without_the_one_over_n():
    D = PI * P * PI_PERP
    assert_nc_identity(D, one * (oneT * P - oneT) / sp.Symbol("n", integer=True, positive=True), ROW, "C4")
    with pytest.raises(SymbolicCheckFailed):
        assert_nc_identity(D, one * (oneT * P - oneT), ROW, "C4 wrong")


def test_every_n_identity_needs_its_hypothesis_C4_symmetric_makes_doubly_stochastic():
    # the check had reduced P 1 to 1 before transposing, so it compared 1^T with itself whatever P was
    from proofs_check._sym_identities import PT_, ROW, P_

    with pytest.raises(SymbolicCheckFailed):  # row-stochastic alone does not give 1^T P = 1^T
        assert_nc_identity(oneT * P_, oneT, ROW, "C4 without symmetry")
    symmetric = [(tuple(P_ if w == PT_ else w for w in lhs), rhs) for lhs, rhs in ROW]
    assert_nc_identity(oneT * P_, oneT, symmetric, "C4 with P^T = P")


def test_every_n_identity_needs_its_hypothesis_C5_doubly_stochastic():
    # Pi P X = Pi X holds for doubly stochastic P, not for row-stochastic P: the rules must carry that
    with pytest.raises(SymbolicCheckFailed):
        assert_nc_identity(PI * P * X, PI * X, ROW, "C5 xi1 = 1 without 1^T P = 1^T")
    assert_nc_identity(PI * P * X, PI * X, ROW + [((oneT, P), oneT)], "C5 xi1 = 1")


def test_run_symbolic_fails_C3_when_the_row_stochastic_rule_is_wrong(monkeypatch):
    P_, one_ = _sym_identities.P_, one
    wrong = [rule for rule in _sym_identities.ROW if rule[0] != (P_, one_)] + [((P_, one_), 2 * one_)]
    monkeypatch.setattr(_sym_identities, "ROW", wrong)
    result = run_symbolic("C3")
    assert result.status == "failed" and "C3" in result.method


def test_gaussian_expectation_for_every_size_keeps_only_matched_pairs():
    A, AT, W, WT, V, VT = nc("A AT W WT V VT")
    g = sp.Symbol("gamma", positive=True)
    expr = A * W * WT * AT + A * W + A * V * WT * AT + X * XT
    assert gaussian_nc_expectation(expr, [(W, WT), (V, VT)], g) == g * A * AT + X * XT
    with pytest.raises(SymbolicCheckFailed):
        gaussian_nc_expectation(W * A * WT, [(W, WT)], g)  # not of the form E[W W^T]


def test_helmert_basis_is_orthonormal_for_every_n():
    check_helmert_basis()  # raises on failure
    n = 6  # and the explicit matrix the lemma describes agrees at one size
    Q = np.array([[(1 if i <= j else -(j + 1) if i == j + 1 else 0) / np.sqrt((j + 1) * (j + 2))
                   for j in range(n - 1)] for i in range(n)])
    np.testing.assert_allclose(Q.T @ Q, np.eye(n - 1), atol=1e-15)
    np.testing.assert_allclose(Q.T @ np.ones(n), 0, atol=1e-15)


# ------------------------------------------------------------------------------ C8, strictly positive P

def test_C8_positive_counterexample_is_exact_and_is_what_the_search_finds():
    X, P, r, hits = search_positive_counterexample(seed=0)
    assert r == Fraction(1, 74) and hits > 0
    assert all(p > 0 for row in P for p in row) and all(sum(row) == 1 for row in P)
    Xt, Pt = theory.counterexample_positive()
    np.testing.assert_array_equal(Xt.numpy(), np.array([[float(x[0])] for x in X]))
    np.testing.assert_allclose(Pt.numpy(), np.array([[float(p) for p in row] for row in P]), rtol=1e-15)
    Y = [[sum(P[i][k] * X[k][0] for k in range(3))] for i in range(3)]
    assert exact_t_sim(X) == Fraction(2, 21) and exact_t_sim(Y) == Fraction(1, 777)
    assert float(theory.escalation_rate(Xt, Pt @ Xt)) == pytest.approx(1 / 74, rel=1e-12)


def test_C8_symbolic_check_rejects_a_perturbed_positive_counterexample(monkeypatch):
    # the exact check compares with the encoded numbers: a different X (r = 5/14 here) must fail it
    real_matrix = sp.Matrix

    def perturbed(*args, **kwargs):
        M = real_matrix(*args, **kwargs)
        return real_matrix([-3, 2, 1]) if M.shape == (3, 1) and list(M) == [-3, 2, -1] else M

    monkeypatch.setattr(sp, "Matrix", perturbed)
    result = run_symbolic("C8")
    assert result.status == "failed" and "C8 positive" in result.method


def test_every_n_identity_needs_the_helmert_basis_C5_and_C6():
    # Pi_perp P Pi_perp = Q C Q^T rests on Q Q^T = Pi_perp (V = [1/sqrt n | Q] square and orthogonal), not on
    # Q Q^T = I (Q has n - 1 columns); ||Q C Q^T|| = ||C|| rests on Q^T Q = I
    from proofs_check._sym_inequalities import BASIS, C_, P_, ROW, Q_, QT_, T_SYM

    assert_nc_identity(Q_ * C_ * QT_, PI_PERP * P_ * PI_PERP, ROW + BASIS, "C5")
    with pytest.raises(SymbolicCheckFailed):
        assert_nc_identity(Q_ * C_ * QT_, PI_PERP * P_ * PI_PERP, ROW + [BASIS[0], ((Q_, QT_), sp.Integer(1))],
                           "C5 with Q Q^T = I")
    with pytest.raises(SymbolicCheckFailed):
        assert_nc_identity(Q_ * C_ * QT_, PI_PERP * P_ * PI_PERP, ROW + [BASIS[0]], "C5 without Q Q^T = Pi_perp")
    T = {**T_SYM, Q_: QT_}
    with pytest.raises(SymbolicCheckFailed):
        assert_nc_identity(gram(Q_ * (C_ * QT_), T), gram(C_ * QT_, T), [BASIS[1]], "C6 without Q^T Q = I")
