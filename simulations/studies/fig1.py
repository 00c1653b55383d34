r"""[YZ] Figure 1: post-norm vs pre-norm Transformers at PyTorch's default initialisation.

Per trial one seed builds both stacks with identical weights (:func:`simulations.engine.blocks.build_stack`), and
both see the same $X_0$ iid $N(0,1)$ ``(n, d)`` and the same loss. Per block $k$ and architecture ``a``:

- ``a/t_sim``: token similarity of the block output $X_k$ (step 0: of $X_0$);
- ``a/mean_cosine``: mean pairwise cosine similarity of the tokens of $X_k$ over the $n(n-1)$ ordered pairs
  $i \ne j$ (:func:`theory.mean_cosine`, the literature metric fig3 records too);
- ``a/grad_norm``: $\|\partial \ell / \partial \theta_k\|_F$, the gradient norm over all parameters $\theta_k$ of
  block $k$ (steps 1..L), for the fixed scalar loss $\ell = v^T \mathrm{mean}_i\, LN_0(X_L)_i$: a
  parameter-free LayerNorm $LN_0$ of the final output (nearly the identity for post-norm; the usual final norm
  of a pre-norm stack), mean-pooled over tokens and read out linearly by $v \sim N(0, I_d/d)$, drawn from the
  trial's generator after $X_0$. A squared loss against a random target would only multiply every gradient
  of a trial by the same random residual, widening the bands without changing their shape.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

import theory as T

from ..engine.blocks import build_stack
from ..engine.checkpoint import Checkpoint
from ..engine.config import Fig1Config
from ..engine.runner import resolve_dtype
from ..output.quoting import Quoter, sig
from ..engine.result import FigureResult
from ..engine.trials import run_trials

__all__ = ["simulate_fig1", "fig1_panels", "fig1_title", "fig1_findings", "render_fig1_findings", "FIG1_ARCHS"]

FIG1_ARCHS = ("post", "pre")
_QUANTITIES = ("t_sim", "mean_cosine", "grad_norm")


def _trial(cfg: Fig1Config, dtype: torch.dtype):
    d = cfg.width

    def trial(seed: int, X0: Tensor, g: torch.Generator) -> dict[str, Tensor]:
        v = torch.randn(d, generator=g, dtype=dtype, device=X0.device) / math.sqrt(d)
        out = {}
        for arch in FIG1_ARCHS:
            model = build_stack(arch, width=d, heads=cfg.heads, ffn=cfg.ffn, depth=cfg.depth, seed=seed,
                                dtype=dtype, device=X0.device)
            XL, traces = model(X0)
            z = F.layer_norm(XL, (d,)).mean(-2)  # (1, d): mean-pooled, normalised final output
            loss = (z @ v).sum()
            loss.backward()
            X = torch.cat([X0, *(t.out.detach() for t in traces)])  # (L + 1, n, d)
            out[f"{arch}/t_sim"] = T.token_similarity(X)
            out[f"{arch}/mean_cosine"] = T.mean_cosine(X)
            out[f"{arch}/grad_norm"] = torch.stack([
                torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in block.parameters()]))
                for block in model.blocks])  # (L,)
        return out
    return trial


def simulate_fig1(cfg: Fig1Config, *, keep_trials: bool = False, progress: bool | None = None,
                  checkpoint: Checkpoint | None = None) -> FigureResult:
    """Run Figure 1 for ``cfg``; a pure function of the config (and the device it runs on)."""
    dtype = resolve_dtype(cfg.dtype)
    metrics = [f"{a}/{q}" for a in FIG1_ARCHS for q in _QUANTITIES]
    first = {m: (1 if m.endswith("grad_norm") else 0) for m in metrics}
    stats, device, elapsed = run_trials(cfg, _trial(cfg, dtype), first, desc="fig1", keep_trials=keep_trials,
                                        progress=progress, checkpoint=checkpoint)
    checks = {f"mean_{a}_{q}_first_last": [float(stats.mean(f"{a}/{q}")[k]) for k in (first[f"{a}/{q}"], -1)]
              for a in FIG1_ARCHS for q in _QUANTITIES}
    checks["excluded_values"] = stats.excluded_counts()
    return FigureResult("fig1", {"figure": "fig1", **cfg.to_dict()}, stats.rows(metrics), checks, str(device),
                        elapsed, stats)


def fig1_title(cfg: Fig1Config) -> str:
    return (f"[YZ] Fig 1: post-norm vs pre-norm Transformer at default init (L = {cfg.depth}, H = {cfg.heads}, "
            f"FFN {cfg.ffn}d; same weights and input)")


def fig1_panels(result: FigureResult) -> list:
    from ..output.plotting import Panel

    labels = ("post-norm", "pre-norm")
    return [
        Panel("token similarity of block output X_k", tuple(f"{a}/t_sim" for a in FIG1_ARCHS), "t_sim",
              labels=labels, bounds=(0, 1)),
        Panel("mean pairwise cosine similarity of tokens", tuple(f"{a}/mean_cosine" for a in FIG1_ARCHS),
              "mean cos(x_i, x_j), i != j", labels=labels, bounds=(-1, 1)),
        Panel("gradient norm of block k's parameters", tuple(f"{a}/grad_norm" for a in FIG1_ARCHS),
              "||dloss/dtheta_k||", labels=labels),  # within a factor ~3: a log axis would show one tick
    ]


def fig1_findings(result: FigureResult) -> dict:
    """The numbers README quotes from this run (see :mod:`simulations.readme`)."""
    q = Quoter(result)
    out = {}
    for a in FIG1_ARCHS:
        t_sim, cosine, grad = q.means(f"{a}/t_sim"), q.means(f"{a}/mean_cosine"), q.means(f"{a}/grad_norm")
        L = max(t_sim)
        steps, _, lo, hi = result.series(f"{a}/t_sim")
        out[a] = {"t_sim_first": t_sim[0], "t_sim_last": t_sim[L], "cosine_last": cosine[L],
                  "grad_norm_block_1": grad[1], "grad_norm_last": grad[L],
                  "t_sim_last_ci": [lo[steps.index(L)], hi[steps.index(L)]]}
    return q.finish({"depth": L, **out})


def render_fig1_findings(f: dict) -> str:
    post, pre = f["post"], f["pre"]
    if "t_sim_last_ci" in pre and "t_sim_last_ci" in post:  # the verdict only where the 95% intervals part
        (pre_lo, pre_hi), (post_lo, post_hi) = pre["t_sim_last_ci"], post["t_sim_last_ci"]
        verdict = ("pre-norm escalates more slowly than post-norm" if pre_hi < post_lo else
                   "pre-norm escalates faster than post-norm" if pre_lo > post_hi else
                   "this run cannot tell the two paces apart (" + ("their 95% intervals overlap" if math.isfinite(
                       pre_lo + post_lo) else "one trial has no interval") + ")")
    else:  # records from before the intervals were stored
        verdict = "pre-norm escalates " + ("more slowly than" if pre["t_sim_last"] < post["t_sim_last"] else
                                           "no more slowly than") + " post-norm"
    return (f"With the same weights and input (fig1, T = {f['trials']}), t_sim of the block outputs goes from "
            f"{sig(post['t_sim_first'])} to {sig(post['t_sim_last'])} over {f['depth']} post-norm blocks and to "
            f"{sig(pre['t_sim_last'])} over {f['depth']} pre-norm blocks (mean pairwise cosine of the last "
            f"block's tokens {sig(post['cosine_last'])} and {sig(pre['cosine_last'])}): {verdict}.")
