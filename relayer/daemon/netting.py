"""The netting keeper: the permissionless pool calls the relayer makes for everyone (issue 16's fast liquidity route).

Every ``interval`` (2 s), for each pooled token and each pair of chains with a pool of it, the keeper reads both pools
about the epochs not yet settled on both sides (from the oldest open one, at most ``MAX_EPOCHS_PER_ROUND`` a round) and:

- **settles** each closed epoch with any flow between the two (a deposit either way, or the other side's settlement
  already received): ``settle(remote, epoch)`` on each side that has not, one message per direction and epoch that
  carries the epoch's total. Both directions go, whatever the flow, since each side burns or mints its own net only
  when the other side's total arrives;
- **completes** a settlement that arrived before its side could apply it (its own epoch still open, deposits still in
  flight, or a mint/burn that failed): ``completeSettlement`` once the pool has every deposit the settlement counts;
  the contract checks it again and waits (never loses) if not;
- **releases** deferred payouts once the pool holds everything it owes.

An epoch counts as done for a pair when every settlement with flow went out and was applied on both sides; the scan
starts at the oldest epoch not done (``LOOKBACK_EPOCHS`` before the current one at start). Failures are logged and
retried next round. Metrics: ``relayer_pool_liquidity_tokens``, ``relayer_pool_owed_tokens``,
``relayer_pool_deferred_payouts``, ``relayer_pool_settlements_waiting``, ``relayer_pool_settlements_sent_total``,
``relayer_pool_settlements_completed_total``, ``relayer_pool_payouts_released_total``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import structlog

from adapters.base import AdapterError, ChainAdapter
from adapters.capabilities import LiquidityPools, PoolEpoch, PoolState
from config.settings import Settings
from relayer.daemon.metrics import Metrics

log = structlog.get_logger("relayer.daemon.netting")

LOOKBACK_EPOCHS = 12
MAX_EPOCHS_PER_ROUND = 64


@dataclass(frozen=True, slots=True)
class PoolSide:
    chain: str
    domain: int
    pools: LiquidityPools
    decimals: int


class NettingKeeper:
    """Settles, completes and releases for every pooled token on ``adapters`` (those that can sign)."""

    def __init__(self, settings: Settings, adapters: Mapping[str, ChainAdapter], metrics: Metrics) -> None:
        self.metrics = metrics
        self.sides: dict[str, list[PoolSide]] = {}
        for name, adapter in adapters.items():
            if not isinstance(adapter, LiquidityPools) or settings.chains[name].signer is None:
                continue
            for symbol in adapter.pooled_tokens():
                decimals = settings.chains[name].tokens[symbol].decimals
                self.sides.setdefault(symbol, []).append(PoolSide(name, settings.chains[name].domain, adapter,
                                                                  decimals))
        self.scan_from: dict[tuple[str, str, str], int] = {}  # (symbol, chain a, chain b) -> oldest epoch not done

    @property
    def active(self) -> bool:
        return any(len(sides) > 1 for sides in self.sides.values())

    async def run_once(self) -> None:
        for symbol, sides in self.sides.items():
            states: dict[str, PoolState] = {}  # each pool read once a round, for its payouts and its pairs
            for side in sides:
                state = await self._release(symbol, side)
                if state is not None:
                    states[side.chain] = state
            waiting = dict.fromkeys((side.chain for side in sides), 0)
            for i, a in enumerate(sides):
                for b in sides[i + 1:]:
                    if a.chain not in states or b.chain not in states:
                        continue  # unreadable this round: pool_release_failed was logged
                    try:
                        here, there = await self._settle_pair(symbol, a, b, states[a.chain], states[b.chain])
                    except AdapterError as exc:
                        log.warning("netting_round_failed", token=symbol, chains=[a.chain, b.chain],
                                    error=str(exc)[:300])
                        continue
                    waiting[a.chain] += here
                    waiting[b.chain] += there
            for chain, count in waiting.items():
                self.metrics.set("relayer_pool_settlements_waiting", count, chain=chain, token=symbol)

    async def _settle_pair(self, symbol: str, a: PoolSide, b: PoolSide, state_a: PoolState,
                           state_b: PoolState) -> tuple[int, int]:
        """One round for the pools of ``a`` and ``b``: the settlements each holds that are not applied yet."""
        key = (symbol, a.chain, b.chain)
        current = min(state_a.epoch, state_b.epoch)
        first = self.scan_from.setdefault(key, max(0, current - LOOKBACK_EPOCHS))
        epochs = list(range(first, min(current, first + MAX_EPOCHS_PER_ROUND)))
        if not epochs:
            return 0, 0
        ours = await a.pools.pool_epochs(symbol, b.domain, epochs)
        theirs = await b.pools.pool_epochs(symbol, a.domain, epochs)
        waiting_a = waiting_b = 0
        done_through = first
        for here, there in zip(ours, theirs, strict=True):
            flow = here.has_flow or there.has_flow
            await self._act(symbol, a, here, flow)
            await self._act(symbol, b, there, flow)
            finished = not flow or (here.settled_out and there.settled_out and here.settlement_in == "done"
                                    and there.settlement_in == "done")
            waiting_a += here.settlement_in == "pending"
            waiting_b += there.settlement_in == "pending"
            if finished and done_through == here.epoch:
                done_through = here.epoch + 1
        self.scan_from[key] = done_through
        return waiting_a, waiting_b

    async def _act(self, symbol: str, side: PoolSide, epoch: PoolEpoch, flow: bool) -> None:
        """Settle ``epoch`` on ``side`` when it had flow and was not; complete the remote's settlement once every
        deposit it counts arrived here."""
        if flow and not epoch.settled_out:
            tx = await side.pools.pool_settle(symbol, epoch.remote, epoch.epoch)
            self.metrics.inc("relayer_pool_settlements_sent_total", chain=side.chain, token=symbol)
            log.info("pool_settlement_sent", chain=side.chain, token=symbol, remote=epoch.remote, epoch=epoch.epoch,
                     sent=str(epoch.sent), deposits=epoch.sent_count, tx=tx)
        if epoch.settlement_in == "pending" and epoch.received_count == epoch.remote_count:
            tx = await side.pools.pool_complete(symbol, epoch.remote, epoch.epoch)
            self.metrics.inc("relayer_pool_settlements_completed_total", chain=side.chain, token=symbol)
            log.info("pool_settlement_completed", chain=side.chain, token=symbol, remote=epoch.remote,
                     epoch=epoch.epoch, tx=tx)

    async def _release(self, symbol: str, side: PoolSide) -> PoolState | None:
        """The pool's state (None when it cannot be read), after releasing what it can pay of its deferred payouts
        (a failed release is logged; the state still serves the round's settlements)."""
        try:
            state = await side.pools.pool_state(symbol)
        except AdapterError as exc:
            log.warning("pool_release_failed", chain=side.chain, token=symbol, error=str(exc)[:300])
            return None
        unit = 10 ** side.decimals
        self.metrics.set("relayer_pool_liquidity_tokens", state.balance / unit, chain=side.chain, token=symbol)
        self.metrics.set("relayer_pool_owed_tokens", state.owed / unit, chain=side.chain, token=symbol)
        try:
            await self._release_payouts(symbol, side, state)
        except AdapterError as exc:
            log.warning("pool_release_failed", chain=side.chain, token=symbol, error=str(exc)[:300])
        return state

    async def _release_payouts(self, symbol: str, side: PoolSide, state: PoolState) -> None:
        if state.owed == 0:
            self.metrics.set("relayer_pool_deferred_payouts", 0, chain=side.chain, token=symbol)
            return
        payouts = await side.pools.deferred_payouts(symbol)
        self.metrics.set("relayer_pool_deferred_payouts", len(payouts), chain=side.chain, token=symbol)
        if state.balance < state.owed:
            return  # it waits for the epoch's settlement to mint the pool's share back
        for payout in payouts:
            tx = await side.pools.pool_release(symbol, payout.payout_id)
            self.metrics.inc("relayer_pool_payouts_released_total", chain=side.chain, token=symbol)
            log.info("pool_payout_released", chain=side.chain, token=symbol, payout=payout.payout_id,
                     recipient=payout.recipient, amount=str(payout.amount), tx=tx)
