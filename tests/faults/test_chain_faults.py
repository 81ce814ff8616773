"""Chain-side faults on real anvil chains and real daemon processes: an RPC outage with deliveries in flight, an
anvil restarted (destination and origin), and reorgs across a dispatched message (within and beyond finality).

Each test ends on the suite's checks: nothing lost and nothing delivered twice (read from the chains), and the
reason visible to an operator in ``relayer messages show`` and ``/metrics``. Tests that restart or reorg a chain
use a devnet of their own (``breakable_devnet``), never the session's.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

import pytest

from adapters.evm.devnet import rpc_call
from adapters.message import address_to_bytes32
from devnets.devnet import Devnet
from relayer.store import MessageState, Store
from tests.faults.conftest import messages_show, metric, metric_samples
from tests.integration.harness import (
    DaemonProcess,
    DevnetClient,
    TcpProxy,
    all_delivered_once,
    free_port_block,
    wait_for,
    wait_for_async,
    write_daemon_config,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def breakable_devnet(tmp_path_factory):
    """Three anvils of this module's own that keep their chains across restarts (``--state``)."""
    net = Devnet(tmp_path_factory.mktemp("breakable"), base_port=free_port_block(3), api_port=free_port_block(1),
                 families=("evm",), persistent=True)
    net.up()
    yield net
    net.down()


def rpc_of(client: DevnetClient, chain: str) -> str:
    return client.settings.chains[chain].rpc_url


def port_of(client: DevnetClient, chain: str) -> int:
    return int(rpc_of(client, chain).rsplit(":", 1)[1])


def recipient_on(client: DevnetClient, chain: str) -> bytes:
    return address_to_bytes32(client.manifest["chains"][chain]["contracts"]["test_recipient"])


async def send_tx(client: DevnetClient, origin: str, dest: str, bodies: list[bytes], account: int = 0
                  ) -> tuple[str, list[bytes]]:
    tx, ids = await client.adapters[origin].dispatch_messages(client.key(origin, account), client.domain(dest),
                                                              recipient_on(client, dest), bodies)
    return tx, list(ids)


async def send(client: DevnetClient, origin: str, dest: str, bodies: list[bytes], account: int = 0) -> list[bytes]:
    return (await send_tx(client, origin, dest, bodies, account))[1]


def log_events(path: Path, event: str) -> list[dict]:
    """The daemon's JSON log lines for ``event``."""
    found = []
    for line in path.read_text().splitlines():
        if line.startswith("{") and f'"{event}"' in line:
            doc = json.loads(line)
            if doc.get("event") == event:
                found.append(doc)
    return found


def hexid(mid: bytes) -> str:
    return "0x" + mid.hex()


def store_env(url: str) -> dict[str, str]:
    return dict(os.environ, RELAYER_STORE_URL=url)


