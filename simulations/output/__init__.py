"""Output: what a run leaves behind, read from a :class:`~simulations.engine.result.FigureResult`: the CSV, PNG and
JSON files (``writing``), the panels (``plotting``) and the phrasing of its findings (``quoting``)."""
