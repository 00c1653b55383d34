"""Figures from a :class:`~simulations.result.FigureResult`: one panel per group of metrics, mean with a 95%
confidence band, measured curves solid and predicted ones dashed. Nothing here computes or writes files."""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np

from .result import FigureResult

__all__ = ["Panel", "plot_panels"]


@dataclass(frozen=True)
class Panel:
    title: str
    metrics: tuple[str, ...]
    ylabel: str
    log: bool = False
    labels: tuple[str, ...] = ()  # legend labels, default the metric names
    predicted: tuple[str, ...] = ()  # metrics drawn dashed (estimates and bounds)
    transform: str = ""  # "minus_one": plot value - 1 (for rates near 1 on a log scale)
    xlabel: str = "step k (layer)"  # what the CSV's step means in this panel (layer, epoch, depth, ...)


def _draw(ax, result: FigureResult, panel: Panel) -> None:
    labels = panel.labels or panel.metrics
    for metric, label in zip(panel.metrics, labels):
        steps, mean, lo, hi = (np.asarray(a, dtype=float) for a in result.series(metric))
        if steps.size == 0:
            continue
        if panel.transform == "minus_one":
            mean, lo, hi = mean - 1, lo - 1, hi - 1
        if panel.log:  # a band reaching below zero cannot be drawn on a log axis: clip it to the mean's scale
            keep = mean > 0
            steps, mean, lo, hi = steps[keep], mean[keep], lo[keep], hi[keep]
            lo = np.where(lo > 0, lo, mean / 10)
        style = "--" if metric in panel.predicted else "-"
        line, = ax.plot(steps, mean, style, marker="o" if steps.size <= 30 else None, ms=3, label=label)
        ok = np.isfinite(lo) & np.isfinite(hi)
        ax.fill_between(steps[ok], lo[ok], hi[ok], color=line.get_color(), alpha=0.2, linewidth=0)
    if panel.log:
        ax.set_yscale("log")
    ax.set_title(panel.title, fontsize=10)
    ax.set_xlabel(panel.xlabel)
    ax.set_ylabel(panel.ylabel)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)


def plot_panels(result: FigureResult, panels: list[Panel], title: str) -> plt.Figure:
    """A row (or 2 x 2 grid) of panels; the caller saves or closes the figure."""
    k = len(panels)
    rows, cols = (2, 2) if k == 4 else (1, k)
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.8 * rows), squeeze=False)
    for ax, panel in zip(axes.flat, panels):
        _draw(ax, result, panel)
    cfg = result.config
    fig.suptitle(f"{title}\nT = {cfg.get('trials')} trials, n = {cfg.get('tokens')}, d = {cfg.get('width')}, "
                 f"seed {cfg.get('seed')}; mean with 95% confidence band", fontsize=10)
    fig.tight_layout()
    return fig
