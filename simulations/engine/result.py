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
    findings: dict = field(default_factory=dict)  # the numbers the README quotes (simulations.readme)

    def _rows_of(self, metric: str) -> list[SummaryRow]:
        if metric not in self.metrics:
            raise ValueError(f"unknown metric {metric!r} for {self.name}; expected one of {', '.join(self.metrics)}")
        return sorted((r for r in self.rows if r.metric == metric), key=lambda r: r.step)

    def series(self, metric: str) -> tuple[list[int], list[float], list[float], list[float]]:
        """(steps, means, ci_low, ci_high) of one metric, in step order."""
        rows = self._rows_of(metric)
        return ([r.step for r in rows], [r.mean for r in rows], [r.ci_low for r in rows], [r.ci_high for r in rows])

    def counts(self, metric: str) -> tuple[list[int], list[int]]:
        """(steps, values behind each mean) of one metric, the steps of :meth:`series`. A count below
        :attr:`trials` means values were left out there (undefined or below precision): that mean is over the
        surviving trials only. A step with no value at all has no row."""
        rows = self._rows_of(metric)
        return [r.step for r in rows], [r.count for r in rows]

    def all_left_out(self, metric: str) -> bool:
        """Whether ``metric`` has no rows because every value of it was left out, at every step (counted in
        ``checks["excluded_values"]``; fig3 at beta = 0, where the tokens are equal after one layer and the xi
        ratios undefined), rather than being no metric of this figure."""
        return metric not in self.metrics and metric in self.checks.get("excluded_values", {})

    @property
    def trials(self) -> int:
        """Trials each mean would have with nothing left out (the config's count; else the largest count)."""
        t = self.config.get("trials")
        if isinstance(t, int) and not isinstance(t, bool) and t > 0:
            return t
        return max((r.count for r in self.rows), default=0)

    @property
    def metrics(self) -> list[str]:
        return list(dict.fromkeys(r.metric for r in self.rows))
