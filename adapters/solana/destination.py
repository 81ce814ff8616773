"""Solana destination role: deliveries co-signed by the validators' SPL multisig (the shared flow of
``adapters.cosigned``), paid by the relayer's fee payer, confirmed at ``confirm_at``."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Collection, Sequence
from contextlib import AbstractAsyncContextManager

from solana.rpc.commitment import Confirmed, Processed
from solana.rpc.models import TxOpts
from solders.hash import Hash
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import Transaction

from adapters.base import (
    PAYLOAD_MISMATCH,
    CosignRequest,
    CostEstimate,
    DeliveryBatch,
    Height,
    NoCosignQuorum,
    SubmittedTx,
    TxHash,
    TxOutcome,
    TxReverted,
    TxState,
)
from adapters.cosigned import deliver_cosigned
from adapters.message import MessageId
from adapters.solana.bridge import (
    MEMO_PROGRAMS,
    Undeliverable,
)
from adapters.solana.chain import (
    COSIGN_TTL_S,
    DELIVERY_COMPUTE_PER_MESSAGE,
    LAMPORTS_PER_SIGNATURE,
    MAX_QUORUM_TRIES,
    SIGNATURES_PAGE,
    SolanaChain,
    log,
    solana_boundary,
    status_level,
)
from adapters.solana.errors import BLOCKHASH_EXPIRED, map_exception
from adapters.solana.memo import decode_delivery_memo


class SolanaDestination(SolanaChain):
    """Solana destination role: deliveries co-signed by the validators' SPL multisig (the shared flow of"""

    max_delivery_batch: int = 1
    """Messages per delivery transaction: with a 2-of-N quorum one message takes 1,033 bytes (1,077 with a
    priority fee) of the 1,232-byte limit; two would take 1,530."""

    def _require_payer(self) -> Keypair:
        if self._payer is None:
            raise TxReverted("no signer configured: the relayer pays Solana deliveries", chain=self._name,
                             reason="no signer")
        return self._payer

    def _fee(self, signatures: int) -> int:
        compute = DELIVERY_COMPUTE_PER_MESSAGE * self.max_delivery_batch
        return LAMPORTS_PER_SIGNATURE * signatures + -(-self._config.priority_fee_micro_lamports * compute // 10**6)

    @solana_boundary
    async def estimate_delivery(self, batch: DeliveryBatch) -> CostEstimate:
        raws = [item.message for item in batch.items]
        payer = self._require_payer().pubkey()
        members = await self.multisig_members()
        signers = members[:self._config.multisig_threshold]
        try:
            self._rules.delivery_message(raws, fee_payer=payer, signers=signers, blockhash=Hash.default(),
                                         guard_lamports=await self._rent_for_guard(),
                                         priority_micro_lamports=self._config.priority_fee_micro_lamports)
        except Undeliverable as exc:
            raise self._undeliverable(exc, TxReverted) from exc
        signatures = 1 + len(signers)
        fee = self._fee(signatures)
        return CostEstimate(gas=signatures, max_fee_per_gas=-(-fee // signatures), priority_fee_per_gas=0)

    @solana_boundary
    async def cosign_request(self, messages: Sequence[bytes], signers: Sequence[Pubkey] | None = None
                             ) -> CosignRequest:
        """The request a quorum (``signers``; default: the first ``threshold`` members) co-signs to deliver
        ``messages``, on a fresh blockhash."""
        payer = self._require_payer().pubkey()
        members = await self.multisig_members()
        chosen = list(signers) if signers is not None else members[:self._config.multisig_threshold]
        answer = (await self._client.get_latest_blockhash(Confirmed)).value
        lamports = await self._rent_for_guard()
        try:
            message, _ = self._rules.delivery_message(
                messages, fee_payer=payer, signers=chosen, blockhash=answer.blockhash, guard_lamports=lamports,
                priority_micro_lamports=self._config.priority_fee_micro_lamports)
        except Undeliverable as exc:
            raise self._undeliverable(exc, TxReverted) from exc
        context = {
            "blockhash": str(answer.blockhash),
            "last_valid_block_height": str(answer.last_valid_block_height),
            "expires_at": str(int(self._clock() + COSIGN_TTL_S)),
            "fee_payer": str(payer),
            "signers": ",".join(str(s) for s in chosen),
            "guard_lamports": str(lamports),
            "priority_fee_micro_lamports": str(self._config.priority_fee_micro_lamports),
        }
        return CosignRequest(self._name, bytes(message), tuple(bytes(m) for m in messages), context)

    def _quorums(self, members: Sequence[Pubkey], taken: Collection[Pubkey] = ()) -> list[tuple[int, list[Pubkey]]]:
        """Up to ``MAX_QUORUM_TRIES`` (position, quorum) to ask, from the last one that worked on; quorums with
        a member whose guard for a message of the batch already exists (the chain would refuse them) last."""
        combos = [list(c) for c in itertools.combinations(members, self._config.multisig_threshold)]
        start = self._quorum_start % len(combos)
        rotated = [((start + i) % len(combos), combos[(start + i) % len(combos)]) for i in range(len(combos))]
        rotated.sort(key=lambda item: any(m in taken for m in item[1]))  # stable: rotation order otherwise
        return rotated[:MAX_QUORUM_TRIES]

    @solana_boundary
    async def submit_delivery(self, batch: DeliveryBatch, estimate: CostEstimate | None = None) -> SubmittedTx:
        if self._cosigner is None:
            raise TxReverted("no cosigner configured: solana deliveries need the validators' signatures",
                             chain=self._name, reason="no cosigner")
        return await deliver_cosigned(self, self._cosigner, batch)

    @property
    def cosign_threshold(self) -> int:
        return self._config.multisig_threshold

    def delivery_lock(self) -> AbstractAsyncContextManager[object]:
        return contextlib.nullcontext()  # each delivery has its own blockhash and guards: they may overlap

    async def quorums(self, batch: DeliveryBatch) -> list[tuple[int, list[Pubkey]]]:
        members = await self.multisig_members()
        taken = {m for guards in await self._guards_taken([item.id for item in batch.items]) for m in guards}
        return self._quorums(members, taken)

    async def request_for(self, messages: Sequence[bytes], quorum: list[Pubkey]) -> CosignRequest:
        return await self.cosign_request(messages, quorum)

    def quorum_worked(self, position: int) -> None:
        self._quorum_start = position

    @solana_boundary
    async def submit_cosigned(self, request: CosignRequest, signatures: Sequence[tuple[str, bytes]]
                              ) -> SubmittedTx:
        """Assemble the delivery from the fee payer's and the co-signers' signatures (checked) and send it."""
        payer = self._require_payer()
        message, ids = self._rebuild(request, TxReverted)
        if bytes(message) != request.payload:
            raise TxReverted("payload is not the delivery of these messages", chain=self._name,
                             reason=PAYLOAD_MISMATCH)
        valid: dict[Pubkey, Signature] = {payer.pubkey(): payer.sign_message(request.payload)}
        for signer_id, raw in signatures:
            try:
                key, signature = Pubkey.from_string(signer_id), Signature.from_bytes(bytes(raw))
            except ValueError:
                continue
            if signature.verify(key, request.payload):
                valid[key] = signature
        required = list(message.account_keys[:message.header.num_required_signatures])
        missing = [str(k) for k in required if k not in valid]
        if missing:
            raise NoCosignQuorum(f"no valid co-signature from {', '.join(missing)}", chain=self._name)
        tx = Transaction.populate(message, [valid[k] for k in required])
        try:
            await self._client.send_raw_transaction(bytes(tx), opts=TxOpts(skip_confirmation=True,
                                                                            preflight_commitment=Confirmed))
        except Exception as exc:
            mapped = map_exception(exc, chain=self._name, context="send delivery")
            log.warning("delivery_refused", chain=self._name, ids=[i.hex() for i in ids], reason=mapped.reason)
            raise mapped from exc
        signature = tx.signatures[0]
        log.info("delivery_submitted", chain=self._name, tx=str(signature), ids=[i.hex() for i in ids],
                 signers=len(required) - 1)
        return SubmittedTx(TxHash(str(signature)), int(request.context.get("last_valid_block_height", "0")),
                           str(payer.pubkey()), self._clock(), gas_limit=len(required),
                           max_fee=self._fee(len(required)))

    async def _delivered_ids(self, signature: Signature) -> tuple[MessageId, ...]:
        got = await self._transaction(self._client, signature, Confirmed)
        if got is None:
            return ()
        message = got[2].message
        keys = list(message.account_keys)
        ids: list[MessageId] = []
        for ix in message.instructions:
            if keys[ix.program_id_index] in MEMO_PROGRAMS:
                try:
                    ids.extend(decode_delivery_memo(bytes(ix.data).decode("utf-8")))
                except (UnicodeDecodeError, ValueError):
                    continue
        return tuple(ids)

    @solana_boundary
    async def confirm(self, tx: SubmittedTx) -> TxOutcome:
        signature = Signature.from_string(tx.tx_hash)
        status = (await self._client.get_signature_statuses([signature], search_transaction_history=True)).value[0]
        if status is None:
            height = (await self._client.get_block_height(Processed)).value
            if tx.nonce and height > tx.nonce:
                return TxOutcome(TxState.DROPPED, reason=BLOCKHASH_EXPIRED)
            return TxOutcome(TxState.PENDING)
        if status.err is not None:
            return TxOutcome(TxState.REVERTED, Height(status.slot), fee_paid=tx.max_fee, reason=repr(status.err))
        if status_level(status) not in ("finalized", self._confirm_at):
            return TxOutcome(TxState.PENDING, Height(status.slot))
        return TxOutcome(TxState.CONFIRMED, Height(status.slot), gas_used=tx.gas_limit, fee_paid=tx.max_fee,
                         delivered_ids=await self._delivered_ids(signature))

    @solana_boundary
    async def processed_messages(self, from_height: Height, to_height: Height) -> list[tuple[MessageId, Height]]:
        """Ids delivered here in ``[from_height, to_height]`` (confirmed), from the delivery memos."""
        found: list[tuple[MessageId, Height]] = []
        before: Signature | None = None
        while True:
            page = (await self._client.get_signatures_for_address(self._multisig, before=before,
                                                                  limit=SIGNATURES_PAGE, commitment=Confirmed)).value
            for entry in page:
                if entry.err is None and from_height <= entry.slot <= to_height:
                    found.extend((i, Height(entry.slot)) for i in await self._delivered_ids(entry.signature))
            if len(page) < SIGNATURES_PAGE or (page and page[-1].slot < from_height):
                break
            before = page[-1].signature
        return sorted(found, key=lambda item: item[1])
