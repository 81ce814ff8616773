"""Several RPC endpoints per chain (issue 15, quorum mode): l1 served by three endpoints that must agree (2 of 3):
the real node (0), a cuttable proxy (1) and a cuttable proxy in front of a lying one (2).

(a) Endpoint 2 lies (eth_getLogs hides l1's dispatches, eth_call claims every message delivered and misstates the
    mailbox): messages both ways are delivered exactly once, and its lies are outvoted and counted.
(b) Endpoint 1 cut: delivery goes on through the two others.
(c) Endpoints 1 and 2 cut: one healthy endpoint is no quorum; l1's reads fail as rpc_unavailable ("no quorum" in the
    message's last error) and nothing is delivered; restored, every message is delivered once. Read from the chain.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.faults.conftest import metric, metric_samples
from tests.faults.test_chain_faults import log_events, port_of, rpc_of, send
from tests.integration.harness import (
    DaemonProcess,
    DevnetClient,
    TcpProxy,
    all_delivered_once,
    free_port_block,
    message_record,
    wait_for,
    write_daemon_config,
)
from tests.integration.rpc_rewriter import RewritingRpcProxy

pytestmark = pytest.mark.integration

WORD = 64  # hex digits in an ABI word


def _lie_about_a_call(result: str) -> str:
    """A different eth_call answer: a bool[] (deliveredMany) all true, any other answer with its last digit changed."""
    words = [result[2 + k:2 + k + WORD] for k in range(0, len(result) - 2, WORD)]
    if len(words) >= 2 and int(words[0], 16) == 32 and int(words[1], 16) == len(words) - 2:
        return "0x" + "".join(words[:2]) + f"{1:064x}" * (len(words) - 2)
    return result[:-1] + ("1" if result[-1] != "1" else "2") if len(result) > 2 else "0x00"


def _rewriting(change: Callable[[Any], Any]) -> Callable[[str], str]:
    """A rewrite rule for the proxy: ``change`` applied to the result of each call of a (batch) answer."""
    def rule(text: str) -> str:
        doc = json.loads(text)
        for item in doc if isinstance(doc, list) else [doc]:
            if isinstance(item, dict) and item.get("result") is not None:
                item["result"] = change(item["result"])
        return json.dumps(doc)
    return rule


def _lie(proxy: RewritingRpcProxy) -> None:
    proxy.rewrite("eth_call", _rewriting(lambda r: _lie_about_a_call(r) if isinstance(r, str) else r))
    proxy.rewrite("eth_getLogs", _rewriting(lambda logs: []))


def _disagreements(api_url: str, endpoint: int) -> dict[str, float]:
    """relayer_rpc_quorum_disagreements_total for l1's ``endpoint``, by method."""
    out = {}
    for (name, labels), value in metric_samples(api_url).items():
        found = dict(labels)
        if name == "relayer_rpc_quorum_disagreements_total" and found.get("chain") == "l1" \
                and found.get("endpoint") == str(endpoint):
            out[found["method"]] = value
    return out


def _up(api_url: str, endpoint: int) -> float:
    return metric(api_url, "relayer_rpc_endpoint_up", chain="l1", endpoint=str(endpoint))


def _waits_without_quorum(api_url: str, mid: bytes) -> bool:
    record = message_record(api_url, mid) or {}
    return record.get("last_reason") == "rpc_unavailable" and "no quorum" in (record.get("last_error") or "")


async def test_a_lie_is_outvoted_one_cut_endpoint_costs_nothing_and_without_a_quorum_nothing_moves(devnet, tmp_path):
    client = DevnetClient(devnet)
    await client.mark()
    node = rpc_of(client, "l1")
    second = TcpProxy(port_of(client, "l1"))
    liar = RewritingRpcProxy(node)
    third = TcpProxy(int(liar.url.rsplit(":", 1)[1]))
    second.up()
    third.up()
    config = write_daemon_config(devnet, tmp_path, api_port=free_port_block(1))
    line = f'rpc_url = "{node}"'
    text = config.read_text()
    assert line in text
    config.write_text(text.replace(line, f'{line}\nfallback_rpc_urls = ["{second.url}", "{third.url}"]\n'
                                         'rpc_mode = "quorum"', 1))
    daemon = DaemonProcess(config, tmp_path / "d.log", instance="rpc-quorum").start()
    try:
        # (a) endpoint 2 lies about l1's logs and calls: outvoted, every message delivered once
        _lie(liar)
        ids = await send(client, "rollup_a", "l1", [b"lied about %d" % i for i in range(3)])
        ids += await send(client, "l1", "rollup_a", [b"hidden by a lie %d" % i for i in range(3)])
        await all_delivered_once(client, ids, timeout=120)
        wait_for(lambda: {"eth_call", "eth_getLogs"} <= set(_disagreements(daemon.api_url, 2)), 30,
                 "the lying endpoint's outvoted eth_call and eth_getLogs answers to be counted")
        assert _disagreements(daemon.api_url, 2)["eth_getLogs"] >= 1
        outvoted = log_events(tmp_path / "d.log", "rpc_quorum_outvoted")
        assert {e["endpoint"] for e in outvoted} >= {2} and all("url" not in e for e in outvoted)
        liar.rules.clear()  # honest again

        # (b) endpoint 1 cut: two of three still agree
        second.down()
        more = await send(client, "rollup_a", "l1", [b"one endpoint cut %d" % i for i in range(3)])
        await all_delivered_once(client, more, timeout=120)
        wait_for(lambda: _up(daemon.api_url, 1) == 0 and _up(daemon.api_url, 0) == 1, 30,
                 "relayer_rpc_endpoint_up to show endpoint 1 down")
        assert metric(daemon.api_url, "relayer_chain_up", chain="l1") == 1

        # (c) endpoints 1 and 2 cut: one healthy endpoint is no quorum, nothing moves; restored, nothing is lost
        third.down()
        held = await send(client, "rollup_a", "l1", [b"no quorum %d" % i for i in range(3)])
        wait_for(lambda: _waits_without_quorum(daemon.api_url, held[0]), 120,
                 "the deliveries to l1 to wait as rpc_unavailable without a quorum")
        processed = await client.processed_since_mark()
        assert not any(i in processed for i in held)
        second.up()
        third.up()
        seen = await all_delivered_once(client, ids + more + held, timeout=180)
        assert all(len(seen[i]) == 1 for i in ids + more + held)
        wait_for(lambda: _up(daemon.api_url, 1) == 1 and _up(daemon.api_url, 2) == 1, 90,
                 "the restored endpoints to be voters again")
    finally:
        daemon.stop()
        second.close()
        third.close()
        liar.close()
        await client.close()
