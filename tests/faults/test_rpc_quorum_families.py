"""Several RPC endpoints per chain beyond EVM (issue 15, quorum mode): a Solana and a Cosmos destination, each served
by three endpoints that must agree (2 of 3): the node itself (0), a cuttable proxy to it (1) and a lying proxy (2).
Cosmos has both kinds, voting separately: CometBFT RPC 0-2, then REST 3-5 (the node, a cuttable proxy, a liar).

(a) Endpoint 2 lies (Solana: no signatures for any address, no accounts, a huge balance; Cosmos: tx_search finds
    nothing, the latest height far ahead, a huge balance): L1 TST sent to the chain is still paid out once (the
    recipient's balance read from the chain rises by exactly what was sent), and the lies are outvoted and counted
    in relayer_rpc_quorum_disagreements_total for endpoint 2, by index.
(b) Honest again, endpoint 1 cut (Cosmos: RPC 1 and REST 4): the other two still agree, delivery goes on, once.

One devnet of this module's own (three anvils, Cosmos, Solana) and one daemon holding the validators' keys on it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from devnets.devnet import Devnet
from tests.faults.conftest import metric, metric_samples
from tests.faults.test_rpc_fallback_families import DELIVERY_S, ONE_TST, SCALE, _balance, _port, _send_tst
from tests.integration.harness import (
    DaemonProcess,
    DevnetClient,
    TcpProxy,
    free_port_block,
    wait_for,
    wait_for_async,
    write_daemon_config,
)
from tests.integration.rpc_rewriter import RewritingHttpProxy, RewritingRpcProxy

pytestmark = pytest.mark.integration

CUT = {"solana": (1,), "cosmos": (1, 4)}  # the cuttable proxies' endpoint indexes
LIARS = {"solana": (2,), "cosmos": (2, 5)}
LIED_ABOUT = {"solana": "getSignaturesForAddress", "cosmos": "tx_search"}  # read all the time by the watchers


@dataclass
class Relay:
    """The daemon; per chain its cuttable proxies and its liars (Solana: JSON-RPC; Cosmos: RPC, then REST)."""

    daemon: DaemonProcess
    proxies: dict[str, list[TcpProxy]]
    solana_liar: RewritingRpcProxy
    cosmos_liars: list[RewritingHttpProxy]


def _voters(text: str, key: str, url: str, others: list[str], fallback_key: str, mode: bool) -> str:
    """The config with ``key = url`` followed by ``others`` as its fallbacks (and quorum mode, once per chain)."""
    line = f'{key} = "{url}"'
    assert text.count(line) == 1, f"{line} not found once in the daemon config"
    listed = ", ".join(f'"{u}"' for u in others)
    extra = '\nrpc_mode = "quorum"' if mode else ""
    return text.replace(line, f'{line}\n{fallback_key} = [{listed}]{extra}', 1)


def _lie_to_solana(proxy: RewritingRpcProxy) -> None:
    def value(change: Callable[[Any], Any]) -> Callable[[str], str]:
        def rule(text: str) -> str:
            doc = json.loads(text)
            result = doc.get("result")
            if isinstance(result, dict) and "value" in result:
                result["value"] = change(result["value"])
            elif "result" in doc:
                doc["result"] = change(result)
            return json.dumps(doc)
        return rule

    proxy.rewrite("getSignaturesForAddress", value(lambda _: []))  # hides dispatches and deliveries
    proxy.rewrite("getMultipleAccounts", value(lambda accounts: [None] * len(accounts)))  # no replay guards
    proxy.rewrite("getBalance", value(lambda _: 10**18))


def _lie_to_cosmos(rpc: RewritingHttpProxy, rest: RewritingHttpProxy) -> None:
    def hide(doc: Any) -> Any:
        doc["result"] = {"txs": [], "total_count": "0"}
        return doc

    def ahead(doc: Any) -> Any:
        doc["result"]["sync_info"]["latest_block_height"] = str(10**9)
        return doc

    def rich(doc: Any) -> Any:
        if isinstance(doc.get("balance"), dict):
            doc["balance"]["amount"] = str(10**30)
        return doc

    rpc.rewrite("/tx_search", hide)
    rpc.rewrite("/status", ahead)
    rest.rewrite("/cosmos/bank/v1beta1/balances", rich)


def _config(net: Devnet, directory: Path) -> Relay:
    chains = net.manifest()["chains"]
    path = write_daemon_config(net, directory, api_port=free_port_block(1))
    text = path.read_text()
    sol, rpc, rest = chains["solana"]["rpc_url"], chains["cosmos"]["rpc_url"], chains["cosmos"]["rest_url"]
    proxies = {"solana": [TcpProxy(_port(sol))], "cosmos": [TcpProxy(_port(rpc)), TcpProxy(_port(rest))]}
    solana_liar = RewritingRpcProxy(sol)
    cosmos_liars = [RewritingHttpProxy(rpc), RewritingHttpProxy(rest)]
    text = _voters(text, "rpc_url", sol, [proxies["solana"][0].url, solana_liar.url], "fallback_rpc_urls", True)
    text = _voters(text, "rpc_url", rpc, [proxies["cosmos"][0].url, cosmos_liars[0].url], "fallback_rpc_urls", True)
    text = _voters(text, "rest_url", rest, [proxies["cosmos"][1].url, cosmos_liars[1].url], "fallback_rest_urls",
                   False)
    path.write_text(text)
    daemon = DaemonProcess(path, directory / "d.log", instance="rpc-quorum-families")
    return Relay(daemon, proxies, solana_liar, cosmos_liars)


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    devnet = Devnet(tmp_path_factory.mktemp("devnet-quorum-families"), base_port=free_port_block(21),
                    api_port=free_port_block(1), families=("evm", "cosmos", "solana"))
    devnet.up()
    yield devnet
    devnet.down()


@pytest.fixture(scope="module")
def relay(net: Devnet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Relay]:
    relay = _config(net, tmp_path_factory.mktemp("quorum-families-daemon"))
    every = [p for group in relay.proxies.values() for p in group]
    for proxy in every:
        proxy.up()
    try:
        relay.daemon.start()
        yield relay
    finally:
        relay.daemon.stop()
        for proxy in every:
            proxy.close()
        relay.solana_liar.close()
        for liar in relay.cosmos_liars:
            liar.close()


def _disagreements(relay: Relay, chain: str, endpoint: int) -> dict[str, float]:
    """relayer_rpc_quorum_disagreements_total for ``chain``'s ``endpoint``, by method."""
    out = {}
    for (name, labels), value in metric_samples(relay.daemon.api_url).items():
        found = dict(labels)
        if name == "relayer_rpc_quorum_disagreements_total" and found.get("chain") == chain \
                and found.get("endpoint") == str(endpoint):
            out[found["method"]] = value
    return out


