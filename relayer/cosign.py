"""Co-signed deliveries (Solana, Cosmos): the validator's checks before it signs, and the relayer's collector.

A chain without our contracts is delivered to by a transaction the validators sign themselves (the
destination adapter builds it: ``CosignRequest``). A validator co-signs only when, for every message in it:

1. it attested the message: it holds the message (same bytes, same id) and has itself signed a checkpoint of
   the message's origin at an index >= the message's nonce (so the light client proved it first);
2. the message is for this destination;
3. the transaction does exactly what the messages say and nothing else (``CosignedDelivery.check_cosign``,
   chain-specific decoding in the adapter);
4. it has not co-signed *another* transaction for the message: each (validator, chain, message) is recorded
   with the payload's hash; the same payload is signed again (idempotent retry), a different one only when
   the earlier one can no longer land (its ``expires_at`` has passed) and the chain says the message is
   still not delivered.

``HttpCosigner`` is the relayer's side: it asks every configured validator (``POST
{validator url}/cosign``) and returns the first ``threshold`` signatures.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx
import structlog
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, select

from adapters.base import AdapterError, ChainAdapter, CosignedDelivery, CosignRefused, CosignRequest
from adapters.message import Message, MessageFormatError, MessageId, keccak256
from config.settings import ValidatorRef
from relayer.metrics import Metrics
from relayer.store import Store

log = structlog.get_logger("relayer.cosign")


class CosignRecord(SQLModel, table=True):
    __tablename__ = "cosignatures"

    validator: str = Field(primary_key=True, max_length=42)
    chain: str = Field(primary_key=True, max_length=64)
    message_id: str = Field(primary_key=True, max_length=66)
    payload_sha256: str = Field(max_length=64)
    expires_at: float | None = None
    signed_at: float


class CosignService:
    """Validator side: check a delivery and co-sign it at most once per message."""

    def __init__(self, store: Store, adapters: Mapping[str, ChainAdapter], keys: Mapping[str, Mapping[str, str]],
                 latest_signed: Callable[[str, int], int | None], metrics: Metrics, *,
                 clock: Callable[[], float] = time.time) -> None:
        """``keys``: chain name -> validator address -> that validator's key on the chain (never logged);
        ``latest_signed(validator, origin)``: the highest checkpoint index it signed for ``origin``."""
        self.store = store
        self.adapters = adapters
        self.keys = keys
        self.latest_signed = latest_signed
        self.metrics = metrics
        self.clock = clock
        self._lock = asyncio.Lock()
        SQLModel.metadata.create_all(store.engine, tables=[CosignRecord.__table__])  # type: ignore[attr-defined]

    @property
    def engine(self) -> Engine:
        return self.store.engine

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
        if not request.messages:
            raise self._refuse(chain, "empty", "a delivery of no message")
        ids: list[MessageId] = []
        for i, raw in enumerate(request.messages):
            try:
                msg = Message.decode(raw)
            except MessageFormatError as exc:
                raise self._refuse(chain, "malformed message", f"messages[{i}]: {exc}") from exc
            mid = keccak256(raw)
            known = self.store.get("0x" + mid.hex())
            if known is None or bytes(known.raw) != raw:
                raise self._refuse(chain, "not attested", f"messages[{i}] 0x{mid.hex()} is not a message this validator indexed")
            if msg.destination != adapter.domain:
                raise self._refuse(chain, "wrong destination",
                                   f"messages[{i}] is for domain {msg.destination}, not {chain} ({adapter.domain})")
            signed = self.latest_signed(validator, msg.origin)
            if signed is None or signed < msg.nonce:
                raise self._refuse(chain, "not attested", f"messages[{i}] has nonce {msg.nonce} of origin {msg.origin}; "
                                                          f"this validator attested up to {signed}")
            ids.append(MessageId(mid))
        try:
            delivers = adapter.check_cosign(request)
        except AdapterError as exc:
            raise self._refuse(chain, exc.reason or "payload mismatch", str(exc)) from exc
        if sorted(delivers) != sorted(ids):
            raise self._refuse(chain, "payload mismatch", "the transaction delivers other messages than the request lists")
        digest = hashlib.sha256(request.payload).hexdigest()
        expires = float(request.context["expires_at"]) if "expires_at" in request.context else None
        async with self._lock:  # check-and-record is one step per process
            await self._check_once(validator, chain, adapter, ids, digest)
            now = self.clock()
            with Session(self.engine) as s:
                for mid in ids:
                    key_ = (validator, chain, "0x" + mid.hex())
                    rec = s.get(CosignRecord, key_)
                    if rec is None:
                        rec = CosignRecord(validator=validator, chain=chain, message_id="0x" + mid.hex(),
                                           payload_sha256=digest, expires_at=expires, signed_at=now)
                    else:
                        rec.payload_sha256, rec.expires_at, rec.signed_at = digest, expires, now
                    s.add(rec)
                s.commit()
        signer, signature = adapter.cosign_with(key, request)
        self.metrics.inc("validator_cosigned_total", chain=chain, validator=validator)
        log.info("cosigned", chain=chain, validator=validator, messages=len(ids))
        return signer, signature

    async def _check_once(self, validator: str, chain: str, adapter: ChainAdapter, ids: list[MessageId],
                          digest: str) -> None:
        with Session(self.engine) as s:
            earlier = {r.message_id: r for r in s.exec(select(CosignRecord).where(
                CosignRecord.validator == validator, CosignRecord.chain == chain)).all()
                if r.message_id in {"0x" + m.hex() for m in ids}}
        others = [r for r in earlier.values() if r.payload_sha256 != digest]
        if not others:
            return
        now = self.clock()
        live = [r for r in others if r.expires_at is None or r.expires_at > now]
        if live:
            raise self._refuse(chain, "already cosigned",
                               f"message {live[0].message_id} was co-signed in another transaction that can still land")
        delivered = await adapter.delivered([MessageId(bytes.fromhex(r.message_id[2:])) for r in others])
        if any(delivered):
            raise self._refuse(chain, "already delivered", "a message of this request is already delivered on chain")


class HttpCosigner:
    """Relayer side: gathers co-signatures over HTTP from the configured validators. ``auth`` signs each request
    with the relayer's identity (``relayer.relayer_auth.RelayerAuth``): validators co-sign only for allow-listed
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
                problems.append(f"{v.address}: HTTP {resp.status_code} {detail}")
                return None
            doc = resp.json()
            return str(doc["signer"]), bytes.fromhex(str(doc["signature"]).removeprefix("0x"))

        results = [r for r in await asyncio.gather(*(one(v) for v in self.validators)) if r is not None]
        if len(results) < threshold:
            raise AdapterError(f"{len(results)} of {threshold} co-signatures for {request.chain}: " + "; ".join(problems),
                               chain=request.chain, reason="no cosign quorum")
        return results[:threshold]
