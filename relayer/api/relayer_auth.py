"""Relayer identity on the validators' endpoints: the relayer signs every request it sends to a validator, the
validator checks the signature against its allow-list, and both endpoints are rate limited per client.

Who may call what (``ValidatorEndpointGuard``, in front of the routes in ``relayer.api.server``):

    POST /validators/{address}/cosign           only an allow-listed relayer (``validator.allowed_relayers``) with a
                                                valid signature; its budget is keyed on its address
    GET  /validators/{address}/checkpoints/...  anyone (checkpoints are public and signed by the validators). A valid
                                                signature of an allow-listed relayer buys that relayer's budget;
                                                everyone else shares the small anonymous budget of its client address

Keying the relayer's budget on its authenticated address, not on the IP, is what keeps relaying going while an
anonymous flood comes from the same address (on the devnet the relayer calls its own validators over loopback).

The signature, as headers on every request the relayer sends (``RelayerAuth``, an ``httpx.Auth``):

    X-Relayer-Address    0x-address of ``relayer.identity_key``
    X-Relayer-Timestamp  unix seconds when signed
    X-Relayer-Nonce      16 random bytes (hex): no two requests sign the same digest
    X-Relayer-Body-Hash  0x keccak256(body) (of the empty body for a GET)
    X-Relayer-Signature  0x r|s|v, EIP-191 over
        digest = keccak256("XCHAIN_RELAYER_REQUEST_V1" | keccak256(METHOD) | keccak256(request target, path?query)
                           | timestamp u64 | nonce 16 | keccak256(body))

the same secp256k1 primitive as checkpoints (``adapters.checkpoint``), with its own domain tag. The path names the
validator (``/validators/{address}/...``), so a request signed for one validator does not verify at another, and
the body hash binds the exact bytes of a co-sign request. The request target is signed as the validator receives it:
a proxy in front of a validator must not rewrite paths.

What the validator checks, cheapest first, and the reason it answers when a check fails (``RefusalReason``, a fixed
set: the metric label ``validator_requests_refused_total{endpoint,reason}``; 401 unless said):

    missing          no X-Relayer-* header on a co-sign request (a checkpoint GET without them is anonymous)
    malformed        one of the five headers absent or not in its format
    stale_timestamp  the timestamp is more than ``validator.request_max_age_s`` from the validator's clock, either way
    unknown_relayer  (403) the address is not allow-listed (for a checkpoint GET: served as anonymous instead, since
                     the allow-list only buys a budget there; permissionless relayers still read checkpoints)
    body_mismatch    the body received does not hash to X-Relayer-Body-Hash (the body was altered)
    bad_signature    the signature does not recover to the address over this method, path, timestamp, nonce and
                     body: forged, made by another key, or sent to another validator or path than it was signed for
    replayed         this exact signed request was already accepted
    rate_limited     (429 + Retry-After) the client's budget is spent

Only a request that passed every check spends a relayer's budget, so nobody can spend it by claiming its address.

Replays. An accepted request's digest is remembered until its timestamp leaves the window (after which the
timestamp check refuses it), so a captured request is answered once. The memory is bounded (``max_seen``, oldest
forgotten first); only verified requests of allow-listed relayers enter it and those are rate limited, so nobody
else can grow it. It is not what protects funds, and forgetting is safe (a restart, or more than ``max_seen``
requests within one window): a replayed co-sign request carries the payload the relayer chose, which the validator
co-signs only after its own checks (``CosignService``: the messages attested, the transaction doing exactly what
they say) and at most one transaction per message (idempotent per payload), so a replay yields at most the
co-signature the relayer already received, over the transaction it asked for, and nothing new is authorised; a
replayed checkpoint GET returns public data. The seen-set keeps an eavesdropper from harvesting co-signatures
after the fact and from using a relayer's budget.
"""

from __future__ import annotations

import re
import secrets
import struct
import time
from collections import OrderedDict
from collections.abc import Callable, Generator, Iterable, Mapping
from enum import StrEnum
from typing import Literal

import httpx
import structlog