# ---------------------------------------------------------------- 1. RPC outage with deliveries in flight
async def test_rpc_outage_mid_batch_loses_nothing_and_resubmits_nothing(devnet, tmp_path, pg_url):
    client = DevnetClient(devnet)
    await client.mark()
    proxy = TcpProxy(port_of(client, "l1"))
    proxy.up()
    config = write_daemon_config(devnet, tmp_path, api_port=free_port_block(1))
    config.write_text(config.read_text().replace(rpc_of(client, "l1"), proxy.url))
    env = store_env(pg_url)
    daemon = DaemonProcess(config, tmp_path / "d.log", instance="rpc-outage", env={"RELAYER_STORE_URL": pg_url}).start()
    store = Store(pg_url, owner="observer")
    l1 = client.domain("l1")
    try:
        first = [*await send(client, "rollup_a", "l1", [b"a%d" % i for i in range(20)]),
                 *await send(client, "rollup_b", "l1", [b"b%d" % i for i in range(20)])]
        ids = {hexid(i) for i in first}

        def submitted() -> dict[str, str]:
            return {r.id: r.delivery_tx for r in store.recent(state="SUBMITTED", limit=500)
                    if r.destination == l1 and r.id in ids and r.delivery_tx}

        wait_for(lambda: bool(submitted()), 90, "a delivery to l1 submitted", interval=0.02)
        proxy.down()  # the destination's RPC is cut with the delivery transaction(s) in flight
        cut_at = time.monotonic()
        in_flight = submitted()  # frozen now: the daemon cannot confirm anything on l1
        assert in_flight, "every submitted delivery was confirmed before the cut"
        # straight to the chain
        second = await send(client, "rollup_a", "l1", [b"during outage %d" % i for i in range(5)])

        def retried_for_rpc() -> bool:
            rec = store.get(hexid(second[0]))
            return rec is not None and rec.last_reason == "rpc_unavailable" and rec.attempts >= 2

        wait_for(retried_for_rpc, 90, "deliveries failing with rpc_unavailable (twice) while l1 is cut")
        (shown,) = messages_show(config, hexid(second[0]), env=env)
        assert shown["state"] in ("DISPATCHED", "ATTESTED") and shown["last_reason"] == "rpc_unavailable"
        assert metric(daemon.api_url, "relayer_chain_up", chain="l1") == 0
        assert metric(daemon.api_url, "relayer_failures_total", destination="l1", reason="rpc_unavailable") >= 1
        down_s = time.monotonic() - cut_at
        proxy.up()
        seen = await all_delivered_once(client, first + second, timeout=120)
        assert all(seen[i] == ["l1"] for i in first + second)
        # the deliveries in flight at the cut completed as they were: none of their messages went out again
        for tx in set(in_flight.values()):
            rows = messages_show(config, tx, env=env)
            assert {r["id"] for r in rows} == {i for i, t in in_flight.items() if t == tx}
            assert all(r["state"] == "DELIVERED" and r["delivery_tx"] == tx for r in rows)
        wait_for(lambda: metric(daemon.api_url, "relayer_chain_up", chain="l1") == 1, 30, "l1 reported up again")
        print(f"\nrpc outage: {len(in_flight)} messages in flight at the cut, outage {down_s:.1f}s, "
              f"{len(first) + len(second)} delivered once")
    finally:
        daemon.stop()
        proxy.close()
        store.close()
        await client.close()


# ---------------------------------------------------------------- 3a. reorg within finality
async def test_reorg_within_finality_never_relays_the_removed_message(breakable_devnet, tmp_path):
    net = breakable_devnet
    client = DevnetClient(net)
    await client.mark()
    config = write_daemon_config(net, tmp_path, api_port=free_port_block(1))
    daemon = DaemonProcess(config, tmp_path / "d.log", instance="reorg-shallow").start()
    url = rpc_of(client, "rollup_a")  # finality: 2 confirmations
    a = client.adapters["rollup_a"]
    try:
        rpc_call(url, "evm_setIntervalMining", [0])  # hold rollup_a's blocks so the reorg depth is exact
        doomed_send = asyncio.create_task(send(client, "rollup_a", "l1", [b"doomed: reorged out before finality"]))

        async def in_pool() -> bool:
            return int(rpc_call(url, "eth_getBlockTransactionCountByNumber", ["pending"]), 16) > 0

        await wait_for_async(in_pool, 30, "the dispatch in rollup_a's pool", interval=0.05)
        rpc_call(url, "evm_mine")
        (doomed,) = await doomed_send
        height = int(await a.latest_height())
        (dispatched,) = await a.fetch_dispatched(height, height)
        assert dispatched.id == doomed and await a.finalized_height() < height  # included, not final
        rpc_call(url, "anvil_reorg", [1, []])  # the block holding it is replaced by an empty one
        assert (await a.mailbox_state(await a.latest_height())).count == dispatched.message.nonce
        rpc_call(url, "evm_setIntervalMining", [1])  # whole seconds only (restarting the anvil restores 0.5 s)
        # from the other funded account: the reorg also rewound the first one's account nonce
        (replacement,) = await send(client, "rollup_a", "l1", [b"replacement at the same nonce"], account=1)
        seen = await all_delivered_once(client, [replacement], timeout=90)
        assert doomed not in seen
        (shown,) = messages_show(config, hexid(replacement))
        assert shown["state"] == "DELIVERED" and shown["nonce"] == dispatched.message.nonce
        store = Store(f"sqlite:///{tmp_path / 'relayer.db'}", owner="observer")
        assert store.get(hexid(doomed)) is None  # never indexed, so never attested nor delivered
        store.close()
        # within finality: no incident
        assert metric(daemon.api_url, "relayer_reorg_detected_total", chain="rollup_a") == 0
    finally:
        rpc_call(url, "evm_setIntervalMining", [1])  # whole seconds only (restarting the anvil restores 0.5 s)
        daemon.stop()
        await client.close()


