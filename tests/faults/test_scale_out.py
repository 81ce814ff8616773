"""Scale out: three relayer instances and one validator process share one PostgreSQL database and split the work;
one relayer is killed (-9) while it holds deliveries in flight and the survivors take them over. Nothing lost,
nothing delivered twice (read from the chains), the work really split, the hand-over visible to an operator."""

from __future__ import annotations

import json

import pytest

from relayer.store import DeliveryRecord, FailureReason, MessageState, Store
from tests.faults.conftest import messages_show, metric
from tests.faults.handover import boot, relayer_instance, rows, wait_caught_up
from tests.integration.harness import (
    DevnetClient,
    all_delivered_once,
    dispatch_spread,
    free_port_block,
    wait_for,
)

pytestmark = pytest.mark.integration


def deliveries(store: Store) -> list[DeliveryRecord]:
    from sqlmodel import Session, select

    with Session(store.engine) as s:
        return list(s.exec(select(DeliveryRecord)).all())


async def test_three_relayers_split_the_work_and_survivors_adopt_a_killed_ones_deliveries(devnet, pg_url, tmp_path):
    client = DevnetClient(devnet)
    await client.mark()
    store = Store(pg_url, owner="observer")  # reads only
    v_port = free_port_block(1)
    validator = relayer_instance(devnet, tmp_path, "validators", pg_url=pg_url, account=1, role="validator",
                                 api_port=v_port, allowed_relayer_accounts=(1, 2, 8))  # r3 relays as account 8
    points = {name: tmp_path / f"{name}.failpoints" for name in ("r1", "r2", "r3")}
    # r3 holds at most one delivery of two messages per destination, so the others find work left when it hangs
    r3_limits = {"RELAYER__RELAYER__BATCH_SIZE": "2", "RELAYER__RELAYER__MAX_INFLIGHT_PER_DESTINATION": "1"}
    relayers = [relayer_instance(devnet, tmp_path, name, pg_url=pg_url, account=account, role="relayer",
                                 validator_api_url=validator.api_url,
                                 env={"RELAYER_FAILPOINTS": f"@{points[name]}", **(r3_limits if name == "r3" else {})})
                for name, account in (("r1", 1), ("r2", 2), ("r3", 8))]
    doomed = relayers[2]
    everyone = [validator, *relayers]
    try:
        boot(*everyone)  # together: the store serialises schema creation
        await wait_caught_up(client, store)
        # r1 and r2 claim nothing until r3 holds deliveries (else the fastest took everything: a race under load);
        # r3 keeps submitting, never confirms: its deliveries stay in flight
        for name in ("r1", "r2"):
            points[name].write_text("claim=off")
        points["r3"].write_text("before_confirm=hang")
        ids = await dispatch_spread(client, per_route=10)

        def r3_holds_deliveries() -> bool:
            return any(d.owner == "r3" and d.state == "pending" for d in deliveries(store))

        wait_for(r3_holds_deliveries, 90, "r3 to hold pending deliveries", interval=0.1)
        for name in ("r1", "r2"):
            points[name].write_text("")
        sent = {"0x" + i.hex() for i in ids}

        def a_survivor_delivers() -> bool:
            return any(d.owner in ("r1", "r2") and sent & set(json.loads(d.message_ids)) for d in deliveries(store))

        wait_for(a_survivor_delivers, 60, "r1 or r2 to submit one of the messages while r3 is alive", interval=0.1)
        doomed.kill9()
        in_flight = {d.tx_hash: json.loads(d.message_ids) for d in deliveries(store)
                     if d.owner == "r3" and d.state == "pending"}
        assert in_flight

        await all_delivered_once(client, ids, timeout=150)
        wait_for(lambda: all(r.state == MessageState.DELIVERED.value for r in rows(store, ids))
                 and len(rows(store, ids)) == len(ids), 60, "the store to record every delivery")

        # the work was split: deliveries submitted by at least two instances (adopted ones count for their submitter)
        by_submitter: dict[str, int] = {}
        for d in deliveries(store):
            submitter = d.adopted_from or d.owner or "?"
            by_submitter[submitter] = by_submitter.get(submitter, 0) + 1
        assert sum(1 for n in by_submitter.values() if n > 0) >= 2, by_submitter
        assert by_submitter.get("r3", 0) >= len(in_flight)
        # r3's in-flight deliveries were adopted, never left pending, and followed by a survivor
        adopted = {d.tx_hash: d for d in deliveries(store) if d.tx_hash in in_flight}
        assert all(d.adopted_from == "r3" and d.owner in ("r1", "r2") and d.state != "pending"
                   for d in adopted.values())
        tx = next(iter(in_flight))
        shown = messages_show(relayers[0].config, in_flight[tx][0], env=relayers[0].env)
        assert shown[0]["state"] == "DELIVERED" and shown[0]["handed_over_from"] == "r3"
        assert "handed over from r3 to r" in shown[0]["last_error"]

        survivors = relayers[:2]
        handovers = sum(metric(r.api_url, "relayer_handovers_total", from_instance="r3",
                               reason=FailureReason.INSTANCE_DIED.value) for r in survivors)
        assert handovers == 1  # exactly one survivor won the race for r3's work
        moved = sum(metric(r.api_url, "relayer_messages_handed_over_total", from_instance="r3",
                           reason=FailureReason.INSTANCE_DIED.value) for r in survivors)
        assert moved >= sum(len(v) for v in in_flight.values())
        wait_for(lambda: all(metric(r.api_url, "relayer_instances_alive") == 3 for r in survivors), 15,
                 "3 instances alive (2 relayers + the validator) in /metrics")
        # one instance runs the keeper jobs for all: the first live relayer by name
        assert [metric(r.api_url, "relayer_keeper_instance") for r in survivors] == [1.0, 0.0]
        instances = {i.name: i for i in store.instances()}
        assert instances["r3"].state == "dead" and instances["r3"].handed_over_to in ("r1", "r2")
        assert {instances[n].role for n in ("r1", "r2", "validators")} == {"relayer", "validator"}
    finally:
        for p in everyone:
            if p.proc is not None and p.proc.poll() is None:
                p.stop()
        store.close()
        await client.close()
