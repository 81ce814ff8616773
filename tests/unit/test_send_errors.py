"""``relayer send``'s refusals in words, where no devnet is needed: the bridge's rate-limit errors, the "about" figure,
amounts, and the Solana and Cosmos senders' token and fee shortfalls (fake adapters whose balances the checks read, and
whose sends cost what the Solana and Cosmos adapters compute; tests/integration/test_send_errors.py runs the EVM cases
on a devnet, tests/integration/test_send_errors_solana.py Solana's fee refusal)."""

from __future__ import annotations

import argparse
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from adapters.base import FeeNeed, InsufficientFunds, NativeCoin, SendPlan, TxReverted
from adapters.cosmos import send_costs as cosmos_costs
from adapters.solana import send_costs as solana_costs
from config.errors import RelayerError
from relayer.cli import send
from relayer.cli.common import UsageError
from relayer.cli.send import _attempt, _fee_shortfall, _parse_amount, _rounded_up, _route_refusal, _Sending

TOKEN = "0x" + "ab" * 20


def args(**kw: Any) -> argparse.Namespace:
    base = {"origin": "l1", "destination": "rollup_a", "token": "TST", "amount": "5", "body": None, "pay_gas": 0,
            "devnet": ".devnet", "config": None}
    return argparse.Namespace(**{**base, **kw})


def test_the_bridges_rate_limit_is_said_in_words() -> None:
    assert _route_refusal(f"RateLimited(2000,{TOKEN},5000000000000000000,2000000000000000000,30)", args(), 18) == (
        "cannot send 5 TST from l1 to rollup_a now: l1's token bridge has room for 2 TST to rollup_a (its rate "
        f"limit); room for this amount in 30s; nothing was sent (RateLimited(2000,{TOKEN},5000000000000000000,"
        "2000000000000000000,30))")
    never = _route_refusal(f"RateLimited(2000,{TOKEN},5,0,{2**256 - 1})", args(), 18)
    assert never is not None and "; it does not refill; nothing was sent" in never
    assert _route_refusal(f"AmountAboveCapacity(2000,{TOKEN},5000000000000000000,1000000000000000000)", args(),
                          18, "the approval went out (1 transaction), the rest did not") == (
        "cannot send 5 TST from l1 to rollup_a: l1's token bridge lets at most 1 TST out to rollup_a at once (its "
        "rate limit); send less; the approval went out (1 transaction), the rest did not (AmountAboveCapacity(2000,"
        f"{TOKEN},5000000000000000000,1000000000000000000))")
    assert _route_refusal("InsufficientBalance(0x90f7,0,1)", args(), 18) is None


def test_amounts_finer_than_the_origin_are_a_failure_garbage_is_a_usage_error() -> None:
    with pytest.raises(RelayerError) as finer:
        _parse_amount(args(amount="0.1234567", token="USDC"), 6)
    assert not isinstance(finer.value, UsageError)  # exit 1, like the destination's AmountNotRepresentable
    assert str(finer.value) == ("cannot send 0.1234567 USDC from l1 to rollup_a: l1 holds USDC in steps of 0.000001 "
                                "(6 decimals); send a multiple of 0.000001; nothing was sent")
    for bad in ("abc", "-1", "0", "inf"):
        with pytest.raises(UsageError):
            _parse_amount(args(amount=bad), 18)
    assert _parse_amount(args(amount="1.5"), 9) == 1_500_000_000


def test_about_figures_round_up_to_two_significant_digits() -> None:
    assert [_rounded_up(n) for n in (0, 7, 99, 101, 366_123, 370_000)] == [0, 7, 99, 110, 370_000, 370_000]


class FakeSender:
    """A TokenSender and SendCosts whose balances the checks read, and whose send fails as the test says: a Cosmos
    origin (``COSMOS``: its coin the fee denom, held like a token, a send costing what the Cosmos adapter computes)
    unless ``coin`` and ``fee`` say otherwise."""

    def __init__(self, balances: dict[tuple[str, str], int], fails: Exception | None = None, *,
                 coin: NativeCoin | None = None, fee: Any = None) -> None:
        self.balances = balances
        self.fails = fails
        self.native_coin = coin or NativeCoin("ustake", 6, denom_notation=True)
        self.fee = fee or (lambda plan: cosmos_costs.send_fee(COSMOS, plan))  # type: ignore[arg-type]

    async def native_balance(self, address: str) -> int:
        return self.balances.get((self.native_coin.symbol, address), 0)

    async def send_fee_need(self, plan: SendPlan) -> FeeNeed:
        return FeeNeed(self.fee(plan))

    async def transactions_sent(self, address: str) -> int | None:
        return None

    async def send_token(self, *a: Any) -> Any:
        assert self.fails is not None
        raise self.fails

    async def transfer_token(self, *a: Any) -> Any:
        raise AssertionError("not used")

    async def token_balance(self, symbol: str, holder: str) -> int:
        return self.balances.get((symbol, holder), 0)

    async def token_supply(self, symbol: str) -> int:
        return 0


