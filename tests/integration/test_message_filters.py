"""relayer.deny / relayer.allow on the devnet (issue 15): a denied sender's message ends DROPPED(denied) and is never
delivered (the destination mailbox says so), while another sender's message on the same route is; SIGHUP reloads
the lists from the file and the message they now allow is delivered, once; the admin API reloads them too, and a
file that does not load leaves the lists in force as they were."""

from __future__ import annotations

import os
import secrets
import signal
from collections.abc import Iterator
from pathlib import Path
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
    wait_for,
    write_daemon_config,
)

pytestmark = pytest.mark.integration

ADMIN_KEY = "admin-" + secrets.token_hex(16)  # this test's own key
RELAY_TIMEOUT_S = 90.0


def _deny(sender: str) -> str:
    return f'\n[[relayer.deny]]\norigin = "l1"\nsender = "{sender}"\n'


@pytest.fixture(scope="module")
def filtered(devnet: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DaemonProcess, Path, str]]:
    """A daemon whose config denies messages sent from the devnet's first user account on l1."""
    directory = tmp_path_factory.mktemp("filters")
    path = write_daemon_config(devnet, directory, api_port=free_port_block(1))
    base = path.read_text()
    denied_sender = DevnetClient(devnet).address("l1", 0)
    path.write_text(base + _deny(denied_sender))
    daemon = DaemonProcess(path, directory / "daemon.log", instance="filters",
                           env={"RELAYER__ADMIN__API_KEYS": f'["{ADMIN_KEY}"]'}).start()
    yield daemon, path, base
    daemon.stop()


def _state(daemon: DaemonProcess, mid: bytes) -> str | None:
    found = message_record(daemon.api_url, mid)
    return None if found is None else str(found["state"])


def _send(devnet: Any, account: int, body: bytes) -> bytes:
    return dispatch_to_test_recipient(devnet, DevnetClient(devnet).key("l1", account), "l1", "rollup_a", [body])[0]


def _admin(daemon: DaemonProcess, method: str, path: str) -> httpx.Response:
    return httpx.request(method, f"{daemon.api_url}/admin/v1{path}", timeout=30,
                         headers={"Authorization": f"Bearer {ADMIN_KEY}"})


def test_a_denied_sender_is_dropped_and_a_reloaded_list_delivers_it_once(devnet, filtered) -> None:
    daemon, path, base = filtered
    denied = _send(devnet, 0, b"from the denied sender")
    allowed = _send(devnet, 1, b"from another sender, same route")
    wait_for(lambda: _state(daemon, denied) == "DROPPED" and _state(daemon, allowed) == "DELIVERED",
             RELAY_TIMEOUT_S, "the denied message dropped and the other delivered")
    record = message_record(daemon.api_url, denied)
    assert record is not None and record["last_reason"] == "denied"
    assert "relayer.deny[0]" in record["last_error"]
    assert delivered_on(devnet, "rollup_a", allowed)
    assert not delivered_on(devnet, "rollup_a", denied)  # the chain is the judge: nothing was delivered
    assert metric(daemon.api_url, "relayer_messages_denied_total", destination="rollup_a") >= 1
    wait_for(lambda: metric(daemon.api_url, "relayer_messages_waiting", reason="denied") >= 1, 10,
             "the health job to count the denied message")  # (every 2 s)
    assert metric(daemon.api_url, "relayer_message_filter_rules", list="deny") == 1

    path.write_text(base)  # the deny rule removed, then SIGHUP: the daemon reads the lists again
    assert daemon.proc is not None
    os.kill(daemon.proc.pid, signal.SIGHUP)
    wait_for(lambda: _state(daemon, denied) == "DELIVERED", RELAY_TIMEOUT_S, "the reopened message to be delivered")
    assert delivered_on(devnet, "rollup_a", denied)
    assert metric(daemon.api_url, "relayer_message_filter_reloads_total", result="ok") == 1
    # every message this daemon denied is reopened: on the session devnet, earlier tests' messages from that sender
    # too (this daemon's store indexes l1 from its start; those were delivered long ago and are DELIVERED again)
    denied_total = metric(daemon.api_url, "relayer_messages_denied_total", destination="rollup_a")
    assert metric(daemon.api_url, "relayer_messages_reopened_total") == denied_total >= 1
    assert metric(daemon.api_url, "relayer_message_filter_rules", list="deny") == 0
    assert _admin(daemon, "GET", "/filters").json()["deny"] == []


def test_the_admin_api_reloads_the_lists_and_a_bad_file_keeps_them(devnet, filtered) -> None:
    daemon, path, base = filtered
    sender = DevnetClient(devnet).address("l1", 1)
    path.write_text(base + _deny(sender))
    answer = _admin(daemon, "POST", "/filters/reload")
    assert answer.status_code == 200, answer.text
    assert answer.json()["deny"] == [{"origin": "l1", "sender": sender, "destination": "*", "recipient": "*"}]
    denied = _send(devnet, 1, b"denied after the admin reload")
    wait_for(lambda: _state(daemon, denied) == "DROPPED", RELAY_TIMEOUT_S, "the message to be dropped")
    assert not delivered_on(devnet, "rollup_a", denied)

    path.write_text(base + '\n[[relayer.deny]]\norigin = "nowhere"\n')
    refused = _admin(daemon, "POST", "/filters/reload")
    assert refused.status_code == 400
    assert refused.json()["detail"]["error"].startswith("relayer.deny[0].origin names 'nowhere'"), refused.text
    assert _admin(daemon, "GET", "/filters").json()["deny"][0]["sender"] == sender  # the lists in force stay
    assert metric(daemon.api_url, "relayer_message_filter_reloads_total", result="invalid") == 1
    assert _state(daemon, denied) == "DROPPED" and not delivered_on(devnet, "rollup_a", denied)
    path.write_text(base)
