r"""The interactive explorer (notebook 08): Figure 3's random attention chain with de-escalation, live.

Per layer, for $k = 1..L$:
$$ X_k = c_k\,(I - \tau\Pi)\,P_k X_{k-1} W_k, $$
with $P_k$ and $W_k$ drawn exactly as fig3 draws them (:func:`simulations.studies.fig3.draw_step`: the same
seven ensembles, the same $X_0$, Gaussian $W$, Haar-orthogonal $W$ for ``symmetric``) and $c_k > 0$ the rescaling to
$\|X_k\| = \sqrt{nd}$ (fig3's; data attention depends on it). $\tau = 0$ is fig3's chain itself, draw for draw:
the trials of ``python -m simulations fig3`` with the same seed and trial count, run as one random-number block
(``--rng-block`` at least the trial count, as fig3's default 250 is for up to 250 trials); the explorer seeds its
one block as fig3 seeds its first (``tests/test_explore.py`` checks this against fig3's own run). $\tau \ne 0$
applies [YZ]'s de-escalation (C11, :func:`theory.deescalate`) to every layer's output: in split form
$X = \mathbf{1}m^T + E$ it multiplies the mean part by $1 - \tau$ and leaves the centred part alone, so a layer's
odds (D2) grow by exactly
$$ \frac{\mathrm{odds}(X_k)}{\mathrm{odds}(X_{k-1})} = (1 - \tau)^2 \left(\frac{\xi_1}{\xi_2}\right)^2 , $$
$\xi_1, \xi_2$ the growth factors of the attention step (D3; C2 in odds form). This is a toy of what a
de-escalated Transformer does (there is no residual, LayerNorm or FFN here: notebook 05 and fig5 run those): the
attention step's spectral estimate of the odds growth is $1/\mu^2$ and, for symmetric $P$ with orthogonal $W$,
C6 bounds it below by $1/\delta^2$; so the layer's odds shrink, and de-escalation wins, roughly where
$(1 - \tau)^2 < \mu^2$. The rate panel draws the measured growth against $(1-\tau)^2/\mu^2$ (estimate) and
$(1-\tau)^2/\delta^2$ (C6's bound: a theorem per step only for ``symmetric``). $\tau = 1$ removes the mean
token after every layer: t_sim is then 0 and the odds growth undefined (the panel says so). At $\beta = 0$ softmax
and sinkhorn attention is uniform, $P_k = \Pi$: t_div is 0 after one layer, the odds growth again undefined (the
panel says so too); with $\tau = 1$ as well, $X_k = 0$ and t_sim and t_div are undefined too (said in the
panels). Dirichlet, symmetric and data attention do not use beta.

The chain is carried in split form (:mod:`theory._split`), so t_div keeps its digits however small (data attention
reaches ln t_div ~ -1e3 within a few layers); the plots show logs where values leave the float range.

- :func:`explore_chain`: the per-trial arrays (a pure function of its arguments);
- :func:`explore_figure`: three panels (t_sim and t_div per layer; delta's distribution against theory's
  prediction, :func:`theory.slem_prediction`; the odds growth per layer against its estimate and bound);
- :func:`explorer`: the ``ipywidgets.interactive`` with sliders for beta, n, tau and depth and a choice of ensemble
  (the beta slider disabled for the ensembles that do not use beta).
"""

from __future__ import annotations

import io
import math
import textwrap

import numpy as np
import torch
from matplotlib.figure import Figure

import theory as T
from theory._attention import deviation_stats
from theory._similarity import log_share

from .engine.config import Fig3Config
from .engine.runner import Block, BlockRandom, block_seeds
from .studies.fig3 import _in_regime, delta_prediction, draw_step, initial_tokens

__all__ = ["BETA_ENSEMBLES", "ENSEMBLES", "explore_chain", "explore_figure", "explorer"]

ENSEMBLES = ("softmax", "causal", "dirichlet", "sinkhorn", "banded", "symmetric", "data")  # fig3's, in the dropdown's order
BETA_ENSEMBLES = tuple(a for a, used in Fig3Config.ENSEMBLE_PARAMS.items() if "beta" in used)  # fig3's draw_step
DPI = 80  # of the PNG the explorer shows: a few tens of kB per redraw
LOG10 = math.log(10)


