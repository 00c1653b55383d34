"""Figures from a :class:`~simulations.engine.result.FigureResult`: one panel per group of metrics, mean with a 95%
confidence band, measured curves solid and predicted ones dashed. Nothing here computes or writes files.

A plot never shows more than the rows hold. Where values were left out of a mean (undefined or below the
dtype's precision), that mean is over the surviving trials only: those steps get hollow markers and dotted line
segments and a note under the panel says how many of the trials remain where. On a log axis a confidence bound
<= 0 cannot be drawn: there the band is left out and only its upper bound is marked (a triangle pointing
down), with a note; a mean <= 0 is left out likewise and noted. A panel of a bounded metric (a share, an accuracy)
cuts its bands at the metric's range, with a note; a panel of a dozen steps or fewer has a tick at each."""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.lines import Line2D
from matplotlib.ticker import LogLocator

from ..engine.result import FigureResult

__all__ = ["Panel", "plot_panels", "step_ranges"]


@dataclass(frozen=True)
class Panel:
    title: str
    metrics: tuple[str, ...]
    ylabel: str
    log: bool = False
    labels: tuple[str, ...] = ()  # legend labels, default the metric names
    predicted: tuple[str, ...] = ()  # metrics drawn dashed (estimates and bounds)
    xlabel: str = "step k (layer)"  # what the CSV's step means in this panel (layer, epoch, depth, ...)
    # the range the metrics lie in (shares and accuracies: (0, 1)): a 95% band reaching past it, as a t interval
    # over a few seeds does, is cut there and a note says so; the means are never moved
    bounds: tuple[float, float] | None = None


def step_ranges(steps) -> str:
    """``[1, 2, 3, 7, 9, 10]`` -> ``"1-3, 7, 9-10"``."""
    steps = sorted(int(s) for s in steps)
    parts, start = [], None
    for i, s in enumerate(steps):
        if start is None:
            start = s
        if i + 1 == len(steps) or steps[i + 1] != s + 1:
            parts.append(f"{start}" if start == s else f"{start}-{s}")
            start = None
    return ", ".join(parts)


def _on_grid(grid: np.ndarray, steps: list[int], values, fill) -> np.ndarray:
    out = np.full(grid.shape, fill, dtype=float)
    out[np.searchsorted(grid, steps)] = values
    return out


def _counts_text(counts: np.ndarray, trials: int) -> str:
    lo, hi = int(counts.min()), int(counts.max())
    return f"{lo} of {trials}" if lo == hi else f"{lo}-{hi} of {trials}"


_NOTE_CHARS = 76  # a note's line at fontsize 7 within a 5-inch column, the rightmost one too


class _WideLogLocator(LogLocator):
    """matplotlib's log ticks without the infinite ones: over a span of hundreds of decades near 1e308 its
    candidate ticks a stride past the top overflow to inf, and the tick formatter fails on them."""

    def tick_values(self, vmin, vmax):
        with np.errstate(over="ignore"):
            ticks = np.asarray(super().tick_values(vmin, vmax))
        return ticks[np.isfinite(ticks)]


def _log_limits(ax, values: np.ndarray) -> None:
    """Y limits of a log axis from the finite positive values drawn, padded by 5% of their span in decades and
    kept inside float64: matplotlib's own padding overflows past 1e308 (xi ratios of collapsed data attention
    reach 1e306) and then leaves the axis at a default [1, 10] with the curves off it."""
    values = values[np.isfinite(values) & (values > 0)]
    if not values.size:
        return
    lo, hi = math.log10(values.min()), math.log10(values.max())
    pad = 0.05 * max(hi - lo, 1.0)
    ax.set_ylim(10 ** max(lo - pad, -323.0), 10 ** min(hi + pad, 308.0))


