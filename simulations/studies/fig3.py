r"""[YZ] Figure 3: the random attention chain, measured against C6's estimate and bound.

$X_0$ iid $N(0,1)$ ``(n, d)``; for $k = 1..L$: $P_k$ from the chosen family, $W_k$ iid $N(0, 1/d)$ (or Haar
orthogonal, ``weights``), $X_k = P_k X_{k-1} W_k$ rescaled to $\|X_k\| = \sqrt{nd}$ (all recorded quantities
are scale-free; data attention is not, so the rescaling is part of its definition).

The chain is carried in the split form of C3, $X = \mathbf{1} m^T + E$ (:class:`theory.SplitTokens`,
:func:`theory.attend`), so t_div keeps every digit down to ~1e-300 and ``log_t_div`` beyond: no trial is ever
dropped for precision, at any depth. Every excess over 1 is computed directly (:func:`theory.split_step_metrics`).

- ``softmax``: $P = \mathrm{softmax}(\beta Z)$, $Z$ iid $N(0,1)$, independent of $X$ (C8: C6 may fail per step);
- ``symmetric``: symmetric doubly stochastic $P$ with orthogonal $W$ (C6 must hold in every trial and step;
  the run checks it, in odds form). With Gaussian $W$ C6 holds for the ratio of expectations only, and single
  steps can fail at small d, so the run then reports violations instead of asserting none;
- ``causal``: softmax of $\beta Z$ under a causal mask (decoders): triangular, $\delta = \max_{i\ge2} P_{ii}$ exactly;
- ``dirichlet``: rows Dirichlet($\alpha$) (``alpha``); ``sinkhorn``: $\mathrm{softmax}(\beta Z)$ scaled to doubly
  stochastic (not symmetric; beta <= 8); ``banded``: softmax of $\beta Z$ inside $|i - j| \le w$ (``window``).
  Where theory predicts the mean delta (:func:`theory.slem_prediction`), the run records it as
  ``delta_predicted`` and the attention panel draws it against the measurement;
- ``data``: $P = \mathrm{softmax}(X W_Q (X W_K)^T/\sqrt d)$, its scores formed in parts from $m$ and $E$ and its
  softmax centred (:func:`theory.split_softmax`): it collapses doubly exponentially (ln t_div about triples per
  layer), and quantities whose size leaves the float range (xi1/xi2 ~ 1e300, ln t_div past ~600 layers) are
  left out and counted.

Checks in the JSON: C6 in odds form, $\delta^2(\xi_1/\xi_2)^2 \ge 1$ with a relative tolerance; C2 with
independent sides (the identity from the split chain's growth factors against $r - 1$ of the same step
recomputed on whole matrices, for the first trials of each block); the fitted linear rate (slope of mean
ln t_div per layer over the second half of the layers, with its 95% interval).

Beside [YZ]'s quantities every step records the literature's collapse metrics on the same trajectory
(:mod:`theory._metrics`): ``stable_rank``, ``mean_cosine`` and ``dong_residual`` (the last from the centred part
itself, so it keeps its digits), and the excesses ``stable_rank_minus_1`` and ``one_minus_mean_cosine`` with their
natural logs, from the split parts, so they keep their digits where the first two read 1.
"""

from __future__ import annotations

import math
import time
from typing import NamedTuple

import torch

import theory as T
from theory import _hqr, _lockstep
from theory._escalation import excess_of
from theory._similarity import shares, split_scaled_norms

from ..engine.checkpoint import Checkpoint
from ..engine.config import Fig3Config
from ..engine.runner import Block, resolve_device, resolve_dtype, run_chunks
from .fig3_findings import family_params, fig3_findings, render_fig3_findings  # noqa: F401 -- re-exported
from ..engine.result import FigureResult

__all__ = ["simulate_fig3", "fig3_panels", "fig3_title", "fig3_findings", "render_fig3_findings", "initial_tokens",
           "draw_step",
           "FIG3_METRICS", "fitted_rate"]

