"""Cosmos co-signing, validator side (``CosignedDelivery``, ``CosignLiveness``): the payload must rebuild
from the messages alone, with a timeout height near enough and a vault sequence not used yet."""

from __future__ import annotations

from cosmpy.crypto.keypairs import PrivateKey

from adapters.base import (
    PAYLOAD_MISMATCH,
    CosignRefused,
    CosignRequest,
    SignedTerms,
)
from adapters.cosmos.chain import (
    CosmosChain,
    cosmos_boundary,
)
from adapters.cosmos.transactions import (
    DeliveryPlan,
)
from adapters.message import MessageId


class CosmosCosignCheck(CosmosChain):
    """Cosmos co-signing, validator side (``CosignedDelivery``, ``CosignLiveness``): the payload must rebuild"""

    def check_cosign(self, request: CosignRequest) -> list[MessageId]:
        """Validator side: the payload must be exactly the multisig tx paying out ``request.messages`` (each a
        token message from the origin's enrolled bridge, to its recipient, its amount of its token), with the
        ids in the memo, this chain's id, fee within bounds, and a timeout height (without one a co-signed payout
        could land at any later time). Signing at most once per message is the caller's duty (the chain itself
        does not refuse a second payout), with ``cosign_terms`` and ``terms_can_land``."""
        plan = self._checked_plan(request)
        return [p.id for p in plan.payouts]

    def _checked_plan(self, request: CosignRequest) -> DeliveryPlan:
        if request.chain != self._name:
            raise CosignRefused(f"request is for chain {request.chain!r}", chain=self._name, reason="wrong chain")
        plan = self._plan_from_request(request, CosignRefused)
        if plan.sign_bytes() != request.payload:
            raise CosignRefused("payload is not the delivery of these messages", chain=self._name,
                                reason=PAYLOAD_MISMATCH)
        if plan.timeout_height == 0:
            raise CosignRefused("the delivery has no timeout_height: once co-signed it could land at any later time",
                                chain=self._name, reason="no timeout")
        return plan

    @cosmos_boundary
    async def cosign_terms(self, request: CosignRequest) -> SignedTerms:
        """Validator side: the payload's (sequence, timeout height), rebuilt from the request and checked against
        this node's chain now. Refused: a timeout at or below the latest committed height (it cannot land), one
        more than ``2 * delivery_timeout_blocks`` ahead (a co-signature must stop counting soon: that bound is how
        long a payout that never lands can hold its messages), an account number other than the vault's (it
        could never verify), a sequence below the vault's (``stale sequence``: used already)."""
        plan = self._checked_plan(request)
        height = int(await self.latest_height())
        if plan.timeout_height <= height:
            raise CosignRefused(f"timeout height {plan.timeout_height} is at or below the chain's height {height}: "
                                "the payout can no longer land", chain=self._name, reason="expired")
        window = 2 * self._timeout_blocks
        if plan.timeout_height > height + window:
            raise CosignRefused(f"timeout height {plan.timeout_height} is more than {window} blocks above the "
                                f"chain's height {height} (chains.{self._name}.delivery_timeout_blocks x 2)",
                                chain=self._name, reason="timeout too far")
        account = await self._account(self._vault)
        if account is None:
            raise CosignRefused(f"vault {self._vault} has no account on chain", chain=self._name,
                                reason="vault not funded")
        number, on_chain = account
        if plan.account_number != number:
            raise CosignRefused(f"account number {plan.account_number} is not the vault's ({number})",
                                chain=self._name, reason="bad context")
        if plan.sequence < on_chain:
            raise CosignRefused(f"sequence {plan.sequence} is below the vault's sequence {on_chain} on chain: "
                                "already used", chain=self._name, reason="stale sequence")
        return SignedTerms(last_height=plan.timeout_height, sequence=plan.sequence)

    @cosmos_boundary
    async def terms_can_land(self, terms: SignedTerms) -> bool:
        """False once the chain's committed height reached the timeout height (no later block may include it) or
        the vault's sequence moved past the payout's (that sequence was used by a transaction, this one or
        another). Whether it landed is then ``delivered``'s answer, which scans through a height read after
        these two reads."""
        if int(await self.latest_height()) >= terms.last_height:
            return False
        account = await self._account(self._vault)
        return not (account is not None and terms.sequence is not None and account[1] > terms.sequence)

    def cosign_with(self, key: str, request: CosignRequest) -> tuple[str, bytes]:
        """(compressed pubkey hex, 64-byte low-s secp256k1 signature over sha256(payload))."""
        private = PrivateKey(bytes.fromhex(key.removeprefix("0x")))
        return bytes(private.public_key.public_key_bytes).hex(), bytes(private.sign(request.payload))

    @cosmos_boundary
    async def cosign_can_land(self, request: CosignRequest) -> bool:
        """``CosignLiveness``: the payload (rebuilt from the request and compared with the signed bytes, so its
        sequence and timeout height are the payload's, not the context's word) can never land once the chain's
        committed height reached its timeout height or the vault's sequence is past its sequence
        (``terms_can_land``). A request that does not rebuild is not judged: True (the caller keeps counting it)."""
        try:
            plan = self._plan_from_request(request, CosignRefused)
        except CosignRefused:
            return True
        if plan.sign_bytes() != request.payload:
            return True
        return bool(await self.terms_can_land(SignedTerms(last_height=plan.timeout_height, sequence=plan.sequence)))
