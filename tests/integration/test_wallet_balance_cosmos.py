"""``WalletSource`` on the Cosmos devnet: the vault multisig pays every delivery's fees, so its fee-denom balance
is the relayer's wallet there (the adapter test module's devnet and funding fixtures)."""

from __future__ import annotations

import pytest

from adapters.base import WalletSource
from tests.integration.test_cosmos_adapter import SETTINGS, VAULT, adapter_for, devnet, funded  # noqa: F401 - fixtures

pytestmark = pytest.mark.integration


async def test_wallet_balance_is_the_vaults_fee_denom_balance(devnet, funded):  # noqa: F811 - fixtures
    async with adapter_for(devnet) as adapter:
        assert isinstance(adapter, WalletSource)
        balance = await adapter.wallet_balance()
        assert balance is not None and balance.address == VAULT and balance.decimals == adapter.native_decimals == 6
        assert balance.amount == await adapter._balance(VAULT, SETTINGS.fee_denom) > 0
        assert balance.native == balance.amount / 10**6
