"""The interactive explorer (``simulations.explore``, notebook 08): its chain, its figure and its widgets, headless.

At tau = 0 the explorer's chain must be fig3's chain draw for draw; tau only rescales the mean part, so the first
layer's odds growth changes by exactly ``2 ln|1 - tau|``. The widget test builds the ``ipywidgets.interactive``
without a kernel and moves every control: the callback reruns (a stale figure would mean it raised, since
``interactive`` swallows callback errors), and the beta slider is disabled exactly for the ensembles that do not use
beta. The figure shows the degenerate corners (tau = 1, beta = 0) with a note and without numpy warnings.
"""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from matplotlib.figure import Figure

from simulations.engine.config import ATTENTIONS, SINKHORN_MAX_BETA, Fig3Config
from simulations.explore import BETA_ENSEMBLES, ENSEMBLES, explore_chain, explore_figure, explorer
from simulations.studies import fig3

SMALL = dict(tokens=6, depth=3, trials=4, width=8)


def test_the_explorer_offers_every_fig3_ensemble():
    assert sorted(ENSEMBLES) == sorted(ATTENTIONS)


@pytest.mark.parametrize("attention", ENSEMBLES)
def test_explore_figure_draws_three_labelled_panels_for_every_ensemble(attention):
    fig = explore_figure(beta=1.0, tau=0.3, attention=attention, seed=1, **SMALL)
    assert isinstance(fig, Figure)
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert len(panels) == 3 and len(fig.axes) == 4  # the fourth: t_div's own axis beside t_sim's
    for ax in panels:
        assert ax.get_xlabel() and ax.get_ylabel() and ax.get_legend() is not None, ax.get_title()
    title = fig._suptitle.get_text()
    assert f"{attention} attention" in title and "tau = 0.3" in title and "n = 6" in title
    assert ("beta = 1" in title) == (attention in BETA_ENSEMBLES), "the title names beta only where it is used"
    fig.savefig(io.BytesIO(), format="png")  # renders


@pytest.mark.parametrize("attention", ["softmax", "causal", "symmetric", "data"])
def test_explore_chain_at_tau_zero_is_fig3s_chain_draw_for_draw(attention):
    # through the public path: fig3's own run at the same seed and trial count (one block at its default
    # --rng-block), not a generator built by hand; the explorer used to seed with the seed itself, not fig3's block
    cfg = Fig3Config(tokens=6, width=8, depth=3, trials=4, seed=5, device="cpu", attention=attention, beta=1.0)
    stats = fig3.simulate_fig3(cfg, keep_trials=True, progress=False).stats
    c = explore_chain(1.0, 6, 0.0, 3, attention, trials=4, seed=5, width=8)
    np.testing.assert_allclose(c["log_t_div"], stats.trial_values("log_t_div"), rtol=1e-12)
    np.testing.assert_allclose(np.exp(c["log_t_sim"]), stats.trial_values("t_sim"), rtol=1e-12)
    np.testing.assert_allclose(c["delta"], stats.trial_values("delta")[:, 1:], rtol=1e-12)


@pytest.mark.parametrize("tau", [-1.0, 0.5, 1.5, 2.0])
def test_deescalation_scales_the_first_layers_odds_growth_by_one_minus_tau_squared(tau):
    plain = explore_chain(2.0, 6, 0.0, 3, "softmax", trials=4, seed=2, width=8)
    de = explore_chain(2.0, 6, tau, 3, "softmax", trials=4, seed=2, width=8)
    np.testing.assert_allclose(de["log_odds_growth"][:, 0] - plain["log_odds_growth"][:, 0],
                               2 * math.log(abs(1 - tau)), atol=1e-10)
    np.testing.assert_array_equal(de["delta"], plain["delta"])  # softmax draws do not depend on X


def test_tau_one_removes_the_mean_token_after_every_layer():
    c = explore_chain(4.0, 6, 1.0, 3, "symmetric", trials=4, seed=0, width=8)
    assert np.all(c["log_t_sim"][:, 1:] == -np.inf)
    np.testing.assert_allclose(c["log_t_div"][:, 1:], 0.0, atol=1e-14)
    fig = explore_figure(4.0, 6, 1.0, 3, "symmetric", trials=4, seed=0, width=8)
    assert any("removes the mean token" in t.get_text() for t in fig.axes[2].texts)


