"""Findings text: the helpers a study uses to phrase the numbers README.md quotes (computed from a run, never typed).

A study provides ``<name>_findings(result) -> dict`` (plain numbers, lists and strings, computed from a
:class:`~simulations.engine.result.FigureResult`, usually through :class:`Quoter`) and
``render_<name>_findings(findings) -> str`` (markdown text built with :func:`sig`, :func:`span`, ...). How the
findings reach README.md is :mod:`simulations.readme`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ..engine.result import FigureResult

__all__ = ["Quoter", "sig", "span", "bound_text", "series_text", "partial_note"]

def sig_apart(a: float, b: float, digits: int = 2) -> tuple[str, str]:
    """``sig`` of both, with as many more digits (up to 6) as it takes for two different values to read
    differently ('10.4' and '9.98', not '10' and '10')."""
    for d in range(digits, 7):
        sa, sb = sig(a, d), sig(b, d)
        if sa != sb or a == b:
            break
    return sa, sb


def sig(x: float, digits: int = 2) -> str:
    """``x`` to ``digits`` significant digits, trailing zeros kept (0.50, 48, 0.016, 2.5e-4); whole numbers
    below a million in full (128, not 1.3e2)."""
    x = float(x)
    if not math.isfinite(x):
        return str(x)
    # decided on the rounded values: 99.97 rounds to 100 at two digits (shown '100', as 100 is), and 999999.7 to
    # 1000000 as a whole number (a million: '1.0e6', not seven digits)
    if 10 ** digits <= abs(float(f"{x:.{digits}g}")) and abs(float(f"{x:.0f}")) < 1e6:
        return f"{x:.0f}"
    s = f"{x:#.{digits}g}"
    if "e" in s:
        mant, exp = s.split("e")
        return f"{mant.rstrip('.')}e{int(exp)}"
    return s.rstrip(".")


def span(values: Sequence[float], digits: int = 2) -> str:
    """``"lo-hi"`` of ``values`` (one number when they agree to ``digits``)."""
    lo, hi = sig(min(values), digits), sig(max(values), digits)
    return lo if lo == hi else f"{lo}-{hi}"


def bound_text(below: Sequence[int], total: int, bound: str, unit: str) -> str:
    """Where a run's mean sits against a bound: ``"above C6's bound in every layer"`` or
    ``"below C6's bound in k of L layers"``."""
    if not below:
        return f"above {bound} in every {unit}"
    return f"below {bound} in {len(below)} of {total} {unit}s"


def series_text(values: Sequence[float], digits: int = 2, sep: str = " -> ") -> str:
    return sep.join(sig(v, digits) for v in values)


class _Means(dict):
    """step -> mean; a step with no value at all (every trial left out) reads as NaN, never a KeyError."""

    def __missing__(self, step: int) -> float:
        return math.nan


class Quoter:
    """Reads means out of a result and remembers every quoted mean that is over fewer than all trials, so the
    rendered text can say so (``findings["partial_means"]``)."""

    def __init__(self, result: FigureResult) -> None:
        self.result = result
        self.partial: list[dict] = []

    def means(self, metric: str) -> dict[int, float]:
        if self.result.all_left_out(metric):  # no rows at all: every step reads as NaN
            return _Means()
        steps, mean, _, _ = self.result.series(metric)
        _, count = self.result.counts(metric)
        trials = self.result.trials
        for k, c in zip(steps, count):
            if c < trials:
                self.partial.append({"metric": metric, "step": int(k), "count": int(c), "trials": trials})
        return _Means({int(k): float(m) for k, m in zip(steps, mean)})

    def mean(self, metric: str, step: int) -> float:
        """The mean at ``step`` (negative: from the last step); NaN where no trial has a value."""
        m = self.means(metric)
        if step < 0:
            step = max(m) + 1 + step
        return m.get(step, math.nan)

    def finish(self, findings: dict) -> dict:
        """``findings`` with the run's seed and trial count and the partial means met, ready for the JSON."""
        seen = {(p["metric"], p["step"]): p for p in self.partial}
        return {"seed": self.result.config.get("seed"), "trials": self.result.trials, **findings,
                "partial_means": list(seen.values())}


def partial_note(findings: dict) -> str:
    """One sentence naming the quoted means that are over fewer than all trials ('' when there are none)."""
    parts = findings.get("partial_means") or []
    if not parts:
        return ""
    trials = parts[0]["trials"]
    by_metric: dict[str, list[str]] = {}
    for p in parts:
        by_metric.setdefault(p["metric"], []).append(f"{p['count']} at step {p['step']}")
    listed = "; ".join(f"{m}: {', '.join(v)}" for m, v in by_metric.items())
    return f" Some means are over fewer than all {trials} trials (values undefined, below precision or beyond the float range left out): {listed}."
