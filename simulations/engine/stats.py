"""Streaming statistics: mean and 95% confidence interval per (step, metric), merged block by block.

Each random-number block's values are reduced on their own (count, mean, sqrt(M2)) and merged in block order
with Chan's parallel update, so the result depends on the blocks, never on how blocks are grouped into chunks.
Non-finite values (a quantity undefined for that trial, e.g. 0/0 once t_div underflows) are left out and
counted separately. Per-trial values are kept only when asked (``keep_trials``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

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
        # the root of the summed squared deviations from the mean, sqrt(M2) (Welford's and Chan's M2): kept as a
        # root, formed from scaled deviations and merged with hypot, so it neither overflows nor underflows where
        # the values' spread is a normal number (M2 itself left the float range beyond about 1e+-154)
        self._rss: dict[str, np.ndarray] = {}
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
            n_b, mean_b, rss_b, lo_b, hi_b = _summary(v, k0)
            self.excluded[metric] = self.excluded.get(metric, 0) + int(v.shape[0] * v.shape[1] - n_b.sum())
            if self.keep_trials:
                v = np.concatenate([np.full((v.shape[0], k0), np.nan), v.cpu().numpy()], axis=1)
            if metric not in self._count:
                self._count[metric], self._mean[metric], self._rss[metric] = n_b, mean_b, rss_b
                self._min[metric], self._max[metric] = lo_b, hi_b
            else:
                n_a, mean_a, rss_a = self._count[metric], self._mean[metric], self._rss[metric]
                n = n_a + n_b
                with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
                    delta = mean_b - mean_a
                    self._mean[metric] = np.where(n > 0, mean_a + delta * n_b / np.maximum(n, 1), 0.0)
                    # Chan: M2 = M2_a + M2_b + delta^2 n_a n_b / n, as roots; the cross term only where both have
                    # values (an empty block's mean is a placeholder 0: its delta would make inf * 0 = NaN)
                    both = (n_a > 0) & (n_b > 0)
                    cross = np.where(both, np.abs(delta) * np.sqrt(n_a * n_b / np.maximum(n, 1)), 0.0)
                    self._rss[metric] = np.hypot(np.hypot(rss_a, rss_b), cross)
                self._count[metric] = n
                self._min[metric] = np.minimum(self._min[metric], lo_b)
                self._max[metric] = np.maximum(self._max[metric], hi_b)
            if self.keep_trials:
                self.trials.setdefault(metric, []).append(v)

    _ARRAYS = ("_count", "_mean", "_rss", "_min", "_max")

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
        with np.errstate(invalid="ignore", divide="ignore"):
            sd = self._rss[metric] / np.sqrt(n - 1)
            return np.where(n > 1, stdtrit(np.maximum(n - 1, 1), 0.975) * sd / np.sqrt(n), np.nan)

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


def _summary(v: torch.Tensor, k0: int) -> tuple[np.ndarray, ...]:
    """(count, mean, root sum of squared deviations, min, max) per step of one block's finite values ``v``
    ``(trials, steps - k0)``, computed on ``v``'s device (the ``k0`` steps before the first have no values) and
    brought to the host in one transfer."""
    finite = torch.isfinite(v)
    n = finite.sum(0).to(v.dtype)
    safe = torch.where(finite, v, 0.0)
    mean = torch.where(n > 0, safe.sum(0) / n.clamp_min(1), 0.0)
    # where values near the float's largest overflowed their sum (not their mean): the sum of the values over n
    # (without a host sync: both computed, the second kept only there); a huge spread stays inf, honestly
    mean = torch.where(torch.isfinite(mean), mean, (safe / n.clamp_min(1)).sum(0))
    dev = torch.where(finite, v - mean, 0.0)
    # sqrt(sum of dev^2), each step's deviations scaled by their largest first: no over- or underflow
    scale = dev.abs().amax(0)
    unit = torch.where(scale > 0, scale, 1.0)
    rss = torch.where(scale > 0, scale * (dev / unit).square().sum(0).sqrt(), 0.0)
    lo = torch.where(finite, v, math.inf).amin(0)
    hi = torch.where(finite, v, -math.inf).amax(0)
    out = torch.stack([n, mean, rss, lo, hi]).cpu().numpy()
    empty = np.array([[0.0], [0.0], [0.0], [np.inf], [-np.inf]]).repeat(k0, axis=1)
    return tuple(np.concatenate([empty, out], axis=1))
