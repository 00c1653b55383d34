"""Sweeps: a figure run over a grid of flag values, summarised per grid point into phase diagrams.

``python -m simulations sweep fig3 --beta 0.5,1,2,4 --tokens 16,32,64 --out DIR`` runs fig3 at every point of the
grid (the product of the comma lists; a flag with one value is fixed) on the engine: each point streams its trials
in blocks with a checkpoint of its own, and a finished point is kept in ``DIR/.sweep/``, so an interrupted sweep
run again continues where it stopped. What a point contributes:

- its figure rows (``step,metric,mean,ci_low,ci_high,count``), written to ``DIR/sweep.csv`` with one column per
  swept flag in front;
- its *summary*, a few scalars that make a phase diagram (:data:`SUMMARIES`): for fig3 the C6 violation share,
  mean delta beside theory's prediction (:func:`theory.slem_prediction`, NaN outside the law's regime), the fitted
  linear rate and t_sim at the last layer; for fig2 t_sim at the last block, r at the first and the head-mean
  delta; for fig5 (``--taus`` swept one value per point, its three default values where not given: a point of
  several taus would be summarised by one of them unnamed) t_div at the last block against plain post-norm.

Sweepable: every config field but the engine's own (:data:`UNSWEEPABLE`: where and in what batches a point runs),
which never change what a point measures; ``--rng-block`` and ``--device`` change which random numbers it draws.
Bad input (an unknown or unsweepable flag, an empty list or a repeated value, a value its config rejects, a flag
that no point uses, such as ``--tau`` without ``--arch deescalated``, a grid whose points would not fit in memory)
raises ``ValueError`` before anything runs or is written; a flag only some points use is run and warned about
(:func:`partly_unused`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..engine.checkpoint import Checkpoint
from ..engine.files import atomic_write
from ..engine.memory import check_memory
from ..engine.result import FigureResult
from ..engine.runner import progress_into
from ..engine.stats import SummaryRow

__all__ = ["SweepGrid", "parse_grid", "partly_unused", "run_sweep", "SUMMARIES", "UNSWEEPABLE", "SWEEPABLE_FIGURES"]

UNSWEEPABLE = ("device", "chunk", "rng_block", "workers")
_WHY_UNSWEEPABLE = {  # the refusal's reason, true of each
    "chunk": "it never changes a result", "workers": "it never changes a result",
    "rng_block": "it bounds memory; changing it changes only which random numbers are drawn, as another seed would",
    "device": "it picks where the points run, not what they measure"}
SWEEPABLE_FIGURES = ("fig2", "fig3", "fig5")


def _last(result: FigureResult, metric: str) -> float:
    steps, means, _, _ = result.series(metric)
    return means[-1] if steps else math.nan


def _step(result: FigureResult, metric: str, k: int) -> float:
    steps, means, _, _ = result.series(metric)
    return means[steps.index(k)] if k in steps else math.nan


def _layer_mean(result: FigureResult, metric: str) -> float:
    steps, means, _, _ = result.series(metric)
    vals = [m for s, m in zip(steps, means) if s >= 1 and math.isfinite(m)]
    return sum(vals) / len(vals) if vals else math.nan


def _layer_mean_halfwidth(result: FigureResult, metric: str) -> float:
    """A bound on the 95% half-width of :func:`_layer_mean`: the mean of the layers' half-widths (the standard
    error of a mean of L layers' means is at most the mean of their standard errors, however the layers are
    correlated; Minkowski). NaN where a layer has none (fewer than two trials)."""
    steps, means, lo, hi = result.series(metric)
    widths = [(h - l) / 2 for s, m, l, h in zip(steps, means, lo, hi) if s >= 1 and math.isfinite(m)]
    return sum(widths) / len(widths) if widths else math.nan


def _fig3_summary(result: FigureResult) -> dict[str, float]:
    c = result.checks
    pred = c.get("delta_prediction", {})
    return {"C6_violation_share": c["C6_violation_share"],
            "delta_mean": _layer_mean(result, "delta"),
            "delta_ci_halfwidth": _layer_mean_halfwidth(result, "delta"),
            "delta_predicted": pred.get("predicted_mean", math.nan) if pred.get("in_regime") else math.nan,
            "t_div_ratio_per_layer": c["fitted_rate"]["t_div_ratio_per_layer"],
            "t_sim_last": _last(result, "t_sim"), "t_div_last": _last(result, "t_div"),
            # the literature's metrics at the last layer, on the same trajectories
            "stable_rank_last": _last(result, "stable_rank"), "dong_residual_last": _last(result, "dong_residual"),
            "mean_cosine_last": _last(result, "mean_cosine"),
            # and their excesses, from the split parts: what still tells collapsing chains apart where both read 1
            "stable_rank_minus_1_last": _last(result, "stable_rank_minus_1"),
            "one_minus_mean_cosine_last": _last(result, "one_minus_mean_cosine")}


def _fig2_summary(result: FigureResult) -> dict[str, float]:
    return {"t_sim_last": _last(result, "t_sim"), "r_first": _step(result, "r", 1),
            "delta_mean": _layer_mean(result, "delta")}


def _fig5_summary(result: FigureResult) -> dict[str, float]:
    variants = [m.split("/")[0] for m in result.metrics if m.endswith("/t_div")]
    tau = next(v for v in variants if v != "post")
    return {"t_div_last_tau": _last(result, f"{tau}/t_div"), "t_div_last_post": _last(result, "post/t_div"),
            "t_sim_last": _last(result, f"{tau}/t_sim")}


SUMMARIES: dict[str, Callable[[FigureResult], dict[str, float]]] = {
    "fig3": _fig3_summary, "fig2": _fig2_summary, "fig5": _fig5_summary}


@dataclass(frozen=True)
class SweepGrid:
    figure: str
    config_cls: type
    fixed: dict  # flags given one value
    swept: dict[str, list]  # flag -> its values, in the order given

    @property
    def points(self) -> list[dict]:
        names = list(self.swept)
        return [dict(zip(names, combo)) for combo in itertools.product(*self.swept.values())]

    def config(self, point: dict):
        values = {**self.fixed, **point}
        if "taus" in values and not isinstance(values["taus"], tuple):
            values["taus"] = (values["taus"],)
        return self.config_cls(**values)


def _convert(field: dataclasses.Field, text: str):
    kind = type(field.default)
    if kind is tuple:  # fig5's taus: one value per grid point
        kind = float
    try:
        if kind is bool:
            raise ValueError
        return kind(text)
    except ValueError:
        raise ValueError(f"--{field.name.replace('_', '-')}: {text!r} is not a valid {kind.__name__}") from None


def parse_grid(figure: str, config_cls: type, given: dict[str, str]) -> SweepGrid:
    """The grid from ``{field: "v1,v2,..."}``; every point's config is built (and validated) here."""
    if figure not in SWEEPABLE_FIGURES:
        raise ValueError(f"sweep runs {', '.join(SWEEPABLE_FIGURES)}; got {figure!r}")
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    if figure == "fig5" and "taus" not in given:  # one tau per point (its summary): fig5's taus become an axis
        given = {**given, "taus": ",".join(repr(t) for t in fields["taus"].default)}
    fixed, swept = {}, {}
    for name, text in given.items():
        flag = "--" + name.replace("_", "-")
        if name not in fields:
            raise ValueError(f"{flag} is not a flag of {figure}")
        parts = [p.strip() for p in str(text).split(",")]
        if name in UNSWEEPABLE and len(parts) > 1:
            raise ValueError(f"{flag} cannot be swept ({_WHY_UNSWEEPABLE[name]}); give it one value")
        if not parts or any(p == "" for p in parts):
            raise ValueError(f"{flag}: empty value in {text!r} (a comma list like 0.5,1,2)")
        values = [_convert(fields[name], p) for p in parts]
        if len(set(values)) != len(values):
            raise ValueError(f"{flag}: repeated value in {text!r}")
        (swept if len(values) > 1 else fixed)[name] = values if len(values) > 1 else values[0]
    if not swept:
        raise ValueError("nothing to sweep: give at least one flag a comma list of two or more values")
    grid = SweepGrid(figure, config_cls, fixed, swept)
    configs = [grid.config(p) for p in grid.points]  # each point validated by its config, before anything runs
    for name in swept:  # a flag no point uses would give the same run at each of its values
        if not any(cfg.uses(name) for cfg in configs):
            raise ValueError(f"--{name.replace('_', '-')} cannot be swept here: {configs[0].why_unused(name)}, so "
                             f"every one of its values would give the same run")
    check_memory(figure, configs, "the grid")
    return grid