def explore_chain(beta: float = 4.0, tokens: int = 32, tau: float = 0.0, depth: int = 24,
                  attention: str = "softmax", *, trials: int = 64, seed: int = 0, width: int = 64
                  ) -> dict[str, np.ndarray | float | bool]:
    r"""Run the de-escalated chain (module doc); per trial ``(T, L + 1)`` or ``(T, L)`` numpy arrays:

    - ``log_t_sim``, ``log_t_div``: natural logs of t_sim, t_div of $X_0 .. X_L$ (``-inf`` for t_sim = 0, tau = 1;
      both NaN where $X_k = 0$: beta = 0 with tau = 1, uniform attention removes the centred part and tau = 1 the
      mean);
    - ``log_odds_growth``: $\ln(\mathrm{odds}(X_k)/\mathrm{odds}(X_{k-1}))$, $k = 1..L$ (NaN where undefined);
    - ``delta``, ``mu``: of $P_k$ (D5; 0 where they underflow, data attention near collapse), and ``log_delta``,
      ``log_mu``: their natural logs, finite there too;

    and the scalars ``delta_predicted`` (theory's mean delta, NaN where none is known), ``in_regime`` (whether
    the law is claimed to hold at this beta) and ``tau``. Bad arguments raise ``ValueError`` (fig3's checks).
    """
    # numpy's integers (a slider's or an array's values) as Python ints: fig3's checks refused np.int64(8) as "not
    # an integer" (a review); bools are refused as the flags refuse them (tau=True ran as tau = 1)
    tokens, width, depth, trials, seed = (int(v) if isinstance(v, np.integer) else v
                                          for v in (tokens, width, depth, trials, seed))
    cfg = Fig3Config(tokens=tokens, width=width, depth=depth, trials=trials, seed=seed, device="cpu", beta=beta,
                     attention=attention, chunk=trials, rng_block=trials)
    if isinstance(tau, bool) or not (isinstance(tau, (int, float, np.floating)) and math.isfinite(tau)):
        raise ValueError(f"tau must be a finite number; got {tau!r}")
    tau = float(tau)
    n, d = cfg.tokens, cfg.width
    generator = torch.Generator().manual_seed(block_seeds(seed, 1)[0])  # fig3's first block (module doc)
    ch = Block(0, 0, BlockRandom(generator, trials, torch.device("cpu"), torch.float64))
    X = T.split_tokens(initial_tokens(cfg, ch))  # (T, n, d) in split form: X = 1 m^T + E
    s, t = _log_shares(X)
    log_sim, log_div, delta, mu, log_delta, log_mu = [s], [t], [], [], [], []
    for _ in range(depth):
        kw, W = draw_step(cfg, ch, X)
        Y = T.attend(X, W=W, **kw)
        m = T.split_step_metrics(X, Y, **kw)
        delta.append(m["delta"])
        mu.append(m["mu"])
        ld, lm = _log_delta_mu(kw, m)
        log_delta.append(ld)
        log_mu.append(lm)
        # (I - tau Pi) Y: the mean part times (1 - tau), the centred part unchanged (theory.deescalate, C11)
        Y = T.SplitTokens(Y.mean * (1 - tau), Y.centred, Y.mean_exp, Y.centred_exp)
        X = Y.scaled_to(math.sqrt(n * d))
        s, t = _log_shares(X)
        log_sim.append(s)
        log_div.append(t)
    log_sim, log_div = torch.stack(log_sim, -1).numpy(), torch.stack(log_div, -1).numpy()  # (T, L + 1)
    log_odds = log_sim - log_div
    with np.errstate(invalid="ignore"):
        growth = np.diff(log_odds, axis=-1)  # (T, L); -inf - -inf = NaN at tau = 1
    predicted = delta_prediction(cfg, in_regime=False)
    return {"log_t_sim": log_sim, "log_t_div": log_div, "log_odds_growth": growth,
            "delta": torch.stack(delta, -1).numpy(), "mu": torch.stack(mu, -1).numpy(),
            "log_delta": torch.stack(log_delta, -1).numpy(), "log_mu": torch.stack(log_mu, -1).numpy(),
            "delta_predicted": predicted, "in_regime": _in_regime(cfg),
            "tau": float(tau)}


