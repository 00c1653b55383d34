"""Streaming statistics: mean and 95% confidence interval per (step, metric), merged block by block.

Each random-number block's values are reduced on their own (count, mean, root-mean-square deviation) and merged
in block order with Chan's parallel update, so the result depends on the blocks, never on how blocks are grouped
into chunks. Both the reduction and the merge work per step in units of a power of two (exact) that brings the
step's largest quantity into [1/2, 1): finite values up to the float's largest neither overflow a sum, a
difference of means nor a deviation (a review found data attention's xi ratio, ~1e306, written as -inf, nan and
+-inf), and give the same bits as unscaled arithmetic wherever that did not overflow.
Non-finite values (a quantity undefined for that trial, e.g. 0/0 once t_div underflows) are left out and
counted separately. Per-trial values are kept only when asked (``keep_trials``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from theory._similarity import ldexp

__all__ = ["StreamingStats", "SummaryRow", "standard_error"]


@dataclass(frozen=True)
class SummaryRow:
    step: int
    metric: str
    mean: float
    ci_low: float
    ci_high: float
    count: int


class StreamingStats:
    """Accumulates ``values[metric]`` of shape ``(trials, steps)`` over blocks of trials."""

    def __init__(self, steps: int, *, keep_trials: bool = False) -> None:
        self.steps = steps
        self.keep_trials = keep_trials
        self._count: dict[str, np.ndarray] = {}
        self._mean: dict[str, np.ndarray] = {}
        # the root-mean-square deviation from the mean, sqrt(M2 / n) (Welford's and Chan's M2): a root, formed
        # from scaled deviations and merged with hypot, so it neither overflows nor underflows where the values'
        # spread is a normal number (M2 itself left the float range beyond about 1e+-154, and sqrt(M2) where the
        # spread times sqrt(n) passed the float's largest)
        self._rms: dict[str, np.ndarray] = {}
        self._min: dict[str, np.ndarray] = {}
        self._max: dict[str, np.ndarray] = {}
        self.excluded: dict[str, int] = {}
        self.trials: dict[str, list[np.ndarray]] = {}
        # seconds that earlier processes of the same run spent on the chunks restored from a checkpoint, so that a
        # resumed run reports the time of the whole (:func:`simulations.engine.runner.run_chunks`)
        self.earlier_seconds = 0.0

    def update(self, values: dict[str, torch.Tensor], first_step: dict[str, int] | None = None) -> None:
        """Merge one block: ``values[metric]`` is ``(block_trials, steps - first_step[metric])``.

        Steps before ``first_step`` (default 0) have no value for that metric; every non-finite value at a
        later step is an undefined quantity, left out of the statistics and counted in :attr:`excluded`.
        """
        first_step = first_step or {}
        for metric, v in values.items():
            k0 = first_step.get(metric, 0)
            if v.ndim != 2 or v.shape[1] != self.steps - k0:
                raise ValueError(f"{metric}: expected (trials, {self.steps - k0}) values; got shape "
                                 f"{tuple(v.shape)}")
            v = v.detach().to(torch.float64)
            # summarised where the values are (on a GPU: (steps,) arrays cross to the host, not the values)
            n_b, mean_b, rms_b, lo_b, hi_b = _summary(v, k0)
            self.excluded[metric] = self.excluded.get(metric, 0) + int(v.shape[0] * v.shape[1] - n_b.sum())
            if self.keep_trials:
                v = np.concatenate([np.full((v.shape[0], k0), np.nan), v.cpu().numpy()], axis=1)
            if metric not in self._count:
                self._count[metric], self._mean[metric], self._rms[metric] = n_b, mean_b, rms_b
                self._min[metric], self._max[metric] = lo_b, hi_b
            else:
                n_a, mean_a, rms_a = self._count[metric], self._mean[metric], self._rms[metric]
                self._mean[metric], self._rms[metric] = _merged(n_a, mean_a, rms_a, n_b, mean_b, rms_b)
                n = n_a + n_b
                self._count[metric] = n
                self._min[metric] = np.minimum(self._min[metric], lo_b)
                self._max[metric] = np.maximum(self._max[metric], hi_b)
            if self.keep_trials:
                self.trials.setdefault(metric, []).append(v)

    _ARRAYS = ("_count", "_mean", "_rms", "_min", "_max")

    def state(self) -> dict[str, np.ndarray]:
        """Everything needed to continue accumulating, as flat numpy arrays (for checkpoints; exact)."""
        out = {"steps": np.array(self.steps), "keep_trials": np.array(self.keep_trials)}
        for metric in self._count:
            for name in self._ARRAYS:
                out[f"{name}/{metric}"] = getattr(self, name)[metric]
            out[f"excluded/{metric}"] = np.array(self.excluded.get(metric, 0))
            if self.keep_trials:
                out[f"trials/{metric}"] = self.trial_values(metric)
        return out

    @classmethod
    def from_state(cls, state: dict[str, np.ndarray]) -> "StreamingStats":
        st = cls(int(state["steps"]), keep_trials=bool(state["keep_trials"]))
        for key, value in state.items():
            if "/" not in key:
                continue
            name, metric = key.split("/", 1)
            if name == "excluded":
                st.excluded[metric] = int(value)
            elif name == "trials":
                st.trials[metric] = [np.asarray(value)]
            else:
                getattr(st, name)[metric] = np.asarray(value)
        return st

    def excluded_counts(self) -> dict[str, int]:
        """Values left out of the statistics (undefined or below precision), per metric that had any."""
        return {m: n for m, n in self.excluded.items() if n}

    @property
    def metrics(self) -> list[str]:
        return list(self._count)

    def count(self, metric: str) -> np.ndarray:
        return self._count[metric].astype(np.int64)

    def mean(self, metric: str) -> np.ndarray:
        return np.where(self._count[metric] > 0, self._mean[metric], np.nan)

    def minimum(self, metric: str) -> float:
        return float(np.min(self._min[metric]))

    def maximum(self, metric: str) -> float:
        return float(np.max(self._max[metric]))

    def ci_halfwidth(self, metric: str) -> np.ndarray:
        """Student-t 95% half-width of the mean; NaN where fewer than two values."""
        from scipy.special import stdtrit  # Student-t quantile; imported here, it costs start-up time

        n = self._count[metric]
        with np.errstate(invalid="ignore", divide="ignore"):  # sd / sqrt(n) = rms / sqrt(n - 1): no overflow
            return np.where(n > 1, stdtrit(np.maximum(n - 1, 1), 0.975) * (self._rms[metric] / np.sqrt(n - 1)),
                            np.nan)

    def trial_values(self, metric: str) -> np.ndarray:
        if not self.keep_trials:
            raise ValueError("per-trial values were not kept; run with keep_trials=True")
        return np.concatenate(self.trials[metric], axis=0)

    def rows(self, metrics: list[str] | None = None) -> list[SummaryRow]:
        """One row per step and metric that has at least one value, step-major."""
        metrics = self.metrics if metrics is None else metrics
        halfwidths = {m: self.ci_halfwidth(m) for m in metrics}  # once per metric, not once per step and metric
        out = []
        for step in range(self.steps):
            for m in metrics:
                n = int(self._count[m][step])
                if n == 0:
                    continue
                mean, hw = float(self._mean[m][step]), float(halfwidths[m][step])
                out.append(SummaryRow(step, m, mean, mean - hw, mean + hw, n))
        return out


def standard_error(ci_low: float, ci_high: float, count: int) -> float:
    """The standard error of a mean back from its 95% interval as :meth:`StreamingStats.ci_halfwidth` gives it
    (what a CSV row keeps): the half-width over the Student-t quantile; NaN for fewer than two values."""
    from scipy.special import stdtrit

    return (ci_high - ci_low) / (2 * float(stdtrit(count - 1, 0.975))) if count > 1 else math.nan


def _merged(n_a: np.ndarray, mean_a: np.ndarray, rms_a: np.ndarray, n_b: np.ndarray, mean_b: np.ndarray,
            rms_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, rms) of two blocks' values together, from each block's (count, mean, rms), per step: Chan's update,
    M2 = M2_a + M2_b + delta^2 n_a n_b / n, as rms^2 = w_a rms_a^2 + w_b rms_b^2 + w_a w_b delta^2 (w = n_./n),
    in units of 2^e with the four inputs' largest in [1/2, 1) (exact scaling: no overflow where the result fits).
    An empty block's mean is a placeholder 0 with weight 0; its delta takes no part."""
    n = n_a + n_b
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        big = np.maximum.reduce([np.abs(mean_a), np.abs(mean_b), rms_a, rms_b])
        e = np.where(np.isfinite(big) & (big > 0), np.frexp(np.where(np.isfinite(big), big, 1.0))[1], 0)
        ma, mb, ra, rb = (np.ldexp(x, -e) for x in (mean_a, mean_b, rms_a, rms_b))
        delta = mb - ma
        mean = np.where(n > 0, ma + delta * n_b / np.maximum(n, 1), 0.0)
        wa, wb = n_a / np.maximum(n, 1), n_b / np.maximum(n, 1)
        both = (n_a > 0) & (n_b > 0)
        cross = np.where(both, np.abs(delta) * np.sqrt(n_a * n_b) / np.maximum(n, 1), 0.0)
        rms = np.hypot(np.hypot(np.sqrt(wa) * ra, np.sqrt(wb) * rb), cross)
    return np.ldexp(mean, e), np.ldexp(rms, e)


