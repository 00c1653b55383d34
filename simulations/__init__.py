"""Monte Carlo engine and figure regeneration for [YZ]'s simulation studies, built on :mod:`theory`.

Three layers, data flowing one way (studies -> engine; output reads results):

- ``simulations.engine``: configs, the streaming runner with checkpoint/resume, statistics, ``FigureResult``;
- ``simulations.studies``: fig1-fig5, ``real`` (trained attention), ``train`` (digits), ``sweep`` (grids);
- ``simulations.output``: CSV/PNG/JSON writing, plotting, the findings' phrasing.

``simulations.registry`` names the figures, ``simulations.cli`` is ``python -m simulations`` and
``simulations.readme`` renders the README's findings blocks; ``simulations.explore`` is notebook 08's explorer.
"""

from .engine.config import CONFIGS, Fig1Config, Fig2Config, Fig3Config, Fig4Config, Fig5Config, RunConfig
from .studies.fig1 import simulate_fig1
from .studies.fig2 import simulate_fig2
from .studies.fig3 import simulate_fig3
from .studies.fig4 import simulate_fig4
from .studies.fig5 import simulate_fig5
from .engine.result import FigureResult
from .engine.stats import StreamingStats, SummaryRow

__all__ = ["CONFIGS", "RunConfig", "Fig1Config", "Fig2Config", "Fig3Config", "Fig4Config", "Fig5Config",
           "simulate_fig1", "simulate_fig2", "simulate_fig3", "simulate_fig4", "simulate_fig5", "FigureResult", "StreamingStats", "SummaryRow"]