def partly_unused(grid: SweepGrid) -> list[str]:
    """Warnings for swept flags that some points do not use (``--attention softmax,dirichlet --beta 1,4``:
    the dirichlet points repeat one run at each beta), one line each."""
    configs = [grid.config(p) for p in grid.points]
    lines = []
    for name in grid.swept:
        unused = [cfg for cfg in configs if not cfg.uses(name)]
        if unused:
            lines.append(f"--{name.replace('_', '-')} changes nothing at {len(unused)} of {len(configs)} points "
                         f"({unused[0].why_unused(name)}): those points repeat one run at each of its values")
    return lines


def _point_key(figure: str, cfg) -> str:
    """A grid point's file name: a hash of the key a plain run's checkpoint has (figure, config, code)."""
    return hashlib.sha256(Checkpoint.for_run(".", figure, cfg.to_dict()).key.encode()).hexdigest()[:16]


def _save_point(path: Path, result: FigureResult, summary: dict) -> None:
    data = {"rows": [dataclasses.asdict(r) for r in result.rows], "checks": result.checks, "summary": summary,
            "device": result.device, "elapsed_s": result.elapsed_s}
    atomic_write(path, json.dumps(data, default=_jsonable).encode())


def _jsonable(x):
    """``json.dumps``' fallback for the checks' numpy and torch scalars (NaN floats are written as NaN and read
    back as NaN)."""
    return x.item() if hasattr(x, "item") else str(x)


