r"""[YZ] Figure 2: a deep multi-head Transformer at PyTorch's default initialisation.

Per trial a fresh ``cfg.arch`` stack (:mod:`simulations.engine.blocks`) and $X_0$ iid $N(0,1)$ ``(n, d)``. Per block
$k = 1..L$:

- ``t_sim``, ``t_div`` of the block output $X_k$ (step 0: of $X_0$);
- from the attention sub-layer $\hat X \to SA(\hat X) = \sum_h P_h \hat X W_h$ ($\hat X = X_{k-1}$ for the
  post-norm family, $LN(X_{k-1})$ for the pre-norm family ``pre``, ``pre-cb``), via :func:`theory.step_metrics`:
  ``xi_ratio_minus_1`` $= \xi_1/\xi_2 - 1$, ``r`` $= t_{sim}(SA(\hat X))/t_{sim}(\hat X)$, the C6/C10 ``r_estimate`` and
  ``r_bound`` (head means of $\mu^2$, $\delta^2$) and the head means of ``delta``, ``sigma``, ``mu``, ``omega``.

So here ``r`` and the xi ratio describe the attention sub-layer, the map that escalates, not the whole block
(whose LayerNorms and FFN act on top of it); ``t_sim`` is that of the block output.
"""

from __future__ import annotations

import torch
from torch import Tensor

import theory as T

from ..engine.blocks import PRE_NORM, build_stack
from ..engine.checkpoint import Checkpoint
from ..engine.config import Fig2Config
from ..engine.runner import resolve_dtype
from ..output.quoting import Quoter, bound_text, sig
from ..engine.numerics import mask_below_floor
from ..engine.result import FigureResult
from ..engine.trials import run_trials

__all__ = ["simulate_fig2", "fig2_panels", "fig2_title", "fig2_findings", "render_fig2_findings", "FIG2_METRICS",
           "attention_step_metrics", "stream_shares", "STREAM_METRICS"]

FIG2_METRICS = T.STEP_METRICS
STREAM_METRICS = ("t_sim", "t_div", "log_t_div")  # of the block outputs, step 0 (X_0) onwards
_EXTRA = ("row_sum_error", "feature_mean")  # for checks only, not rows


def attention_step_metrics(traces: list, dtype: torch.dtype) -> dict[str, Tensor]:
    """``theory.step_metrics`` of every block's attention sub-layer at once: values ``(L,)``.

    ``t_div`` and the xi ratio are NaN where a centred part is below the precision floor (rounding noise).
    """
    Xhat = torch.cat([t.attn_in for t in traces])  # (L, n, d)
    A = torch.cat([t.attn_out for t in traces])  # (L, n, d)
    P = torch.cat([t.P for t in traces])  # (L, H, n, n)
    m = T.step_metrics(Xhat, A, P)
    t_div_in, = mask_below_floor(T.token_diversity(Xhat), dtype=dtype)
    bad = t_div_in.isnan()
    m["t_div"], m["log_t_div"], m["xi_ratio_minus_1"], m["r_minus_1"] = mask_below_floor(
        m["t_div"], m["log_t_div"], torch.where(bad, torch.nan, m["xi_ratio_minus_1"]),
        torch.where(bad, torch.nan, m["r_minus_1"]), dtype=dtype)
    m["row_sum_error"] = (P.sum(-1) - 1).abs().flatten(1).amax(-1)  # C3: P 1 = 1
    return m


def stream_shares(X0: Tensor, traces: list, dtype: torch.dtype) -> tuple[Tensor, Tensor, Tensor]:
    """(t_sim, t_div, ln t_div) of X_0, X_1, ..., X_L: ``(L + 1,)`` each; t_div and its log NaN below the
    precision floor (the stack's own rounding: LayerNorm and the ReLU FFN cannot be carried in split form)."""
    X = torch.cat([X0, *(t.out for t in traces)])  # (L + 1, n, d)
    t_div, log_t_div = mask_below_floor(T.token_diversity(X), T.log_token_diversity(X), dtype=dtype)
    return T.token_similarity(X), t_div, log_t_div


def _trial(cfg: Fig2Config, dtype: torch.dtype):
    def trial(seed: int, X0: Tensor, g: torch.Generator) -> dict[str, Tensor]:
        model = build_stack(cfg.arch, width=cfg.width, heads=cfg.heads, ffn=cfg.ffn, depth=cfg.depth, seed=seed,
                            dtype=dtype, device=X0.device, tau=cfg.tau, deescalate_at=cfg.deescalate_at)
        with torch.no_grad():
            _, traces = model(X0)
            m = attention_step_metrics(traces, dtype)
            m["t_sim"], m["t_div"], m["log_t_div"] = stream_shares(X0, traces, dtype)
            # C13: LayerNorm output tokens have zero feature mean (post-norm family only)
            m["feature_mean"] = torch.stack([t.out.mean(-1).abs().amax() for t in traces])
        return {k: m[k] for k in (*FIG2_METRICS, *_EXTRA)}
    return trial


