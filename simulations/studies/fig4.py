r"""[YZ] Figure 4: pre-norm diminishes self-attention implicitly (C9).

Per trial a fresh pre-norm stack (:mod:`simulations.engine.blocks`) and $X_0$ iid $N(0,1)$ ``(n, d)``. Block $k$ maps
$X_{k-1} \to X_k$ with $\hat X = LN(X_{k-1})$, $X_{k-1/2} = X_{k-1} + SA(\hat X)$. Recorded (Frobenius norms):

- ``t_sim``: of the residual stream $X_k$ (step 0: $X_0$);
- ``norm_x`` $= \|X_k\|$, the residual stream (step 0: $\|X_0\|$);
- ``norm_ln_x`` $= \|LN(X_{k-1})\| = \|\hat X\|$, block $k$'s attention input (steps 1..L);
- ``norm_attn`` $= \|SA(\hat X)\| = \|\sum_h P_h(\hat X)\hat X W_h\|$, its attention output (steps 1..L);
- ``attn_ratio`` $= \|SA(\hat X)\| / \|X_{k-1}\|$: the share the attention adds to the stream. Not C9's
  $\sqrt\gamma$: it mixes the mean part's gain with the centred part's and rises with t_sim;
- ``mean_gain`` $= \|\Pi\,SA(\hat X)\| / \|\Pi X_{k-1}\|$: C9's effective $\sqrt\gamma$, the gain of the mean part
  ($\mathbb{E}\|\Pi Y\|^2 = (1 + \gamma)\|\Pi X\|^2$ for $Y = X + PXW$); as $\|X\|$ grows and $\|SA\|$ does not, it
  falls, and C9's odds growth $(1 + \gamma)/(1 + \gamma\delta^2)$ with it: escalation per block slows;
- ``centred_gain`` $= \|\Pi_\perp SA(\hat X)\| / \|\Pi_\perp X_{k-1}\|$: the same for the centred part ($\le \sqrt\gamma
  \,\delta$ in C9's setting).

Both gains come from the split norms (:func:`theory.split_norms`), each part to its own relative rounding.
"""

from __future__ import annotations

import torch
from torch import Tensor

import theory as T

from ..engine.blocks import build_stack
from ..engine.checkpoint import Checkpoint
from ..engine.config import Fig4Config
from ..engine.runner import resolve_dtype
from ..output.quoting import Quoter, sig
from ..engine.result import FigureResult
from ..engine.trials import run_trials

__all__ = ["simulate_fig4", "fig4_panels", "fig4_title", "fig4_findings", "render_fig4_findings",
           "FIG4_METRICS"]

FIG4_METRICS = ("t_sim", "norm_x", "norm_ln_x", "norm_attn", "attn_ratio", "mean_gain", "centred_gain")


def _trial(cfg: Fig4Config, dtype: torch.dtype):
    def trial(seed: int, X0: Tensor, g: torch.Generator) -> dict[str, Tensor]:
        model = build_stack("pre", width=cfg.width, heads=cfg.heads, ffn=cfg.ffn, depth=cfg.depth, seed=seed,
                            dtype=dtype, device=X0.device)
        with torch.no_grad():
            _, traces = model(X0)
        X = torch.cat([X0, *(t.out for t in traces)])  # (L + 1, n, d)
        norm_x = torch.linalg.matrix_norm(X)  # (L + 1,)
        norm_attn = torch.stack([torch.linalg.matrix_norm(t.attn_out[0]) for t in traces])  # (L,)
        a_x, b_x = T.split_norms(X[:-1])  # (L,): ||Pi X_{k-1}||, ||Pi_perp X_{k-1}||
        a_sa, b_sa = T.split_norms(torch.cat([t.attn_out for t in traces]))
        return {"t_sim": T.token_similarity(X), "norm_x": norm_x,
                "norm_ln_x": torch.stack([torch.linalg.matrix_norm(t.attn_in[0]) for t in traces]),
                "norm_attn": norm_attn, "attn_ratio": norm_attn / norm_x[:-1],
                "mean_gain": a_sa / a_x, "centred_gain": b_sa / b_x}
    return trial


