"""Proof checks and the claim ledger: sympy checks (``symbolic``), seeded numeric sweeps (``numeric``),
and ``python -m proofs_check`` to print one row per claim C1-C13 of shared/THEORY.md."""

from .ledger import LedgerRow, build_ledger, format_ledger
from .numeric import NumericResult, run_numeric
from .symbolic import SYMBOLIC, SymbolicResult, run_symbolic

__all__ = ["LedgerRow", "build_ledger", "format_ledger", "NumericResult", "run_numeric", "SYMBOLIC",
           "SymbolicResult", "run_symbolic"]
