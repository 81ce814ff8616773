"""Fuzz tier: hypothesis with a bounded number of examples per test (the whole tier runs in well under a
minute on CI). ``FUZZ_EXAMPLES=5000 pytest tests/fuzz`` for a longer local run."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "fuzz", max_examples=int(os.environ.get("FUZZ_EXAMPLES", "200")), deadline=None, derandomize=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
