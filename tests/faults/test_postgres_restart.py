"""PostgreSQL restarted under two running relayer instances with messages in flight: the daemons survive (store
errors are retryable, backed off and logged with their reason), the API answers 503 with a reason instead of 500,
``/readyz`` reports the store down, nobody is declared dead for the outage, and afterwards every message is
delivered exactly once (read from the chains)."""

from __future__ import annotations

import httpx
import pytest

from relayer.store import MessageState, Store
from tests.faults.conftest import messages_show, metric, metric_samples
from tests.faults.handover import boot, relayer_instance, rows, wait_caught_up
from tests.integration.harness import (
    DevnetClient,
    all_delivered_once,
    dispatch_spread,
    free_port_block,
    wait_for,
)
from tests.pg import PostgresServer

pytestmark = pytest.mark.integration


def failed_heartbeats(api_url: str) -> float:
    return metric(api_url, "relayer_store_errors_total", reason="store_unavailable", where="heartbeat")


async def test_postgres_restart_mid_run_loses_nothing_and_the_api_says_503(devnet, tmp_path):
    server = PostgresServer(free_port_block(1)).init()
    server.start()
    client = DevnetClient(devnet)
    await client.mark()
    url = server.new_database()
    store = Store(url, owner="observer")  # reads only
    daemons = [relayer_instance(devnet, tmp_path, name, pg_url=url, account=account)
               for name, account in (("p1", 1), ("p2", 2))]
    try:
        boot(*daemons)
        await wait_caught_up(client, store)
        ids = await dispatch_spread(client, per_route=5)
        wait_for(lambda: any(r.state != MessageState.DISPATCHED.value for r in rows(store, ids)), 60,
                 "the first messages to move past DISPATCHED")

        server.stop("fast")  # messages in flight
        api = daemons[0].api_url
        for path in ("/v1/status", "/v1/messages?limit=5", f"/v1/messages/0x{ids[0].hex()}"):
            r = httpx.get(f"{api}{path}", timeout=10)
            assert r.status_code == 503, (path, r.status_code, r.text[:300])
            assert r.json()["reason"] == "store_unavailable" and r.headers["retry-after"] == "2"
        assert httpx.get(f"{api}/healthz", timeout=5).status_code == 200

        def store_reported_down(d) -> bool:  # type: ignore[no-untyped-def]
            r = httpx.get(f"{d.api_url}/readyz", timeout=5)
            return r.status_code == 503 and r.json()["store"].startswith("store_unavailable")

        for d in daemons:
            wait_for(lambda d=d: store_reported_down(d), 30, f"{d.instance}'s /readyz to report the store down")
            assert metric(d.api_url, "relayer_store_up") == 0
        more = await dispatch_spread(client, per_route=2)  # dispatched while the store is down
        # an outage longer than the instance lease (a beat every lease/5): afterwards every peer looks silent
        for d in daemons:
            wait_for(lambda d=d: failed_heartbeats(d.api_url) >= 7, 60, f"{d.instance} to miss 7 heartbeats")
        server.start()

        await all_delivered_once(client, ids + more, timeout=150)
        for d in daemons:
            assert d.proc is not None and d.proc.poll() is None, f"{d.instance} died during the outage"
            wait_for(lambda d=d: httpx.get(f"{d.api_url}/readyz", timeout=5).json()["store"] == "ok", 30,
                     f"{d.instance}'s /readyz to report the store back")
            assert metric(d.api_url, "relayer_store_up") == 1
            # nobody was declared dead for the outage (each waits a whole lease of its own good beats first)
            handed = [v for (name, _l), v in metric_samples(d.api_url).items() if name == "relayer_handovers_total"]
            assert handed == []
            log = d.log.read_text()
            assert '"reason": "store_unavailable"' in log and '"event": "store_available_again"' in log
            assert "Traceback" not in log  # every store failure is a log line with its reason
        assert {i.name: i.state for i in store.instances()} == {"p1": "alive", "p2": "alive"}
        wait_for(lambda: all(r.state == MessageState.DELIVERED.value for r in rows(store, ids + more)), 60,
                 "the store to record every delivery")
        (shown,) = messages_show(daemons[1].config, "0x" + more[0].hex(), env=daemons[1].env)
        assert shown["state"] == "DELIVERED" and shown["delivery_tx"].startswith("0x")
    finally:
        for d in daemons:
            if d.proc is not None and d.proc.poll() is None:
                d.stop()
        store.close()
        await client.close()
        server.destroy()
