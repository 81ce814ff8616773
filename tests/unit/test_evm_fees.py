"""EIP-1559 fee rule and replacement bump (adapters.evm.fees)."""

from __future__ import annotations

import pytest

from adapters.base import FeeTooHigh
from adapters.evm.fees import GWEI, Fees, bumped, fees_for
from config.settings import GasSettings
from relayer.pipeline.outcome import FailureReason, reason_of

GAS = GasSettings(fee_multiplier=1.25, priority_fee_gwei=1.0, max_fee_gwei=100.0, bump_percent=15)


def test_max_fee_is_twice_base_plus_tip_times_multiplier() -> None:
    fees = fees_for(10 * GWEI, GAS)
    assert fees.priority_fee_per_gas == 1 * GWEI
    assert fees.max_fee_per_gas == (2 * 10 * GWEI + GWEI) * 5 // 4  # 26.25 gwei


def test_max_fee_survives_five_full_blocks() -> None:
    base = 7 * GWEI
    fees = fees_for(base, GasSettings(fee_multiplier=1.0, priority_fee_gwei=0.0))
    after_five_full_blocks = base * 1.125**5
    assert fees.max_fee_per_gas >= after_five_full_blocks


def test_cap_limits_max_fee_and_tip_shrinks_to_fit() -> None:
    fees = fees_for(99_500_000_000, GAS)  # 99.5 gwei base under a 100 gwei cap
    assert fees.max_fee_per_gas == 100 * GWEI
    assert fees.priority_fee_per_gas == 500_000_000
    assert fees.max_fee_per_gas >= fees.priority_fee_per_gas


def test_base_fee_above_cap_raises_fee_too_high() -> None:
    with pytest.raises(FeeTooHigh) as err:
        fees_for(101 * GWEI, GAS, chain="l1")
    assert reason_of(err.value) is FailureReason.FEE_TOO_HIGH and err.value.chain == "l1"
    assert "above the cap" in str(err.value)


def test_base_fee_equal_to_cap_is_allowed_with_zero_tip() -> None:
    fees = fees_for(100 * GWEI, GAS)
    assert fees == Fees(100 * GWEI, 0)


def test_zero_base_fee() -> None:
    fees = fees_for(0, GAS)
    assert fees.priority_fee_per_gas == GWEI and fees.max_fee_per_gas == GWEI * 5 // 4


def test_bump_raises_both_fields_by_at_least_bump_percent() -> None:
    old = Fees(20 * GWEI, 2 * GWEI)
    new = bumped(old, base_fee=1 * GWEI, gas=GAS)
    assert new.max_fee_per_gas >= old.max_fee_per_gas * 115 // 100
    assert new.priority_fee_per_gas >= old.priority_fee_per_gas * 115 // 100


def test_bump_never_offers_less_than_the_fresh_rule() -> None:
    old = Fees(2 * GWEI, GWEI)
    new = bumped(old, base_fee=30 * GWEI, gas=GAS)
    assert new.max_fee_per_gas == fees_for(30 * GWEI, GAS).max_fee_per_gas


def test_bump_above_cap_raises() -> None:
    with pytest.raises(FeeTooHigh):
        bumped(Fees(95 * GWEI, GWEI), base_fee=10 * GWEI, gas=GAS)


def test_multiplier_is_exact_on_large_values() -> None:
    gas = GasSettings(fee_multiplier=1.1, priority_fee_gwei=0.0, max_fee_gwei=10**9)
    base = 123_456_789_123
    assert fees_for(base, gas).max_fee_per_gas >= 2 * base * 11 // 10
