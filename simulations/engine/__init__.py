"""The engine: configs, the streaming Monte Carlo runner (blocks of trials, workers, checkpoint/resume), streaming
statistics and the :class:`~simulations.engine.result.FigureResult` every study returns. It knows no study and
writes nothing but checkpoints; data flows studies -> engine, and output reads what the engine returns."""
