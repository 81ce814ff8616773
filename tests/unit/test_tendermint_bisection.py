"""Tendermint bisection over a 100-height chain whose validator set rotates, so skipping alone fails."""

from __future__ import annotations

import dataclasses

import pytest

from light_clients.tendermint.bisection import verify_to_height
from light_clients.tendermint.blocks import LightBlock
from light_clients.tendermint.builder import Committee, build_chain, validator_keys
from light_clients.tendermint.errors import (
    LightBlockUnavailable,
    TargetHeightBelowTrusted,
    VerificationFailed,
)
from light_clients.tendermint.provider import MemoryLightBlockProvider
from light_clients.tendermint.timestamps import NANOS_PER_SECOND
from light_clients.tendermint.verifier import Invalid, NotEnoughTrust, Success, VerifyOptions, verify

POOL = validator_keys(20, prefix="rotating")
WINDOW = 4
OPTIONS = VerifyOptions.from_seconds(trusting_period=3600)


def rotating_committee(height: int) -> Committee:
    """Four validators; every 8 heights one leaves and the next in the pool joins."""
    start = height // 8
    return Committee.equal_power(POOL[start : start + WINDOW], power=10)


@pytest.fixture(scope="module")
def chain() -> dict[int, LightBlock]:
    return build_chain("bisect-chain", rotating_committee, last_height=100)


def _now(chain: dict[int, LightBlock]) -> int:
    return chain[100].header.time + NANOS_PER_SECOND


def test_skipping_straight_to_the_target_is_not_enough(chain: dict[int, LightBlock]) -> None:
    verdict = verify(chain[1], chain[100], OPTIONS, _now(chain))
    assert isinstance(verdict, NotEnoughTrust)
    assert verdict.tallied == 0 and verdict.total == 40


def test_bisection_reaches_the_target(chain: dict[int, LightBlock]) -> None:
    provider = MemoryLightBlockProvider(chain)
    trace = verify_to_height(chain[1], 100, provider, OPTIONS, _now(chain))
    heights = [block.height for block in trace]
    assert heights[-1] == 100
    assert heights == sorted(heights)
    assert len(trace) > 1  # intermediate blocks were needed
    assert len(set(provider.requested)) < 99  # ...but far fewer than every height
    previous: LightBlock = chain[1]
    for block in trace:
        assert verify(previous, block, OPTIONS, _now(chain)) == Success()
        previous = block


def test_bisection_with_a_static_set_skips_in_one_step(chain: dict[int, LightBlock]) -> None:
    committee = Committee.equal_power(validator_keys(4))
    static = build_chain("static", lambda height: committee, last_height=100)
    provider = MemoryLightBlockProvider(static)
    trace = verify_to_height(static[1], 100, provider, OPTIONS, static[100].header.time + 1)
    assert [b.height for b in trace] == [100]
    assert provider.requested == [100]


def test_target_at_trusted_height_needs_nothing(chain: dict[int, LightBlock]) -> None:
    provider = MemoryLightBlockProvider(chain)
    assert verify_to_height(chain[10], 10, provider, OPTIONS, _now(chain)) == []
    assert provider.requested == []


def test_target_below_trusted_is_refused(chain: dict[int, LightBlock]) -> None:
    with pytest.raises(TargetHeightBelowTrusted):
        verify_to_height(chain[10], 5, MemoryLightBlockProvider(chain), OPTIONS, _now(chain))


def test_an_invalid_intermediate_block_fails_bisection(chain: dict[int, LightBlock]) -> None:
    forged = dict(chain)
    trace = verify_to_height(chain[1], 100, MemoryLightBlockProvider(chain), OPTIONS, _now(chain))
    intermediate = trace[0].height
    assert intermediate != 100
    bad = chain[intermediate]
    sig = bad.commit.signatures[0]
    flipped = dataclasses.replace(sig, signature=bytes([sig.signature[0] ^ 1]) + sig.signature[1:])
    commit = dataclasses.replace(bad.commit, signatures=(flipped, *bad.commit.signatures[1:]))
    forged[intermediate] = dataclasses.replace(
        bad, signed_header=dataclasses.replace(bad.signed_header, commit=commit)
    )
    with pytest.raises(VerificationFailed) as raised:
        verify_to_height(chain[1], 100, MemoryLightBlockProvider(forged), OPTIONS, _now(chain))
    assert raised.value.height == intermediate
    assert isinstance(raised.value.verdict, Invalid)


def test_a_missing_block_is_reported_unavailable(chain: dict[int, LightBlock]) -> None:
    sparse = {h: b for h, b in chain.items() if h in (1, 100)}
    with pytest.raises(LightBlockUnavailable) as raised:
        verify_to_height(chain[1], 100, MemoryLightBlockProvider(sparse), OPTIONS, _now(chain))
    assert raised.value.height > 1


def test_an_expired_trusted_block_fails(chain: dict[int, LightBlock]) -> None:
    late = chain[1].header.time + OPTIONS.trusting_period
    with pytest.raises(VerificationFailed, match="trusting period"):
        verify_to_height(chain[1], 100, MemoryLightBlockProvider(chain), OPTIONS, late)
