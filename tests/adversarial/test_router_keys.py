"""A routing API with ``router.api_keys`` set: the attacker, without the key (none, empty, wrong, key-shaped), gets
401 for every intent and quote and the operator accounts send nothing (balances and nonces read from the chains);
a dApp holding the key still gets its transfer included. (Off loopback a daemon with operator keys and no API keys
does not start: tests/integration/test_routing_api.py.)"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from router.client import RoutingClient
from tests.adversarial.conftest import start_daemon
from tests.adversarial.test_router import OPERATORS, _chain_state
from tests.integration.harness import DaemonProcess

pytestmark = pytest.mark.integration

API_KEY = "adversarial-" + secrets.token_hex(16)  # this test's own key (never given to the attacker)


@pytest.fixture(scope="module")
def keyed_daemon(bridge_devnet: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    def with_key(text: str) -> str:
        assert "\n[router]\n" in text
        return text.replace("\n[router]\n", f'\n[router]\napi_keys = ["{API_KEY}"]\n', 1)

    daemon = start_daemon(bridge_devnet, tmp_path_factory.mktemp("keyed"), edit=with_key)
    yield daemon
    daemon.stop()


def test_without_the_api_key_nothing_is_planned_or_sent(attacker, bridge_devnet, keyed_daemon) -> None:
    me = attacker.addresses["l1"]
    before = _chain_state(bridge_devnet, me)
    seen = attacker.run("router_keys.without_the_key", operators=OPERATORS)
    assert len(seen["answers"]) == 12
    assert {a["status"] for a in seen["answers"]} == {401}, seen["answers"]
    assert seen["chains"] == 200  # the public reads stay open
    assert _chain_state(bridge_devnet, me) == before  # no operator sent anything, the attacker got nothing

    recipient = "0x" + secrets.token_hex(20)
    with RoutingClient(keyed_daemon.api_url, api_key=API_KEY) as dapp:
        ids = dapp.submit([{"amount": "0.01", "token": "TST", "recipient": recipient, "chains": ["l1"]}])
        assert ids[0] is not None
        assert dapp.wait(ids[0], until={"included"}, timeout=90)["status"] == "included"