def _draw(ax, result: FigureResult, panel: Panel) -> dict[str, bool]:
    """Draw one panel; returns which of the marks that need explaining it used."""
    labels = panel.labels or panel.metrics
    trials = result.trials
    # a metric whose every value was left out has no rows: it is named in a note, not drawn
    gone = {m for m in panel.metrics if result.all_left_out(m)}
    # one step grid for the panel, so a step where a metric has no value at all breaks its line
    grid = np.array(sorted({s for m in panel.metrics if m not in gone for s in result.series(m)[0]}), dtype=float)
    notes, used = [], {"partial": False, "upper_only": False}
    drawn = []  # every finite value drawn, for the limits of a log axis
    many = grid.size > 30
    clipped = []  # the steps where a band reached past panel.bounds
    for i, (metric, label) in enumerate(zip(panel.metrics, labels)):
        color = f"C{i % 10}"  # fixed per metric: the extra marks below must not advance the colour cycle
        if metric in gone:
            notes.append(f"{label}: 0 of {trials} trials (no mean) at every step")
            continue
        steps, mean, lo, hi = result.series(metric)
        if not steps:
            continue
        count = _on_grid(grid, steps, result.counts(metric)[1], 0)
        mean, lo, hi = (_on_grid(grid, steps, v, np.nan) for v in (mean, lo, hi))
        none_left = (grid >= steps[0]) & (count == 0)
        if none_left.any():
            notes.append(f"{label}: 0 of {trials} trials (no mean) at steps {step_ranges(grid[none_left])}")
        if panel.log and np.any(mean <= 0):
            notes.append(f"{label}: mean <= 0 (not on a log axis) at steps {step_ranges(grid[mean <= 0])}")
            mean = np.where(mean > 0, mean, np.nan)
        shown = np.isfinite(mean)
        drawn.append(mean[shown])
        full = shown & (count >= trials)
        partial = shown & (count < trials)

        style = "--" if metric in panel.predicted else "-"
        ax.plot(grid, np.where(full, mean, np.nan), style, color=color, marker=None if many else "o", ms=3,
                label=label)
        if partial.any():
            used["partial"] = True
            notes.append(f"{label}: {_counts_text(count[partial], trials)} trials at steps "
                         f"{step_ranges(grid[partial])}")
            # dotted wherever a segment touches a step with fewer than all trials
            xs, ys = [], []
            for j in range(grid.size - 1):
                if shown[j] and shown[j + 1] and (partial[j] or partial[j + 1]):
                    xs += [grid[j], grid[j + 1], np.nan]
                    ys += [mean[j], mean[j + 1], np.nan]
            ax.plot(xs, ys, ":", color=color, linewidth=1.5)
            ax.plot(grid[partial], mean[partial], "o", ms=2.5 if many else 4, mfc="white", mec=color, mew=1,
                    linestyle="none")

        band = shown & np.isfinite(lo) & np.isfinite(hi)
        if panel.bounds is not None:  # first: the log axis's marks and limits must not reach past the range either
            b0, b1 = panel.bounds
            # (on a log axis a lower bound at or below a range's 0 is not drawn at all: upper_only says so)
            low = np.zeros_like(band) if panel.log and b0 <= 0 else lo < b0
            past = band & (low | (hi > b1))
            if past.any():
                clipped.append(grid[past])
            lo, hi = np.clip(lo, b0, b1), np.clip(hi, b0, b1)
        if panel.log:
            upper_only = band & (lo <= 0) & (hi > 0)
            band &= lo > 0
            if upper_only.any():
                used["upper_only"] = True
                notes.append(f"{label}: lower 95% bound <= 0 at steps {step_ranges(grid[upper_only])}, "
                             "upper bound only")
                ax.plot(grid[upper_only], hi[upper_only], "v", ms=3.5, color=color, alpha=0.7, linestyle="none")
                drawn.append(hi[upper_only])
        drawn += [lo[band], hi[band]]
        ax.fill_between(grid, np.where(band, lo, np.nan), np.where(band, hi, np.nan), where=band, color=color,
                        alpha=0.2, linewidth=0)
    if panel.log:
        _log_limits(ax, np.concatenate(drawn) if drawn else np.array([]))  # first: set_yscale autoscales
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(_WideLogLocator())
    if clipped:
        b0, b1 = panel.bounds
        notes.append(f"95% bands cut at [{b0:g}, {b1:g}], the metric's range, at steps "
                     f"{step_ranges(np.unique(np.concatenate(clipped)))}")
    if 1 < grid.size <= 12 and np.all(grid == np.round(grid)):
        ax.set_xticks(grid)  # a few steps, maybe spaced out (depths 6, 12, 24): a tick at each, none between
    ax.set_title(panel.title, fontsize=10)
    ax.set_xlabel(panel.xlabel)
    ax.set_ylabel(panel.ylabel)
    ax.grid(True, alpha=0.3)
    handles, _ = ax.get_legend_handles_labels()
    if used["partial"]:
        handles.append(Line2D([], [], color="0.4", linestyle=":", marker="o", ms=4, mfc="white",
                              label="mean over fewer than all trials"))
    if used["upper_only"]:
        handles.append(Line2D([], [], color="0.4", linestyle="none", marker="v", ms=4,
                              label="upper 95% bound only (lower <= 0)"))
    if handles:  # none where every metric of the panel was left out: the notes say so
        ax.legend(handles=handles, fontsize=8)
    if notes:  # under the axis label, inside the panel's own column
        # wrapped here, not by matplotlib at draw time, so that tight_layout makes room for every line
        text = "\n".join(textwrap.fill(note, _NOTE_CHARS, subsequent_indent="  ") for note in notes)
        ax.annotate(text, xy=(0, 0), xycoords="axes fraction", xytext=(0, -32), textcoords="offset points",
                    va="top", ha="left", fontsize=7, color="0.25")
    return used


def plot_panels(result: FigureResult, panels: list[Panel], title: str) -> plt.Figure:
    """A row of up to three panels, else a grid of two or three columns; the caller saves or closes the figure."""
    k = len(panels)
    cols = k if k <= 3 else (2 if k == 4 else 3)
    rows = -(-k // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.8 * rows), squeeze=False)
    used = [_draw(ax, result, panel) for ax, panel in zip(axes.flat, panels)]
    for ax in list(axes.flat)[k:]:
        ax.set_visible(False)
    cfg = result.config
    caption = "mean with 95% confidence band"
    if any(u["partial"] for u in used):
        caption += "; hollow markers, dotted: mean over the trials left (see notes)"
    fig.suptitle(f"{title}\nT = {cfg.get('trials')} trials, n = {cfg.get('tokens')}, d = {cfg.get('width')}, "
                 f"seed {cfg.get('seed')}; {caption}", fontsize=10)
    fig.tight_layout()
    return fig
