"""The Solana side of the validators' once-per-message rule, on the Solana devnet (the adapter test module's
fixtures): the terms of a co-sign request are its message's recent blockhash and that blockhash's last valid block
height as the chain says (never the request's ``expires_at`` or ``last_valid_block_height``), a blockhash the chain
no longer accepts is refused, and a signed delivery "cannot land" exactly once the finalized block height passed.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import pytest
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Finalized
from solders.hash import Hash
from solders.keypair import Keypair

from adapters.base import CosignRefused
from adapters.solana import SolanaAdapter, TokenBody
from tests.integration.test_solana_adapter import (  # noqa: F401 - fixtures
    L1,
    L1_TST,
    Bridge,
    _inbound,
    _seed,
    adapter,
    bridge,
    devnet,
)

pytestmark = pytest.mark.integration


async def test_terms_are_the_blockhash_and_its_expiry_by_the_chain(bridge: Bridge, adapter: SolanaAdapter) -> None:  # noqa: F811
    recipient = Keypair.from_seed(_seed("recipient/terms")).pubkey()
    message = _inbound(40, TokenBody(L1, L1_TST, bytes(recipient), 10**18), bridge=bridge)
    request = await adapter.cosign_request([message.encode()])
    terms = await adapter.cosign_terms(request)
    assert (terms.anchor, terms.sequence) == (request.context["blockhash"], None)
    assert terms.last_height >= int(request.context["last_valid_block_height"])  # an upper bound, from the chain

    # what the request's context claims counts for nothing
    lying = replace(request, context={**request.context, "expires_at": "1", "last_valid_block_height": "1"})
    assert adapter.check_cosign(lying) == [message.id]
    assert (await adapter.cosign_terms(lying)).last_height >= terms.last_height
    assert await adapter.terms_can_land(terms)

    # a blockhash the chain does not accept (never one of its own): refused
    unknown = replace(request, context={**request.context, "blockhash": str(Hash.new_unique())})
    unknown_message, _ = adapter._rebuild(unknown, CosignRefused)
    with pytest.raises(CosignRefused) as refused:
        await adapter.cosign_terms(replace(unknown, payload=bytes(unknown_message)))
    assert refused.value.reason == "expired"

    # once the finalized block height passed the last valid height, no block can include it any more
    deadline = time.monotonic() + 60
    async with AsyncClient(bridge.url) as client:
        while await adapter.terms_can_land(terms):
            assert time.monotonic() < deadline, "the finalized height did not pass the blockhash's last valid height"
            await asyncio.sleep(0.1)
        assert (await client.get_block_height(Finalized)).value > terms.last_height
    with pytest.raises(CosignRefused) as expired:
        await adapter.cosign_terms(request)
    assert expired.value.reason == "expired"
