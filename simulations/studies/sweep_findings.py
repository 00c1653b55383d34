"""The numbers README quotes from a sweep, and their wording (see :mod:`simulations.readme`): a table over the
attention ensembles, prose for a phase diagram (range of the C6 violation share and of the fitted rate, the
ensemble's delta law where it is claimed to hold and where it fails)."""

from __future__ import annotations

import math

__all__ = ["sweep_findings", "render_sweep_findings"]


def _num(v) -> float:
    return math.nan if v is None else float(v)  # float("nan"), float("inf") read JSON's spelled-out values


def sweep_findings(figure: str, grid, results: list[dict]) -> dict:
    """The numbers README quotes from a sweep: per point its flags, summary and theory's raw delta prediction."""
    points = []
    for r in results:
        pred = r["checks"].get("delta_prediction", {}) if figure == "fig3" else {}
        points.append({"point": r["point"], "summary": {k: _num(v) for k, v in r["summary"].items()},
                       "delta_law": _num(pred.get("predicted_mean")), "in_regime": bool(pred.get("in_regime"))})
    return {"figure": figure, "swept": grid.swept, "fixed": grid.fixed, "trials": common(results, "trials"),
            "seed": common(results, "seed"), "points": points}


def common(results: list[dict], field: str):
    """The config value every point of a sweep shares, ``None`` where they differ (a swept --trials or --seed)."""
    values = {r["config"][field] for r in results}
    return values.pop() if len(values) == 1 else None


def _trials_text(f: dict, per: str, sep: str = ", ") -> str:
    """', T = 300 trials per point' where every point has the same trial count, '' where --trials was swept."""
    return "" if f.get("trials") is None else f"{sep}T = {f['trials']} trials per {per}"


# what each ensemble's delta law is called in prose (theory.SLEM_LAWS states them)
_LAW_NAMES = {"softmax": "the circular law", "sinkhorn": "the circular law", "dirichlet": "the circular law",
              "banded": "the diffusive-gap law", "causal": "the exact diagonal law"}


def _attention(f: dict, p: dict) -> str:
    """The ensemble of sweep point ``p``: swept, or fixed, or fig3's default."""
    return p["point"].get("attention", f["fixed"].get("attention", "softmax"))


def _law_name(f: dict, points: list[dict]) -> str:
    """The name of the law ``points`` are compared with: their ensemble's (swept or fixed; fig3's default is
    softmax), or a generic name where they mix ensembles with different laws."""
    names = {_LAW_NAMES.get(_attention(f, p), "theory's law") for p in points}
    return names.pop() if len(names) == 1 else "theory's law for each ensemble"


def _law_off(f: dict, p: dict, law: float) -> float:
    """How far the measured mean delta is from ``law``, relatively: on delta, or for banded attention on the gap
    1 - delta, which its diffusive law describes (a delta near 1 within 0.1% can have its gap 8% off).
    ``inf`` where the law predicts a quantity > 0 and 0 is measured."""
    m = p["summary"]["delta_mean"]
    measured, predicted = (1 - m, 1 - law) if _attention(f, p) == "banded" else (m, law)
    if predicted == 0:
        return 0.0 if measured == 0 else math.inf
    return measured / predicted - 1


def _law_off_halfwidth(f: dict, p: dict, law: float) -> float:
    """The 95% half-width of :func:`_law_off` from the sampling of the measured mean (the sweep's bound on it,
    ``delta_ci_halfwidth``); NaN where the record has none (sweeps written before it was recorded) or the law
    predicts 0."""
    h = _num(p["summary"].get("delta_ci_halfwidth"))
    predicted = 1 - law if _attention(f, p) == "banded" else law
    return h / abs(predicted) if predicted != 0 else math.nan


def _measured_text(p: dict) -> str:
    """'0.0332 +- 0.0003 measured': the mean and, where recorded, its 95% half-width."""
    from ..output.quoting import sig

    h = _num(p["summary"].get("delta_ci_halfwidth"))
    return sig(p["summary"]["delta_mean"], 3) + (f" +- {sig(h, 2)}" if math.isfinite(h) else "") + " measured"


_LAW_FAILS = 0.1  # a law off by more than this (relatively) outside its regime fails there; the regimes hold to it


def _excess(summary: dict, metric: str) -> float:
    """stable rank - 1 or 1 - mean cosine at the last layer: from the split parts where the record has it, else
    (records from before it was computed) from the metric itself, which keeps it only to rounding."""
    key = "stable_rank_minus_1_last" if metric == "stable_rank" else "one_minus_mean_cosine_last"
    if key in summary:
        return summary[key]
    return summary["stable_rank_last"] - 1 if metric == "stable_rank" else 1 - summary["mean_cosine_last"]


