"""The operator's admin actions on the devnet (issue 15, stuck messages): a paused route holds its messages (waiting
for the route, no attempt spent, nothing processed on chain) and delivers them once resumed; a message dropped with a
note stays undelivered until retried, then is delivered once; the stuck list says why each waits and for how long;
one status with a substate in GET /v1/messages/{id}."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.faults.conftest import metric
from tests.integration.harness import (
    DaemonProcess,
    DevnetClient,
    delivered_on,
    dispatch_to_test_recipient,
    free_port_block,
    message_record,
    message_status,
    wait_for,
    write_daemon_config,
)

pytestmark = pytest.mark.integration

ADMIN_KEY = "admin-" + secrets.token_hex(16)
RELAY_TIMEOUT_S = 90.0


@pytest.fixture(scope="module")
def operated(devnet: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    directory = tmp_path_factory.mktemp("admin-actions")
    path = write_daemon_config(devnet, directory, api_port=free_port_block(1))
    daemon = DaemonProcess(path, directory / "daemon.log", instance="admin-actions",
                           env={"RELAYER__ADMIN__API_KEYS": f'["{ADMIN_KEY}"]'}).start()
    yield daemon
    daemon.stop()


def _admin(daemon: DaemonProcess, method: str, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
    return httpx.request(method, f"{daemon.api_url}/admin/v1{path}", json=body, timeout=30,
                         headers={"Authorization": f"Bearer {ADMIN_KEY}"})


def _status(daemon: DaemonProcess, mid: bytes) -> tuple[str, str | None] | None:
    return message_status(daemon.api_url, mid)


def _send(devnet: Any, account: int, body: bytes) -> bytes:
    return dispatch_to_test_recipient(devnet, DevnetClient(devnet).key("l1", account), "l1", "rollup_a", [body])[0]


def test_a_paused_route_holds_its_messages_and_delivers_them_once_resumed(devnet, operated) -> None:
    daemon = operated
    paused = _admin(daemon, "POST", "/routes/l1/rollup_a/pause", {"note": "destination upgrade"})
    assert paused.status_code == 200, paused.text
    held = _send(devnet, 1, b"held by the pause")
    wait_for(lambda: _status(daemon, held) == ("waiting", "route_resumed"), RELAY_TIMEOUT_S,
             "the message to wait for its route")
    record = message_record(daemon.api_url, held)
    assert record is not None and record["attempts"] == 0 and "destination upgrade" in record["last_error"]
    assert not delivered_on(devnet, "rollup_a", held)
    assert _admin(daemon, "GET", "/routes/paused").json()["routes"] == [
        {"origin": "l1", "destination": "rollup_a", "note": "destination upgrade"}]
    # the session devnet carries every earlier test's messages too, oldest listed first: ask for the most
    stuck = {m["id"]: m for m in _admin(daemon, "GET", "/messages/stuck?min_wait_s=0&limit=1000").json()["messages"]}
    entry = stuck["0x" + held.hex()]
    assert entry["reason"] == "route_paused" and entry["waited_s"] >= 0 and entry["origin"] == "l1"

    dropped = _send(devnet, 1, b"dropped by the operator")
    wait_for(lambda: _status(daemon, dropped) == ("waiting", "route_resumed"), RELAY_TIMEOUT_S, "the second to wait")
    answer = _admin(daemon, "POST", f"/messages/0x{dropped.hex()}/drop", {"note": "sent by mistake"})
    assert answer.status_code == 200 and answer.json()["substate"] == "operator_dropped", answer.text

    assert _admin(daemon, "POST", "/routes/l1/rollup_a/resume").json()["was_paused"] is True
    wait_for(lambda: _status(daemon, held) == ("delivered", None), RELAY_TIMEOUT_S, "the held message delivered")
    assert delivered_on(devnet, "rollup_a", held)
    assert _status(daemon, dropped) == ("dropped", "operator_dropped")
    assert not delivered_on(devnet, "rollup_a", dropped)
    assert _admin(daemon, "POST", f"/messages/0x{dropped.hex()}/drop", {"note": "again"}).status_code == 409

    assert _admin(daemon, "POST", f"/messages/0x{dropped.hex()}/retry").status_code == 200
    wait_for(lambda: _status(daemon, dropped) == ("delivered", None), RELAY_TIMEOUT_S, "the retried message delivered")
    assert delivered_on(devnet, "rollup_a", dropped)
    assert _admin(daemon, "POST", f"/messages/0x{held.hex()}/retry").status_code == 409  # delivered: nothing to do
    for action in ("pause_route", "resume_route", "drop", "retry"):
        assert metric(daemon.api_url, "relayer_admin_actions_total", action=action) == 1


def test_bad_admin_requests_are_refused_naming_what_is_wrong(operated) -> None:
    daemon = operated
    _admin(daemon, "POST", "/routes/l1/rollup_a/resume")  # whatever the test before left paused
    unknown = _admin(daemon, "POST", "/routes/l1/nowhere/pause", {"note": "x"})
    assert unknown.status_code == 400 and unknown.json()["detail"]["field"] == "destination"
    assert _admin(daemon, "POST", "/messages/0x1234/retry").json()["detail"]["field"] == "id"
    assert _admin(daemon, "POST", "/messages/0x" + "ab" * 32 + "/retry").status_code == 404
    assert _admin(daemon, "POST", "/messages/0x" + "ab" * 32 + "/drop", {"note": "n" * 501}).status_code == 400
    assert _admin(daemon, "GET", "/routes/paused").json()["routes"] == []

