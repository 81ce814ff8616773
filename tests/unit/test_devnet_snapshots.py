"""The Solana and Cosmos devnets' in-place snapshots (``devnets.snapshots``), in process: their RPC apps over a chain
in a temporary directory, no server. A revert puts back the balances, the sequences, the height or slot and the
history (a transaction after the snapshot is not found), drops the Cosmos mempool, and the chain goes on from the
reverted height with new transactions that work; the store agrees (a node started over it sees the reverted
chain). Without the opt-in both methods are refused, saying why, and nothing moves."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from cosmpy.aerial.client.bank import create_bank_send_msg
from cosmpy.aerial.tx import SigningCfg, Transaction, TxFee
from cosmpy.aerial.wallet import LocalWallet
from cosmpy.crypto.address import Address
from fastapi.testclient import TestClient
from solders.hash import Hash
from solders.keypair import Keypair
from solders.message import Message
from solders.system_program import TransferParams, transfer
from solders.transaction import VersionedTransaction

from devnets import snapshots
from devnets.cosmos.chain import CosmosChain
from devnets.cosmos.genesis import GenesisSettings, genesis_accounts
from devnets.cosmos.server import CometRpc, RpcError, rest_app, rpc_app
from devnets.solana import devnet_keypair
from devnets.solana.ledger import LedgerParams, SolanaLedger
from devnets.solana.rpc import SolanaRpc
from devnets.solana.store import LedgerStore

# ---- the snapshot book ---------------------------------------------------------------------------------------


def test_a_snapshot_is_reusable_and_a_revert_discards_the_later_ones() -> None:
    book: snapshots.SnapshotBook[str] = snapshots.SnapshotBook()
    first, second, third = book.add("a"), book.add("b"), book.add("c")
    assert (first, second, third) == ("0x1", "0x2", "0x3")
    assert book.revert_to(second) == "b"
    assert book.revert_to("0x2") == "b"  # reusable
    assert len(book) == 2
    with pytest.raises(snapshots.SnapshotError, match="live snapshots: 0x1, 0x2"):
        book.revert_to(third)  # discarded by the revert to an earlier one
    for bad in ("nonsense", None, True, 7):
        with pytest.raises(snapshots.SnapshotError):
            book.revert_to(bad)
    assert book.add("d") == "0x4"  # ids are never reused


# ---- Solana ----------------------------------------------------------------------------------------------------


class SolanaNode:
    """A ledger over ``directory`` and its JSON-RPC dispatcher."""

    def __init__(self, directory: Path, *, allow_snapshots: bool) -> None:
        self.store = LedgerStore(directory)
        self.ledger = SolanaLedger(self.store, LedgerParams(blockhash_valid_slots=20))
        self.rpc = SolanaRpc(self.ledger, allow_snapshots=allow_snapshots)

    def call(self, method: str, *params: Any) -> Any:
        answer = self.rpc.handle({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
        assert "result" in answer, answer
        return answer["result"]

    def error(self, method: str, *params: Any) -> dict[str, Any]:
        answer = self.rpc.handle({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
        assert "error" in answer, answer
        return dict(answer["error"])

    def balance(self, key: Any) -> int:
        return int(self.call("getBalance", str(key), {"commitment": "processed"})["value"])

    def slot(self) -> int:
        return int(self.call("getSlot", {"commitment": "processed"}))

    def transfer(self, payer: Keypair, to: Any, lamports: int) -> tuple[str, str]:
        """Sent and landed: (signature, the transaction base64)."""
        blockhash = self.call("getLatestBlockhash", {"commitment": "processed"})["value"]["blockhash"]
        message = Message.new_with_blockhash(
            [transfer(TransferParams(from_pubkey=payer.pubkey(), to_pubkey=to, lamports=lamports))],
            payer.pubkey(),
            Hash.from_string(blockhash),
        )
        wire = base64.b64encode(bytes(VersionedTransaction(message, [payer]))).decode()
        return self.call("sendTransaction", wire, {"encoding": "base64"}), wire

    def close(self) -> None:
        self.store.close()


def test_solana_revert_puts_the_chain_back_and_it_goes_on(tmp_path: Path) -> None:
    node = SolanaNode(tmp_path / "ledger", allow_snapshots=True)
    payer, recipient, fresh = devnet_keypair(1), devnet_keypair(2).pubkey(), Keypair().pubkey()
    for _ in range(3):
        node.ledger.advance_slot()
    before_sig, _ = node.transfer(payer, recipient, 10**9)
    node.ledger.advance_slot()
    slot, paid, received = node.slot(), node.balance(payer.pubkey()), node.balance(recipient)
    history = node.call("getSignaturesForAddress", str(recipient), {"commitment": "confirmed"})
    count = node.call("getTransactionCount")
    snapshot_id = node.call("xchain_snapshot")

    after_sig, wire = node.transfer(payer, recipient, 2 * 10**9)
    node.call("requestAirdrop", str(fresh), 3 * 10**9)
    for _ in range(4):
        node.ledger.advance_slot()
    assert node.balance(recipient) == received + 2 * 10**9 and node.balance(fresh) == 3 * 10**9
    assert node.slot() == slot + 4

    seen_hashes = set(node.ledger._blockhashes)
    assert node.call("xchain_revert", snapshot_id) is True
    assert node.slot() == slot
    assert node.balance(payer.pubkey()) == paid and node.balance(recipient) == received
    assert node.balance(fresh) == 0
    assert node.call("getAccountInfo", str(fresh), {"commitment": "processed"})["value"] is None
    assert node.call("getSignatureStatuses", [after_sig])["value"] == [None]
    assert node.call("getSignatureStatuses", [before_sig])["value"][0]["err"] is None
    assert node.call("getTransactionCount") == count
    node.ledger.advance_slot()
    assert node.call("getSignaturesForAddress", str(recipient), {"commitment": "confirmed"}) == history
    assert set(node.ledger.store.block_slots(0, 10**6, 10**6)) == set(range(1, slot + 2))

    # it goes on from the reverted slot with new blockhashes, and a new transfer works
    assert node.slot() == slot + 1
    assert node.ledger.blockhash_for("processed")[0] not in seen_hashes
    again_sig, _ = node.transfer(payer, recipient, 5 * 10**8)
    assert node.balance(recipient) == received + 5 * 10**8
    assert node.call("getSignatureStatuses", [again_sig])["value"][0]["err"] is None
    # the very transaction the revert undid may be sent again: its blockhash is still valid, it is not a duplicate
    assert node.call("sendTransaction", wire, {"encoding": "base64"}) == after_sig
    assert node.balance(recipient) == received + 5 * 10**8 + 2 * 10**9

    # the snapshot is reusable; the store agrees with the ledger (a restart over it sees the reverted chain)
    assert node.call("xchain_revert", snapshot_id) is True
    assert node.balance(recipient) == received and node.slot() == slot
    node.close()
    restarted = SolanaNode(tmp_path / "ledger", allow_snapshots=False)
    assert restarted.balance(recipient) == received and restarted.balance(payer.pubkey()) == paid
    assert restarted.balance(fresh) == 0 and restarted.call("getTransactionCount") == count
    assert restarted.slot() == slot + 1  # a restart goes on at the next slot
    restarted.close()


def test_solana_revert_to_an_unknown_or_discarded_snapshot_moves_nothing(tmp_path: Path) -> None:
    node = SolanaNode(tmp_path / "ledger", allow_snapshots=True)
    first = node.call("xchain_snapshot")
    node.ledger.advance_slot()
    second = node.call("xchain_snapshot")
    assert node.call("xchain_revert", first) is True
    slot = node.slot()
    assert "no snapshot" in node.error("xchain_revert", second)["message"]
    assert "no snapshot" in node.error("xchain_revert", "0x99")["message"]
    assert node.error("xchain_revert")["code"] == -32602
    assert node.slot() == slot
    node.close()


def test_solana_snapshots_are_refused_without_the_opt_in(tmp_path: Path) -> None:
    node = SolanaNode(tmp_path / "ledger", allow_snapshots=False)
    recipient = devnet_keypair(2).pubkey()
    node.transfer(devnet_keypair(1), recipient, 10**9)
    balance, slot = node.balance(recipient), node.slot()
    for method, params in (("xchain_snapshot", ()), ("xchain_revert", ("0x1",))):
        error = node.error(method, *params)
        assert error["code"] == snapshots.REFUSED_CODE
        assert "not started with snapshots enabled (--allow-snapshots)" in error["message"]
    assert node.balance(recipient) == balance and node.slot() == slot
    assert len(node.rpc.snapshots) == 0
    node.close()


# ---- Cosmos ----------------------------------------------------------------------------------------------------

SETTINGS = GenesisSettings()
ACCOUNTS = genesis_accounts(SETTINGS)


def _send(chain: CosmosChain, sender: int, to: int, amount: int, *, sequence: int | None = None) -> bytes:
    wallet = LocalWallet(ACCOUNTS[sender].private_key, prefix=SETTINGS.prefix)
    account = chain.check_state.account(ACCOUNTS[sender].address_bytes)
    assert account is not None
    tx = Transaction()
    tx.add_message(create_bank_send_msg(wallet.address(), Address(ACCOUNTS[to].address), amount, SETTINGS.fee_denom))
    tx.seal(SigningCfg.direct(wallet.public_key(), account.sequence if sequence is None else sequence),
            fee=TxFee(amount="1000ustake", gas_limit=200_000))
    tx.sign(wallet.signer(), SETTINGS.chain_id, account.number)
    tx.complete()
    return bytes(tx.tx.SerializeToString())


def _jsonrpc(client: TestClient, method: str, params: dict[str, Any]) -> Any:
    return client.post("/", json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params})


def test_cosmos_revert_puts_the_chain_back_and_it_goes_on(tmp_path: Path) -> None:
    chain = CosmosChain(SETTINGS, tmp_path / "cosmos")
    # reads through the apps (their handlers run in the test client's thread); snapshot and revert, which write the
    # store (an SQLite connection of this thread: the node runs everything on its one event loop), called directly
    rpc, rest = TestClient(rpc_app(chain)), TestClient(rest_app(chain))
    comet = CometRpc(chain, allow_snapshots=True)
    sender, receiver = ACCOUNTS[1], ACCOUNTS[2]

    def balance(account: Any) -> int:
        url = f"/cosmos/bank/v1beta1/balances/{account.address}/by_denom"
        return int(rest.get(url, params={"denom": SETTINGS.fee_denom}).json()["balance"]["amount"])

    def sequence() -> int:
        return int(rest.get(f"/cosmos/auth/v1beta1/accounts/{sender.address}").json()["account"]["sequence"])

    def height() -> int:
        return int(rpc.get("/status").json()["result"]["sync_info"]["latest_block_height"])

    for _ in range(3):
        chain.produce_block()
    before = _send(chain, 1, 2, 1000)
    assert chain.check_tx(before).code == 0
    chain.produce_block()
    top, paid, received, seq = height(), balance(sender), balance(receiver), sequence()
    answer = comet.methods["xchain_snapshot"]({})
    assert answer["height"] == str(top)
    snapshot_id = answer["id"]
    top_block = rpc.get("/block", params={"height": top}).json()["result"]["block_id"]

    after = _send(chain, 1, 2, 5000)
    assert chain.check_tx(after).code == 0
    chain.produce_block()
    pending = _send(chain, 1, 2, 7000)
    assert chain.check_tx(pending).code == 0 and chain.mempool == [pending]
    after_hash = _hash(after)
    assert rpc.get("/tx", params={"hash": "0x" + after_hash}).json()["result"]["height"] == str(top + 1)
    assert balance(receiver) == received + 5000 and sequence() == seq + 1  # the pending one is not delivered yet
    chain.produce_block()
    assert height() == top + 2 and sequence() == seq + 2 and balance(receiver) == received + 12000
    pending = _send(chain, 1, 2, 9000)
    assert chain.check_tx(pending).code == 0 and chain.mempool == [pending]  # still waiting at the revert

    reverted = comet.methods["xchain_revert"]({"id": snapshot_id})
    assert reverted == {"reverted": True, "height": str(top)}
    assert height() == top and chain.mempool == []
    assert balance(sender) == paid and balance(receiver) == received and sequence() == seq
    assert "not found" in rpc.get("/tx", params={"hash": "0x" + after_hash}).json()["error"]["data"]
    assert rest.get(f"/cosmos/tx/v1beta1/txs/{after_hash}").status_code == 404
    assert rpc.get("/tx", params={"hash": "0x" + _hash(before)}).json()["result"]["height"] == str(top)
    search = rpc.get("/tx_search", params={"query": f"\"tx.height>{top}\""}).json()["result"]
    assert search["total_count"] == "0"
    assert rpc.get("/block", params={"height": top + 1}).json()["error"]
    assert rpc.get("/block", params={"height": top}).json()["result"]["block_id"] == top_block

    # it goes on from the reverted height, built on the snapshot's block: the tx the revert undid may be broadcast
    # again (its sequence is free again), and a new one takes the next sequence
    assert chain.check_tx(after).code == 0
    block = chain.produce_block()
    assert block.height == top + 1 and block.header.last_block_id.hash.hex().upper() == top_block["hash"]
    assert block.results[0].code == 0 and sequence() == seq + 1 and balance(receiver) == received + 5000
    again = _send(chain, 1, 2, 300)
    assert chain.check_tx(again).code == 0
    chain.produce_block()
    assert height() == top + 2 and sequence() == seq + 2 and balance(receiver) == received + 5300
    assert rpc.get("/tx", params={"hash": "0x" + _hash(again)}).json()["result"]["height"] == str(top + 2)

    # reusable, and the store agrees (a node started over it sees the reverted chain)
    assert comet.xchain_revert({"id": snapshot_id})["height"] == str(top)
    assert balance(receiver) == received
    chain.store.close()
    restarted = CosmosChain(SETTINGS, tmp_path / "cosmos")
    assert restarted.height == top and restarted.balance(receiver.address, SETTINGS.fee_denom) == received
    assert restarted.find_tx(bytes.fromhex(after_hash)) is None and restarted.mempool == []
    restarted.store.close()


def _hash(raw: bytes) -> str:
    import hashlib

    return hashlib.sha256(raw).hexdigest().upper()


def test_cosmos_snapshots_are_refused_without_the_opt_in(tmp_path: Path) -> None:
    chain = CosmosChain(SETTINGS, tmp_path / "cosmos")
    client = TestClient(rpc_app(chain))
    sent = _send(chain, 1, 2, 1000)
    assert chain.check_tx(sent).code == 0
    chain.produce_block()
    height, state = chain.height, chain.state.to_json()
    for response in (_jsonrpc(client, "xchain_snapshot", {}), _jsonrpc(client, "xchain_revert", {"id": "0x1"}),
                     client.get("/xchain_snapshot"), client.get("/xchain_revert", params={"id": "0x1"})):
        assert response.status_code == 403
        error = response.json()["error"]
        assert error["code"] == snapshots.REFUSED_CODE
        assert "not started with snapshots enabled (--allow-snapshots)" in error["data"]
    assert chain.height == height and chain.state.to_json() == state and chain.find_tx(bytes.fromhex(_hash(sent)))
    with pytest.raises(RpcError):
        CometRpc(chain).xchain_snapshot({})
    chain.store.close()


def test_cosmos_snapshot_methods_are_post_only_when_allowed(tmp_path: Path) -> None:
    chain = CosmosChain(SETTINGS, tmp_path / "cosmos")
    client = TestClient(rpc_app(chain, allow_snapshots=True))
    chain.produce_block()
    assert client.get("/xchain_snapshot").status_code == 405
    assert client.get("/xchain_revert", params={"id": "0x1"}).status_code == 405
    bad = _jsonrpc(client, "xchain_revert", {"id": "0x1"})
    assert bad.status_code == 500 and "no snapshot" in bad.json()["error"]["data"]
    chain.store.close()


def test_only_an_explicit_opt_in_turns_snapshots_on(tmp_path: Path) -> None:
    """``Devnet`` serves no snapshots unless asked, and ``relayer devnet up`` (``make run`` runs it) never asks: only
    the xchain plugin's session does (``relayer/testing/session.py``)."""
    import inspect

    import relayer.cli.devnet
    import relayer.testing.session
    from devnets.devnet import Devnet

    assert Devnet(tmp_path / "devnet").allow_snapshots is False
    assert "allow_snapshots" not in inspect.getsource(relayer.cli.devnet)
    assert "allow_snapshots=True" in inspect.getsource(relayer.testing.session.XChainSession.__init__)
