"""Paid delivery from Solana and Cosmos origins (issue 15): a dispatch transaction's transfer to the relayer's
``gas_fee_account`` is its messages' payment (split evenly, the remainder to the first, keyed by each message's
log index); a transaction that dispatches nothing pays only as a top-up, with one gas memo naming the message and
its destination; transfers elsewhere, from the fee account, or in other transactions that dispatch nothing count for
nothing;
the Cosmos dispatch rule admits the payment beside the vault send; the relayer's own quotes for origins without an
oracle are the keeper's entries; the configuration names the key it refuses. The devnet tests
(tests/integration/test_paid_delivery_solana_cosmos.py, tests/adversarial/test_fee_account_payments.py) run the same
code against the chains."""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import pytest
from cosmpy.protos.cosmos.tx.v1beta1.tx_pb2 import TxBody, TxRaw
from pydantic import ValidationError
from solders.hash import Hash
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.message import Message as SolanaMessage
from solders.pubkey import Pubkey
from solders.system_program import TransferParams, transfer
from solders.transaction import Transaction, VersionedTransaction
from spl.memo.constants import MEMO_PROGRAM_ID
from spl.memo.instructions import create_memo
from spl.memo.models import MemoParams

from adapters.base import ChainStats, DispatchedMessage, Height, TxHash
from adapters.bridge_memo import GasMemo, MemoFormatError, decode_gas_memo, encode_gas_memo
from adapters.cosmos.chain import _fee_account as cosmos_fee_account
from adapters.cosmos.memo import encode_dispatch_memo as cosmos_memo
from adapters.cosmos.transactions import DispatchRules, bech32, pack_send
from adapters.cosmos.transactions import fee_paid as cosmos_fee_paid
from adapters.cosmos.transactions import gas_top_up as cosmos_gas_top_up
from adapters.fee_account import dispatch_payments, split_payment, top_up_payment
from adapters.message import Domain
from adapters.solana.bridge import BridgeRules
from adapters.solana.bridge import fee_paid as solana_fee_paid
from adapters.solana.bridge import gas_top_up as solana_gas_top_up
from adapters.solana.chain import _fee_account as solana_fee_account
from adapters.solana.memo import encode_dispatch_memo as solana_memo
from config.errors import ConfigError
from config.settings import Settings
from relayer.daemon.gas_oracle import RelayerQuotes, desired_entry, price_per_gas

SOLANA, COSMOS, EVM = 5000, 6000, 1000
RECIPIENT = b"\x02" * 32


# ---- splitting one transaction's payment
def test_a_payment_is_split_evenly_with_the_remainder_to_the_first() -> None:
    assert split_payment(10, 3) == [4, 3, 3]
    assert split_payment(9, 3) == [3, 3, 3]
    assert split_payment(2, 3) == [2, 0, 0]
    assert split_payment(5, 1) == [5]
    assert split_payment(5, 0) == []
    assert sum(split_payment(10**30 + 7, 11)) == 10**30 + 7


def test_each_share_is_keyed_by_its_messages_own_log_index() -> None:
    dispatched = [_dispatched(i, "sig") for i in range(3)]
    paid = dispatch_payments(dispatched, 100)
    assert [(p.message_id, p.payment, p.log_index, p.tx_hash, p.destination) for p in paid] == [
        (bytes(d.id), share, d.log_index, "sig", EVM) for d, share in zip(dispatched, (34, 33, 33), strict=True)]
    assert dispatch_payments(dispatched, 0) == []


def _dispatched(position: int, tx: str) -> DispatchedMessage:
    from adapters.message import MESSAGE_VERSION, Message

    m = Message(MESSAGE_VERSION, position, SOLANA, b"\x01" * 32, EVM, RECIPIENT, b"m%d" % position)
    return DispatchedMessage(m, m.encode(), m.id, Height(7), TxHash(tx), position, 0.0)


# ---- Solana: System transfers to the fee account in the dispatch transaction
FEE = Keypair.from_seed(b"\x05" * 32).pubkey()
BRIDGE = Keypair.from_seed(b"\x06" * 32).pubkey()


def _solana_tx(sender: Keypair, ixs: list[Instruction]) -> VersionedTransaction:
    message = SolanaMessage.new_with_blockhash(ixs, sender.pubkey(), Hash.default())
    return VersionedTransaction.from_legacy(Transaction([sender], message, Hash.default()))


