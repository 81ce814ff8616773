"""EIP-1559 fee rule for deliveries, and the bump rule for replacing a stuck transaction.

Rule (all values in wei):

    tip     = priority_fee_gwei                                  (the configured tip)
    max_fee = min(cap, ceil((2 * base_fee + tip) * fee_multiplier))
    if base_fee > cap:                       raise FeeTooHigh    (cannot be included at any fee we allow)
    if max_fee < base_fee + tip:             tip = max_fee - base_fee   (capped: pay what is left as tip)

Why: the base fee can rise at most 12.5 % per block, so ``2 * base_fee`` keeps the transaction includable
through five consecutive full blocks (1.125**5 ~ 1.80; a sixth would need 2.03) without any resubmission;
``fee_multiplier`` is the operator's extra headroom. Under EIP-1559 the payer is charged
``min(max_fee, base_fee + tip)`` per gas, so the headroom costs nothing unless it is used. ``max_fee_gwei`` is a hard
ceiling on what we ever offer.

Replacement (``bumped``): nodes accept a same-nonce replacement only if both ``max_fee`` and ``tip`` rise
by at least 10 % (geth's default ``pricebump``); we raise both by ``bump_percent`` (>= 10, config-checked)
and never offer less than the fresh rule would for the current base fee.
"""

from __future__ import annotations

from dataclasses import dataclass

from adapters.base import FeeTooHigh
from config.settings import GasSettings

GWEI = 10**9


@dataclass(frozen=True, slots=True)
class Fees:
    max_fee_per_gas: int
    priority_fee_per_gas: int


def gwei_to_wei(value: float) -> int:
    return round(value * GWEI)


def _ceil_mul(value: int, factor: float) -> int:
    # integer ceil of value * factor without float rounding eating wei on large values
    num, den = float(factor).as_integer_ratio()
    return -((-value * num) // den)


def fees_for(base_fee: int, gas: GasSettings, *, chain: str = "") -> Fees:
    """The ``(max_fee, tip)`` to offer when the latest base fee is ``base_fee``."""
    if base_fee < 0:
        raise ValueError("base fee cannot be negative")
    cap = gwei_to_wei(gas.max_fee_gwei)
    if base_fee > cap:
        raise FeeTooHigh(
            f"base fee {base_fee / GWEI:.3f} gwei is above the cap max_fee_gwei={gas.max_fee_gwei}", chain=chain,
            reason="base fee above cap",
        )
    tip = gwei_to_wei(gas.priority_fee_gwei)
    max_fee = min(cap, _ceil_mul(2 * base_fee + tip, gas.fee_multiplier))
    if max_fee < base_fee + tip:
        tip = max_fee - base_fee
    return Fees(max_fee, tip)


def bumped(previous: Fees, base_fee: int, gas: GasSettings, *, chain: str = "") -> Fees:
    """Fees for a same-nonce replacement of a transaction sent with ``previous``.

    Raises ``FeeTooHigh`` when the cap leaves no room for the minimum bump the node requires.
    """
    cap = gwei_to_wei(gas.max_fee_gwei)
    factor = 1 + gas.bump_percent / 100
    tip = _ceil_mul(previous.priority_fee_per_gas, factor)
    max_fee = _ceil_mul(previous.max_fee_per_gas, factor)
    if base_fee <= cap:
        fresh = fees_for(base_fee, gas, chain=chain)
        tip = max(tip, fresh.priority_fee_per_gas)
        max_fee = max(max_fee, fresh.max_fee_per_gas)
    max_fee = max(max_fee, tip)
    if max_fee > cap:
        raise FeeTooHigh(
            f"replacing needs max_fee {max_fee / GWEI:.3f} gwei (+{gas.bump_percent}%), above the cap "
            f"max_fee_gwei={gas.max_fee_gwei}",
            chain=chain, reason="bump above cap",
        )
    return Fees(max_fee, tip)
