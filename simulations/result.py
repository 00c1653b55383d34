"""What a simulation returns: its summary rows, checks and run facts (no plotting, no files)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .stats import StreamingStats, SummaryRow

__all__ = ["FigureResult"]


@dataclass
class FigureResult:
    name: str  # "fig3", ...
    config: dict
    rows: list[SummaryRow]
    checks: dict = field(default_factory=dict)  # claims checked during the run, undefined-value counts, ...
    device: str = "cpu"
    elapsed_s: float = 0.0
    stats: StreamingStats | None = None  # per-trial values live here when keep_trials was asked

    def series(self, metric: str) -> tuple[list[int], list[float], list[float], list[float]]:
        """(steps, means, ci_low, ci_high) of one metric, in step order."""
        if metric not in self.metrics:
            raise ValueError(f"unknown metric {metric!r} for {self.name}; expected one of {', '.join(self.metrics)}")
        rows = sorted((r for r in self.rows if r.metric == metric), key=lambda r: r.step)
        return ([r.step for r in rows], [r.mean for r in rows], [r.ci_low for r in rows], [r.ci_high for r in rows])

    @property
    def metrics(self) -> list[str]:
        return list(dict.fromkeys(r.metric for r in self.rows))
