"""Lane kind ``native`` on Solana and Cosmos (integrator payouts, ``router/payouts.py``): what the write-ahead senders
sign (``adapters/solana/writeahead.py``, ``adapters/cosmos/writeahead.py``), what they refuse before signing, and how
their receipts tell a native transfer (no dispatch to look up) from a cross-chain one."""

from __future__ import annotations

import base64
from types import SimpleNamespace
from typing import Any

import pytest
from solders.hash import Hash
from solders.message import Message
from solders.pubkey import Pubkey
from solders.system_program import ID as SYSTEM_PROGRAM_ID
from solders.system_program import TransferParams, transfer
from solders.transaction import Transaction, VersionedTransaction
from spl.memo.constants import MEMO_PROGRAM_ID

from adapters.base import TxReverted
from adapters.capabilities import PreparedTx, TxSpec
from adapters.cosmos.adapter import CosmosAdapter
from adapters.cosmos.writeahead import NATIVE_MEMO, _memo_of
from adapters.solana.adapter import SolanaAdapter
from adapters.solana.writeahead import NATIVE_MEMO_PREFIX, RENT_SHORT
from config.settings import CosmosChainConfig, SolanaChainConfig

SOL_KEY = "11" * 32
COSMOS_KEY = "22" * 32
BLOCKHASH = Hash.new_unique()


def _solana() -> SolanaAdapter:
    config = SolanaChainConfig(family="solana", domain=5, rpc_url="http://127.0.0.1:9",
                               multisig=str(Pubkey.new_unique()), multisig_threshold=1, bridge=str(Pubkey.new_unique()))
    return SolanaAdapter("solana", config)


def _cosmos() -> CosmosAdapter:
    from adapters.cosmos.transactions import bech32, multisig_key_address
    from devnets.cosmos import devnet_account_key

    member = devnet_account_key("unit-native-lane").pub_key
    config = CosmosChainConfig(family="cosmos", domain=6000, chain_id="xchain-devnet-1", rpc_url="http://127.0.0.1:9",
                               rest_url="http://127.0.0.1:9", fee_denom="ustake",
                               vault=bech32(multisig_key_address(1, [member]), "cosmos"), multisig_threshold=1,
                               multisig_pubkeys=[member.hex()])
    return CosmosAdapter("cosmos", config)


# ---------------------------------------------------------------- Solana
def _signed_solana(adapter: SolanaAdapter, spec: TxSpec, sequence: int) -> Transaction:
    prepared = PreparedTx(spec, str(BLOCKHASH), b"", 0, 0, 0)
    return Transaction.from_bytes(adapter.sign(SOL_KEY, prepared, sequence).raw)


def test_a_solana_native_lane_transaction_is_one_system_transfer_and_the_lane_memo() -> None:
    adapter = _solana()
    payee = Pubkey.new_unique()
    assert "native" in adapter.lane_kinds()
    tx = _signed_solana(adapter, TxSpec("native", str(payee), amount=1_250), 7)
    keys = tx.message.account_keys
    transfer, memo = tx.message.instructions
    assert keys[transfer.program_id_index] == SYSTEM_PROGRAM_ID
    assert [keys[i] for i in transfer.accounts] == [Pubkey.from_string(adapter.account_of(SOL_KEY)), payee]
    assert bytes(transfer.data) == (2).to_bytes(4, "little") + (1_250).to_bytes(8, "little")  # System Transfer
    assert keys[memo.program_id_index] == MEMO_PROGRAM_ID and bytes(memo.data) == f"{NATIVE_MEMO_PREFIX}7".encode()
    assert tx.message.recent_blockhash == BLOCKHASH
    twin = _signed_solana(adapter, TxSpec("native", str(payee), amount=1_250), 8)  # alike, at another sequence
    assert twin.signatures[0] != tx.signatures[0]


@pytest.mark.parametrize(("to", "amount"), [("0x" + "ab" * 20, 5), ("not base58!", 5), (None, 0), (None, 2**64)])
def test_a_solana_native_transfer_to_no_account_or_of_no_u64_is_refused(to: str | None, amount: int) -> None:
    with pytest.raises(TxReverted):
        _signed_solana(_solana(), TxSpec("native", to or str(Pubkey.new_unique()), amount=amount), 0)


