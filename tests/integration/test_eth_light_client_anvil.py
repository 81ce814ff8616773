"""The Ethereum execution light client against a live anvil (Prague by default in anvil 1.7.1).

One automining anvil on a free port. Plain transfers and calls to a hand-assembled contract (it stores
its calldata word in slot 0 and emits it in a LOG1) produce blocks with and without logs, including one
block holding several transactions. Everything anvil answers is then checked by the light client alone:
every header's hash, the chain from genesis, every block's receipts root, a log inclusion proof, and
``eth_getProof`` for accounts (present and absent) and storage slots (set and unset).

Dev account 0 of anvil's public test mnemonic sends, through ``eth_sendTransaction`` (anvil unlocks its
dev accounts); its key guards nothing.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest

from light_clients.ethereum.execution.blocks import transactions_root
from light_clients.ethereum.execution.errors import HeaderError, LogMismatch, ProofError
from light_clients.ethereum.execution.header import BlockHeader, header_from_rpc_checked, verify_header_chain
from light_clients.ethereum.execution.keccak import keccak256
from light_clients.ethereum.execution.receipts import (
    Log,
    Receipt,
    receipt_proof,
    receipts_root,
    verify_log_inclusion,
    verify_receipt_proof,
)
from light_clients.ethereum.execution.state import (
    EMPTY_ACCOUNT,
    AccountProof,
    verify_account_proof,
    verify_storage_proof,
)
from tests.integration.anvil import Anvil, start_anvil

pytestmark = pytest.mark.integration

CHAIN_ID = 41001
DEV_ACCOUNT_0 = "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266"  # anvil's public test account 0
EVENT_TOPIC = keccak256(b"Stored(uint256)")
RECEIPT_DEADLINE_S = 20.0


def _runtime_code() -> bytes:
    """calldata word -> slot 0, then LOG1(mem[0:32], EVENT_TOPIC); no Solidity, assembled by hand."""
    return bytes.fromhex(
        "600035"      # PUSH1 0 CALLDATALOAD
        "80"          # DUP1
        "600055"      # PUSH1 0 SSTORE
        "600052"      # PUSH1 0 MSTORE
        "7f" + EVENT_TOPIC.hex() +  # PUSH32 topic
        "6020" "6000" "a1"          # PUSH1 32 PUSH1 0 LOG1
        "00"          # STOP
    )


def _init_code() -> bytes:
    """Constructor that returns the runtime code: CODECOPY(0, 11, n) RETURN(0, n)."""
    runtime = _runtime_code()
    prefix = bytes.fromhex(f"60{len(runtime):02x}80600b600039" "6000f3")
    assert len(prefix) == 0x0B
    return prefix + runtime


class Rpc:
    """Bare JSON-RPC over HTTP: the light client must trust nothing a library would interpret."""

    def __init__(self, url: str) -> None:
        self._client = httpx.Client(base_url=url, timeout=10.0)
        self._id = 0

    def call(self, method: str, *params: Any) -> Any:
        self._id += 1
        reply = self._client.post("", json={"jsonrpc": "2.0", "id": self._id, "method": method,
                                            "params": list(params)}).json()
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply["result"]

    def send(self, **tx: str) -> str:
        return str(self.call("eth_sendTransaction", {"from": DEV_ACCOUNT_0, **tx}))

    def receipt(self, tx_hash: str) -> dict[str, Any]:
        deadline = time.monotonic() + RECEIPT_DEADLINE_S
        while time.monotonic() < deadline:
            found = self.call("eth_getTransactionReceipt", tx_hash)
            if found is not None:
                return dict(found)
        raise TimeoutError(f"no receipt for {tx_hash} within {RECEIPT_DEADLINE_S}s")

    def close(self) -> None:
        self._client.close()


@pytest.fixture(scope="module")
def anvil(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Anvil]:
    node = start_anvil(CHAIN_ID, tmp_path_factory.mktemp("anvil-eth-lc"))
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture(scope="module")
def chain(anvil: Anvil) -> Iterator[dict[str, Any]]:
    """Drive the chain: a transfer, a deployment, a call, then one block with four transactions."""
    rpc = Rpc(anvil.url)
    try:
        other = rpc.call("eth_accounts")[1]
        rpc.receipt(rpc.send(to=other, value=hex(10**18)))
        deployed = rpc.receipt(rpc.send(data="0x" + _init_code().hex()))
        assert deployed["status"] == "0x1"
        contract = deployed["contractAddress"]
        first_call = rpc.receipt(rpc.send(to=contract, data="0x" + (7).to_bytes(32, "big").hex()))
        assert len(first_call["logs"]) == 1
        rpc.call("evm_setAutomine", False)
        try:
            batch = [
                rpc.send(to=contract, data="0x" + (0x2A).to_bytes(32, "big").hex(), gas=hex(100_000)),
                rpc.send(to=other, value=hex(12345), gas=hex(21_000)),
                rpc.send(to=contract, data="0x" + (0x2B).to_bytes(32, "big").hex(), gas=hex(100_000)),
                rpc.send(to=contract, data="0x" + (0x2C).to_bytes(32, "big").hex(), gas=hex(100_000)),
            ]
            rpc.call("evm_mine")
        finally:
            rpc.call("evm_setAutomine", True)
        receipts = [rpc.receipt(h) for h in batch]
        assert len({r["blockNumber"] for r in receipts}) == 1
        yield {"rpc": rpc, "contract": contract, "other": other, "batch_receipts": receipts}
    finally:
        rpc.close()


def _slot(index: int) -> str:
    return "0x" + index.to_bytes(32, "big").hex()


def _blocks(rpc: Rpc) -> list[dict[str, Any]]:
    latest = int(rpc.call("eth_blockNumber"), 16)
    return [rpc.call("eth_getBlockByNumber", hex(n), False) for n in range(latest + 1)]


def test_every_header_hashes_and_links_from_genesis(chain: dict[str, Any]) -> None:
    blocks = _blocks(chain["rpc"])
    headers = [header_from_rpc_checked(block) for block in blocks]
    assert len(headers) >= 5
    assert headers[-1].requests_hash is not None, "anvil 1.7.1 runs Prague: headers carry requestsHash"
    verify_header_chain(headers[0], headers[1:])
    verify_header_chain(headers[0].hash(), headers[1:])
    lying = dict(blocks[-1], gasUsed=hex(int(blocks[-1]["gasUsed"], 16) + 1))
    with pytest.raises(HeaderError):
        header_from_rpc_checked(lying)


def test_receipts_root_of_every_block(chain: dict[str, Any]) -> None:
    rpc = chain["rpc"]
    for block in _blocks(rpc):
        header = BlockHeader.from_rpc(block)
        receipts = [Receipt.from_rpc(r) for r in rpc.call("eth_getBlockReceipts", block["number"])]
        assert len(receipts) == len(block["transactions"])
        assert receipts_root(receipts) == header.receipts_root, f"block {header.number}"


def test_transactions_root_of_every_block(chain: dict[str, Any]) -> None:
    rpc = chain["rpc"]
    for block in _blocks(rpc):
        header = header_from_rpc_checked(block)
        raw = [bytes.fromhex(rpc.call("eth_getRawTransactionByHash", h)[2:]) for h in block["transactions"]]
        assert transactions_root(raw) == header.transactions_root, f"block {header.number}"


def test_log_inclusion_in_a_multi_transaction_block(chain: dict[str, Any]) -> None:
    rpc = chain["rpc"]
    number = chain["batch_receipts"][0]["blockNumber"]
    header = header_from_rpc_checked(rpc.call("eth_getBlockByNumber", number, False))
    rpc_receipts = rpc.call("eth_getBlockReceipts", number)
    receipts = [Receipt.from_rpc(r) for r in rpc_receipts]
    assert len(receipts) == 4
    proven_logs = 0
    for index, rpc_receipt in enumerate(rpc_receipts):
        proof = receipt_proof(receipts, index)
        assert verify_receipt_proof(header.receipts_root, index, proof) == receipts[index]
        for log_index, rpc_log in enumerate(rpc_receipt["logs"]):
            log = Log.from_rpc(rpc_log)
            assert log.topics == [EVENT_TOPIC]
            verify_log_inclusion(header, index, log_index, proof, log)
            proven_logs += 1
            forged = Log(log.address, log.topics, (0x99).to_bytes(32, "big"))
            with pytest.raises(LogMismatch):
                verify_log_inclusion(header, index, log_index, proof, forged)
    assert proven_logs == 3
    with pytest.raises(ProofError):
        verify_receipt_proof(header.receipts_root, 1, receipt_proof(receipts, 2))


def test_account_and_storage_proofs_against_state_root(chain: dict[str, Any]) -> None:
    rpc = chain["rpc"]
    block = rpc.call("eth_getBlockByNumber", "latest", False)
    header = header_from_rpc_checked(block)
    contract_proof = AccountProof.from_rpc(rpc.call("eth_getProof", chain["contract"], [_slot(0), _slot(5)],
                                                    block["number"]))
    contract_proof.verify(header.state_root)
    values = {int.from_bytes(s.key, "big"): s.value for s in contract_proof.storage_proofs}
    assert values == {0: 0x2C, 5: 0}
    slot0 = contract_proof.storage_proofs[0]
    with pytest.raises(ProofError):
        verify_storage_proof(contract_proof.account.storage_root, 0, slot0.proof, 0x2B)

    sender = AccountProof.from_rpc(rpc.call("eth_getProof", DEV_ACCOUNT_0, [], block["number"]))
    sender.verify(header.state_root)
    assert sender.account.nonce >= 7
    with pytest.raises(ProofError):
        verify_account_proof(header.state_root, sender.address, sender.account_proof,
                              replace(sender.account, balance=sender.account.balance + 1))

    absent_address = "0x" + keccak256(b"nobody").hex()[:40]
    absent = AccountProof.from_rpc(rpc.call("eth_getProof", absent_address, [_slot(0)], block["number"]))
    assert absent.account == EMPTY_ACCOUNT
    absent.verify(header.state_root)

    parent = header_from_rpc_checked(rpc.call("eth_getBlockByNumber", hex(header.number - 1), False))
    if parent.state_root != header.state_root:
        with pytest.raises(ProofError):
            contract_proof.verify(parent.state_root)


def test_hand_assembled_constructor_returns_runtime() -> None:
    assert _init_code()[11:] == _runtime_code()
