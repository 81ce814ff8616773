"""Cosmos destination role: payouts from the vault multisig, co-signed by the validators (the shared
flow of ``adapters.cosigned``), one at a time per vault sequence, confirmed or dropped after their timeout."""

from __future__ import annotations

import base64
import math
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager

from cosmpy.crypto.keypairs import PublicKey

from adapters.base import (
    CosignRefused,
    CosignRequest,
    CostEstimate,
    DeliveryBatch,
    Height,
    InsufficientFunds,
    NoCosignQuorum,
    SequenceMismatch,
    SubmittedTx,
    TxHash,
    TxOutcome,
    TxReverted,
    TxState,
)
from adapters.cosigned import deliver_cosigned
from adapters.cosmos.chain import (
    cosmos_boundary,
    log,
)
from adapters.cosmos.cosign import CosmosCosignCheck
from adapters.cosmos.memo import MAX_DELIVERY_IDS, decode_delivery_memo
from adapters.cosmos.transactions import (
    DeliveryPlan,
    decode_tx_body,
    delivery_gas,
    fee_for,
)
from adapters.message import MessageId


class CosmosDestination(CosmosCosignCheck):
    """Cosmos destination role: payouts from the vault multisig, co-signed by the validators (the shared"""

    max_delivery_batch = MAX_DELIVERY_IDS  # a delivery's ids travel in its memo (256 characters)

    async def _scan_outgoing(self, height: int | None = None) -> None:
        async with self._lock("outgoing"):
            latest = int(await self.latest_height())
            height = latest if height is None else min(height, latest)
            if height <= self._out_scanned:
                return
            txs = await self._http.tx_search(
                f"message.sender='{self._vault}' AND tx.height>{self._out_scanned} AND tx.height<={height}")
            for tx in txs:
                if int(tx["tx_result"].get("code") or 0) != 0:
                    continue
                for message_id in decode_delivery_memo(decode_tx_body(base64.b64decode(tx["tx"])).memo):
                    if message_id not in self._delivered:
                        self._delivered.add(message_id)
                        self._processed.append((message_id, Height(int(tx["height"]))))
            self._out_scanned = height

    @cosmos_boundary
    async def delivered(self, ids: Sequence[MessageId]) -> list[bool]:
        if any(i not in self._delivered for i in ids):
            await self._scan_outgoing()
        return [i in self._delivered for i in ids]

    @cosmos_boundary
    async def processed_messages(self, from_height: Height, to_height: Height) -> list[tuple[MessageId, Height]]:
        await self._scan_outgoing(to_height)
        return [(i, h) for i, h in self._processed if from_height <= h <= to_height]

    async def _plan(self, messages: Sequence[bytes]) -> DeliveryPlan:
        payouts = self._payouts(messages, TxReverted)
        account = await self._account(self._vault)
        if account is None:
            raise InsufficientFunds(f"vault {self._vault} has no account yet", chain=self._name,
                                    reason="vault not funded")
        gas = delivery_gas(len(payouts))
        fee = (self._config.fee_denom, fee_for(gas, self._config.gas_price))
        needed: dict[str, int] = {fee[0]: fee[1]}
        for payout in payouts:
            needed[payout.denom] = needed.get(payout.denom, 0) + payout.amount
        for denom, amount in needed.items():
            have = await self._balance(self._vault, denom)
            if have < amount:
                raise InsufficientFunds(f"vault holds {have}{denom}, the delivery needs {amount}{denom}",
                                        chain=self._name, reason="vault balance")
        sequence = max(account[1], self._next_sequence.get(self._vault, 0))  # ahead while ours is in mempool
        timeout = int(await self.latest_height()) + self._timeout_blocks
        return self._plan_for(payouts, account[0], sequence, gas, fee, timeout)

    @cosmos_boundary
    async def estimate_delivery(self, batch: DeliveryBatch) -> CostEstimate:
        plan = await self._plan([item.message for item in batch.items])
        return CostEstimate(plan.gas, math.ceil(self._config.gas_price), 0)

    async def cosign_request(self, messages: Sequence[bytes]) -> CosignRequest:
        """The request the validators co-sign for delivering ``messages`` (the vault's current sequence)."""
        plan = await self._plan(messages)
        return CosignRequest(self._name, plan.sign_bytes(), tuple(messages), plan.context())

    @cosmos_boundary
    async def submit_delivery(self, batch: DeliveryBatch, estimate: CostEstimate | None = None) -> SubmittedTx:
        if self._cosigner is None:
            raise TxReverted("no cosigner configured: cosmos deliveries need the validators' signatures",
                             chain=self._name, reason="no cosigner")
        return await deliver_cosigned(self, self._cosigner, batch)

    @property
    def cosign_threshold(self) -> int:
        return self._threshold

    def delivery_lock(self) -> AbstractAsyncContextManager[object]:
        # one delivery at a time from plan to broadcast: two plans at one vault sequence would both be co-signed
        # and one would fail, holding its messages at the validators until its timeout height
        return self._lock("deliver")

    async def quorums(self, batch: DeliveryBatch) -> list[tuple[int, tuple[()]]]:
        return [(0, ())]  # the vault's members: whichever threshold of them answers

    async def request_for(self, messages: Sequence[bytes], quorum: tuple[()]) -> CosignRequest:
        return await self.cosign_request(messages)

    def quorum_worked(self, position: int) -> None:
        pass

    @cosmos_boundary
    async def submit_cosigned(self, request: CosignRequest, signatures: Sequence[tuple[str, bytes]]) -> SubmittedTx:
        """Assemble the multisig tx from ``signatures`` (signer id = compressed pubkey hex) and broadcast it.
        Signatures of non-members or that do not verify are dropped; fewer than the threshold is not an
        error here (the chain refuses with code 4, as a test of the chain's own check wants)."""
        plan = self._plan_from_request(request, CosignRefused)
        chosen: dict[int, bytes] = {}
        for signer, signature in signatures:
            try:
                index = self._members.index(bytes.fromhex(signer.removeprefix("0x")))
            except ValueError:
                log.warning("cosmos_cosign_unknown_signer", chain=self._name, signer=signer)
                continue
            if not PublicKey(self._members[index]).verify(request.payload, signature):
                log.warning("cosmos_cosign_bad_signature", chain=self._name, signer=signer)
                continue
            chosen.setdefault(index, bytes(signature))
        if not chosen:
            raise NoCosignQuorum("no valid co-signature", chain=self._name)
        raw = plan.assemble(self._threshold, self._members, dict(sorted(chosen.items())[: self._threshold]))
        try:
            tx_hash = await self._http.broadcast(raw)
        except SequenceMismatch as exc:
            if exc.expected is not None:
                self._next_sequence[self._vault] = exc.expected  # the next request uses it
            raise
        self._next_sequence[self._vault] = plan.sequence + 1
        self._timeouts[tx_hash] = plan.timeout_height
        log.info("cosmos_delivery_submitted", chain=self._name, tx_hash=tx_hash, sequence=plan.sequence,
                 timeout_height=plan.timeout_height, messages=len(plan.payouts), signers=len(chosen))
        return SubmittedTx(TxHash(tx_hash), plan.sequence, self._vault, self._clock(), plan.gas, plan.fee[1])

    @cosmos_boundary
    async def confirm(self, tx: SubmittedTx) -> TxOutcome:
        outcome = await self._outcome(tx)
        if outcome.state is not TxState.PENDING:
            self._timeouts.pop(tx.tx_hash, None)
        return outcome

    async def _outcome(self, tx: SubmittedTx) -> TxOutcome:
        """A tx not found is dropped once no block can include it any more: its timeout height (known for what
        this process submitted) is committed, or its sequence was used by another tx; the tx is looked up again
        after that observation, so one included meanwhile is not missed."""
        found = await self._find_tx(tx.tx_hash)
        if found is None:
            timeout = self._timeouts.get(tx.tx_hash)
            if (timeout is not None and int(await self.latest_height()) >= timeout
                    and await self._find_tx(tx.tx_hash) is None):
                self._next_sequence.pop(tx.sender, None)  # its sequence was never used: plan from the chain's again
                return TxOutcome(TxState.DROPPED, reason=f"timeout height {timeout} passed")
            account = await self._account(tx.sender)
            if account is not None and account[1] > tx.nonce and await self._find_tx(tx.tx_hash) is None:
                return TxOutcome(TxState.DROPPED, reason="sequence used by another transaction")
            return TxOutcome(TxState.PENDING)
        result = found["tx_result"]
        height = Height(int(found["height"]))
        code = int(result.get("code") or 0)
        gas_used = int(result.get("gas_used") or 0)
        if code != 0:
            return TxOutcome(TxState.REVERTED, height, gas_used, tx.max_fee,
                             reason=f"code {code}: {result.get('log', '')}")
        ids = tuple(decode_delivery_memo(decode_tx_body(base64.b64decode(found["tx"])).memo))
        for message_id in ids:
            if message_id not in self._delivered:
                self._delivered.add(message_id)
                self._processed.append((message_id, height))
        return TxOutcome(TxState.CONFIRMED, height, gas_used, tx.max_fee, delivered_ids=ids)