def _share_text(share: float) -> str:
    from ..output.quoting import sig

    return f"{sig(100 * share)}%" if math.isfinite(share) else "none checked"


def _where(point: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in point.items())


def render_sweep_findings(f: dict) -> str:
    """Markdown: a table for a sweep over attention ensembles, prose for a fig3 phase diagram."""
    from ..output.quoting import sig

    pts = [{**p, "delta_law": _num(p.get("delta_law")), "summary": {k: _num(v) for k, v in p["summary"].items()}}
           for p in f["points"]]  # NaN is stored as "nan" in JSON
    if f["figure"] != "fig3":
        from ..output.sweep_plot import SUMMARY_LABELS  # the maps' titles: the same words in both

        return "; ".join(f"{_where(p['point'])}: " + ", ".join(f"{SUMMARY_LABELS.get(k, k)} {sig(v)}"
                                                               for k, v in p["summary"].items())
                         for p in pts) + "."
    if list(f["swept"]) == ["attention"]:
        head = ("| attention | mean delta | theory's delta | C6 bound fails | t_div factor per layer | t_div | "
                "stable rank - 1 | Dong residual | 1 - mean cosine |\n|---|---|---|---|---|---|---|---|---|")
        rows = []
        for p in pts:
            s = p["summary"]
            law = sig(p["delta_law"], 3) + ("" if p["in_regime"] else " (outside its regime)") \
                if math.isfinite(p["delta_law"]) else "none at this beta"
            rows.append(f"| {p['point']['attention']} | {sig(s['delta_mean'], 3)} | {law} | "
                        f"{_share_text(s['C6_violation_share'])} | {sig(s['t_div_ratio_per_layer'], 3)} | "
                        f"{sig(s['t_div_last'])} | {sig(_excess(s, 'stable_rank'))} | "
                        f"{sig(s['dong_residual_last'])} | {sig(_excess(s, 'mean_cosine'))} |")
        fixed = ", ".join(f"{k} = {v}" for k, v in f["fixed"].items() if k != "trials")
        parts = all("stable_rank_minus_1_last" in p["summary"] for p in pts)
        source = ("the two excesses from the split parts" if parts else
                  "the two excesses from the whole matrix in this record, which keeps them only to rounding")
        return (f"{head}\n" + "\n".join(rows) + f"\n\nt_div, stable rank - 1, Dong residual and 1 - mean cosine at "
                f"the last layer ({source}){_trials_text(f, 'ensemble', '; ')}{', ' + fixed if fixed else ''}.")
    # a point where C6 was checked in no step (t_div(X) = 0 throughout: beta = 0) has no share
    share = sorted((p for p in pts if math.isfinite(p["summary"]["C6_violation_share"])),
                   key=lambda p: p["summary"]["C6_violation_share"])
    # a point whose every trial reaches t_div = 0 (beta = 0) has no rate: NaN would also spoil the sort
    rate = sorted((p for p in pts if math.isfinite(p["summary"]["t_div_ratio_per_layer"])),
                  key=lambda p: p["summary"]["t_div_ratio_per_layer"])
    no_rate = [_where(p["point"]) for p in pts if not math.isfinite(p["summary"]["t_div_ratio_per_layer"])]
    held = [p for p in pts if p["in_regime"] and math.isfinite(p["summary"]["delta_predicted"])]
    axes = " x ".join(k + " in {" + ", ".join(map(str, v)) + "}" for k, v in f["swept"].items())
    no_share = [_where(p["point"]) for p in pts if not math.isfinite(p["summary"]["C6_violation_share"])]
    text = f"Over {axes} (fig3{_trials_text(f, 'point')}), "
    if len(share) == 1:
        text += (f"the share of steps where C6's per-step bound fails is "
                 f"{sig(100 * share[0]['summary']['C6_violation_share'])}% ({_where(share[0]['point'])})")
    elif share:
        text += (f"the share of steps where C6's per-step bound fails runs from "
                 f"{sig(100 * share[0]['summary']['C6_violation_share'])}% ({_where(share[0]['point'])}) to "
                 f"{sig(100 * share[-1]['summary']['C6_violation_share'])}% ({_where(share[-1]['point'])})")
    if share and no_share:
        text += f" (C6 checked in no step at {'; '.join(no_share)}: t_div(X) = 0 there)"
    if not share:
        text += "C6's per-step bound was checked in no step (t_div(X) = 0 throughout)"
    if len(rate) == 1:
        text += (f", and the fitted linear rate is a factor {sig(rate[0]['summary']['t_div_ratio_per_layer'], 3)} "
                 f"per layer on t_div ({_where(rate[0]['point'])})")
    elif rate:
        text += (f", and the fitted linear rate from a factor {sig(rate[0]['summary']['t_div_ratio_per_layer'], 3)} "
                 f"per layer on t_div ({_where(rate[0]['point'])}) to "
                 f"{sig(rate[-1]['summary']['t_div_ratio_per_layer'], 3)} ({_where(rate[-1]['point'])})")
    if no_rate:
        text += f" (no fitted rate at {'; '.join(no_rate)}: ln t_div is undefined there in every trial)"
    text += "."
    # the gap is relative where the law predicts a delta > 0, absolute where it predicts 0 (uniform attention at
    # beta = 0, whose delta is 0 to rounding)
    relative = [p for p in held if p["summary"]["delta_predicted"] != 0]
    zero = [p for p in held if p["summary"]["delta_predicted"] == 0]
    if held:
        text += (f" Where {_law_name(f, held)} is claimed to hold ({len(held)} point{'s' * (len(held) != 1)}), "
                 f"mean delta is")
    if relative:
        dev = [abs(_law_off(f, p, p["summary"]["delta_predicted"])) for p in relative]
        worst = relative[dev.index(max(dev))]
        gap = " (for banded attention, on the gap 1 - delta)" if any(_attention(f, p) == "banded" for p in relative) \
            else ""
        text += (f" within {sig(100 * max(dev))}% of it{gap} (largest gap at {_where(worst['point'])}: "
                 f"{_measured_text(worst)}, {sig(worst['summary']['delta_predicted'], 3)} predicted)")
        # the regimes are claimed to the law's 10%: a point beyond it by more than its sampling interval says so
        beyond = [p for p in relative if abs(_law_off(f, p, p["summary"]["delta_predicted"]))
                  - _law_off_halfwidth(f, p, p["summary"]["delta_predicted"]) > _LAW_FAILS]
        if beyond:
            text += (f", beyond the {sig(100 * _LAW_FAILS)}% its regime claims, by more than the 95% interval, at "
                     f"{'; '.join(_where(p['point']) for p in beyond)}")
    if zero:
        worst = max(zero, key=lambda p: abs(p["summary"]["delta_mean"]))
        text += (f"{';' if relative else ''} within {sig(abs(worst['summary']['delta_mean']))} (absolute) of it where "
                 f"it predicts 0 ({len(zero)} point{'s' * (len(zero) != 1)}; largest at {_where(worst['point'])})")
    if held:
        text += "."
    # outside the regime, and not where the law's prediction is what was measured (0 and 0: uniform attention)
    outside = [p for p in pts if not p["in_regime"] and math.isfinite(p["delta_law"])
               and not (p["delta_law"] == 0 and p["summary"]["delta_mean"] == 0)]
    if outside:
        # the point where the law is furthest off, either way (as a factor: a law 2x high and one 2x low are as far)
        def factor(p: dict) -> float:
            off = _law_off(f, p, p["delta_law"])
            return math.inf if not math.isfinite(off) or off <= -1 else abs(math.log1p(off))

        def at(p: dict) -> str:
            return f"at {_where(p['point'])} it predicts {sig(p['delta_law'], 3)} against {_measured_text(p)}"

        def off(p: dict) -> tuple[float, float]:  # |off| and its half-width, 0 where none was recorded
            h = _law_off_halfwidth(f, p, p["delta_law"])
            return abs(_law_off(f, p, p["delta_law"])), h if math.isfinite(h) else 0.0

        # fails where some point is off by more than 10% with its whole 95% interval; holds where every point is
        # within 10% with its whole interval; else the sampling leaves it open (a sweep of few trials)
        fails = [p for p in outside if off(p)[0] - off(p)[1] > _LAW_FAILS]
        far = max(outside, key=lambda p: off(p)[0])  # the largest gap, the one quoted where none fails
        if not held:  # the sentences below speak of "it" (the regime) and "its" (the law): name them first
            text += f" No point is in the regime where {_law_name(f, outside)} is claimed to hold."
        if fails:
            text += f" Outside it the law fails as stated: {at(max(fails, key=factor))}."
        elif all(sum(off(p)) <= _LAW_FAILS for p in outside):  # measured to hold where not claimed: say so
            text += (f" Outside its claimed regime it still holds at these points, to {sig(100 * off(far)[0])}% at "
                     f"worst: {at(far)}.")
        else:
            text += (f" Outside its claimed regime the law is off by up to {sig(100 * off(far)[0])}% ({at(far)}); "
                     f"whether by more than {sig(100 * _LAW_FAILS)}% the 95% intervals leave open: more trials "
                     f"would tell.")
    return text
