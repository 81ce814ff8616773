"""End to end on real anvil chains and real daemon processes: tokens, exactly-once, crashes, RPC outages."""

from __future__ import annotations

import pytest

from adapters.message import address_to_bytes32
from relayer.cli.commands import main
from tests.integration.harness import (
    DaemonProcess,
    DevnetClient,
    all_delivered_once,
    dispatch_spread,
    free_port_block,
    wait_for_async,
    write_daemon_config,
)

pytestmark = pytest.mark.integration


def check_api(api: str, delivered_id: str) -> None:
    """The daemon's HTTP API on a live devnet: status, one message, and clear 4xx on bad requests."""
    import httpx

    assert httpx.get(f"{api}/readyz").json()["ready"] is True
    status = httpx.get(f"{api}/v1/status").json()
    assert (set(status["chains"]) == {"l1", "rollup_a", "rollup_b"}
            and all(c["healthy"] for c in status["chains"].values()))
    assert status["chains"]["rollup_a"]["capacity"]["gas_limit"] == 60_000_000
    (msg,) = httpx.get(f"{api}/v1/messages/{delivered_id}").json()["messages"]
    assert msg["state"] == "DELIVERED" and msg["origin"] == "l1" and msg["destination"] == "rollup_a"
    assert msg["delivery_tx"].startswith("0x")
    bad = httpx.get(f"{api}/v1/messages/not-an-id")
    assert (bad.status_code == 400 and bad.json()["detail"]["field"] == "key"
            and "32-byte hex" in bad.json()["detail"]["error"])
    assert httpx.get(f"{api}/v1/messages/0x{'ab' * 32}").status_code == 404
    assert httpx.get(f"{api}/v1/messages?state=LIMBO").status_code == 400
    assert httpx.get(f"{api}/validators/0x12/checkpoints/1000/latest").status_code == 400
    metrics = httpx.get(f"{api}/metrics").text
    assert ('relayer_deliveries_total{destination="rollup_a"}' in metrics
            and "validator_checkpoints_signed_total" in metrics)


async def test_token_round_trip_l1_a_b_l1_conserves_supply(devnet, tmp_path):
    client = DevnetClient(devnet)
    daemon = DaemonProcess(write_daemon_config(devnet, tmp_path, api_port=free_port_block(1)),
                           tmp_path / "d.log").start()
    try:
        user = client.address("l1")
        recipient = address_to_bytes32(user)
        amount = 25 * 10**18
        l1, a, b = (client.adapters[n] for n in ("l1", "rollup_a", "rollup_b"))
        before = {n: await client.adapters[n].token_balance("TST", user) for n in client.adapters}
        supply_l1 = await l1.token_supply("TST")
        bridge_l1 = client.manifest["chains"]["l1"]["contracts"]["token_bridge"]
        locked_before = await l1.token_balance("TST", bridge_l1)

        async def wait_balance(adapter, expected):
            async def ok() -> bool:
                return await adapter.token_balance("TST", user) == expected
            await wait_for_async(ok, 90, f"balance {expected} on {adapter.name}")

        _tx, first_id = await l1.send_token(client.key("l1"), "TST", amount, client.domain("rollup_a"), recipient)
        await wait_balance(a, before["rollup_a"] + amount)
        assert await l1.token_balance("TST", bridge_l1) == locked_before + amount
        assert await a.token_supply("TST") - await b.token_supply("TST") >= 0

        await a.send_token(client.key("rollup_a"), "TST", amount, client.domain("rollup_b"), recipient)
        await wait_balance(b, before["rollup_b"] + amount)
        assert await a.token_balance("TST", user) == before["rollup_a"]

        await b.send_token(client.key("rollup_b"), "TST", amount, client.domain("l1"), recipient)
        await wait_balance(l1, before["l1"])
        # conserved: L1 supply unchanged, nothing left locked by this trip, wrapped supplies back where they were
        assert await l1.token_supply("TST") == supply_l1
        assert await l1.token_balance("TST", bridge_l1) == locked_before
        wrapped = await a.token_supply("TST") + await b.token_supply("TST")
        assert wrapped == await l1.token_balance("TST", bridge_l1)
        check_api(daemon.api_url, "0x" + first_id.hex())
    finally:
        daemon.stop()
        await client.close()


async def test_exactly_once_with_two_relayers_racing(devnet, tmp_path):
    client = DevnetClient(devnet)
    await client.mark()
    v_port = free_port_block(1)
    validator = DaemonProcess(write_daemon_config(devnet, tmp_path / "v", api_port=v_port), tmp_path / "v.log",
                              role="validator", instance="validators").start()
    relayers = [
        DaemonProcess(write_daemon_config(devnet, tmp_path / f"r{i}", api_port=free_port_block(1), relayer_account=acct,
                                          validator_api_url=f"http://127.0.0.1:{v_port}"),
                      tmp_path / f"r{i}.log", role="relayer", instance=f"r{i}")
        for i, acct in ((1, 1), (2, 2))
    ]
    try:
        for r in relayers:
            r.start()
        ids = await dispatch_spread(client, per_route=40)
        await all_delivered_once(client, ids, timeout=180)
    finally:
        for p in relayers + [validator]:
            p.stop()
        await client.close()


