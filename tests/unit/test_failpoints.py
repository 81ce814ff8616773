"""The test-only failpoints: parsed strictly, off by default, and a hang stops only the step that reached it."""

from __future__ import annotations

import asyncio

import pytest

from config.errors import ConfigError
from relayer.daemon import failpoints


def test_spec_is_parsed_and_bad_names_are_clear_errors():
    assert failpoints.parse("after_claim=hang, before_confirm=exit") == {"after_claim": "hang",
                                                                         "before_confirm": "exit"}
    assert failpoints.parse("") == {}
    with pytest.raises(ConfigError, match="RELAYER_FAILPOINTS: 'after_lunch=hang': expected POINT=ACTION"):
        failpoints.parse("after_lunch=hang")
    with pytest.raises(ConfigError, match="'after_claim=explode'"):
        failpoints.parse("after_claim=explode")


def test_off_unless_the_environment_names_points():
    assert failpoints.ENABLED is False and failpoints.ARMED == {}  # the test process does not set RELAYER_FAILPOINTS


async def test_hang_blocks_the_step_that_reached_it(monkeypatch):
    monkeypatch.setattr(failpoints, "ARMED", {"after_attest": "hang"})
    await failpoints.reached("after_claim")  # not armed: returns at once
    step = asyncio.create_task(failpoints.reached("after_attest"))
    done, _ = await asyncio.wait({step}, timeout=0.3)
    assert not done
    step.cancel()
