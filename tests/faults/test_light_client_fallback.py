"""The validators' light clients over several endpoints, on the devnet: an EVM origin (rollup_a: headers and receipts
checked against the block its sync-committee light client finalized) and a Cosmos origin (the Tendermint light
client), each read first through the fault suite's cuttable proxies, the node itself (and, for rollup_a, its devnet
beacon endpoint) being the fallback.

With the proxies cut, messages dispatched on each origin are still attested and delivered on l1, each exactly once
(read from the chain). The daemon's log shows the light clients' reads failing over from endpoint 0
(``light_client_endpoint_failed``, by index), and no ``checkpoint_refused`` for the origin since the cut: the
validator never stopped attesting. Before light_clients/fallback.py the light client read rpc_url (and beacon_url)
alone, and these messages would have waited, refused as unavailable.

One devnet of this module's own (three anvils and Cosmos, each anvil with its beacon endpoint) and one daemon holding
the validators' keys on it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devnets.devnet import Devnet
from tests.faults.proxied import Relay, port_of, proxied_relay, with_fallback
from tests.faults.test_chain_faults import log_events, send
from tests.integration.harness import (
    DevnetClient,
    TcpProxy,
    all_delivered_once,
    free_port_block,
    write_daemon_config,
)

pytestmark = pytest.mark.integration

DELIVERY_S = 180.0
RPC = "rpc_url and fallback_rpc_urls"
BEACON = "beacon_url and fallback_beacon_urls"



def _config(net: Devnet, directory: Path) -> tuple[Path, dict[str, list[TcpProxy]]]:
    chains = net.manifest()["chains"]
    path = write_daemon_config(net, directory, api_port=free_port_block(1))
    text = path.read_text()
    evm_rpc, beacon, cosmos_rpc = (chains["rollup_a"]["rpc_url"], chains["rollup_a"]["beacon_url"],
                                   chains["cosmos"]["rpc_url"])
    proxies = {"rollup_a": [TcpProxy(port_of(evm_rpc)), TcpProxy(port_of(beacon))],
               "cosmos": [TcpProxy(port_of(cosmos_rpc))]}
    text = with_fallback(text, "rpc_url", evm_rpc, proxies["rollup_a"][0], "fallback_rpc_urls")
    text = with_fallback(text, "beacon_url", beacon, proxies["rollup_a"][1], "fallback_beacon_urls")
    text = with_fallback(text, "rpc_url", cosmos_rpc, proxies["cosmos"][0], "fallback_rpc_urls")
    path.write_text(text)
    return path, proxies


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    devnet = Devnet(tmp_path_factory.mktemp("devnet-light-client-fallback"), base_port=free_port_block(21),
                    api_port=free_port_block(1), families=("evm", "cosmos"))
    devnet.up()
    yield devnet
    devnet.down()


@pytest.fixture(scope="module")
def relay(net: Devnet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Relay]:
    directory = tmp_path_factory.mktemp("light-client-fallback-daemon")
    config, proxies = _config(net, directory)
    with proxied_relay(config, proxies, directory, "light-client-fallback") as relay:
        yield relay


def _refusals(relay: Relay, origin: str) -> list[dict[str, Any]]:
    return [e for e in log_events(relay.daemon.log, "checkpoint_refused") if e.get("chain") == origin]


def _failed_over(relay: Relay, origin: str, endpoints: str) -> bool:
    """Whether the light client's reads of ``origin`` failed over from endpoint 0 of ``endpoints``."""
    return any(e.get("chain") == origin and e.get("endpoints") == endpoints and e.get("endpoint") == 0
               and e.get("next_endpoint") == 1 for e in log_events(relay.daemon.log, "light_client_endpoint_failed"))


async def _first_endpoints_cut(relay: Relay, net: Devnet, origin: str, endpoints: tuple[str, ...]) -> None:
    """Cut ``origin``'s proxies, dispatch three messages from it to l1: each attested and delivered once."""
    client = DevnetClient(net)
    try:
        await client.mark()
        refused_before = len(_refusals(relay, origin))
        for proxy in relay.proxies[origin]:
            proxy.down()
        ids = [*await send(client, origin, "l1", [b"first endpoint cut, light client reads on %d" % i
                                                  for i in range(2)]),
               *await send(client, origin, "l1", [b"and once more"])]
        seen = await all_delivered_once(client, ids, timeout=DELIVERY_S)
        assert all(seen[i] == ["l1"] for i in ids)
        assert all(await client.adapters["l1"].delivered(ids))  # type: ignore[attr-defined]
        for names in endpoints:
            assert _failed_over(relay, origin, names), f"{origin}'s light client did not fail over ({names})"
        assert _refusals(relay, origin)[refused_before:] == []  # the validator never stopped attesting
        assert f"127.0.0.1:{relay.proxies[origin][0].port}" not in relay.daemon.log.read_text()  # indexes only
    finally:
        for proxy in relay.proxies[origin]:
            proxy.up()
        await client.close()


async def test_an_evm_origin_with_its_first_rpc_and_beacon_endpoints_cut(relay: Relay, net: Devnet) -> None:
    await _first_endpoints_cut(relay, net, "rollup_a", (RPC, BEACON))


async def test_a_cosmos_origin_with_its_first_rpc_endpoint_cut(relay: Relay, net: Devnet) -> None:
    await _first_endpoints_cut(relay, net, "cosmos", (RPC,))
