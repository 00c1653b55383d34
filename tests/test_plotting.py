"""Plots show no more than the rows hold: no band below zero on a log axis, and means over fewer than all
trials marked as such."""

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
