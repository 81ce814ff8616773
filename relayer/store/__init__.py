"""The persisted pipeline: messages, deliveries, signed checkpoints, watcher cursors, the instances sharing the
database, the validators' co-signatures, the accountant's reservations and the payout buckets (sqlmodel), one module
per table family behind one facade, ``Store``.

SQLite by default (WAL, one file, nothing to set up); PostgreSQL by URL. Every state change is one SQL
transaction, so ``kill -9`` at any instant leaves a consistent store and a restart resumes from it.
Bulk paths (indexing thousands of dispatches, moving a batch between states) use set-based statements,
not one ORM object per row.

Work is claimed with leases (``lease_owner``/``lease_until``) so that several relayer processes sharing
one database never work on the same message at once, and a dead process's claims expire (``instances``).

``Store`` is synchronous (the CLI, tests); code on an event loop uses ``store.aio`` (``AsyncStore``), the same
operations as coroutines run on the store's own threads (``offloop``). Message ids are ``MessageId`` on both
sides; the tables hold 0x hex. Every database error leaves the store as ``StoreError``.

Modules: ``schema`` (engine, schema, what the families share), ``messages`` (indexing, claims, retries),
``inspection`` (reads for operators and the API), ``payments`` (what senders paid for delivery),
``deliveries``, ``checkpoints``, ``cursors``, ``instances``
(heartbeats and hand-over), ``cosignatures`` (the co-sign once-rule), ``accountant`` (co-sign reservations),
``payout_limits`` (the validators' payout buckets), ``errors``, ``offloop``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy.exc import SQLAlchemyError

from relayer.store.accountant import CosignReservation, ReservationTable
from relayer.store.checkpoints import CheckpointRecord, CheckpointTable
from relayer.store.cosignatures import Cosignature, CosignatureTable, CosignRecord
from relayer.store.cursors import CursorRecord, CursorTable
from relayer.store.deliveries import DeliveryRecord, DeliveryTable
from relayer.store.errors import StoreError, map_store_errors
from relayer.store.inspection import MessageQueries
from relayer.store.instances import Handover, InstanceRecord, InstanceState, InstanceTable
from relayer.store.messages import (
    OPEN_STATES,
    FailureReason,
    MessageRecord,
    MessageState,
    MessageTable,
    StoredMessage,
    message_id,
)
from relayer.store.offloop import AsyncStore
from relayer.store.operator import OperatorTable, RoutePauseRecord, StuckMessage
from relayer.store.payments import GasPaymentRecord, Paid, PaymentTable, RouteMoney
from relayer.store.payout_limits import PayoutLimitTable
from relayer.store.schema import create_schema, make_engine

__all__ = [
    "OPEN_STATES",
    "AsyncStore",
    "CheckpointRecord",
    "CosignRecord",
    "CosignReservation",
    "Cosignature",
    "CursorRecord",
    "DeliveryRecord",
    "FailureReason",
    "GasPaymentRecord",
    "Handover",
    "InstanceRecord",
    "InstanceState",
    "MessageRecord",
    "MessageState",
    "Paid",
    "RouteMoney",
    "RoutePauseRecord",
    "Store",
    "StoreError",
    "StoredMessage",
    "StuckMessage",
    "make_engine",
    "message_id",
]


@map_store_errors
class Store(MessageTable, MessageQueries, DeliveryTable, CheckpointTable, CursorTable, InstanceTable,
            CosignatureTable, ReservationTable, OperatorTable, PaymentTable, PayoutLimitTable):
    """All pipeline persistence, synchronous; ``aio`` is the same store for code on an event loop."""

    def __init__(self, url: str, *, owner: str = "relayer", clock: Callable[[], float] = time.time) -> None:
        self.url = url
        self.owner = owner
        self._clock = clock
        try:
            self.engine = make_engine(url)
            with self.engine.begin() as conn:
                create_schema(conn)
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot open store {self._safe_url()}: {exc.__class__.__name__}: {exc}") from exc
        self._is_postgres = self.engine.dialect.name == "postgresql"
        self.aio = AsyncStore(self)

    def close(self) -> None:
        self.aio.close()
        self.engine.dispose()