def simulate_fig2(cfg: Fig2Config, *, keep_trials: bool = False, progress: bool | None = None,
                  checkpoint: Checkpoint | None = None) -> FigureResult:
    """Run Figure 2 for ``cfg``; a pure function of the config (and the device it runs on)."""
    dtype = resolve_dtype(cfg.dtype)
    first = {m: (0 if m in STREAM_METRICS else 1) for m in (*FIG2_METRICS, *_EXTRA)}
    stats, device, elapsed = run_trials(cfg, _trial(cfg, dtype), first, desc=f"fig2 ({cfg.arch})",
                                        keep_trials=keep_trials, progress=progress, checkpoint=checkpoint)
    t_sim = stats.mean("t_sim")
    checks = {
        "C3_max_row_sum_error": stats.maximum("row_sum_error"),
        "mean_t_sim_first_last": [float(t_sim[0]), float(t_sim[-1])],
        "mean_r_block_1": float(stats.mean("r")[1]),
        "excluded_values": stats.excluded_counts(),
    }
    if cfg.arch not in PRE_NORM:  # a pre-norm block's output is the residual stream, not a LayerNorm output
        checks["C13_max_abs_feature_mean"] = stats.maximum("feature_mean")
    return FigureResult("fig2", {"figure": "fig2", **cfg.to_dict()}, stats.rows(list(FIG2_METRICS)), checks,
                        str(device), elapsed, stats)


def fig2_title(cfg: Fig2Config) -> str:
    names = {**_ARCH_NAMES, "deescalated": f"de-escalated post-norm (tau = {cfg.tau:g}, at {cfg.deescalate_at})"}
    arch = names[cfg.arch]
    return f"[YZ] Fig 2: {arch} Transformer at default init (L = {cfg.depth}, H = {cfg.heads}, FFN {cfg.ffn}d)"


def fig2_panels(result: FigureResult) -> list:
    from ..output.plotting import Panel

    return [
        Panel("token similarity / diversity of block output X_k", ("t_sim", "t_div"), "share of ||X||^2",
              log=True, bounds=(0, 1)),
        Panel("attention sub-layer: growth-factor ratio", ("xi_ratio_minus_1", "xi_estimate_minus_1"),
              "xi1/xi2 - 1", log=True, labels=("measured", "spectral estimate 1/sqrt(mean mu^2) - 1"),
              predicted=("xi_estimate_minus_1",)),
        Panel("attention sub-layer: escalation rate - 1", ("r_minus_1", "r_estimate_minus_1", "r_bound_minus_1"),
              "r - 1", log=True,
              labels=("measured", "C10 estimate 1/(s+mean mu^2 (1-s)) - 1", "C10 bound 1/(s+mean delta^2 (1-s)) - 1"),
              predicted=("r_estimate_minus_1", "r_bound_minus_1")),
        Panel("attention quantities (D5), head means", ("delta", "sigma", "mu", "omega"), "value"),
    ]


_ARCH_NAMES = {"post": "post-norm", "pre": "pre-norm", "cb": "post-norm + context broadcasting",
               "pre-cb": "pre-norm + context broadcasting", "deescalated": "de-escalated post-norm"}


def fig2_findings(result: FigureResult) -> dict:
    """The numbers README quotes from this run (see :mod:`simulations.readme`)."""
    q = Quoter(result)
    t_sim, delta = q.means("t_sim"), q.means("delta")
    r, estimate, bound = q.means("r"), q.means("r_estimate"), q.means("r_bound")
    L = max(t_sim)
    return q.finish({
        "arch": result.config.get("arch"), "depth": L, "t_sim_first": t_sim[0], "t_sim_last": t_sim[L],
        "delta_block_1": delta[1], "delta_last": delta[L], "delta_max": max(delta.values()),
        "r_block_1": r[1], "r_estimate_block_1": estimate[1], "r_bound_block_1": bound[1], "r_last": r[L],
        "blocks_r_below_bound": [k for k in r if r[k] < bound[k]],
    })


def render_fig2_findings(f: dict) -> str:
    arch = _ARCH_NAMES.get(f["arch"], f["arch"])
    if f["arch"] != "post":  # a variant, quoted beside the plain post-norm run
        return (f"A {arch} stack at default init (fig2, T = {f['trials']}): t_sim of the block outputs goes from "
                f"{sig(f['t_sim_first'])} to {sig(f['t_sim_last'])} over {f['depth']} blocks (attention sub-layer "
                f"r = {sig(f['r_block_1'])} at the first block).")
    uniform = "nearly uniform" if f["delta_max"] < 0.2 else "far from uniform in some blocks"
    climbs = "climbs" if f["t_sim_last"] > f["t_sim_first"] else "goes"
    vs_bound = bound_text(f["blocks_r_below_bound"], f["depth"], "C10's bound", "block")
    return (f"In a {arch} stack at default init (fig2, T = {f['trials']}) "
            f"attention is {uniform} (head-mean delta {sig(f['delta_block_1'])} at the first block, "
            f"{sig(f['delta_last'])} at the last), so one attention sub-layer multiplies the "
            f"similarity by r = {sig(f['r_block_1'])} at the first block (C10's estimate "
            f"{sig(f['r_estimate_block_1'])}, bound {sig(f['r_bound_block_1'])}; the mean r is {vs_bound}) and "
            f"t_sim of the block outputs {climbs} from {sig(f['t_sim_first'])} to {sig(f['t_sim_last'])} over "
            f"{f['depth']} blocks.")