from adapters.checkpoint import CheckpointSigner, SignatureError, recover_digest_signer
from adapters.message import keccak256
from config.errors import RelayerError
from config.settings import ValidatorRoleSettings
from relayer.api.ratelimit import KeyedRateLimiter
from relayer.daemon.metrics import Metrics

log = structlog.get_logger("relayer.api.relayer_auth")

REQUEST_TAG = b"XCHAIN_RELAYER_REQUEST_V1"
HEADER_ADDRESS = "X-Relayer-Address"
HEADER_TIMESTAMP = "X-Relayer-Timestamp"
HEADER_NONCE = "X-Relayer-Nonce"
HEADER_BODY_HASH = "X-Relayer-Body-Hash"
HEADER_SIGNATURE = "X-Relayer-Signature"
HEADERS = (HEADER_ADDRESS, HEADER_TIMESTAMP, HEADER_NONCE, HEADER_BODY_HASH, HEADER_SIGNATURE)
NONCE_BYTES = 16
DEFAULT_MAX_SEEN = 100_000

_FORMATS = {
    HEADER_ADDRESS: re.compile(r"^0x[0-9a-fA-F]{40}$"),
    HEADER_TIMESTAMP: re.compile(r"^[0-9]{1,12}$"),
    HEADER_NONCE: re.compile(rf"^[0-9a-fA-F]{{{2 * NONCE_BYTES}}}$"),
    HEADER_BODY_HASH: re.compile(r"^0x[0-9a-fA-F]{64}$"),
    HEADER_SIGNATURE: re.compile(r"^0x[0-9a-fA-F]{130}$"),
}

Endpoint = Literal["cosign", "checkpoint"]
ANONYMOUS = "anonymous"


class RefusalReason(StrEnum):
    MISSING = "missing"
    MALFORMED = "malformed"
    STALE_TIMESTAMP = "stale_timestamp"
    UNKNOWN_RELAYER = "unknown_relayer"
    BODY_MISMATCH = "body_mismatch"
    BAD_SIGNATURE = "bad_signature"
    REPLAYED = "replayed"
    RATE_LIMITED = "rate_limited"


_STATUS = {RefusalReason.UNKNOWN_RELAYER: 403, RefusalReason.RATE_LIMITED: 429}


class RequestRefused(RelayerError):
    """A request to a validator endpoint that is not served: ``reason`` (fixed set), ``status`` (401, 403, 429) and,
    for 429, ``retry_after_s``. The message says what was wrong, never echoing more than a few caller bytes."""

    def __init__(self, reason: RefusalReason, detail: str, *, retry_after_s: float = 0.0) -> None:
        super().__init__(detail)
        self.reason = reason
        self.status = _STATUS.get(reason, 401)
        self.retry_after_s = retry_after_s


def request_digest(method: str, target: bytes, timestamp: int, nonce: bytes, body_hash: bytes) -> bytes:
    """The 32 bytes a relayer signs for one request (fixed-size fields after the tag: no two requests share one)."""
    if len(nonce) != NONCE_BYTES or len(body_hash) != 32 or not 0 <= timestamp < 2**64:
        raise ValueError("nonce is 16 bytes, body hash 32, timestamp a u64")
    return keccak256(REQUEST_TAG + keccak256(method.upper().encode("ascii")) + keccak256(target)
                     + struct.pack(">Q", timestamp) + nonce + body_hash)


class RelayerRequestSigner:
    """Holds the relayer's identity key (never logged: ``repr`` shows the address) and signs requests with it."""

    def __init__(self, private_key_hex: str, *, clock: Callable[[], float] = time.time,
                 nonce: Callable[[int], bytes] = secrets.token_bytes) -> None:
        self._key = CheckpointSigner.from_hex(private_key_hex)
        self.address = self._key.address
        self._clock = clock
        self._nonce = nonce

    def __repr__(self) -> str:
        return f"RelayerRequestSigner(address={self.address})"

    def headers(self, method: str, target: bytes, body: bytes) -> dict[str, str]:
        """The X-Relayer-* headers for ``method`` on ``target`` (path and query as sent) with ``body``."""
        timestamp = int(self._clock())
        nonce = self._nonce(NONCE_BYTES)
        body_hash = keccak256(body)
        signature = self._key.sign_digest(request_digest(method, target, timestamp, nonce, body_hash))
        return {HEADER_ADDRESS: self.address, HEADER_TIMESTAMP: str(timestamp), HEADER_NONCE: nonce.hex(),
                HEADER_BODY_HASH: "0x" + body_hash.hex(), HEADER_SIGNATURE: "0x" + signature.hex()}


