"""The relayer's signed requests to validators (relayer/api/relayer_auth.py): sign and verify, every field tampered,
stale and replayed requests, the allow-list, and the guard's budgets (a relayer's own, the anonymous one)."""

from __future__ import annotations

import json
import math

import httpx
import pytest
from eth_account import Account
from eth_account.messages import encode_defunct

from adapters.message import keccak256
from relayer.api.ratelimit import KeyedRateLimiter
from relayer.api.relayer_auth import (
    HEADER_ADDRESS,
    HEADER_BODY_HASH,
    HEADER_NONCE,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    HEADERS,
    RefusalReason,
    RelayerAuth,
    RelayerRequestSigner,
    RelayerRequestVerifier,
    RequestRefused,
    ValidatorEndpointGuard,
    request_digest,
)
from relayer.daemon.metrics import Metrics

# anvil's public devnet test keys (not secrets): the two devnet relayer accounts and an outsider
RELAYER_KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
OTHER_RELAYER_KEY = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a"
OUTSIDER_KEY = "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6"
VALIDATOR = "0x9965507d1a55bcc2695c58ba16fb37d819b0a4dc"
OTHER_VALIDATOR = "0x976ea74026e726554db657fa54763abd0c3a0aa9"
COSIGN_PATH = f"/validators/{VALIDATOR}/cosign".encode()
BODY = json.dumps({"chain": "cosmos", "messages": ["0x01"], "payload": "0xabcd", "context": {}}).encode()
NOW = 1_800_000_000.0


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def signer(key: str = RELAYER_KEY, clock: Clock | None = None) -> RelayerRequestSigner:
    return RelayerRequestSigner(key, clock=clock or Clock())


def verifier(clock: Clock | None = None, **kw) -> RelayerRequestVerifier:  # type: ignore[no-untyped-def]
    allowed = [signer(RELAYER_KEY).address, signer(OTHER_RELAYER_KEY).address]
    return RelayerRequestVerifier(allowed, max_age_s=60.0, clock=clock or Clock(), **kw)


def refused(v: RelayerRequestVerifier, method: str, target: bytes, headers: dict[str, str],
            body: bytes) -> RequestRefused:
    with pytest.raises(RequestRefused) as err:
        v.verify(method, target, headers, body)
    return err.value


def test_a_signed_request_verifies_to_the_relayer_and_is_an_eip191_signature():
    s = signer()
    headers = s.headers("POST", COSIGN_PATH, BODY)
    assert set(headers) == set(HEADERS)
    assert verifier().verify("POST", COSIGN_PATH, headers, BODY) == s.address
    # the same primitive as checkpoints: a plain EIP-191 personal_sign of the domain-tagged digest
    digest = request_digest("POST", COSIGN_PATH, int(headers[HEADER_TIMESTAMP]), bytes.fromhex(headers[HEADER_NONCE]),
                            keccak256(BODY))
    recovered = Account.recover_message(encode_defunct(primitive=digest),
                                        signature=bytes.fromhex(headers[HEADER_SIGNATURE][2:]))
    assert recovered.lower() == s.address


def test_header_names_are_case_insensitive():
    headers = {k.lower(): v for k, v in signer().headers("GET", b"/x", b"").items()}
    assert verifier().verify("GET", b"/x", headers, b"") is not None


def _tampered(field: str, headers: dict[str, str]) -> dict[str, str]:
    out = dict(headers)
    if field == HEADER_TIMESTAMP:
        out[field] = str(int(out[field]) - 1)  # still inside the window: only the signature can tell
    elif field == HEADER_NONCE:
        out[field] = ("0" if out[field][0] != "0" else "1") + out[field][1:]
    elif field == HEADER_SIGNATURE:
        sig = bytearray(bytes.fromhex(out[field][2:]))
        sig[5] ^= 0x01
        out[field] = "0x" + sig.hex()
    elif field == HEADER_ADDRESS:
        out[field] = signer(OTHER_RELAYER_KEY).address  # another allow-listed relayer's name on this signature
    return out


