"""Issue 12, finding 6: a validator whose only l1 RPC node lies does not sign what the node says.

The attacker process forks l1 with an anvil of its own and bridges all its TST to rollup_a there: a dispatch that
never happened on l1, consistent in every method the validator asks (headers, receipts, logs, mailbox root).
The module's daemon (role all: validators and relayer) is started with that node as its only l1 RPC; its l1
light client follows the devnet beacon endpoint from the trusted block root in its config.

- the honest beacon: every l1 claim is refused as ``not linked to finalized`` once the sync committee finalized
  a height the fork replaced; the forged message is indexed (the daemon saw it) but no validator signs it;
- variation: the attacker also serves the l1 beacon endpoint (its own chain over the fork, genesis and bootstrap
  passed through from the honest one): every update is refused (``beacon update refused``), nothing signed;
- variation: malformed requests to the honest beacon endpoint get 4xx answers and it keeps serving.

Read from the chains: the forged id is never processed on rollup_a, the attacker's TST there and rollup_a's TST
supply did not grow by the forged amount, the attacker's TST on l1 never moved. The daemon keeps relaying the
origins that do not lie (a rollup_b -> rollup_a message arrives while it is on the lying node), and once back on
an honest l1 node (a fresh store: the operator discards an index built from a lying node) an l1 -> rollup_a
transfer arrives.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.base import Domain, Height
from adapters.message import MessageId, address_to_bytes32
from relayer.store import Store
from tests.adversarial.conftest import start_daemon
from tests.integration.harness import (
    DaemonProcess,
    DevnetClient,
    all_delivered_once,
    free_port_block,
    wait_for_async,
)

pytestmark = pytest.mark.integration

REFUSAL_TIMEOUT_S = 240
DELIVERY_TIMEOUT_S = 240
HONEST_AMOUNT = 3 * 10**18 // 2  # 1.5 TST


def _metric(api_url: str, name: str, **labels: str) -> float:
    text = httpx.get(f"{api_url}/metrics", timeout=10).text
    want = {(k, str(v)) for k, v in labels.items()}
    for line in text.splitlines():
        match = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$", line)
        if match and match.group(1) == name and want <= set(re.findall(r'(\w+)="([^"]*)"', match.group(2) or "")):
            return float(match.group(3))
    return 0.0


def _on_lying_node(net: Any, forged: dict[str, Any]) -> Any:
    """The config edit: l1's RPC is the attacker's fork (and, if it serves one, its beacon endpoint)."""
    l1 = net.manifest()["chains"]["l1"]

    def edit(text: str) -> str:
        assert text.count(f'"{l1["rpc_url"]}"') == 1
        text = text.replace(f'rpc_url = "{l1["rpc_url"]}"', f'rpc_url = "{forged["fork_url"]}"')
        if forged["beacon_url"] is not None:
            text = text.replace(f'beacon_url = "{l1["beacon_url"]}"', f'beacon_url = "{forged["beacon_url"]}"')
        return text

    return edit


async def _signed_indices(http: httpx.AsyncClient, api_url: str, validators: list[str], origin: int) -> list[int]:
    """The latest l1 checkpoint index each validator serves (-1 when it serves none)."""
    found = []
    for address in validators:
        resp = await http.get(f"{api_url}/validators/{address}/checkpoints/{origin}/latest")
        found.append(resp.json()["index"] if resp.status_code == 200 else -1)
    return found


async def _run_lying_phase(net: Any, attacker: Any, tmp_path: Path, *, with_beacon: bool,
                           reason: str) -> dict[str, Any]:
    """Start the attacker's node, run the daemon on it until it refuses with ``reason``; returns the attack's result
    and what the daemon showed."""
    client = DevnetClient(net)
    ready, stop = tmp_path / "attacker-ready.json", tmp_path / "attacker-stop"
    kwargs: dict[str, Any] = {"port": free_port_block(1), "ready_file": str(ready), "stop_file": str(stop)}
    if with_beacon:
        kwargs["beacon_port"] = 0  # the attacker binds any free port and says which: chosen here, its own beacon
        # process could take it first
    attack = asyncio.create_task(asyncio.to_thread(attacker.run, "lying_rpc.forked_l1", **kwargs))
    daemon: DaemonProcess | None = None
    try:
        async def attacker_ready() -> bool:
            if attack.done():
                attack.result()  # it exited early: its error
            return ready.exists()

        await wait_for_async(attacker_ready, 180, "the attacker's forked l1 serving the forged dispatch")
        forged = json.loads(ready.read_text())
        daemon = await asyncio.to_thread(start_daemon, net, tmp_path / "lying", edit=_on_lying_node(net, forged))
        l1_domain = client.domain("l1")

        async def refused() -> bool:
            return await asyncio.to_thread(_metric, daemon.api_url, "validator_checkpoint_refused_total",
                                           origin="l1", reason=reason) >= 1

        await wait_for_async(refused, REFUSAL_TIMEOUT_S, f"the validators refusing l1 claims ({reason})", interval=1.0)
        store = Store(f"sqlite:///{tmp_path / 'lying' / 'relayer.db'}", owner="observer")
        record = store.get(forged["forged_id"])
        store.close()
        assert record is not None and record.state != "DELIVERED"  # the daemon indexed it from the lying node
        validators = [v["address"] for v in net.manifest()["validators"]]
        async with httpx.AsyncClient(timeout=10) as http:
            signed = await _signed_indices(http, daemon.api_url, validators, l1_domain)
            assert all(index < forged["forged_nonce"] for index in signed), signed
            for address in validators:  # nor on request, at the forged index
                resp = await http.get(f"{daemon.api_url}/validators/{address}/checkpoints/{l1_domain}/"
                                      f"{forged['forged_nonce']}")
                assert resp.status_code == 404
        # the daemon keeps relaying the origins that do not lie
        await client.mark()
        b = client.adapters["rollup_b"]
        recipient = address_to_bytes32(client.manifest["chains"]["rollup_a"]["contracts"]["test_recipient"])
        _tx, ids = await b.dispatch_messages(client.key("rollup_b"), Domain(client.domain("rollup_a")),  # type: ignore[attr-defined]
                                             recipient, [b"control while l1's node lies"])
        await all_delivered_once(client, list(ids), timeout=DELIVERY_TIMEOUT_S)
        return {**forged, "signed": signed}
    finally:
        if daemon is not None:
            await asyncio.to_thread(daemon.stop)
        stop.touch()
        await client.close()
        result = await attack
        assert result["served_s"] > 0


async def _tst(client: DevnetClient, chain: str, holder: str) -> int:
    return int(await client.adapters[chain].token_balance("TST", holder))  # type: ignore[attr-defined]


async def _supply(client: DevnetClient, chain: str) -> int:
    return int(await client.adapters[chain].token_supply("TST"))  # type: ignore[attr-defined]


async def test_a_forked_l1_node_gets_nothing_signed_or_minted(bridge_devnet: Any, attacker: Any,
                                                              tmp_path: Path) -> None:
    client = DevnetClient(bridge_devnet)
    mine_l1, mine_a = attacker.addresses["l1"], attacker.addresses["rollup_a"]

    async def funded() -> bool:  # the fixture's TST transfer to the attacker may still be in the pool
        return await _tst(client, "l1", mine_l1) > 0

    await wait_for_async(funded, 60, "the attacker's TST on l1")
    before = {"l1": await _tst(client, "l1", mine_l1), "rollup_a": await _tst(client, "rollup_a", mine_a),
              "supply": await _supply(client, "rollup_a")}
    try:
        forged = await _run_lying_phase(bridge_devnet, attacker, tmp_path, with_beacon=False,
                                        reason="not_linked_to_finalized")
        assert forged["amount"] == before["l1"] > 0
        probes = forged["probes"]
        assert probes.pop("valid_after") == 200 and probes.pop("post_finality_update") == 405
        assert all(400 <= status < 500 for status in probes.values()), probes
        # back on an honest node (the operator's fix), with a fresh store: honest l1 traffic relays
        daemon = await asyncio.to_thread(start_daemon, bridge_devnet, tmp_path / "honest")
        try:
            await client.mark()
            recipient = client.address("rollup_a", 1)
            got = await _tst(client, "rollup_a", recipient)
            _tx, message_id = await client.adapters["l1"].send_token(  # type: ignore[attr-defined]
                client.key("l1"), "TST", HONEST_AMOUNT, Domain(client.domain("rollup_a")),
                address_to_bytes32(recipient))
            await all_delivered_once(client, [message_id], timeout=DELIVERY_TIMEOUT_S)
            assert await _tst(client, "rollup_a", recipient) == got + HONEST_AMOUNT
        finally:
            await asyncio.to_thread(daemon.stop)
        forged_id = MessageId(bytes.fromhex(forged["forged_id"][2:]))
        assert await client.adapters["rollup_a"].delivered([forged_id]) == [False]
        assert await _tst(client, "rollup_a", mine_a) == before["rollup_a"]
        assert await _tst(client, "l1", mine_l1) == before["l1"]  # its lock happened on the fork only
        grown = await _supply(client, "rollup_a") - before["supply"]
        assert HONEST_AMOUNT <= grown < forged["amount"]
        latest = await client.adapters["rollup_a"].latest_height()
        processed = await client.adapters["rollup_a"].processed_messages(Height(0), latest)  # type: ignore[attr-defined]
        assert forged_id not in {mid for mid, _h in processed}
    finally:
        await client.close()


async def test_a_lying_node_with_its_own_beacon_endpoint_gets_nothing_signed(bridge_devnet: Any, attacker: Any,
                                                                            tmp_path: Path) -> None:
    client = DevnetClient(bridge_devnet)
    mine_a = attacker.addresses["rollup_a"]
    before = {"rollup_a": await _tst(client, "rollup_a", mine_a), "supply": await _supply(client, "rollup_a")}
    try:
        forged = await _run_lying_phase(bridge_devnet, attacker, tmp_path, with_beacon=True,
                                        reason="beacon_update_refused")
        log = (tmp_path / "lying" / "daemon.log").read_text()
        refusals = [json.loads(line) for line in log.splitlines() if '"beacon_update_refused"' in line]
        assert refusals and {r["reject_reason"] for r in refusals} <= {"bad signature"}
        forged_id = MessageId(bytes.fromhex(forged["forged_id"][2:]))
        assert await client.adapters["rollup_a"].delivered([forged_id]) == [False]
        assert await _tst(client, "rollup_a", mine_a) == before["rollup_a"]
        assert await _supply(client, "rollup_a") - before["supply"] < forged["amount"]
    finally:
        await client.close()
