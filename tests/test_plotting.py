"""Plots show no more than the rows hold: no band below zero on a log axis, and means over fewer than all
trials marked as such."""

import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from simulations.output.plotting import Panel, plot_panels, step_ranges  # noqa: E402
from simulations.engine.result import FigureResult  # noqa: E402
from simulations.engine.stats import SummaryRow  # noqa: E402

T = 20


def _result() -> FigureResult:
    """t_div of 'post' decays; from step 6 its lower bound is <= 0, from step 8 trials drop out, after step 9
    none is left. 'tau' keeps every trial and a positive band."""
    rows = []
    for k in range(12):
        m = 10.0 ** -k
        count = T if k < 8 else T - 3 * (k - 7) if k < 10 else 0
        if count:
            rows.append(SummaryRow(k, "post/t_div", m, 0.5 * m if k < 6 else -m, 2 * m, count))
        rows.append(SummaryRow(k, "tau/t_div", 0.9, 0.85, 0.95, T))
    return FigureResult("synthetic", {"trials": T, "tokens": 4, "width": 4, "seed": 0}, rows)


@pytest.fixture
def figure():
    fig = plot_panels(_result(), [Panel("t_div", ("post/t_div", "tau/t_div"), "t_div", log=True,
                                        labels=("post", "tau"))], "synthetic")
    yield fig
    plt.close(fig)


def test_a_band_on_a_log_axis_is_drawn_only_where_its_lower_bound_is_positive(figure):
    ax = figure.axes[0]
    bands = [c for c in ax.collections if len(c.get_paths())]
    ys = np.concatenate([p.vertices[:, 1] for c in bands for p in c.get_paths()])
    xs = np.concatenate([p.vertices[:, 0] for c in bands for p in c.get_paths()])
    assert np.all(ys > 0)  # nothing invented to stand in for a bound <= 0
    post = [p for p in bands[0].get_paths()]
    assert max(p.vertices[:, 0].max() for p in post) <= 5  # the post band stops where its lower bound fails
    assert xs.max() == 11  # the tau band is drawn throughout
    notes = "\n".join(t.get_text() for t in ax.texts)
    assert "post: lower 95% bound <= 0 at steps 6-9, upper bound only" in notes


def test_steps_with_fewer_than_all_trials_are_marked_and_counted(figure):
    ax = figure.axes[0]
    notes = "\n".join(t.get_text() for t in ax.texts)
    assert "post: 14-17 of 20 trials at steps 8-9" in notes
    assert "post: 0 of 20 trials (no mean) at steps 10-11" in notes
    hollow = [ln for ln in ax.lines if ln.get_markerfacecolor() == "white" and len(ln.get_xdata())]
    assert [list(ln.get_xdata()) for ln in hollow] == [[8.0, 9.0]]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "mean over fewer than all trials" in labels and "upper 95% bound only (lower <= 0)" in labels
    assert "mean over the trials left" in figure._suptitle.get_text()


def test_a_full_result_gets_no_notes():
    rows = [SummaryRow(k, "x", 1.0 + k, 0.5 + k, 1.5 + k, T) for k in range(5)]
    fig = plot_panels(FigureResult("f", {"trials": T}, rows), [Panel("x", ("x",), "x", log=True)], "f")
    assert not fig.axes[0].texts and "trials left" not in fig._suptitle.get_text()
    plt.close(fig)


def test_step_ranges_compress_runs():
    assert step_ranges([1, 2, 3, 7, 9, 10]) == "1-3, 7, 9-10" and step_ranges([]) == ""