@pytest.mark.parametrize("field", [HEADER_TIMESTAMP, HEADER_NONCE, HEADER_SIGNATURE, HEADER_ADDRESS])
def test_each_signed_header_tampered_is_a_bad_signature(field):
    headers = signer().headers("POST", COSIGN_PATH, BODY)
    exc = refused(verifier(), "POST", COSIGN_PATH, _tampered(field, headers), BODY)
    assert exc.reason is RefusalReason.BAD_SIGNATURE and exc.status == 401


@pytest.mark.parametrize(("method", "target"), [
    ("PUT", COSIGN_PATH),                                                    # another method
    ("POST", f"/validators/{OTHER_VALIDATOR}/cosign".encode()),             # retargeted to another validator
    ("POST", f"/validators/{VALIDATOR}/checkpoints/1000/latest".encode()),  # another endpoint
    ("POST", COSIGN_PATH + b"?x=1"),                                         # a query added
])
def test_a_signature_for_another_method_or_path_is_a_bad_signature(method, target):
    headers = signer().headers("POST", COSIGN_PATH, BODY)
    exc = refused(verifier(), method, target, headers, BODY)
    assert exc.reason is RefusalReason.BAD_SIGNATURE


def test_an_altered_body_is_a_body_mismatch_and_with_its_hash_updated_a_bad_signature():
    headers = signer().headers("POST", COSIGN_PATH, BODY)
    altered = BODY.replace(b"0xabcd", b"0xabce")
    assert refused(verifier(), "POST", COSIGN_PATH, headers, altered).reason is RefusalReason.BODY_MISMATCH
    rehashed = dict(headers, **{HEADER_BODY_HASH: "0x" + keccak256(altered).hex()})
    assert refused(verifier(), "POST", COSIGN_PATH, rehashed, altered).reason is RefusalReason.BAD_SIGNATURE


def test_no_header_is_anonymous_and_a_partial_or_malformed_set_is_refused():
    v = verifier()
    assert v.verify("GET", b"/x", {}, b"") is None
    headers = signer().headers("GET", b"/x", b"")
    for name in HEADERS:
        partial = {k: val for k, val in headers.items() if k != name}
        exc = refused(v, "GET", b"/x", partial, b"")
        assert exc.reason is RefusalReason.MALFORMED and name in str(exc)
    for name, junk in ((HEADER_ADDRESS, "0x12"), (HEADER_TIMESTAMP, "-5"), (HEADER_TIMESTAMP, "1e9"),
                       (HEADER_NONCE, "zz" * 16), (HEADER_BODY_HASH, "0x00"), (HEADER_SIGNATURE, "0x" + "gg" * 65),
                       (HEADER_SIGNATURE, "x" * 10_000)):
        exc = refused(v, "GET", b"/x", dict(headers, **{name: junk}), b"")
        assert exc.reason is RefusalReason.MALFORMED and name in str(exc)
        assert len(str(exc)) < 300  # never echoes more than a few caller bytes


def test_a_timestamp_outside_the_window_either_way_is_stale():
    clock = Clock()
    v = verifier(clock)
    for skew in (-61.0, 61.0):
        headers = signer(clock=Clock(NOW + skew)).headers("POST", COSIGN_PATH, BODY)
        assert refused(v, "POST", COSIGN_PATH, headers, BODY).reason is RefusalReason.STALE_TIMESTAMP
    for skew in (-59.0, 59.0):
        headers = signer(clock=Clock(NOW + skew)).headers("POST", COSIGN_PATH, BODY)
        assert v.verify("POST", COSIGN_PATH, headers, BODY) is not None


def test_a_key_not_allow_listed_is_an_unknown_relayer_even_when_its_signature_is_good():
    headers = signer(OUTSIDER_KEY).headers("POST", COSIGN_PATH, BODY)
    exc = refused(verifier(), "POST", COSIGN_PATH, headers, BODY)
    assert exc.reason is RefusalReason.UNKNOWN_RELAYER and exc.status == 403


def test_a_request_is_accepted_once_then_replayed_then_stale():
    clock = Clock()
    v = verifier(clock)
    headers = signer(clock=clock).headers("POST", COSIGN_PATH, BODY)
    assert v.verify("POST", COSIGN_PATH, headers, BODY) is not None
    clock.now += 30
    assert refused(v, "POST", COSIGN_PATH, headers, BODY).reason is RefusalReason.REPLAYED
    clock.now += 31
    assert refused(v, "POST", COSIGN_PATH, headers, BODY).reason is RefusalReason.STALE_TIMESTAMP
    # two requests of the same content in the same second are distinct (nonce): neither is a replay
    a, b = (signer(clock=clock).headers("GET", b"/x", b"") for _ in range(2))
    assert v.verify("GET", b"/x", a, b"") and v.verify("GET", b"/x", b, b"")