class _RentClient:
    """``getLatestBlockhash``, ``getBalance`` and ``getMinimumBalanceForRentExemption`` of a node."""

    def __init__(self, held: int, floor: int = 890_880) -> None:
        self.held, self.floor = held, floor

    async def get_latest_blockhash(self, *_: Any) -> Any:
        return SimpleNamespace(value=SimpleNamespace(blockhash=BLOCKHASH))

    async def get_balance(self, *_: Any) -> Any:
        return SimpleNamespace(value=self.held)

    async def get_minimum_balance_for_rent_exemption(self, *_: Any) -> Any:
        return SimpleNamespace(value=self.floor)


@pytest.mark.parametrize(("held", "amount", "refused"), [(0, 1_250, True), (0, 890_880, False),
                                                          (889_000, 1_250, True), (1_000_000, 1, False)])
async def test_a_solana_native_transfer_leaving_its_recipient_below_rent_is_refused_before_signing(
        held: int, amount: int, refused: bool) -> None:
    adapter = _solana()
    adapter._client = _RentClient(held)  # type: ignore[assignment]
    sender = adapter.account_of(SOL_KEY)
    (prepared,) = await adapter.prepare(sender, [TxSpec("native", str(Pubkey.new_unique()), amount=amount)])
    if refused:
        assert isinstance(prepared, TxReverted) and prepared.reason == RENT_SHORT
    else:
        assert isinstance(prepared, PreparedTx) and prepared.target == str(BLOCKHASH)


@pytest.mark.parametrize(("held", "minimum"), [(0, 890_880), (889_000, 1_880), (890_880, 0), (10**9, 0)])
async def test_the_least_a_solana_payout_may_be_is_what_the_account_lacks_of_the_rent_exempt_minimum(
        held: int, minimum: int) -> None:
    """What the payout job asks (``router.payouts.ChainPayoutMinimums``): Solana through ``NativePayoutMinimum``, a
    chain without it (EVM) takes any amount."""
    from adapters.evm.adapter import EvmAdapter
    from config.settings import EvmChainConfig
    from router.payouts import ChainPayoutMinimums

    adapter = _solana()
    adapter._client = _RentClient(held)  # type: ignore[assignment]
    evm_config = {"family": "evm", "domain": 1, "chain_id": 31337, "rpc_url": "http://127.0.0.1:9",
                  "mailbox": "0x" + "22" * 20}
    evm = EvmAdapter("l1", EvmChainConfig.model_validate(evm_config))
    minimums = ChainPayoutMinimums({"solana": adapter, "l1": evm})
    solana = await minimums.minimum_payout("solana", str(Pubkey.new_unique()))
    assert solana.amount == minimum
    assert not minimum or solana.reason == f"a Solana account must hold the rent-exempt minimum, 890880 lamports; " \
                                           f"this one holds {held}"
    assert (await minimums.minimum_payout("l1", "0x" + "ab" * 20)).amount == 0
    with pytest.raises(TxReverted):
        await minimums.minimum_payout("solana", "0x" + "ab" * 20)


async def test_a_solana_receipt_knows_a_native_lane_transfer_by_its_memo() -> None:
    adapter = _solana()
    payee = str(Pubkey.new_unique())
    native = _signed_solana(adapter, TxSpec("native", payee, amount=5), 3)

    class Node:
        def __init__(self, tx: Transaction) -> None:
            self.tx = VersionedTransaction.from_legacy(tx)

        async def get_transaction(self, *_: Any, **__: Any) -> Any:
            return SimpleNamespace(value=SimpleNamespace(transaction=SimpleNamespace(transaction=self.tx)))

    adapter._client = Node(native)  # type: ignore[assignment]
    assert await adapter._is_native_lane(native.signatures[0])
    payer = Pubkey.from_string(adapter.account_of(SOL_KEY))
    plain = Transaction.new_unsigned(Message.new_with_blockhash(  # the same transfer without the lane's memo
        [transfer(TransferParams(from_pubkey=payer, to_pubkey=Pubkey.from_string(payee), lamports=5))], payer,
        BLOCKHASH))
    adapter._client = Node(plain)  # type: ignore[assignment]
    assert not await adapter._is_native_lane(native.signatures[0])