async def test_kill_9_during_delivery_then_restart_delivers_each_once(devnet, tmp_path):
    client = DevnetClient(devnet)
    await client.mark()
    config = write_daemon_config(devnet, tmp_path, api_port=free_port_block(1))
    daemon = DaemonProcess(config, tmp_path / "d.log", instance="crashy").start()
    try:
        ids = await dispatch_spread(client, per_route=100, batch=100)

        async def some_delivered() -> bool:
            seen = await client.processed_since_mark()
            return 0 < sum(1 for i in ids if i in seen)

        await wait_for_async(some_delivered, 120, "the first deliveries", interval=0.05)
        daemon.kill9()
        seen = await client.processed_since_mark()
        assert sum(1 for i in ids if i in seen) < len(ids), "killed too late to test a crash mid-delivery"
        daemon = DaemonProcess(config, tmp_path / "d2.log", instance="crashy").start()
        await all_delivered_once(client, ids, timeout=180)
    finally:
        daemon.stop()
        await client.close()


def test_send_to_unknown_chain_is_a_clear_error(devnet, capsys):
    code = main(["send", "--devnet", str(devnet.dir), "--from", "l1", "--to", "mars", "--body", "hi"])
    assert code == 2
    err = capsys.readouterr().err
    assert "--to 'mars' is not a configured chain" in err and "rollup_a" in err


async def test_rpc_endpoint_down_and_back_loses_nothing(devnet, tmp_path):
    import httpx

    from tests.integration.harness import TcpProxy

    client = DevnetClient(devnet)
    await client.mark()
    b_port = int(client.settings.chains["rollup_b"].rpc_url.rsplit(":", 1)[1])
    proxy = TcpProxy(b_port)
    proxy.up()
    config = write_daemon_config(devnet, tmp_path, api_port=free_port_block(1))
    config.write_text(config.read_text().replace(f"http://127.0.0.1:{b_port}", proxy.url))
    daemon = DaemonProcess(config, tmp_path / "d.log", instance="outage").start()
    try:
        proxy.down()

        async def b_reported_down() -> bool:
            metrics = httpx.get(f"{daemon.api_url}/metrics", timeout=2).text
            return 'relayer_chain_up{chain="rollup_b"} 0' in metrics

        await wait_for_async(b_reported_down, 30, "rollup_b to be reported down in /metrics")
        ids = await dispatch_spread(client, per_route=20)  # sent straight to the chains, not through the proxy
        proxy.up()
        await all_delivered_once(client, ids, timeout=180)
    finally:
        daemon.stop()
        proxy.close()
        await client.close()


async def test_chain_stats_report_configured_capacity_and_load(devnet):
    client = DevnetClient(devnet)
    try:
        for name, chain in client.manifest["chains"].items():
            adapter = client.adapters[name]

            async def enough_blocks() -> bool:
                return await adapter.latest_height() >= 12

            await wait_for_async(enough_blocks, 30, f"12 blocks on {name}")
            stats = await adapter.chain_stats(12)
            assert stats.gas_limit == chain["gas_limit"]
            # anvil stamps blocks in whole seconds, so sub-second block times are only approximately right
            assert 0.5 * chain["block_time_s"] <= stats.block_time_s <= 1.5 * chain["block_time_s"]
            assert stats.base_fee > 0 and 0 <= stats.gas_used_ratio <= 1
        # load shows up as gas used
        a = client.adapters["rollup_a"]
        recipient = address_to_bytes32(client.manifest["chains"]["l1"]["contracts"]["test_recipient"])
        await a.dispatch_messages(client.key("rollup_a"), client.domain("l1"), recipient, [b"x" * 64] * 200)
        assert (await a.chain_stats(3)).gas_used_ratio > 0
    finally:
        await client.close()


def test_devnet_up_again_is_harmless_and_status_reports_it(devnet, capsys):
    before = devnet.manifest()
    heights_before = {n: c["height"] for n, c in devnet.status()["chains"].items()}
    again = devnet.up()
    assert again == before  # same chains, same contracts: nothing redeployed
    status = devnet.status()
    assert status["up"] and all(c["alive"] for c in status["chains"].values())
    assert all(status["chains"][n]["height"] >= h for n, h in heights_before.items())
    assert main(["devnet", "status", "--devnet", str(devnet.dir)]) == 0
    out = capsys.readouterr().out
    assert "devnet up" in out and "rollup_b" in out
