"""Hypothesis profiles: ``dev`` (random, quick) locally, ``ci`` (derandomized) when CI is set, ``stress`` by hand."""

import os

from hypothesis import HealthCheck, settings

settings.register_profile("dev", max_examples=50, deadline=None)
settings.register_profile("stress", max_examples=1000, deadline=None)  # HYPOTHESIS_PROFILE=stress: a deep search
settings.register_profile("ci", max_examples=60, derandomize=True, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))
