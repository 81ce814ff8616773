"""Paid delivery: what a message must have paid before this relayer delivers it (``relayer.gas_payment``, Hyperlane's
gas payment enforcement), and the check the processor makes before it submits anything.

A message matches the first rule of ``relayer.gas_payment`` whose origin, sender, destination and recipient match it
(``relayer.pipeline.filters.compile_rule``); none matching: it is delivered unpaid. By the rule's policy it must have
paid, on its origin's paymaster, for its destination:

- ``none``: nothing;
- ``minimum``: at least ``minimum`` (origin smallest units);
- ``on_chain_quote``: at least ``fraction`` x the paymaster's quote for ``gas_amount`` gas, or for the gas its delivery
  was estimated to need when that is more (Hyperlane compares the gas paid for with the estimate the same way),
  computed from the origin's gas oracle as the contract computes it (``GasOracleEntry.quote``), read at most every
  ``QUOTE_MAX_AGE_S``. An
  origin with no oracle (Solana, Cosmos: payments to the relayer's fee account) is quoted the entry the oracle keeper
  would write (``relayer.daemon.gas_oracle.RelayerQuotes``: live fees, prices, the route's USD floor).

What it paid is the sum of the payments indexed for it (``Store.paid_for``: on its own origin, naming its own
destination; top-ups add up). One that paid less waits as ``underpaid`` (no attempt spent, status ``waiting`` for
``payment``); a payment for it being indexed makes it claimable at once. An origin whose oracle has no price for the
destination yet, or cannot be read, holds its messages the same way, saying so.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from adapters.base import AdapterError, ChainAdapter
from adapters.bridge_memo import GAS_PREFIX
from adapters.capabilities import GAS_EXCHANGE_RATE_SCALE, GasOracleEntry, GasQuoteSource
from adapters.message import Message, MessageFormatError, MessageId
from config.settings import GasPaymentRule, Settings
from relayer.pipeline.filters import CompiledRule, compile_rule
from relayer.store import Paid

QUOTE_MAX_AGE_S = 5.0


@dataclass(frozen=True)
class PaymentRule:
    match: CompiledRule
    rule: GasPaymentRule

    @property
    def where(self) -> str:
        return self.match.where


def compile_payment_rules(settings: Settings, adapters: Mapping[str, ChainAdapter]) -> tuple[PaymentRule, ...]:
    return tuple(PaymentRule(compile_rule(r, f"relayer.gas_payment[{i}]", settings, adapters), r)
                 for i, r in enumerate(settings.relayer.gas_payment))


class GasPolicy:
    def __init__(self, rules: Sequence[PaymentRule], paymasters: Mapping[int, GasQuoteSource], *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rules = tuple(rules)
        self.paymasters = paymasters  # origin domain -> where its quotes come from (EVM: its adapter's oracle)
        self.clock = clock
        self._entries: dict[tuple[int, int], tuple[float, GasOracleEntry]] = {}

    def rule_for(self, m: Message) -> PaymentRule | None:
        return next((r for r in self.rules if r.match.matches(m)), None)

    async def shortfalls(self, messages: Mapping[MessageId, bytes],
                         paid_for: Callable[[Sequence[MessageId]], Awaitable[dict[MessageId, Paid]]],
                         gas_needed: Mapping[MessageId, int] | None = None) -> dict[MessageId, str]:
        """Per message of ``messages`` (id: raw bytes) that may not be delivered yet for want of payment: why (the
        rule, what it paid and what it must pay). ``gas_needed``: the gas each one's delivery needs, where known
        (``required``)."""
        required = {}
        for mid, raw in messages.items():
            need = await self.required(raw, (gas_needed or {}).get(mid, 0))
            if need is not None:
                required[mid] = need
        if not required:
            return {}
        paid = await paid_for(list(required))
        out = {}
        for mid, (amount, rule, why) in required.items():
            got = paid[mid].amount if mid in paid else 0
            if amount is None or got < amount:
                out[mid] = f"paid {got} of {why} ({rule.where}, policy {rule.rule.policy})"
        return out

    async def required(self, raw: bytes, gas_needed: int = 0) -> tuple[int | None, PaymentRule, str] | None:
        """(the least the message must have paid, or None when that cannot be known now; its rule; what it is) or
        None when it need pay nothing. ``on_chain_quote`` quotes ``max(gas_amount, gas_needed)`` gas: a delivery
        estimated to need more than the rule's ``gas_amount`` must pay for what it needs."""
        if not self.rules:
            return None
        try:
            m = Message.decode(raw)
        except MessageFormatError:
            return None  # the pipeline drops it as malformed
        rule = self.rule_for(m)
        if rule is None or rule.rule.policy == "none":
            return None
        if rule.rule.policy == "minimum":
            amount = rule.rule.minimum or 0
            return amount, rule, f"the minimum {amount}"
        return await self._quoted(m, rule, max(rule.rule.gas_amount, gas_needed))

    async def _quoted(self, m: Message, rule: PaymentRule, gas: int) -> tuple[int | None, PaymentRule, str]:
        try:
            entry = await self.entry(m.origin, m.destination)
        except AdapterError as exc:
            return None, rule, f"an unknown quote (the origin's gas oracle cannot be read: {str(exc)[:200]})"
        if entry is None or entry.updated_at == 0:
            return None, rule, "an unknown quote (the origin's gas oracle has no price for this destination yet)"
        amount = math.ceil(rule.rule.fraction * entry.quote(gas))
        return amount, rule, f"{amount} ({rule.rule.fraction:g} x the paymaster's quote for {gas} gas)"

    async def entry(self, origin: int, destination: int) -> GasOracleEntry | None:
        cached = self._entries.get((origin, destination))
        if cached is not None and self.clock() - cached[0] <= QUOTE_MAX_AGE_S:
            return cached[1]
        paymaster = self.paymasters.get(origin)
        if paymaster is None:
            return None
        [entry] = await paymaster.gas_oracle_entries([destination])
        self._entries[(origin, destination)] = (self.clock(), entry)
        return entry