def simulate_fig4(cfg: Fig4Config, *, keep_trials: bool = False, progress: bool | None = None,
                  checkpoint: Checkpoint | None = None) -> FigureResult:
    """Run Figure 4 for ``cfg``; a pure function of the config (and the device it runs on)."""
    dtype = resolve_dtype(cfg.dtype)
    first = {m: (0 if m in ("t_sim", "norm_x") else 1) for m in FIG4_METRICS}
    stats, device, elapsed = run_trials(cfg, _trial(cfg, dtype), first, desc="fig4", keep_trials=keep_trials,
                                        progress=progress, checkpoint=checkpoint)
    checks = {f"mean_{m}_first_last": [float(stats.mean(m)[k]) for k in (first[m], -1)] for m in FIG4_METRICS}
    checks["excluded_values"] = stats.excluded_counts()
    return FigureResult("fig4", {"figure": "fig4", **cfg.to_dict()}, stats.rows(list(FIG4_METRICS)), checks,
                        str(device), elapsed, stats)


def fig4_title(cfg: Fig4Config) -> str:
    return f"[YZ] Fig 4: pre-norm Transformer at default init (L = {cfg.depth}, H = {cfg.heads}, FFN {cfg.ffn}d)"


def fig4_panels(result: FigureResult) -> list:
    from ..output.plotting import Panel

    return [
        Panel("token similarity of residual stream X_k", ("t_sim",), "t_sim", bounds=(0, 1)),
        Panel("Frobenius norms", ("norm_x", "norm_ln_x", "norm_attn"), "norm", log=True,
              labels=("||X_k|| (residual stream)", "||LN(X_{k-1})|| (attention input)",
                      "||P(Xhat) Xhat W|| (attention output)")),
        Panel("attention output relative to the stream", ("attn_ratio",), "||SA(LN(X_{k-1}))|| / ||X_{k-1}||"),
        Panel("C9's gains: mean part (sqrt gamma), centred part", ("mean_gain", "centred_gain"),
              "gain", log=True, labels=("||Pi SA|| / ||Pi X_{k-1}|| (sqrt gamma)",
                                        "||Pi_perp SA|| / ||Pi_perp X_{k-1}||")),
    ]


def fig4_findings(result: FigureResult) -> dict:
    """The numbers README quotes from this run (see :mod:`simulations.readme`)."""
    q = Quoter(result)
    ratio, t_sim, norm_x = q.means("attn_ratio"), q.means("t_sim"), q.means("norm_x")
    gain, centred = q.means("mean_gain"), q.means("centred_gain")
    L = max(t_sim)
    peak = max(ratio, key=ratio.get)
    return q.finish({"depth": L, "attn_ratio_block_1": ratio[1], "attn_ratio_peak": ratio[peak],
                     "attn_ratio_peak_block": peak, "attn_ratio_last": ratio[L],
                     "mean_gain_block_1": gain[1], "mean_gain_last": gain[L],
                     "centred_gain_block_1": centred[1], "centred_gain_last": centred[L],
                     "norm_x_first": norm_x[0], "norm_x_last": norm_x[L],
                     "t_sim_first": t_sim[0], "t_sim_last": t_sim[L]})


def render_fig4_findings(f: dict) -> str:
    first, peak, last, L = f["attn_ratio_block_1"], f["attn_ratio_peak"], f["attn_ratio_last"], f["depth"]
    if peak <= first:
        shape = f"falls from {sig(first)} at block 1 to {sig(last)} at block {L}"
    else:
        then = (f"stays within 15% of that up to block {L} ({sig(last)})" if last >= 0.85 * peak else
                f"falls to {sig(last)} at block {L}")
        shape = f"rises from {sig(first)} at block 1 to {sig(peak)} at block {f['attn_ratio_peak_block']} and {then}"
    text = (f"In a pre-norm stack at default init (fig4, T = {f['trials']}) the attention output's share of the "
            f"residual stream, `||SA(LN X)|| / ||X||`, {shape}, while `||X||` grows from {sig(f['norm_x_first'])} "
            f"to {sig(f['norm_x_last'])} and t_sim from {sig(f['t_sim_first'])} to {sig(f['t_sim_last'])}.")
    if "mean_gain_last" not in f:  # findings stored before the gains were recorded
        return text
    g1, gL, c1, cL = (f[k] for k in ("mean_gain_block_1", "mean_gain_last", "centred_gain_block_1",
                                     "centred_gain_last"))
    trend = lambda a, b: "falls" if b < a else "rises"  # noqa: E731
    return text + (f" That share grows with t_sim; C9's effective sqrt(gamma), the gain of the mean part "
                   f"`||Pi SA|| / ||Pi X||`, {trend(g1, gL)} from {sig(g1)} at block 1 to {sig(gL)} at block {L} "
                   f"(gamma from {sig(g1 ** 2)} to {sig(gL ** 2)}), and the centred part's gain `||Pi_perp SA|| / "
                   f"||Pi_perp X||` {trend(c1, cL)} from {sig(c1)} to {sig(cL)}.")
