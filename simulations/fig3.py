r"""[YZ] Figure 3: the random attention chain, measured against C6's estimate and bound.

$X_0$ iid $N(0,1)$ ``(n, d)``; for $k = 1..L$: $P_k$ from the chosen family, $W_k$ iid $N(0, 1/d)$ (or Haar
orthogonal, ``weights``), $X_k = P_k X_{k-1} W_k$ rescaled to $\|X_k\| = \sqrt{nd}$ (all recorded quantities
are scale-free).

- ``softmax``: $P = \mathrm{softmax}(\beta Z)$, $Z$ iid $N(0,1)$, independent of $X$ (C8: C6 may fail per step);
- ``symmetric``: symmetric doubly stochastic $P$ with orthogonal $W$ (C6 must hold in every trial and step;
  the run checks it). With Gaussian $W$ C6 holds for the ratio of expectations only, and single steps can
  fail at small d, so the run then reports violations instead of asserting none;
- ``data``: $P = \mathrm{softmax}(X W_Q (X W_K)^T/\sqrt d)$ (collapses doubly exponentially).
"""

from __future__ import annotations

import math
import time

import torch

import theory as T

from .checkpoint import Checkpoint
from .config import Fig3Config
from .engine import Block, resolve_device, resolve_dtype, run_chunks
from .numerics import mask_below_floor
from .result import FigureResult

__all__ = ["simulate_fig3", "fig3_panels", "fig3_title", "initial_tokens", "draw_step", "FIG3_METRICS"]

FIG3_METRICS = T.STEP_METRICS


def _gaussian(ch: Block, rows: int, cols: int, std: float = 1.0) -> torch.Tensor:
    """iid N(0, std^2) ``(c, rows, cols)``, drawn in float32 (six times faster than float64 on the CPU) and
    used in the run's dtype: the inputs are random anyway; every computation on them is in the run's dtype."""
    return ch.random.draw(T.random_gaussian, rows, cols, std=std, dtype=torch.float32).to(ch.random.dtype)


def initial_tokens(cfg: Fig3Config, ch: Block) -> torch.Tensor:
    """X_0 iid N(0, 1) ``(c, n, d)``."""
    return _gaussian(ch, cfg.tokens, cfg.width)


