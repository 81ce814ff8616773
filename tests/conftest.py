"""Every test starts from structlog's defaults: a CLI test that configured logging at `warning` must not hide
the info events a later test captures with ``structlog.testing.capture_logs``."""

from __future__ import annotations

import pytest
import structlog


@pytest.fixture(autouse=True)
def _fresh_structlog():
    structlog.reset_defaults()
    yield


@pytest.fixture(scope="session")
def devnet(tmp_path_factory):
    """Session devnet: three real anvil chains with the contracts deployed, on free loopback ports (the Solana
    and Cosmos chains are started by the tests that need them). Tests that break chains make their own."""
    from devnets.devnet import Devnet
    from tests.integration.harness import free_port_block

    base = free_port_block(3)
    api = free_port_block(1)
    net = Devnet(tmp_path_factory.mktemp("devnet"), base_port=base, api_port=api, families=("evm",))
    net.up()
    yield net
    net.down()
