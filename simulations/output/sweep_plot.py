"""A sweep's phase diagrams: one panel per summary scalar over the swept flags (nothing here computes a result).

One swept flag: the scalar against it (a predicted value, where the summary has one, dashed beside the measured
one), on a log axis where its values are positive and span more than a factor 100 (as the maps' colours). Two or
more: a heat map over the first two flags, annotated with its values, one row of maps per combination of the
others. A NaN cell (no value: a law outside its regime, a rate with no fit) is left blank.
"""

from __future__ import annotations

import itertools
import math

import matplotlib.pyplot as plt
from matplotlib.colors import LogNorm, Normalize
import numpy as np

__all__ = ["plot_sweep", "SUMMARY_LABELS"]

SUMMARY_LABELS = {
    "C6_violation_share": "share of steps where C6's bound fails",
    "delta_mean": "mean delta (layers)",
    "delta_predicted": "predicted mean delta (blank: outside the law's regime)",
    "t_div_ratio_per_layer": "fitted linear rate: t_div factor per layer",
    "t_sim_last": "t_sim at the last layer",
    "t_div_last": "t_div = 1 - t_sim at the last layer",
    "t_div_last_tau": "t_div at the last block, de-escalated",
    "r_first": "r at the first block",
    "t_div_last_post": "t_div at the last block, plain post-norm",
    "stable_rank_last": "stable rank at the last layer",
    "dong_residual_last": "Dong residual at the last layer",
    "mean_cosine_last": "mean cosine at the last layer",
    "stable_rank_minus_1_last": "stable rank - 1 at the last layer",
    "one_minus_mean_cosine_last": "1 - mean cosine at the last layer",
}
# t_sim at the last layer is shown as its complement t_div (exact, on a log scale): near 1, t_sim's own digits
# are all 9s and a colour map cannot tell the points apart
# the half-width qualifies the findings' prose, not a map
_UNPLOTTED = ("t_sim_last", "delta_ci_halfwidth")
# stable rank and mean cosine are mapped as their excesses over 1 (below 1 for the cosine) where a record has
# them, exact where the metrics read 1.00 (a map of 1.00s tells nothing); older records keep their own maps
_MAPPED_AS = {"stable_rank_last": "stable_rank_minus_1_last", "mean_cosine_last": "one_minus_mean_cosine_last"}
_PAIRS = {"delta_mean": "delta_predicted", "t_div_last_tau": "t_div_last_post"}  # drawn in one panel (1-D sweeps)


def _fmt(v: float) -> str:
    if not math.isfinite(v):
        return ""
    return f"{v:.4g}" if 0.999 < abs(v) < 1.001 else f"{v:.3g}"  # near 1 a fourth digit tells points apart


def _log_scaled(values) -> bool:
    """Whether a panel's finite values are drawn on a log scale: all positive, spanning more than a factor 100."""
    vals = np.asarray(values, dtype=float)
    vals = vals[np.isfinite(vals)]
    return vals.size > 0 and bool((vals > 0).all()) and vals.max() > 100 * vals.min()


def plot_sweep(figure: str, swept: dict[str, list], results: list[dict], title: str) -> plt.Figure:
    names = list(swept)
    summary = results[0]["summary"]
    keys = [k for k in summary if (k not in _PAIRS.values() or len(names) > 1) and k not in _UNPLOTTED
            and _MAPPED_AS.get(k) not in summary]
    value = {(tuple(r["point"][n] for n in names), k): (math.nan if r["summary"].get(k) is None else r["summary"][k])
             for r in results for k in r["summary"]}
    if len(names) == 1:
        fig, axes = plt.subplots(1, len(keys), figsize=(4.6 * len(keys), 3.8), squeeze=False)
        xs = swept[names[0]]
        numeric = all(isinstance(x, (int, float)) for x in xs)
        pos = xs if numeric else list(range(len(xs)))
        for ax, k in zip(axes.flat, keys):
            shown = [value[((x,), k)] for x in xs]
            # categories (attention ensembles, archs) as points: a line between them would suggest an order
            ax.plot(pos, shown, "o-" if numeric else "o", label="measured")
            if k in _PAIRS:
                other = [value.get(((x,), _PAIRS[k]), math.nan) for x in xs]
                if any(math.isfinite(v) for v in other):
                    ax.plot(pos, other, "s--" if numeric else "s", label=SUMMARY_LABELS.get(_PAIRS[k], _PAIRS[k]))
                    ax.legend(fontsize=7)
                    shown = shown + other
            if _log_scaled(shown):  # as the maps: t_div and the excesses span decades, a linear axis shows 0s
                ax.set_yscale("log")
            if not numeric:
                ax.set_xticks(pos, [str(x) for x in xs])
            ax.set_xlabel(names[0])
            ax.set_title(SUMMARY_LABELS.get(k, k), fontsize=9)
            ax.grid(alpha=0.3)
    else:
        rest = names[2:]
        combos = list(itertools.product(*(swept[n] for n in rest))) or [()]
        cols = min(3, len(keys)) if len(combos) == 1 else len(keys)
        per_combo = -(-len(keys) // cols)
        fig, axes = plt.subplots(len(combos) * per_combo, cols, figsize=(4.4 * cols, 3.6 * len(combos) * per_combo),
                                 squeeze=False)
        xs, ys = swept[names[0]], swept[names[1]]
        for row, combo in enumerate(combos):
            cells = axes[row * per_combo:(row + 1) * per_combo].flat
            for ax in list(axes[row * per_combo:(row + 1) * per_combo].flat)[len(keys):]:
                ax.set_visible(False)
            for ax, k in zip(cells, keys):
                grid = np.array([[value.get(((x, y, *combo), k), math.nan) for x in xs] for y in ys], dtype=float)
                finite = np.isfinite(grid)
                vals = grid[finite]
                log = _log_scaled(vals)
                # values equal to 1e-9 (stable rank and mean cosine saturated at 1): one colour, not rounding noise
                # spread over the whole colour map
                flat = vals.size > 0 and vals.max() - vals.min() <= 1e-9 * np.abs(vals).max()
                norm = LogNorm(vals.min(), vals.max()) if log else None
                shown = grid
                if flat:  # every cell the colour map's middle (the numbers written on them stay the values)
                    mid = float(vals.mean())
                    shown, norm = np.where(finite, mid, np.nan), Normalize(mid - 1, mid + 1)
                im = ax.imshow(np.where(finite, shown, np.nan), origin="lower", aspect="auto", cmap="viridis",
                               norm=norm)
                for (i, j), v in np.ndenumerate(grid):
                    if finite[i, j]:
                        lo, hi = (np.log(vals.min()), np.log(vals.max())) if log else (vals.min(), vals.max())
                        dark = not flat and hi > lo and ((np.log(v) if log else v) - lo) / (hi - lo) > 0.6
                        ax.text(j, i, _fmt(v), ha="center", va="center", fontsize=7, color="black" if dark else "white")
                ax.set_xticks(range(len(xs)), [str(x) for x in xs])
                ax.set_yticks(range(len(ys)), [str(y) for y in ys])
                ax.set_xlabel(names[0])
                ax.set_ylabel(names[1])
                where = ", ".join(f"{n} = {v}" for n, v in zip(rest, combo))
                ax.set_title(SUMMARY_LABELS.get(k, k) + (f"\n({where})" if where else "")
                             + ("\n(equal at every point to 1e-9)" if flat and vals.size > 1 else ""), fontsize=9)
                bar = fig.colorbar(im, ax=ax, shrink=0.8)
                if not log:
                    bar.formatter.set_useOffset(False)
                    bar.update_ticks()
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
