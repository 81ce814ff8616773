"""``WriteAheadSender`` on Cosmos SDK chains: the router's operator lanes sign cross-chain transfers here, stored
before they are sent (``router.lanes``). An account's *sequence* is its nonce, as on EVM.

- **``xchain`` and ``native``.** An intent names its recipient as a 0x address; a same-chain bank send would need a
  bech32 one (``lane_kinds``). A cross-chain transfer is the dispatch ``send_token`` builds: a bank send of the token
  to the vault, with the dispatch memo. A native transfer (an integrator payout, ``router.payouts``) is a bank
  ``MsgSend`` of ``amount`` of the fee denom to a bech32 account of this chain's prefix, with the memo
  ``NATIVE_MEMO`` (so its receipt looks up no dispatch).
- **Signed at the lane's sequence** with the account number read at ``prepare`` (the account must exist: funded).
- **Decided** once the account's committed sequence is past the transaction's (``decided``): the transaction, or
  another signed at that sequence, was committed. Its receipt (``receipts``) then says which, with the id of the
  message it dispatched from the origin's own scan.
- **Broadcast** in sync mode: accepted into the mempool (or already there), ``NONCE_USED`` when the chain wants a
  later sequence, else refused with the node's reason.
- **No re-pricing**: fees are the configured gas price, fixed on these chains (``replacements`` gives none).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from typing import Any

from adapters.base import AdapterError, Height, InsufficientFunds, SequenceMismatch, TxHash, TxReceipt, TxReverted
from adapters.capabilities import Broadcast, PreparedTx, PresignedTx, TxSpec, xchain_recipient
from adapters.cosmos.chain import SEND_GAS, cosmos_boundary
from adapters.cosmos.sender import CosmosSender
from adapters.cosmos.transactions import bech32_bytes, fee_for, pack_send

NATIVE_MEMO = "native-lane:v1"  # a lane's native transfer (an integrator payout)


class CosmosWriteAhead(CosmosSender):
    """Prepare, sign and broadcast as three separate steps (``adapters.capabilities.WriteAheadSender``)."""

    def lane_kinds(self) -> frozenset[str]:
        return frozenset({"xchain", "native"})

    async def prerequisites(self, sender: str, specs: Sequence[TxSpec]) -> list[PreparedTx]:
        return []  # a bank send needs no approval

    @cosmos_boundary
    async def prepare(self, sender: str, specs: Sequence[TxSpec]) -> list[PreparedTx | Exception]:
        """Each spec checked (token, route, amount); the account number read once for the list."""
        account = await self._account(sender)
        if account is None:
            return [InsufficientFunds(f"account {sender} does not exist (never funded)", chain=self._name,
                                      reason="no account")] * len(specs)
        fee = fee_for(SEND_GAS, self._config.gas_price)
        out: list[PreparedTx | Exception] = []
        for spec in specs:
            try:
                self._lane_dispatch(sender, spec)
            except AdapterError as exc:
                out.append(exc)
                continue
            out.append(PreparedTx(spec, str(account[0]), b"", SEND_GAS, fee, 0))
        return out

    def _lane_dispatch(self, sender: str, spec: TxSpec) -> tuple[object, str]:
        """The message and memo of a lane transaction: the bridge dispatch, or a native bank send."""
        if spec.kind == "native":
            return pack_send(sender, self._native_recipient(spec), [(self._config.fee_denom, spec.amount)]), NATIVE_MEMO
        recipient = xchain_recipient(spec, self._name, "Cosmos")
        return self._token_dispatch(sender, spec.symbol, spec.amount, spec.destination, recipient)

    def _native_recipient(self, spec: TxSpec) -> str:
        """``spec.to`` when it is a bech32 account of this chain's prefix and the amount is positive."""
        if spec.amount <= 0:
            raise TxReverted(f"amount {spec.amount} is not positive", chain=self._name, reason="bad amount")
        try:
            bech32_bytes(spec.to)
        except ValueError:
            ok = False
        else:
            ok = spec.to.startswith(self._prefix + "1")
        if not ok:
            raise TxReverted(f"recipient {spec.to!r} is not a {self._prefix} bech32 account", chain=self._name,
                             reason="bad recipient")
        return spec.to

    def sign(self, key: str, prepared: PreparedTx, nonce: int) -> PresignedTx:
        private = self._key(key)  # TxReverted for a bad key, without the key
        sender = self.account_of(key)
        send, memo = self._lane_dispatch(sender, prepared.spec)
        raw = self._signed_raw(private, int(prepared.target), nonce, [send], memo, prepared.gas)
        return PresignedTx(raw, hashlib.sha256(raw).hexdigest().upper(), nonce)

    async def broadcast(self, raws: Sequence[bytes]) -> list[tuple[Broadcast, str]]:
        """Each in sync mode, in order (the mempool takes an account's sequences in order)."""
        out: list[tuple[Broadcast, str]] = []
        for raw in raws:
            out.append(await self._broadcast_one(raw))
        return out

    async def _broadcast_one(self, raw: bytes) -> tuple[Broadcast, str]:
        try:
            await self._http.broadcast(raw)
        except SequenceMismatch as exc:
            sequence = _sequence_of(raw)
            if exc.expected is not None and sequence is not None and exc.expected > sequence:
                return Broadcast.NONCE_USED, str(exc)[:300]
            return Broadcast.REFUSED, str(exc)[:300]
        except AdapterError as exc:
            if "already exists" in str(exc) or "tx already in mempool" in str(exc):
                return Broadcast.ACCEPTED, "already known"
            return Broadcast.REFUSED, str(exc)[:300]
        return Broadcast.ACCEPTED, ""

    async def replacements(self, key: str, raws: Sequence[bytes]) -> list[PresignedTx | None]:
        return [None] * len(raws)

    @cosmos_boundary
    async def pending_nonce(self, account: str) -> int:
        found = await self._account(account)
        return found[1] if found is not None else 0

    @cosmos_boundary
    async def decided(self, account: str, txs: Sequence[PresignedTx]) -> list[bool]:
        """Decided once the account's committed sequence is past the transaction's: one read."""
        if not txs:
            return []
        committed = await self.pending_nonce(account)
        return [tx.nonce < committed for tx in txs]

    @cosmos_boundary
    async def receipts(self, tx_hashes: Sequence[str]) -> list[TxReceipt | None]:
        """Per hash, once committed: its receipt, with the id of the message a successful one dispatched (from the
        origin's scan); None before."""
        out: list[TxReceipt | None] = []
        for tx_hash in tx_hashes:
            found = await self._find_tx(tx_hash)
            if found is None:
                out.append(None)
                continue
            receipt = await self.tx_receipt(TxHash(tx_hash))
            if receipt.success and _memo_of(found) != NATIVE_MEMO:  # a native transfer dispatched nothing
                message_id = await self._dispatch_id(tx_hash.upper(), int(found["height"]))
                receipt = TxReceipt(Height(receipt.height), True, receipt.fee_paid, receipt.sender, to=receipt.to,
                                    native_decimals=self.native_decimals, message_id=bytes(message_id))
            out.append(receipt)
        return out


def _sequence_of(raw: bytes) -> int | None:
    from cosmpy.protos.cosmos.tx.v1beta1.tx_pb2 import AuthInfo, TxRaw

    try:
        infos = AuthInfo.FromString(TxRaw.FromString(raw).auth_info_bytes).signer_infos
    except Exception:  # noqa: BLE001 - not ours to parse: no sequence
        return None
    return int(infos[0].sequence) if infos else None


def _memo_of(found: dict[str, Any]) -> str | None:
    """The memo of a committed transaction (CometBFT ``tx``); None when it cannot be read."""
    from cosmpy.protos.cosmos.tx.v1beta1.tx_pb2 import TxBody, TxRaw

    try:
        return str(TxBody.FromString(TxRaw.FromString(base64.b64decode(found["tx"])).body_bytes).memo)
    except Exception:  # noqa: BLE001 - not a transaction we can read: not ours
        return None
