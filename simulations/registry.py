"""The registry of figures: name -> config class, simulation, panels, title and (optional) findings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .studies import fig1, fig2, fig3, fig4, fig5, real, train
from .engine.config import Fig1Config, Fig2Config, Fig3Config, Fig4Config, Fig5Config, RunConfig
from .engine.result import FigureResult

__all__ = ["Figure", "FIGURES", "IN_ALL"]


@dataclass(frozen=True)
class Figure:
    name: str
    config: type
    simulate: Callable[..., FigureResult]
    panels: Callable[[FigureResult], list]
    title: Callable[[RunConfig], str]
    # the numbers README quotes (simulations.readme): computed from a result, and rendered as markdown
    findings: Callable[[FigureResult], dict] | None = None
    render: Callable[[dict], str] | None = None


FIGURES: dict[str, Figure] = {
    "fig1": Figure("fig1", Fig1Config, fig1.simulate_fig1, fig1.fig1_panels, fig1.fig1_title,
                   fig1.fig1_findings, fig1.render_fig1_findings),
    "fig2": Figure("fig2", Fig2Config, fig2.simulate_fig2, fig2.fig2_panels, fig2.fig2_title,
                   fig2.fig2_findings, fig2.render_fig2_findings),
    "fig3": Figure("fig3", Fig3Config, fig3.simulate_fig3, fig3.fig3_panels, fig3.fig3_title, fig3.fig3_findings,
                   fig3.render_fig3_findings),
    "fig4": Figure("fig4", Fig4Config, fig4.simulate_fig4, fig4.fig4_panels, fig4.fig4_title,
                   fig4.fig4_findings, fig4.render_fig4_findings),
    "fig5": Figure("fig5", Fig5Config, fig5.simulate_fig5, fig5.fig5_panels, fig5.fig5_title,
                   fig5.fig5_findings, fig5.render_fig5_findings),
    # trained attention (all-MiniLM-L6-v2); needs the [real] extra, so it is not part of `all`
    "real": Figure("real", real.RealConfig, real.simulate_real, real.real_panels, real.real_title,
                   real.real_findings, real.render_real_findings),
    # a small ViT trained on scikit-learn's digits (12-30 minutes at defaults on 2 cores), so not part of `all` either
    "train": Figure("train", train.TrainConfig, train.simulate_train, train.train_panels, train.train_title,
                    train.train_findings, train.render_train_findings),
}
IN_ALL = ("fig1", "fig2", "fig3", "fig4", "fig5")
