"""``python -m proofs_check [--seed S] [--claims C1,C5] [--brief]``: print the claim ledger; exit 1 if a claim fails."""

from __future__ import annotations

import argparse
import sys

from theory import CLAIMS

from .ledger import build_ledger, format_ledger


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m proofs_check", description=__doc__)
    parser.add_argument("--seed", type=int, default=0, help="seed of the numeric sweeps (default 0)")
    parser.add_argument("--claims", default=None, help="comma-separated claim IDs (default: all C1-C13)")
    parser.add_argument("--brief", action="store_true", help="one line per claim, no statements")
    args = parser.parse_args(argv)
    if args.seed < 0:
        parser.error(f"--seed must be >= 0; got {args.seed}")
    ids = None
    if args.claims:
        ids = [s.strip().upper() for s in args.claims.split(",") if s.strip()]
        unknown = sorted(set(ids) - {c.id for c in CLAIMS})
        if unknown:
            parser.error(f"unknown claim(s) {', '.join(unknown)}; expected IDs among C1..C{len(CLAIMS)}")
    rows = build_ledger(args.seed, ids)
    print(format_ledger(rows, verbose=not args.brief))
    return 0 if all(r.passed for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