class RelayerAuth(httpx.Auth):
    """Signs each request an httpx client sends (``auth=``): the relayer's co-sign and checkpoint requests."""

    requires_request_body = True

    def __init__(self, signer: RelayerRequestSigner) -> None:
        self.signer = signer

    @property
    def address(self) -> str:
        return self.signer.address

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers.update(self.signer.headers(request.method, request.url.raw_path, request.content))
        yield request


class _SeenDigests:
    """Digests of accepted requests until they expire, at most ``max_size`` (the oldest forgotten first)."""

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self._expiry: OrderedDict[bytes, float] = OrderedDict()

    def first_time(self, digest: bytes, expires_at: float, now: float) -> bool:
        """Record ``digest``; False when it is already recorded (a replay)."""
        while self._expiry and next(iter(self._expiry.values())) <= now:
            self._expiry.popitem(last=False)
        if digest in self._expiry:
            return False
        self._expiry[digest] = expires_at
        if len(self._expiry) > self.max_size:
            self._expiry.popitem(last=False)
        return True

    def __len__(self) -> int:
        return len(self._expiry)


class RelayerRequestVerifier:
    """The validator's check of a relayer's signed request (module docstring: the checks, their order, replays)."""

    def __init__(self, allowed_relayers: Iterable[str], *, max_age_s: float = 60.0, max_seen: int = DEFAULT_MAX_SEEN,
                 clock: Callable[[], float] = time.time) -> None:
        self.allowed = frozenset(a.lower() for a in allowed_relayers)
        self.max_age_s = max_age_s
        self._clock = clock
        self._seen = _SeenDigests(max_seen)

    def verify(self, method: str, target: bytes, headers: Mapping[str, str], body: bytes) -> str | None:
        """The allow-listed relayer's address (lower case) that signed this request; None when the request carries
        no X-Relayer-* header at all (anonymous); ``RequestRefused`` with the reason otherwise."""
        lowered = {k.lower(): v for k, v in headers.items()}
        values = {h: lowered.get(h.lower()) for h in HEADERS}
        if all(v is None for v in values.values()):
            return None
        for name, value in values.items():
            if value is None:
                raise RequestRefused(RefusalReason.MALFORMED, f"{name} is missing (a signed request carries all of "
                                                              f"{', '.join(HEADERS)})")
            if not _FORMATS[name].match(value):
                raise RequestRefused(RefusalReason.MALFORMED, f"{name} is not in its format ({value[:24]!r})")
        address = str(values[HEADER_ADDRESS]).lower()
        timestamp = int(str(values[HEADER_TIMESTAMP]))
        now = self._clock()
        if abs(now - timestamp) > self.max_age_s:
            raise RequestRefused(RefusalReason.STALE_TIMESTAMP,
                                 f"signed at {timestamp}, {now - timestamp:+.0f} s from this "
                                 f"validator's clock; accepted within {self.max_age_s:g} s")
        if address not in self.allowed:
            raise RequestRefused(RefusalReason.UNKNOWN_RELAYER,
                                 f"relayer {address} is not in validator.allowed_relayers")
        body_hash = keccak256(body)
        if "0x" + body_hash.hex() != str(values[HEADER_BODY_HASH]).lower():
            raise RequestRefused(RefusalReason.BODY_MISMATCH, f"the body received does not hash to {HEADER_BODY_HASH}")
        digest = request_digest(method, target, timestamp, bytes.fromhex(str(values[HEADER_NONCE])), body_hash)
        try:
            signer = recover_digest_signer(digest, bytes.fromhex(str(values[HEADER_SIGNATURE])[2:]))
        except SignatureError as exc:
            raise RequestRefused(RefusalReason.BAD_SIGNATURE, f"the signature does not verify: {exc}") from None
        if signer != address:
            raise RequestRefused(RefusalReason.BAD_SIGNATURE,
                                 f"the signature is not {address}'s over this method, path, "
                                 "timestamp, nonce and body")
        if not self._seen.first_time(digest, timestamp + self.max_age_s, now):
            raise RequestRefused(RefusalReason.REPLAYED, "this signed request was already served once")
        return address


