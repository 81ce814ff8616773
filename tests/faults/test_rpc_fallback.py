"""Several RPC endpoints per chain (issue 15, fallback mode): the destination's first endpoint cut, deliveries go on
through the second and nothing is lost; the first restored, it is used again; both cut, deliveries wait (the
reason visible), and once both are restored every message is delivered once. Read from the chain."""

from __future__ import annotations

import pytest

from tests.faults.conftest import metric
from tests.faults.test_chain_faults import port_of, rpc_of, send
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

pytestmark = pytest.mark.integration


def _up(api_url: str, endpoint: int) -> float:
    return metric(api_url, "relayer_rpc_endpoint_up", chain="l1", endpoint=str(endpoint))


def _last_reason(api_url: str, mid: bytes) -> str | None:
    return (message_record(api_url, mid) or {}).get("last_reason")


async def test_one_endpoint_cut_costs_nothing_and_both_cut_then_restored_lose_nothing(devnet, tmp_path):
    client = DevnetClient(devnet)
    await client.mark()
    first, second = TcpProxy(port_of(client, "l1")), TcpProxy(port_of(client, "l1"))
    first.up()
    second.up()
    config = write_daemon_config(devnet, tmp_path, api_port=free_port_block(1))
    line = f'rpc_url = "{rpc_of(client, "l1")}"'
    text = config.read_text()
    assert line in text
    config.write_text(text.replace(line, f'rpc_url = "{first.url}"\nfallback_rpc_urls = ["{second.url}"]', 1))
    daemon = DaemonProcess(config, tmp_path / "d.log", instance="rpc-fallback").start()
    try:
        first.down()  # l1's first endpoint dead: every l1 call goes on through the second
        ids = await send(client, "rollup_a", "l1", [b"one endpoint cut %d" % i for i in range(5)])
        await all_delivered_once(client, ids, timeout=120)
        wait_for(lambda: _up(daemon.api_url, 0) == 0 and _up(daemon.api_url, 1) == 1, 30,
                 "relayer_rpc_endpoint_up to show the first endpoint down and the second up")
        assert metric(daemon.api_url, "relayer_chain_up", chain="l1") == 1

        first.up()  # a request after its cool-down finds it answering again
        wait_for(lambda: _up(daemon.api_url, 0) == 1, 90, "the first endpoint to be used again")

        first.down()
        second.down()  # no endpoint of l1 answers: deliveries to l1 wait, with the reason
        held = await send(client, "rollup_a", "l1", [b"both endpoints cut %d" % i for i in range(3)])
        wait_for(lambda: _last_reason(daemon.api_url, held[0]) == "rpc_unavailable", 120,
                 "the deliveries to l1 to fail with rpc_unavailable")
        processed = await client.processed_since_mark()
        assert not any(i in processed for i in held)
        first.up()
        second.up()
        seen = await all_delivered_once(client, ids + held, timeout=180)
        assert all(seen[i] == ["l1"] for i in ids + held)
    finally:
        daemon.stop()
        first.close()
        second.close()
        await client.close()