def _pay(sender: Pubkey, to: Pubkey, lamports: int) -> Instruction:
    return transfer(TransferParams(from_pubkey=sender, to_pubkey=to, lamports=lamports))


def _memo(sender: Pubkey, body: bytes) -> Instruction:
    return create_memo(MemoParams(program_id=MEMO_PROGRAM_ID, signer=sender,
                                  message=solana_memo(EVM, RECIPIENT, body).encode()))


def test_solana_counts_only_transfers_to_the_fee_account_from_others() -> None:
    sender, other = Keypair(), Keypair().pubkey()
    rules = BridgeRules(SOLANA, BRIDGE, Keypair().pubkey(), {}, {})
    tx = _solana_tx(sender, [_pay(sender.pubkey(), BRIDGE, 0), _pay(sender.pubkey(), FEE, 1000),
                             _pay(sender.pubkey(), other, 5000), _pay(sender.pubkey(), FEE, 1),
                             _memo(sender.pubkey(), b"a"), _memo(sender.pubkey(), b"b")])
    assert len(rules.parse_dispatch(tx)) == 2  # the payment does not change what is dispatched
    assert solana_fee_paid(tx, FEE) == 1001
    assert solana_fee_paid(tx, other) == 5000 and solana_fee_paid(tx, Keypair().pubkey()) == 0


def test_solana_a_transfer_by_the_fee_account_itself_pays_nothing() -> None:
    fee = Keypair()
    tx = _solana_tx(fee, [_pay(fee.pubkey(), fee.pubkey(), 10**9), _pay(fee.pubkey(), BRIDGE, 0),
                          _memo(fee.pubkey(), b"self")])
    assert solana_fee_paid(tx, fee.pubkey()) == 0


# ---- top-ups: a transaction that dispatches nothing, paying the fee account, with one gas memo
MID = bytes(range(32))


def test_the_gas_memo_round_trips_and_refuses_what_is_malformed() -> None:
    text = encode_gas_memo(EVM, MID)
    assert text == f"xchain-gas:v1:{EVM}:{MID.hex()}" and len(text) < 100  # fits the Cosmos SDK's 256
    assert decode_gas_memo(text) == GasMemo(Domain(EVM), MID)
    for bad in ("xchain-gas:v1:", f"xchain-gas:v1:-1:{MID.hex()}", f"xchain-gas:v1:{2**32}:{MID.hex()}",
                f"xchain-gas:v1:{EVM}:{MID.hex()[:-2]}", f"xchain-gas:v1:{EVM}:{'zz' * 32}",
                f"xchain-gas:v2:{EVM}:{MID.hex()}", f"xchain-gas:v1:{EVM}{MID.hex()}"):
        with pytest.raises(MemoFormatError):
            decode_gas_memo(bad)
    with pytest.raises(MemoFormatError):
        encode_gas_memo(EVM, MID[:31])


def test_a_top_up_is_one_payment_for_the_message_and_route_its_memo_names() -> None:
    [paid] = top_up_payment(GasMemo(Domain(EVM), MID), 700, 9, "sig")
    assert (paid.message_id, paid.destination, paid.payment, paid.height, paid.tx_hash, paid.log_index) == (
        MID, EVM, 700, 9, "sig", 0)
    assert top_up_payment(None, 700, 9, "sig") == [] and top_up_payment(GasMemo(Domain(EVM), MID), 0, 9, "s") == []


def _gas_memo(sender: Pubkey, text: str) -> Instruction:
    return create_memo(MemoParams(program_id=MEMO_PROGRAM_ID, signer=sender, message=text.encode()))


def test_solana_a_top_up_is_recognised_only_without_a_dispatch_and_with_one_gas_memo() -> None:
    sender = Keypair()
    me, memo = sender.pubkey(), encode_gas_memo(EVM, MID)
    top_up = _solana_tx(sender, [_pay(me, BRIDGE, 0), _pay(me, FEE, 5000), _gas_memo(me, memo)])
    assert solana_gas_top_up(top_up) == GasMemo(Domain(EVM), MID) and solana_fee_paid(top_up, FEE) == 5000
    with_dispatch = _solana_tx(sender, [_pay(me, BRIDGE, 0), _pay(me, FEE, 5000), _gas_memo(me, memo),
                                        _memo(me, b"a")])
    assert solana_gas_top_up(with_dispatch) is None  # its payment is the dispatched message's
    twice = _solana_tx(sender, [_pay(me, FEE, 5000), _gas_memo(me, memo), _gas_memo(me, encode_gas_memo(7, MID))])
    assert solana_gas_top_up(twice) is None
    malformed = _solana_tx(sender, [_pay(me, FEE, 5000), _gas_memo(me, memo[:-1])])
    assert solana_gas_top_up(malformed) is None
    no_memo = _solana_tx(sender, [_pay(me, BRIDGE, 0), _pay(me, FEE, 5000)])
    assert solana_gas_top_up(no_memo) is None


