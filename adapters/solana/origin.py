"""Solana origin role: the finalized dispatches referencing the bridge, in chain order, their
Merkle tree ("mailbox"), cross-checked against every ``verify_rpc_urls`` endpoint."""

from __future__ import annotations

import asyncio
from typing import Any

from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Finalized
from solders.signature import Signature
from solders.transaction_status import TransactionDetails

from adapters.base import (
    DispatchedMessage,
    Height,
    MailboxState,
    RpcError,
    TxHash,
)
from adapters.capabilities import GasPayment
from adapters.fee_account import dispatch_payments, top_up_payment
from adapters.solana.bridge import (
    NotADispatch,
    NotBridgeTraffic,
    ParsedDispatch,
    fee_paid,
    gas_top_up,
)
from adapters.solana.chain import (
    SIGNATURES_PAGE,
    SolanaChain,
    log,
    solana_boundary,
)


class SolanaOrigin(SolanaChain):
    """Solana origin role: the finalized dispatches referencing the bridge, in chain order, their"""

    async def _signatures(self, client: AsyncClient, until: Signature | None) -> list[Any]:
        """Finalized signatures referencing the bridge, newest first, strictly newer than ``until``."""
        found: list[Any] = []
        before: Signature | None = None
        while True:
            page = (await client.get_signatures_for_address(self._bridge, before=before, until=until,
                                                            limit=SIGNATURES_PAGE, commitment=Finalized)).value
            found.extend(page)
            if len(page) < SIGNATURES_PAGE:
                return found
            before = page[-1].signature

    async def _block_order(self, slot: int) -> dict[str, int]:
        """Position of each transaction in the finalized block ``slot`` (every endpoint must agree)."""
        orders = []
        for client in (self._client, *self._verifiers):
            block = (await client.get_block(slot, transaction_details=TransactionDetails.Signatures, rewards=False,
                                            commitment=Finalized, max_supported_transaction_version=0)).value
            orders.append([str(sig) for sig in block.signatures or []])
        if any(order != orders[0] for order in orders[1:]):
            raise self._disagree(f"order of transactions in slot {slot}")
        return {sig: i for i, sig in enumerate(orders[0])}

    async def _scan(self, to_height: int) -> None:
        async with self._scan_lock:
            if to_height <= self._scanned:
                return
            finalized = [(await client.get_slot(Finalized)).value for client in (self._client, *self._verifiers)]
            top = min(to_height, *finalized)  # what every endpoint has finalized
            if top <= self._scanned:
                return
            listed = await self._signatures(self._client, self._last_signature)
            fresh = [s for s in listed if self._scanned < s.slot <= top]
            for verifier in self._verifiers:
                theirs = [s for s in await self._signatures(verifier, self._last_signature)
                          if self._scanned < s.slot <= top]
                if sorted((str(s.signature), s.slot, s.err is None) for s in theirs) != \
                        sorted((str(s.signature), s.slot, s.err is None) for s in fresh):
                    raise self._disagree(f"signatures for slots {self._scanned + 1}..{top}")
            by_slot: dict[int, list[Any]] = {}
            for entry in fresh:
                by_slot.setdefault(entry.slot, []).append(entry)
            ordered: list[Any] = []
            for slot in sorted(by_slot):
                entries = by_slot[slot]
                if len(entries) > 1:
                    order = await self._block_order(slot)
                    entries.sort(key=lambda e: order.get(str(e.signature), len(order)))
                ordered.extend(entries)
            candidates = [e for e in ordered if e.err is None]
            fetched = await asyncio.gather(*(self._transaction(self._client, e.signature) for e in candidates))
            for verifier in self._verifiers:
                theirs = await asyncio.gather(*(self._transaction(verifier, e.signature) for e in candidates))
                for entry, mine, other in zip(candidates, fetched, theirs, strict=True):
                    if mine is None or other is None or (mine[0], bytes(mine[2]), mine[3]) != \
                            (other[0], bytes(other[2]), other[3]):
                        raise self._disagree(f"transaction {entry.signature}")
            found: list[DispatchedMessage] = []
            paid: list[GasPayment] = []
            for entry, got in zip(candidates, fetched, strict=True):
                if got is None:
                    raise RpcError(f"finalized transaction {entry.signature} not returned", chain=self._name,
                                   reason="bad answer")
                slot, block_time, tx, ok = got
                if not ok:
                    continue
                try:
                    parsed = self._rules.parse_dispatch(tx)
                except NotBridgeTraffic:  # no dispatch: a gas top-up, or nothing to say
                    if self._fee_account is not None:
                        paid.extend(top_up_payment(gas_top_up(tx), fee_paid(tx, self._fee_account), slot,
                                                   str(entry.signature)))
                    continue
                except NotADispatch as exc:
                    log.info("dispatch_ignored", chain=self._name, tx=str(entry.signature), reason=str(exc))
                    continue
                of_tx = [self._dispatched(item, len(self._dispatches) + len(found) + position, slot,
                                          str(entry.signature), position, block_time)
                         for position, item in enumerate(parsed)]
                found.extend(of_tx)
                if self._fee_account is not None:
                    paid.extend(dispatch_payments(of_tx, fee_paid(tx, self._fee_account)))
            for dispatched in found:
                self._dispatches.append(dispatched)
                self._tree.append(dispatched.id)
            self._payments.extend(paid)
            newest = [e for e in listed if e.slot <= top]
            if newest:
                self._last_signature = newest[0].signature
            self._scanned = top
            if found:
                log.info("dispatches_indexed", chain=self._name, count=len(found), through_slot=top,
                         total=len(self._dispatches))

    def _dispatched(self, parsed: ParsedDispatch, nonce: int, slot: int, signature: str, position: int,
                    block_time: float) -> DispatchedMessage:
        message = self._rules.canonical(parsed, nonce)
        return DispatchedMessage(message, message.encode(), message.id, Height(slot), TxHash(signature), position,
                                 block_time)

    @solana_boundary
    async def fetch_dispatched(self, from_height: Height, to_height: Height) -> list[DispatchedMessage]:
        await self._scan(int(to_height))
        return [d for d in self._dispatches if from_height <= d.height <= to_height]

    def has_paymaster(self) -> bool:
        """A ``gas_fee_account`` is configured: dispatches may pay it (``adapters.fee_account``)."""
        return self._fee_account is not None

    @solana_boundary
    async def fetch_gas_payments(self, from_height: Height, to_height: Height) -> list[GasPayment]:
        """The fee account's share of each message of the dispatch transactions in the slots, and the top-ups
        (``adapters.fee_account``; none unconfigured)."""
        if self._fee_account is None or to_height < from_height:
            return []
        await self._scan(int(to_height))
        return [p for p in self._payments if from_height <= p.height <= to_height]

    @solana_boundary
    async def mailbox_state(self, height: Height) -> MailboxState:
        await self._scan(int(height))
        if height > self._scanned:
            raise RpcError(f"slot {height} is not finalized yet (finalized through {self._scanned})",
                           chain=self._name, reason="not finalized")
        count = sum(1 for d in self._dispatches if d.height <= height)
        return MailboxState(bytes(self._bridge), self._tree.root(count), count, height)