def test_the_seen_set_is_bounded_and_forgets_expired_requests():
    clock = Clock()
    v = verifier(clock, max_seen=3)
    for _ in range(10):
        assert v.verify("GET", b"/x", signer(clock=clock).headers("GET", b"/x", b""), b"")
    assert len(v._seen) == 3
    clock.now += 61
    v.verify("GET", b"/x", signer(clock=clock).headers("GET", b"/x", b""), b"")
    assert len(v._seen) == 1


def test_the_key_never_shows():
    s = signer()
    assert RELAYER_KEY[2:] not in repr(s) and s.address in repr(s)
    assert RELAYER_KEY[2:] not in repr(RelayerAuth(s).__dict__)


async def test_httpx_requests_signed_by_relayer_auth_verify_at_the_server():
    """What the client really sends (method, path with query, body bytes) is what the server verifies."""
    clock = Clock()
    v = verifier(clock)
    seen: list[str | None] = []

    def server(request: httpx.Request) -> httpx.Response:
        seen.append(v.verify(request.method, request.url.raw_path, dict(request.headers), request.content))
        return httpx.Response(200, json={})

    auth = RelayerAuth(signer(clock=clock))
    async with httpx.AsyncClient(transport=httpx.MockTransport(server)) as http:
        await http.post(f"http://v:1/validators/{VALIDATOR}/cosign", json={"chain": "solana", "n": [1, 2]}, auth=auth)
        await http.get(f"http://v:1/validators/{VALIDATOR}/checkpoints/1000/latest?x=%20y", auth=auth)
        await http.get(f"http://v:1/validators/{VALIDATOR}/checkpoints/1000/7")
    assert seen == [auth.address, auth.address, None]


# ---- the guard: who is served, from which budget, what is counted

def guard(clock: Clock, *, anonymous_burst: float = 3, relayer_burst: float = 5, metrics: Metrics | None = None,
          logged: list | None = None) -> ValidatorEndpointGuard:  # type: ignore[type-arg]
    return ValidatorEndpointGuard(verifier(clock), metrics=metrics or Metrics(), clock=clock,
                                  relayers=KeyedRateLimiter(1.0, relayer_burst, clock=clock),
                                  anonymous=KeyedRateLimiter(1.0, anonymous_burst, clock=clock))


def test_cosign_needs_a_signature_and_checkpoints_are_served_anonymously_within_a_small_budget():
    clock = Clock()
    metrics = Metrics()
    g = guard(clock, metrics=metrics)
    with pytest.raises(RequestRefused) as err:
        g.admit("cosign", "POST", COSIGN_PATH, {}, BODY, "127.0.0.1")
    assert err.value.reason is RefusalReason.MISSING and err.value.status == 401
    target = f"/validators/{VALIDATOR}/checkpoints/1000/latest".encode()
    assert [g.admit("checkpoint", "GET", target, {}, b"", "127.0.0.1") for _ in range(3)] == ["anonymous"] * 3
    with pytest.raises(RequestRefused) as err:
        g.admit("checkpoint", "GET", target, {}, b"", "127.0.0.1")
    assert err.value.status == 429 and err.value.reason is RefusalReason.RATE_LIMITED
    assert 0 < err.value.retry_after_s <= 1.0
    assert g.admit("checkpoint", "GET", target, {}, b"", "10.0.0.7") == "anonymous"  # another client: its own budget
    # the relayer, from the same client address as the flood, is served from its own budget
    relayer = signer(clock=clock)
    assert g.admit("checkpoint", "GET", target, relayer.headers("GET", target, b""), b"",
                   "127.0.0.1") == relayer.address
    assert g.admit("cosign", "POST", COSIGN_PATH, relayer.headers("POST", COSIGN_PATH, BODY), BODY,
                   "127.0.0.1") == relayer.address
    assert metrics.value("validator_requests_refused_total", endpoint="cosign", reason="missing") == 1
    assert metrics.value("validator_requests_refused_total", endpoint="checkpoint", reason="rate_limited") == 1
    assert metrics.value("validator_requests_admitted_total", endpoint="checkpoint", client="anonymous") == 4
    assert metrics.value("validator_requests_admitted_total", endpoint="cosign", client=relayer.address) == 1


