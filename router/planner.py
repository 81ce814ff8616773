"""The planner: assign each intent to a chain (or a cross-chain route) for the coming window.

Goal, for a batch of intents and the chains' live capacity (``CapacityModel``):

* every intent's constraints hold: a chain it allows, where its token has liquidity, fee <= ``max_fee_usd``,
  expected latency <= ``max_latency_s``; a cross-chain transfer also needs room on its origin;
* no chain gets more than its window capacity (its fee-market target minus others' use and our backlog), so
  no base fee is pushed up by us;
* within that, the least ``fee + latency_weight x latency``; chains within ``near_equal`` (10%) of an intent's
  cheapest are interchangeable for it, and share load in proportion to their spare capacity, so one does
  not fill while an equal one idles.

How (all numpy over an ``intents x chains`` cost matrix, float32):

1. Feasibility mask and base cost. Infeasible cells cost +inf; a row with none feasible is unserved with
   the first constraint that emptied it (``Reason``). Cross-chain origin legs are placed first (they have
   no choice): an origin without room leaves the intent unserved with ``Reason.ORIGIN``.
2. Each intent draws a chain among its near-cheapest ones, weighted by their spare capacity (seeded).
3. Water-filling: each chain takes its intents in a seeded priority order up to its capacity; intents that
   do not fit draw again among the chains that still have room for them (again near-cheapest first,
   weighted by remaining capacity), for a few rounds; what is left is unserved with ``Reason.CAPACITY``.
   A large batch thus fills the cheapest chains to their targets, then the next, with near-equal chains
   filling together in proportion to spare capacity.

The same seed and inputs give the same assignment.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass

import numpy as np

from router.capacity import CapacityModel

# Gas of the origin leg of a cross-chain token transfer, in token transfers (~55k gas) on the chain that runs
# it: TokenBridge.transferRemote (burn/lock + Mailbox.dispatch + tree insert, ~110k: assumed). The destination
# leg is the destination chain's payout (``CapacityModel.payout_gas``; EVM: ``capacity.XCHAIN_DEST_WORK`` transfers).
XCHAIN_ORIGIN_WORK = 2.0
RELAY_OVERHEAD_S = 4.0            # validators attest + relayer gathers a quorum and submits, after finality
LATENCY_WEIGHT_USD_PER_S = 1e-4   # what a second of waiting is worth to the user
NEAR_EQUAL = 0.1                  # chains within 10% of an intent's cheapest are interchangeable for it


class Kind(enum.IntEnum):
    TRANSFER = 0     # token transfer on one chain
    CALL = 1         # contract call on one chain
    XCHAIN = 2       # token transfer origin -> relay -> destination


class Reason(enum.IntEnum):
    OK = 0
    NO_CHAIN = 1     # no allowed chain where the liquidity is (or only the origin itself)
    FEE = 2          # every candidate costs more than max_fee
    LATENCY = 3      # every candidate is slower than max_latency
    CAPACITY = 4     # the candidates are full (or drained) for this window
    ORIGIN = 5       # cross-chain: the origin is drained or full


@dataclass(frozen=True, slots=True)
class Intents:
    """A batch of intents as a struct of arrays; ``n`` rows, ``C`` chains (columns as in the model)."""

    kind: np.ndarray          # (n,) int8, Kind
    work: np.ndarray          # (n,) float32, gas in token transfers on the chain that runs it (call: > 1)
    amount: np.ndarray        # (n,) float64, token amount, carried through
    allowed: np.ndarray       # (n, C) bool, chains the intent accepts (destination, for XCHAIN)
    liquidity: np.ndarray     # (n, C) bool, chains where its token / pool is
    max_fee_usd: np.ndarray   # (n,) float32
    max_latency_s: np.ndarray  # (n,) float32
    origin: np.ndarray        # (n,) int16, origin chain of an XCHAIN intent, -1 otherwise

    def __len__(self) -> int:
        return int(self.kind.shape[0])

    def validate(self, chains: int) -> None:
        n = len(self)
        for name in ("work", "amount", "max_fee_usd", "max_latency_s", "origin"):
            if getattr(self, name).shape != (n,):
                raise ValueError(f"intents.{name}: expected shape ({n},), got {getattr(self, name).shape}")
        for name in ("allowed", "liquidity"):
            if getattr(self, name).shape != (n, chains):
                raise ValueError(f"intents.{name}: expected shape ({n}, {chains}), got {getattr(self, name).shape}")
        xchain = self.kind == Kind.XCHAIN
        if np.any(xchain & ((self.origin < 0) | (self.origin >= chains))) or np.any(~xchain & (self.origin != -1)):
            raise ValueError("intents.origin: a chain index for XCHAIN intents, -1 for the others")


@dataclass(frozen=True, slots=True)
class Assignment:
    """The plan: ``chain[i]`` runs intent i (the destination of a cross-chain route; -1: unserved, see
    ``reason[i]``), ``origin[i]`` is where it starts (== chain for same-chain intents)."""

    chain: np.ndarray         # (n,) int16
    origin: np.ndarray        # (n,) int16
    reason: np.ndarray        # (n,) int8, Reason
    fee_usd: np.ndarray       # (n,) float32, expected
    latency_s: np.ndarray     # (n,) float32, expected
    gas: np.ndarray           # (n,) float64, gas on ``chain``
    origin_gas: np.ndarray    # (n,) float64, gas on ``origin`` (XCHAIN only, else 0)
    planned_gas: np.ndarray   # (C,) gas assigned to each chain, both legs
    capacity_gas: np.ndarray  # (C,) what each chain could take in this window

    @property
    def served(self) -> np.ndarray:
        return self.chain >= 0


@dataclass(frozen=True, slots=True)
class RouteCosts:
    """What running each intent on each chain would cost and take: the planner plans with it and ``/v1/quote``
    lists its options from it (one computation, so a quote's route and its options agree). Fees and latencies are
    float32 (the planner's cost matrix), gas float64."""

    dest_fee_usd: np.ndarray    # (n, C) the leg on each chain (a cross-chain intent: the destination's payout)
    origin_fee_usd: np.ndarray  # (n,) a cross-chain intent's origin leg, else 0
    latency_s: np.ndarray       # (n, C) submission to inclusion there (a cross-chain intent: origin finality + relay)
    origin_gas: np.ndarray      # (n,) gas of the origin leg (XCHAIN only, else 0)
    work: np.ndarray            # (n,) float64, the intents' work (token transfers; a cross-chain one: payouts)
    xchain: np.ndarray          # (n,) bool
    transfer_gas: np.ndarray    # (C,) gas of one unit of work on each chain: a token transfer ...
    payout_gas: np.ndarray      # (C,) ... or, for a cross-chain intent, a payout

    @property
    def fee_usd(self) -> np.ndarray:
        """(n, C) the whole route: the leg on the chain plus the origin leg."""
        return self.dest_fee_usd + self.origin_fee_usd[:, None]

    def gas(self, rows: np.ndarray, chains: np.ndarray) -> np.ndarray:
        """Gas of intents ``rows`` on ``chains`` (same shape): their work in that chain's transfers or payouts."""
        unit = np.where(self.xchain[rows], self.payout_gas[chains], self.transfer_gas[chains])
        return np.asarray(self.work[rows] * unit)

    def gas_matrix(self, rows: np.ndarray) -> np.ndarray:
        """(len(rows), C) gas of intents ``rows`` on every chain."""
        w = self.work[rows, None]
        out = np.asarray(w * self.transfer_gas[None, :])
        x = np.flatnonzero(self.xchain[rows])
        if x.size:
            out[x] = w[x] * self.payout_gas[None, :]
        return out


def route_costs(kind: np.ndarray, work: np.ndarray, origin: np.ndarray, model: CapacityModel, *,
                relay_overhead_s: float = RELAY_OVERHEAD_S) -> RouteCosts:
    """Fee and latency of each intent (``kind``, ``work``, ``origin`` as in ``Intents``) on each chain of ``model``.

    A same-chain intent pays ``work`` transfers there (``transfer_fee``, ``CapacityModel``); a cross-chain one pays
    ``XCHAIN_ORIGIN_WORK x work`` transfers on its origin plus ``work`` payouts on the destination (each chain's own
    payout: its gas at its fee per gas plus its fixed payout fee), and waits for the origin's inclusion and finality
    and the relay before the destination's inclusion."""
    xchain = kind == Kind.XCHAIN
    w = work.astype(np.float32, copy=False)
    o = np.where(xchain, origin, 0).astype(np.intp)
    fee_gas = model.fee_per_gas_usd()
    unit_fee = (fee_gas * model.transfer_gas).astype(np.float32)        # USD per transfer's gas
    tx_fee = model.tx_fee_usd().astype(np.float32)
    incl = model.inclusion_latency_s().astype(np.float32)
    dest_fee = w[:, None] * unit_fee[None, :] + tx_fee[None, :]
    x = np.flatnonzero(xchain)
    if x.size:  # cross-chain rows pay each destination's payout instead
        payout_gas_fee = (fee_gas * model.payout_gas).astype(np.float32)
        dest_fee[x] = w[x, None] * payout_gas_fee[None, :] + model.payout_tx_fee_usd().astype(np.float32)[None, :]
    origin_fee = np.where(xchain, XCHAIN_ORIGIN_WORK * w * unit_fee[o] + tx_fee[o], 0).astype(np.float32)
    origin_lat = np.where(xchain, incl[o] + model.finality_s[o] + relay_overhead_s, 0).astype(np.float32)
    return RouteCosts(dest_fee_usd=dest_fee, origin_fee_usd=origin_fee, latency_s=incl[None, :] + origin_lat[:, None],
                      origin_gas=np.where(xchain, XCHAIN_ORIGIN_WORK * w * model.transfer_gas[o], 0.0),
                      work=w.astype(np.float64), xchain=xchain, transfer_gas=model.transfer_gas,
                      payout_gas=model.payout_gas)


def _fill(chain: np.ndarray, gas: np.ndarray, capacity: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """Which assigned rows fit: per chain, rows in ``rank`` order while their running gas <= capacity."""
    keep = np.zeros(chain.shape[0], dtype=bool)
    rows = np.flatnonzero(chain >= 0)
    if rows.size == 0:
        return keep
    order = rows[np.lexsort((rank[rows], chain[rows]))]
    ch = chain[order]
    g = gas[order]
    running = np.cumsum(g)
    first = np.searchsorted(ch, ch, side="left")
    within = running - (running[first] - g[first])
    keep[order[within <= capacity[ch] * (1 + 1e-9)]] = True
    return keep


def _spread(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` evenly spaced points in (0, 1) in a seeded random order: a draw that splits identical rows in
    exact proportion (stratified), not just on average."""
    return (rng.permutation(n) + 0.5) / max(n, 1)


def _pick(cost: np.ndarray, capacity_work: np.ndarray, u: np.ndarray, near_equal: float) -> np.ndarray:
    """Per row, a chain among those within ``near_equal`` of the row's cheapest, drawn with probability in
    proportion to each one's spare capacity (``u``: uniform draws, one per row); -1 when none is finite."""
    best = cost.min(axis=1)
    near = cost <= (best * np.float32(1 + near_equal))[:, None]
    weight = np.cumsum(np.where(near, capacity_work[None, :], 0.0), axis=1)
    total = weight[:, -1]
    pick = np.minimum((weight <= (u * total)[:, None]).sum(axis=1), cost.shape[1] - 1).astype(np.int16)
    pick[~np.isfinite(best) | (total <= 0)] = -1
    return pick


def plan(intents: Intents, model: CapacityModel, *, window_s: float, seed: int = 0, now_s: float = 0.0,
         latency_weight: float = LATENCY_WEIGHT_USD_PER_S, near_equal: float = NEAR_EQUAL, fill_rounds: int = 8,
         relay_overhead_s: float = RELAY_OVERHEAD_S) -> Assignment:
    """Plan one window; see the module docstring. Never assigns more than ``model``'s window capacity."""
    n, nc = len(intents), len(model)
    intents.validate(nc)
    rng = np.random.default_rng(seed)
    rank = rng.permutation(n)
    capacity = model.window_capacity_gas(window_s, now_s)
    tg = model.transfer_gas

    xchain = intents.kind == Kind.XCHAIN
    origin = intents.origin.astype(np.intp)
    o = np.where(xchain, origin, 0)
    costs = route_costs(intents.kind, intents.work, origin, model, relay_overhead_s=relay_overhead_s)
    origin_gas = costs.origin_gas
    fee = costs.fee_usd
    lat = costs.latency_s
    candidate = intents.allowed & intents.liquidity
    candidate[np.flatnonzero(xchain), o[xchain]] = False
    fee_ok = candidate & (fee <= intents.max_fee_usd[:, None])
    lat_ok = fee_ok & (lat <= intents.max_latency_s[:, None])
    feasible = lat_ok & (capacity > 0)[None, :]

    reason = np.full(n, Reason.OK, dtype=np.int8)
    reason[~feasible.any(1)] = Reason.CAPACITY
    reason[~lat_ok.any(1)] = Reason.LATENCY
    reason[~fee_ok.any(1)] = Reason.FEE
    reason[~candidate.any(1)] = Reason.NO_CHAIN

    # origin legs first: they have no choice of chain
    cap_left = capacity.copy()
    xrows = xchain & (reason == Reason.OK)
    origin_drained = xrows & (capacity[o] <= 0)
    reason[origin_drained] = Reason.ORIGIN
    xrows &= ~origin_drained
    fits = _fill(np.where(xrows, o, -1), origin_gas, cap_left, rank)
    reason[xrows & ~fits] = Reason.ORIGIN
    np.subtract.at(cap_left, o[fits], origin_gas[fits])
    cap_left = np.maximum(cap_left, 0.0)

    live = np.flatnonzero(reason == Reason.OK)
    chain = np.full(n, -1, dtype=np.int16)
    if live.size:
        cost = fee[live] + np.float32(latency_weight) * lat[live]
        cost[~feasible[live]] = np.inf
        cost[:, cap_left <= 0] = np.inf
        assigned = np.full(live.size, -1, dtype=np.int16)
        pick = _pick(cost, cap_left / tg, _spread(rng, live.size), near_equal)
        for _ in range(fill_rounds):
            g = np.where(pick >= 0, costs.gas(live, np.maximum(pick, 0)), 0.0)
            keep = _fill(pick, g, cap_left, rank[live])
            assigned[keep] = pick[keep]
            np.subtract.at(cap_left, pick[keep], g[keep])
            cap_left = np.maximum(cap_left, 0.0)
            spilled = np.flatnonzero((pick >= 0) & ~keep)
            if spilled.size == 0:
                break
            sub = cost[spilled]
            sub[costs.gas_matrix(live[spilled]) > cap_left[None, :]] = np.inf
            pick = np.full(live.size, -1, dtype=np.int16)
            pick[spilled] = _pick(sub, cap_left / tg, _spread(rng, spilled.size), near_equal)
        chain[live] = assigned
        reason[live[assigned < 0]] = Reason.CAPACITY

    served = chain >= 0
    c = np.maximum(chain, 0)
    rows = np.arange(n)
    gas = np.where(served, costs.gas(rows, c), 0.0)
    out_origin_gas = np.where(served & xchain, origin_gas, 0.0)
    planned = np.bincount(c[served], weights=gas[served], minlength=nc)
    planned += np.bincount(o[served & xchain], weights=out_origin_gas[served & xchain], minlength=nc)
    return Assignment(
        chain=chain,
        origin=np.where(served, np.where(xchain, origin, chain), -1).astype(np.int16),
        reason=reason,
        fee_usd=np.where(served, fee[rows, c], np.nan).astype(np.float32),
        latency_s=np.where(served, lat[rows, c], np.nan).astype(np.float32),
        gas=gas,
        origin_gas=out_origin_gas,
        planned_gas=planned,
        capacity_gas=capacity,
    )


def benchmark_decisions_per_s(model: CapacityModel, intents: Intents, *, window_s: float = 1.0, repeat: int = 3,
                              seed: int = 0) -> float:
    """Intents planned per second of one core's wall time: the best of ``repeat`` runs of ``plan``."""
    best = float("inf")
    for r in range(repeat):
        started = time.perf_counter()
        plan(intents, model, window_s=window_s, seed=seed + r)
        best = min(best, time.perf_counter() - started)
    return len(intents) / best