FIG3_METRICS = (*T.STEP_METRICS, *T.COLLAPSE_METRICS)
C2_SAMPLE = 8  # trials per block whose step is also recomputed in full form, for the independent C2 check
C2_BATCH = 64  # layers whose C2 checks run as one batch (bounds the memory they hold: 64 x C2_SAMPLE steps)
C2_MIN_T_DIV = 1e-8  # the full form resolves t_div(X) to ~eps/sqrt(t_div): compare only where that is < 1e-11
DELTA_TOL = 1e-6  # a delta whose estimated relative error exceeds this is counted as uncertain (JSON)


def _gaussian(ch: Block, rows: int, cols: int, std: float = 1.0) -> torch.Tensor:
    """iid N(0, std^2) ``(c, rows, cols)``, drawn in float32 (six times faster than float64 on the CPU) and
    used in the run's dtype: the inputs are random anyway; every computation on them is in the run's dtype.
    std Z is formed in float32 and stored in the run's dtype in the same pass (the same values as forming it,
    then converting)."""
    if ch.random.dtype == torch.float32:
        return ch.random.draw(T.random_gaussian, rows, cols, std=std, dtype=torch.float32)
    Z = ch.random.draw(T.random_gaussian, rows, cols, dtype=torch.float32)
    return torch.mul(Z, std, out=torch.empty(Z.shape, dtype=ch.random.dtype, device=Z.device))


def initial_tokens(cfg: Fig3Config, ch: Block) -> torch.Tensor:
    """X_0 iid N(0, 1) ``(c, n, d)``."""
    return _gaussian(ch, cfg.tokens, cfg.width)


def draw_step(cfg: Fig3Config, ch: Block, X: T.SplitTokens) -> tuple[dict[str, torch.Tensor | None], torch.Tensor]:
    r"""(attention, W ``(c, d, d)``) for one layer, drawn in this order from each block's generator.

    ``attention``: the keyword arguments ``D``, ``D_exp``, ``row`` of :func:`theory.attend`, i.e.
    $P_k = \Pi + \mathbf{1}\rho^T + 2^{e} D$; for softmax and symmetric attention simply $D = P_k - 1/n$. Data
    attention comes from the split scores of X (:func:`theory.split_softmax`), so it stays exact while its scores
    are far below eps.
    """
    n, d = cfg.tokens, cfg.width
    if cfg.attention == "softmax":  # in place where a fresh tensor is at hand: the same values, fewer allocations
        P = T.attention_from_scores(_gaussian(ch, n, n).mul_(cfg.beta))
        attention = {"D": P.sub_(1 / n), "D_exp": None, "row": None}
    elif cfg.attention == "symmetric":
        attention = {"D": ch.random.draw(T.random_symmetric_doubly_stochastic, n) - 1 / n, "D_exp": None, "row": None}
    elif cfg.attention in _SAMPLERS:
        sampler, params = _SAMPLERS[cfg.attention]
        P = ch.random.draw(sampler, n, **{k: getattr(cfg, k) for k in params})
        attention = {"D": P - 1 / n, "D_exp": None, "row": None}  # P = 0 gives D = -1/n exactly: triangular kept
    else:
        WQ, WK = _gaussian(ch, d, d, std=d ** -0.5), _gaussian(ch, d, d, std=d ** -0.5)
        row, D, D_exp = T.split_softmax(*T.split_scores(X, WQ, WK))
        attention = {"D": D, "D_exp": D_exp, "row": row}
    if cfg.weight_family == "orthogonal":
        W = ch.random.draw(T.random_orthogonal, d)  # norms kept, so C6 applies per step
    else:
        W = _gaussian(ch, d, d, std=1 / math.sqrt(d))
    return attention, W


_SAMPLERS = {"causal": (T.causal_attention, ("beta",)), "dirichlet": (T.dirichlet_attention, ("alpha",)),
             "sinkhorn": (T.sinkhorn_attention, ("beta",)), "banded": (T.banded_attention, ("beta", "window"))}


def _in_regime(cfg: Fig3Config) -> bool:
    """Whether theory claims its mean delta for the run's ensemble at its size (:func:`theory.prediction_regime`)."""
    return T.prediction_regime(cfg.attention, cfg.tokens, beta=cfg.beta, alpha=cfg.alpha, window=cfg.window)