def test_an_unlisted_relayer_reads_checkpoints_anonymously_but_cannot_ask_for_a_cosignature():
    clock = Clock()
    g = guard(clock)
    outsider = signer(OUTSIDER_KEY, clock=clock)
    target = f"/validators/{VALIDATOR}/checkpoints/1000/latest".encode()
    assert g.admit("checkpoint", "GET", target, outsider.headers("GET", target, b""), b"", "1.2.3.4") == "anonymous"
    with pytest.raises(RequestRefused) as err:
        g.admit("cosign", "POST", COSIGN_PATH, outsider.headers("POST", COSIGN_PATH, BODY), BODY, "1.2.3.4")
    assert err.value.reason is RefusalReason.UNKNOWN_RELAYER and err.value.status == 403


def test_forged_claims_of_a_relayer_never_spend_its_budget():
    clock = Clock()
    g = guard(clock, relayer_burst=2)
    relayer = signer(clock=clock)
    forged = dict(signer(OUTSIDER_KEY, clock=clock).headers("POST", COSIGN_PATH, BODY),
                  **{HEADER_ADDRESS: relayer.address})
    for _ in range(50):
        with pytest.raises(RequestRefused) as err:
            g.admit("cosign", "POST", COSIGN_PATH, forged, BODY, "127.0.0.1")
        assert err.value.reason in (RefusalReason.BAD_SIGNATURE, RefusalReason.REPLAYED)
    for _ in range(2):
        assert g.admit("cosign", "POST", COSIGN_PATH, relayer.headers("POST", COSIGN_PATH, BODY), BODY,
                       "x") == relayer.address
    with pytest.raises(RequestRefused) as err:  # its own third request within the burst: its budget, spent by itself
        g.admit("cosign", "POST", COSIGN_PATH, relayer.headers("POST", COSIGN_PATH, BODY), BODY, "x")
    assert err.value.reason is RefusalReason.RATE_LIMITED


def test_refusal_reasons_are_a_fixed_set_whatever_the_caller_sends():
    clock = Clock()
    metrics = Metrics()
    g = guard(clock, metrics=metrics)
    for junk in ("evil\nlabel", "x" * 500, '"}', "0x" + "ab" * 20):
        with pytest.raises(RequestRefused):
            g.admit("cosign", "POST", COSIGN_PATH, {h: junk for h in HEADERS}, BODY, junk)
    reasons = {dict(k)["reason"] for k in metrics._counters["validator_requests_refused_total"]}
    assert reasons <= {r.value for r in RefusalReason}


def test_refusals_are_logged_at_most_once_a_second_per_reason_with_the_count_skipped(capsys):
    from relayer.daemon.logconfig import configure_logging

    configure_logging("info", json_output=True)
    clock = Clock()
    g = guard(clock, anonymous_burst=1)
    for _ in range(20):
        with pytest.raises(RequestRefused):
            g.admit("cosign", "POST", COSIGN_PATH, {}, BODY, "127.0.0.1")
    clock.now += 1.5
    with pytest.raises(RequestRefused):
        g.admit("cosign", "POST", COSIGN_PATH, {}, BODY, "127.0.0.1")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if "validator_request_refused" in line]
    assert [(entry["reason"], entry["skipped"]) for entry in lines] == [("missing", 0), ("missing", 19)]


def test_retry_after_is_finite_when_a_budget_can_never_refill():
    clock = Clock()
    g = ValidatorEndpointGuard(verifier(clock), metrics=Metrics(), clock=clock,
                               relayers=KeyedRateLimiter(1.0, 5, clock=clock),
                               anonymous=KeyedRateLimiter(0.0, 1, clock=clock))
    g.admit("checkpoint", "GET", b"/x", {}, b"", "c")
    with pytest.raises(RequestRefused) as err:
        g.admit("checkpoint", "GET", b"/x", {}, b"", "c")
    assert math.isfinite(err.value.retry_after_s)
