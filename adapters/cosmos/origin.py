"""Cosmos origin role: the valid dispatches paying the vault, in chain order, and their Merkle tree
("mailbox")."""

from __future__ import annotations

import base64

from adapters.base import (
    DispatchedMessage,
    Height,
    MailboxState,
    TxHash,
)
from adapters.capabilities import GasPayment
from adapters.cosmos.chain import (
    CosmosChain,
    cosmos_boundary,
    log,
)
from adapters.cosmos.transactions import fee_paid, gas_top_up
from adapters.fee_account import dispatch_payments, top_up_payment


class CosmosOrigin(CosmosChain):
    """Cosmos origin role: the valid dispatches paying the vault, in chain order, and their Merkle tree"""

    async def _scan_dispatches(self, height: int) -> None:
        """Extend the list of valid dispatches through ``height`` (clamped to the latest height)."""
        async with self._lock("dispatches"):
            height = min(height, int(await self.latest_height()))
            if height <= self._scanned:
                return
            txs = await self._http.tx_search(
                f"transfer.recipient='{self._vault}' AND tx.height>{self._scanned} AND tx.height<={height}")
            for tx in txs:
                tx_hash = str(tx["hash"]).upper()
                if tx_hash in self._dispatch_hashes or int(tx["tx_result"].get("code") or 0) != 0:
                    continue
                parsed = self._rules.parse(base64.b64decode(tx["tx"]))
                if parsed is None:
                    log.debug("cosmos_dispatch_ignored", chain=self._name, tx_hash=tx_hash)
                    continue
                message = parsed.message(len(self._dispatches), self._domain)
                raw = message.encode()
                tx_height = int(tx["height"])
                dispatched = DispatchedMessage(message, raw, message.id, Height(tx_height), TxHash(tx_hash),
                                               int(tx.get("index") or 0), await self._block_time(tx_height))
                self._dispatches.append(dispatched)
                if self._fee_account is not None:
                    self._payments.extend(dispatch_payments([dispatched], fee_paid(
                        base64.b64decode(tx["tx"]), self._fee_account, self._config.fee_denom)))
                self._dispatch_hashes.add(tx_hash)
                self._tree.append(message.id)
            if self._fee_account is not None:
                self._payments.extend(await self._top_ups(self._fee_account, height))
            self._scanned = height

    async def _top_ups(self, fee_account: str, height: int) -> list[GasPayment]:
        """The top-ups (``adapters.fee_account``) of heights ``_scanned + 1 .. height``: successful transactions paying
        the fee account that dispatch nothing."""
        txs = await self._http.tx_search(
            f"transfer.recipient='{fee_account}' AND tx.height>{self._scanned} AND tx.height<={height}")
        found: list[GasPayment] = []
        for tx in txs:
            tx_hash = str(tx["hash"]).upper()
            if tx_hash in self._dispatch_hashes or int(tx["tx_result"].get("code") or 0) != 0:
                continue
            raw = base64.b64decode(tx["tx"])
            found.extend(top_up_payment(gas_top_up(raw, self._vault), fee_paid(raw, fee_account,
                                                                             self._config.fee_denom),
                                        int(tx["height"]), tx_hash))
        return found

    @cosmos_boundary
    async def fetch_dispatched(self, from_height: Height, to_height: Height) -> list[DispatchedMessage]:
        await self._scan_dispatches(to_height)
        return [d for d in self._dispatches if from_height <= d.height <= to_height]

    def has_paymaster(self) -> bool:
        """A ``gas_fee_account`` is configured: dispatches may pay it (``adapters.fee_account``)."""
        return self._fee_account is not None

    @cosmos_boundary
    async def fetch_gas_payments(self, from_height: Height, to_height: Height) -> list[GasPayment]:
        """What each dispatch transaction in the heights paid the fee account, and the top-ups
        (``adapters.fee_account``; none unconfigured)."""
        if self._fee_account is None or to_height < from_height:
            return []
        await self._scan_dispatches(to_height)
        return [p for p in self._payments if from_height <= p.height <= to_height]

    @cosmos_boundary
    async def mailbox_state(self, height: Height) -> MailboxState:
        await self._scan_dispatches(height)
        count = sum(1 for d in self._dispatches if d.height <= height)
        return MailboxState(self._rules.vault32, self._tree.root(count), count, height)
