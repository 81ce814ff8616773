"""Session devnet: three real anvil chains with the contracts deployed, on free loopback ports (the Solana and
Cosmos chains are started by the tests that need them)."""

from __future__ import annotations

import pytest

from relayer.devnet import Devnet
from tests.integration.harness import free_port_block


@pytest.fixture(scope="session")
def devnet(tmp_path_factory):
    base = free_port_block(3)
    api = free_port_block(1)
    net = Devnet(tmp_path_factory.mktemp("devnet"), base_port=base, api_port=api, families=("evm",))
    net.up()
    yield net
    net.down()
