"""The operator's view of a live daemon on the session devnet: every metric family the issue lists, with sane
values, a page that parses as Prometheus text, and /readyz following a chain's RPC going down and back."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from adapters.message import address_to_bytes32
from tests.faults.conftest import metric_samples
from tests.integration.harness import (
    DaemonProcess,
    DevnetClient,
    TcpProxy,
    all_delivered_once,
    dispatch_spread,
    free_port_block,
    wait_for,
    write_daemon_config,
)
from tests.metric_lint import promtool_report

pytestmark = pytest.mark.integration

CHAINS = ("l1", "rollup_a", "rollup_b")


def with_chain_keys(config: Path, chain: str, **keys: object) -> None:
    """Add ``keys`` to the ``[chains.<chain>]`` table of a written daemon config."""
    header = f"[chains.{chain}]\n"
    text = config.read_text()
    assert header in text
    lines = "".join(f"{k} = {v!r}\n" for k, v in keys.items())
    config.write_text(text.replace(header, header + lines, 1))


def eth_balance_wei(rpc_url: str, address: str) -> int:
    answer = httpx.post(rpc_url,
                        json={"jsonrpc": "2.0", "id": 1, "method": "eth_getBalance", "params": [address, "latest"]},
                        timeout=5).json()
    return int(answer["result"], 16)


def samples_of(samples: dict, name: str) -> dict[frozenset, float]:
    return {labels: v for (n, labels), v in samples.items() if n == name}


def label(labels: frozenset, key: str) -> str:
    return dict(labels)[key]


async def test_metrics_on_a_live_daemon_and_readyz_follows_a_cut_rpc(devnet, tmp_path):
    client = DevnetClient(devnet)
    await client.mark()
    b_rpc = client.settings.chains["rollup_b"].rpc_url
    b_port = int(b_rpc.rsplit(":", 1)[1])
    proxy = TcpProxy(b_port)
    proxy.up()
    config = write_daemon_config(devnet, tmp_path, api_port=free_port_block(1))
    config.write_text(config.read_text().replace(b_rpc, proxy.url))
    with_chain_keys(config, "l1", min_wallet_balance=1_000_000.0)  # far above the devnet balance: reads low
    with_chain_keys(config, "rollup_a", min_wallet_balance=0.001)
    daemon = DaemonProcess(config, tmp_path / "d.log", instance="metrics").start()
    relayer = client.manifest["relayer_accounts"][0]
    validators = [v["address"].lower() for v in client.manifest["validators"]]
    api = daemon.api_url
    try:
        ids = await dispatch_spread(client, per_route=3)
        await all_delivered_once(client, ids, timeout=150)

        def settled() -> bool:  # the health job (every 2 s) has seen the confirmations: SUBMITTED emptied
            s = metric_samples(api)
            depth = samples_of(s, "relayer_queue_depth")
            submitted = [v for k, v in depth.items() if label(k, "state") == "SUBMITTED"
                         and label(k, "destination") in CHAINS]
            return (len(submitted) == 3 and not any(submitted)
                    and s.get(("router_chain_utilisation", frozenset({("chain", "l1")}))) is not None)
        wait_for(settled, 60, "SUBMITTED queue depths of 0 and the router gauges")

        text = httpx.get(f"{api}/metrics", timeout=5).text
        families = {f.name: f for f in text_string_to_metric_families(text)}
        assert promtool_report(text) in ("", None)  # Prometheus' own linter, when installed (.ci/run installs it)
        for family in families.values():
            assert family.documentation and family.documentation != family.name, f"{family.name} has no HELP text"
        s = metric_samples(api)

        for chain in CHAINS:
            c = frozenset({("chain", chain)})
            assert s[("relayer_chain_height", c)] > 0
            assert s[("relayer_chain_finalized_lag", c)] >= 0
            assert s[("relayer_chain_up", c)] == 1
            d = frozenset({("destination", chain)})
            assert s[("relayer_deliveries_total", d)] >= 6  # 3 from each of the two other chains
            assert s[("relayer_gas_used_total", d)] > 0
            assert 0 < s[("relayer_fee_paid_total", d)] < 1  # ETH, not wei
            for state in ("DISPATCHED", "ATTESTED", "SUBMITTED", "DROPPED"):  # every state has a series (0 when empty)
                assert s[("relayer_queue_depth", frozenset({("destination", chain), ("state", state)}))] >= 0
            assert s[("relayer_queue_depth", frozenset({("destination", chain), ("state", "DELIVERED")}))] >= 6
            utilisation = s[("router_chain_utilisation", c)]
            assert 0 <= utilisation <= 1
            assert s[("router_chain_spare_transfers_per_second", c)] > 0
            for v in validators:
                assert s[("validator_checkpoints_signed_total", frozenset({("origin", chain), ("validator", v)}))] > 0
                assert s[("validator_latest_signed_index", frozenset({("origin", chain), ("validator", v)}))] >= 5
            assert s[("relayer_checkpoint_quorum", frozenset({("origin", chain)}))] == 1

            def balance_matches(chain: str = chain) -> bool:  # the gauge is sampled every 2 s
                rpc = client.settings.chains[chain].rpc_url
                gauge = metric_samples(api).get(("relayer_wallet_balance",
                                                 frozenset({("chain", chain), ("address", relayer)})))
                return gauge == eth_balance_wei(rpc, relayer) / 10**18
            wait_for(balance_matches, 10, f"relayer_wallet_balance on {chain} to equal eth_getBalance")
        for v in validators:
            assert s[("relayer_validator_up", frozenset({("validator", v)}))] == 1
        assert s[("relayer_wallet_balance_low", frozenset({("chain", "l1"), ("address", relayer)}))] == 1
        assert s[("relayer_wallet_balance_low", frozenset({("chain", "rollup_a"), ("address", relayer)}))] == 0
        assert s[("relayer_wallet_min_balance", frozenset({("chain", "l1")}))] == 1_000_000
        # no threshold
        assert ("relayer_wallet_balance_low", frozenset({("chain", "rollup_b"), ("address", relayer)})) not in s
        assert "wallet_balance_low" in (tmp_path / "d.log").read_text()
        assert s[("relayer_messages_waiting", frozenset({("reason", "insufficient_funds")}))] == 0

        # cut rollup_b's RPC: not ready, naming it; still alive; a message towards it fails with the reason counted
        proxy.down()
        cut_at = time.monotonic()

        def not_ready() -> bool:
            r = httpx.get(f"{api}/readyz", timeout=5)
            return r.status_code == 503 and r.json()["chains"]["rollup_b"] != "ok" and r.json()["chains"]["l1"] == "ok"
        wait_for(not_ready, 30, "/readyz to answer 503 naming rollup_b")
        not_ready_after = time.monotonic() - cut_at
        assert httpx.get(f"{api}/healthz", timeout=5).status_code == 200
        assert metric_samples(api)[("relayer_chain_up", frozenset({("chain", "rollup_b")}))] == 0
        recipient = address_to_bytes32(client.manifest["chains"]["rollup_b"]["contracts"]["test_recipient"])
        _tx, late = await client.adapters["l1"].dispatch_messages(client.key("l1"), client.domain("rollup_b"),
                                                                  recipient, [b"during the outage"])
        failures = ("relayer_failures_total", frozenset({("destination", "rollup_b"), ("reason", "rpc_unavailable")}))
        wait_for(lambda: metric_samples(api).get(failures, 0) > 0, 60, "a counted rpc_unavailable failure on rollup_b")

        proxy.up()
        back_at = time.monotonic()
        wait_for(lambda: httpx.get(f"{api}/readyz", timeout=5).status_code == 200, 30, "/readyz back to 200")
        ready_after = time.monotonic() - back_at
        assert metric_samples(api)[("relayer_chain_up", frozenset({("chain", "rollup_b")}))] == 1
        await all_delivered_once(client, ids + late, timeout=150)
        print(f"readyz: 503 {not_ready_after:.1f}s after the cut, 200 {ready_after:.1f}s after the restore")
    finally:
        daemon.stop()
        proxy.close()
        await client.close()
