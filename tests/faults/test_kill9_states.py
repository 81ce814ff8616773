"""``kill -9`` of a relayer instance in each pipeline state; another instance on the same PostgreSQL database takes
its work over. Nothing lost, nothing delivered twice (read from the chain), the hand-over visible to an operator.

The kill lands deterministically: the doomed instance runs with a failpoint file (``relayer/daemon/failpoints.py``,
test-only), armed once it has caught up with the devnet's history; the next message batch then stops at the
chosen point, the test sees the wanted state in the store, and kills the process there.
"""

from __future__ import annotations

import httpx
import pytest

from relayer.store import FailureReason, MessageState, Store
from tests.faults.conftest import messages_show, metric
from tests.faults.handover import (
    boot,
    dispatch,
    processed_on_chain,
    relayer_instance,
    rows,
    wait_caught_up,
)
from tests.integration.harness import DevnetClient, all_delivered_once, wait_for, wait_for_async

pytestmark = pytest.mark.integration

N = 3
# state name -> (failpoint, the store state the kill lands in, whether the chain has processed them by then)
STATES = {
    "dispatched": ("after_claim", MessageState.DISPATCHED, False),
    "attested": ("after_attest", MessageState.ATTESTED, False),
    "submitted": ("before_confirm", MessageState.SUBMITTED, None),  # tx sent; mined or not, never confirmed by it
    "confirmed_on_chain_not_in_store": ("after_confirmed", MessageState.SUBMITTED, True),
}


@pytest.mark.parametrize("state", list(STATES))
async def test_kill_9_in_state_hands_work_over_once(state, devnet, pg_url, tmp_path):
    point, store_state, on_chain = STATES[state]
    client = DevnetClient(devnet)
    await client.mark()
    store = Store(pg_url, owner="observer")  # reads only; never registers as an instance
    points = tmp_path / "failpoints"
    doomed = relayer_instance(devnet, tmp_path, "doomed", pg_url=pg_url, account=1,
                              env={"RELAYER_FAILPOINTS": f"@{points}"})
    survivor = relayer_instance(devnet, tmp_path, "survivor", pg_url=pg_url, account=2)
    try:
        boot(doomed)
        await wait_caught_up(client, store)
        points.write_text(f"{point}=hang")
        ids = await dispatch(client, "rollup_b", "rollup_a", N)

        def in_state() -> bool:
            recs = rows(store, ids)
            return (len(recs) == N and all(r.state == store_state.value for r in recs)
                    and all(r.lease_owner == "doomed" for r in recs))

        wait_for(in_state, 90, f"{N} messages {store_state.value} under doomed (failpoint {point})", interval=0.05)
        if on_chain:
            await wait_for_async(lambda: processed_on_chain(client, ids), 30, "the delivery to be mined")
        elif on_chain is False:
            assert not await processed_on_chain(client, ids)
        delivery_tx = {r.delivery_tx for r in rows(store, ids)}
        survivor.start(wait=False)  # it boots while the doomed instance's heartbeat goes stale
        doomed.kill9()
        await all_delivered_once(client, ids, timeout=120)

        def settled() -> bool:
            return all(r.state == MessageState.DELIVERED.value for r in rows(store, ids))

        wait_for(settled, 60, "the store to record the deliveries")
        (tx,) = {r.delivery_tx for r in rows(store, ids)}
        if store_state is MessageState.SUBMITTED:  # the adopted tx was confirmed by its hash, never sent again
            assert {tx} == delivery_tx
        shown = messages_show(survivor.config, tx, env=survivor.env)  # by delivery tx: every message it carried
        assert sorted(m["id"] for m in shown) == sorted("0x" + i.hex() for i in ids)
        for m in shown:
            assert m["state"] == "DELIVERED" and m["handed_over_from"] == "doomed"
            assert "handed over from doomed to survivor: no heartbeat for" in m["last_error"]
        wait_for(survivor.healthy, 30, "the survivor's API")
        assert metric(survivor.api_url, "relayer_handovers_total", from_instance="doomed",
                      reason=FailureReason.INSTANCE_DIED.value) == 1
        assert metric(survivor.api_url, "relayer_messages_handed_over_total", from_instance="doomed",
                      reason=FailureReason.INSTANCE_DIED.value) == N
        wait_for(lambda: metric(survivor.api_url, "relayer_instances_alive") == 1, 10, "1 instance alive in /metrics")
        doomed_rec = {i.name: i for i in store.instances()}["doomed"]
        assert doomed_rec.state == "dead" and doomed_rec.handed_over_to == "survivor"
        assert '"event": "instance_handover"' in survivor.log.read_text()
        assert httpx.get(f"{survivor.api_url}/readyz", timeout=5).json()["store"] == "ok"
    finally:
        survivor.stop()
        if doomed.proc is not None and doomed.proc.poll() is None:
            doomed.kill9()
        store.close()
        await client.close()
