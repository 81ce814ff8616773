"""The validators' co-sign and checkpoint endpoints against the attacker process (issue 12, finding 4).

Who may call: ``POST /validators/{address}/cosign`` only an allow-listed relayer (``validator.allowed_relayers``)
with a valid signature of its identity key over method, path, timestamp, nonce and body; the checkpoint reads
anyone, within a small budget per client address unless signed by an allow-listed relayer (its own budget).

The daemon here is the devnet's (role all: validators, co-signer, relayer) behind one change: its relayer reaches
its validators through a recording proxy of the test process, which keeps a copy of each co-sign request the
relayer sends. That copy is what an eavesdropper on the relayer's link would hold; the attacker is handed it and
replays it, late and at once, alters it, re-dates it and retargets it to another validator. Every attempt is refused
with its reason, nothing is co-signed for the attacker, the refusals are in /metrics, and the chain shows it: the
Cosmos vault and the Solana wrapped supply move by exactly the normal transfers the relayer delivers meanwhile.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from adapters.evm.devnet import RELAYER_A, address_of
from adapters.message import MessageId
from devnets.devnet import relayer_identity_key
from tests.adversarial.conftest import start_daemon
from tests.faults.conftest import metric
from tests.integration.harness import DaemonProcess, DevnetClient, wait_for, wait_for_async

pytestmark = pytest.mark.integration

WINDOW_S = 15.0  # validator.request_max_age_s of the daemon under attack (short, so the late replay is seen stale)
# the daemon's relayer identity (write_daemon_config default)
RELAYER = address_of(relayer_identity_key(RELAYER_A)).lower()
COSMOS_SCALE = 10**12  # TST: 18 decimals on the L1, 6 on Cosmos
SOLANA_SCALE = 10**9   # 9 on Solana


class RecordingProxy:
    """Loopback HTTP proxy in front of the daemon's validator endpoints, keeping a copy of each co-sign request the
    relayer sends through it that was answered 200 (path, headers, body)."""

    def __init__(self, target: str) -> None:
        self.target = target.rstrip("/")
        self.captured: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._local = threading.local()
        self._clients: list[httpx.Client] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args: Any) -> None:
                return None

            def forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("host", "content-length", "connection", "accept-encoding")}
                resp = proxy.client().request(self.command, proxy.target + self.path, content=body, headers=headers)
                if self.command == "POST" and self.path.endswith("/cosign") and resp.status_code == 200:
                    with proxy._lock:
                        proxy.captured.append({"path": self.path, "headers": headers, "body": body.decode(),
                                               "chain": _chain_of(body)})
                out = resp.content
                self.send_response(resp.status_code)
                for name in ("Content-Type", "Retry-After"):
                    if name in resp.headers:
                        self.send_header(name, resp.headers[name])
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            do_GET = forward
            do_POST = forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def client(self) -> httpx.Client:
        if not hasattr(self._local, "client"):
            self._local.client = httpx.Client(timeout=30)
            with self._lock:
                self._clients.append(self._local.client)
        return self._local.client  # type: ignore[no-any-return]

    def latest(self, chain: str) -> dict[str, Any] | None:
        with self._lock:
            found = [c for c in self.captured if c["chain"] == chain]
        return found[-1] if found else None

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        for c in self._clients:
            c.close()


def _chain_of(body: bytes) -> str:
    return str(json.loads(body).get("chain"))


@pytest.fixture(scope="module")
def proxied_daemon(bridge_devnet: Any,
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DaemonProcess, RecordingProxy]]:
    api_url = bridge_devnet.manifest()["api_url"]
    proxy = RecordingProxy(api_url)

    def edit(text: str) -> str:
        assert f'url = "{api_url}/validators/' in text
        text = text.replace(f'url = "{api_url}/validators/', f'url = "{proxy.url}/validators/')
        return text.replace("allowed_relayers = ", f"request_max_age_s = {WINDOW_S}\nallowed_relayers = ", 1)

    daemon = start_daemon(bridge_devnet, tmp_path_factory.mktemp("validator-endpoints"), edit=edit)
    yield daemon, proxy
    daemon.stop()
    proxy.close()


async def _vault_and_supply(client: DevnetClient) -> dict[str, int]:
    cosmos, sol = client.adapters["cosmos"], client.adapters["solana"]
    vault = client.settings.chains["cosmos"].vault  # type: ignore[union-attr]
    fee = client.settings.chains["cosmos"].fee_denom  # type: ignore[union-attr]
    return {"cosmos_vault_tst": await cosmos.token_balance("TST", vault),  # type: ignore[attr-defined]
            "cosmos_vault_fee": await cosmos.token_balance(fee, vault),  # type: ignore[attr-defined]
            "solana_tst_supply": await sol.token_supply("TST")}  # type: ignore[attr-defined]


async def _attacker_balances(client: DevnetClient, attacker: Any) -> dict[str, int]:
    return {"cosmos": await client.adapters["cosmos"].token_balance("TST", attacker.addresses["cosmos"]),  # type: ignore[attr-defined]
            "solana": await client.adapters["solana"].token_balance("TST", attacker.addresses["solana"])}  # type: ignore[attr-defined]


async def _transfer(client: DevnetClient, dest: str, amount: int) -> tuple[MessageId, int]:
    """TST from the L1 user to the user on ``dest``; returns the message id and the user's balance there before."""
    adapter = client.adapters[dest]
    user = client.address(dest)
    before = await adapter.token_balance("TST", user)  # type: ignore[attr-defined]
    _tx, mid = await client.adapters["l1"].send_token(client.key("l1"), "TST", amount, client.domain(dest),  # type: ignore[attr-defined]
                                                      adapter.account_bytes32(user))  # type: ignore[attr-defined]
    return mid, before


