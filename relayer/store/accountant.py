"""The ``accountant_cosigns`` table: every delivery a validator co-signed that the global accountant
(``relayer/pipeline/accountant.py``) counts as paid out, until the chain says it can never land (``settled_at``).
Ids are ``MessageId`` outside, a JSON list of 0x hex in the table; the request is its JSON."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from sqlalchemy import Index
from sqlmodel import Field, Session, SQLModel, col, select

from adapters.base import CosignRequest
from adapters.message import MessageId
from relayer.store.messages import message_id, message_keys
from relayer.store.schema import StoreTables


class CosignReservation(SQLModel, table=True):
    """A delivery this validator co-signed: counted as paid out until the chain says it can never land."""

    __tablename__ = "accountant_cosigns"
    __table_args__ = (Index("ix_accountant_cosigns_open", "validator", "chain", "settled_at"),)

    validator: str = Field(primary_key=True, max_length=42)
    chain: str = Field(primary_key=True, max_length=64)
    payload_sha256: str = Field(primary_key=True, max_length=64)
    request: str  # the CosignRequest's JSON: what the chain is asked about later
    message_ids: str  # JSON list of 0x ids
    amounts: str  # JSON {token text: home units as a decimal string}
    signed_at: float
    settled_at: float | None = None  # when it was found unable to land (or landed and counted by the chain)

    def ids(self) -> list[MessageId]:
        return [message_id(k) for k in json.loads(self.message_ids)]

    def cosign_request(self) -> CosignRequest:
        return CosignRequest.from_json(json.loads(self.request))

    def amount(self, token: str) -> int:
        """What it pays out of ``token`` (the accountant's text of it), in home units."""
        return int(json.loads(self.amounts).get(token, "0"))


class ReservationTable(StoreTables):
    def open_reservations(self, validator: str, chain: str) -> list[CosignReservation]:
        """What ``validator`` co-signed on ``chain`` and has not found unable to land yet."""
        r = CosignReservation
        with Session(self.engine) as s:
            return list(s.exec(select(r).where(col(r.validator) == validator, col(r.chain) == chain,
                                               col(r.settled_at).is_(None))).all())

    def settle_reservations(self, rows: Sequence[CosignReservation], *, at: float) -> None:
        """``rows`` can never land (or landed and the chain counts them): no longer counted, in one transaction."""
        with Session(self.engine) as s:
            for row in rows:
                stored = s.get(CosignReservation, (row.validator, row.chain, row.payload_sha256))
                if stored is not None:
                    stored.settled_at = at
                    s.add(stored)
            s.commit()

    def reserve_cosign(self, validator: str, chain: str, payload_sha256: str, request: CosignRequest,
                       ids: Sequence[MessageId], amounts: Mapping[str, int], *, at: float) -> None:
        """Count ``request`` (paying ``amounts`` per token text) as paid out from now on; a reservation of the same
        payload settled earlier (it could not land then) counts again."""
        with Session(self.engine) as s:
            existing = s.get(CosignReservation, (validator, chain, payload_sha256))
            if existing is not None:
                existing.settled_at, existing.signed_at = None, at
                s.add(existing)
            else:
                s.add(CosignReservation(validator=validator, chain=chain, payload_sha256=payload_sha256,
                                        request=json.dumps(request.to_json()),
                                        message_ids=json.dumps(message_keys(ids)),
                                        amounts=json.dumps({k: str(v) for k, v in amounts.items()}), signed_at=at))
            s.commit()
