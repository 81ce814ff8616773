"""Every test starts from structlog's defaults: a CLI test that configured logging at `warning` must not hide
the info events a later test captures with ``structlog.testing.capture_logs``."""

from __future__ import annotations

import pytest
import structlog


@pytest.fixture(autouse=True)
def _fresh_structlog():
    structlog.reset_defaults()
    yield
