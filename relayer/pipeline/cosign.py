"""Co-signed deliveries (Solana, Cosmos): the validator's checks before it signs, and the relayer's collector.

A chain without our contracts is delivered to by a transaction the validators sign themselves (the
destination adapter builds it: ``CosignRequest``). A validator co-signs only when, for every message in it:

1. it attested the message: it holds the message (same bytes, same id) and has itself signed a checkpoint of
   the message's origin at an index >= the message's nonce (so the light client proved it first);
2. the message is for this destination;
3. the transaction does exactly what the messages say and nothing else (``CosignedDelivery.check_cosign``,
   chain-specific decoding in the adapter);
4. the transaction can land now and stops being able to soon (``CosignedDelivery.cosign_terms``: Cosmos: its
   ``timeout_height`` is above the chain's height and at most a bounded window ahead, its vault sequence not
   already used; Solana: its blockhash is still valid);
5. at most once: each (validator, chain, message) is recorded with the payload's hash and its terms (sequence,
   last height, blockhash), taken from the payload the validator rebuilt. The same payload is signed again
   (idempotent retry); a different one only when the chain shows the recorded one can no longer land
   (``terms_can_land``: Cosmos: the committed height reached its timeout height, or the vault's sequence moved
   past its sequence; Solana: the finalized block height passed its last valid height) *and then*, read after
   that observation, the message is not delivered. Nothing in the request's ``context`` counts here (a relayer
   may put ``expires_at`` there for itself; the validator ignores it).

As a Solana/Cosmos multisig threshold is a strict majority (checked at start by each adapter), any two quorums
share a validator, and that validator signed the second payout only once the first could never land: a
message is paid out at most once.
6. the payout limits (``relayer/pipeline/payout_limits.py``, ``validator.payout_limits``) have room for its token
   payouts: else it is refused with the wait until they fit (``CosignRateLimited``, HTTP 429); the room is taken
   only once every check passed, once per payload (the same payload again takes nothing), and given back when rule 5
   shows an earlier payload of a message can never land;
7. the accountant (``relayer/pipeline/accountant.py``, when the process has one) agrees: one call, last before signing,
   that checks the payout against what this validator attested for the destination, independently of rule 5.

``HttpCosigner`` is the relayer's side: it asks every configured validator (``POST
{validator url}/cosign``) and returns the first ``threshold`` signatures. When too few signed but enough of the
others refused for a payout limit (429 ``payout rate limited``), it raises ``PayoutRateLimited`` with the wait a
quorum of them gave: the message waits that long (``rate_limited``, no attempt spent).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx
import structlog

from adapters.base import (
    PAYLOAD_MISMATCH,
    PAYOUT_RATE_LIMITED,
    AdapterError,
    ChainAdapter,
    CosignedDelivery,
    CosignRateLimited,
    CosignRefused,
    CosignRequest,
    NoCosignQuorum,
    PayoutRateLimited,
    SignedTerms,
)
from adapters.message import Message, MessageFormatError, MessageId, id_hex, message_id
from config.settings import ValidatorRef
from relayer.daemon import failpoints
from relayer.daemon.metrics import Metrics
from relayer.pipeline.accountant import GlobalAccountant
from relayer.pipeline.payout_limits import Payout, PayoutLimiter
from relayer.store import Cosignature, Store

log = structlog.get_logger("relayer.pipeline.cosign")


class CosignService:
    """Validator side: check a delivery and co-sign it at most once per message."""

    def __init__(self, store: Store, adapters: Mapping[str, ChainAdapter], keys: Mapping[str, Mapping[str, str]],
                 latest_signed: Callable[[str, int], int | None], metrics: Metrics, *,
                 clock: Callable[[], float] = time.time, accountant: GlobalAccountant | None = None,
                 limiter: PayoutLimiter | None = None) -> None:
        """``keys``: chain name -> validator address -> that validator's key on the chain (never logged);
        ``latest_signed(validator, origin)``: the highest checkpoint index it signed for ``origin``."""
        self.store = store
        self.adapters = adapters
        self.keys = keys
        self.latest_signed = latest_signed
        self.metrics = metrics
        self.clock = clock
        self.accountant = accountant
        self.limiter = limiter
        self._locks: dict[str, asyncio.Lock] = {}

    def _lock(self, chain: str) -> asyncio.Lock:
        """One lock per chain: the check (with its chain reads) and the record of a request are one step in this
        process, so two concurrent requests for one message cannot both pass the check. Records are per chain,
        so requests for different chains need not wait for each other."""
        return self._locks.setdefault(chain, asyncio.Lock())

    def _refuse(self, chain: str, reason: str, detail: str) -> CosignRefused:
        self.metrics.inc("validator_cosign_refused_total", chain=chain, reason=reason)
        log.warning("cosign_refused", chain=chain, reason=reason, detail=detail[:300])
        return CosignRefused(detail, chain=chain, reason=reason)

    async def cosign(self, validator: str, request: CosignRequest) -> tuple[str, bytes]:
        validator = validator.lower()
        chain = request.chain
        key = self.keys.get(chain, {}).get(validator)
        if key is None:
            raise self._refuse(chain, "no key", f"this process holds no key of validator {validator} on {chain!r}")
        adapter = self.adapters.get(chain)
        if adapter is None or not isinstance(adapter, CosignedDelivery):
            raise self._refuse(chain, "not cosigned", f"{chain!r} is not a chain delivered by co-signatures")
        ids = await self.store.aio.run(self._attested_ids, chain, adapter.domain, request, validator)  # reads the store
        try:
            delivers = adapter.check_cosign(request)
        except AdapterError as exc:
            raise self._refuse(chain, exc.reason or PAYLOAD_MISMATCH, str(exc)) from exc
        if sorted(delivers) != sorted(ids):
            raise self._refuse(chain, PAYLOAD_MISMATCH,
                               "the transaction delivers other messages than the request lists")
        terms = await self._terms(chain, adapter, request)
        digest = hashlib.sha256(request.payload).hexdigest()
        async with self._lock(chain):  # check-and-record is one step per process (and per chain)
            replaced: set[str] = set()
            if not (failpoints.ENABLED and failpoints.switched_off("cosign_once_rule")):  # test-only switch
                replaced = await self._check_once(validator, chain, adapter, ids, digest)
            payouts = await self._within_limits(validator, chain, adapter.domain, request, digest, replaced)
            if self.accountant is not None:
                await self.accountant.check_cosign(validator, adapter, request)
            if self.limiter is not None:
                await self.limiter.take(validator, chain, digest, payouts)
            await self.store.aio.record_cosignatures(validator, chain, ids, digest, terms, at=self.clock())
        signer, signature = adapter.cosign_with(key, request)
        self.metrics.inc("validator_cosigned_total", chain=chain, validator=validator)
        log.info("cosigned", chain=chain, validator=validator, messages=len(ids), sequence=terms.sequence,
                 last_height=terms.last_height)
        return signer, signature

    def _attested_ids(self, chain: str, domain: int, request: CosignRequest, validator: str) -> list[MessageId]:
        if not request.messages:
            raise self._refuse(chain, "empty", "a delivery of no message")
        ids: list[MessageId] = []
        for i, raw in enumerate(request.messages):
            try:
                msg = Message.decode(raw)
            except MessageFormatError as exc:
                raise self._refuse(chain, "malformed message", f"messages[{i}]: {exc}") from exc
            mid = message_id(raw)
            if mid in ids:  # two payouts of one message in one transaction
                raise self._refuse(chain, "duplicate message", f"messages[{i}] {id_hex(mid)} is listed twice")
            known = self.store.get(mid)
            if known is None or bytes(known.raw) != raw:
                raise self._refuse(chain, "not attested",
                                   f"messages[{i}] {id_hex(mid)} is not a message this validator indexed")
            if msg.destination != domain:
                raise self._refuse(chain, "wrong destination",
                                   f"messages[{i}] is for domain {msg.destination}, not {chain} ({domain})")
            signed = self.latest_signed(validator, msg.origin)
            if signed is None or signed < msg.nonce:
                raise self._refuse(chain, "not attested",
                                   f"messages[{i}] has nonce {msg.nonce} of origin {msg.origin}; "
                                   f"this validator attested up to {signed}")
            ids.append(mid)
        return ids

    async def _terms(self, chain: str, adapter: CosignedDelivery, request: CosignRequest) -> SignedTerms:
        try:
            return await adapter.cosign_terms(request)
        except CosignRefused as exc:
            raise self._refuse(chain, exc.reason or "bad terms", str(exc)) from exc
        except AdapterError as exc:  # the chain could not be asked: sign nothing
            raise self._refuse(chain, "chain unavailable", str(exc)) from exc

    async def _within_limits(self, validator: str, chain: str, domain: int, request: CosignRequest, digest: str,
                             replaced: set[str]) -> list[Payout]:
        """Rule 6: the payouts to take from the payout limits once signed; ``replaced``: earlier payloads of these
        messages that can never land (their room is given back first)."""
        if self.limiter is None:
            return []
        await self.limiter.give_back(validator, chain, replaced)
        try:
            return await self.limiter.check(validator, chain, domain, request, digest)
        except CosignRateLimited as exc:
            self.metrics.inc("validator_cosign_refused_total", chain=chain, reason=exc.reason)
            raise

    async def _check_once(self, validator: str, chain: str, adapter: CosignedDelivery, ids: list[MessageId],
                          digest: str) -> set[str]:
        """Refuse unless every message is unsigned, signed with this very payload, or signed with payloads that
        the chain shows can never land, for messages the chain shows undelivered (read after that); returns the
        hashes of those payloads (they never landed and never will)."""
        earlier = await self.store.aio.cosignatures(validator, chain, ids)
        others = [c for c in earlier if c.payload_sha256 != digest]
        if not others:
            return set()
        try:
            await self._refuse_if_can_land(chain, adapter, others)
            delivered = await adapter.delivered([c.message_id for c in others])
        except AdapterError as exc:
            if isinstance(exc, CosignRefused):
                raise
            raise self._refuse(chain, "chain unavailable", str(exc)) from exc
        if any(delivered):
            raise self._refuse(chain, "already delivered", "a message of this request is already delivered on chain")
        return {c.payload_sha256 for c in others}

    async def _refuse_if_can_land(self, chain: str, adapter: CosignedDelivery, others: list[Cosignature]
                                  ) -> None:
        for c in others:
            if c.terms is None or await adapter.terms_can_land(c.terms):
                raise self._refuse(chain, "already cosigned",
                                   f"message {id_hex(c.message_id)} was co-signed in another transaction that "
                                   f"can still land ({_describe(c.terms)})")


def _describe(terms: SignedTerms | None) -> str:
    if terms is None:
        return "recorded without terms"
    parts = [f"last height {terms.last_height}"]
    if terms.sequence is not None:
        parts.append(f"sequence {terms.sequence}")
    if terms.anchor:
        parts.append(f"blockhash {terms.anchor}")
    return ", ".join(parts)


class HttpCosigner:
    """Relayer side: gathers co-signatures over HTTP from the configured validators. ``auth`` signs each request
    with the relayer's identity (``relayer.api.relayer_auth.RelayerAuth``): validators co-sign only for allow-listed
    relayers."""

    def __init__(self, validators: list[ValidatorRef], http: httpx.AsyncClient, *, timeout_s: float = 10.0,
                 auth: httpx.Auth | None = None) -> None:
        self.validators = validators
        self.http = http
        self.timeout_s = timeout_s
        self.auth = auth

    async def cosign(self, request: CosignRequest, threshold: int) -> list[tuple[str, bytes]]:
        body = request.to_json()
        problems: list[str] = []
        waits: list[float] = []  # retry_after_s of the validators that refused for a payout limit

        async def one(v: ValidatorRef) -> tuple[str, bytes] | None:
            try:
                resp = await self.http.post(f"{v.url.rstrip('/')}/cosign", json=body, timeout=self.timeout_s,
                                            auth=self.auth or httpx.USE_CLIENT_DEFAULT)
            except httpx.HTTPError as exc:
                problems.append(f"{v.address}: {type(exc).__name__}")
                return None
            if resp.status_code != 200:
                detail: Any = resp.text[:200]
                try:
                    detail = resp.json().get("detail", detail)
                except ValueError:
                    pass
                wait = _rate_limited(resp.status_code, detail)
                if wait is not None:
                    waits.append(wait)
                    problems.append(f"{v.address}: {detail.get('error', '')}")
                    return None
                problems.append(f"{v.address}: HTTP {resp.status_code} {detail}")
                return None
            doc = resp.json()
            return str(doc["signer"]), bytes.fromhex(str(doc["signature"]).removeprefix("0x"))

        results = [r for r in await asyncio.gather(*(one(v) for v in self.validators)) if r is not None]
        if len(results) < threshold <= len(results) + len(waits):  # a quorum once the limits have room
            wait = sorted([0.0] * len(results) + waits)[threshold - 1]
            raise PayoutRateLimited(f"{len(results)} of {threshold} co-signatures for {request.chain}, the others "
                                    f"over a payout limit: " + "; ".join(problems), chain=request.chain,
                                    retry_after_s=wait)
        if len(results) < threshold:
            raise NoCosignQuorum(f"{len(results)} of {threshold} co-signatures for {request.chain}: "
                                 + "; ".join(problems), chain=request.chain)
        return results[:threshold]


def _rate_limited(status: int, detail: Any) -> float | None:
    """A validator's refusal for a payout limit: its ``retry_after_s``; None for any other answer."""
    if status != 429 or not isinstance(detail, dict) or detail.get("reason") != PAYOUT_RATE_LIMITED:
        return None
    try:
        return max(0.0, min(float(detail.get("retry_after_s", 0.0)), 86_400.0))
    except (TypeError, ValueError):
        return 0.0