def test_a_log_axis_over_hundreds_of_decades_shows_every_mean_and_draws_without_overflow():
    # collapsed data attention: xi ratios up to 1e306 with an infinite upper bound, diversities down to 1e-120.
    # matplotlib's own padding overflowed past 1e308 and left the axis at [1, 10], the curves off it
    means = [10.0 ** e for e in (-120, -60, 0, 100, 200, 306)]
    rows = [SummaryRow(k, "x", m, 0.5 * m, np.inf if k == 5 else 2 * m, T) for k, m in enumerate(means)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's overflow warnings included
        fig = plot_panels(FigureResult("f", {"trials": T}, rows), [Panel("x", ("x",), "x", log=True)], "f")
        fig.canvas.draw()
    lo, hi = fig.axes[0].get_ylim()
    assert lo <= 1e-120 and 1e306 <= hi < np.inf
    ticks = fig.axes[0].get_yticks()
    assert ticks.size >= 2 and np.isfinite(ticks).all()
    plt.close(fig)


def test_long_notes_stay_in_their_column_above_the_panel_below():
    # a 2 x 3 grid whose top middle and top right panels are fig3's escalation-rate panel of collapsed data
    # attention: three curves, each with a mean <= 0 and a lower bound <= 0 to note (six notes of 53-87
    # characters). matplotlib used to wrap them at draw time, after the layout had made room for six lines: in the
    # right column they ran into the title of the panel below
    labels = ("measured", "C6 estimate 1/(s+mu^2(1-s)) - 1", "C6 bound 1/(s+delta^2(1-s)) - 1")
    rows = [SummaryRow(k, f"m{i}", 10.0 ** -(5 * k) if k < 10 else 0.0, -1.0 if 5 <= k < 10 else 0.5 * 10.0 ** -k,
                       2 * 10.0 ** -k, T) for k in range(1, 25) for i in range(3)]
    rows += [SummaryRow(k, "y", 0.5, 0.4, 0.6, T) for k in range(1, 25)]
    flat, r = Panel("y", ("y",), "y"), Panel("r - 1", ("m0", "m1", "m2"), "r - 1", log=True, labels=labels)
    fig = plot_panels(FigureResult("f", {"trials": T}, rows), [flat, r, r, flat, flat, flat], "f")
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for top in (1, 2):
        notes = fig.axes[top].texts[0]
        assert "C6 bound 1/(s+delta^2(1-s)) - 1: mean <= 0 (not on a log axis) at steps" in notes.get_text()
        box = notes.get_window_extent(renderer)
        below = fig.axes[top + 3].get_tightbbox(renderer)  # the panel under it, its title included
        assert box.y0 > below.y1 and box.x1 <= fig.bbox.x1
    plt.close(fig)


def test_a_metric_left_out_at_every_step_is_noted_not_drawn_and_an_unknown_one_still_refused():
    # fig3 at beta = 0: every xi ratio is undefined, so the metric has no rows at all; plotting asked for its series
    # by name and failed ("unknown metric"), so the run wrote nothing
    rows = [SummaryRow(k, "x", 1.0 + k, 0.5 + k, 1.5 + k, T) for k in range(3)]
    result = FigureResult("f", {"trials": T}, rows, checks={"excluded_values": {"gone": 3 * T}})
    fig = plot_panels(result, [Panel("gone", ("gone",), "gone", log=True), Panel("x", ("x", "gone"), "x")], "f")
    empty, mixed = fig.axes[:2]
    assert not empty.lines and empty.get_legend() is None
    assert "gone: 0 of 20 trials (no mean) at every step" in empty.texts[0].get_text()
    assert [t.get_text() for t in mixed.get_legend().get_texts()] == ["x"]
    assert "gone: 0 of 20 trials (no mean) at every step" in mixed.texts[0].get_text()
    plt.close(fig)
    with pytest.raises(ValueError, match="unknown metric 'typo'"):
        plot_panels(result, [Panel("typo", ("typo",), "typo")], "f")
    plt.close("all")


def test_a_bounded_metrics_band_is_cut_at_its_range_and_noted_its_mean_left_alone():
    # a t interval over three seeds reached from -0.25 to 1.75 on test accuracy (docs/train.png)
    rows = [SummaryRow(k, "acc", m, m - 0.9, m + 0.9, 3) for k, m in ((6, 0.74), (12, 0.8), (24, 0.97))]
    rows += [SummaryRow(k, "other", 0.5, 0.45, 0.55, 3) for k in (6, 12, 24)]
    result = FigureResult("f", {"trials": 3}, rows)
    fig = plot_panels(result, [Panel("accuracy", ("acc", "other"), "accuracy", bounds=(0, 1)),
                               Panel("unbounded", ("acc",), "accuracy")], "f")
    cut, free = fig.axes
    ys = np.concatenate([p.vertices[:, 1] for c in cut.collections for p in c.get_paths()])
    assert ys.min() == 0.0 and ys.max() == 1.0
    assert [list(ln.get_ydata()) for ln in cut.lines[:1]] == [[0.74, 0.8, 0.97]]  # the means are not moved
    notes = "\n".join(t.get_text() for t in cut.texts)
    assert "95% bands cut at [0, 1], the metric's range, at steps 6, 12, 24" in notes
    free_ys = np.concatenate([p.vertices[:, 1] for c in free.collections for p in c.get_paths()])
    assert free_ys.min() < -0.1 and free_ys.max() > 1.8 and not free.texts  # no bounds: drawn as computed
    plt.close(fig)
    inside = FigureResult("f", {"trials": 3}, rows[3:])  # a band inside the range gets no note
    fig = plot_panels(inside, [Panel("other", ("other",), "share", bounds=(0, 1))], "f")
    assert not fig.axes[0].texts
    plt.close(fig)


def test_a_panel_of_a_few_spaced_out_steps_has_a_tick_at_each_and_none_between():
    rows = [SummaryRow(k, "acc", 0.9, 0.85, 0.95, 3) for k in (6, 12, 24)]
    fig = plot_panels(FigureResult("f", {"trials": 3}, rows), [Panel("a", ("acc",), "a")], "f")
    assert list(fig.axes[0].get_xticks()) == [6, 12, 24]
    plt.close(fig)
    rows = [SummaryRow(k, "x", 1.0, 0.9, 1.1, 3) for k in range(25)]  # a depth-24 chain keeps matplotlib's ticks
    fig = plot_panels(FigureResult("f", {"trials": 3}, rows), [Panel("x", ("x",), "x")], "f")
    assert len(fig.axes[0].get_xticks()) < 25
    plt.close(fig)


def test_on_a_log_axis_a_lower_bound_below_a_ranges_zero_is_noted_once_as_upper_only():
    # the band was both "cut at [0, 1]" and "upper bound only" at the same steps
    rows = [SummaryRow(k, "share", 0.1, -0.05, 0.3, 3) for k in range(3)]
    fig = plot_panels(FigureResult("f", {"trials": 3}, rows), [Panel("s", ("share",), "s", log=True,
                                                                      bounds=(0, 1))], "f")
    notes = "\n".join(t.get_text() for t in fig.axes[0].texts)
    assert "upper bound only" in notes and "cut at" not in notes
    plt.close(fig)