def sending(origin: str, cfg: Any, adapter: FakeSender, **kw: Any) -> _Sending:
    chains = {"l1": {"tokens": {"TST": {"decimals": 18, "home": "l1"}}, "accounts": [{"address": "0xuser"}]},
              origin: {"tokens": {"TST": {"decimals": cfg.tokens["TST"].decimals, "home": "l1"}},
                       "accounts": [{"address": "user1"}]}}
    settings = SimpleNamespace(chains={"l1": SimpleNamespace(family="evm", domain=1000, tokens={"TST": None}),
                                       origin: cfg})
    return _Sending(args(origin=origin, destination="l1", **kw), settings, chains,  # type: ignore[arg-type]
                    Path("/dev/net/devnet.json"), adapter, cfg, settings.chains["l1"], "key", "user1",  # type: ignore[arg-type]
                    b"\0" * 32)


COSMOS = SimpleNamespace(family="cosmos", domain=4000, fee_denom="ustake", gas_price=0.0025,
                         tokens={"TST": SimpleNamespace(denom="uxtst", decimals=6)})
SOLANA = SimpleNamespace(family="solana", domain=5000, tokens={"TST": SimpleNamespace(decimals=9)})


async def test_a_cosmos_sender_without_the_fee_denom_is_told_to_fund_it_from_the_devnets_accounts() -> None:
    s = sending("cosmos", COSMOS, FakeSender({("TST", "user1"): 5}))
    s.amount, s.decimals = 1, 6
    assert await _fee_shortfall(s, "nothing was sent") == (
        "the sender user1 has 0ustake on cosmos for fees; the transfer needs about 300ustake; nothing was sent. "
        "Fund it: send it ustake from another of the devnet's funded accounts (chains.cosmos.accounts in "
        "/dev/net/devnet.json)")
    funded = sending("cosmos", COSMOS, FakeSender({("ustake", "user1"): 300}))
    funded.amount, funded.decimals = 1, 6
    assert await _fee_shortfall(funded, "nothing was sent") is None


async def test_a_cosmos_send_the_chain_refuses_is_explained_from_fresh_balances() -> None:
    """Code 5 (insufficient funds) says neither which coin nor how much: the balances read say it was the token."""
    refusal = InsufficientFunds("code 5 (sdk): 0uxtst is smaller than 2000000uxtst", chain="cosmos")
    s = sending("cosmos", COSMOS, FakeSender({("ustake", "user1"): 10**6}, fails=refusal), amount="2")
    s.amount, s.decimals = 2_000_000, 6
    with pytest.raises(RelayerError) as told:
        await _attempt(s, s.tokens().send_token)  # type: ignore[arg-type]
    assert str(told.value) == (
        "the sender user1 holds 0 TST on cosmos (needs 2); nothing was sent. TST's home is l1: bridge some to cosmos "
        "first:\n  relayer send --from l1 --to cosmos --token TST --amount 2 --wait")
    # a revert the balances do not explain stays as the chain said it
    other = TxReverted("code 11: out of gas", chain="cosmos", reason="code 11: out of gas")
    s = sending("cosmos", COSMOS, FakeSender({("ustake", "user1"): 10**6, ("TST", "user1"): 2_000_000},
                                             fails=other))
    s.amount, s.decimals = 2_000_000, 6
    with pytest.raises(TxReverted):
        await _attempt(s, s.tokens().send_token)  # type: ignore[arg-type]


async def test_a_solana_sender_is_told_to_bridge_tst_from_l1_or_airdrop_sol() -> None:
    """Its lamports as the Solana adapter reads them (``native_balance``: 1,000 here), and the devnet's airdrop
    (the manifest names its node)."""
    solana = FakeSender({("SOL", "user1"): 1_000}, coin=NativeCoin("SOL", 9), fee=solana_costs.send_fee)
    s = sending("solana", SOLANA, solana, amount="1.5", devnet="/dev/net")
    s.chains["solana"].update(family="solana", rpc_url="http://127.0.0.1:8899")
    s.amount, s.decimals = 1_500_000_000, 9
    short = await send._token_shortfall(s, "nothing was sent")
    assert short == ("the sender user1 holds 0 TST on solana (needs 1.5); nothing was sent. TST's home is l1: bridge "
                     "some to solana first:\n  relayer send --from l1 --to solana --token TST --amount 1.5 --wait "
                     "--devnet /dev/net")
    assert await _fee_shortfall(s, "nothing was sent") == (
        "the sender user1 has 0.000001 SOL on solana for fees; the transfer needs about 0.000005 SOL; nothing was "
        "sent. Fund it on the devnet (requestAirdrop gives it 1 SOL; or send it some from another of the devnet's "
        "funded accounts, chains.solana.accounts in /dev/net/devnet.json):\n  curl -s -H 'content-type: "
        "application/json' -d '{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"requestAirdrop\",\"params\":[\"user1\","
        "1000000000]}' http://127.0.0.1:8899")
