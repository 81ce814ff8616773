"""The ``cosignatures`` table: what each validator co-signed on each chain delivered by co-signatures (Solana,
Cosmos), per message: the newest payload's hash and its signed terms. The co-sign service's once-rule
(``relayer/pipeline/cosign.py``) reads and writes it; ids are ``MessageId`` outside, 0x hex in the table."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlmodel import Field, Session, SQLModel, col, select

from adapters.base import SignedTerms
from adapters.message import MessageId
from relayer.store.messages import message_id, message_keys
from relayer.store.schema import StoreTables, hex_id, widen_ints


class CosignRecord(SQLModel, table=True):
    """What a validator co-signed for one message: the newest payload only (an earlier one was replaced only
    once it could never land). ``last_height`` / ``sequence`` / ``anchor``: the payload's ``SignedTerms``; a row
    of a version before them (all NULL) is treated as able to land until the message is delivered. A table of
    that version keeps its ``expires_at`` column, unused."""

    __tablename__ = "cosignatures"

    validator: str = Field(primary_key=True, max_length=42)
    chain: str = Field(primary_key=True, max_length=64)
    message_id: str = Field(primary_key=True, max_length=66)
    payload_sha256: str = Field(max_length=64)
    last_height: int | None = None
    sequence: int | None = None
    anchor: str | None = Field(default=None, max_length=128)
    signed_at: float


widen_ints([CosignRecord])  # heights and sequences are u64


@dataclass(frozen=True, slots=True)
class Cosignature:
    """One message's co-signature as the once-rule sees it; ``terms`` None: recorded by a version without them."""

    message_id: MessageId
    payload_sha256: str
    terms: SignedTerms | None

    @classmethod
    def of(cls, rec: CosignRecord) -> Cosignature:
        terms = None if rec.last_height is None else SignedTerms(rec.last_height, rec.sequence, rec.anchor or "")
        return cls(message_id(rec.message_id), rec.payload_sha256, terms)


class CosignatureTable(StoreTables):
    def cosignatures(self, validator: str, chain: str, ids: Sequence[MessageId]) -> list[Cosignature]:
        """What ``validator`` co-signed on ``chain`` for any of ``ids``."""
        c = CosignRecord
        with Session(self.engine) as s:
            rows = s.exec(select(c).where(col(c.validator) == validator, col(c.chain) == chain,
                                          col(c.message_id).in_(message_keys(ids)))).all()
        return [Cosignature.of(r) for r in rows]

    def record_cosignatures(self, validator: str, chain: str, ids: Sequence[MessageId], payload_sha256: str,
                            terms: SignedTerms, *, at: float) -> None:
        """``validator`` co-signed the payload ``payload_sha256`` on ``chain`` for ``ids``: one transaction; it
        replaces what was recorded for them."""
        with Session(self.engine) as s:
            for mid in ids:
                rec = s.get(CosignRecord, (validator, chain, hex_id(mid)))
                if rec is None:
                    rec = CosignRecord(validator=validator, chain=chain, message_id=hex_id(mid),
                                       payload_sha256=payload_sha256, signed_at=at)
                rec.payload_sha256, rec.signed_at = payload_sha256, at
                rec.last_height, rec.sequence, rec.anchor = terms.last_height, terms.sequence, terms.anchor or None
                s.add(rec)
            s.commit()
