"""The claim registry ties four views together; the ledger runs and fails honestly."""

import pathlib
import subprocess
import sys

import pytest

import theory as T
from proofs_check import LedgerRow, NumericResult, SymbolicResult, build_ledger, format_ledger, run_numeric
from proofs_check.numeric import NUMERIC
from proofs_check.symbolic import SYMBOLIC

ROOT = pathlib.Path(__file__).resolve().parents[1]
IDS = [c.id for c in T.CLAIMS]


def test_registry_holds_the_thirteen_claims_of_theory_md_in_order():
    assert IDS == [f"C{i}" for i in range(1, 14)]
    assert {c.tag for c in T.CLAIMS} <= {"YZ", "R", "CB"}


@pytest.mark.parametrize("claim_id", IDS)
def test_every_claim_has_code_a_symbolic_check_a_numeric_sweep_and_tests(claim_id):
    c = T.claim(claim_id)
    assert c.api and all(callable(getattr(T, name)) for name in c.api)
    assert claim_id in SYMBOLIC and claim_id in NUMERIC
    tests_text = "".join(p.read_text() for p in (ROOT / "tests").glob("test_*.py") if p.name != "test_ledger.py")
    assert f"{claim_id}_" in tests_text or f'"{claim_id}"' in tests_text  # a test named after the claim
    theory_text = "".join(p.read_text() for p in (ROOT / "theory").glob("*.py") if p.name != "_claims.py")
    assert f"{claim_id} " in theory_text or f"{claim_id}:" in theory_text or f"({claim_id}" in theory_text


def test_numeric_result_fails_below_tolerance():
    assert NumericResult(tried=1, worst_slack=-1e-12).passed
    assert not NumericResult(tried=1, worst_slack=-1e-3).passed


@pytest.mark.parametrize("wrong_slem", [
    lambda P: P.new_ones(P.shape[:-2]),  # "no gap": passed the old check delta <= 1
    lambda P: T.diversity_gain(P),  # sigma instead of delta: equal only for normal P
])
def test_C3_sweep_fails_when_slem_is_wrong(monkeypatch, wrong_slem):
    monkeypatch.setattr(T, "slem", wrong_slem)
    assert not run_numeric("C3").passed


def test_C5_sweep_says_how_many_instances_it_tried_and_drops_none():
    result = run_numeric("C5")
    assert result.passed and "6,000 instances" in result.note and "none dropped" in result.note


def test_numeric_sweeps_are_reproducible_from_the_seed():
    a, b = run_numeric("C2", seed=3), run_numeric("C2", seed=3)
    assert a == b and a.tried > 1000


def test_ledger_rows_for_a_subset():
    rows = build_ledger(seed=0, claim_ids=["C2", "C11"])
    assert [r.claim.id for r in rows] == ["C2", "C11"] and all(r.passed for r in rows)
    text = format_ledger(rows)
    assert "Prop 2.3" in text and "2 of 2 claims pass" in text
    assert "symbolic: 2 proved for all n" in text


@pytest.mark.parametrize("symbolic, passes", [
    (SymbolicResult("proved", "m"), True),
    (SymbolicResult("verified", "m", n_max=3), True),
    (SymbolicResult("reduced", "m", facts=("spectral theorem",)), True),
    (SymbolicResult("example", "m"), True),
    (SymbolicResult("failed", "SymbolicCheckFailed: C2 swapped"), False),
])
def test_a_row_passes_iff_its_symbolic_check_did_not_fail_and_its_sweep_held(symbolic, passes):
    good, bad = NumericResult(tried=1, worst_slack=0.0), NumericResult(tried=1, worst_slack=-1.0)
    assert LedgerRow(T.claim("C2"), symbolic, good, 0.0).passed == passes
    assert not LedgerRow(T.claim("C2"), symbolic, bad, 0.0).passed
    text = format_ledger([LedgerRow(T.claim("C2"), symbolic, good, 0.0)])
    assert symbolic.label in text.splitlines()[2] and text.splitlines()[2].endswith("PASS" if passes else "FAIL")


def test_ledger_names_the_facts_a_reduced_claim_rests_on():
    row = LedgerRow(T.claim("C9"), SymbolicResult("reduced", "m", facts=("spectral theorem",)),
                    NumericResult(tried=1, worst_slack=0.0), 0.0)
    text = format_ledger([row])
    assert "reduced to named facts" in text and "facts:      spectral theorem" in text


def test_python_m_proofs_check_names_all_thirteen_claims_and_exits_zero():
    out = subprocess.run([sys.executable, "-m", "proofs_check", "--brief"], cwd=ROOT, capture_output=True,
                         text=True, timeout=240)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    for claim_id in IDS:
        assert any(line.startswith(f"{claim_id} ") and line.endswith("PASS") for line in lines), claim_id
    assert "13 of 13 claims pass" in out.stdout
    assert "found:" not in out.stdout  # --brief
    # the status column says what was proved (tests/test_symbolic.py pins each claim's status)
    status = {line.split()[0]: line for line in lines if line[:1] == "C"}
    for claim_id in ("C1", "C2", "C4", "C11", "C12", "C13"):
        assert "proved for all n" in status[claim_id]
    for claim_id in ("C3", "C5", "C6", "C7", "C9", "C10"):
        assert "reduced to named facts" in status[claim_id]
    assert "proved by exact example" in status["C8"]
    assert "symbolic: 6 proved for all n, 6 reduced to named facts, 1 proved by exact example" in out.stdout


def test_python_m_proofs_check_rejects_an_unknown_claim():
    out = subprocess.run([sys.executable, "-m", "proofs_check", "--claims", "C99"], cwd=ROOT, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 2 and "unknown claim(s) C99" in out.stderr