@dataclass(frozen=True)
class TopUp:
    """What a message still owes and the payment that settles it: ``gas_limit`` gas on its origin's paymaster, whose
    quote (``value``) covers the shortfall (``GasPaymaster.payForGas`` keeps the quote and refunds the rest)."""

    rule: str | None  # "relayer.gas_payment[0]"; None: no rule asks this message to pay
    policy: str
    required: int | None  # None: no rule, or the oracle has no price yet
    paid: int
    shortfall: int
    gas_limit: int
    value: int

    def view(self) -> dict[str, object]:
        return {"rule": self.rule, "policy": self.policy, "required": _s(self.required), "paid": str(self.paid),
                "shortfall": str(self.shortfall), "gas_limit": self.gas_limit, "value": str(self.value)}


def _s(v: int | None) -> str | None:
    return None if v is None else str(v)


def gas_for(amount: int, entry: GasOracleEntry) -> int:
    """The least gas whose quote is at least ``amount`` (1 when the minimum payment covers it)."""
    per_gas = entry.gas_price * entry.exchange_rate
    if per_gas == 0 or entry.quote(1) >= amount:
        return 1
    gas = -(-amount * GAS_EXCHANGE_RATE_SCALE // per_gas)
    while entry.quote(gas) < amount:
        gas += 1
    return gas


async def top_up(policy: GasPolicy | None, raw: bytes, paid: Paid | None, gas_needed: int = 0) -> TopUp:
    """What the message ``raw`` (which paid ``paid`` so far; whose delivery was estimated to need ``gas_needed``, 0:
    not known) owes under ``policy``, and the payment settling it."""
    amount_paid = paid.amount if paid else 0
    need = await policy.required(raw, gas_needed) if policy else None
    if need is None:
        return TopUp(None, "none", 0, amount_paid, 0, 0, 0)
    required, rule, _ = need
    if required is None:
        return TopUp(rule.where, rule.rule.policy, None, amount_paid, 0, 0, 0)
    shortfall = max(0, required - amount_paid)
    if shortfall == 0:
        return TopUp(rule.where, rule.rule.policy, required, amount_paid, 0, 0, 0)
    m = Message.decode(raw)
    entry = await policy.entry(m.origin, m.destination) if policy else None
    if entry is None or entry.updated_at == 0:
        return TopUp(rule.where, rule.rule.policy, required, amount_paid, shortfall, 0, 0)
    gas = gas_for(shortfall, entry)
    return TopUp(rule.where, rule.rule.policy, required, amount_paid, shortfall, gas, entry.quote(gas))


def how_fee_accounts_are_paid(origin: str, fee_account: str) -> str:
    """How a message from an origin paid through its fee account (Solana, Cosmos) pays (``adapters.fee_account``)."""
    return (f"on {origin} a message pays the relayer's fee account {fee_account} in native tokens: in its dispatch "
            "transaction (relayer send --pay-gas), or later in a top-up transaction carrying the gas memo "
            f"{GAS_PREFIX}<destination>:<message id> (relayer messages add-gas ID, or `pay` here); a payment "
            "in any other transaction counts for nothing")