def _summary(v: torch.Tensor, k0: int) -> tuple[np.ndarray, ...]:
    """(count, mean, root-mean-square deviation, min, max) per step of one block's finite values ``v``
    ``(trials, steps - k0)``, computed on ``v``'s device (the ``k0`` steps before the first have no values) and
    brought to the host in one transfer. Each step's values are taken in units of 2^e, e the exponent of their
    largest magnitude (exact): their sum, mean and deviations stay below n, 1 and 2 there."""
    finite = torch.isfinite(v)
    n = finite.sum(0).to(v.dtype)
    safe = torch.where(finite, v, 0.0)
    _, e = torch.frexp(safe.abs().amax(0))  # 0 for a step of zeros (or of no finite value)
    u = ldexp(safe, -e)
    mean = torch.where(n > 0, u.sum(0) / n.clamp_min(1), 0.0)
    dev = torch.where(finite, u - mean, 0.0)
    # sqrt(mean of dev^2), each step's deviations scaled by their largest first: no over- or underflow
    scale = dev.abs().amax(0)
    unit = torch.where(scale > 0, scale, 1.0)
    rms = torch.where(scale > 0, scale * ((dev / unit).square().sum(0) / n.clamp_min(1)).sqrt(), 0.0)
    mean, rms = ldexp(mean, e), ldexp(rms, e)  # theory's: 2^1024 (values from 2^1023 on) in two factors
    lo = torch.where(finite, v, math.inf).amin(0)
    hi = torch.where(finite, v, -math.inf).amax(0)
    out = torch.stack([n, mean, rms, lo, hi]).cpu().numpy()
    empty = np.array([[0.0], [0.0], [0.0], [np.inf], [-np.inf]]).repeat(k0, axis=1)
    return tuple(np.concatenate([empty, out], axis=1))
