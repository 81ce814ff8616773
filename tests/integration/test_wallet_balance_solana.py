"""``WalletSource`` on the Solana devnet: the relayer's fee payer's lamports (the adapter test module's fixtures)."""

from __future__ import annotations

import pytest
from solana.rpc.async_api import AsyncClient

from adapters.base import WalletSource
from tests.integration.test_solana_adapter import adapter, bridge, devnet  # noqa: F401 - fixtures

pytestmark = pytest.mark.integration


async def test_wallet_balance_is_the_fee_payers_lamports(adapter, devnet):  # noqa: F811 - fixtures
    assert isinstance(adapter, WalletSource)
    balance = await adapter.wallet_balance()
    client = AsyncClient(devnet)
    try:
        lamports = (await client.get_balance(adapter.fee_payer)).value
    finally:
        await client.close()
    assert balance is not None and balance.address == str(adapter.fee_payer) and balance.decimals == 9
    assert balance.amount == lamports > 0 and balance.native == lamports / 10**9
