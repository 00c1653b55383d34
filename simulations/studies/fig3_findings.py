"""The numbers README quotes from a fig3 run, and their wording (see :mod:`simulations.readme`): softmax and
symmetric attention in [YZ]'s terms, the lab's other ensembles with theory's delta and the literature's metrics."""

from __future__ import annotations

import math

from ..engine.config import Fig3Config
from ..engine.result import FigureResult
from ..output.quoting import Quoter, bound_text, sig, sig_apart

__all__ = ["fig3_findings", "render_fig3_findings", "family_params", "rate_factor_text", "no_rate_text"]

_LOG10 = math.log(10)


def rate_factor_text(rate: dict, digits: int = 3) -> str:
    """t_div's factor per layer of a fitted rate, '0.466', or '10^-1.80e9' where the factor itself underflows
    float64 (data attention: ln t_div falls ~4e9 per layer)."""
    factor = rate["t_div_ratio_per_layer"]
    if factor > 0:
        return sig(factor, digits)
    return f"10^{sig(rate['log_t_div_slope'] / _LOG10, digits)}"


def no_rate_text(rate: dict) -> str:
    """Why no rate was fitted over ``rate['layers']``: a single layer, or ln t_div undefined (t_div = 0)."""
    first, last = rate["layers"]
    if first >= last:
        return f"no linear rate fitted over layers {first}-{last}: a fit needs two layers or more (fig3 --depth >= 2)"
    return f"no linear rate fitted over layers {first}-{last}: ln t_div is undefined (t_div = 0) there in every trial"


def _mean_text(value: float, log10: float | None, why: str = "") -> str:
    """A mean (of t_div, or of an excess), or where it underflowed to 0 while its log stayed finite,
    1e<mean log10> (the geometric mean; ``why`` is added to that remark)."""
    if value == 0 and log10 is not None and math.isfinite(log10):
        return f"1e{log10:.0f} (geometric mean{why})"
    return sig(value)


def family_params(cfg: Fig3Config | dict) -> str:
    """The parameters that define the run's attention ensemble, as text: 'beta = 4', 'alpha = 0.5', ..."""
    get = (lambda k: cfg[k]) if isinstance(cfg, dict) else (lambda k: getattr(cfg, k))
    return ", ".join(f"{k} = {get(k):g}" for k in Fig3Config.ENSEMBLE_PARAMS[get("attention")])


def fig3_findings(result: FigureResult) -> dict:
    """The numbers README quotes from this run (see :mod:`simulations.readme`)."""
    q = Quoter(result)
    t_div, delta, mu = q.means("t_div"), q.means("delta"), q.means("mu")
    log_t_div = q.means("log_t_div")
    r1, est1, bound1 = q.means("r_minus_1"), q.means("r_estimate_minus_1"), q.means("r_bound_minus_1")
    xi, xi_est = q.means("xi_ratio_minus_1"), q.means("xi_estimate_minus_1")
    L = max(t_div)
    c = result.checks
    return q.finish({
        "attention": result.config.get("attention"), "weights": result.config.get("weights"), "depth": L,
        "t_div_at": [[k, t_div[k]] for k in sorted({0, 4, 8, 16, L}) if k <= L],
        "log10_t_div_at": [[k, log_t_div[k] / _LOG10] for k in sorted({0, 4, 8, 16, L}) if k <= L],
        "delta_mean": sum(delta.values()) / len(delta), "mu_mean": sum(mu.values()) / len(mu),
        "r_minus_1_first": r1[1], "r_estimate_minus_1_first": est1[1], "r_bound_minus_1_first": bound1[1],
        "r_minus_1_last": r1[L], "r_estimate_minus_1_last": est1[L], "r_bound_minus_1_last": bound1[L],
        "xi_minus_1_last": xi[L], "xi_estimate_minus_1_last": xi_est[L],
        "layers_mean_r_below_bound": [k for k in r1 if r1[k] < bound1[k]],
        "C6_violation_share": c["C6_violation_share"], "C6_steps_checked": c["C6_steps_checked"],
        "C6_holds_every_step": c.get("C6_holds_every_step"), "C6_min_odds_slack": c["C6_min_odds_slack"],
        "C2_max_rel_error": c["C2_identity_max_rel_error"], "C2_steps_compared": c["C2_steps_compared"],
        "rate": c["fitted_rate"], "excluded": sum(c["excluded_values"].values()),
        "delta_uncertain": c["delta_uncertain"]["count"], "delta_tolerance": c["delta_uncertain"]["tolerance"],
        "family": family_params(result.config), "delta_prediction": c.get("delta_prediction"),
        "dong_residual_last": q.means("dong_residual")[L], "stable_rank_first": q.means("stable_rank")[0],
        "stable_rank_last": q.means("stable_rank")[L], "mean_cosine_last": q.means("mean_cosine")[L],
        **{f"{m}_last": q.means(m)[L] for m in ("stable_rank_minus_1", "one_minus_mean_cosine")},
        **{f"log10_{m}_last": q.means(f"log_{m}")[L] / _LOG10 for m in ("stable_rank_minus_1", "one_minus_mean_cosine")},
        "t_div_over_t_sim_last": t_div[L] / q.means("t_sim")[L],
    })