def _up(relay: Relay, chain: str, endpoint: int) -> float:
    return metric(relay.daemon.api_url, "relayer_rpc_endpoint_up", chain=chain, endpoint=str(endpoint))


async def _delivered_once(client: DevnetClient, chain: str, amounts: list[int], what: str) -> None:
    """Send ``amounts`` of TST to ``chain``; each paid out, once (read from the chain)."""
    before = await _balance(client, chain)
    ids = [await _send_tst(client, chain, a) for a in amounts]
    expected = before + sum(amounts) // SCALE[chain]

    async def paid() -> bool:
        return await _balance(client, chain) >= expected

    await wait_for_async(paid, DELIVERY_S, what, interval=0.5)
    assert await _balance(client, chain) == expected, f"{chain}: paid more than sent (delivered twice?)"
    assert all(await client.adapters[chain].delivered(ids))


def _lies_stop(relay: Relay) -> None:
    relay.solana_liar.rules.clear()
    for liar in relay.cosmos_liars:
        liar.rules.clear()


async def _outvoted_then_one_cut(relay: Relay, net: Devnet, chain: str) -> None:
    client = DevnetClient(net)
    try:
        # (a) endpoint 2 lies: outvoted and counted, the transfer paid out once
        if chain == "solana":
            _lie_to_solana(relay.solana_liar)
        else:
            _lie_to_cosmos(*relay.cosmos_liars)
        await _delivered_once(client, chain, [3 * ONE_TST, 5 * ONE_TST], f"TST paid out on {chain} past a liar")
        wait_for(lambda: _disagreements(relay, chain, 2).get(LIED_ABOUT[chain], 0) >= 1, 60,
                 f"{chain}'s lying endpoint 2's outvoted {LIED_ABOUT[chain]} answers to be counted")
        _lies_stop(relay)

        # (b) endpoint 1 (Cosmos: RPC 1 and REST 4) cut: the two others still agree
        for proxy in relay.proxies[chain]:
            proxy.down()
        try:
            await _delivered_once(client, chain, [2 * ONE_TST], f"TST paid out on {chain} with endpoint 1 cut")
            wait_for(lambda: all(_up(relay, chain, i) == 0 for i in CUT[chain]) and _up(relay, chain, 0) == 1, 60,
                     f"relayer_rpc_endpoint_up to show {chain}'s cut endpoints {CUT[chain]} down")
        finally:
            for proxy in relay.proxies[chain]:
                proxy.up()
    finally:
        _lies_stop(relay)
        await client.close()


async def test_solana_destination_outvotes_a_lying_endpoint_and_goes_on_with_one_cut(relay: Relay,
                                                                                     net: Devnet) -> None:
    await _outvoted_then_one_cut(relay, net, "solana")


async def test_cosmos_destination_outvotes_a_lying_endpoint_and_goes_on_with_one_cut(relay: Relay,
                                                                                     net: Devnet) -> None:
    await _outvoted_then_one_cut(relay, net, "cosmos")