class ValidatorEndpointGuard:
    """Admission to the validator endpoints: who may call (``RelayerRequestVerifier``) and how often (a token bucket
    per allow-listed relayer address, and a smaller one per client address for anonymous checkpoint reads).
    Each refusal is counted in ``validator_requests_refused_total{endpoint,reason}`` and logged
    (``validator_request_refused``, at most one line per endpoint and reason a second, with the number skipped)."""

    def __init__(self, verifier: RelayerRequestVerifier, *, relayers: KeyedRateLimiter, anonymous: KeyedRateLimiter,
                 metrics: Metrics, log_every_s: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.verifier = verifier
        self.relayers = relayers
        self.anonymous = anonymous
        self.metrics = metrics
        self.log_every_s = log_every_s
        self._clock = clock
        self._logged: dict[tuple[str, str], tuple[float, int]] = {}  # (endpoint, reason) -> (last line, skipped since)

    @classmethod
    def from_settings(cls, settings: ValidatorRoleSettings, metrics: Metrics) -> ValidatorEndpointGuard:
        verifier = RelayerRequestVerifier(settings.allowed_relayers, max_age_s=settings.request_max_age_s)
        return cls(verifier, metrics=metrics,
                   relayers=KeyedRateLimiter(settings.relayer_requests_per_s, settings.relayer_burst,
                                             max_keys=max(1, len(verifier.allowed))),
                   anonymous=KeyedRateLimiter(settings.anonymous_requests_per_s, settings.anonymous_burst))

    def admit(self, endpoint: Endpoint, method: str, target: bytes, headers: Mapping[str, str], body: bytes,
              client: str) -> str:
        """Who is served: the relayer's address or ``"anonymous"``; ``RequestRefused`` when not served."""
        claimed = str(headers.get(HEADER_ADDRESS.lower()) or headers.get(HEADER_ADDRESS) or "")[:42]
        try:
            relayer = self.verifier.verify(method, target, headers, body)
        except RequestRefused as exc:
            if not (endpoint == "checkpoint" and exc.reason is RefusalReason.UNKNOWN_RELAYER):
                raise self._refused(endpoint, exc, client, claimed) from None
            relayer = None  # checkpoints are public: an unlisted relayer reads them on the anonymous budget
        if relayer is None:
            if endpoint == "cosign":
                raise self._refused(endpoint, RequestRefused(
                    RefusalReason.MISSING,
                    f"a co-sign request must be signed by an allow-listed relayer ({', '.join(HEADERS)})"),
                    client, claimed)
            wait = self.anonymous.take(client or "unknown")
            budget = "the anonymous budget of this client address (validator.anonymous_requests_per_s)"
        else:
            wait = self.relayers.take(relayer)
            budget = f"relayer {relayer}'s budget (validator.relayer_requests_per_s)"
        if wait > 0:
            raise self._refused(endpoint, RequestRefused(RefusalReason.RATE_LIMITED, f"{budget} is spent; retry later",
                                                         retry_after_s=min(wait, 3600.0)), client, claimed)
        served = relayer or ANONYMOUS
        self.metrics.inc("validator_requests_admitted_total", endpoint=endpoint, client=served)
        return served

    def _refused(self, endpoint: Endpoint, exc: RequestRefused, client: str, claimed: str) -> RequestRefused:
        self.metrics.inc("validator_requests_refused_total", endpoint=endpoint, reason=exc.reason.value)
        key = (endpoint, exc.reason.value)
        now = self._clock()
        last, skipped = self._logged.get(key, (-1e18, 0))
        if now - last < self.log_every_s:
            self._logged[key] = (last, skipped + 1)
            return exc
        self._logged[key] = (now, 0)
        log.warning("validator_request_refused", endpoint=endpoint, reason=exc.reason.value, status=exc.status,
                    client=client[:64], relayer=claimed or None, detail=str(exc)[:200], skipped=skipped)
        return exc
