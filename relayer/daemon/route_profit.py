"""Profit and loss per route: what senders paid this relayer's paymasters for a route's messages against the gas its
deliveries spent, both from the store (payments as indexed, fees from delivery receipts), in USD at
``router.native_usd(_by_chain)``. Exported every 15 s as ``relayer_route_fees_collected_usd``,
``relayer_route_gas_spent_usd`` and ``relayer_route_profit_usd`` (``{origin,destination}``), and served to the
explorer (``GET /v1/routes/profit``). Everything in it is public on chain (payments and delivery fees), so it is
no secret of the operator's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from adapters.base import ChainAdapter, WalletSource
from config.settings import Settings
from relayer.daemon.metrics import Metrics
from relayer.store import RouteMoney, Store


@dataclass(frozen=True)
class RouteProfit:
    origin: str
    destination: str
    fees_collected_usd: float
    gas_spent_usd: float
    payments: int

    @property
    def profit_usd(self) -> float:
        return self.fees_collected_usd - self.gas_spent_usd

    def view(self) -> dict[str, Any]:
        return {"origin": self.origin, "destination": self.destination, "payments": self.payments,
                "fees_collected_usd": round(self.fees_collected_usd, 6), "gas_spent_usd": round(self.gas_spent_usd, 6),
                "profit_usd": round(self.profit_usd, 6)}


class RouteProfits:
    def __init__(self, settings: Settings, adapters: Mapping[str, ChainAdapter], store: Store,
                 metrics: Metrics) -> None:
        self.settings = settings
        self.store = store
        self.metrics = metrics
        self.names = {c.domain: n for n, c in settings.chains.items()}
        self.decimals = {n: a.native_decimals if isinstance(a, WalletSource) else 18 for n, a in adapters.items()}

    async def current(self) -> list[RouteProfit]:
        return [self._priced(r) for r in await self.store.aio.route_money() if r.origin in self.names
                and r.destination in self.names]

    def _usd(self, chain: str, smallest_units: float) -> float:
        return smallest_units / 10 ** self.decimals.get(chain, 18) * self.settings.native_usd(chain)

    def _priced(self, r: RouteMoney) -> RouteProfit:
        origin, destination = self.names[r.origin], self.names[r.destination]
        return RouteProfit(origin, destination, self._usd(origin, r.fees_collected),
                           self._usd(destination, r.gas_spent), r.payments)

    async def refresh(self) -> None:
        """Set the per-route gauges from the store."""
        for p in await self.current():
            labels = {"origin": p.origin, "destination": p.destination}
            self.metrics.set("relayer_route_fees_collected_usd", p.fees_collected_usd, **labels)
            self.metrics.set("relayer_route_gas_spent_usd", p.gas_spent_usd, **labels)
            self.metrics.set("relayer_route_profit_usd", p.profit_usd, **labels)
