"""``WriteAheadSender`` on Solana: the router's operator lanes sign cross-chain transfers here, stored before they
are sent, exactly as on EVM (``router.lanes``), with what Solana has instead of nonces.

- **``xchain`` and ``native``.** An intent names its recipient as a 0x address, which is no Solana account, so
  same-chain transfers and calls are not signed here (``lane_kinds``). A cross-chain transfer is the bridge dispatch
  ``send_token`` builds (burn a wrapped token, or move a native one into its vault, the bridge reference, the
  dispatch memo), plus a memo ``xchain-lane:v1:<sequence>`` that makes each lane transaction unique: two intents
  alike in token, amount, recipient and destination would otherwise be the same transaction under one blockhash,
  and only one of them could land. A native transfer (an integrator payout, ``router.payouts``) is a System
  transfer of ``amount`` lamports from the operator account to a base58 account, with the memo
  ``native-lane:v1:<sequence>`` for the same reason. ``prepare`` refuses one that would leave its recipient below
  the rent-exempt minimum (the chain would refuse it: ``InsufficientFundsForRent``), with no fee spent; the payout
  job asks ``minimum_native_payout`` first (``NativePayoutMinimum``), so it makes no such payout.
- **Sequence, not nonce.** The lane's number for a transaction only orders it and goes into that memo.
- **Decided** (``decided``): finalized (then ``receipts`` gives its slot, fee, success and the id of the message it
  dispatched, from the origin's own scan), or never seen while its recent blockhash is no longer valid: no block can
  take it any more, so the lane may sign the intent again (after its second such check, ``dead_after_s`` later).
- **Broadcast** with preflight: a transaction that would fail is refused with the simulation's reason and never
  costs a fee; the lane sends it again later, and once its blockhash has expired it is dead and signed again.
- **No re-pricing.** A Solana fee does not rise while a transaction waits (``replacements`` gives none): it lands or
  expires.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from solana.rpc.commitment import Confirmed
from solana.rpc.models import TxOpts
from solders.commitment_config import CommitmentLevel
from solders.hash import Hash
from solders.keypair import Keypair
from solders.message import Message as SolanaMessage
from solders.pubkey import Pubkey
from solders.rpc.config import RpcContextConfig
from solders.rpc.requests import IsBlockhashValid
from solders.rpc.responses import IsBlockhashValidResp
from solders.signature import Signature
from solders.system_program import TransferParams as SystemTransferParams
from solders.system_program import transfer as system_transfer
from solders.transaction import Transaction, VersionedTransaction
from spl.memo.constants import MEMO_PROGRAM_ID
from spl.memo.instructions import create_memo
from spl.memo.models import MemoParams

from adapters.base import AdapterError, Height, TxHash, TxReceipt, TxReverted
from adapters.capabilities import Broadcast, PayoutMinimum, PreparedTx, PresignedTx, TxSpec, xchain_recipient
from adapters.solana.bridge import MAX_TX_SIZE, transaction_size
from adapters.solana.chain import solana_boundary, status_level
from adapters.solana.errors import BLOCKHASH_EXPIRED, map_exception
from adapters.solana.sender import SolanaSender

LANE_MEMO_PREFIX = "xchain-lane:v1:"
NATIVE_MEMO_PREFIX = "native-lane:v1:"  # a lane's native transfer (an integrator payout): no dispatch to look up
RENT_SHORT = "below rent-exempt minimum"
STATUS_BATCH = 256  # getSignatureStatuses takes at most 256 signatures


class SolanaWriteAhead(SolanaSender):
    """Prepare, sign and broadcast as three separate steps (``adapters.capabilities.WriteAheadSender``)."""

    def lane_kinds(self) -> frozenset[str]:
        return frozenset({"xchain", "native"})

    async def prerequisites(self, sender: str, specs: Sequence[TxSpec]) -> list[PreparedTx]:
        return []  # no approvals on Solana: the owner signs its burn or vault transfer itself

    async def prepare(self, sender: str, specs: Sequence[TxSpec]) -> list[PreparedTx | Exception]:
        """Each spec checked (its route, token and amount: the instructions are built once here and again at
        signing) against one recent blockhash, which every transaction of the list will carry; the typed error in
        place of a spec that cannot be sent."""
        try:
            owner = Pubkey.from_string(sender)
            blockhash = (await self._client.get_latest_blockhash(Confirmed)).value.blockhash
        except Exception as exc:  # noqa: BLE001 - mapped here, for every spec alike
            return [map_exception(exc, chain=self._name, context="getLatestBlockhash")] * len(specs)
        out: list[PreparedTx | Exception] = []
        for spec in specs:
            try:
                self._lane_message(owner, spec, blockhash, 0)  # refuses what cannot be built (route, token, size)
                if spec.kind == "native":
                    await self._check_rent(spec)
            except AdapterError as exc:
                out.append(exc)
                continue
            out.append(PreparedTx(spec, str(blockhash), b"", 0, 0, 0))
        return out

    def _lane_message(self, owner: Pubkey, spec: TxSpec, blockhash: Hash, sequence: int) -> SolanaMessage:
        if spec.kind == "native":
            ixs = [system_transfer(SystemTransferParams(from_pubkey=owner, to_pubkey=self._native_recipient(spec),
                                                        lamports=_lamports(spec, self._name)))]
            prefix = NATIVE_MEMO_PREFIX
        else:
            recipient = xchain_recipient(spec, self._name, "Solana")
            ixs = self._token_dispatch_instructions(owner, spec.symbol, spec.amount, spec.destination, recipient)
            prefix = LANE_MEMO_PREFIX
        ixs.append(create_memo(MemoParams(program_id=MEMO_PROGRAM_ID, signer=owner,
                                          message=f"{prefix}{sequence}".encode())))
        message = SolanaMessage.new_with_blockhash(ixs, owner, blockhash)
        size = transaction_size(message)
        if size > MAX_TX_SIZE:
            raise TxReverted(f"transaction is {size} bytes > {MAX_TX_SIZE}", chain=self._name, reason="too large")
        return message

    def _native_recipient(self, spec: TxSpec) -> Pubkey:
        try:
            return Pubkey.from_string(spec.to)
        except ValueError:
            raise TxReverted(f"recipient {spec.to!r} is not a base58 Solana account", chain=self._name,
                             reason="bad recipient") from None

    async def minimum_native_payout(self, address: str) -> PayoutMinimum:
        """``NativePayoutMinimum``: the lamports a System transfer to ``address`` must carry so that the account
        holds at least the rent-exempt minimum of an account without data (the chain refuses a transfer leaving it
        below: ``InsufficientFundsForRent``); 0 for an account that holds that already. ``TxReverted`` for an
        address that is no base58 account."""
        recipient = self._native_recipient(TxSpec("native", address))
        try:
            async with self._limit:
                held = (await self._client.get_balance(recipient, Confirmed)).value
                floor = (await self._client.get_minimum_balance_for_rent_exemption(0, Confirmed)).value
        except Exception as exc:  # noqa: BLE001 - mapped to the adapter's typed error
            raise map_exception(exc, chain=self._name, context="getBalance") from None
        if held >= floor:
            return PayoutMinimum(0)
        return PayoutMinimum(floor - held, f"a Solana account must hold the rent-exempt minimum, {floor} lamports; "
                                           f"this one holds {held}")

    async def _check_rent(self, spec: TxSpec) -> None:
        """``TxReverted`` when ``spec``'s recipient would hold less than the rent-exempt minimum of an account
        without data after the transfer (the chain refuses that transfer)."""
        minimum = await self.minimum_native_payout(spec.to)
        if spec.amount < minimum.amount:
            raise TxReverted(f"{spec.to} would be sent {spec.amount} lamports: {minimum.reason}", chain=self._name,
                             reason=RENT_SHORT)

    def sign(self, key: str, prepared: PreparedTx, nonce: int) -> PresignedTx:
        signer: Keypair = self._key(key)  # TxReverted for a bad key, without the key
        message = self._lane_message(signer.pubkey(), prepared.spec, Hash.from_string(prepared.target), nonce)
        tx = Transaction([signer], message, message.recent_blockhash)
        return PresignedTx(bytes(tx), str(tx.signatures[0]), nonce)

    async def broadcast(self, raws: Sequence[bytes]) -> list[tuple[Broadcast, str]]:
        """``sendTransaction`` (preflight at confirmed) for each; per transaction what the node said."""
        return list(await asyncio.gather(*(self._broadcast_one(raw) for raw in raws)))

    async def _broadcast_one(self, raw: bytes) -> tuple[Broadcast, str]:
        async with self._limit:
            try:
                await self._client.send_raw_transaction(raw, opts=TxOpts(skip_confirmation=True,
                                                                         preflight_commitment=Confirmed))
            except Exception as exc:  # noqa: BLE001 - every answer is mapped to an outcome
                mapped = map_exception(exc, chain=self._name, context="sendTransaction")
                if "AlreadyProcessed" in str(mapped) or "already been processed" in str(mapped):
                    return Broadcast.ACCEPTED, "already processed"
                detail = BLOCKHASH_EXPIRED if mapped.reason == BLOCKHASH_EXPIRED else str(mapped)
                return Broadcast.REFUSED, detail[:300]
        return Broadcast.ACCEPTED, ""

    async def replacements(self, key: str, raws: Sequence[bytes]) -> list[PresignedTx | None]:
        return [None] * len(raws)

    async def pending_nonce(self, account: str) -> int:
        return 0  # no nonces on Solana: the lane's sequence alone numbers its transactions

    @solana_boundary
    async def decided(self, account: str, txs: Sequence[PresignedTx]) -> list[bool]:
        """Finalized, or unseen with an expired blockhash (one ``isBlockhashValid`` per blockhash)."""
        statuses = await self._statuses([tx.tx_hash for tx in txs])
        unseen = {i: Transaction.from_bytes(tx.raw).message.recent_blockhash
                  for i, (tx, status) in enumerate(zip(txs, statuses, strict=True)) if status is None}
        valid = {h: await self._blockhash_valid(h) for h in set(unseen.values())}
        return [not valid[unseen[i]] if i in unseen else status_level(status) == "finalized"
                for i, status in enumerate(statuses)]

    async def _blockhash_valid(self, blockhash: Hash) -> bool:
        """``isBlockhashValid`` at processed: whether a block could still take a transaction with this blockhash."""
        async with self._limit:
            answer = await self._client._provider.make_request(  # solana-py has no method for it
                IsBlockhashValid(blockhash, RpcContextConfig(CommitmentLevel.Processed)), IsBlockhashValidResp)
        return bool(answer.value)

    async def _statuses(self, signatures: Sequence[str]) -> list[object | None]:
        out: list[object | None] = []
        for k in range(0, len(signatures), STATUS_BATCH):
            chunk = [Signature.from_string(s) for s in signatures[k:k + STATUS_BATCH]]
            async with self._limit:
                answer = await self._client.get_signature_statuses(chunk, search_transaction_history=True)
            out.extend(answer.value)
        return out

    @solana_boundary
    async def receipts(self, tx_hashes: Sequence[str]) -> list[TxReceipt | None]:
        """Per signature, once finalized: its receipt, with the id of the message a successful one dispatched
        (from the origin's scan, which is what the relayer delivers); None before."""
        statuses = await self._statuses(tx_hashes)
        out: list[TxReceipt | None] = []
        for tx_hash, status in zip(tx_hashes, statuses, strict=True):
            if status is None or status_level(status) != "finalized":
                out.append(None)
                continue
            receipt = await self.tx_receipt(TxHash(tx_hash))
            if receipt.success:
                message_id = await self._lane_message_id(Signature.from_string(tx_hash), int(status.slot))  # type: ignore[attr-defined]
                receipt = TxReceipt(Height(receipt.height), True, receipt.fee_paid, receipt.sender,
                                    native_decimals=self.native_decimals, message_id=message_id)
            out.append(receipt)
        return out

    async def _lane_message_id(self, signature: Signature, slot: int) -> bytes | None:
        """The id of the message a lane transaction dispatched (from the origin's scan); None for a native
        transfer (its memo says so); ``TxReverted`` for a transaction that is neither."""
        await self._scan(slot)
        ids = [d.id for d in self._dispatches if d.tx_hash == str(signature)]
        if ids:
            return bytes(ids[0])
        if await self._is_native_lane(signature):
            return None
        raise TxReverted(f"tx {signature} is not a valid dispatch", chain=self._name, reason="not a dispatch")

    async def _is_native_lane(self, signature: Signature) -> bool:
        """Whether the transaction carries a lane's native-transfer memo."""
        async with self._limit:
            answer = (await self._client.get_transaction(signature, encoding="base64", commitment=Confirmed,
                                                         max_supported_transaction_version=0)).value
        tx = answer.transaction.transaction if answer is not None else None
        if not isinstance(tx, VersionedTransaction):
            return False
        keys, memo = tx.message.account_keys, NATIVE_MEMO_PREFIX.encode()
        return any(keys[ix.program_id_index] == MEMO_PROGRAM_ID and bytes(ix.data).startswith(memo)
                   for ix in tx.message.instructions)


def _lamports(spec: TxSpec, chain: str) -> int:
    if not 0 < spec.amount < 2**64:
        raise TxReverted(f"amount {spec.amount} is not a positive u64", chain=chain, reason="bad amount")
    return spec.amount