def delta_prediction(cfg: Fig3Config, *, in_regime: bool = True) -> float:
    """Theory's mean delta for the run's ensemble (:func:`theory.slem_prediction`); NaN where none is known and,
    with ``in_regime``, where the law is not claimed to hold (drawn only where it is)."""
    if in_regime and not _in_regime(cfg):
        return math.nan
    return T.slem_prediction(cfg.attention, cfg.tokens, beta=cfg.beta, alpha=cfg.alpha, window=cfg.window)


def _full_form_excess(X: T.SplitTokens, attention: dict, W: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(r - 1, t_div(X)) of the same step recomputed the plain way: X and P formed as matrices, Y = P X W,
    both centred from scratch. Shares no code with the split propagation, so it checks it (C2 check)."""
    Xf = X.tokens()
    D, D_exp, row = attention["D"], attention["D_exp"], attention["row"]
    P = D if D_exp is None else D * torch.exp2(D_exp)[..., None, None]  # 0 where far below: not compared then
    P = P + 1 / P.shape[-1] + (0 if row is None else row)
    Yf = P @ Xf @ W
    # T.escalation_excess(Xf, Yf) and T.token_diversity(Xf), X's split norms computed once for both
    x_norms = split_scaled_norms(Xf)
    return excess_of(x_norms, split_scaled_norms(Yf)), shares(*x_norms)[1]


def _chain(cfg: Fig3Config, ch: Block) -> tuple[dict[str, torch.Tensor], dict[str, int]]:
    n, d, L = cfg.tokens, cfg.width, cfg.depth
    fallbacks_before = _hqr.fallbacks(thread=True)  # the block runs in this thread: the difference is its own
    X = T.split_tokens(initial_tokens(cfg, ch))  # (c, n, d) in split form: X = 1 m^T + E
    predicted = delta_prediction(cfg)
    extra = ("delta_predicted",) if math.isfinite(predicted) else ()
    values: dict[str, list[torch.Tensor]] = {m: [] for m in (*FIG3_METRICS, *extra, "bound_violated", "odds_slack",
                                                             "C2_error", "delta_uncertain")}
    s0, t0 = X.shares()
    values["t_sim"].append(s0)
    values["t_div"].append(t0)
    values["log_t_div"].append(X.log_diversity())
    for m, v in T.split_collapse_metrics(X).items():
        values[m].append(v)
    sample = slice(0, min(C2_SAMPLE, ch.trials))
    pending: list[tuple[torch.Tensor, _C2Inputs]] = []  # C2 checks of the last layers, done together (_c2_errors)
    for layer in range(L):
        attention, W = draw_step(cfg, ch, X)
        Y = T.attend(X, W=W, **attention)
        metrics = T.split_step_metrics(X, Y, **attention)
        # NaN where C6 is undefined (t_div(X) = 0: beta = 0, data attention's overflowed ratios), so such steps are
        # neither checked nor passed (NaN < tol is False: they had counted as checked and holding)
        slack = metrics["odds_slack"]
        metrics["bound_violated"] = torch.where(slack.isnan(), torch.nan, (slack < -_tolerance(cfg)).to(slack.dtype))
        metrics["C2_error"] = torch.full_like(metrics["xi_ratio_minus_1"], float("nan"))  # filled in below
        pending.append((metrics["C2_error"], _c2_inputs(metrics, X, attention, W, sample)))
        if len(pending) == C2_BATCH or layer == L - 1:
            _c2_errors(pending, sample)
            pending = []
        metrics["delta_uncertain"] = (metrics["delta_rel_err"] > DELTA_TOL).to(metrics["delta"].dtype)
        metrics.update(T.split_collapse_metrics(Y))
        if extra:
            metrics["delta_predicted"] = torch.full_like(metrics["delta"], predicted)
        for m in values:
            values[m].append(metrics[m])
        X = Y.scaled_to(math.sqrt(n * d))  # scale-free quantities do not change; data attention sees ||X||^2 = nd
    out = {m: torch.stack(v, dim=-1) for m, v in values.items()}  # (c, L or L + 1)
    out["log_t_div_slope"] = (out["log_t_div"] @ _slope_weights(L, out["log_t_div"]))[:, None]  # (c, 1)
    # matrices of this block a kernel handed back to LAPACK, on the block's first trial (0 on the others): a
    # statistic like any other, so a resumed run counts the chunks before its interruption too
    out["lapack_fallbacks"] = torch.zeros_like(out["log_t_div_slope"])
    out["lapack_fallbacks"][0] = _hqr.fallbacks(thread=True) - fallbacks_before
    first = {m: (0 if m in _FROM_STEP_0 else 1) for m in out}
    first["log_t_div_slope"] = first["lapack_fallbacks"] = L  # one value per trial, filed at the last step
    return out, first


_FROM_STEP_0 = ("t_sim", "t_div", "log_t_div", *T.COLLAPSE_METRICS)


class _C2Inputs(NamedTuple):
    """What the C2 check of one layer needs, on the block's first trials (see :func:`_c2_errors`)."""

    mean: torch.Tensor
    centred: torch.Tensor
    mean_exp: torch.Tensor
    centred_exp: torch.Tensor
    xi_ratio_minus_1: torch.Tensor
    attention: dict
    W: torch.Tensor


def _c2_inputs(metrics: dict[str, torch.Tensor], X: T.SplitTokens, attention: dict, W: torch.Tensor,
               sample: slice) -> _C2Inputs:
    """The C2 inputs of one layer: copies, so that the pending layers do not keep the whole block's tensors
    alive."""
    return _C2Inputs(X.mean[sample].clone(), X.centred[sample].clone(), X.mean_exp[sample].clone(),
                     X.centred_exp[sample].clone(), metrics["xi_ratio_minus_1"][sample].clone(),
                     {k: None if v is None else v[sample].clone() for k, v in attention.items()},
                     W[sample].clone())


def _c2_errors(pending: list[tuple[torch.Tensor, _C2Inputs]], sample: slice) -> None:
    r"""C2 with its two sides computed independently, on the first trials of the block: the identity
    $r - 1 = t(q^2 - 1)/(q^2 s + t)$ from the split propagation's $q = \xi_1/\xi_2$ against $r - 1$ of the full-form
    step; relative to $\max(|r - 1|, t)$, written into each layer's ``C2_error`` (NaN elsewhere and where the full
    form cannot resolve). The layers of ``pending`` are stacked into one batch: the check's many small
    operations then run once per ``C2_BATCH`` layers instead of once per layer (they held the two worker threads'
    shared interpreter lock for 15% of a run)."""
    inputs = [inp for _, inp in pending]

    def cat(field: str) -> torch.Tensor:
        return torch.cat([getattr(inp, field) for inp in inputs])

    Xs = T.SplitTokens(cat("mean"), cat("centred"), cat("mean_exp"), cat("centred_exp"))
    s, t = Xs.shares()
    q2 = (cat("xi_ratio_minus_1") + 1).square()
    identity = t * (q2 - 1) / (q2 * s + t)
    attention = {k: None if v is None else torch.cat([inp.attention[k] for inp in inputs])
                 for k, v in inputs[0].attention.items()}
    excess, t_full = _full_form_excess(Xs, attention, cat("W"))
    rel = (identity - excess).abs() / torch.maximum(excess.abs(), t_full)
    rel = torch.where(t_full >= C2_MIN_T_DIV, rel, float("nan")).reshape(len(pending), -1)
    for (err, _), row in zip(pending, rel):
        err[sample] = row


def _slope_weights(L: int, like: torch.Tensor) -> torch.Tensor:
    """OLS weights w ``(L + 1,)`` with slope = sum_k w_k y_k over the fit window k = ceil(L/2)..L (the tail,
    where the linear rate has settled; 0 outside it). A linear functional, so the mean of per-trial slopes is the
    slope of the mean log t_div, and its interval comes from the per-trial spread."""
    k = torch.arange(L + 1, dtype=like.dtype, device=like.device)
    window = k >= fit_start(L)
    kc = torch.where(window, k - k[window].mean(), 0)
    return kc / kc.square().sum().clamp_min(1e-300) if int(window.sum()) > 1 else torch.full_like(k, float("nan"))


def fit_start(L: int) -> int:
    return (L + 1) // 2


def fitted_rate(stats, L: int) -> dict:
    """The fitted linear rate of a run: slope of mean ln t_div per layer over the tail, with its 95% interval."""
    slope = float(stats.mean("log_t_div_slope")[L])
    hw = float(stats.ci_halfwidth("log_t_div_slope")[L])
    return {"log_t_div_slope": slope, "ci": [slope - hw, slope + hw], "t_div_ratio_per_layer": math.exp(slope),
            "layers": [fit_start(L), L], "trials": int(stats.count("log_t_div_slope")[L])}


def _general_solver(device: torch.device) -> str:
    """The solver ``theory`` uses for a general attention's delta on ``device`` (its deltas are float64)."""
    if device.type == "cuda":
        return (f"{_hqr.cuda_status()}, LAPACK fallback" if _hqr.cuda_available()
                else f"cuSOLVER geev (torch): {_hqr.cuda_status()}")
    if _lockstep.available():
        return f"lockstep CPU kernel (theory._lockstep, {_lockstep.LANES} lanes), LAPACK fallback"
    return f"LAPACK geev: {_lockstep.status()}"


def simulate_fig3(cfg: Fig3Config, *, keep_trials: bool = False, progress: bool | None = None,
                  checkpoint: Checkpoint | None = None) -> FigureResult:
    """Run Figure 3's chain for ``cfg``; a pure function of the config (and the device it runs on)."""
    device, dtype = resolve_device(cfg.device), resolve_dtype(cfg.dtype)
    t0 = time.perf_counter()
    stats = run_chunks(lambda ch: _chain(cfg, ch), trials=cfg.trials, seed=cfg.seed, steps=cfg.depth + 1,
                       chunk=cfg.chunk, rng_block=cfg.rng_block, device=device, dtype=dtype,
                       keep_trials=keep_trials, progress=progress, desc=f"fig3 ({cfg.attention})",
                       checkpoint=checkpoint)
    counts = stats.count("bound_violated")
    violations = _count_of(stats, "bound_violated")
    c2_counts = stats.count("C2_error")
    checks = {
        # C2 with independent sides: the split chain's identity against a full-form recomputation of the step
        "C2_identity_max_rel_error": stats.maximum("C2_error") if c2_counts.sum() else float("nan"),
        "C2_steps_compared": int(c2_counts.sum()),
        # C6 in its odds form delta^2 (xi1/xi2)^2 >= 1, a relative slack that does not shrink with t_div
        "C6_min_odds_slack": stats.minimum("odds_slack"),
        "C6_tolerance": _tolerance(cfg),
        "C6_steps_checked": int(counts.sum()),
        "C6_violations": violations,
        "C6_violation_share": violations / int(counts.sum()) if counts.sum() else float("nan"),  # NaN: none checked
        "fitted_rate": fitted_rate(stats, cfg.depth),
        # deltas whose first-order error estimate exceeds DELTA_TOL relative (nearly defective C at large beta):
        # their leading digits are not trusted (theory.slem_with_error)
        "delta_uncertain": {"tolerance": DELTA_TOL, "count": _count_of(stats, "delta_uncertain"),
                            "share": _count_of(stats, "delta_uncertain")
                            / max(int(stats.count("delta_uncertain").sum()), 1)},
        # values left out of the statistics: undefined (0/0, log 0); the split form resolves every other one
        "excluded_values": {m: k for m, k in stats.excluded_counts().items()
                            if m not in ("C2_error", "bound_violated")},
        # which solver gave the general (not triangular, not symmetric) deltas, and how many matrices a kernel
        # handed back to LAPACK for not converging
        "eigen_solver": {"general": _general_solver(device),
                         "lapack_fallbacks": _count_of(stats, "lapack_fallbacks")},
    }
    if cfg.attention == "symmetric" and cfg.weight_family == "orthogonal":  # C6's hypotheses: a theorem per step
        checks["C6_holds_every_step"] = violations == 0 and int(counts.sum()) > 0  # none checked: not "held"
    predicted = delta_prediction(cfg)
    if cfg.attention in T.SLEM_LAWS:
        checks["delta_prediction"] = {"law": T.SLEM_LAWS[cfg.attention],
                                      "predicted_mean": delta_prediction(cfg, in_regime=False),
                                      "in_regime": _in_regime(cfg),
                                      "measured_mean": float(stats.mean("delta")[1:].mean()),
                                      "measured_ci_halfwidth": float(stats.ci_halfwidth("delta")[1:].max())}
    metrics = [*FIG3_METRICS, *(["delta_predicted"] if math.isfinite(predicted) else [])]
    return FigureResult("fig3", {"figure": "fig3", **cfg.to_dict()}, stats.rows(metrics), checks,
                        str(device), time.perf_counter() - t0 + stats.earlier_seconds, stats)


def _count_of(stats, indicator: str) -> int:
    """The sum of the recorded values of ``indicator`` over all trials and steps: how many of its 0/1 values are 1,
    or the total of a count."""
    counts, shares = stats.count(indicator), stats.mean(indicator)
    return int(round(float((counts * shares)[counts > 0].sum())))


def _tolerance(cfg: Fig3Config) -> float:
    """Rounding allowance for C6's odds-form check, relative: xi1 and xi2 carry a few ulps each."""
    return 1e-12 if cfg.dtype == "float64" else 1e-5


def fig3_panels(result: FigureResult) -> list:
    from ..output.plotting import Panel

    return [
        _shares_panel(result),
        Panel("growth-factor ratio xi1/xi2 - 1", ("xi_ratio_minus_1", "xi_estimate_minus_1", "xi_bound_minus_1"),
              "xi1/xi2 - 1", log=True,
              labels=("measured", "spectral estimate 1/mu - 1", "C5 symmetric bound 1/delta - 1"),
              predicted=("xi_estimate_minus_1", "xi_bound_minus_1")),
        Panel("escalation rate r(X_{k-1}, X_k) - 1", ("r_minus_1", "r_estimate_minus_1", "r_bound_minus_1"),
              "r - 1", log=True,
              labels=("measured", "C6 estimate 1/(s+mu^2(1-s)) - 1", "C6 bound 1/(s+delta^2(1-s)) - 1"),
              predicted=("r_estimate_minus_1", "r_bound_minus_1")),
        _attention_panel(result),
        # the excesses are computed from the split parts (exact where the metrics themselves read 1)
        Panel("rank and residual collapse (literature)", ("stable_rank_minus_1", "dong_residual", "t_div"), "value",
              log=True, labels=("stable rank - 1", "Dong residual", "t_div (for comparison)")),
        Panel("mean cosine of token pairs (literature)", ("one_minus_mean_cosine", "t_div"), "value", log=True,
              labels=("1 - mean cosine", "t_div (for comparison)")),
    ]


def _shares_panel(result: FigureResult):
    """t_sim and t_div on a log axis; where t_div's mean leaves float64's range (data attention: ln t_div reaches
    -1e4 within 16 layers) its log instead, which the chain keeps (the shares' panel would stop there)."""
    from ..output.plotting import Panel

    steps, means, _, _ = result.series("t_div")
    _, logs, _, _ = result.series("log_t_div")
    if any(m <= 0 for m in means) and all(math.isfinite(v) for v in logs):
        return Panel("token diversity: ln t_div (t_div itself underflows float64 here)", ("log_t_div",), "ln t_div")
    return Panel("token similarity and diversity", ("t_sim", "t_div"), "share of ||X||^2", log=True, bounds=(0, 1))


def _attention_panel(result: FigureResult):
    from ..output.plotting import Panel

    if "delta_predicted" in result.metrics:
        law = result.checks.get("delta_prediction", {}).get("law", "prediction")
        return Panel("attention quantities (D5)", ("delta", "sigma", "mu", "omega", "delta_predicted"), "value",
                     labels=("delta", "sigma", "mu", "omega", f"delta predicted: {law}"),
                     predicted=("delta_predicted",))
    return Panel("attention quantities (D5)", ("delta", "sigma", "mu", "omega"), "value")


def fig3_title(cfg: Fig3Config) -> str:
    params = family_params(cfg)
    return f"[YZ] Fig 3: random attention chain ({cfg.attention} attention{', ' + params if params else ''}, {cfg.weight_family} W)"
