"""What a send from a Cosmos chain costs its sender in the fee denom (``adapters.base.SendCosts``): each transaction
declares ``fee_for(SEND_GAS x its bank sends, gas_price)`` and pays it whole; a dispatch also pays the vault one unit
and, paid, the fee account its payment; a token send moves the token, which may be the fee denom itself."""

from __future__ import annotations

from adapters.base import FeeNeed, NativeCoin, SendPlan
from adapters.cosmos.chain import SEND_GAS, CosmosChain, cosmos_boundary
from adapters.cosmos.transactions import fee_for
from adapters.tokens import UnknownToken
from config.settings import CosmosChainConfig


def send_fee(config: CosmosChainConfig, plan: SendPlan, *, chain: str = "") -> int:
    """Units of ``config.fee_denom`` that ``plan`` takes from its sender (one transaction per dispatched body: a bank
    send of one unit to the vault, with the payment's send to the fee account beside it when paid)."""
    if plan.symbol:
        token = config.tokens.get(plan.symbol)
        if token is None:
            raise UnknownToken(f"no token {plan.symbol!r} on {chain or 'this chain'}", chain=chain,
                               reason="unknown token")
        return fee_for(SEND_GAS, config.gas_price) + (plan.amount if token.denom == config.fee_denom else 0)
    sends = 2 if plan.payment else 1
    return (fee_for(SEND_GAS * sends, config.gas_price) + 1 + plan.payment) * len(plan.bodies)


class CosmosSendCosts(CosmosChain):
    """The sender's fee denom, and what a dispatch or a token send takes of it."""

    @property
    def native_coin(self) -> NativeCoin:
        return NativeCoin(self._config.fee_denom, self.native_decimals, denom_notation=True)

    @cosmos_boundary
    async def native_balance(self, address: str) -> int:
        return await self._balance(address, self._config.fee_denom)

    async def send_fee_need(self, plan: SendPlan) -> FeeNeed:
        return FeeNeed(send_fee(self._config, plan, chain=self._name))

    async def transactions_sent(self, address: str) -> int | None:
        return None  # a send is one transaction: nothing of it goes out before the one that fails
