"""contracts/src/OutputOracle.sol on a live anvil, proven by light_clients/ethereum/output_roots.py.

One automining anvil on a free port plays both chains: its own blocks stand in for rollup blocks (their state
root, the storage root of ``0x4200..0016`` from ``eth_getProof``, their hash give a real version-0 output root)
and it hosts the oracle. The proposer posts outputs for two of its blocks and then a wrong root for a third;
``eth_getProof`` on the oracle at the latest block is then checked against that block's state root by the light
client alone, and each posted output against its real block. Then the oracle's rules: only the proposer posts,
block numbers increase, only the challenger deletes, and only outputs younger than the finalization period.

Anvil's dev accounts (public test mnemonic) send through ``eth_sendTransaction``; their keys guard nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
from web3 import HTTPProvider, Web3
from web3.exceptions import ContractLogicError

from adapters.evm.contracts import load_artifact
from adapters.evm.settlement import OUTPUT_VERSION_V0, output_root_v0
from light_clients.ethereum.execution.header import BlockHeader, header_from_rpc_checked
from light_clients.ethereum.execution.keccak import EMPTY_TRIE_ROOT, keccak256
from light_clients.ethereum.output_roots import (
    REASON_MISMATCH,
    REASON_NO_OUTPUT,
    OutputRootRefused,
    PostedOutput,
    count_slot,
    link_down,
    output_slots,
    verify_output_preimage,
    verify_posted_output,
)
from tests.integration.anvil import Anvil, start_anvil

pytestmark = pytest.mark.integration

CHAIN_ID = 41017
MESSAGE_PASSER = "0x4200000000000000000000000000000000000016"
FINALIZATION_PERIOD_S = 3600


class Rpc:
    """Bare JSON-RPC: what the light client checks must be exactly what the node answered."""

    def __init__(self, url: str) -> None:
        self._client = httpx.Client(base_url=url, timeout=10.0)

    def call(self, method: str, *params: Any) -> Any:
        reply = self._client.post("", json={"jsonrpc": "2.0", "id": 1, "method": method,
                                            "params": list(params)}).json()
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply["result"]

    def header(self, number: int | str) -> BlockHeader:
        tag = hex(number) if isinstance(number, int) else number
        return header_from_rpc_checked(self.call("eth_getBlockByNumber", tag, False))

    def oracle_proof(self, oracle: str, index: int, block: int) -> Any:
        # anvil wants 32-byte keys: a short quantity such as "0x0" is refused ("odd number of digits")
        keys = ["0x" + s.to_bytes(32, "big").hex() for s in (count_slot(), *output_slots(index))]
        return self.call("eth_getProof", oracle, keys, hex(block))

    def passer_proof(self, block: int) -> Any:
        return self.call("eth_getProof", MESSAGE_PASSER, [], hex(block))

    def close(self) -> None:
        self._client.close()


@pytest.fixture(scope="module")
def anvil() -> Iterator[Anvil]:
    node = start_anvil(CHAIN_ID)
    try:
        yield node
    finally:
        node.stop()


def _transact(w3: Web3, fn: Any, sender: str) -> dict[str, Any]:
    receipt = dict(w3.eth.wait_for_transaction_receipt(fn.transact({"from": sender}), timeout=20, poll_latency=0.02))
    assert receipt["status"] == 1, f"transaction reverted: {receipt}"
    return receipt


def _reverts(fn: Any, sender: str, error: str) -> str:
    """``fn`` (eth_call from ``sender``) reverts with custom error ``error`` (``Name(types)``); the revert data."""
    with pytest.raises(ContractLogicError) as info:
        fn.call({"from": sender})
    data = info.value.data
    selector = "0x" + keccak256(error.encode())[:4].hex()
    assert isinstance(data, str) and data.startswith(selector), f"expected {error}, got {data!r}"
    return data


def _real_output_root(rpc: Rpc, number: int) -> bytes:
    header = rpc.header(number)
    passer_storage = bytes.fromhex(rpc.passer_proof(number)["storageHash"][2:])
    return output_root_v0(header.state_root, passer_storage, header.hash())


@pytest.fixture(scope="module")
def world(anvil: Anvil) -> Iterator[dict[str, Any]]:
    """The oracle deployed in block D; outputs 0 and 1 post the real roots of blocks D and D+1 (in blocks D+1 and
    D+2), output 2 posts block D+1's root again, for block D+2: a wrong root."""
    rpc = Rpc(anvil.url)
    w3 = Web3(HTTPProvider(anvil.url, request_kwargs={"timeout": 20}))
    try:
        deployer, proposer, challenger, outsider = list(w3.eth.accounts)[:4]
        artifact = load_artifact("OutputOracle")
        factory = w3.eth.contract(abi=artifact.abi_list, bytecode=artifact.bytecode)
        deployed = _transact(w3, factory.constructor(proposer, challenger, FINALIZATION_PERIOD_S), deployer)
        oracle = w3.eth.contract(address=deployed["contractAddress"], abi=artifact.abi_list)
        posted: list[tuple[bytes, int, dict[str, Any]]] = []  # (root, rollup block, proposal receipt)
        for number in (deployed["blockNumber"], deployed["blockNumber"] + 1):
            assert w3.eth.block_number == number
            root = _real_output_root(rpc, number)
            posted.append((root, number, _transact(w3, oracle.functions.proposeL2Output(root, number), proposer)))
        wrong_block = w3.eth.block_number
        wrong = _transact(w3, oracle.functions.proposeL2Output(posted[-1][0], wrong_block), proposer)
        posted.append((posted[-1][0], wrong_block, wrong))
        yield {"rpc": rpc, "w3": w3, "oracle": oracle, "posted": posted, "proposer": proposer,
               "challenger": challenger, "outsider": outsider}
    finally:
        rpc.close()