# ---------------------------------------------------------------- 3b. reorg deeper than finality
async def test_reorg_deeper_than_finality_is_detected_and_the_removed_message_never_delivered(breakable_devnet,
                                                                                              tmp_path):
    net = breakable_devnet
    client = DevnetClient(net)
    await client.mark()
    proxy = TcpProxy(port_of(client, "l1"))  # l1 (the destination) cut: the message waits attested, undelivered
    config = write_daemon_config(net, tmp_path, api_port=free_port_block(1))
    config.write_text(config.read_text().replace(rpc_of(client, "l1"), proxy.url))
    daemon = DaemonProcess(config, tmp_path / "d.log", instance="reorg-deep").start()
    store = Store(f"sqlite:///{tmp_path / 'relayer.db'}", owner="observer")
    url = rpc_of(client, "rollup_a")
    a = client.adapters["rollup_a"]
    validator = net.manifest()["validators"][0]["address"]
    try:
        doomed_tx, (doomed,) = await send_tx(client, "rollup_a", "l1", [b"doomed: final, signed, then reorged out"])
        doomed_height = int(await a.tx_height(doomed_tx))
        rec = None

        def signed_over_it() -> bool:
            nonlocal rec
            rec = store.get(hexid(doomed))
            cp = store.checkpoint(validator, client.domain("rollup_a"), None)
            return rec is not None and cp is not None and cp.index >= rec.nonce

        wait_for(signed_over_it, 60, "the dispatch indexed as final and a checkpoint signed over it")
        assert rec is not None
        rpc_call(url, "evm_setIntervalMining", [0])
        latest = int(await a.latest_height())
        depth = latest - doomed_height + 1
        assert depth > 2, "finality of rollup_a is 2 confirmations: this reorg must be deeper"
        rpc_call(url, "anvil_reorg", [depth, []])
        rpc_call(url, "evm_setIntervalMining", [1])  # whole seconds only (restarting the anvil restores 0.5 s)
        (replacement,) = await send(client, "rollup_a", "l1", [b"replacement at the same nonce, after the violation"],
                                    account=1)  # the reorg rewound the first account's nonce too

        def detected() -> bool:
            return (metric(daemon.api_url, "relayer_reorg_detected_total", chain="rollup_a") == 1
                    and metric(daemon.api_url, "validator_checkpoint_refused_total", origin="rollup_a",
                               reason="reorg") == 1
                    and metric(daemon.api_url, "relayer_origin_halted", chain="rollup_a") == 1)

        wait_for(detected, 60, "the finality violation in /metrics")
        wait_for(lambda: (r := store.get(hexid(doomed))) is not None and r.state == MessageState.DROPPED.value, 30,
                 "the reorged message dropped")
        (shown,) = messages_show(config, hexid(doomed))
        assert shown["state"] == "DROPPED" and shown["last_reason"] == "origin_reorged"
        assert "agrees up to height" in shown["last_error"]
        (alert,) = log_events(tmp_path / "d.log", "origin_reorged")
        assert alert["level"] == "error" and alert["chain"] == "rollup_a" and alert["dropped"] >= 1
        refused = [e for e in log_events(tmp_path / "d.log", "checkpoint_refused") if e.get("reason") == "reorg"]
        assert len(refused) == 1 and refused[0]["level"] == "error"
        # the destination comes back: other origins deliver; the removed message never does
        proxy.up()
        control = await send(client, "rollup_b", "l1", [b"control from another origin"])
        seen = await all_delivered_once(client, control, timeout=90)
        assert doomed not in seen and replacement not in seen  # the replacement waits for the operator
        wait_for(lambda: (r := store.get(hexid(doomed))) is not None and r.state == MessageState.DROPPED.value, 10,
                 "the reorged message still dropped")
        assert store.get(hexid(replacement)) is None
    finally:
        rpc_call(url, "evm_setIntervalMining", [1])  # whole seconds only (restarting the anvil restores 0.5 s)
        daemon.stop()
        proxy.close()
        store.close()
        await client.close()