def render_fig3_findings(f: dict) -> str:
    (_, t0), *later = f["t_div_at"]
    L, rate = f["depth"], f["rate"]
    logs = dict(f.get("log10_t_div_at", []))  # records from before it was stored have none
    falls = ", ".join(f"{_mean_text(v, logs.get(k), '; t_div itself underflows float64')} after {k} layers"
                      for k, v in later)
    if math.isfinite(rate["log_t_div_slope"]):
        fitted = (f"the fitted linear rate over layers {rate['layers'][0]}-{rate['layers'][1]} is a factor "
                  f"{rate_factor_text(rate)} per layer on t_div (mean ln t_div falls "
                  f"{sig(-rate['log_t_div_slope'], 3)} per layer, 95% CI {sig(-rate['ci'][1], 3)}-"
                  f"{sig(-rate['ci'][0], 3)})")
    else:  # t_div = 0 in every trial over those layers (uniform attention, beta = 0), or a single layer
        fitted = no_rate_text(rate)
    kept = "every trial is kept at every step" if not f["excluded"] else f"{f['excluded']} values are left out"
    if f["attention"] == "symmetric" and f["C6_holds_every_step"] is not None:  # orthogonal W: C6's hypotheses
        verdict = "held in every one" if f["C6_holds_every_step"] else "FAILED in some"
        return (f"With symmetric doubly stochastic attention and orthogonal W (fig3 --attention symmetric, "
                f"T = {f['trials']}) C6 is a theorem per step, and the run checks it in odds form: it {verdict} of "
                f"{f['C6_steps_checked']} steps, with a smallest relative slack of {sig(f['C6_min_odds_slack'])}; "
                f"t_div falls from {sig(t0)} to {falls}, mean delta {sig(f['delta_mean'])}, and {fitted}.")
    vs_bound = bound_text(f["layers_mean_r_below_bound"], L, "C6's bound", "layer")
    if f["attention"] != "softmax":
        return _render_family(f, t0, falls, fitted, kept, vs_bound)
    return (f"In the random chain (fig3, softmax attention, T = {f['trials']}) t_div falls from {sig(t0)} to {falls}; "
            f"{fitted}, and {kept} (the chain is carried in split form, so nothing falls below a precision floor). "
            f"Mean delta is {sig(f['delta_mean'])} and mean mu {sig(f['mu_mean'])}. At the first layer r - 1 = "
            f"{sig(f['r_minus_1_first'])} against C6's estimate {sig(f['r_estimate_minus_1_first'])} and bound "
            f"{sig(f['r_bound_minus_1_first'])}; at layer {L} r - 1 = {sig(f['r_minus_1_last'])} (estimate "
            f"{sig(f['r_estimate_minus_1_last'])}, bound {sig(f['r_bound_minus_1_last'])}): the layer mean of r is "
            f"{vs_bound}, {_c6_text(f, 'yet ')}. {_uncertain_text(f)} {_xi_text(f)} {_c2_text(f)}"
            f"{_literature_excess_text(f)}")


def _literature_excess_text(f: dict) -> str:
    """The default run's sentence on the literature's metrics near collapse (records from before the excesses
    were computed: none)."""
    if "stable_rank_minus_1_last" not in f:
        return ""
    return (f" At layer {f['depth']} the stable rank and the mean cosine read {sig(f['stable_rank_last'], 3)} and "
            f"{sig(f['mean_cosine_last'], 3)}{_excess_text(f)}.")


_FAMILY_NAMES = {"causal": "causal softmax attention (a decoder's mask)", "dirichlet": "Dirichlet rows",
                 "symmetric": "symmetric doubly stochastic attention and Gaussian W",
                 "sinkhorn": "Sinkhorn-scaled (doubly stochastic, not symmetric) attention",
                 "banded": "banded (local window) attention", "data": "data-dependent attention"}