def _prove(world: dict[str, Any], index: int, block: int | None = None) -> tuple[BlockHeader, PostedOutput]:
    rpc: Rpc = world["rpc"]
    header = rpc.header("latest" if block is None else block)
    address = world["oracle"].address
    proof = rpc.oracle_proof(address, index, header.number)
    return header, verify_posted_output(header.state_root, bytes.fromhex(address[2:]), index, proof)


def test_output_root_v0_agrees_with_the_node_keccak(world: dict[str, Any]) -> None:
    parts = [b"\x11" * 32, b"\x22" * 32, b"\x33" * 32]
    node_hash = world["rpc"].call("web3_sha3", "0x" + (OUTPUT_VERSION_V0 + b"".join(parts)).hex())
    assert output_root_v0(*parts).hex() == node_hash[2:]


def test_an_absent_message_passer_is_proven_as_the_empty_account(world: dict[str, Any]) -> None:
    """On anvil nothing lives at 0x4200..0016: eth_getProof answers the empty account (storageHash the empty trie
    root, codeHash keccak256 of no code) with an exclusion proof, which verifies."""
    proof = world["rpc"].passer_proof(world["posted"][0][1])
    assert proof["storageHash"] == "0x" + EMPTY_TRIE_ROOT.hex()
    assert proof["storageProof"] == [] and proof["nonce"] == "0x0"


def test_posted_outputs_are_proven_under_the_l1_state_root(world: dict[str, Any]) -> None:
    w3: Web3 = world["w3"]
    for index, (root, number, receipt) in enumerate(world["posted"]):
        header, posted = _prove(world, index)
        proposed_at = w3.eth.get_block(receipt["blockNumber"])["timestamp"]
        assert posted == PostedOutput(index=index, output_root=root, timestamp=proposed_at, l2_block_number=number,
                                      count=3)
        assert world["oracle"].functions.getL2Output(index).call() == [root, proposed_at, number]
        # and at the block that included the proposal: the count then was index + 1
        _, then = _prove(world, index, receipt["blockNumber"])
        assert then.count == index + 1 and then.output_root == root
        if index:
            with pytest.raises(OutputRootRefused) as info:
                _prove(world, index, receipt["blockNumber"] - 1)
            assert info.value.reason == REASON_NO_OUTPUT


def test_the_real_rollup_block_is_the_preimage(world: dict[str, Any]) -> None:
    rpc: Rpc = world["rpc"]
    passer = bytes.fromhex(MESSAGE_PASSER[2:])
    for index in (0, 1):
        _, posted = _prove(world, index)
        rollup = rpc.header(posted.l2_block_number)
        verify_output_preimage(posted, rollup, passer, rpc.passer_proof(rollup.number))
        with pytest.raises(OutputRootRefused) as info:
            verify_output_preimage(replace(posted, output_root=b"\xee" * 32), rollup, passer,
                                   rpc.passer_proof(rollup.number))
        assert info.value.reason == REASON_MISMATCH
    # the headers below a proven rollup block link down to its hash
    top = rpc.header(world["posted"][1][1])
    link_down([rpc.header(n) for n in range(1, top.number + 1)], top.hash())