# ---------------------------------------------------------------- 2a. a node back below the cursor
async def test_chain_back_below_the_cursor_indexes_without_skipping_and_the_light_client_refuses(breakable_devnet,
                                                                                                 tmp_path):
    """A node that comes back lower than the indexed height (restored from an older dump, rolled back) and
    builds other blocks there. The indexer neither skips the new blocks at heights it had passed nor indexes
    anything twice. The blocks it replaced were final, so the validator's light client refuses to extend its
    verified header chain over them (a finality violation of the headers it checked): nothing is signed until
    the operator restarts the validator, which re-anchors; then everything is delivered once."""
    net = breakable_devnet
    client = DevnetClient(net)
    await client.mark()
    config = write_daemon_config(net, tmp_path, api_port=free_port_block(1))
    daemon = DaemonProcess(config, tmp_path / "d.log", instance="rollback").start()
    store = Store(f"sqlite:///{tmp_path / 'relayer.db'}", owner="observer")
    b = client.adapters["rollup_b"]  # finality: 4 confirmations
    url = rpc_of(client, "rollup_b")
    validator = net.manifest()["validators"][0]["address"]
    try:
        rpc_call(url, "evm_setIntervalMining", [0])  # rollup_b's blocks by hand, so every height below is exact
        warm_send = asyncio.create_task(send_tx(client, "rollup_b", "l1", [b"warm-up: proven by the light client"]))

        async def in_pool() -> bool:
            return int(rpc_call(url, "eth_getBlockTransactionCountByNumber", ["pending"]), 16) > 0

        await wait_for_async(in_pool, 30, "the warm-up dispatch in rollup_b's pool", interval=0.05)
        rpc_call(url, "evm_mine")
        warm_tx, warm = await warm_send
        warm_height = int(await b.tx_height(warm_tx))
        rpc_call(url, "anvil_mine", [hex(10)])  # final up to warm_height + 6: the light client verifies those headers

        def warm_signed() -> bool:
            rec, cp = store.get(hexid(warm[0])), store.checkpoint(validator, client.domain("rollup_b"), None)
            return rec is not None and cp is not None and cp.index >= rec.nonce

        wait_for(warm_signed, 60, "the warm-up message proven and signed")
        cursor = store.cursor(f"index:{client.domain('rollup_b')}") or 0
        assert cursor >= warm_height + 6
        rpc_call(url, "anvil_rollback", [int(await b.latest_height()) - (warm_height + 1)])  # keeps the warm-up's block
        lowered = int(await b.latest_height())
        assert lowered == warm_height + 1 < cursor
        rpc_call(url, "evm_setIntervalMining", [1])  # whole seconds only (restarting the anvil restores 0.25 s)
        tx, ids = await send_tx(client, "rollup_b", "l1", [b"below the old cursor %d" % i for i in range(3)])
        first_height = int(await b.tx_height(tx))
        assert first_height <= cursor, "the dispatch was not mined below the old cursor: nothing to check"
        wait_for(lambda: all(store.get(hexid(i)) is not None for i in ids), 60, "the new dispatches indexed")
        assert {store.get(hexid(i)).origin_height for i in ids} == {first_height}  # type: ignore[union-attr]
        rewound = log_events(tmp_path / "d.log", "cursor_rewound")
        assert rewound and rewound[0]["chain"] == "rollup_b" and rewound[0]["cursor"] == cursor
        nonces = [n for n, _ in store.message_ids_in_order(client.domain("rollup_b"))]
        assert nonces == list(range(len(nonces)))  # nothing skipped, nothing twice

        def light_client_refusals() -> float:
            return sum(v for (name, labels), v in metric_samples(daemon.api_url).items()
                       if name == "validator_checkpoint_refused_total" and ("origin", "rollup_b") in labels
                       and dict(labels)["reason"] in ("header_not_in_verified_chain", "header_chain_broken"))

        wait_for(lambda: light_client_refusals() >= 1, 60, "the light client refusing the replaced final blocks")
        (shown,) = messages_show(config, hexid(ids[0]))
        assert shown["state"] != "DELIVERED" and shown["last_reason"] == "no_quorum"
        assert metric(daemon.api_url, "relayer_reorg_detected_total", chain="rollup_b") == 0  # no message contradicted
        daemon.stop()  # the operator's call: accept the node's new history, restart (the light client re-anchors)
        daemon = DaemonProcess(config, tmp_path / "d2.log", instance="rollback").start()
        seen = await all_delivered_once(client, warm + ids, timeout=90)
        assert all(seen[i] == ["l1"] for i in warm + ids)
        (shown,) = messages_show(config, hexid(ids[0]))
        assert shown["state"] == "DELIVERED" and shown["origin_height"] == first_height
    finally:
        rpc_call(url, "evm_setIntervalMining", [1])
        daemon.stop()
        store.close()
        await client.close()


