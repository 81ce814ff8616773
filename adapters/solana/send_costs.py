"""What a send from Solana costs its sender in SOL (``adapters.base.SendCosts``): every send here is one transaction
with one signature, the sender's; a paid dispatch moves its payment to the fee account in that transaction."""

from __future__ import annotations

from solana.rpc.commitment import Confirmed
from solders.pubkey import Pubkey

from adapters.base import FeeNeed, NativeCoin, SendPlan
from adapters.solana.chain import LAMPORTS_PER_SIGNATURE, SolanaChain, solana_boundary


def send_fee(plan: SendPlan) -> int:
    """Lamports ``plan`` takes from its sender: the one signature's fee, and the payment per dispatched body (a send
    creates no account the sender pays rent for)."""
    return LAMPORTS_PER_SIGNATURE + plan.payment * len(plan.bodies)


class SolanaSendCosts(SolanaChain):
    """The sender's lamports, and what a dispatch or a token send takes of them."""

    @property
    def native_coin(self) -> NativeCoin:
        return NativeCoin("SOL", self.native_decimals)

    @solana_boundary
    async def native_balance(self, address: str) -> int:
        account = Pubkey.from_string(address)
        async with self._limit:
            return int((await self._client.get_balance(account, Confirmed)).value)

    async def send_fee_need(self, plan: SendPlan) -> FeeNeed:
        return FeeNeed(send_fee(plan))

    async def transactions_sent(self, address: str) -> int | None:
        return None  # a send is one transaction: nothing of it goes out before the one that fails