def test_a_posted_wrong_root_is_proven_posted_and_refused_as_a_mismatch(world: dict[str, Any]) -> None:
    rpc: Rpc = world["rpc"]
    _, posted = _prove(world, 2)
    rollup = rpc.header(posted.l2_block_number)
    with pytest.raises(OutputRootRefused) as info:
        verify_output_preimage(posted, rollup, bytes.fromhex(MESSAGE_PASSER[2:]), rpc.passer_proof(rollup.number))
    assert info.value.reason == REASON_MISMATCH
    assert "0x" + _real_output_root(rpc, rollup.number).hex() in str(info.value)
    assert "0x" + posted.output_root.hex() in str(info.value)


def test_views(world: dict[str, Any]) -> None:
    fns = world["oracle"].functions
    numbers = [number for _, number, _ in world["posted"]]
    assert fns.nextOutputIndex().call() == 3 and fns.latestOutputIndex().call() == 2
    assert fns.latestBlockNumber().call() == numbers[-1]
    assert fns.getL2OutputIndexAfter(0).call() == 0
    assert [fns.getL2OutputIndexAfter(n).call() for n in numbers] == [0, 1, 2]
    _reverts(fns.getL2OutputIndexAfter(numbers[-1] + 1), world["outsider"], "NoOutputAfter(uint256)")
    _reverts(fns.getL2Output(3), world["outsider"], "NoSuchOutput(uint256)")


def test_only_the_proposer_posts_increasing_nonempty_outputs(world: dict[str, Any]) -> None:
    fns = world["oracle"].functions
    latest = fns.latestBlockNumber().call()
    _reverts(fns.proposeL2Output(b"\x01" * 32, latest + 1), world["outsider"], "NotProposer()")
    _reverts(fns.proposeL2Output(b"\x01" * 32, latest + 1), world["challenger"], "NotProposer()")
    _reverts(fns.proposeL2Output(b"\x00" * 32, latest + 1), world["proposer"], "EmptyOutputRoot()")
    _reverts(fns.proposeL2Output(b"\x01" * 32, latest), world["proposer"], "BlockNumberNotIncreasing(uint256,uint256)")
    _reverts(fns.proposeL2Output(b"\x01" * 32, 1 << 128), world["proposer"], "BlockNumberTooLarge(uint256)")


def test_the_challenger_deletes_only_unfinalized_outputs(world: dict[str, Any]) -> None:
    """Last: it replaces output 2 and moves anvil's clock past the finalization period."""
    w3: Web3 = world["w3"]
    rpc: Rpc = world["rpc"]
    oracle, challenger = world["oracle"], world["challenger"]
    _reverts(oracle.functions.deleteL2Outputs(2), world["proposer"], "NotChallenger()")
    _reverts(oracle.functions.deleteL2Outputs(3), challenger, "NoSuchOutput(uint256)")
    receipt = _transact(w3, oracle.functions.deleteL2Outputs(2), challenger)
    (event,) = oracle.events.OutputsDeleted().process_receipt(receipt)
    assert (event["args"]["prevNextOutputIndex"], event["args"]["newNextOutputIndex"]) == (3, 2)
    _reverts(oracle.functions.getL2Output(2), world["outsider"], "NoSuchOutput(uint256)")
    with pytest.raises(OutputRootRefused) as info:
        _prove(world, 2)  # the array is only shortened: output 2's words are stale, above the count
    assert info.value.reason == REASON_NO_OUTPUT and "holds 2 outputs" in str(info.value)
    assert _prove(world, 1)[1].count == 2

    # the proposer posts the right root for that block again, and it proves
    number = world["posted"][2][1]
    _transact(w3, oracle.functions.proposeL2Output(_real_output_root(rpc, number), number), world["proposer"])
    _, posted = _prove(world, 2)
    verify_output_preimage(posted, rpc.header(number), bytes.fromhex(MESSAGE_PASSER[2:]), rpc.passer_proof(number))

    w3.provider.make_request("evm_increaseTime", [FINALIZATION_PERIOD_S + 1])  # type: ignore[arg-type]
    w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    _reverts(oracle.functions.deleteL2Outputs(0), challenger, "OutputFinalized(uint256)")
    _reverts(oracle.functions.deleteL2Outputs(2), challenger, "OutputFinalized(uint256)")
    assert oracle.functions.nextOutputIndex().call() == 3
