"""Tendermint builder: deterministic keys, blocks that verify, and CometBFT RPC JSON round trips."""

from __future__ import annotations

import json

import pytest

from light_clients.tendermint.blocks import BlockIdFlag, LightBlock, SignedHeader, address_of
from light_clients.tendermint.builder import (
    Committee,
    build_chain,
    build_header,
    build_light_block,
    sign_commit,
    validator_key,
    validator_keys,
)
from light_clients.tendermint.errors import LightBlockParseError
from light_clients.tendermint.hashing import header_hash, validator_set_hash
from light_clients.tendermint.rpc_json import (
    commit_response_json,
    light_block_to_json,
    parse_commit_response,
    parse_light_block,
    parse_validators_response,
    validators_response_json,
)
from light_clients.tendermint.timestamps import NANOS_PER_SECOND
from light_clients.tendermint.verifier import Success, VerifyOptions, verify, verify_commit

OPTIONS = VerifyOptions.from_seconds(trusting_period=14 * 24 * 3600, clock_drift=10)


def test_keys_are_deterministic_and_distinct() -> None:
    assert validator_key("a").pub_key == validator_key("a").pub_key
    assert validator_key("a").pub_key != validator_key("b").pub_key
    keys = validator_keys(5)
    assert len({k.address for k in keys}) == 5
    assert all(k.address == address_of(k.pub_key) for k in keys)


def test_committee_set_is_canonical_and_hashes_like_the_header() -> None:
    keys = validator_keys(4)
    committee = Committee.with_powers(zip(keys, [5, 30, 5, 10], strict=True))
    powers = [v.voting_power for v in committee.validator_set.validators]
    assert powers == [30, 10, 5, 5]
    low = committee.validator_set.validators[2:]
    assert low[0].address < low[1].address
    block = build_light_block(chain_id="c", height=3, time=0, committee=committee)
    assert block.header.validators_hash == validator_set_hash(committee.validator_set)


def test_built_chain_verifies_adjacent_and_skipping() -> None:
    committee = Committee.equal_power(validator_keys(7))
    chain = build_chain("test-chain", lambda height: committee, last_height=20)
    now = chain[20].header.time + NANOS_PER_SECOND
    for height in range(1, 20):
        assert verify(chain[height], chain[height + 1], OPTIONS, now) == Success()
        assert chain[height + 1].header.last_block_id == chain[height].commit.block_id
    assert verify(chain[1], chain[20], OPTIONS, now) == Success()
    assert verify_commit(chain[20].signed_header, committee.validator_set) == Success()


def test_builder_is_reproducible() -> None:
    committee = Committee.equal_power(validator_keys(3))
    first = build_chain("c", [committee] * 4, first_height=10, last_height=12)
    second = build_chain("c", [committee] * 4, first_height=10, last_height=12)
    assert first == second


def test_sign_commit_marks_signers_nil_voters_and_absentees() -> None:
    committee = Committee.equal_power(validator_keys(4))
    addresses = [v.address for v in committee.validator_set.validators]
    header = build_header(
        chain_id="c",
        height=2,
        time=5 * NANOS_PER_SECOND,
        validators=committee.validator_set,
        next_validators=committee.validator_set,
    )
    commit = sign_commit(header, committee, signers=addresses[:2], nil_voters=addresses[2:3], round=1)
    flags = [s.block_id_flag for s in commit.signatures]
    assert flags == [BlockIdFlag.COMMIT, BlockIdFlag.COMMIT, BlockIdFlag.NIL, BlockIdFlag.ABSENT]
    assert commit.block_id.hash == header_hash(header)
    assert commit.round == 1
    # 2 of 4 is not more than 2/3; the nil vote's signature is checked but not counted
    verdict = verify_commit(SignedHeader(header, commit), committee.validator_set)
    assert "2/3" in str(verdict)


def _round_trip(document: object) -> object:
    return json.loads(json.dumps(document))


def test_rpc_json_round_trip() -> None:
    keys = validator_keys(5)
    committee = Committee.with_powers(zip(keys, [1, 2, 3, 4, 5], strict=True))
    addresses = [v.address for v in committee.validator_set.validators]
    block = build_light_block(
        chain_id="round-trip",
        height=42,
        time=1_700_000_000 * NANOS_PER_SECOND + 123_456_789,
        committee=committee,
        signers=addresses[:4],
    )
    signed_header = parse_commit_response(_round_trip(commit_response_json(block.signed_header)))
    assert signed_header == block.signed_header
    wrapped = {"jsonrpc": "2.0", "id": 1, "result": commit_response_json(block.signed_header)}
    assert parse_commit_response(_round_trip(wrapped)) == block.signed_header
    validators = parse_validators_response(_round_trip(validators_response_json(block.validators, 42)))
    assert validators == block.validators
    rebuilt = LightBlock(signed_header, validators, validators)
    assert rebuilt == block
    assert parse_light_block(_round_trip(light_block_to_json(block))).signed_header == block.signed_header


def test_rpc_json_shape() -> None:
    block = build_light_block(
        chain_id="c", height=7, time=0, committee=Committee.equal_power(validator_keys(1))
    )
    document = commit_response_json(block.signed_header)
    header = document["signed_header"]["header"]
    assert header["height"] == "7"
    assert header["time"] == "1970-01-01T00:00:00Z"
    assert set(document["signed_header"]["commit"]["block_id"]) == {"hash", "parts"}
    validators = validators_response_json(block.validators, 7)
    assert validators["count"] == validators["total"] == "1"
    assert validators["validators"][0]["pub_key"]["type"] == "tendermint/PubKeyEd25519"


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("signed_header", "header", "height"), "ten", "signed_header.header.height"),
        (("signed_header", "header", "time"), "yesterday", "signed_header.header.time"),
        (("signed_header", "header", "app_hash"), "zz", "signed_header.header.app_hash"),
        (
            ("signed_header", "commit", "signatures", 0, "signature"),
            "!!",
            "signed_header.commit.signatures[0]",
        ),
        (("signed_header", "commit", "signatures", 0, "block_id_flag"), 9, "block_id_flag"),
    ],
)
def test_parse_errors_name_the_field(path: tuple[str | int, ...], value: object, field: str) -> None:
    block = build_light_block(
        chain_id="c", height=7, time=0, committee=Committee.equal_power(validator_keys(1))
    )
    document = commit_response_json(block.signed_header)
    target = document
    for key in path[:-1]:
        target = target[key]  # type: ignore[index]
    target[path[-1]] = value  # type: ignore[index]
    with pytest.raises(LightBlockParseError) as raised:
        parse_commit_response(document)
    assert field in raised.value.field
    assert isinstance(raised.value, ValueError)


def test_validator_address_must_match_key() -> None:
    block = build_light_block(
        chain_id="c", height=7, time=0, committee=Committee.equal_power(validator_keys(2))
    )
    document = validators_response_json(block.validators, 7)
    document["validators"][0]["address"] = document["validators"][1]["address"]
    with pytest.raises(LightBlockParseError, match=r"validators\[0\]\.address"):
        parse_validators_response(document)


def test_missing_field_is_named() -> None:
    with pytest.raises(LightBlockParseError, match="result.signed_header: missing"):
        parse_commit_response({"canonical": True})
