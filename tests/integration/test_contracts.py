"""The Solidity contracts against real anvil chains: message bytes and Merkle tree equal the Python ones,
checkpoint signatures from ``adapters.checkpoint`` verify, every forgery is refused with its custom error,
batches skip delivered ids, and a token homed on one chain makes the round trip L1 -> A -> B -> L1.

Two anvil processes (auto-mining) on free loopback ports: chain X hosts domain 1000 ("L1"); chain Y hosts
domains 2000 and 3000 (two mailboxes on one chain stand in for two rollups).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from web3 import HTTPProvider, Web3
from web3.exceptions import ContractLogicError
from web3.logs import DISCARD

from adapters.base import Checkpoint
from adapters.checkpoint import CheckpointSigner, pack_signatures, sorted_signatures
from adapters.evm import deploy
from adapters.evm.contracts import load_artifact
from adapters.merkle import ZERO_HASHES, MerkleTree, branch_root, multiproof, multiproof_root
from adapters.message import Message, address_to_bytes32, keccak256
from tests.integration.anvil import start_anvil

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]

# anvil's well-known dev keys (mnemonic "test test ... junk"). PUBLIC DEVNET TEST KEYS, worthless anywhere else.
DEV_KEYS = [
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
    "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba",
    "0x92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e",
    "0x4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356",
    "0xdbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97",
]
DEPLOYER_KEY = DEV_KEYS[0]
VALIDATOR_SIGNERS = [CheckpointSigner.from_hex(k) for k in DEV_KEYS[5:8]]  # devnet test keys
OUTSIDER_SIGNER = CheckpointSigner.from_hex(DEV_KEYS[8])  # devnet test key, not a validator
THRESHOLD = 2
L1, A, B = 1000, 2000, 3000
DISPATCH_TOPIC = "0x" + keccak256(b"Dispatch(bytes32,uint32,bytes)").hex()
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
GAS_REPORT: dict[str, int] = {}


# ---------------------------------------------------------------------------------------------- anvil


# anvil processes come from tests/integration/anvil.py


# ---------------------------------------------------------------------------------------------- world


@dataclass
class Domain:
    """One deployed core (mailbox, ISM, bridge, recipient) and the origin-side view of its tree."""

    domain: int
    w3: Web3
    addrs: dict[str, str]
    tree: MerkleTree = field(default_factory=MerkleTree)
    messages: list[bytes] = field(default_factory=list)
    next_block: int = 0

    def c(self, name: str, key: str) -> Any:
        return self.w3.eth.contract(address=self.addrs[key], abi=load_artifact(name).abi_list)

    @property
    def mailbox(self) -> Any:
        return self.c("Mailbox", "mailbox")

    @property
    def ism(self) -> Any:
        return self.c("MultisigIsm", "multisig_ism")

    @property
    def bridge(self) -> Any:
        return self.c("TokenBridge", "token_bridge")

    @property
    def recipient(self) -> Any:
        return self.c("TestRecipient", "test_recipient")

    @property
    def mailbox32(self) -> bytes:
        return address_to_bytes32(self.addrs["mailbox"])

    def sync(self) -> list[bytes]:
        """Read new Dispatch logs (in nonce order) into the local tree; returns the new raw messages."""
        latest = self.w3.eth.block_number
        logs = self.w3.eth.get_logs(
            {
                "address": self.addrs["mailbox"],
                "topics": [DISPATCH_TOPIC],
                "fromBlock": self.next_block,
                "toBlock": latest,
            }
        )
        self.next_block = latest + 1
        new = []
        for log in logs:
            (raw,) = abi_decode(["bytes"], bytes(log["data"]))
            msg = Message.decode(raw)
            assert msg.nonce == len(self.messages), "Dispatch logs out of nonce order"
            assert bytes(log["topics"][1]) == msg.id
            assert int.from_bytes(bytes(log["topics"][2]), "big") == msg.destination
            self.messages.append(raw)
            self.tree.append(msg.id)
            new.append(raw)
        return new

    def checkpoint(self, count: int | None = None) -> Checkpoint:
        count = self.tree.count if count is None else count
        return Checkpoint(self.domain, self.mailbox32, self.tree.root(count), count - 1)  # type: ignore[arg-type]

    def proof(self, raw: bytes, count: int | None = None) -> list[bytes]:
        return self.tree.proof(Message.decode(raw).nonce, count)

    def multiproof(self, raws: list[bytes], count: int | None = None) -> list[bytes]:
        """The multiproof of ``raws`` (increasing nonces) against the root of the first ``count`` leaves."""
        count = self.tree.count if count is None else count
        return multiproof(self.tree, [Message.decode(r).nonce for r in raws], count)


def sign(cp: Checkpoint, signers: list[CheckpointSigner]) -> bytes:
    return pack_signatures(sorted_signatures((s.address, s.sign(cp)) for s in signers))


def metadata(cp: Checkpoint, signatures: bytes, proof: list[bytes]) -> bytes:
    return abi_encode(
        ("bytes32", "bytes32", "uint32", "bytes", "bytes32[32]"),
        (cp.origin_mailbox, cp.root, cp.index, signatures, proof),
    )


def checkpoint_bytes(cp: Checkpoint, signatures: bytes) -> bytes:
    return abi_encode(
        ("bytes32", "bytes32", "uint32", "bytes"), (cp.origin_mailbox, cp.root, cp.index, signatures)
    )


def transact(w3: Web3, fn: Any, sender: str, gas: int | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {"from": sender}
    if gas is not None:
        params["gas"] = gas
    tx_hash = fn.transact(params)
    receipt = dict(w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30, poll_latency=0.02))
    assert receipt["status"] == 1, f"transaction reverted: {receipt}"
    return receipt


def error_selector(name: str) -> str:
    for contract in ("Mailbox", "MultisigIsm", "TokenBridge", "TestRecipient", "WrappedToken"):
        for entry in load_artifact(contract).abi:
            if entry.get("type") == "error" and entry["name"] == name:
                sig = f"{name}({','.join(i['type'] for i in entry['inputs'])})"
                return "0x" + keccak256(sig.encode())[:4].hex()
    raise KeyError(name)


def expect_revert(fn: Any, sender: str, error: str) -> str:
    """Calls ``fn`` (eth_call) and asserts it reverts with custom error ``error``; returns the revert data."""
    with pytest.raises(ContractLogicError) as info:
        fn.call({"from": sender})
    data = info.value.data
    assert isinstance(data, str) and data.startswith(error_selector(error)), (
        f"expected {error}, got {data!r} ({info.value})"
    )
    return data


@pytest.fixture(scope="module")
def world() -> Iterator[dict[str, Any]]:
    x, y = start_anvil(31337), None
    try:
        y = start_anvil(31338)
        w3x = Web3(HTTPProvider(x.url, request_kwargs={"timeout": 30}))
        w3y = Web3(HTTPProvider(y.url, request_kwargs={"timeout": 30}))
        deployer = w3x.eth.accounts[0]
        assert deployer == Web3().eth.account.from_key(DEPLOYER_KEY).address, "anvil dev accounts changed"
        domains = {
            L1: Domain(L1, w3x, deploy.deploy_core(w3x, DEPLOYER_KEY, L1)),
            A: Domain(A, w3y, deploy.deploy_core(w3y, DEPLOYER_KEY, A)),
        }
        domains[B] = Domain(B, w3y, deploy.deploy_core(w3y, DEPLOYER_KEY, B))
        validators = [s.address for s in VALIDATOR_SIGNERS]
        for d in domains.values():
            deploy.set_validators(
                d.w3, DEPLOYER_KEY, d.addrs["multisig_ism"], [L1, A, B], validators, THRESHOLD
            )
            remotes = {o.domain: o.addrs["token_bridge"] for o in domains.values() if o.domain != d.domain}
            deploy.enroll_remote_bridges(d.w3, DEPLOYER_KEY, d.addrs["token_bridge"], remotes)
        for d in domains.values():
            d.next_block = d.w3.eth.block_number + 1
        yield {
            "domains": domains,
            "user": w3x.eth.accounts[3],
            "user2": w3x.eth.accounts[4],
            "deployer": deployer,
        }
    finally:
        for node in (x, y):
            if node is not None:
                node.stop()
        if GAS_REPORT:
            print("\ngas used:", json.dumps(GAS_REPORT))


def dispatch_to_recipient(origin: Domain, dest: Domain, sender: str, bodies: list[bytes]) -> list[bytes]:
    recipient = address_to_bytes32(dest.addrs["test_recipient"])
    n = len(bodies)
    transact(
        origin.w3, origin.mailbox.functions.dispatchBatch([dest.domain] * n, [recipient] * n, bodies), sender
    )
    return origin.sync()


# ---------------------------------------------------------------------------------------------- tests


def test_artifacts_match_a_fresh_solcjs_compile() -> None:
    if shutil.which("node") is None:
        pytest.fail("node not installed: Node 20 is required to recompile the contracts")
    result = subprocess.run(
        ["node", "scripts/compile-contracts.mjs", "--check"],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr + result.stdout


def test_dispatch_builds_the_message_and_tree_the_python_side_computes(world: dict[str, Any]) -> None:
    l1, a = world["domains"][L1], world["domains"][A]
    user = world["user"]
    assert l1.mailbox.functions.count().call() == 0
    assert l1.mailbox.functions.root().call() == MerkleTree().root()
    recipient = address_to_bytes32(a.addrs["test_recipient"])
    transact(l1.w3, l1.mailbox.functions.dispatch(A, recipient, b"hello"), user)
    bodies = [bytes([i]) * i for i in range(1, 8)] + [b""]
    transact(
        l1.w3, l1.mailbox.functions.dispatchBatch([A] * len(bodies), [recipient] * len(bodies), bodies), user
    )
    raws = l1.sync()
    assert len(raws) == 1 + len(bodies)
    for nonce, (raw, body) in enumerate(zip(raws, [b"hello", *bodies], strict=True)):
        msg = Message.decode(raw)
        assert (msg.version, msg.nonce, msg.origin, msg.destination) == (1, nonce, L1, A)
        assert msg.sender == address_to_bytes32(user) and msg.recipient == recipient and msg.body == body
    count = l1.mailbox.functions.count().call()
    assert count == l1.tree.count == 9
    assert l1.mailbox.functions.root().call() == l1.tree.root()
    assert l1.mailbox.functions.latestCheckpoint().call() == [l1.tree.root(), count]
    # the tree stays equal across sizes that carry across several levels
    for n in (7, 16, 1):
        dispatch_to_recipient(l1, a, user, [b"x%d" % i for i in range(n)])
        assert l1.mailbox.functions.root().call() == l1.tree.root()
        assert l1.mailbox.functions.count().call() == l1.tree.count


def test_checkpoint_digest_matches_python(world: dict[str, Any]) -> None:
    from adapters.checkpoint import checkpoint_digest

    a = world["domains"][A]
    cp = Checkpoint(L1, b"\x11" * 32, b"\x22" * 32, 41)  # type: ignore[arg-type]
    assert a.ism.functions.checkpointDigest(
        cp.origin, cp.origin_mailbox, cp.root, cp.index
    ).call() == checkpoint_digest(cp)
    validators, threshold = a.ism.functions.validatorsAndThreshold(L1).call()
    assert [v.lower() for v in validators] == [
        s.address for s in VALIDATOR_SIGNERS
    ] and threshold == THRESHOLD


def test_process_delivers_once_and_refuses_a_replay(world: dict[str, Any]) -> None:
    l1, a = world["domains"][L1], world["domains"][A]
    user = world["user"]
    (raw,) = dispatch_to_recipient(l1, a, user, [b"single delivery"])
    msg = Message.decode(raw)
    cp = l1.checkpoint()
    meta = metadata(cp, sign(cp, VALIDATOR_SIGNERS[:2]), l1.proof(raw))
    assert a.ism.functions.verify(meta, raw).call() is True
    before = a.recipient.functions.received().call()
    receipt = transact(a.w3, a.mailbox.functions.process(meta, raw), user)
    GAS_REPORT["process"] = receipt["gasUsed"]
    assert a.recipient.functions.received().call() == before + 1
    assert a.mailbox.functions.delivered(msg.id).call() is True
    assert a.mailbox.functions.deliveredMany([msg.id, b"\0" * 32]).call() == [True, False]
    received = a.recipient.events.Received().process_receipt(receipt, errors=DISCARD)
    assert (
        len(received) == 1 and received[0]["args"]["origin"] == L1 and received[0]["args"]["body"] == msg.body
    )
    assert received[0]["args"]["sender"] == address_to_bytes32(user)
    processed = a.mailbox.events.Process().process_receipt(receipt, errors=DISCARD)
    assert [(p["args"]["id"], p["args"]["origin"]) for p in processed] == [(msg.id, L1)]
    data = expect_revert(a.mailbox.functions.process(meta, raw), user, "AlreadyDelivered")
    assert data.endswith(msg.id.hex())
    # an older checkpoint (taken before later messages) still proves it; still a replay
    old_meta = metadata(
        l1.checkpoint(msg.nonce + 1),
        sign(l1.checkpoint(msg.nonce + 1), VALIDATOR_SIGNERS[1:]),
        l1.proof(raw, msg.nonce + 1),
    )
    expect_revert(a.mailbox.functions.process(old_meta, raw), user, "AlreadyDelivered")


def test_forgeries_are_refused_with_precise_errors(world: dict[str, Any]) -> None:
    l1, a, b = world["domains"][L1], world["domains"][A], world["domains"][B]
    user = world["user"]
    raws = dispatch_to_recipient(l1, a, user, [b"victim", b"later"])
    raw = raws[0]
    cp = l1.checkpoint()
    proof = l1.proof(raw)
    v0, v1, v2 = VALIDATOR_SIGNERS
    by_addr = sorted(VALIDATOR_SIGNERS, key=lambda s: int(s.address, 16))
    process = a.mailbox.functions.process

    # one validator plus a non-validator key: the outsider is named
    forged = sign(cp, [v0, OUTSIDER_SIGNER])
    data = expect_revert(process(metadata(cp, forged, proof), raw), user, "UnknownSigner")
    assert data.endswith(OUTSIDER_SIGNER.address[2:].lower())
    # below threshold
    expect_revert(process(metadata(cp, sign(cp, [v2]), proof), raw), user, "ThresholdNotMet")
    expect_revert(process(metadata(cp, b"", proof), raw), user, "ThresholdNotMet")
    # the same validator twice
    one = v1.sign(cp)
    expect_revert(process(metadata(cp, one + one, proof), raw), user, "SignersNotSorted")
    # descending order
    desc = b"".join(s.sign(cp) for s in reversed(by_addr[:2]))
    expect_revert(process(metadata(cp, desc, proof), raw), user, "SignersNotSorted")
    # truncated signature bytes
    expect_revert(process(metadata(cp, sign(cp, [v0, v1])[:-1], proof), raw), user, "InvalidSignatureLength")
    # high-s twin of a valid signature (malleability) and a bad v
    good = by_addr[0].sign(cp)
    s_value = int.from_bytes(good[32:64], "big")
    twin = good[:32] + (SECP256K1_N - s_value).to_bytes(32, "big") + bytes([55 - good[64]])
    rest = by_addr[1].sign(cp)
    expect_revert(process(metadata(cp, twin + rest, proof), raw), user, "InvalidSignature")
    expect_revert(process(metadata(cp, good[:64] + bytes([29]) + rest, proof), raw), user, "InvalidSignature")
    # signatures valid, but for another root than the one the metadata claims
    other = Checkpoint(cp.origin, cp.origin_mailbox, b"\x33" * 32, cp.index)
    expect_revert(process(metadata(cp, sign(other, [v0, v1]), proof), raw), user, "UnknownSigner")
    # wrong Merkle proof (a sibling flipped) and the right proof for the other message
    bad_proof = list(proof)
    bad_proof[3] = b"\x44" * 32
    good_sigs = sign(cp, [v0, v2])
    data = expect_revert(process(metadata(cp, good_sigs, bad_proof), raw), user, "InvalidProof")
    assert data.endswith(Message.decode(raw).id.hex())
    expect_revert(process(metadata(cp, good_sigs, l1.proof(raws[1])), raw), user, "InvalidProof")
    # a checkpoint from before the message existed
    early = l1.checkpoint(Message.decode(raw).nonce)
    expect_revert(
        process(metadata(early, sign(early, [v0, v1]), l1.proof(raws[0])), raw), user, "LeafNotInCheckpoint"
    )
    # message for another domain, unknown version, unknown origin
    expect_revert(b.mailbox.functions.process(metadata(cp, good_sigs, proof), raw), user, "WrongDestination")
    expect_revert(process(metadata(cp, good_sigs, proof), b"\x02" + raw[1:]), user, "InvalidVersion")
    stranger = Message(1, 0, 4242, b"\0" * 32, A, raw[49:81], b"").encode()  # type: ignore[arg-type]
    expect_revert(process(metadata(cp, good_sigs, proof), stranger), user, "NoValidatorSet")
    expect_revert(process(metadata(cp, good_sigs, proof), raw[:80]), user, "MessageTooShort")
    # the genuine one still goes through afterwards
    transact(a.w3, process(metadata(cp, good_sigs, proof), raw), user)
    assert a.mailbox.functions.delivered(Message.decode(raw).id).call() is True


def test_process_batch_delivers_and_skips_already_delivered(world: dict[str, Any]) -> None:
    l1, a = world["domains"][L1], world["domains"][A]
    user, relayer = world["user"], world["user2"]
    raws = dispatch_to_recipient(l1, a, user, [b"batch %d" % i for i in range(10)])
    cp = l1.checkpoint()
    ckpt = checkpoint_bytes(cp, sign(cp, VALIDATOR_SIGNERS))  # 3 of 3 is fine too
    proof = l1.multiproof(raws)
    assert len(proof) < 32  # ten neighbours share almost every sibling
    # a relayer delivers three of them one by one first
    for raw in raws[:3]:
        transact(
            a.w3,
            a.mailbox.functions.process(metadata(cp, sign(cp, VALIDATOR_SIGNERS[:2]), l1.proof(raw)), raw),
            relayer,
        )
    before = a.recipient.functions.received().call()
    # the delivered three are skipped, but their leaves still count in the proof
    fn = a.mailbox.functions.processBatch(ckpt, raws, proof)
    assert fn.call({"from": user}) == 7
    receipt = transact(a.w3, fn, user)
    processed = a.mailbox.events.Process().process_receipt(receipt, errors=DISCARD)
    assert [p["args"]["id"] for p in processed] == [Message.decode(r).id for r in raws[3:]]
    assert a.recipient.functions.received().call() == before + 7
    assert a.mailbox.functions.deliveredMany([Message.decode(r).id for r in raws]).call() == [True] * 10
    # the racing relayer's identical batch: no revert, nothing delivered, no event
    receipt = transact(a.w3, a.mailbox.functions.processBatch(ckpt, raws, proof), relayer)
    assert a.mailbox.events.Process().process_receipt(receipt, errors=DISCARD) == ()
    assert a.recipient.functions.received().call() == before + 7


def test_process_batch_multiproof_contiguous_and_scattered(world: dict[str, Any]) -> None:
    l1, a = world["domains"][L1], world["domains"][A]
    user = world["user"]
    base = l1.tree.count
    raws = dispatch_to_recipient(l1, a, user, [b"m%d" % i for i in range(12)])
    cp = l1.checkpoint()
    ckpt = checkpoint_bytes(cp, sign(cp, VALIDATOR_SIGNERS[:2]))
    ids = [Message.decode(r).id for r in raws]
    batch = a.mailbox.functions.processBatch

    def deliver(chosen: list[bytes], count: int | None = None) -> None:
        c = l1.checkpoint(count)
        k = checkpoint_bytes(c, sign(c, VALIDATOR_SIGNERS[1:]))
        proof = l1.multiproof(chosen, count)
        assert a.ism.functions.verifyBatch(k, chosen, proof).call() is True
        receipt = transact(a.w3, batch(k, chosen, proof), user)
        processed = a.mailbox.events.Process().process_receipt(receipt, errors=DISCARD)
        assert [p["args"]["id"] for p in processed] == [Message.decode(r).id for r in chosen]

    # scattered: nonces 0, 3, 4, 9 of these 12
    deliver([raws[i] for i in (0, 3, 4, 9)])
    # contiguous run, proven under an older checkpoint whose last leaf is in the run (zero hashes on the right)
    deliver(raws[5:9], base + 9)
    # a single message, the newest one
    deliver([raws[11]])
    # the rest (1, 2, 10 and one that is in already: 9) against the latest checkpoint
    rest = [raws[i] for i in (1, 2, 9, 10)]
    assert batch(ckpt, rest, l1.multiproof(rest)).call({"from": user}) == 3
    transact(a.w3, batch(ckpt, rest, l1.multiproof(rest)), user)
    assert a.mailbox.functions.deliveredMany(ids).call() == [True] * 12


def test_process_batch_refusals(world: dict[str, Any]) -> None:
    l1, a, b = world["domains"][L1], world["domains"][A], world["domains"][B]
    user = world["user"]
    raws = dispatch_to_recipient(l1, a, user, [b"r%d" % i for i in range(12)])
    chosen = [raws[i] for i in (0, 3, 4, 9)]
    cp = l1.checkpoint()
    sigs = sign(cp, VALIDATOR_SIGNERS[:2])
    ckpt = checkpoint_bytes(cp, sigs)
    proof = l1.multiproof(chosen)
    batch = a.mailbox.functions.processBatch
    # forged: each hash in turn flipped
    for k in range(len(proof)):
        forged = list(proof)
        forged[k] = b"\x55" * 32
        data = expect_revert(batch(ckpt, chosen, forged), user, "InvalidProof")
        assert data.endswith("00" * 32)
    # short and long
    expect_revert(batch(ckpt, chosen, proof[:-1]), user, "ProofLengthMismatch")
    expect_revert(batch(ckpt, chosen, []), user, "ProofLengthMismatch")
    expect_revert(batch(ckpt, chosen, [*proof, b"\0" * 32]), user, "ProofLengthMismatch")
    expect_revert(batch(ckpt, chosen, [*proof, proof[0]]), user, "ProofLengthMismatch")
    # unsorted, and one message twice
    swapped = [chosen[0], chosen[2], chosen[1], chosen[3]]
    data = expect_revert(batch(ckpt, swapped, proof), user, "NoncesNotIncreasing")
    assert int(data[-64:], 16) == 2
    data = expect_revert(batch(ckpt, [chosen[0], chosen[1], chosen[1]], proof), user, "NoncesNotIncreasing")
    assert int(data[-64:], 16) == 2
    # a message swapped for another: a neighbour (same proof length) or a forged body at the same nonce
    neighbour = [raws[0], raws[3], raws[5], raws[9]]
    expect_revert(batch(ckpt, neighbour, proof), user, "InvalidProof")
    msg = Message.decode(chosen[1])
    fake = Message(msg.version, msg.nonce, msg.origin, msg.sender, msg.destination, msg.recipient, b"forged").encode()
    expect_revert(batch(ckpt, [chosen[0], fake, *chosen[2:]], proof), user, "InvalidProof")
    # the proof of another subset
    expect_revert(batch(ckpt, chosen, l1.multiproof([raws[i] for i in (0, 3, 4, 8)])), user, "InvalidProof")
    # a message past the checkpoint
    early = l1.checkpoint(l1.tree.count - 3)
    expect_revert(
        batch(checkpoint_bytes(early, sign(early, VALIDATOR_SIGNERS[:2])), chosen, proof),
        user,
        "LeafNotInCheckpoint",
    )
    # signatures
    expect_revert(
        batch(checkpoint_bytes(cp, sign(cp, [VALIDATOR_SIGNERS[0]])), chosen, proof), user, "ThresholdNotMet"
    )
    expect_revert(
        batch(checkpoint_bytes(cp, sign(cp, [VALIDATOR_SIGNERS[0], OUTSIDER_SIGNER])), chosen, proof),
        user,
        "UnknownSigner",
    )
    one = VALIDATOR_SIGNERS[0].sign(cp)
    expect_revert(batch(checkpoint_bytes(cp, one + one), chosen, proof), user, "SignersNotSorted")
    expect_revert(a.ism.functions.verifyBatch(ckpt, [], []), user, "EmptyBatch")
    # a message from another origin in the same batch (its nonce on B is below the checkpoint index)
    (from_b,) = dispatch_to_recipient(b, a, user, [b"from B"])
    assert Message.decode(from_b).nonce < Message.decode(chosen[0]).nonce
    expect_revert(batch(ckpt, [*chosen, from_b], proof), user, "MixedOrigins")
    expect_revert(a.ism.functions.verifyBatch(ckpt, [*chosen, from_b], proof), user, "MixedOrigins")
    # a handler that reverts reverts the whole batch; once fixed the batch goes through
    deployer = world["deployer"]
    transact(a.w3, a.recipient.functions.setRevert(True), deployer)
    expect_revert(batch(ckpt, chosen, proof), user, "RecipientReverted")
    transact(a.w3, a.recipient.functions.setRevert(False), deployer)
    assert batch(ckpt, chosen, proof).call({"from": user}) == 4
    assert batch(ckpt, [], []).call({"from": user}) == 0


def test_zero_hash_constants_match_python() -> None:
    import re

    source = (ROOT / "contracts" / "src" / "Merkle.sol").read_text()
    found = {int(i): bytes.fromhex(h)
             for i, h in re.findall(r"bytes32 internal constant Z(\d+) = 0x([0-9a-f]{64});", source)}
    assert found == dict(enumerate(ZERO_HASHES))
    assert "return [" + ", ".join(f"Z{i}" for i in range(33)) + "];" in source


def test_batch_gas(world: dict[str, Any]) -> None:
    l1, a = world["domains"][L1], world["domains"][A]
    user = world["user"]
    raws: list[bytes] = []
    for k in range(6):  # 550 messages with 64-byte bodies, in several origin txs
        raws += dispatch_to_recipient(l1, a, user, [keccak256(b"%d" % i) * 2
                                                    for i in range(100 * k, 100 * k + 100)][: 550 - 100 * k])
    assert len(raws) == 550
    cp = l1.checkpoint()
    ckpt = checkpoint_bytes(cp, sign(cp, VALIDATOR_SIGNERS[:2]))
    runs = (
        ("processBatch_50", raws[:50]),
        ("processBatch_100", raws[50:150]),
        ("processBatch_200", raws[150:350]),
        ("processBatch_100_scattered", raws[350:550:2]),
    )
    for label, chunk in runs:
        proof = l1.multiproof(chunk)
        receipt = transact(a.w3, a.mailbox.functions.processBatch(ckpt, chunk, proof), user, gas=25_000_000)
        assert len(a.mailbox.events.Process().process_receipt(receipt, errors=DISCARD)) == len(chunk)
        GAS_REPORT[label] = receipt["gasUsed"]
        GAS_REPORT[label + "_per_message"] = receipt["gasUsed"] // len(chunk)
        GAS_REPORT[label + "_proof_hashes"] = len(proof)
    assert GAS_REPORT["processBatch_100_per_message"] < 50_000, GAS_REPORT


def test_token_round_trip_l1_a_b_l1(world: dict[str, Any]) -> None:
    domains: dict[int, Domain] = world["domains"]
    l1, a, b = domains[L1], domains[A], domains[B]
    user, other = world["user"], world["user2"]
    token_addr = deploy.deploy_test_token(l1.w3, DEPLOYER_KEY, "Test Token", "TST", 18, 10**24)
    deploy.mint_test_token(l1.w3, DEPLOYER_KEY, token_addr, user, 1000 * 10**18)
    home = address_to_bytes32(token_addr)
    wrapped = {
        d.domain: deploy.create_wrapped_token(
            d.w3, DEPLOYER_KEY, d.addrs["token_bridge"], L1, token_addr, "Wrapped TST", "wTST", 18
        )
        for d in (a, b)
    }
    erc20 = load_artifact("TestToken").abi_list
    wabi = load_artifact("WrappedToken").abi_list
    tst = l1.w3.eth.contract(address=token_addr, abi=erc20)
    w_a = a.w3.eth.contract(address=wrapped[A], abi=wabi)
    w_b = b.w3.eth.contract(address=wrapped[B], abi=wabi)
    assert w_a.functions.bridge().call() == a.addrs["token_bridge"]
    assert a.bridge.functions.wrappedToken(L1, home).call() == wrapped[A]
    assert a.bridge.functions.homeOf(wrapped[A]).call() == [L1, home]
    supply = tst.functions.totalSupply().call()
    # the routes this round trip takes (same decimals everywhere: scale 1, no maximum)
    deploy.enroll_routes(l1.w3, DEPLOYER_KEY, l1.addrs["token_bridge"], [deploy.RouteSpec(A, token_addr)])
    deploy.enroll_routes(a.w3, DEPLOYER_KEY, a.addrs["token_bridge"], [deploy.RouteSpec(B, wrapped[A])])
    deploy.enroll_routes(b.w3, DEPLOYER_KEY, b.addrs["token_bridge"], [deploy.RouteSpec(L1, wrapped[B])])

    def relay(origin: Domain, dest: Domain) -> None:
        new = origin.sync()
        assert new, "nothing dispatched"
        cp = origin.checkpoint()
        ckpt = checkpoint_bytes(cp, sign(cp, VALIDATOR_SIGNERS[1:]))
        transact(
            dest.w3, dest.mailbox.functions.processBatch(ckpt, new, origin.multiproof(new)), other
        )

    def locked() -> int:
        return int(tst.functions.balanceOf(l1.addrs["token_bridge"]).call())

    # L1 -> A: lock 100 on L1, mint 100 wrapped on A
    amount = 100 * 10**18
    transact(l1.w3, tst.functions.approve(l1.addrs["token_bridge"], amount), user)
    receipt = transact(
        l1.w3, l1.bridge.functions.transferRemote(token_addr, A, address_to_bytes32(user), amount), user
    )
    sent = l1.bridge.events.SentTransferRemote().process_receipt(receipt, errors=DISCARD)
    assert sent[0]["args"]["destination"] == A and sent[0]["args"]["amount"] == amount
    relay(l1, a)
    assert locked() == amount and w_a.functions.balanceOf(user).call() == amount
    # A -> B: burn 60 on A, mint 60 on B (to another holder)
    transact(
        a.w3, a.bridge.functions.transferRemote(wrapped[A], B, address_to_bytes32(other), 60 * 10**18), user
    )
    relay(a, b)
    assert w_a.functions.totalSupply().call() == 40 * 10**18
    assert w_b.functions.balanceOf(other).call() == 60 * 10**18
    assert locked() == w_a.functions.totalSupply().call() + w_b.functions.totalSupply().call()
    # B -> L1: burn 60 on B, unlock 60 on L1
    balance_before = tst.functions.balanceOf(other).call()
    receipt = transact(
        b.w3, b.bridge.functions.transferRemote(wrapped[B], L1, address_to_bytes32(other), 60 * 10**18), other
    )
    relay(b, l1)
    assert tst.functions.balanceOf(other).call() == balance_before + 60 * 10**18
    assert w_b.functions.totalSupply().call() == 0
    assert locked() == 40 * 10**18 == w_a.functions.totalSupply().call()
    assert tst.functions.totalSupply().call() == supply
    # refusals: no remote bridge, unknown wrapped token on the receiving side, only the mailbox may call handle
    expect_revert(
        l1.bridge.functions.transferRemote(token_addr, 777, address_to_bytes32(user), 1),
        user,
        "NoRemoteBridge",
    )
    body = abi_encode(("uint32", "bytes32", "bytes32", "uint256"), (L1, home, address_to_bytes32(user), 1))
    expect_revert(
        a.bridge.functions.handle(L1, address_to_bytes32(l1.addrs["token_bridge"]), body), user, "NotMailbox"
    )
    expect_revert(w_a.functions.mint(user, 1), user, "NotBridge")
    expect_revert(
        a.bridge.functions.createWrapped(L1, home, "x", "x", 18), world["deployer"], "WrappedExists"
    )


COSMOS, SOLANA = 6000, 5000  # foreign destinations: TST has 6 decimals on one, 9 (u64 amounts) on the other
U64_MAX = 2**64 - 1


def send_reverting(w3: Web3, fn: Any, sender: str, gas: int = 400_000) -> dict[str, Any]:
    """Sends ``fn`` as a real transaction with a fixed gas limit (no estimate that would refuse it first) and
    returns its mined receipt, which must show a revert."""
    tx_hash = fn.transact({"from": sender, "gas": gas})
    receipt = dict(w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30, poll_latency=0.02))
    assert receipt["status"] == 0, f"transaction did not revert: {receipt}"
    return receipt


def test_transfer_remote_refuses_what_the_destination_cannot_represent(world: dict[str, Any]) -> None:
    """Routes: to A unscaled and unbounded, to Cosmos in multiples of 10**12 (6 decimals there), to Solana in
    multiples of 10**9 up to u64 max x 10**9. A non-representable amount, an amount above the maximum, a token
    without a route and a route-less destination revert on chain before anything is locked; representable
    amounts go through."""
    domains: dict[int, Domain] = world["domains"]
    l1 = domains[L1]
    user, deployer = world["user"], world["deployer"]
    bridge_addr = l1.addrs["token_bridge"]
    token_addr = deploy.deploy_test_token(l1.w3, DEPLOYER_KEY, "Route Token", "RTK", 18, 10**40)
    deploy.mint_test_token(l1.w3, DEPLOYER_KEY, token_addr, user, 10**39)
    unrouted = deploy.deploy_test_token(l1.w3, DEPLOYER_KEY, "No Route", "NRT", 18, 10**24)
    deploy.mint_test_token(l1.w3, DEPLOYER_KEY, unrouted, user, 10**21)
    tst = l1.w3.eth.contract(address=token_addr, abi=load_artifact("TestToken").abi_list)
    nrt = l1.w3.eth.contract(address=unrouted, abi=load_artifact("TestToken").abi_list)
    deploy.enroll_remote_bridges(l1.w3, DEPLOYER_KEY, bridge_addr, {COSMOS: "0x" + "c0" * 32, SOLANA: "0x" + "50" * 32})
    solana_max = deploy.route_max(10**9, U64_MAX)
    deploy.enroll_routes(l1.w3, DEPLOYER_KEY, bridge_addr, [
        deploy.RouteSpec(A, token_addr),
        deploy.RouteSpec(COSMOS, token_addr, deploy.route_scale(18, 6)),
        deploy.RouteSpec(SOLANA, token_addr, deploy.route_scale(18, 9), solana_max),
    ])
    bridge = l1.bridge
    assert bridge.functions.routes(A, token_addr).call() == [1, deploy.ROUTE_UNBOUNDED]
    assert bridge.functions.routes(COSMOS, token_addr).call() == [10**12, deploy.ROUTE_UNBOUNDED]
    assert bridge.functions.routes(SOLANA, token_addr).call() == [10**9, U64_MAX * 10**9]
    assert bridge.functions.routes(SOLANA, unrouted).call() == [0, 0]
    enrolled = bridge.events.RouteEnrolled().get_logs(from_block=0)
    assert {(e["args"]["destination"], e["args"]["token"], e["args"]["scale"]) for e in enrolled} >= {
        (A, token_addr, 1), (COSMOS, token_addr, 10**12), (SOLANA, token_addr, 10**9)}
    approve = 10**39
    transact(l1.w3, tst.functions.approve(bridge_addr, approve), user)
    transact(l1.w3, nrt.functions.approve(bridge_addr, approve), user)
    to = address_to_bytes32(user)

    def balances() -> tuple[int, int, int, int]:
        return (int(tst.functions.balanceOf(user).call()), int(tst.functions.balanceOf(bridge_addr).call()),
                int(nrt.functions.balanceOf(user).call()), int(nrt.functions.balanceOf(bridge_addr).call()))

    refused = [
        (token_addr, COSMOS, 10**18 + 10**8, "AmountNotRepresentable"),  # 1.0000000001 TST: finer than uxtst
        (token_addr, COSMOS, 1, "AmountNotRepresentable"),
        (token_addr, SOLANA, 10**18 + 1, "AmountNotRepresentable"),  # finer than 9 decimals
        (token_addr, SOLANA, solana_max + 10**9, "AmountAboveRouteMax"),  # a multiple of the scale, over u64
        (unrouted, A, 10**18, "NoRoute"),  # a token the bridge has no route for
        (unrouted, COSMOS, 10**18, "NoRoute"),
        (token_addr, B, 10**18, "NoRoute"),  # a bridged destination this token has no route to
    ]
    before = balances()
    for token, destination, amount, error in refused:
        call = bridge.functions.transferRemote(token, destination, to, amount)
        data = expect_revert(call, user, error)
        if error == "AmountNotRepresentable":
            assert abi_decode(["uint32", "address", "uint256", "uint256"], bytes.fromhex(data[10:]))[2:] == (
                amount, 10**12 if destination == COSMOS else 10**9)
        receipt = send_reverting(l1.w3, call, user)
        assert not bridge.events.SentTransferRemote().process_receipt(receipt, errors=DISCARD)
        assert balances() == before, f"{error}: something moved"
    sent_before = l1.mailbox.functions.count().call()
    # representable amounts go through and lock exactly what was sent
    for destination, amount in ((COSMOS, 10**18 + 10**12), (SOLANA, 10**18 + 10**9), (SOLANA, solana_max),
                                (A, 10**18 + 1)):
        receipt = transact(l1.w3, bridge.functions.transferRemote(token_addr, destination, to, amount), user)
        sent = bridge.events.SentTransferRemote().process_receipt(receipt, errors=DISCARD)
        assert [(e["args"]["destination"], e["args"]["amount"]) for e in sent] == [(destination, amount)]
        GAS_REPORT.setdefault(f"transferRemote_lock_to_{destination}", receipt["gasUsed"])
    total = 10**18 + 10**12 + 10**18 + 10**9 + solana_max + 10**18 + 1
    assert balances() == (before[0] - total, before[1] + total, before[2], before[3])
    assert l1.mailbox.functions.count().call() == sent_before + 4
    l1.sync()
    # only the owner enrols or removes routes; a route is at least one unit and its max at least its scale
    expect_revert(bridge.functions.enrollRoute(COSMOS, unrouted, 1, deploy.ROUTE_UNBOUNDED), user, "NotOwner")
    expect_revert(bridge.functions.removeRoute(COSMOS, token_addr), user, "NotOwner")
    expect_revert(bridge.functions.enrollRoute(COSMOS, unrouted, 0, 1), deployer, "InvalidRoute")
    expect_revert(bridge.functions.enrollRoute(COSMOS, unrouted, 10, 9), deployer, "InvalidRoute")
    receipt = transact(l1.w3, bridge.functions.removeRoute(COSMOS, token_addr), deployer)
    assert bridge.events.RouteRemoved().process_receipt(receipt, errors=DISCARD)[0]["args"]["token"] == token_addr
    expect_revert(bridge.functions.transferRemote(token_addr, COSMOS, to, 10**18), user, "NoRoute")


def test_merkle_proofs_from_python_match_on_chain_branch(world: dict[str, Any]) -> None:
    """Sanity for the helper itself: every proof we hand the ISM leads to the tree root in Python too."""
    l1 = world["domains"][L1]
    l1.sync()
    count = l1.tree.count
    for raw in l1.messages[:: max(1, count // 20)]:
        msg = Message.decode(raw)
        assert branch_root(msg.id, l1.tree.proof(msg.nonce), msg.nonce) == l1.tree.root()
    picked = l1.messages[1 :: max(1, count // 20)]
    leaves = [(Message.decode(r).nonce, Message.decode(r).id) for r in picked]
    assert multiproof_root(leaves, l1.multiproof(picked), count) == l1.tree.root()


def test_on_chain_multiproof_walk_matches_python_for_every_subset_of_small_trees(world: dict[str, Any]) -> None:
    """verifyBatch (eth_call) against multiproof() for every non-empty subset of the first 1..7 leaves of L1."""
    l1, a = world["domains"][L1], world["domains"][A]
    msgs = [m for m in l1.messages[:7] if Message.decode(m).destination == A]
    assert len(msgs) == 7
    for count in range(1, 8):
        cp = l1.checkpoint(count)
        ckpt = checkpoint_bytes(cp, sign(cp, VALIDATOR_SIGNERS[:2]))
        for mask in range(1, 1 << count):
            chosen = [msgs[i] for i in range(count) if mask >> i & 1]
            assert a.ism.functions.verifyBatch(ckpt, chosen, l1.multiproof(chosen, count)).call() is True