@pytest.mark.parametrize("attention", ENSEMBLES)
def test_beta_changes_the_chain_exactly_for_the_ensembles_said_to_use_it(attention):
    low, high = (explore_chain(beta, 6, 0.0, 2, attention, trials=3, seed=4, width=8) for beta in (0.5, 2.0))
    same = all(np.array_equal(low[k], high[k]) for k in ("log_t_sim", "log_t_div", "delta"))
    assert same == (attention not in BETA_ENSEMBLES)


@pytest.mark.filterwarnings("error")  # numpy's warnings on -inf (t_div = 0) fail the test
@pytest.mark.parametrize("attention", ["softmax", "sinkhorn"])
def test_beta_zero_is_uniform_attention_t_div_zero_shown_as_zero_without_warnings(attention):
    c = explore_chain(0.0, 6, 0.0, 3, attention, trials=4, seed=0, width=8)
    assert np.all(c["log_t_div"][:, 1:] == -np.inf)  # P = Pi: every token the mean token after one layer
    fig = explore_figure(0.0, 6, 0.0, 3, attention, trials=4, seed=0, width=8)
    assert "0 at layer 3" in fig.axes[0].get_title() and "inf" not in fig.axes[0].get_title()
    assert any("beta = 0 gives uniform attention" in t.get_text() for t in fig.axes[2].texts)
    fig.savefig(io.BytesIO(), format="png")


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("attention", ["softmax", "sinkhorn"])
def test_beta_zero_with_tau_one_leaves_no_tokens_and_says_so_instead_of_nan(attention):
    # uniform attention keeps only the mean token and tau = 1 removes it: X_k = 0, t_sim and t_div undefined. The
    # panels said "nan at layer 3" and "t_sim = 0" (the tau = 1 note, false here)
    c = explore_chain(0.0, 6, 1.0, 3, attention, trials=4, seed=0, width=8)
    assert np.isnan(c["log_t_sim"][:, 1:]).all() and np.isnan(c["log_t_div"][:, 1:]).all()
    fig = explore_figure(0.0, 6, 1.0, 3, attention, trials=4, seed=0, width=8)
    title = fig.axes[0].get_title()
    assert "undefined (X = 0) at layer 3" in title and "nan" not in title
    notes = [t.get_text() for t in fig.axes[2].texts]
    assert len(notes) == 1 and "X_k = 0 after one layer" in notes[0] and "t_sim = 0" not in notes[0]
    fig.savefig(io.BytesIO(), format="png")


@pytest.mark.filterwarnings("error")
# tau = 1 as a slider stepping by 0.05 from -1 may send it
@pytest.mark.parametrize("tau", [0.9999999999999999, sum([0.05] * 40) - 1.0])
def test_tau_a_rounding_error_away_from_one_counts_as_one(tau):
    assert tau != 1.0 and math.isclose(tau, 1.0)
    fig = explore_figure(4.0, 6, tau, 3, "softmax", trials=4, seed=0, width=8)
    assert any("removes the mean token" in t.get_text() for t in fig.axes[2].texts)


@pytest.mark.parametrize("kwargs", [dict(attention="nope"), dict(attention="sinkhorn", beta=9.0),
                                    dict(tau=float("nan")), dict(tokens=1), dict(depth=0), dict(beta=-1.0),
                                    dict(tau=True)])  # True ran as tau = 1 (a review)
def test_explore_chain_refuses_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        explore_chain(**{**dict(trials=2, depth=2, tokens=4, width=4), **kwargs})