# ---------------------------------------------------------------- 2. anvil restarted
async def test_chain_restarted_with_its_state_delivers_everything_once(breakable_devnet, tmp_path):
    net = breakable_devnet
    client = DevnetClient(net)
    await client.mark()
    config = write_daemon_config(net, tmp_path, api_port=free_port_block(1))
    daemon = DaemonProcess(config, tmp_path / "d.log", instance="restart").start()
    store = Store(f"sqlite:///{tmp_path / 'relayer.db'}", owner="observer")
    try:
        before = [*await send(client, "rollup_a", "rollup_b", [b"a->b %d" % i for i in range(10)]),
                  *await send(client, "rollup_b", "rollup_a", [b"b->a %d" % i for i in range(10)])]
        height_b = int(await client.adapters["rollup_b"].latest_height())
        net.stop_chain("rollup_b")  # destination (and origin) down: SIGTERM, its chain written to its state file
        wait_for(lambda: metric(daemon.api_url, "relayer_chain_up", chain="rollup_b") == 0, 30,
                 "rollup_b down in /metrics")
        during = await send(client, "rollup_a", "rollup_b", [b"while b is down %d" % i for i in range(5)])

        def waiting_on_rpc() -> bool:
            rec = store.get(hexid(during[0]))
            return rec is not None and rec.last_reason == "rpc_unavailable"

        wait_for(waiting_on_rpc, 60, "deliveries to rollup_b failing with rpc_unavailable")
        (shown,) = messages_show(config, hexid(during[0]))
        assert shown["last_reason"] == "rpc_unavailable" and shown["state"] != "DELIVERED"
        assert metric(daemon.api_url, "relayer_failures_total", destination="rollup_b", reason="rpc_unavailable") >= 1
        back_at = net.start_chain("rollup_b")
        assert back_at >= height_b  # it came back with its chain, not as a new one
        back_a = net.restart_chain("rollup_a")  # an origin restarted too, with messages of it still in the pipeline
        assert back_a > 0
        after = [*await send(client, "rollup_a", "l1", [b"after restart a %d" % i for i in range(3)]),
                 *await send(client, "rollup_b", "l1", [b"after restart b %d" % i for i in range(3)])]
        await all_delivered_once(client, before + during + after, timeout=120)
        wait_for(lambda: all(metric(daemon.api_url, "relayer_chain_up", chain=c) == 1
                             for c in ("rollup_a", "rollup_b")),
                 30, "both chains up again in /metrics")
        assert metric(daemon.api_url, "relayer_reorg_detected_total", chain="rollup_a") == 0
        assert metric(daemon.api_url, "relayer_reorg_detected_total", chain="rollup_b") == 0
    finally:
        for chain in ("rollup_a", "rollup_b"):  # leave the module's devnet running whatever happened
            if not net.status()["chains"][chain]["alive"]:
                net.start_chain(chain)
        daemon.stop()
        store.close()
        await client.close()