def _log_delta_mu(kw: dict, m: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """(ln delta, ln mu) of one layer's P, finite where they leave the float range: data attention near collapse
    has P = Pi + 1 rho^T + 2^e D with e ~ -1e4, whose delta = 2^e delta(D) (and mu) underflow to 0; both scale
    linearly with D, so their logs are ln delta(D) + e ln 2."""
    tiny = torch.finfo(m["delta"].dtype).tiny
    if kw["D_exp"] is None or not bool(((m["delta"] < tiny) | (m["mu"] < tiny)).any()):
        return m["delta"].log(), m["mu"].log()  # all in range: the step's own values (no second eigensolve)
    delta, _, mu, _, _ = deviation_stats(kw["D"], torch.zeros_like(kw["D_exp"]), kw["row"])
    shift = kw["D_exp"].to(torch.float64) * math.log(2)
    return delta.log() + shift, mu.log() + shift


def _log_shares(X: T.SplitTokens) -> tuple[torch.Tensor, torch.Tensor]:
    a, b = X.norms()
    return log_share(a, b), log_share(b, a)  # (ln t_sim, ln t_div), each finite however small the other


def explore_figure(beta: float = 4.0, tokens: int = 32, tau: float = 0.0, depth: int = 24,
                   attention: str = "softmax", *, trials: int = 64, seed: int = 0, width: int = 64) -> Figure:
    """Three panels of :func:`explore_chain`'s run (module doc). A plain :class:`~matplotlib.figure.Figure`,
    not registered with pyplot: a notebook shows it as a cell's value, and nothing accumulates between redraws."""
    c = explore_chain(beta, tokens, tau, depth, attention, trials=trials, seed=seed, width=width)
    L = depth
    k = np.arange(L + 1)
    fig = Figure(figsize=(15, 4.3), dpi=DPI)
    ax_sim, ax_delta, ax_rate = fig.subplots(1, 3)

    # t_sim (mean over trials) on a linear axis, log10 t_div (mean of the log, 10-90% band) on its own axis
    t_sim = np.exp(c["log_t_sim"]).mean(0)
    lg = c["log_t_div"] / LOG10
    line_sim, = ax_sim.plot(k, t_sim, "o-", ms=3, color="C0", label="t_sim (mean)")
    ax_sim.set_ylim(-0.02, 1.02)
    ax_sim.set_xlabel("layer k")
    ax_sim.set_ylabel("t_sim(X_k)", color="C0")
    ax_div = ax_sim.twinx()
    line_div, = ax_div.plot(k, lg.mean(0), "s-", ms=3, color="C3", label="log10 t_div (mean of log)")
    with np.errstate(invalid="ignore"):  # -inf where t_div = 0 (beta = 0): no band there
        band = np.percentile(lg, [10, 90], axis=0)
    ax_div.fill_between(k, *band, color="C3", alpha=0.15, label="10-90% of trials")
    ax_div.set_ylabel("log10 t_div(X_k)", color="C3")
    ax_sim.legend(handles=[line_sim, line_div], fontsize=8, loc="center right", framealpha=0.9)
    ax_sim.set_title(f"similarity and diversity\n(t_div {_pow10(lg[:, 0].mean())} at the input, "
                     f"{_pow10(lg[:, -1].mean())} at layer {L})", fontsize=10)
    ax_sim.grid(alpha=0.3)

    # delta over every step and trial, against theory's mean; on a log10 axis where it spans decades (data
    # attention near collapse: below 1e-308 delta is 0 in float64, its log is not)
    delta, log10_delta = c["delta"].ravel(), c["log_delta"].ravel() / LOG10
    finite = log10_delta[np.isfinite(log10_delta)]
    on_log = finite.size > 0 and finite.max() - finite.min() > 3
    ax_delta.hist(finite if on_log else delta, bins=40, color="C2", alpha=0.7,
                  label=f"{delta.size} steps" + (f" ({delta.size - finite.size} with delta = 0 not drawn)"
                                                 if on_log and finite.size < delta.size else ""))
    at = (lambda v: math.log10(v) if v > 0 else -math.inf) if on_log else (lambda v: v)  # noqa: E731
    ax_delta.axvline(at(delta.mean()), color="k", lw=2, label=f"measured mean {delta.mean():.3g}")
    pred = c["delta_predicted"]
    if math.isfinite(pred) and pred <= 1.05:
        ax_delta.axvline(at(pred), color="C3", ls="--" if c["in_regime"] else ":", lw=2,
                         label=f"theory {pred:.3g}" + ("" if c["in_regime"] else " (outside its regime)"))
    law = T.SLEM_LAWS.get(attention, "theory predicts no delta for this ensemble")
    if math.isfinite(pred) and pred > 1.05:
        law += f"; it predicts {pred:.3g} here (outside its regime)"
    ax_delta.set_title("delta of P_k over all layers and trials\n" + "\n".join(textwrap.wrap(law, 62)), fontsize=8)
    ax_delta.set_xlabel("log10 delta, delta = |lambda_2(P_k)|" if on_log else "delta = |lambda_2(P_k)|")
    ax_delta.set_ylabel("count")
    ax_delta.legend(fontsize=8)

    # the layer's odds growth (geometric mean over trials) against (1 - tau)^2 / mu^2 and (1 - tau)^2 / delta^2
    layers = np.arange(1, L + 1)
    ax_rate.axhline(0, color="k", lw=0.8)
    if np.isnan(c["log_t_div"][:, 1:]).all():  # X_k = 0: P = Pi leaves the mean only, tau = 1 removes it
        ax_rate.text(0.5, 0.5, f"beta = {beta:g} gives uniform attention and tau = {tau:g} removes the mean token:\n"
                     "X_k = 0 after one layer; t_sim, t_div and the odds growth are undefined",
                     ha="center", va="center", transform=ax_rate.transAxes, fontsize=9)
    elif math.isclose(tau, 1, abs_tol=1e-9):  # a slider stepping by 0.05 from -1 may send 0.9999999999999999
        ax_rate.text(0.5, 0.5, "tau = 1 removes the mean token after every layer:\nt_sim = 0, odds growth undefined",
                     ha="center", va="center", transform=ax_rate.transAxes, fontsize=9)
    elif np.all(c["log_t_div"][:, 1:] == -np.inf):  # P = Pi: softmax and sinkhorn at beta = 0
        ax_rate.text(0.5, 0.5, f"beta = {beta:g} gives uniform attention: t_div = 0 after one layer,\n"
                     "the odds growth is undefined", ha="center", va="center", transform=ax_rate.transAxes, fontsize=9)
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            shrink = 2 * math.log(abs(1 - tau)) / LOG10
            ax_rate.plot(layers, np.nanmean(c["log_odds_growth"], 0) / LOG10, "o-", ms=3, label="measured")
            ax_rate.plot(layers, shrink - 2 * c["log_mu"].mean(0) / LOG10, "--",
                         label="estimate (1 - tau)^2 / mu^2 (assumes xi1 = 1)")
            ax_rate.plot(layers, shrink - 2 * c["log_delta"].mean(0) / LOG10, ":", lw=2,
                         label="C6 bound (1 - tau)^2 / delta^2" + (" (a theorem)" if attention == "symmetric" else ""))
        ax_rate.legend(fontsize=8)
    ax_rate.set_xlabel("layer k")
    ax_rate.set_ylabel("log10 odds(X_k) / odds(X_{k-1})")
    ax_rate.set_title("escalation rate: odds growth per layer\n(> 0 escalates, < 0 de-escalates)", fontsize=10)
    ax_rate.grid(alpha=0.3)

    uses_beta = f", beta = {beta:g}" if attention in BETA_ENSEMBLES else ""
    fig.suptitle(f"{attention} attention{uses_beta}, n = {tokens}, d = {width}, L = {depth}, tau = {tau:g}, "
                 f"{trials} trials (seed {seed})", fontsize=11)
    fig.tight_layout()
    return fig


def _pow10(x: float) -> str:
    """10^x as text: 0 for x = -inf (t_div = 0), "undefined (X = 0)" for NaN, 1eN below 1e-3."""
    if x == -math.inf:
        return "0"
    if math.isnan(x):
        return "undefined (X = 0)"
    return f"1e{x:.0f}" if x < -3 else f"{10 ** x:.2g}"


def _show(beta: float, tokens: int, tau: float, depth: int, attention: str, trials: int, seed: int,
          width: int) -> Figure:
    """The explorer's callback: draws the figure and shows it as a PNG (whatever matplotlib backend is active)."""
    from IPython.display import Image, display

    fig = explore_figure(beta, tokens, tau, depth, attention, trials=trials, seed=seed, width=width)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    display(Image(data=buf.getvalue(), format="png"))
    return fig


def explorer(*, trials: int = 64, seed: int = 0, width: int = 64, beta: float = 4.0, tokens: int = 32,
             tau: float = 0.0, depth: int = 24, attention: str = "softmax"):
    """An ``ipywidgets.interactive`` over :func:`explore_figure`: sliders for beta (0-8, sinkhorn's limit), n, tau
    (-1, context broadcasting's direction, to 2) and depth, a dropdown of the seven ensembles; the keywords set
    their start values. The chain reruns when a slider is released (``continuous_update=False``). The beta slider
    is disabled for the ensembles that do not use beta (dirichlet, symmetric, data: not in ``BETA_ENSEMBLES``)."""
    import ipywidgets as w

    sliders = dict(continuous_update=False, style={"description_width": "initial"})
    beta_slider = w.FloatSlider(value=beta, min=0.0, max=8.0, step=0.25, description="beta", **sliders)
    ensemble = w.Dropdown(options=ENSEMBLES, value=attention, description="attention")
    w.dlink((ensemble, "value"), (beta_slider, "disabled"), lambda name: name not in BETA_ENSEMBLES)
    return w.interactive(
        _show,
        beta=beta_slider,
        tokens=w.IntSlider(value=tokens, min=2, max=128, step=1, description="n (tokens)", **sliders),
        tau=w.FloatSlider(value=tau, min=-1.0, max=2.0, step=0.05, description="tau", **sliders),
        depth=w.IntSlider(value=depth, min=1, max=64, step=1, description="depth L", **sliders),
        attention=ensemble,
        trials=w.fixed(trials), seed=w.fixed(seed), width=w.fixed(width))
