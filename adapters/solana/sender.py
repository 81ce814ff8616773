"""Solana sender roles: memo dispatches and token sends (burn or lock, then wait for the origin role to
index them), transfers, transaction lookups, token and vault balances."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from solana.rpc.commitment import Confirmed
from solana.rpc.models import TxOpts
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.message import Message as SolanaMessage
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.system_program import TransferParams as SystemTransferParams
from solders.system_program import transfer as system_transfer
from solders.transaction import Transaction, VersionedTransaction
from spl.memo.constants import MEMO_PROGRAM_ID
from spl.memo.instructions import create_memo
from spl.memo.models import MemoParams
from spl.token.constants import TOKEN_PROGRAM_ID
from spl.token.instructions import (
    burn,
    create_idempotent_associated_token_account,
    get_associated_token_address,
    transfer,
    transfer_checked,
)
from spl.token.models import BurnParams, TransferCheckedParams, TransferParams

from adapters.base import (
    Height,
    TxHash,
    TxNotFound,
    TxReceipt,
    TxReverted,
)
from adapters.boundary import bytes32
from adapters.message import Domain, MessageId
from adapters.solana.bridge import (
    MAX_TX_SIZE,
    transaction_size,
)
from adapters.solana.chain import (
    TX_WAIT_S,
    log,
    solana_boundary,
    status_level,
)
from adapters.solana.errors import map_exception
from adapters.solana.memo import TokenBody, encode_dispatch_memo, encode_gas_memo
from adapters.solana.origin import SolanaOrigin
from adapters.tokens import UnknownToken


class SolanaSender(SolanaOrigin):
    """Solana sender roles: memo dispatches and token sends (burn or lock, then wait for the origin role to"""

    async def _send(self, signer: Keypair, ixs: list[Instruction]) -> Signature:
        blockhash = (await self._client.get_latest_blockhash(Confirmed)).value.blockhash
        message = SolanaMessage.new_with_blockhash(ixs, signer.pubkey(), blockhash)
        size = transaction_size(message)
        if size > MAX_TX_SIZE:
            raise TxReverted(f"transaction is {size} bytes > {MAX_TX_SIZE}", chain=self._name, reason="too large")
        tx = Transaction([signer], message, blockhash)
        try:
            await self._client.send_raw_transaction(bytes(tx), opts=TxOpts(skip_confirmation=True,
                                                                            preflight_commitment=Confirmed))
        except Exception as exc:
            raise map_exception(exc, chain=self._name, context="send") from exc
        return tx.signatures[0]

    async def _wait_finalized(self, signature: Signature, timeout: float = TX_WAIT_S) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = (await self._client.get_signature_statuses([signature], search_transaction_history=True)
                      ).value[0]
            if status is not None and status.err is not None:
                raise TxReverted(f"tx {signature} failed: {status.err!r}", chain=self._name, reason=repr(status.err))
            if status is not None and status_level(status) == "finalized":
                return int(status.slot)
            await asyncio.sleep(self._config.poll_interval_s)  # polling the node with a deadline
        raise TxNotFound(f"tx {signature} not finalized within {timeout}s", chain=self._name, reason="not found")

    async def _dispatched_by(self, signature: Signature, slot: int) -> list[MessageId]:
        await self._scan(slot)
        ids = [d.id for d in self._dispatches if d.tx_hash == str(signature)]
        if not ids:
            raise TxReverted(f"tx {signature} is not a valid dispatch", chain=self._name, reason="not a dispatch")
        return ids

    def _bridge_reference(self, sender: Pubkey) -> Instruction:
        """A 0-lamport transfer to the bridge so ``getSignaturesForAddress(bridge)`` lists the dispatch."""
        return system_transfer(SystemTransferParams(from_pubkey=sender, to_pubkey=self._bridge, lamports=0))

    @solana_boundary
    async def send_token(self, sender_key: str, symbol: str, amount: int, destination: Domain, recipient: bytes
                         ) -> tuple[TxHash, MessageId]:
        signer = self._key(sender_key)
        ixs = self._token_dispatch_instructions(signer.pubkey(), symbol, amount, int(destination), recipient)
        signature = await self._send(signer, ixs)
        log.info("token_dispatched", chain=self._name, tx=str(signature), symbol=symbol, amount=amount,
                 destination=int(destination))
        slot = await self._wait_finalized(signature)
        return TxHash(str(signature)), (await self._dispatched_by(signature, slot))[0]

    def _token_dispatch_instructions(self, owner: Pubkey, symbol: str, amount: int, destination: int,
                                     recipient: bytes) -> list[Instruction]:
        """A token dispatch by ``owner``: burn the wrapped token (or move a native one into its vault), the bridge
        reference, and the dispatch memo; ``TxReverted`` for an unknown route or an amount that is not a u64."""
        token = self._token(symbol)
        remote = self._rules.remote_bridges.get(destination)
        if remote is None:
            raise TxReverted(f"no remote bridge for domain {destination}", chain=self._name, reason="unknown route")
        if not 0 < amount <= 2**64 - 1:
            raise TxReverted(f"amount {amount} is not a positive u64", chain=self._name, reason="bad amount")
        source = get_associated_token_address(owner, token.mint)
        body = TokenBody(token.home_domain, token.home_token, bytes32(recipient), amount * token.scale).encode()
        move: Instruction
        if token.wrapped:
            move = burn(BurnParams(program_id=TOKEN_PROGRAM_ID, account=source, mint=token.mint, owner=owner,
                                   amount=amount))
        else:
            move = transfer(TransferParams(program_id=TOKEN_PROGRAM_ID, source=source, dest=token.vault,
                                           owner=owner, amount=amount))
        memo = create_memo(MemoParams(program_id=MEMO_PROGRAM_ID, signer=owner,
                                      message=encode_dispatch_memo(destination, remote, body).encode()))
        return [move, self._bridge_reference(owner), memo]

    @solana_boundary
    async def dispatch_messages(self, sender_key: str, destination: Domain, recipient: bytes, bodies: Sequence[bytes]
                                ) -> tuple[TxHash, list[MessageId]]:
        return await self._dispatch(sender_key, destination, recipient, bodies, 0)

    @property
    def gas_fee_account(self) -> str | None:
        return None if self._fee_account is None else str(self._fee_account)

    @solana_boundary
    async def dispatch_paying(self, sender_key: str, destination: Domain, recipient: bytes, bodies: Sequence[bytes],
                              payment: int) -> tuple[TxHash, list[MessageId]]:
        """One transaction: the dispatches and a System transfer of ``payment`` lamports per message to the fee
        account (``adapters.fee_account``: each message's share is ``payment``)."""
        self._fee_account_or_refuse()
        if not 0 < payment * len(bodies) <= 2**64 - 1:
            raise TxReverted(f"payment {payment} x {len(bodies)} is not a positive u64", chain=self._name,
                             reason="bad amount")
        return await self._dispatch(sender_key, destination, recipient, bodies, payment * len(bodies))

    @solana_boundary
    async def top_up_gas(self, payer_key: str, message_id: bytes, destination: int, amount: int) -> TxHash:
        """One transaction: the bridge reference (so the origin scan lists it), a System transfer of ``amount``
        lamports to the fee account and the gas memo (``adapters.fee_account``); its signature once finalized."""
        fee_account = self._fee_account_or_refuse()
        if not 0 < amount <= 2**64 - 1:
            raise TxReverted(f"top-up {amount} is not a positive u64", chain=self._name, reason="bad amount")
        signer = self._key(payer_key)
        owner = signer.pubkey()
        ixs = [self._bridge_reference(owner),
               system_transfer(SystemTransferParams(from_pubkey=owner, to_pubkey=fee_account, lamports=amount)),
               create_memo(MemoParams(program_id=MEMO_PROGRAM_ID, signer=owner,
                                      message=encode_gas_memo(destination, message_id).encode()))]
        signature = await self._send(signer, ixs)
        await self._wait_finalized(signature)
        log.info("gas_topped_up", chain=self._name, tx=str(signature), message_id="0x" + message_id.hex(),
                 lamports=amount)
        return TxHash(str(signature))

    def top_up_call(self, message_id: bytes, destination: int, amount: int) -> dict[str, str]:
        fee_account = self._fee_account_or_refuse()
        return {"to": str(fee_account), "value": str(amount), "memo": encode_gas_memo(destination, message_id),
                "reference": str(self._bridge),
                "how": "one transaction: a System transfer of 0 lamports to `reference` (so the relayer sees it), a "
                       "System transfer of `value` lamports to `to`, and an SPL Memo of `memo`"}

    def _fee_account_or_refuse(self) -> Pubkey:
        if self._fee_account is None:
            raise TxReverted(f"chains.{self._name}.gas_fee_account is not set: nobody to pay", chain=self._name,
                             reason="no fee account")
        return self._fee_account

    async def _dispatch(self, sender_key: str, destination: Domain, recipient: bytes, bodies: Sequence[bytes],
                        fee: int) -> tuple[TxHash, list[MessageId]]:
        if not bodies:
            raise TxReverted("no bodies to dispatch", chain=self._name, reason="empty dispatch")
        signer = self._key(sender_key)
        owner = signer.pubkey()
        ixs = [self._bridge_reference(owner)]
        if fee and self._fee_account is not None:
            ixs.append(system_transfer(SystemTransferParams(from_pubkey=owner, to_pubkey=self._fee_account,
                                                            lamports=fee)))
        for body in bodies:
            ixs.append(create_memo(MemoParams(program_id=MEMO_PROGRAM_ID, signer=owner, message=encode_dispatch_memo(
                int(destination), bytes32(recipient), bytes(body)).encode())))
        signature = await self._send(signer, ixs)
        slot = await self._wait_finalized(signature)
        return TxHash(str(signature)), await self._dispatched_by(signature, slot)

    @solana_boundary
    async def transfer_token(self, sender_key: str, symbol: str, to: str, amount: int) -> TxHash:
        token = self._token(symbol)
        signer = self._key(sender_key)
        owner, recipient = signer.pubkey(), Pubkey.from_string(to)
        dest = get_associated_token_address(recipient, token.mint)
        ixs = [create_idempotent_associated_token_account(owner, recipient, token.mint),
               transfer_checked(TransferCheckedParams(program_id=TOKEN_PROGRAM_ID,
                                                      source=get_associated_token_address(owner, token.mint),
                                                      mint=token.mint, dest=dest, owner=owner, amount=amount,
                                                      decimals=token.decimals))]
        return TxHash(str(await self._send(signer, ixs)))

    @solana_boundary
    async def tx_result(self, tx_hash: TxHash) -> tuple[Height, bool]:
        status = (await self._client.get_signature_statuses([Signature.from_string(tx_hash)],
                                                            search_transaction_history=True)).value[0]
        if status is None:
            raise TxNotFound(f"tx {tx_hash} not found", chain=self._name, reason="not found")
        return Height(status.slot), status.err is None

    @solana_boundary
    async def tx_receipt(self, tx_hash: TxHash) -> TxReceipt:
        """``getTransaction`` at confirmed: slot, success, ``meta.fee`` (lamports actually charged) and the fee
        payer (the first account key: the signer). A Solana transaction runs several instructions, so it has no
        single called address or call data: ``to`` and ``input`` stay empty and cannot be checked."""
        answer = (await self._client.get_transaction(Signature.from_string(tx_hash), encoding="base64",
                                                     commitment=Confirmed, max_supported_transaction_version=0)).value
        if answer is None:
            raise TxNotFound(f"tx {tx_hash} not found", chain=self._name, reason="not found")
        meta = answer.transaction.meta
        tx = answer.transaction.transaction
        payer = (str(tx.message.account_keys[0]) if isinstance(tx, VersionedTransaction) and tx.message.account_keys
                 else "")
        return TxReceipt(Height(answer.slot), meta is not None and meta.err is None, int(meta.fee) if meta else 0,
                         payer, native_decimals=self.native_decimals)

    async def _token_amount(self, account: Pubkey) -> int:
        info = (await self._client.get_account_info(account, commitment=Confirmed)).value
        if info is None:
            return 0
        return int.from_bytes(bytes(info.data)[64:72], "little")

    @solana_boundary
    async def token_balance(self, symbol: str, holder: str) -> int:
        token = self._token(symbol)
        return await self._token_amount(get_associated_token_address(Pubkey.from_string(holder), token.mint))

    @solana_boundary
    async def token_supply(self, symbol: str) -> int:
        token = self._token(symbol)
        info = (await self._client.get_account_info(token.mint, commitment=Confirmed)).value
        if info is None:
            raise UnknownToken(f"mint {token.mint} of {symbol} does not exist", chain=self._name,
                               reason="unknown token")
        return int.from_bytes(bytes(info.data)[36:44], "little")

    @solana_boundary
    async def vault_balance(self, symbol: str) -> int:
        """What the bridge vault holds of a native token (what came in and has not gone home)."""
        return await self._token_amount(self._token(symbol).vault)