# ---------------------------------------------------------------- Cosmos
def _decoded_cosmos(raw: bytes) -> tuple[Any, str, int]:
    from cosmpy.protos.cosmos.bank.v1beta1.tx_pb2 import MsgSend
    from cosmpy.protos.cosmos.tx.v1beta1.tx_pb2 import AuthInfo, TxBody, TxRaw

    tx = TxRaw.FromString(raw)
    body = TxBody.FromString(tx.body_bytes)
    (message,) = body.messages
    assert message.type_url == "/cosmos.bank.v1beta1.MsgSend"
    infos = AuthInfo.FromString(tx.auth_info_bytes).signer_infos
    return MsgSend.FromString(message.value), body.memo, infos[0].sequence


def test_a_cosmos_native_lane_transaction_is_a_bank_send_of_the_fee_denom_at_the_lane_sequence() -> None:
    adapter = _cosmos()
    assert "native" in adapter.lane_kinds()
    payee = adapter.account_of("33" * 32)
    prepared = PreparedTx(TxSpec("native", payee, amount=1_234), "5", b"", 200_000, 0, 0)
    signed = adapter.sign(COSMOS_KEY, prepared, 9)
    send, memo, sequence = _decoded_cosmos(signed.raw)
    assert (send.from_address, send.to_address) == (adapter.account_of(COSMOS_KEY), payee)
    assert [(c.denom, c.amount) for c in send.amount] == [("ustake", "1234")]
    assert (memo, sequence, signed.nonce) == (NATIVE_MEMO, 9, 9)
    assert _memo_of({"tx": base64.b64encode(signed.raw).decode()}) == NATIVE_MEMO
    assert _memo_of({"tx": "not a transaction"}) is None


@pytest.mark.parametrize(("to", "amount"), [("0x" + "ab" * 20, 5), ("osmo", 5), (None, 0)])
def test_a_cosmos_native_transfer_to_no_account_of_this_chain_or_of_nothing_is_refused(to: str | None,
                                                                                       amount: int) -> None:
    from adapters.cosmos.transactions import bech32

    adapter = _cosmos()
    payee = adapter.account_of("33" * 32)
    to = bech32(bytes(20), "osmo") if to == "osmo" else to  # a valid account of another chain
    spec = TxSpec("native", to or payee, amount=amount)
    with pytest.raises(TxReverted):
        adapter.sign(COSMOS_KEY, PreparedTx(spec, "5", b"", 200_000, 0, 0), 0)


async def test_a_cosmos_receipt_of_a_native_lane_transfer_looks_up_no_dispatch() -> None:
    adapter = _cosmos()
    payee = adapter.account_of("33" * 32)
    native = adapter.sign(COSMOS_KEY, PreparedTx(TxSpec("native", payee, amount=7), "5", b"", 200_000, 0, 0), 0)
    committed = {"tx": base64.b64encode(native.raw).decode(), "height": "12", "tx_result": {"code": 0}}
    asked: list[str] = []

    async def find_tx(tx_hash: str) -> dict[str, Any]:
        return committed

    async def dispatch_id(tx_hash: str, height: int) -> bytes:
        asked.append(tx_hash)
        raise AssertionError("a native transfer dispatched nothing")

    adapter._find_tx = find_tx  # type: ignore[method-assign]
    adapter._dispatch_id = dispatch_id  # type: ignore[assignment,method-assign]
    (receipt,) = await adapter.receipts([native.tx_hash])
    assert receipt is not None and receipt.success and receipt.message_id is None and asked == []
    assert (receipt.sender, receipt.to, receipt.height) == (adapter.account_of(COSMOS_KEY), payee, 12)
    assert receipt.fee_paid > 0  # the declared fee, in the fee denom


async def test_a_solana_lane_receipt_gives_a_dispatch_its_message_id_and_a_native_transfer_none() -> None:
    adapter = _solana()
    native = _signed_solana(adapter, TxSpec("native", str(Pubkey.new_unique()), amount=5), 0)

    async def scan(slot: int) -> None:
        return None

    async def is_native(signature: Any) -> bool:
        return signature == native.signatures[0]

    adapter._scan = scan  # type: ignore[method-assign]
    adapter._is_native_lane = is_native  # type: ignore[method-assign]
    dispatched = SimpleNamespace(id=b"\x01" * 32, tx_hash="dispatch-signature")
    adapter._dispatches = [dispatched]  # type: ignore[list-item]
    assert await adapter._lane_message_id(native.signatures[0], 5) is None
    assert await adapter._lane_message_id("dispatch-signature", 5) == b"\x01" * 32  # type: ignore[arg-type]
    with pytest.raises(TxReverted):
        await adapter._lane_message_id("someone-else", 5)  # type: ignore[arg-type]
