"""The admin API (``/admin/v1/...``) attacked: the operator denied the attacker's sender (``relayer.deny``), and the
attacker, without the admin key (none, empty, wrong, another scheme, a routing-API-style header, a guess), tries
every admin route: read and reload the lists, list stuck messages, retry or drop its message, pause and resume a
route. Every request is refused with 401; the lists in force are unchanged, no route is paused, the attacker's
message stays DROPPED(denied) and undelivered on its destination, and another sender's message on the same route is
delivered (both read from the chain)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.adversarial.conftest import start_daemon
from tests.faults.conftest import metric_samples
from tests.integration.harness import (
    DaemonProcess,
    DevnetClient,
    delivered_on,
    dispatch_to_test_recipient,
    message_record,
    wait_for,
)

pytestmark = pytest.mark.integration

ADMIN_KEY = "admin-" + secrets.token_hex(16)  # the operator's key (never given to the attacker)


@pytest.fixture(scope="module")
def admin_daemon(bridge_devnet: Any, attacker: Any, tmp_path_factory: pytest.TempPathFactory
                 ) -> Iterator[DaemonProcess]:
    deny = f'\n[[relayer.deny]]\norigin = "l1"\nsender = "{attacker.addresses["l1"]}"\n'
    daemon = start_daemon(bridge_devnet, tmp_path_factory.mktemp("admin"), edit=lambda text: text + deny,
                          env={"RELAYER__ADMIN__API_KEYS": f'["{ADMIN_KEY}"]'})
    yield daemon
    daemon.stop()


def _dispatch(net: Any, key: str) -> bytes:
    return dispatch_to_test_recipient(net, key, "l1", "rollup_a", [b"let me through"])[0]


def test_without_the_admin_key_the_lists_stay_and_nothing_is_delivered(attacker, bridge_devnet, admin_daemon) -> None:
    mid = _dispatch(bridge_devnet, attacker.keys["evm"])
    wait_for(lambda: (message_record(admin_daemon.api_url, mid) or {}).get("state") == "DROPPED", 120,
             "the attacker's message to be DROPPED(denied)")
    with httpx.Client(base_url=admin_daemon.api_url, timeout=10,
                      headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as operator:
        before = operator.get("/admin/v1/filters").json()
        seen = attacker.run("admin.without_the_admin_key", message="0x" + mid.hex())
        assert len(seen["answers"]) == 8 * 8
        assert {a["status"] for a in seen["answers"]} == {401}, [a for a in seen["answers"] if a["status"] != 401]
        assert all(a["www_authenticate"] == "Bearer" for a in seen["answers"])
        assert all(ADMIN_KEY not in a["body"] for a in seen["answers"])
        after = operator.get("/admin/v1/filters").json()
        assert operator.get("/admin/v1/routes/paused").json()["routes"] == []
    assert after == before and after["reloads"] == 0  # nothing reloaded, the deny rule still in force
    assert after["deny"][0]["sender"] == attacker.addresses["l1"]
    record = message_record(admin_daemon.api_url, mid)
    assert record is not None and record["state"] == "DROPPED" and record["last_reason"] == "denied"
    assert not delivered_on(bridge_devnet, "rollup_a", mid)  # the chain shows nothing moved
    control = _dispatch(bridge_devnet, DevnetClient(bridge_devnet).key("l1", 1))
    wait_for(lambda: delivered_on(bridge_devnet, "rollup_a", control), 120, "another sender's message delivered")
    refused = sum(v for (name, _labels), v in metric_samples(admin_daemon.api_url).items()
                  if name == "relayer_admin_requests_refused_total")
    assert refused == 8 * 8
