r"""[YZ] Figure 5: de-escalation keeps token diversity in deep post-norm Transformers (C11).

Per trial one seed builds a de-escalated post-norm stack for every $\tau$ in ``cfg.taus`` and a plain
post-norm reference (:mod:`simulations.engine.blocks`; de-escalation has no parameters, so all share the same
weights), all run on the same $X_0$ iid $N(0,1)$ ``(n, d)``. De-escalation $(I - \tau\Pi)$ sits at
``cfg.deescalate_at`` (default: on the residual stream after the attention residual add, before LayerNorm).
Per block: ``tau=<tau>/t_div`` and ``tau=<tau>/t_sim`` of the block output (``tau`` formatted with ``:g``), and
``post/t_div``, ``post/t_sim``; step 0 is $X_0$. ``t_div`` below the dtype's precision floor is left out.
"""

from __future__ import annotations

import torch
from torch import Tensor

import theory as T

from ..engine.blocks import build_stack
from ..engine.checkpoint import Checkpoint
from ..engine.config import Fig5Config
from ..engine.runner import resolve_dtype
from ..output.quoting import Quoter, sig
from ..engine.numerics import mask_below_floor
from ..engine.result import FigureResult
from ..engine.trials import run_trials

__all__ = ["simulate_fig5", "fig5_panels", "fig5_title", "fig5_findings", "render_fig5_findings",
           "fig5_variants"]


def fig5_variants(cfg: Fig5Config) -> dict[str, tuple[str, float]]:
    """Metric prefix -> (arch, tau): ``tau=0.1`` -> ("deescalated", 0.1), ..., ``post`` -> ("post", 0)."""
    out = {f"tau={tau:g}": ("deescalated", float(tau)) for tau in cfg.taus}
    return {**out, "post": ("post", 0.0)}


def _trial(cfg: Fig5Config, dtype: torch.dtype):
    def trial(seed: int, X0: Tensor, g: torch.Generator) -> dict[str, Tensor]:
        out = {}
        for prefix, (arch, tau) in fig5_variants(cfg).items():
            model = build_stack(arch, width=cfg.width, heads=cfg.heads, ffn=cfg.ffn, depth=cfg.depth, seed=seed,
                                dtype=dtype, device=X0.device, tau=tau, deescalate_at=cfg.deescalate_at)
            with torch.no_grad():
                _, traces = model(X0)
            X = torch.cat([X0, *(t.out for t in traces)])  # (L + 1, n, d)
            out[f"{prefix}/t_sim"] = T.token_similarity(X)
            out[f"{prefix}/t_div"], = mask_below_floor(T.token_diversity(X), dtype=dtype)
        return out
    return trial


def simulate_fig5(cfg: Fig5Config, *, keep_trials: bool = False, progress: bool | None = None,
                  checkpoint: Checkpoint | None = None) -> FigureResult:
    """Run Figure 5 for ``cfg``; a pure function of the config (and the device it runs on)."""
    dtype = resolve_dtype(cfg.dtype)
    metrics = [f"{p}/{q}" for p in fig5_variants(cfg) for q in ("t_div", "t_sim")]
    stats, device, elapsed = run_trials(cfg, _trial(cfg, dtype), {}, desc="fig5", keep_trials=keep_trials,
                                        progress=progress, checkpoint=checkpoint)
    checks = {f"mean_{m}_first_last": [float(stats.mean(m)[0]), float(stats.mean(m)[-1])] for m in metrics}
    checks["excluded_values"] = stats.excluded_counts()
    return FigureResult("fig5", {"figure": "fig5", **cfg.to_dict()}, stats.rows(metrics), checks, str(device),
                        elapsed, stats)


def fig5_title(cfg: Fig5Config) -> str:
    return (f"[YZ] Fig 5: de-escalated post-norm Transformers, (I - tau Pi) at {cfg.deescalate_at} "
            f"(L = {cfg.depth}, H = {cfg.heads}; same weights and input)")


def fig5_panels(result: FigureResult) -> list:
    from ..output.plotting import Panel

    prefixes = list(dict.fromkeys(m.split("/")[0] for m in result.metrics))
    labels = tuple("post-norm (no de-escalation)" if p == "post" else p.replace("tau=", "tau = ") for p in prefixes)
    return [
        Panel("token diversity of block output X_k", tuple(f"{p}/t_div" for p in prefixes), "t_div", log=True,
              labels=labels, predicted=("post/t_div",), bounds=(0, 1)),
        Panel("token similarity of block output X_k", tuple(f"{p}/t_sim" for p in prefixes), "t_sim",
              labels=labels, predicted=("post/t_sim",), bounds=(0, 1)),
    ]


def fig5_findings(result: FigureResult) -> dict:
    """The numbers README quotes from this run (see :mod:`simulations.readme`): per variant ("tau=0.5", ...,
    "post") t_div and t_sim of the input and of the last block."""
    q = Quoter(result)
    variants = list(dict.fromkeys(m.split("/")[0] for m in result.metrics))
    L = max(result.series("post/t_sim")[0])
    out = {"depth": L, "variants": variants}
    for name in ("t_div", "t_sim"):
        means = {v: q.means(f"{v}/{name}") for v in variants}
        out[f"{name}_first"] = {v: m.get(0, float("nan")) for v, m in means.items()}
        out[f"{name}_last"] = {v: m.get(L, float("nan")) for v, m in means.items()}  # NaN: no trial left
    return q.finish(out)


def render_fig5_findings(f: dict) -> str:
    taus = [v for v in f["variants"] if v != "post"]
    kept = ", ".join(f"{sig(f['t_div_last'][v])} at {v.replace('tau=', 'tau = ')}" for v in taus)
    t_sim = ", ".join(sig(f["t_sim_last"][v]) for v in taus)
    return (f"De-escalated post-norm stacks (fig5, T = {f['trials']}, same weights and input) end {f['depth']} "
            f"blocks with t_div {kept}, where plain post-norm ends at {sig(f['t_div_last']['post'])} (the input's "
            f"t_div is {sig(f['t_div_first']['post'])}; t_sim of the last block {t_sim} against "
            f"{sig(f['t_sim_last']['post'])}).")
