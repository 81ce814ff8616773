"""Several RPC endpoints per chain beyond EVM (issue 15, quorum mode): a Solana and a Cosmos destination, each served
by three endpoints that must agree (2 of 3): the node itself (0), a cuttable proxy to it (1) and a cuttable proxy in
front of a lying proxy (2). Cosmos has both kinds, voting separately: CometBFT RPC 0-2, then REST 3-5 (the node, a
cuttable proxy, a cuttable liar).

(a) Endpoint 2 lies (Solana: no signatures for any address, no accounts, a huge balance; Cosmos: tx_search finds
    nothing, the latest height far ahead, a huge balance): L1 TST sent to the chain is still paid out once (the
    recipient's balance read from the chain rises by exactly what was sent), and the lies are outvoted and counted
    in relayer_rpc_quorum_disagreements_total for endpoint 2, by index.
(b) Honest again, endpoint 1 cut (Cosmos: RPC 1 and REST 4): the other two still agree, delivery goes on, once.
(c) Endpoints 1 and 2 cut (Cosmos: RPC 1, 2 and REST 4, 5): one healthy endpoint is no quorum. Transfers to the chain
    wait as rpc_unavailable ("no quorum" in their last error), nothing is paid or delivered on chain, the gauges show
    the cut endpoints down and the chain down, and the waiting messages are counted; restored, each transfer is paid
    out once (the balance read from the chain rises by exactly what was sent) and the endpoints are voters again.

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
from tests.faults.conftest import endpoints_show, metric, metric_samples
from tests.faults.proxied import port_of
from tests.faults.test_rpc_fallback_families import (
    DELIVERY_S,
    ONE_TST,
    PROBE_S,
    SCALE,
    _arrives,
    _balance,
    _send_tst,
)
from tests.faults.test_rpc_quorum import _waits_without_quorum
from tests.integration.harness import (
    DaemonProcess,
    DevnetClient,
    TcpProxy,
    free_port_block,
    wait_for,
    write_daemon_config,
)
from tests.integration.rpc_rewriter import RewritingHttpProxy, RewritingRpcProxy

pytestmark = pytest.mark.integration

CUT = {"solana": (1,), "cosmos": (1, 4)}  # the cuttable proxies to the node, by endpoint index
LIARS = {"solana": (2,), "cosmos": (2, 5)}  # the cuttable proxies to the liars
NODES = {"solana": (0,), "cosmos": (0, 3)}
LIED_ABOUT = {"solana": "getSignaturesForAddress", "cosmos": "tx_search"}  # read all the time by the watchers


@dataclass
class Relay:
    """The daemon; per chain its cuttable proxies by endpoint index, and its liars (Solana: JSON-RPC; Cosmos: RPC,
    then REST)."""

    daemon: DaemonProcess
    proxies: dict[str, dict[int, TcpProxy]]
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
    solana_liar = RewritingRpcProxy(sol)
    cosmos_liars = [RewritingHttpProxy(rpc), RewritingHttpProxy(rest)]
    proxies = {"solana": {1: TcpProxy(port_of(sol)), 2: TcpProxy(port_of(solana_liar.url))},
               "cosmos": {1: TcpProxy(port_of(rpc)), 2: TcpProxy(port_of(cosmos_liars[0].url)),
                          4: TcpProxy(port_of(rest)), 5: TcpProxy(port_of(cosmos_liars[1].url))}}
    sol_p, cos_p = proxies["solana"], proxies["cosmos"]
    text = _voters(text, "rpc_url", sol, [sol_p[1].url, sol_p[2].url], "fallback_rpc_urls", True)
    text = _voters(text, "rpc_url", rpc, [cos_p[1].url, cos_p[2].url], "fallback_rpc_urls", True)
    text = _voters(text, "rest_url", rest, [cos_p[4].url, cos_p[5].url], "fallback_rest_urls", False)
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
    every = [p for group in relay.proxies.values() for p in group.values()]
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


async def _delivered_once(client: DevnetClient, chain: str, amounts: list[int], what: str) -> None:
    """Send ``amounts`` of TST to ``chain``; each paid out, once (read from the chain)."""
    before = await _balance(client, chain)
    ids = [await _send_tst(client, chain, a) for a in amounts]
    await _arrives(client, chain, before + sum(amounts) // SCALE[chain], what)
    assert all(await client.adapters[chain].delivered(ids))


def _cut(relay: Relay, chain: str, endpoints: tuple[int, ...]) -> None:
    for i in endpoints:
        relay.proxies[chain][i].down()


def _restore(relay: Relay, chain: str, endpoints: tuple[int, ...]) -> None:
    for i in endpoints:
        relay.proxies[chain][i].up()


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
        _cut(relay, chain, CUT[chain])
        try:
            await _delivered_once(client, chain, [2 * ONE_TST], f"TST paid out on {chain} with endpoint 1 cut")
            wait_for(lambda: endpoints_show(relay.daemon.api_url, chain, down=CUT[chain], up=(0,)), 60,
                     f"relayer_rpc_endpoint_up to show {chain}'s cut endpoints {CUT[chain]} down")
        finally:
            _restore(relay, chain, CUT[chain])
    finally:
        _lies_stop(relay)
        await client.close()


async def test_solana_destination_outvotes_a_lying_endpoint_and_goes_on_with_one_cut(relay: Relay,
                                                                                     net: Devnet) -> None:
    await _outvoted_then_one_cut(relay, net, "solana")


async def test_cosmos_destination_outvotes_a_lying_endpoint_and_goes_on_with_one_cut(relay: Relay,
                                                                                     net: Devnet) -> None:
    await _outvoted_then_one_cut(relay, net, "cosmos")


async def _two_of_three_cut_then_restored(relay: Relay, net: Devnet, chain: str) -> None:
    """(c): without a quorum nothing is paid and nothing is lost; restored, each transfer is paid once."""
    client = DevnetClient(net)
    cut, every = CUT[chain] + LIARS[chain], CUT[chain] + LIARS[chain] + NODES[chain]
    api = relay.daemon.api_url
    try:
        wait_for(lambda: endpoints_show(api, chain, down=(), up=every), PROBE_S, f"every {chain} endpoint a voter")
        before = await _balance(client, chain)
        _cut(relay, chain, cut)
        try:
            amounts = [2 * ONE_TST, 3 * ONE_TST]
            ids = [await _send_tst(client, chain, a) for a in amounts]
            wait_for(lambda: all(_waits_without_quorum(api, i) for i in ids), DELIVERY_S,
                     f"the transfers to {chain} to wait as rpc_unavailable without a quorum")
            wait_for(lambda: endpoints_show(api, chain, down=cut, up=NODES[chain]), 60,
                     f"relayer_rpc_endpoint_up to show {chain}'s cut endpoints {cut} down, its node up")
            wait_for(lambda: metric(api, "relayer_chain_up", chain=chain) == 0, 60, f"{chain} reported down")
            wait_for(lambda: metric(api, "relayer_messages_waiting", reason="rpc_unavailable") >= len(ids), 30,
                     "the waiting transfers counted as rpc_unavailable")
            assert await _balance(client, chain) == before, f"{chain}: paid without a quorum"
            assert await client.adapters[chain].delivered(ids) == [False, False]
        finally:
            _restore(relay, chain, cut)
        await _arrives(client, chain, before + sum(amounts) // SCALE[chain],
                       f"TST paid out on {chain} once its endpoints are restored")
        assert await client.adapters[chain].delivered(ids) == [True, True]
        wait_for(lambda: endpoints_show(api, chain, down=(), up=every), PROBE_S,
                 f"{chain}'s restored endpoints {cut} to be voters again")
        wait_for(lambda: metric(api, "relayer_chain_up", chain=chain) == 1, 60, f"{chain} reported up again")
    finally:
        await client.close()


async def test_solana_destination_waits_without_a_quorum_and_delivers_once_restored(relay: Relay,
                                                                                    net: Devnet) -> None:
    await _two_of_three_cut_then_restored(relay, net, "solana")


async def test_cosmos_destination_waits_without_a_quorum_and_delivers_once_restored(relay: Relay,
                                                                                    net: Devnet) -> None:
    await _two_of_three_cut_then_restored(relay, net, "cosmos")
