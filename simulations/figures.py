"""The registry of figures: name -> config class, simulation, panels and title."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from . import fig3
from .config import Fig3Config, RunConfig
from .result import FigureResult

__all__ = ["Figure", "FIGURES"]


@dataclass(frozen=True)
class Figure:
    name: str
    config: type[RunConfig]
    simulate: Callable[..., FigureResult]
    panels: Callable[[FigureResult], list]
    title: Callable[[RunConfig], str]


FIGURES: dict[str, Figure] = {
    "fig3": Figure("fig3", Fig3Config, fig3.simulate_fig3, fig3.fig3_panels,
                   lambda c: f"[YZ] Fig 3: random attention chain ({c.attention}"
                             + (f", beta = {c.beta:g})" if c.attention == "softmax" else ")")),
}
