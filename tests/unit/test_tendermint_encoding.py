"""Tendermint encoding pieces: protobuf varints, the RFC 6962 tree, RFC 3339 times, sign bytes."""

from __future__ import annotations

import hashlib

import pytest

from light_clients.tendermint import protobuf as pb
from light_clients.tendermint.blocks import BlockId, BlockIdFlag, Commit, CommitSig, PartSetHeader
from light_clients.tendermint.hashing import CommitSignBytes, encode_block_id, merkle_root
from light_clients.tendermint.timestamps import TimestampFormatError, UnixNanos, format_rfc3339, parse_rfc3339


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (0, b"\x00"),
        (1, b"\x01"),
        (127, b"\x7f"),
        (128, b"\x80\x01"),
        (300, b"\xac\x02"),
        (-1, b"\xff" * 9 + b"\x01"),
    ],
)
def test_varint(value: int, encoded: bytes) -> None:
    assert pb.varint(value) == encoded


def test_zero_scalars_are_omitted_but_messages_are_not() -> None:
    assert pb.varint_field(1, 0) == b""
    assert pb.bytes_field(2, b"") == b""
    assert pb.sfixed64_field(2, 0) == b""
    assert pb.message_field(2, b"") == b"\x12\x00"
    assert pb.sfixed64_field(2, 10) == b"\x11" + (10).to_bytes(8, "little")
    assert encode_block_id(BlockId()) == b"\x12\x00"


def _leaf(x: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + x).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def test_merkle_tree_shape() -> None:
    assert merkle_root([]) == hashlib.sha256(b"").digest()
    assert merkle_root([b"a"]) == _leaf(b"a")
    assert merkle_root([b"a", b"b"]) == _node(_leaf(b"a"), _leaf(b"b"))
    # three leaves split 2 + 1; five split 4 + 1
    assert merkle_root([b"a", b"b", b"c"]) == _node(_node(_leaf(b"a"), _leaf(b"b")), _leaf(b"c"))
    four = _node(_node(_leaf(b"a"), _leaf(b"b")), _node(_leaf(b"c"), _leaf(b"d")))
    assert merkle_root([b"a", b"b", b"c", b"d", b"e"]) == _node(four, _leaf(b"e"))


@pytest.mark.parametrize(
    "text",
    [
        "1970-01-01T00:00:01Z",
        "2023-05-17T14:12:53.605374524Z",
        "2020-09-14T16:33:54.21191421Z",
        "0001-01-01T00:00:00Z",
    ],
)
def test_time_round_trip(text: str) -> None:
    assert format_rfc3339(parse_rfc3339(text)) == text


def test_time_offsets_and_errors() -> None:
    assert parse_rfc3339("2020-01-01T02:00:00+02:00") == parse_rfc3339("2020-01-01T00:00:00Z")
    assert parse_rfc3339("1970-01-01T00:00:00.5Z") == 500_000_000
    assert parse_rfc3339("0001-01-01T00:00:00Z") == -62135596800 * 10**9
    for bad in ["2020-13-01T00:00:00Z", "2020-01-01 00:00:00Z", "2020-01-01T00:00:00.1234567890Z", ""]:
        with pytest.raises(TimestampFormatError):
            parse_rfc3339(bad)


def test_nil_vote_sign_bytes_leave_out_the_block_id() -> None:
    block_id = BlockId(b"\xaa" * 32, PartSetHeader(1, b"\xbb" * 32))
    commit = Commit(height=5, round=0, block_id=block_id, signatures=())
    sign_bytes = CommitSignBytes("chain", commit)
    for_block = sign_bytes.of(CommitSig(BlockIdFlag.COMMIT, b"\x01" * 20, UnixNanos(0), b""))
    for_nil = sign_bytes.of(CommitSig(BlockIdFlag.NIL, b"\x01" * 20, UnixNanos(0), b""))
    assert for_block[0] == len(for_block) - 1
    assert b"\xaa" * 32 in for_block and b"\xaa" * 32 not in for_nil
    # type=2, height=5 as sfixed64, (round 0 omitted), ..., timestamp always present, chain id last
    assert (
        for_nil
        == bytes([len(for_nil) - 1])
        + b"\x08\x02"
        + b"\x11"
        + (5).to_bytes(8, "little")
        + b"\x2a\x00"
        + b"\x32\x05chain"
    )
