"""Solana co-signing, validator side (``CosignedDelivery``, ``CosignLiveness``): a request is signed only
if it rebuilds, from its messages alone, into exactly the payload asked for."""

from __future__ import annotations

from solana.rpc.commitment import Finalized, Processed

from adapters.base import (
    PAYLOAD_MISMATCH,
    CosignRefused,
    CosignRequest,
    SignedTerms,
)
from adapters.message import MessageId
from adapters.solana.chain import (
    keypair_from_hex,
    solana_boundary,
)
from adapters.solana.destination import SolanaDestination


class SolanaCosignCheck(SolanaDestination):
    """Solana co-signing, validator side (``CosignedDelivery``, ``CosignLiveness``): a request is signed only"""

    def check_cosign(self, request: CosignRequest) -> list[MessageId]:
        """The payload must be the delivery rebuilt from the messages (its freshness is ``cosign_terms``'s
        question, asked of the chain; the context's ``expires_at`` is the relayer's own bookkeeping)."""
        message, ids = self._rebuild(request, CosignRefused)
        if bytes(message) != request.payload:
            raise CosignRefused("payload is not the delivery of these messages", chain=self._name,
                                reason=PAYLOAD_MISMATCH)
        return ids

    @solana_boundary
    async def cosign_terms(self, request: CosignRequest) -> SignedTerms:
        """Validator side: the rebuilt message's recent blockhash, which the chain must still accept now
        (``getFeeForMessage`` answers null for an expired or unknown one), and an upper bound of the last block
        height it is valid at: that of the newest blockhash now (the request's is no newer), never the request's
        ``last_valid_block_height``."""
        message, _ids = self._rebuild(request, CosignRefused)
        if bytes(message) != request.payload:
            raise CosignRefused("payload is not the delivery of these messages", chain=self._name,
                                reason=PAYLOAD_MISMATCH)
        newest = (await self._client.get_latest_blockhash(Processed)).value
        if (await self._client.get_fee_for_message(message, Processed)).value is None:  # type: ignore[arg-type]
            raise CosignRefused(f"blockhash {message.recent_blockhash} is expired or unknown to the chain",
                                chain=self._name, reason="expired")
        return SignedTerms(last_height=int(newest.last_valid_block_height), anchor=str(message.recent_blockhash))

    @solana_boundary
    async def terms_can_land(self, terms: SignedTerms) -> bool:
        """False once the *finalized* block height passed the blockhash's last valid height: no block from then
        on can include it, and one that did is finalized, so ``delivered`` (asked next) sees it."""
        return int((await self._client.get_block_height(Finalized)).value) <= terms.last_height

    def cosign_with(self, key: str, request: CosignRequest) -> tuple[str, bytes]:
        self.check_cosign(request)
        try:
            keypair = keypair_from_hex(key)
        except ValueError as exc:
            raise CosignRefused("co-signing key is not a hex ed25519 seed", chain=self._name,
                                reason="bad key") from exc
        if keypair.pubkey() not in self._request_signers(request, CosignRefused):
            raise CosignRefused(f"{keypair.pubkey()} is not among the request's signers", chain=self._name,
                                reason="not a signer")
        return str(keypair.pubkey()), bytes(keypair.sign_message(request.payload))

    @solana_boundary
    async def cosign_can_land(self, request: CosignRequest) -> bool:
        """``CosignLiveness``: a delivery can never land once its blockhash (in the signed message) is no longer
        valid (``getFeeForMessage`` answers null), nor once one of its messages is delivered (the replay guards
        make any second delivery of a message fail atomically). A request that does not rebuild: True."""
        try:
            message, ids = self._rebuild(request, CosignRefused)
        except CosignRefused:
            return True
        if bytes(message) != request.payload:
            return True
        if any(await self.delivered(ids)):
            return False
        fee = await self._client.get_fee_for_message(message, commitment=Processed)  # type: ignore[arg-type]
        return fee.value is not None
