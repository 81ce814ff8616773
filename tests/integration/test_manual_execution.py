"""Manual execution on the devnet (issue 15, CCIP's manual execution): with relayer.max_gas_per_message at 400,000, a
message whose recipient burns ~1.5M gas is DROPPED(gas_limit_exceeded) and not processed on chain, while a plain
message on the same route is delivered; the operator executes it through the admin API with 3,000,000 gas: it is
delivered once (read from the chain), a second execution is 409, and the action is counted. (Its own module: one
daemon at a time on the session devnet.)"""

from __future__ import annotations

import secrets
import struct
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
CAP = 400_000
BURN_ROUNDS = 20_000  # ~70 gas a round in TestRecipient._burn: far over the cap


@pytest.fixture(scope="module")
def capped(devnet: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    directory = tmp_path_factory.mktemp("manual-execution")
    path = write_daemon_config(devnet, directory, api_port=free_port_block(1))
    daemon = DaemonProcess(path, directory / "daemon.log", instance="manual-execution",
                           env={"RELAYER__ADMIN__API_KEYS": f'["{ADMIN_KEY}"]',
                                "RELAYER__RELAYER__MAX_GAS_PER_MESSAGE": str(CAP)}).start()
    yield daemon
    daemon.stop()


def _send(devnet: Any, body: bytes) -> bytes:
    return dispatch_to_test_recipient(devnet, DevnetClient(devnet).key("l1", 1), "l1", "rollup_a", [body])[0]


def _execute(daemon: DaemonProcess, mid: bytes, gas_limit: int) -> httpx.Response:
    return httpx.post(f"{daemon.api_url}/admin/v1/messages/0x{mid.hex()}/execute", json={"gas_limit": gas_limit},
                      headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=60)


def test_a_message_over_the_gas_limit_is_dropped_and_executed_by_the_operator(devnet, capped) -> None:
    api = capped.api_url
    heavy = _send(devnet, b"burn:" + struct.pack(">I", BURN_ROUNDS))
    plain = _send(devnet, b"an ordinary message")
    wait_for(lambda: message_status(api, heavy) == ("dropped", "gas_limit_exceeded"), RELAY_TIMEOUT_S,
             "the costly message dropped for its gas")
    wait_for(lambda: delivered_on(devnet, "rollup_a", plain), RELAY_TIMEOUT_S, "the plain message delivered")
    rec = message_record(api, heavy)
    assert rec and f"over relayer.max_gas_per_message ({CAP})" in rec["last_error"]
    assert not delivered_on(devnet, "rollup_a", heavy)
    wait_for(lambda: metric(api, "relayer_messages_waiting", reason="gas_limit_exceeded") >= 1, 10,
             "the drop in relayer_messages_waiting (set every 2 s)")

    sent = _execute(capped, heavy, 3_000_000)
    assert sent.status_code == 200, sent.text
    assert sent.json()["gas_limit"] == 3_000_000 and sent.json()["tx"].startswith("0x")
    wait_for(lambda: message_status(api, heavy) == ("delivered", None), RELAY_TIMEOUT_S,
             "the executed message delivered")
    assert delivered_on(devnet, "rollup_a", heavy)
    receipt = httpx.post(devnet.manifest()["chains"]["rollup_a"]["rpc_url"], json={
        "jsonrpc": "2.0", "id": 1, "method": "eth_getTransactionReceipt", "params": [sent.json()["tx"]]}).json()
    assert int(receipt["result"]["status"], 16) == 1 and int(receipt["result"]["gasUsed"], 16) > CAP

    again = _execute(capped, heavy, 3_000_000)
    assert again.status_code == 409 and "DELIVERED" in again.text
    assert metric(api, "relayer_admin_actions_total", action="execute") == 1


def test_manual_execution_refuses_bad_input(capped) -> None:
    """A gas limit outside 21,000..100,000,000 or a malformed id is 400 naming the field; an unknown id 404."""
    unknown = bytes(32)
    too_low = _execute(capped, unknown, 1_000)
    assert too_low.status_code == 400 and "gas_limit" in too_low.text
    assert _execute(capped, unknown, 100_000).status_code == 404
    bad = httpx.post(f"{capped.api_url}/admin/v1/messages/0x12/execute", json={"gas_limit": 100_000},
                     headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    assert bad.status_code == 400 and "id" in bad.text