def test_cosmos_a_top_up_is_bank_sends_only_none_to_the_vault_with_the_gas_memo() -> None:
    memo = encode_gas_memo(EVM, MID)
    top_up = _cosmos_tx((SENDER, FEE_ACCOUNT, [("ustake", 2500)]), memo=memo)
    assert cosmos_gas_top_up(top_up, VAULT) == GasMemo(Domain(EVM), MID)
    assert cosmos_fee_paid(top_up, FEE_ACCOUNT, "ustake") == 2500
    to_vault = _cosmos_tx((SENDER, VAULT, [("ustake", 1)]), (SENDER, FEE_ACCOUNT, [("ustake", 2500)]), memo=memo)
    assert cosmos_gas_top_up(to_vault, VAULT) is None
    assert cosmos_gas_top_up(_cosmos_tx((SENDER, FEE_ACCOUNT, [("ustake", 2500)])), VAULT) is None  # dispatch memo
    assert cosmos_gas_top_up(_cosmos_tx((SENDER, FEE_ACCOUNT, [("ustake", 2500)]), memo="gas please"), VAULT) is None
    assert cosmos_gas_top_up(b"\xff not a tx", VAULT) is None


def test_solana_fee_account_is_checked_at_start() -> None:
    assert solana_fee_account("solana", None, BRIDGE) is None
    assert solana_fee_account("solana", str(FEE), BRIDGE) == FEE
    with pytest.raises(ConfigError, match=r"chains.solana.gas_fee_account.*base58"):
        solana_fee_account("solana", "not-base58!", BRIDGE)
    with pytest.raises(ConfigError, match=r"chains.solana.gas_fee_account.*bridge"):
        solana_fee_account("solana", str(BRIDGE), BRIDGE)


# ---- Cosmos: a bank send of the fee denom to the fee account beside the dispatch's send to the vault
VAULT = bech32(b"\x07" * 20, "cosmos")
FEE_ACCOUNT = bech32(b"\x08" * 20, "cosmos")
SENDER = bech32(b"\x09" * 20, "cosmos")


def _cosmos_tx(*sends: tuple[str, str, list[tuple[str, int]]], memo: str | None = None) -> bytes:
    body = TxBody(messages=[pack_send(f, t, c) for f, t, c in sends],
                  memo=cosmos_memo(EVM, RECIPIENT, b"hello") if memo is None else memo)
    return bytes(TxRaw(body_bytes=body.SerializeToString()).SerializeToString())


def test_cosmos_a_dispatch_may_carry_its_payment() -> None:
    rules = DispatchRules(Domain(COSMOS), VAULT, ())
    paid = _cosmos_tx((SENDER, VAULT, [("ustake", 1)]), (SENDER, FEE_ACCOUNT, [("ustake", 2500), ("other", 9)]))
    parsed = rules.parse(paid)
    assert parsed is not None and parsed.body == b"hello" and parsed.sender == bytes(32 - 20) + b"\x09" * 20
    assert cosmos_fee_paid(paid, FEE_ACCOUNT, "ustake") == 2500  # another denom is not the native token


def test_cosmos_what_is_no_dispatch_or_no_payment() -> None:
    rules = DispatchRules(Domain(COSMOS), VAULT, ())
    elsewhere = _cosmos_tx((SENDER, VAULT, [("ustake", 1)]), (SENDER, SENDER, [("ustake", 2500)]))
    assert rules.parse(elsewhere) is not None and cosmos_fee_paid(elsewhere, FEE_ACCOUNT, "ustake") == 0
    twice = _cosmos_tx((SENDER, VAULT, [("ustake", 1)]), (SENDER, VAULT, [("ustake", 1)]))
    assert rules.parse(twice) is None
    no_vault = _cosmos_tx((SENDER, FEE_ACCOUNT, [("ustake", 2500)]))
    assert rules.parse(no_vault) is None  # a payment without a dispatch: not indexed at all
    by_fee_account = _cosmos_tx((SENDER, VAULT, [("ustake", 1)]), (FEE_ACCOUNT, FEE_ACCOUNT, [("ustake", 5)]))
    assert cosmos_fee_paid(by_fee_account, FEE_ACCOUNT, "ustake") == 0


