"""Several RPC endpoints per chain beyond EVM (issue 15, fallback mode): a Solana and a Cosmos destination, each
served first through a cuttable proxy to its node (endpoint 0) and then by the node itself.

With the proxies cut, L1 TST sent to the chain is still paid out, once (the recipient's balance read from the chain
rises by exactly what was sent), and ``relayer_rpc_endpoint_up`` shows the cut endpoints down and the others up;
restored, they are up again and a transfer after that arrives too. Cosmos has two kinds of endpoint, each with its
fallback: CometBFT RPC (0: proxy, 1: node) and REST (2: proxy, 3: node), both used by a delivery.

One devnet of this module's own (three anvils, Cosmos, Solana) and one daemon holding the validators' keys on it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.message import MessageId
from devnets.devnet import Devnet
from tests.faults.conftest import endpoints_show
from tests.faults.proxied import Relay, port_of, proxied_relay, with_fallback
from tests.integration.harness import (
    DevnetClient,
    TcpProxy,
    free_port_block,
    wait_for,
    wait_for_async,
    write_daemon_config,
)

pytestmark = pytest.mark.integration

ONE_TST = 10**18  # on l1
SCALE = {"solana": 10**9, "cosmos": 10**12}  # TST has 18 decimals on l1, 9 on Solana, 6 on Cosmos (uxtst)
CUT = {"solana": (0,), "cosmos": (0, 2)}  # the proxies' endpoint indexes (Cosmos: RPC 0, 1, then REST 2, 3)
UP = {"solana": (1,), "cosmos": (1, 3)}
DELIVERY_S = 180.0
PROBE_S = 90.0  # a cut endpoint's cool-down (at most 60 s), then the probe that finds it answering





def _config(net: Devnet, directory: Path) -> tuple[Path, dict[str, list[TcpProxy]]]:
    chains = net.manifest()["chains"]
    path = write_daemon_config(net, directory, api_port=free_port_block(1))
    text = path.read_text()
    sol_rpc, cos_rpc, cos_rest = chains["solana"]["rpc_url"], chains["cosmos"]["rpc_url"], chains["cosmos"]["rest_url"]
    proxies = {"solana": [TcpProxy(port_of(sol_rpc))],
               "cosmos": [TcpProxy(port_of(cos_rpc)), TcpProxy(port_of(cos_rest))]}
    text = with_fallback(text, "rpc_url", sol_rpc, proxies["solana"][0], "fallback_rpc_urls")
    text = with_fallback(text, "rpc_url", cos_rpc, proxies["cosmos"][0], "fallback_rpc_urls")
    text = with_fallback(text, "rest_url", cos_rest, proxies["cosmos"][1], "fallback_rest_urls")
    path.write_text(text)
    return path, proxies


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    devnet = Devnet(tmp_path_factory.mktemp("devnet-fallback-families"), base_port=free_port_block(21),
                    api_port=free_port_block(1), families=("evm", "cosmos", "solana"))
    devnet.up()
    yield devnet
    devnet.down()


@pytest.fixture(scope="module")
def relay(net: Devnet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Relay]:
    directory = tmp_path_factory.mktemp("fallback-families-daemon")
    config, proxies = _config(net, directory)
    with proxied_relay(config, proxies, directory, "rpc-fallback-families") as relay:
        yield relay


async def _send_tst(client: DevnetClient, chain: str, amount: int) -> MessageId:
    """``amount`` of L1 TST to the chain's first devnet account, through the token bridge: the message id."""
    dest = client.adapters[chain]
    recipient = dest.account_bytes32(client.address(chain))  # type: ignore[attr-defined]
    _tx, mid = await client.adapters["l1"].send_token(client.key("l1"), "TST", amount,  # type: ignore[attr-defined]
                                                      client.domain(chain), recipient)
    return MessageId(bytes(mid))


async def _balance(client: DevnetClient, chain: str) -> int:
    return int(await client.adapters[chain].token_balance("TST", client.address(chain)))  # type: ignore[attr-defined]


async def _arrives(client: DevnetClient, chain: str, expected: int, what: str) -> None:
    async def paid() -> bool:
        return await _balance(client, chain) >= expected

    await wait_for_async(paid, DELIVERY_S, what, interval=0.5)
    assert await _balance(client, chain) == expected, f"{chain}: paid more than sent (delivered twice?)"


async def _first_endpoints_cut_then_restored(relay: Relay, net: Devnet, chain: str) -> None:
    client = DevnetClient(net)
    try:
        before = await _balance(client, chain)
        wait_for(lambda: endpoints_show(relay.daemon.api_url, chain, down=(), up=CUT[chain] + UP[chain]), PROBE_S,
                 f"every {chain} endpoint up before the cut")
        for proxy in relay.proxies[chain]:
            proxy.down()
        amounts = [3 * ONE_TST, 5 * ONE_TST]
        ids = [await _send_tst(client, chain, a) for a in amounts]
        expected = before + sum(amounts) // SCALE[chain]
        await _arrives(client, chain, expected, f"TST paid out on {chain} with its first endpoints cut")
        assert all(await client.adapters[chain].delivered(ids))
        wait_for(lambda: endpoints_show(relay.daemon.api_url, chain, down=CUT[chain], up=UP[chain]), 30,
                 f"relayer_rpc_endpoint_up to show {chain}'s cut endpoints {CUT[chain]} down, {UP[chain]} up")

        for proxy in relay.proxies[chain]:
            proxy.up()
        wait_for(lambda: endpoints_show(relay.daemon.api_url, chain, down=(), up=CUT[chain] + UP[chain]), PROBE_S,
                 f"{chain}'s first endpoints to be used again")
        after = await _send_tst(client, chain, 2 * ONE_TST)
        await _arrives(client, chain, expected + 2 * ONE_TST // SCALE[chain], f"TST paid out on {chain} restored")
        assert all(await client.adapters[chain].delivered([*ids, after]))
        assert await _balance(client, chain) == expected + 2 * ONE_TST // SCALE[chain]
    finally:
        await client.close()


async def test_solana_destination_with_its_first_endpoint_cut(relay: Relay, net: Devnet) -> None:
    await _first_endpoints_cut_then_restored(relay, net, "solana")


async def test_cosmos_destination_with_its_first_rpc_and_rest_endpoints_cut(relay: Relay, net: Devnet) -> None:
    await _first_endpoints_cut_then_restored(relay, net, "cosmos")
