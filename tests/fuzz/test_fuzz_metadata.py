"""Metadata decoding never crashes: checkpoints and signatures served by validators, Merkle (multi)proofs,
delivery calldata pieces read back from the chain (Dispatch log data, deliveredMany results, revert data),
co-sign requests and the Solana/Cosmos memos. Each gives its value or the project's typed error."""

from __future__ import annotations

import base64
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.base import Checkpoint, CosignRequest
from adapters.bridge_memo import (
    DELIVERY_PREFIX,
    DISPATCH_PREFIX,
    MemoFormatError,
    TokenBody,
    decode_delivery_memo,
    decode_dispatch_memo,
    encode_delivery_memo,
    encode_dispatch_memo,
)
from adapters.checkpoint import CheckpointSigner, checkpoint_from_json, recover_signer
from adapters.cosmos import memo as cosmos_memo
from adapters.evm.abi import ErrorTable, decode_bool_array, decode_single_bytes, selector
from adapters.merkle import TREE_DEPTH, MerkleTree, branch_root, multiproof, multiproof_root
from adapters.message import Domain, MessageFormatError
from config.errors import RelayerError

FUZZ = settings.get_profile("fuzz")
SIGNER = CheckpointSigner(bytes.fromhex("8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba"))
CP = Checkpoint(Domain(1000), b"\x11" * 32, b"\x22" * 32, 7)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=80),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
hexish = st.one_of(st.text(alphabet="0123456789abcdefABCDEFx", max_size=140), st.text(max_size=20))


def _checkpoint_doc(draw_from: st.DataObject) -> dict[str, Any]:
    good: dict[str, Any] = {"validator": SIGNER.address, "origin": 1000, "origin_mailbox": "0x" + "11" * 32,
                            "root": "0x" + "22" * 32, "index": 7, "signature": "0x" + SIGNER.sign(CP).hex()}
    key = draw_from.draw(st.sampled_from([*good, "extra"]))
    doc = dict(good)
    action = draw_from.draw(st.sampled_from(["drop", "junk", "hexish"]))
    if action == "drop":
        doc.pop(key, None)
    elif action == "junk":
        doc[key] = draw_from.draw(json_values)
    else:
        doc[key] = draw_from.draw(hexish)
    return doc


@FUZZ
@given(st.data())
def test_checkpoint_documents(data):
    doc = _checkpoint_doc(data)
    try:
        cp, sig = checkpoint_from_json(doc, origin=1000)
    except MessageFormatError as exc:
        assert str(exc)
        return
    try:
        recover_signer(cp, sig)
    except MessageFormatError:
        pass


@FUZZ
@given(json_values)
def test_checkpoint_documents_of_any_shape(doc):
    try:
        checkpoint_from_json(doc, origin=1000)
    except MessageFormatError as exc:
        assert str(exc)


def test_checkpoint_document_round_trip():
    doc = {"origin_mailbox": "0x" + "11" * 32, "root": "0x" + "22" * 32, "index": 7,
           "signature": "0x" + SIGNER.sign(CP).hex()}
    cp, sig = checkpoint_from_json(doc, origin=1000)
    assert cp == CP and recover_signer(cp, sig) == SIGNER.address


@FUZZ
@given(st.binary(max_size=80), st.sampled_from([27, 28, 0, 1, 255]))
def test_signatures(raw, v):
    for sig in (raw, raw[:64].ljust(64, b"\0") + bytes([v])):
        try:
            recover_signer(CP, sig)
        except MessageFormatError as exc:
            assert str(exc)


@FUZZ
@given(st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=20), st.data())
def test_multiproofs_valid_and_mutated(leaves, data):
    tree = MerkleTree(leaves)
    count = len(leaves)
    indices = sorted(data.draw(st.sets(st.integers(0, count - 1), min_size=1, max_size=count)))
    proof = multiproof(tree, indices, count)
    assert multiproof_root([(i, leaves[i]) for i in indices], proof, count) == tree.root(count)
    mutated = list(proof)
    op = data.draw(st.sampled_from(["drop", "add", "junk", "indices"]))
    fake_indices = list(indices)
    if op == "drop" and mutated:
        mutated.pop(data.draw(st.integers(0, len(mutated) - 1)))
    elif op == "add":
        mutated.append(data.draw(st.binary(max_size=40)))
    elif op == "junk":
        mutated = data.draw(st.lists(st.binary(max_size=40), max_size=40))
    else:
        fake_indices = data.draw(st.lists(st.integers(-3, count + 3), max_size=6))
    try:
        multiproof_root([(i, leaves[i % count]) for i in fake_indices], mutated, count)
    except MessageFormatError as exc:
        assert str(exc)