def test_cosmos_fee_account_is_checked_at_start() -> None:
    assert cosmos_fee_account("cosmos", FEE_ACCOUNT, "cosmos", VAULT) == FEE_ACCOUNT
    with pytest.raises(ConfigError, match=r"chains.cosmos.gas_fee_account"):
        cosmos_fee_account("cosmos", "cosmos1nope", "cosmos", VAULT)
    with pytest.raises(ConfigError, match=r"chains.cosmos.gas_fee_account.*osmo1"):
        cosmos_fee_account("cosmos", FEE_ACCOUNT, "osmo", VAULT)
    with pytest.raises(ConfigError, match=r"chains.cosmos.gas_fee_account.*vault"):
        cosmos_fee_account("cosmos", VAULT, "cosmos", VAULT)


# ---- the relayer's own quotes, and the configuration
class _Chain:
    def __init__(self, decimals: int, base_fee: int = 0) -> None:
        self.native_decimals, self.base_fee = decimals, base_fee

    async def chain_stats(self, blocks: int = 20) -> ChainStats:
        return ChainStats(Height(1), blocks, 2.0, 30_000_000, 0.5, self.base_fee, 1.0, priority_fee=10**9,
                          native_decimals=self.native_decimals)


def _doc(solana: dict[str, Any], rules: list[dict[str, Any]], *, floor: float | None = None) -> dict[str, Any]:
    evm = {"family": "evm", "chain_id": 1, "rpc_url": "http://127.0.0.1:1", "mailbox": "0x" + "22" * 20,
           "domain": EVM}
    sol = {"family": "solana", "domain": SOLANA, "rpc_url": "http://127.0.0.1:3", "multisig": str(BRIDGE),
           "multisig_threshold": 1, "bridge": str(BRIDGE), **solana}
    doc: dict[str, Any] = {
        "security": {"threshold": 1, "validators": [{"address": "0x" + "44" * 20, "url": "http://127.0.0.1:2"}]},
        "chains": {"l1": evm, "solana": sol}, "relayer": {"gas_payment": rules},
        "router": {"native_usd": 3000.0, "native_usd_by_chain": {"solana": 150.0}},
    }
    if floor is not None:
        doc["relayer"]["gas_oracle"] = {"signer": {"private_key": "0x" + "11" * 32}, "floors": [{"usd": floor}]}
    return doc


def test_a_paying_rule_names_a_solana_origin_only_with_a_fee_account() -> None:
    rule = [{"origin": "solana", "policy": "on_chain_quote"}]
    with pytest.raises(ValidationError, match=r"chains.solana has no gas_fee_account"):
        Settings.model_validate(_doc({}, rule))
    Settings.model_validate(_doc({"gas_fee_account": str(FEE)}, rule))


async def test_relayer_quotes_are_the_entry_the_keeper_would_write() -> None:
    settings = Settings.model_validate(_doc({"gas_fee_account": str(FEE)}, [], floor=0.05))
    evm = _Chain(18, base_fee=3 * 10**9)
    quotes = RelayerQuotes(settings, "solana", {"solana": _Chain(9), "l1": evm}, clock=lambda: 42.0)
    [entry, unknown] = await quotes.gas_oracle_entries([EVM, 777])
    wanted = desired_entry(EVM, price_per_gas(await evm.chain_stats()), 150.0, 9, 3000.0, 18, 0.05)
    assert (entry.exchange_rate, entry.gas_price, entry.minimum_payment) == (
        wanted.exchange_rate, wanted.gas_price, wanted.minimum_payment)
    assert entry.updated_at == 42.0 and unknown.updated_at == 0  # an unknown destination has no price
    assert entry.minimum_payment == math.ceil(Fraction(5, 100) / 150 * 10**9)  # the floor in lamports
    # 4 gwei per gas on l1 in lamports: (4e9 wei x 3000 / 1e18) / (150 / 1e9) = 80 lamports per gas
    assert entry.quote(1_000_000) == 80_000_000
