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

from .config import Fig3Config
from .engine import Chunk, resolve_device, resolve_dtype, run_chunks
from .numerics import mask_below_floor
from .result import FigureResult

__all__ = ["simulate_fig3", "fig3_panels", "fig3_title", "FIG3_METRICS"]

FIG3_METRICS = T.STEP_METRICS


def _attention(cfg: Fig3Config, ch: Chunk, X: torch.Tensor) -> torch.Tensor:
    n = cfg.tokens
    if cfg.attention == "softmax":
        return ch.random.draw(T.softmax_attention, n, beta=cfg.beta)
    if cfg.attention == "symmetric":
        return ch.random.draw(T.random_symmetric_doubly_stochastic, n)
    return ch.random.draw(T.data_attention, per_trial=(X,))


def _chain(cfg: Fig3Config, ch: Chunk) -> tuple[dict[str, torch.Tensor], dict[str, int]]:
    n, d, L = cfg.tokens, cfg.width, cfg.depth
    X = ch.random.draw(T.random_tokens, n, d)  # (c, n, d)
    values: dict[str, list[torch.Tensor]] = {m: [] for m in (*FIG3_METRICS, "identity_error", "bound_slack")}
    values["t_sim"].append(T.token_similarity(X))
    values["t_div"].append(T.token_diversity(X))  # X_0 is iid Gaussian: far above the precision floor
    for _ in range(L):
        P = _attention(cfg, ch, X)  # (c, n, n)
        if cfg.weight_family == "orthogonal":
            W = ch.random.draw(T.random_orthogonal, d)  # (c, d, d); norms kept, so C6 applies per step
        else:
            W = ch.random.draw(T.random_gaussian, d, d, std=1 / math.sqrt(d))  # (c, d, d)
        Y = P @ X @ W
        metrics = _mask_unresolved(T.step_metrics(X, Y, P), T.token_diversity(X), cfg)
        slack = metrics["bound_slack"]
        metrics["bound_violated"] = torch.where(slack.isfinite(), (slack < -_tolerance(cfg)).to(slack.dtype), slack)
        for m, v in metrics.items():
            values.setdefault(m, []).append(v)
        # rescale to ||Y|| = sqrt(n d) with the largest entry first, so tiny or huge Y cannot under/overflow
        Y = Y / Y.abs().amax(dim=(-2, -1), keepdim=True)
        X = Y * (math.sqrt(n * d) / torch.linalg.matrix_norm(Y)[..., None, None])
    out = {m: torch.stack(v, dim=-1) for m, v in values.items()}  # (c, L or L + 1)
    return out, {m: (0 if m in ("t_sim", "t_div") else 1) for m in out}


def simulate_fig3(cfg: Fig3Config, *, keep_trials: bool = False, progress: bool | None = None) -> FigureResult:
    """Run Figure 3's chain for ``cfg``; a pure function of the config (and the device it runs on)."""
    device, dtype = resolve_device(cfg.device), resolve_dtype(cfg.dtype)
    t0 = time.perf_counter()
    stats = run_chunks(lambda ch: _chain(cfg, ch), trials=cfg.trials, seed=cfg.seed, steps=cfg.depth + 1,
                       chunk=cfg.chunk, rng_block=cfg.rng_block, device=device, dtype=dtype,
                       keep_trials=keep_trials, progress=progress, desc=f"fig3 ({cfg.attention})")
    counts, shares = stats.count("bound_violated"), stats.mean("bound_violated")
    violations = int(round(float((counts * shares)[counts > 0].sum())))
    checks = {
        "C2_identity_max_rel_error": stats.maximum("identity_error"),
        "C6_min_slack": stats.minimum("bound_slack"),
        "C6_steps_checked": int(counts.sum()),
        "C6_violations": violations,
        "C6_violation_share": violations / max(int(counts.sum()), 1),
        # values left out of the statistics: undefined (0/0) or below the dtype's precision floor
        "excluded_values": {m: n for m, n in stats.excluded.items() if n},
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
