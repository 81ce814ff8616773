"""What the APIs ask of integrator rewards (issue 15): registration (admin API), the quotes counted per code
(``POST /v1/quote``) and the report's attribution (``GET /v1/integrators/{code}/report``: payouts with their
transaction hashes, rewards paid, under way and pending, quotes and conversion, volume and fees by chain and day).

``IntegratorRewards`` is built by the daemon over its database and adapters and handed to the routing API through
``IntentsBackend.rewards``; every database call runs off the event loop (``run``).

Conversion: an intent carries no quote id, so conversion is counted per UTC day: the intents a code brought that day
(stored, whatever became of them) over the quotes served to it that day (``null`` on a day without quotes).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from router.integrators import AddressCheck, IntegratorStore, check_registration
from router.intents import IntentFields, counts_for_integrator
from router.payouts import OffLoopRunner, PayoutJob, PayoutStore, rewards_view


@dataclass
class IntegratorRewards:
    integrators: IntegratorStore
    payouts: PayoutStore
    default_share: Decimal
    payable: Callable[[], frozenset[str]]  # chains where a payout can be sent now
    check_address: AddressCheck
    chains: Mapping[str, object]            # the configured chains, by name
    run: OffLoopRunner
    job: PayoutJob | None = None            # the epoch (None: no operator accounts, nothing is paid)

    async def register(self, code: str, body: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
        """Register or replace ``code`` (``RegistrationError`` naming the field); (its view, whether it is new)."""
        share, addresses = check_registration(code, body, self.chains, self.check_address)
        integrator, created = await self.run(self.integrators.register, code, share, addresses)
        return integrator.view(self.default_share), created

    async def get(self, code: str) -> dict[str, Any] | None:
        found = await self.run(self.integrators.get, code)
        return None if found is None else found.view(self.default_share)

    async def all(self) -> list[dict[str, Any]]:
        return [i.view(self.default_share) for i in await self.run(self.integrators.all)]

    async def share_of(self, code: str) -> Decimal:
        found = await self.run(self.integrators.get, code)
        return found.share_or(self.default_share) if found is not None else self.default_share

    async def count_quote(self, code: str) -> bool:
        return bool(await self.run(self.integrators.count_quote, code))

    async def attribution(self, code: str, records: Sequence[IntentFields]) -> dict[str, Any]:
        """The report's additions: ``rewards``, ``quotes``, ``conversion`` and ``by_chain_day``."""
        integrator = await self.run(self.integrators.get, code)
        payouts = await self.run(self.payouts.of, code)
        uncovered = await self.run(self.payouts.uncovered_by_chain, code)
        carries = {chain: await self.run(self.payouts.last_carry, code, chain) for chain in uncovered}
        quotes = await self.run(self.integrators.quotes, code)
        held = self.job.held_back(code) if self.job is not None else {}
        return {"rewards": rewards_view(integrator, self.default_share, payouts, uncovered, carries, self.payable(),
                                        held),
                "quotes": {"total": sum(quotes.values()), "by_day": quotes},
                "conversion": conversion(records, quotes), "by_chain_day": by_chain_day(records)}


def _day(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).date().isoformat()


def conversion(records: Sequence[IntentFields], quotes: Mapping[str, int]) -> dict[str, Any]:
    """Intents a code brought against quotes served to it, per UTC day and in all."""
    intents: dict[str, int] = {}
    for rec in records:
        intents[_day(rec.created_at)] = intents.get(_day(rec.created_at), 0) + 1
    days = sorted(set(intents) | set(quotes))

    def rate(i: int, q: int) -> float | None:
        return round(i / q, 4) if q else None

    total_i, total_q = sum(intents.values()), sum(quotes.values())
    return {"intents": total_i, "quotes": total_q, "rate": rate(total_i, total_q),
            "by_day": {d: {"intents": intents.get(d, 0), "quotes": quotes.get(d, 0),
                           "rate": rate(intents.get(d, 0), quotes.get(d, 0))} for d in days}}


def by_chain_day(records: Sequence[IntentFields]) -> list[dict[str, Any]]:
    """Counted intents by (chain where the fee was paid, UTC day): intents, volume, fees in that chain's smallest
    native units and in USD."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for rec in records:
        if not counts_for_integrator(rec):
            continue
        chain = rec.origin or rec.chain or "unknown"
        b = rows.setdefault((chain, _day(rec.created_at)), {"intents": 0, "volume": Decimal(0), "fee_paid": 0,
                                                            "fees_usd": 0.0})
        b["intents"] += 1
        b["volume"] += Decimal(rec.amount)
        b["fee_paid"] += int(rec.fee_paid or 0)
        b["fees_usd"] += rec.fee_paid_usd or 0.0
    return [{"chain": c, "day": d, "intents": b["intents"], "volume": str(b["volume"]), "fee_paid": str(b["fee_paid"]),
             "fees_usd": b["fees_usd"]} for (c, d), b in sorted(rows.items(), key=lambda kv: (kv[0][1], kv[0][0]))]
