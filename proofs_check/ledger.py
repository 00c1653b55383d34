"""The claim ledger: one row per claim of :data:`theory.CLAIMS`, with its symbolic and numeric status.

The symbolic column says what was established (:class:`proofs_check.symbolic.SymbolicResult`): "proved for all
n", "verified at n <= k", "reduced to named facts" (the facts are listed under the row) or "proved by exact
example" (C8's existence claim). A row passes when its symbolic check did not fail and its numeric sweep held.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass

from theory import CLAIMS, Claim

from .numeric import NumericResult, run_numeric
from .symbolic import SymbolicResult, run_symbolic

__all__ = ["LedgerRow", "build_ledger", "format_ledger"]


@dataclass(frozen=True)
class LedgerRow:
    claim: Claim
    symbolic: SymbolicResult
    numeric: NumericResult
    seconds: float

    @property
    def passed(self) -> bool:
        return self.symbolic.status in ("proved", "verified", "reduced", "example") and self.numeric.passed


def build_ledger(seed: int = 0, claim_ids: list[str] | None = None) -> list[LedgerRow]:
    """Run the symbolic check and the seeded numeric sweep of each claim (all claims by default)."""
    wanted = [c.id for c in CLAIMS] if claim_ids is None else claim_ids
    rows = []
    for c in CLAIMS:
        if c.id not in wanted:
            continue
        t0 = time.perf_counter()
        sym = run_symbolic(c.id)
        num = run_numeric(c.id, seed)
        rows.append(LedgerRow(c, sym, num, time.perf_counter() - t0))
    return rows


def format_ledger(rows: list[LedgerRow], *, verbose: bool = True) -> str:
    head = (f"{'ID':<4} {'tag':<3} {'paper label':<38} {'symbolic':<23} {'numeric: tried':>15} {'worst slack':>12}"
            "  ok")
    lines = [head, "-" * len(head)]
    for row in rows:
        c, num = row.claim, row.numeric
        lines.append(f"{c.id:<4} {c.tag:<3} {c.label[:38]:<38} {row.symbolic.label:<23} {num.tried:>15,} "
                     f"{num.worst_slack:>12.3g}  {'PASS' if row.passed else 'FAIL'}")
        if verbose:
            lines.append(f"     hypotheses: {c.hypotheses}")
            lines.append(f"     statement:  {c.statement}")
            lines.append(f"     symbolic:   {row.symbolic.method}")
            if row.symbolic.facts:
                lines.append(f"     facts:      {'; '.join(row.symbolic.facts)}")
            if num.note:
                lines.append(f"     numeric:    {num.note}")
            for example in num.counterexamples:
                lines.append(f"     found:      {example}")
    failed = [r.claim.id for r in rows if not r.passed]
    lines.append("-" * len(head))
    counts = Counter(r.symbolic.label for r in rows)
    lines.append("symbolic: " + ", ".join(f"{k} {label}" for label, k in counts.items()))
    lines.append(f"{len(rows) - len(failed)} of {len(rows)} claims pass"
                 + (f"; FAILED: {', '.join(failed)}" if failed else "")
                 + f" ({sum(r.seconds for r in rows):.1f} s). Slack >= -{rows[0].numeric.tol:g} "
                   "(relative) means the claim held on every instance." if rows else "no claims selected")
    return "\n".join(lines)
