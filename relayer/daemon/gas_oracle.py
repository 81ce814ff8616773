"""Gas oracle upkeep (``relayer.gas_oracle``): the relayer keeps every origin's ``GasOracle`` current, so that the
paymaster's quotes cover what delivery costs (Hyperlane's oracle upkeep; a stale or wrong oracle drained a route).

Every ``update_interval_s``, per origin with a paymaster and per other configured chain as destination:

- the destination's price per gas, from its live fee data (``CapacitySource.chain_stats``): EVM, the next base fee
  plus the tip the relayer offers (``eth_feeHistory``); Cosmos, its gas price (a delivery's declared fee over its
  gas); Solana, a delivery's signatures, priority fee and rent over its compute units;
- the exchange rate, origin smallest units per destination smallest unit (x 1e10), from ``router.native_usd`` /
  ``router.native_usd_by_chain``; a price below one smallest unit per gas (Cosmos) is written as 1 with the fraction
  carried by the rate, so the product, which is all a quote uses, is exact;
- the route's USD floor (``floors``, first matching) as the minimum payment in origin units: however far a price
  falls, no quote goes below it.

An entry is rewritten when its price per gas (price x rate) or its minimum moved by more than ``deviation``, or
when it is older than ``max_age_s / 2``; all the origin's changed entries go in one transaction signed by the updater
key. ``relayer_gas_oracle_age_seconds{origin,destination}`` is each entry's age, and
``relayer_gas_oracle_stale{origin,destination}`` is 1 past ``max_age_s`` (``gas_oracle_stale`` logged): an
updater out of funds, or a chain that cannot be read, shows there.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

import structlog

from adapters.base import AdapterError, CapacitySource, ChainAdapter, ChainStats, RpcError, WalletSource
from adapters.capabilities import (
    GAS_EXCHANGE_RATE_SCALE,
    GasOracleEntry,
    GasPaymaster,
    GasPaymentSource,
    GasQuoteSource,
)
from config.settings import GasFloor, GasOracleSettings, Settings
from relayer.daemon.metrics import Metrics

log = structlog.get_logger("relayer.daemon.gas_oracle")

UINT128_MAX = 2**128 - 1


@dataclass(frozen=True)
class Prices:
    """What the keeper reads once per run: each chain's price per gas (smallest units, exact) and decimals."""

    per_gas: dict[str, Fraction]
    decimals: dict[str, int]


def price_per_gas(stats: ChainStats) -> Fraction:
    """Smallest native units per gas of a delivery on the chain ``stats`` describes."""
    per_gas = Fraction(stats.base_fee + stats.priority_fee)
    if stats.payout_fee and stats.payout_gas:
        per_gas += Fraction(stats.payout_fee, stats.payout_gas)
    return per_gas


def desired_entry(destination: int, per_gas: Fraction, origin_usd: float, origin_decimals: int, dest_usd: float,
                  dest_decimals: int, floor_usd: float) -> GasOracleEntry:
    """The oracle entry pricing gas on the destination in origin units, with the route's USD floor."""
    rate = (Fraction(dest_usd) / 10**dest_decimals) / (Fraction(origin_usd) / 10**origin_decimals)
    product = per_gas * rate * GAS_EXCHANGE_RATE_SCALE  # origin smallest units per gas, x 1e10
    gas_price = max(1, math.ceil(per_gas))
    exchange_rate = min(UINT128_MAX, max(1, math.ceil(product / gas_price)))
    minimum = math.ceil(Fraction(floor_usd) / Fraction(origin_usd) * 10**origin_decimals)
    return GasOracleEntry(destination, exchange_rate, min(gas_price, UINT128_MAX), min(minimum, UINT128_MAX), 0.0)


def floor_usd(floors: Sequence[GasFloor], origin: str, destination: str) -> float:
    """The route's USD floor: the first matching entry of ``floors`` (0 when none matches)."""
    for floor in floors:
        if floor.origin in ("*", origin) and floor.destination in ("*", destination):
            return floor.usd
    return 0.0


