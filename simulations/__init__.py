"""Monte Carlo engine and figure regeneration for [YZ]'s simulation studies, built on :mod:`theory`.

A simulation is a pure function of a frozen config (``simulations.config``) returning a
:class:`~simulations.result.FigureResult`; plotting (``simulations.plotting``) and writing
(``simulations.writing``) are separate. ``python -m simulations {fig1,...,fig5,all}`` does all three.
"""

from .config import CONFIGS, Fig1Config, Fig2Config, Fig3Config, Fig4Config, Fig5Config, RunConfig
from .fig3 import simulate_fig3
from .result import FigureResult
from .stats import StreamingStats, SummaryRow

__all__ = ["CONFIGS", "RunConfig", "Fig1Config", "Fig2Config", "Fig3Config", "Fig4Config", "Fig5Config",
           "simulate_fig3", "FigureResult", "StreamingStats", "SummaryRow"]