def _load_point(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
        data["rows"] = [SummaryRow(**r) for r in data["rows"]]
        return data
    except (OSError, ValueError, KeyError, TypeError):
        return None


def run_sweep(grid: SweepGrid, simulate: Callable, out: str | Path, *, progress: bool | None = None) -> list[dict]:
    """Run every point (resuming finished points and checkpointed ones); returns per point its flags, rows,
    checks and summary. One progress bar counts the trials of the whole grid."""
    from tqdm.auto import tqdm
    import sys

    out = Path(out)
    state = out / ".sweep"
    points = grid.points
    configs = [grid.config(p) for p in points]
    show = sys.stderr.isatty() if progress is None else progress
    done: list[dict] = []
    with tqdm(total=sum(c.trials for c in configs), desc=f"sweep {grid.figure} ({len(points)} points)",
              unit="trial", disable=not show) as bar:
        for point, cfg in zip(points, configs):
            key = _point_key(grid.figure, cfg)
            path = state / f"{key}.json"
            saved = _load_point(path) if path.is_file() else None
            reused = saved is not None  # finished by an earlier, interrupted run of this sweep
            if saved is None:
                state.mkdir(parents=True, exist_ok=True)
                checkpoint = Checkpoint(state / f"{key}.checkpoint.npz", json.dumps(key))
                with progress_into(bar):
                    result = simulate(cfg, progress=False, checkpoint=checkpoint)
                summary = SUMMARIES[grid.figure](result)
                _save_point(path, result, summary)
                checkpoint.remove()
                saved = _load_point(path)
            else:
                bar.update(cfg.trials)
            done.append({"key": key, "point": point, "config": cfg.to_dict(), **saved, "reused": reused})
    return done


def cleanup(out: str | Path, results: list[dict]) -> None:
    """Remove the finished points' state once the sweep's files are written."""
    state = Path(out) / ".sweep"
    for r in results:
        (state / f"{r['key']}.json").unlink(missing_ok=True)
    try:
        state.rmdir()
    except OSError:
        pass