def moved(current: GasOracleEntry, wanted: GasOracleEntry, deviation: float) -> bool:
    """Whether ``current`` is off ``wanted`` by more than ``deviation`` in price per gas or minimum payment."""
    def off(a: int, b: int) -> bool:
        return abs(a - b) > deviation * max(b, 1)
    return (off(current.gas_price * current.exchange_rate, wanted.gas_price * wanted.exchange_rate)
            or off(current.minimum_payment, wanted.minimum_payment))


class GasOracleKeeper:
    def __init__(self, settings: Settings, oracle: GasOracleSettings, adapters: Mapping[str, ChainAdapter],
                 updater_key: str, metrics: Metrics, *, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.oracle = oracle
        self.adapters = adapters
        self.updater_key = updater_key  # never logged
        self.metrics = metrics
        self.clock = clock
        self.origins = {n: a for n, a in adapters.items() if isinstance(a, GasPaymaster) and a.has_paymaster()}

    async def run_once(self) -> int:
        """Read prices, rewrite what moved on every origin; returns the number of entries written."""
        prices = await self._prices()
        written = 0
        for name, paymaster in self.origins.items():
            try:
                written += await self._keep(name, paymaster, prices)
            except AdapterError as exc:  # its entries could not be read: their ages are unknown, the next run retries
                self.metrics.inc("relayer_gas_oracle_updates_total", origin=name, result="failed")
                log.warning("gas_oracle_read_failed", origin=name, error=str(exc)[:300])
        return written

    async def _prices(self) -> Prices:
        per_gas: dict[str, Fraction] = {}
        decimals: dict[str, int] = {}
        for name, adapter in self.adapters.items():
            if not isinstance(adapter, CapacitySource):
                continue
            try:
                stats = await adapter.chain_stats(blocks=5)
            except AdapterError as exc:
                log.warning("gas_oracle_price_unavailable", chain=name, error=str(exc)[:200])
                continue
            per_gas[name], decimals[name] = price_per_gas(stats), stats.native_decimals
        return Prices(per_gas, decimals)

    async def _keep(self, origin: str, paymaster: GasPaymaster, prices: Prices) -> int:
        destinations = {self.settings.chains[n].domain: n for n in self.settings.chains if n != origin}
        current = {e.destination: e for e in await paymaster.gas_oracle_entries(list(destinations))}
        now = self.clock()
        changed = []
        for domain, name in destinations.items():
            wanted = self._wanted(origin, name, domain, prices)
            entry = current[domain]
            if wanted is not None and (entry.updated_at == 0 or now - entry.updated_at > self.oracle.max_age_s / 2
                                       or moved(entry, wanted, self.oracle.deviation)):
                changed.append(wanted)
        written = {e.destination for e in changed} if await self._write(origin, paymaster, changed) else set()
        for domain, name in destinations.items():
            self._observe_age(origin, name, now if domain in written else current[domain].updated_at, now)
        return len(written)

    async def _write(self, origin: str, paymaster: GasPaymaster, entries: list[GasOracleEntry]) -> bool:
        if not entries:
            return False
        try:
            tx = await paymaster.write_gas_oracle(self.updater_key, entries)
        except AdapterError as exc:
            self.metrics.inc("relayer_gas_oracle_updates_total", origin=origin, result="failed")
            log.warning("gas_oracle_update_failed", origin=origin, error=str(exc)[:300])
            return False
        self.metrics.inc("relayer_gas_oracle_updates_total", origin=origin, result="written")
        log.info("gas_oracle_updated", origin=origin, tx=tx, entries=len(entries))
        return True

    def _wanted(self, origin: str, destination: str, domain: int, prices: Prices) -> GasOracleEntry | None:
        if origin not in prices.decimals or destination not in prices.per_gas:
            return None
        return desired_entry(domain, prices.per_gas[destination], self.settings.native_usd(origin),
                             prices.decimals[origin], self.settings.native_usd(destination),
                             prices.decimals[destination], self._floor_usd(origin, destination))

    def _floor_usd(self, origin: str, destination: str) -> float:
        return floor_usd(self.oracle.floors, origin, destination)

    def _observe_age(self, origin: str, destination: str, updated_at: float, now: float) -> None:
        """The entry's age (-1: never written) and whether it is stale."""
        age = now - updated_at if updated_at else math.inf
        stale = age > self.oracle.max_age_s
        self.metrics.set("relayer_gas_oracle_age_seconds", age if updated_at else -1.0, origin=origin,
                         destination=destination)
        self.metrics.set("relayer_gas_oracle_stale", 1.0 if stale else 0.0, origin=origin, destination=destination)
        if stale:
            log.warning("gas_oracle_stale", origin=origin, destination=destination,
                        age_s=round(age, 1) if updated_at else None, max_age_s=self.oracle.max_age_s)


DEFAULT_FLOORS = (GasFloor(usd=0.01),)  # relayer.gas_oracle's default, when it is not configured


class RelayerQuotes:
    """The quotes of an origin with no on-chain oracle (Solana, Cosmos: senders pay the relayer's fee account):
    per destination, the entry the keeper would write there (``desired_entry``: the destination's live fees,
    ``router.native_usd(_by_chain)``, the route's USD floor from ``relayer.gas_oracle.floors``), computed when asked
    (``GasPolicy`` keeps each for ``QUOTE_MAX_AGE_S``). A destination whose fees cannot be read has no price
    (``updated_at`` 0); one that fails to answer raises ``AdapterError``."""

    def __init__(self, settings: Settings, origin: str, adapters: Mapping[str, ChainAdapter], *,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.origin = origin
        self.adapters = adapters
        self.floors = settings.relayer.gas_oracle.floors if settings.relayer.gas_oracle else list(DEFAULT_FLOORS)
        self.clock = clock
        self.names = {c.domain: n for n, c in settings.chains.items()}

    async def gas_oracle_entries(self, destinations: Sequence[int]) -> list[GasOracleEntry]:
        decimals = await self._origin_decimals()
        return [await self._entry(d, decimals) for d in destinations]

    async def _origin_decimals(self) -> int:
        origin = self.adapters[self.origin]
        if isinstance(origin, WalletSource):
            return origin.native_decimals
        if isinstance(origin, CapacitySource):
            return (await origin.chain_stats(blocks=1)).native_decimals
        raise RpcError(f"{self.origin}: no native decimals to quote in", chain=self.origin, reason="no quote")

    async def _entry(self, domain: int, origin_decimals: int) -> GasOracleEntry:
        name = self.names.get(domain)
        adapter = self.adapters.get(name) if name else None
        if name is None or name == self.origin or not isinstance(adapter, CapacitySource):
            return GasOracleEntry(domain, 0, 0, 0, 0.0)
        stats = await adapter.chain_stats(blocks=5)
        entry = desired_entry(domain, price_per_gas(stats), self.settings.native_usd(self.origin), origin_decimals,
                              self.settings.native_usd(name), stats.native_decimals,
                              floor_usd(self.floors, self.origin, name))
        return GasOracleEntry(domain, entry.exchange_rate, entry.gas_price, entry.minimum_payment, self.clock())


def quote_sources(settings: Settings, adapters: Mapping[str, ChainAdapter]) -> dict[int, GasQuoteSource]:
    """Per origin domain where senders pay: its on-chain oracle (EVM ``GasPaymaster``), or the relayer's own quotes
    (``RelayerQuotes``) for an origin paid through its fee account (Solana, Cosmos)."""
    sources: dict[int, GasQuoteSource] = {}
    for name, adapter in adapters.items():
        if not isinstance(adapter, GasPaymentSource) or not adapter.has_paymaster():
            continue
        domain = settings.chains[name].domain
        sources[domain] = adapter if isinstance(adapter, GasQuoteSource) else RelayerQuotes(settings, name, adapters)
    return sources