def draw_step(cfg: Fig3Config, ch: Block, X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(P_k ``(c, n, n)``, W_k ``(c, d, d)``) for one layer, in this order from each block's generator."""
    n, d = cfg.tokens, cfg.width
    if cfg.attention == "softmax":
        P = T.attention_from_scores(cfg.beta * _gaussian(ch, n, n))
    elif cfg.attention == "symmetric":
        P = ch.random.draw(T.random_symmetric_doubly_stochastic, n)
    else:
        P = ch.random.draw(T.data_attention, per_trial=(X,))
    if cfg.weight_family == "orthogonal":
        W = ch.random.draw(T.random_orthogonal, d)  # norms kept, so C6 applies per step
    else:
        W = _gaussian(ch, d, d, std=1 / math.sqrt(d))
    return P, W


def _chain(cfg: Fig3Config, ch: Block) -> tuple[dict[str, torch.Tensor], dict[str, int]]:
    n, d, L = cfg.tokens, cfg.width, cfg.depth
    X = initial_tokens(cfg, ch)  # (c, n, d)
    values: dict[str, list[torch.Tensor]] = {m: [] for m in (*FIG3_METRICS, "identity_error", "bound_slack")}
    values["t_sim"].append(T.token_similarity(X))
    t_div_x = T.token_diversity(X)  # X_0 is iid Gaussian: far above the precision floor
    values["t_div"].append(t_div_x)
    for _ in range(L):
        P, W = draw_step(cfg, ch, X)
        Y = P @ X @ W
        metrics = T.step_metrics(X, Y, P, validate=False)  # inputs come from theory's samplers
        t_div_y = metrics["t_div"]  # before masking: the next step's t_div(X)
        metrics = _mask_unresolved(metrics, t_div_x, cfg)
        slack = metrics["bound_slack"]
        metrics["bound_violated"] = torch.where(slack.isfinite(), (slack < -_tolerance(cfg)).to(slack.dtype), slack)
        for m, v in metrics.items():
            values.setdefault(m, []).append(v)
        # rescale to ||Y|| = sqrt(n d) with the largest entry first, so tiny or huge Y cannot under/overflow
        Y = Y / Y.abs().amax(dim=(-2, -1), keepdim=True)
        X, t_div_x = Y * (math.sqrt(n * d) / torch.linalg.matrix_norm(Y)[..., None, None]), t_div_y
    out = {m: torch.stack(v, dim=-1) for m, v in values.items()}  # (c, L or L + 1)
    return out, {m: (0 if m in ("t_sim", "t_div") else 1) for m in out}


def simulate_fig3(cfg: Fig3Config, *, keep_trials: bool = False, progress: bool | None = None,
                  checkpoint: Checkpoint | None = None) -> FigureResult:
    """Run Figure 3's chain for ``cfg``; a pure function of the config (and the device it runs on)."""
    device, dtype = resolve_device(cfg.device), resolve_dtype(cfg.dtype)
    t0 = time.perf_counter()
    stats = run_chunks(lambda ch: _chain(cfg, ch), trials=cfg.trials, seed=cfg.seed, steps=cfg.depth + 1,
                       chunk=cfg.chunk, rng_block=cfg.rng_block, device=device, dtype=dtype,
                       keep_trials=keep_trials, progress=progress, desc=f"fig3 ({cfg.attention})",
                       checkpoint=checkpoint)
    counts, shares = stats.count("bound_violated"), stats.mean("bound_violated")
    violations = int(round(float((counts * shares)[counts > 0].sum())))
    checks = {
        "C2_identity_max_rel_error": stats.maximum("identity_error"),
        "C6_min_slack": stats.minimum("bound_slack"),
        "C6_steps_checked": int(counts.sum()),
        "C6_violations": violations,
        "C6_violation_share": violations / max(int(counts.sum()), 1),
        # values left out of the statistics: undefined (0/0) or below the dtype's precision floor
        "excluded_values": stats.excluded_counts(),
    }
    if cfg.attention == "symmetric" and cfg.weight_family == "orthogonal":  # C6's hypotheses: a theorem per step
        checks["C6_holds_every_step"] = violations == 0
    return FigureResult("fig3", {"figure": "fig3", **cfg.to_dict()}, stats.rows(list(FIG3_METRICS)), checks,
                        str(device), time.perf_counter() - t0, stats)


def _mask_unresolved(metrics: dict[str, torch.Tensor], t_div_x: torch.Tensor, cfg: Fig3Config
                     ) -> dict[str, torch.Tensor]:
    """NaN (left out, counted) where t_div is below the precision floor: t_div itself and xi1/xi2 (their
    centred parts are rounding noise there). t_sim, r and the attention quantities stay trustworthy."""
    dtype = resolve_dtype(cfg.dtype)
    (metrics["t_div"],) = mask_below_floor(metrics["t_div"], dtype=dtype)
    _, metrics["xi_ratio_minus_1"], metrics["identity_error"] = mask_below_floor(
        torch.minimum(t_div_x, metrics["t_div"].nan_to_num(0.0)), metrics["xi_ratio_minus_1"],
        metrics["identity_error"], dtype=dtype)
    return metrics


def _tolerance(cfg: Fig3Config) -> float:
    """Rounding allowance for the C6 check, relative to r ~ 1: a few thousand ulps of the dtype."""
    return 1e-9 if cfg.dtype == "float64" else 1e-4


def fig3_panels(result: FigureResult) -> list:
    from .plotting import Panel

    return [
        Panel("token similarity and diversity", ("t_sim", "t_div"), "share of ||X||^2", log=True),
        Panel("growth-factor ratio", ("xi_ratio_minus_1",), "xi1/xi2 - 1", labels=("measured",)),
        Panel("escalation rate r(X_{k-1}, X_k) - 1", ("r", "r_estimate", "r_bound"), "r - 1", log=True,
              labels=("measured", "C6 estimate 1/(s+mu^2(1-s))", "C6 bound 1/(s+delta^2(1-s))"),
              predicted=("r_estimate", "r_bound"), transform="minus_one"),
        Panel("attention quantities (D5)", ("delta", "sigma", "mu", "omega"), "value"),
    ]


def fig3_title(cfg: Fig3Config) -> str:
    beta = f", beta = {cfg.beta:g}" if cfg.attention != "symmetric" else ""
    return f"[YZ] Fig 3: random attention chain ({cfg.attention} attention{beta}, {cfg.weight_family} W)"