def _render_family(f: dict, t0: float, falls: str, fitted: str, kept: str, vs_bound: str) -> str:
    """The findings text of the lab's other ensembles: the chain, delta against theory, the literature's metrics."""
    name = _FAMILY_NAMES.get(f["attention"], f"{f['attention']} attention")
    params = f", {f['family']}" if f.get("family") else ""
    pred = f.get("delta_prediction") or {}
    if pred and math.isfinite(pred.get("predicted_mean", math.nan)):
        where = "" if pred.get("in_regime") else ", outside the regime where it is claimed to hold"
        delta = (f"mean delta {sig(f['delta_mean'], 3)} against {sig(pred['predicted_mean'], 3)} predicted "
                 f"({pred['law']}{where})")
    elif pred:
        delta = f"mean delta {sig(f['delta_mean'], 3)} ({pred['law']})"
    else:
        delta = f"mean delta {sig(f['delta_mean'], 3)}"
    return (f"With {name} (fig3 --attention {f['attention']}{params}, T = {f['trials']}) t_div falls from {sig(t0)} "
            f"to {falls}; {fitted}; {kept}. {delta[0].upper() + delta[1:]}. {_upper_first(_c6_text(f, ''))}, and "
            f"the layer mean of r is {vs_bound}. On the same trajectories the literature's metrics read: stable rank "
            f"from {sig(f['stable_rank_first'])} to {sig(f['stable_rank_last'], 3)}, Dong et al.'s residual "
            f"{sig(f['dong_residual_last'])} and mean cosine {sig(f['mean_cosine_last'], 3)} at layer {f['depth']}"
            f"{_excess_text(f)}. {_uncertain_text(f)}")


def _excess_text(f: dict) -> str:
    """The excesses the split form keeps where stable rank and mean cosine read 1 (records from before they were
    computed have none: nothing)."""
    if "stable_rank_minus_1_last" not in f:
        return ""
    sr = _mean_text(f["stable_rank_minus_1_last"], f["log10_stable_rank_minus_1_last"])
    cd = _mean_text(f["one_minus_mean_cosine_last"], f["log10_one_minus_mean_cosine_last"])
    bound = f["t_div_over_t_sim_last"]  # of the means: the bound holds in every trial, not for the means
    beside = (f" (its bound in each trial is t_div/t_sim; of the means {sig(bound)})"
              if math.isfinite(bound) and bound > 0 else "")
    return f"; computed from the split parts, stable rank - 1 is {sr} there{beside}, and 1 - mean cosine {cd}"



def _c6_text(f: dict, lead: str) -> str:
    """How often C6's per-step bound fails, or that no step could be checked (t_div(X) = 0 from the first layer)."""
    if not f["C6_steps_checked"]:
        return (f"{'but ' if lead else ''}C6's per-step bound is checked in no step (t_div = 0 after the first layer, "
                f"so every step's odds-form check is undefined)")
    return (f"{lead}the per-step bound fails in {sig(100 * f['C6_violation_share'])}% of {f['C6_steps_checked']} "
            f"steps ({c6_not_a_theorem(f['attention'])})")


def c6_not_a_theorem(attention: str) -> str:
    """Why C6's per-step bound is not a theorem in a run: P not symmetric (C8), or, for symmetric attention, W
    Gaussian instead of orthogonal (C6 then bounds the ratio of expectations only; README, THEORY corrections)."""
    if attention == "symmetric":
        return "W is Gaussian, not orthogonal: C6 then bounds the ratio of expectations, not each step"
    return f"C8: {attention} attention is not symmetric"



def _upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]


def _c2_text(f: dict) -> str:
    if not f["C2_steps_compared"]:
        return "C2 has no step to check against a full-form recomputation (t_div(X) = 0 in every sampled step)."
    return (f"C2, checked against a full-form recomputation of {f['C2_steps_compared']} sampled steps, holds to "
            f"{sig(f['C2_max_rel_error'], 1)} relative.")


def _xi_text(f: dict) -> str:
    xi, est = f["xi_minus_1_last"], f["xi_estimate_minus_1_last"]
    if not (math.isfinite(xi) and math.isfinite(est)):  # every value left out at the last layer
        return ("At the last layer the growth-factor ratio xi1/xi2 has no value (undefined where the tokens are "
                "equal, as at beta = 0, or beyond the float range).")
    side = "above" if xi > est else "below" if xi < est else "equal to"
    sx, se = sig_apart(xi, est)
    return f"The growth-factor ratio xi1/xi2 - 1 ends at {sx}, {side} its spectral estimate 1/mu - 1 = {se}."


def _uncertain_text(f: dict) -> str:
    k, tol = f["delta_uncertain"], f["delta_tolerance"]
    if not k:
        return f"No delta is uncertain beyond {tol:g} relative (first-order error estimates)."
    return (f"{k} of {f['C6_steps_checked']} deltas are uncertain beyond {tol:g} relative (nearly defective "
            "attention): their leading digits are not trusted.")
