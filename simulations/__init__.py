"""Monte Carlo engine and figure regeneration for [YZ]'s simulation studies, built on :mod:`theory`.

A simulation is a pure function of a frozen config (``simulations.config``) returning a
:class:`~simulations.result.FigureResult`; plotting (``simulations.plotting``) and writing
(``simulations.writing``) are separate. ``python -m simulations {fig1,...,fig5,all}`` does all three.
"""

from .config import CONFIGS, Fig1Config, Fig2Config, Fig3Config, Fig4Config, Fig5Config, RunConfig
from .fig1 import simulate_fig1
from .fig2 import simulate_fig2
from .fig3 import simulate_fig3
from .fig4 import simulate_fig4
from .fig5 import simulate_fig5
from .result import FigureResult
from .stats import StreamingStats, SummaryRow

__all__ = ["CONFIGS", "RunConfig", "Fig1Config", "Fig2Config", "Fig3Config", "Fig4Config", "Fig5Config",
           "simulate_fig1", "simulate_fig2", "simulate_fig3", "simulate_fig4", "simulate_fig5", "FigureResult", "StreamingStats", "SummaryRow"]