def test_explorer_builds_and_its_callback_reruns_for_every_control_headless():
    ipywidgets = pytest.importorskip("ipywidgets")
    w = explorer(trials=2, tokens=5, depth=2, width=4)
    assert isinstance(w, ipywidgets.interactive)
    assert isinstance(w.result, Figure)  # the callback ran once at construction
    controls = {c.description: c for c in w.children if isinstance(c, ipywidgets.ValueWidget)}
    assert set(controls) == {"beta", "n (tokens)", "tau", "depth L", "attention"}
    assert controls["beta"].max == SINKHORN_MAX_BETA  # every ensemble runs over the whole slider
    moves = [("beta", 0.5, "beta = 0.5"), ("tau", 0.25, "tau = 0.25"), ("n (tokens)", 7, "n = 7"),
             ("depth L", 3, "L = 3"), ("attention", "causal", "causal attention"),
             ("attention", "data", "data attention")]  # every ensemble's figure: the panel test above
    for name, value, shown in moves:
        controls[name].value = value
        assert shown in w.result._suptitle.get_text(), f"the callback did not rerun for {name} = {value!r}"
        attention = controls["attention"].value
        assert controls["beta"].disabled == (attention not in BETA_ENSEMBLES), f"beta slider at {attention}"
        assert ("beta =" in w.result._suptitle.get_text()) == (attention in BETA_ENSEMBLES)
    assert not explorer(trials=2, tokens=5, depth=2, width=4, attention="causal").children[0].disabled
    assert explorer(trials=2, tokens=5, depth=2, width=4, attention="symmetric").children[0].disabled


@pytest.mark.parametrize("attention, tau", [("softmax", 0.0), ("softmax", 0.3), ("data", 0.0)])
def test_the_plotted_lines_are_the_chains_numbers(attention, tau):
    # the lines were never read back: drawn in ln instead of log10, mu and delta swapped, the factor 2 of the
    # (1 - tau)^2 dropped, or t_sim taken from t_div all passed; data attention's delta and mu underflow to 0
    # from layer ~8 (their logs reach -1e4), and the estimate and bound curves vanished there
    args = dict(beta=4.0, tokens=16, tau=tau, depth=12, attention=attention, trials=6, seed=1, width=16)
    c = explore_chain(**args)
    fig = explore_figure(**args)
    ax_sim, ax_delta, ax_rate, ax_div = fig.axes
    np.testing.assert_allclose(ax_sim.get_lines()[0].get_ydata(), np.exp(c["log_t_sim"]).mean(0), rtol=1e-12)
    np.testing.assert_allclose(ax_div.get_lines()[0].get_ydata(), (c["log_t_div"] / math.log(10)).mean(0),
                               rtol=1e-12)
    measured, estimate, bound = (ln.get_ydata() for ln in ax_rate.get_lines()[1:])  # [0]: the zero line
    shrink = 2 * math.log10(abs(1 - tau))
    np.testing.assert_allclose(measured, np.nanmean(c["log_odds_growth"], 0) / math.log(10), rtol=1e-12)
    np.testing.assert_allclose(estimate, shrink - 2 * np.log10(np.exp(1)) * c["log_mu"].mean(0), rtol=1e-12)
    np.testing.assert_allclose(bound, shrink - 2 * np.log10(np.exp(1)) * c["log_delta"].mean(0), rtol=1e-12)
    assert np.isfinite(estimate).all() and np.isfinite(bound).all()
    with np.errstate(divide="ignore"):  # where delta and mu are representable, their logs are theirs
        ok = c["delta"] > 1e-300
        np.testing.assert_allclose(c["log_delta"][ok], np.log(c["delta"][ok]), rtol=1e-12)
        np.testing.assert_allclose(c["log_mu"][ok], np.log(c["mu"][ok]), rtol=1e-12)
    if attention == "data":
        assert (c["delta"] == 0).any() and (c["log_delta"] < -1000).any()  # the case the logs are for


def test_explore_chain_takes_numpy_numbers_as_the_python_ones():
    # np.int64(8) was refused as "tokens must be an integer >= 2; got np.int64(8)" (a review)
    a = explore_chain(trials=2, depth=2, tokens=np.int64(4), width=np.int64(4), tau=np.float64(0.5))
    b = explore_chain(trials=2, depth=2, tokens=4, width=4, tau=0.5)
    assert all(np.array_equal(a[k], b[k], equal_nan=True) for k in ("log_t_div", "delta"))
