"""Monte Carlo engine and figure regeneration (issue: Monte Carlo engine). Builds on :mod:`theory`.

Not built yet: this package holds the place the project layout promises; ``python -m simulations`` arrives
with the engine.
"""
