"""The validator endpoints of a real daemon (role all, on the EVM devnet) against callers that are not its relayer:
co-sign requests unsigned, malformed, signed by an unknown key, forged in the relayer's name, stale, altered,
retargeted or replayed are refused with their status and reason and counted in /metrics, while a request signed
with the relayer's identity passes to the co-sign checks; an anonymous flood of checkpoint reads is answered 429
with Retry-After while the relayer, calling its own validators over the same loopback address, keeps relaying.

The daemon co-signs for ``l1`` here (``validator.cosign_keys.l1``) only so that its co-sign endpoint is live on this
EVM-only devnet: a request that passes the relayer check is then refused by the co-sign checks themselves
(``not cosigned``), which shows it got past authentication. Real co-signed deliveries under the same checks: the
Cosmos and Solana end-to-end tests and tests/adversarial/test_validator_endpoints.py.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path

import httpx
import pytest

from adapters.base import CosignRequest
from adapters.evm.devnet import RELAYER_A
from adapters.message import address_to_bytes32, keccak256
from devnets.devnet import relayer_identity_key
from relayer.api.relayer_auth import HEADER_ADDRESS, HEADER_BODY_HASH, HEADER_SIGNATURE, RelayerRequestSigner
from tests.faults.conftest import metric
from tests.integration.harness import (
    DaemonProcess,
    DevnetClient,
    free_port_block,
    wait_for_async,
    write_daemon_config,
)

pytestmark = pytest.mark.integration

OUTSIDER_KEY = "0x" + "42" * 32  # a key of nobody the validators know


def with_cosign_keys_for_l1(config: Path) -> Path:
    text = config.read_text()
    block = re.search(r"\[validator\]\nkeys = \[[^\n]*\n((?:  \{ private_key = [^\n]*\n)+)\]", text)
    assert block is not None, "no [validator] keys block in the written config"
    keys = ", ".join(line.strip().rstrip(",") for line in block.group(1).splitlines())
    config.write_text(text.replace("allowed_relayers = ",
                                   f"cosign_keys.l1 = [{keys}]  # devnet test keys\nallowed_relayers = ", 1))
    return config


@pytest.fixture(scope="module")
def daemon(devnet, tmp_path_factory):  # type: ignore[no-untyped-def]
    directory = tmp_path_factory.mktemp("validator-auth")
    process = DaemonProcess(with_cosign_keys_for_l1(write_daemon_config(devnet, directory,
                                                                        api_port=free_port_block(1))),
                            directory / "d.log").start()
    yield process
    process.stop()


def cosign_body() -> bytes:
    return json.dumps(CosignRequest("l1", b"\xab" * 40, (b"\x00" * 77,)).to_json()).encode()


def post(api: str, path: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(f"{api}{path}", content=body, headers={"Content-Type": "application/json", **headers}, timeout=10)


def test_cosign_requests_need_an_allow_listed_relayers_signature(devnet, daemon):  # type: ignore[no-untyped-def]
    api = daemon.api_url
    validators = [v["address"].lower() for v in devnet.manifest()["validators"]]
    path = f"/validators/{validators[0]}/cosign"
    body = cosign_body()
    relayer = RelayerRequestSigner(relayer_identity_key(RELAYER_A))  # the daemon's relayer identity (devnet test key)
    outsider = RelayerRequestSigner(OUTSIDER_KEY)
    before = {r: metric(api, "validator_requests_refused_total", endpoint="cosign", reason=r)
              for r in ("missing", "malformed", "unknown_relayer", "bad_signature", "stale_timestamp", "body_mismatch",
                        "replayed")}

    signed = relayer.headers("POST", path.encode(), body)
    cases: dict[str, tuple[str, bytes, dict[str, str]]] = {
        "unsigned": (path, body, {}),
        "malformed": (path, body, dict(signed, **{HEADER_SIGNATURE: "0xnot-a-signature"})),
        "outsider's own key": (path, body, outsider.headers("POST", path.encode(), body)),
        "outsider in the relayer's name": (path, body, dict(outsider.headers("POST", path.encode(), body),
                                                             **{HEADER_ADDRESS: relayer.address})),
        "stale": (path, body, RelayerRequestSigner(relayer_identity_key(RELAYER_A), clock=lambda: time.time() - 120)
                  .headers("POST", path.encode(), body)),
        "altered body": (path, body.replace(b"ab", b"cd", 1), signed),
        "altered body, its hash recomputed": (path, body.replace(b"ab", b"cd", 1),
                                              dict(signed, **{HEADER_BODY_HASH:
                                                              "0x" + keccak256(body.replace(b"ab", b"cd", 1)).hex()})),
        "retargeted": (f"/validators/{validators[1]}/cosign", body, signed),
    }
    expected = {"unsigned": (401, "missing"), "malformed": (401, "malformed"),
                "outsider's own key": (403, "unknown_relayer"),
                "outsider in the relayer's name": (401, "bad_signature"), "stale": (401, "stale_timestamp"),
                "altered body": (401, "body_mismatch"), "altered body, its hash recomputed": (401, "bad_signature"),
                "retargeted": (401, "bad_signature")}
    seen = {}
    for name, (p, b, h) in cases.items():
        resp = post(api, p, b, h)
        seen[name] = (resp.status_code, resp.json()["detail"].get("reason"))
    assert seen == expected

    # the relayer's genuine request gets past authentication to the co-sign checks (l1 is not co-signed) ...
    genuine = post(api, path, body, signed)
    assert genuine.status_code == 403 and genuine.json()["detail"]["reason"] == "not cosigned", genuine.text
    # ... once: the same signed request again is a replay
    again = post(api, path, body, signed)
    assert (again.status_code, again.json()["detail"]["reason"]) == (401, "replayed")

    counts = {r: metric(api, "validator_requests_refused_total", endpoint="cosign", reason=r) - n
              for r, n in before.items()}
    assert counts == {"missing": 1, "malformed": 1, "unknown_relayer": 1, "bad_signature": 3, "stale_timestamp": 1,
                      "body_mismatch": 1, "replayed": 1}
    assert metric(api, "validator_requests_admitted_total", endpoint="cosign", client=relayer.address) >= 1
    log = daemon.log.read_text()
    assert ("validator_request_refused" in log and relayer_identity_key(RELAYER_A)[2:] not in log
            and OUTSIDER_KEY[2:] not in log)


async def test_an_anonymous_checkpoint_flood_gets_429_while_relaying_goes_on(devnet, daemon):  # type: ignore[no-untyped-def]
    api = daemon.api_url
    client = DevnetClient(devnet)
    validator = devnet.manifest()["validators"][0]["address"].lower()
    l1_domain = client.domain("l1")
    relayer = RelayerRequestSigner(relayer_identity_key(RELAYER_A))
    limited_before = metric(api, "validator_requests_refused_total", endpoint="checkpoint", reason="rate_limited")
    relayer_reads_before = metric(api, "validator_requests_admitted_total", endpoint="checkpoint",
                                  client=relayer.address)
    answers: dict[int, int] = {}
    retry_after: set[str] = set()
    stop = asyncio.Event()

    async def flood(http: httpx.AsyncClient) -> None:
        while not stop.is_set():
            resp = await http.get(f"{api}/validators/{validator}/checkpoints/{l1_domain}/latest")
            answers[resp.status_code] = answers.get(resp.status_code, 0) + 1
            if resp.status_code == 429:
                retry_after.add(resp.headers.get("Retry-After", ""))

    try:
        async with httpx.AsyncClient(timeout=10) as http:
            flooders = [asyncio.create_task(flood(http)) for _ in range(6)]
            try:
                async def limited() -> bool:
                    return answers.get(429, 0) > 50

                await wait_for_async(limited, 60, "the flood to be limited")
                recipient = address_to_bytes32(client.manifest["chains"]["rollup_a"]["contracts"]["test_recipient"])
                _tx, (mid,) = await client.adapters["l1"].dispatch_messages(  # type: ignore[attr-defined]
                    client.key("l1"), client.domain("rollup_a"), recipient, [b"through the flood"])

                async def delivered() -> bool:
                    return bool((await client.adapters["rollup_a"].delivered([mid]))[0])

                await wait_for_async(delivered, 120, "the message to be delivered during the flood")
                assert all(not f.done() for f in flooders), "the flood stopped before the delivery"
                during = answers.get(429, 0)
                # a signed read of the relayer's identity is served from its own budget, flood or not
                path = f"/validators/{validator}/checkpoints/{l1_domain}/latest"
                signed = await http.get(f"{api}{path}", headers=relayer.headers("GET", path.encode(), b""))
                assert signed.status_code == 200, signed.text
            finally:
                stop.set()
                await asyncio.gather(*flooders, return_exceptions=True)
    finally:
        await client.close()
    # some reads served (checkpoints are public; 404 before the first checkpoint of l1), the rest limited
    assert during > 50 and answers.get(200, 0) + answers.get(404, 0) >= 1
    assert set(answers) <= {200, 404, 429}, answers
    assert retry_after and all(v.isdigit() and int(v) >= 1 for v in retry_after)
    assert metric(api, "validator_requests_refused_total", endpoint="checkpoint",
                  reason="rate_limited") - limited_before >= during
    assert metric(api, "validator_requests_admitted_total", endpoint="checkpoint",
                  client=relayer.address) > relayer_reads_before

