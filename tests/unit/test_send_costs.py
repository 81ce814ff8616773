"""What a send costs its sender, as each adapter answers it (``adapters.base.SendCosts``), and how the devnet funds a
sender (``devnets.funding``). No network: Solana and Cosmos price a send from their configuration alone, balances
come from a stand-in client, and a node that does not answer is a typed ``RpcUnavailable`` (a loopback port nobody
listens on). The EVM figures, which the node estimates, are checked on a devnet (tests/integration/test_send_errors.py).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from solders.pubkey import Pubkey

from adapters.base import FeeNeed, NativeCoin, RpcUnavailable, SendCosts, SendPlan
from adapters.cosmos.adapter import CosmosAdapter
from adapters.cosmos.transactions import fee_for
from adapters.evm.adapter import EvmAdapter
from adapters.message import Domain
from adapters.solana.adapter import SolanaAdapter
from adapters.tokens import UnknownToken
from config.settings import CosmosChainConfig, EvmChainConfig, SolanaChainConfig
from devnets.funding import FundingCall, funding_call
from tests.unit.loopback_endpoints import dead_url

SENDER = "sender"
TO = Domain(1000)
RECIPIENT = b"\x11" * 32


def body(payment: int = 0) -> SendPlan:
    return SendPlan(SENDER, TO, RECIPIENT, bodies=(b"hello",), payment=payment)


def token(symbol: str, amount: int) -> SendPlan:
    return SendPlan(SENDER, TO, RECIPIENT, symbol=symbol, amount=amount)


def _solana(url: str = "http://127.0.0.1:9") -> SolanaAdapter:
    config = SolanaChainConfig(family="solana", domain=5, rpc_url=url, request_timeout_s=2.0,
                               multisig=str(Pubkey.new_unique()), multisig_threshold=1, bridge=str(Pubkey.new_unique()))
    return SolanaAdapter("solana", config)


def _cosmos(url: str = "http://127.0.0.1:9") -> CosmosAdapter:
    from adapters.cosmos.transactions import bech32, multisig_key_address
    from devnets.cosmos import devnet_account_key

    member = devnet_account_key("unit-send-costs").pub_key
    config = CosmosChainConfig(family="cosmos", domain=6000, chain_id="xchain-devnet-1", rpc_url=url, rest_url=url,
                               request_timeout_s=2.0, fee_denom="ustake", gas_price=0.0025,
                               vault=bech32(multisig_key_address(1, [member]), "cosmos"), multisig_threshold=1,
                               multisig_pubkeys=[member.hex()],
                               tokens={"TST": {"denom": "uxtst", "decimals": 6},
                                       "STAKE": {"denom": "ustake", "decimals": 6}})
    return CosmosAdapter("cosmos", config)


def _evm(url: str) -> EvmAdapter:
    return EvmAdapter("l1", EvmChainConfig.model_validate({"family": "evm", "domain": 1, "chain_id": 31337,
                                                           "rpc_url": url, "request_timeout_s": 2.0,
                                                           "mailbox": "0x" + "22" * 20}))


async def test_a_solana_send_is_one_signature_and_its_payment() -> None:
    adapter = _solana()
    try:
        assert isinstance(adapter, SendCosts)
        assert adapter.native_coin == NativeCoin("SOL", 9)
        assert await adapter.send_fee_need(body()) == FeeNeed(5_000)
        assert await adapter.send_fee_need(body(payment=70_000)) == FeeNeed(75_000)
        assert await adapter.send_fee_need(token("TST", 10**9)) == FeeNeed(5_000)
        assert await adapter.transactions_sent(SENDER) is None
    finally:
        await adapter.close()


async def test_a_solana_senders_lamports_are_read_at_confirmed() -> None:
    asked: list[Any] = []

    class Client:
        async def get_balance(self, account: Pubkey, commitment: Any) -> Any:
            asked.append((account, commitment))
            return SimpleNamespace(value=1_234)

        async def close(self) -> None:
            pass

    adapter = _solana()
    adapter._client = Client()  # type: ignore[assignment]
    who = Pubkey.new_unique()
    assert await adapter.native_balance(str(who)) == 1_234
    assert [(a, str(c)) for a, c in asked] == [(who, "confirmed")]


async def test_a_cosmos_send_pays_its_declared_fees_the_vault_unit_and_what_it_moves_of_the_fee_denom() -> None:
    adapter = _cosmos()
    try:
        one, two = fee_for(120_000, 0.0025), fee_for(240_000, 0.0025)
        assert (one, two) == (300, 600)
        assert adapter.native_coin == NativeCoin("ustake", 6, denom_notation=True)
        assert await adapter.send_fee_need(body()) == FeeNeed(one + 1)  # one bank send: a unit to the vault
        assert await adapter.send_fee_need(body(payment=50)) == FeeNeed(two + 1 + 50)  # and one to the fee account
        assert await adapter.send_fee_need(token("TST", 7)) == FeeNeed(one)
        assert await adapter.send_fee_need(token("STAKE", 7)) == FeeNeed(one + 7)  # the token is the fee denom
        with pytest.raises(UnknownToken):
            await adapter.send_fee_need(token("DOGE", 7))
        assert await adapter.transactions_sent(SENDER) is None
    finally:
        await adapter.close()


@pytest.mark.parametrize("family", ["evm", "solana", "cosmos"])
async def test_a_node_that_does_not_answer_is_a_typed_rpc_unavailable(family: str) -> None:
    url = dead_url()
    adapter: Any = {"evm": _evm, "solana": _solana, "cosmos": _cosmos}[family](url)
    who = {"evm": "0x" + "ab" * 20, "solana": str(Pubkey.new_unique()), "cosmos": "cosmos1unused"}[family]
    try:
        with pytest.raises(RpcUnavailable):
            await adapter.native_balance(who)
        if family == "evm":
            assert adapter.native_coin == NativeCoin("ETH", 18)
            with pytest.raises(RpcUnavailable):
                await adapter.transactions_sent(who)
            with pytest.raises(RpcUnavailable):  # the estimate is counted at a typical gas; the base fee is needed
                await adapter.send_fee_need(SendPlan(who, TO, RECIPIENT, bodies=(b"hello",)))
    finally:
        await adapter.close()


def test_the_devnet_funds_a_sender_by_its_nodes_own_call_where_it_has_one() -> None:
    evm = funding_call({"family": "evm", "rpc_url": "http://127.0.0.1:8545"}, "0xabc")
    assert evm == FundingCall("http://127.0.0.1:8545", "anvil_setBalance", ("0xabc", "0xde0b6b3a7640000"), 10**18)
    assert evm.request() == {"jsonrpc": "2.0", "id": 1, "method": "anvil_setBalance",
                             "params": ["0xabc", "0xde0b6b3a7640000"]}
    solana = funding_call({"family": "solana", "rpc_url": "http://127.0.0.1:8899"}, "So1")
    assert solana == FundingCall("http://127.0.0.1:8899", "requestAirdrop", ("So1", 10**9), 10**9)
    assert funding_call({"family": "cosmos", "rpc_url": "http://127.0.0.1:26657"}, "cosmos1x") is None
    assert funding_call({"family": "evm"}, "0xabc") is None  # no node named