@FUZZ
@given(st.binary(min_size=32, max_size=32), st.lists(st.binary(max_size=40), max_size=TREE_DEPTH + 2),
       st.integers(-(2**40), 2**40))
def test_branch_proofs(leaf, proof, index):
    try:
        branch_root(leaf, proof, index)
    except MessageFormatError as exc:
        assert str(exc)


@FUZZ
@given(st.binary(max_size=300))
def test_dispatch_log_data(data):
    try:
        decode_single_bytes(data)
    except MessageFormatError as exc:
        assert str(exc)


@FUZZ
@given(st.binary(max_size=300))
def test_delivered_many_results(data):
    try:
        decode_bool_array(data)
    except MessageFormatError as exc:
        assert str(exc)


@FUZZ
@given(st.sampled_from([b"", selector("Error(string)"), selector("Panic(uint256)"),
                        selector("InvalidProof(bytes32)"), selector("ThresholdNotMet(uint256,uint256)")]),
       st.binary(max_size=200))
def test_revert_data(sel, args):
    assert ErrorTable().decode(sel + args)


def _cosign_doc(data: st.DataObject) -> Any:
    good = CosignRequest("cosmos", b"\x01\x02", (b"\x03" * 90,), {"k": "v"}).to_json()
    if data.draw(st.booleans()):
        return data.draw(json_values)
    key = data.draw(st.sampled_from(["chain", "payload", "messages", "context"]))
    if data.draw(st.booleans()):
        good.pop(key)
    else:
        good[key] = data.draw(st.one_of(json_values, hexish, st.lists(hexish, max_size=3)))
    return good


@FUZZ
@given(st.data())
def test_cosign_requests(data):
    doc = _cosign_doc(data)
    try:
        req = CosignRequest.from_json(doc)
    except MessageFormatError as exc:
        assert str(exc)
        return
    assert CosignRequest.from_json(json.loads(json.dumps(req.to_json()))) == req


def test_cosign_request_round_trip():
    req = CosignRequest("solana", b"\xaa" * 40, (b"\x01" * 81, b"\x02" * 100), {"blockhash": "abc"})
    assert CosignRequest.from_json(req.to_json()) == req


memo_text = st.one_of(
    st.text(max_size=120),
    st.builds(lambda t: DISPATCH_PREFIX + t, st.text(max_size=120)),
    st.builds(lambda b: DISPATCH_PREFIX + base64.b64encode(b).decode(), st.binary(max_size=200)),
    st.builds(lambda t: DELIVERY_PREFIX + t, st.text(alphabet="0123456789abcdef,xg ", max_size=200)),
)


@FUZZ
@given(memo_text)
def test_memos(text):
    for decode in (decode_dispatch_memo, decode_delivery_memo):
        try:
            decode(text)
        except MemoFormatError as exc:
            assert isinstance(exc, RelayerError) and str(exc)
    cosmos_memo.decode_dispatch_memo(text)
    cosmos_memo.decode_delivery_memo(text)


@FUZZ
@given(st.integers(0, 2**32 - 1), st.binary(min_size=32, max_size=32), st.binary(max_size=200),
       st.lists(st.binary(min_size=32, max_size=32), max_size=3))
def test_memos_round_trip(destination, recipient, body, ids):
    memo = decode_dispatch_memo(encode_dispatch_memo(destination, recipient, body))
    assert (memo.destination, memo.recipient, memo.body) == (destination, recipient, body)
    assert decode_delivery_memo(encode_delivery_memo(ids)) == ids


@FUZZ
@given(st.binary(max_size=200))
def test_token_bodies(body):
    try:
        tb = TokenBody.decode(body)
    except MemoFormatError as exc:
        assert str(exc)
        return
    assert tb.encode() == body
    cosmos_memo.decode_token_body(body)
