"""Tendermint fork detection: two sufficiently signed headers at one height name the double signers."""

from __future__ import annotations

from light_clients.tendermint.blocks import LightBlock
from light_clients.tendermint.builder import Committee, build_light_block, validator_keys
from light_clients.tendermint.hashing import header_hash
from light_clients.tendermint.misbehaviour import detect_conflict

KEYS = validator_keys(6, prefix="fork")
COMMITTEE = Committee.equal_power(KEYS[:4], power=10)
ADDRESSES = [v.address for v in COMMITTEE.validator_set.validators]


def _block(app_hash: bytes, signers: list[bytes] | None = None, height: int = 5) -> LightBlock:
    return build_light_block(
        chain_id="fork-chain",
        height=height,
        time=height * 10**9,
        committee=COMMITTEE,
        app_hash=app_hash,
        signers=signers,
    )


def test_fork_signed_by_everyone_names_every_validator() -> None:
    a, b = _block(b"\x01" * 32), _block(b"\x02" * 32)
    report = detect_conflict(a, b)
    assert report is not None
    assert report.height == 5
    assert report.hash_a == header_hash(a.header) != report.hash_b == header_hash(b.header)
    assert report.equivocators == tuple(sorted(ADDRESSES))


def test_equivocators_are_those_that_signed_both() -> None:
    a = _block(b"\x01" * 32, signers=ADDRESSES[:3])
    b = _block(b"\x02" * 32, signers=ADDRESSES[1:])
    report = detect_conflict(a, b)
    assert report is not None
    assert report.equivocators == tuple(sorted(ADDRESSES[1:3]))


def test_same_block_is_no_conflict() -> None:
    assert detect_conflict(_block(b"\x01" * 32), _block(b"\x01" * 32)) is None


def test_different_heights_are_no_conflict() -> None:
    assert detect_conflict(_block(b"\x01" * 32), _block(b"\x02" * 32, height=6)) is None


def test_an_under_signed_header_is_not_evidence() -> None:
    a = _block(b"\x01" * 32)
    b = _block(b"\x02" * 32, signers=ADDRESSES[:2])  # 20/40 is not more than 2/3
    assert detect_conflict(a, b) is None


def test_trusted_validators_lower_the_bar_to_one_third() -> None:
    a = _block(b"\x01" * 32)
    b = _block(b"\x02" * 32, signers=ADDRESSES[:2])
    report = detect_conflict(a, b, trusted_validators=COMMITTEE.validator_set)
    assert report is not None
    assert report.equivocators == tuple(sorted(ADDRESSES[:2]))
    c = _block(b"\x03" * 32, signers=ADDRESSES[:1])  # 10/40 is not more than 1/3
    assert detect_conflict(a, c, trusted_validators=COMMITTEE.validator_set) is None


def test_signers_unknown_to_the_trusted_set_do_not_count() -> None:
    strangers = Committee.equal_power(KEYS[4:], power=10)
    a = _block(b"\x01" * 32)
    b = _block(b"\x02" * 32)
    assert detect_conflict(a, b, trusted_validators=strangers.validator_set) is None