async def _arrived(client: DevnetClient, dest: str, before: int, amount: int, timeout: float = 150) -> None:
    adapter = client.adapters[dest]
    user = client.address(dest)

    async def paid() -> bool:
        return await adapter.token_balance("TST", user) == before + amount  # type: ignore[attr-defined,no-any-return]

    await wait_for_async(paid, timeout, f"TST paid out on {dest}")


def _refused(api: str, reason: str) -> float:
    return metric(api, "validator_requests_refused_total", endpoint="cosign", reason=reason)


def _settled(api: str) -> bool:
    """Nothing on its way to Cosmos or Solana in the daemon's pipeline (so chain reads are not mid-delivery)."""
    messages = httpx.get(f"{api}/v1/status", timeout=10).json()["messages"]
    return not any(messages.get(dest, {}).get(state, 0) for dest in ("cosmos", "solana")
                   for state in ("DISPATCHED", "ATTESTED", "SUBMITTED"))


async def _deliver_and_capture(client: DevnetClient, proxy: RecordingProxy, dest: str, amount: int,
                               scale: int) -> dict[str, Any]:
    """A normal transfer to ``dest``, delivered by the relayer; the copy of its freshest co-sign request."""
    earlier = len(proxy.captured)
    _mid, before = await _transfer(client, dest, amount)
    await _arrived(client, dest, before, amount // scale)
    wait_for(lambda: any(c["chain"] == dest for c in proxy.captured[earlier:]), 30,
             f"a copy of a co-sign request for {dest}")
    captured = proxy.latest(dest)
    assert captured is not None
    return captured


EXPECTED = {"unsigned": (401, "missing"), "own_key": (403, "unknown_relayer"),
            "own_key_altered_payload": (403, "unknown_relayer"), "own_key_in_relayers_name": (401, "bad_signature"),
            "replayed": (401, "replayed"), "altered_payload": (401, "body_mismatch"),
            "altered_payload_rehashed": (401, "bad_signature"), "retargeted": (401, "bad_signature"),
            "redated": (401, "bad_signature")}


async def test_cosign_is_refused_to_anyone_but_the_allow_listed_relayer(bridge_devnet, attacker, proxied_daemon):
    daemon, proxy = proxied_daemon
    api = daemon.api_url
    client = DevnetClient(bridge_devnet)
    validators = [v["address"].lower() for v in bridge_devnet.manifest()["validators"]]
    amount = 2 * 10**18
    reasons = ("missing", "unknown_relayer", "bad_signature", "body_mismatch", "replayed", "stale_timestamp")
    try:
        wait_for(lambda: _settled(api), 120, "the daemon to settle what earlier tests left on the way")
        chain_before = await _vault_and_supply(client)
        attacker_before = await _attacker_balances(client, attacker)
        counted_before = {r: _refused(api, r) for r in reasons}

        # the relayer delivers to Cosmos; the attacker gets a copy of its signed co-sign request at once
        captured = await _deliver_and_capture(client, proxy, "cosmos", amount, COSMOS_SCALE)
        cosmos = await asyncio.to_thread(attacker.run, "validator_endpoints.cosign_attacks", captured=captured,
                                         validators=validators, late_replay_s=WINDOW_S + 30)
        captured = await _deliver_and_capture(client, proxy, "solana", amount, SOLANA_SCALE)
        solana = await asyncio.to_thread(attacker.run, "validator_endpoints.cosign_attacks", captured=captured,
                                         validators=validators)

        for seen in (cosmos, solana):
            assert {name: (a["status"], a["reason"]) for name, a in seen["attempts"].items()} == EXPECTED
            assert not any(a["cosigned"] for a in seen["attempts"].values())
        # the late replay: refused as a replay while inside the window, then as stale; never co-signed
        late = cosmos["late"]
        assert late and (late[-1]["status"], late[-1]["reason"]) == (401, "stale_timestamp"), late
        assert late[-1]["age_s"] > WINDOW_S - 1
        assert all((a["status"], a["reason"]) == (401, "replayed") for a in late[:-1])
        assert not any(a["cosigned"] for a in late)
        counted = {r: _refused(api, r) - counted_before[r] for r in reasons}
        assert counted == {"missing": 2, "unknown_relayer": 4, "bad_signature": 8, "body_mismatch": 2,
                           "replayed": 2 + len(late) - 1, "stale_timestamp": 1}

        # the daemon keeps relaying to both co-signed chains
        for dest, scale in (("cosmos", COSMOS_SCALE), ("solana", SOLANA_SCALE)):
            _mid, before = await _transfer(client, dest, amount)
            await _arrived(client, dest, before, amount // scale)
        wait_for(lambda: _settled(api), 60, "the daemon to settle")
        # read from the chains: the vault paid out and the wrapped supply grew by exactly the two normal transfers
        after = await _vault_and_supply(client)
        assert chain_before["cosmos_vault_tst"] - after["cosmos_vault_tst"] == 2 * amount // COSMOS_SCALE
        assert after["solana_tst_supply"] - chain_before["solana_tst_supply"] == 2 * amount // SOLANA_SCALE
        assert 0 <= chain_before["cosmos_vault_fee"] - after["cosmos_vault_fee"] < 10**7  # the deliveries' own fees
        assert await _attacker_balances(client, attacker) == attacker_before
        assert metric(api, "validator_requests_admitted_total", endpoint="cosign", client=RELAYER) >= 4
    finally:
        await client.close()


async def test_a_checkpoint_flood_is_limited_and_relaying_goes_on(bridge_devnet, attacker, proxied_daemon, tmp_path):
    daemon, _proxy = proxied_daemon
    api = daemon.api_url
    client = DevnetClient(bridge_devnet)
    validators = [v["address"].lower() for v in bridge_devnet.manifest()["validators"]]
    origins = [client.domain(n) for n in client.settings.chains]
    stop_file = tmp_path / "stop-flood"
    amount = 3 * 10**18
    limited_before = metric(api, "validator_requests_refused_total", endpoint="checkpoint", reason="rate_limited")
    try:
        wait_for(lambda: _settled(api), 120, "the daemon to settle")
        before = await _vault_and_supply(client)
        flood = asyncio.create_task(asyncio.to_thread(
            attacker.run, "validator_endpoints.checkpoint_flood", validators=validators, origins=origins,
            stop_file=str(stop_file), max_s=240.0))
        try:
            async def limited() -> bool:
                assert not flood.done(), "the flood ended before it was limited"
                return metric(api, "validator_requests_refused_total", endpoint="checkpoint",
                              reason="rate_limited") - limited_before >= 100

            await wait_for_async(limited, 90, "the flood to be limited")
            relayer_reads_at_flood = metric(api, "validator_requests_admitted_total", endpoint="checkpoint",
                                            client=RELAYER)
            _mid, user_before = await _transfer(client, "cosmos", amount)
            await _arrived(client, "cosmos", user_before, amount // COSMOS_SCALE)
            assert not flood.done(), "the flood ended before the transfer arrived"
            relayer_reads_during = metric(api, "validator_requests_admitted_total", endpoint="checkpoint",
                                          client=RELAYER) - relayer_reads_at_flood
        finally:
            stop_file.write_text("stop")
            seen = await flood
        wait_for(lambda: _settled(api), 60, "the daemon to settle")
        after = await _vault_and_supply(client)
    finally:
        await client.close()
    assert seen["stopped_by_file"] and seen["errors"] == 0
    counts = {kind: {int(s): n for s, n in c.items()} for kind, c in seen["counts"].items()}
    assert all(set(c) <= {200, 404, 429} for c in counts.values()), counts
    served = sum(n for c in counts.values() for s, n in c.items() if s != 429)
    limited_count = sum(c.get(429, 0) for c in counts.values())
    # one anonymous budget for the attacker's address (burst 40 + 20/s), its own-key reads included (unknown relayer)
    assert served <= 40 + 20 * seen["duration_s"] + 20, (served, seen["duration_s"])
    assert limited_count > served and counts["own_key"].get(429, 0) > 0
    assert seen["retry_after"] and all(v.isdigit() and int(v) >= 1 for v in seen["retry_after"])
    assert metric(api, "validator_requests_refused_total", endpoint="checkpoint",
                  reason="rate_limited") - limited_before >= limited_count
    # the relayer read checkpoints on its own budget throughout, and the chain moved by the one transfer only
    assert relayer_reads_during > 0
    assert before["cosmos_vault_tst"] - after["cosmos_vault_tst"] == amount // COSMOS_SCALE
    assert after["solana_tst_supply"] == before["solana_tst_supply"]
