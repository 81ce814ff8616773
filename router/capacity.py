"""Per-chain capacity: the static profile of a chain and the live state the planner plans against.

A chain's *capacity* for the router is the gas (or compute) per second it can take while staying at or below
its fee-market target: ``target_utilisation x gas_limit / block_time`` (EIP-1559: half the limit; OP Stack and
Base use a lower target, Arbitrum a gas-per-second "speed limit"), minus the load other users put on it, minus
what we already submitted and is not yet included. A chain that stops answering, or answers mostly with
errors, is *drained*: its capacity is zero until it recovers, so the planner moves load away instead of
retrying into it.

Fees are in USD so chains with different native tokens compare, each at its own native token's price
(``native_usd``, per chain). Two figures per chain, from its own fee unit:

* a *transfer* (a same-chain token transfer, or the origin leg of a cross-chain one):
  ``((base_fee + priority_fee) x transfer_gas + tx_fee) x native_usd``;
* a *payout* (the destination leg of a cross-chain transfer, delivered by the relayer):
  ``((base_fee + priority_fee) x payout_gas + payout_fee) x native_usd``.

``tx_fee`` covers per-transaction charges (an OP Stack rollup's L1 data fee, a Solana signature); ``payout_fee``
the fixed cost of a delivery (default: ``tx_fee``). Per family, as the adapters report them (``ChainStats``):
EVM: the live base fee plus the tip we offer, per gas; ``payout_gas`` is ``XCHAIN_DEST_WORK`` transfers.
Cosmos: no base fee; a transaction declares gas x gas price in the fee denom, charged whole, so ``tx_fee`` and
``payout_fee`` are those declared fees and ``payout_gas`` the delivery's gas. Solana: no fee per compute unit;
``payout_fee`` is the signatures, the priority fee and the rent of the accounts a delivery opens (replay guards,
the recipient's token account), in lamports; ``payout_gas`` the compute units it takes (capacity only).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from adapters.message import Domain
from config.settings import ChainFamily

# Gas of delivering one cross-chain token transfer on an EVM destination, in token transfers (~55k gas) of that
# chain: a message's share of Mailbox.processBatch (33k gas measured, README "Benchmarks") plus the mint/unlock
# (~50k: assumed). Chains whose adapters know their payout's gas (Cosmos, Solana) say it (``payout_gas``).
XCHAIN_DEST_WORK = 1.5


@dataclass(frozen=True, slots=True)
class ChainProfile:
    """What is known about a chain before it is observed. Gas means compute units on Solana chains."""

    name: str
    domain: Domain
    family: ChainFamily
    block_time_s: float
    gas_limit: float                     # per block
    transfer_gas: float                  # gas of one token transfer, the unit of an intent's ``work``
    finality_s: float                    # inclusion -> finalized (what the relayer waits for)
    base_fee: float                      # native token per gas at start
    native_usd: float
    target_utilisation: float = 0.5     # fraction of gas_limit above which the base fee climbs
    base_fee_max_change: float = 0.125  # relative base fee change after a full block (0: no base-fee market)
    min_base_fee: float = 0.0
    priority_fee: float = 0.0           # native token per gas, paid on top of the base fee
    tx_fee: float = 0.0                 # native token per transaction
    payout_gas: float = 0.0             # gas of a delivery paying out one transfer (0: XCHAIN_DEST_WORK transfers)
    payout_fee: float | None = None     # native token per such delivery instead of tx_fee (None: tx_fee)
    background_utilisation: float = 0.0  # fraction of gas_limit used by everyone else
    scale_out: bool = False             # a projected chain, not one that exists today
    source: str = ""

    @property
    def target_gas_per_s(self) -> float:
        return self.target_utilisation * self.gas_limit / self.block_time_s

    @property
    def transfers_per_s_at_target(self) -> float:
        spare = (self.target_utilisation - self.background_utilisation) * self.gas_limit / self.block_time_s
        return max(0.0, spare) / self.transfer_gas


def next_base_fee(base_fee: np.ndarray, gas_used: np.ndarray, gas_limit: np.ndarray, target_utilisation: np.ndarray,
                  max_change: np.ndarray, min_base_fee: np.ndarray) -> np.ndarray:
    """EIP-1559 generalised to any elasticity: ``+max_change`` after a full block, ``0`` at target, and
    ``-max_change x target / (limit - target)`` after an empty one (Ethereum: +12.5% / -12.5%)."""
    target = target_utilisation * gas_limit
    delta = max_change * (gas_used - target) / (gas_limit - target)
    return np.maximum(base_fee * (1.0 + delta), min_base_fee)


class CapacityModel:
    """Live state of every chain, as numpy arrays indexed like ``chains``; fed by ``observe_*`` calls.

    ``now_s`` is whatever clock the caller runs on (the daemon: ``time.monotonic()``; the simulator: simulated
    seconds); a chain is answering while its last successful observation is at most ``stale_after_s`` old.
    """

    def __init__(self, chains: Sequence[ChainProfile], *, stale_after_s: float = 30.0, max_error_rate: float = 0.5,
                 ema_alpha: float = 0.2, now_s: float = 0.0) -> None:
        if not chains:
            raise ValueError("a capacity model needs at least one chain")
        self.chains = tuple(chains)
        self.index = {c.name: i for i, c in enumerate(self.chains)}
        if len(self.index) != len(self.chains):
            raise ValueError("chain names must be unique")
        self.stale_after_s = stale_after_s
        self.max_error_rate = max_error_rate
        self.ema_alpha = ema_alpha

        def col(attr: str) -> np.ndarray:
            return np.array([getattr(c, attr) for c in self.chains], dtype=np.float64)

        self.block_time_s = col("block_time_s")
        self.gas_limit = col("gas_limit")
        self.transfer_gas = col("transfer_gas")
        self.finality_s = col("finality_s")
        self.native_usd = col("native_usd")
        self.target_utilisation = col("target_utilisation")
        self.base_fee_max_change = col("base_fee_max_change")
        self.min_base_fee = col("min_base_fee")
        self.priority_fee = col("priority_fee")
        self.tx_fee = col("tx_fee")
        self.payout_gas = np.array([c.payout_gas or XCHAIN_DEST_WORK * c.transfer_gas for c in self.chains],
                                   dtype=np.float64)
        self.payout_fee = np.array([c.tx_fee if c.payout_fee is None else c.payout_fee for c in self.chains],
                                   dtype=np.float64)
        # live state
        self.base_fee = col("base_fee")
        self.base_fee_trend = np.zeros(len(chains))        # EMA of the relative change per block
        self.used_fraction_ema = col("background_utilisation")  # of gas_limit, everyone's use
        self.own_fraction_ema = np.zeros(len(chains))      # of gas_limit, our own inclusions
        self.pending_gas = np.zeros(len(chains))           # submitted by us, not yet included
        self.incoming_gas_per_s = np.zeros(len(chains))    # cross-chain deliveries on their way here
        self.error_rate = np.zeros(len(chains))            # EMA of failed observations
        self.last_ok_s = np.full(len(chains), now_s)

    def __len__(self) -> int:
        return len(self.chains)

    # ------------------------------------------------------------ observations
    def observe_blocks(self, chain: np.ndarray | Sequence[int] | int, *, gas_used: np.ndarray | float,
                       base_fee: np.ndarray | float | None = None, own_gas: np.ndarray | float = 0.0,
                       gas_limit: np.ndarray | float | None = None, now_s: float) -> None:
        """One new block on each of ``chain`` (indices): its gas used, its base fee (next block's, if known),
        how much of it was ours. Counts as a successful observation."""
        idx = np.atleast_1d(np.asarray(chain, dtype=np.intp))
        a = self.ema_alpha
        if gas_limit is not None:
            self.gas_limit[idx] = gas_limit
        limit = self.gas_limit[idx]
        self.used_fraction_ema[idx] = (1 - a) * self.used_fraction_ema[idx] + a * np.asarray(gas_used) / limit
        self.own_fraction_ema[idx] = (1 - a) * self.own_fraction_ema[idx] + a * np.asarray(own_gas) / limit
        if base_fee is not None:
            new = np.broadcast_to(np.asarray(base_fee, dtype=np.float64), idx.shape)
            old = self.base_fee[idx]
            change = np.divide(new - old, old, out=np.zeros_like(new), where=old > 0)
            self.base_fee_trend[idx] = (1 - a) * self.base_fee_trend[idx] + a * change
            self.base_fee[idx] = new
        self.observe_ok(idx, now_s=now_s)

    def observe_pending(self, chain: np.ndarray | Sequence[int] | int, pending_gas: np.ndarray | float) -> None:
        self.pending_gas[np.atleast_1d(np.asarray(chain, dtype=np.intp))] = pending_gas

    def observe_incoming(self, chain: np.ndarray | Sequence[int] | int, gas_per_s: np.ndarray | float) -> None:
        """The rate of destination legs of cross-chain transfers already dispatched towards ``chain``: they land
        after their origin's finality, so they are reserved as a rate rather than counted as pending."""
        self.incoming_gas_per_s[np.atleast_1d(np.asarray(chain, dtype=np.intp))] = gas_per_s

    def observe_ok(self, chain: np.ndarray | Sequence[int] | int, *, now_s: float) -> None:
        idx = np.atleast_1d(np.asarray(chain, dtype=np.intp))
        self.error_rate[idx] *= 1 - self.ema_alpha
        self.last_ok_s[idx] = now_s

    def observe_error(self, chain: np.ndarray | Sequence[int] | int) -> None:
        """A failed call (timeout, RPC error). Does not refresh ``last_ok_s``."""
        idx = np.atleast_1d(np.asarray(chain, dtype=np.intp))
        self.error_rate[idx] = (1 - self.ema_alpha) * self.error_rate[idx] + self.ema_alpha

    # ------------------------------------------------------------ what the planner reads
    def healthy(self, now_s: float) -> np.ndarray:
        return (now_s - self.last_ok_s <= self.stale_after_s) & (self.error_rate < self.max_error_rate)

    def target_gas_per_s(self) -> np.ndarray:
        return self.target_utilisation * self.gas_limit / self.block_time_s

    def spare_gas_per_s(self, now_s: float) -> np.ndarray:
        """Gas per second we may add while the chain stays at its target: zero for a drained chain."""
        background = (np.maximum(0.0, self.used_fraction_ema - self.own_fraction_ema) * self.gas_limit
                      / self.block_time_s)
        spare = np.maximum(0.0, self.target_gas_per_s() - background - self.incoming_gas_per_s)
        return np.where(self.healthy(now_s), spare, 0.0)

    def window_capacity_gas(self, window_s: float, now_s: float) -> np.ndarray:
        """Gas we may submit now: spare rate over the window (at least one block), less what is still pending."""
        horizon = np.maximum(window_s, self.block_time_s)
        return np.maximum(0.0, self.spare_gas_per_s(now_s) * horizon - self.pending_gas)

    def fee_per_gas_usd(self) -> np.ndarray:
        """Expected fee per gas in USD for the next block: the base fee moved on by its rising trend."""
        base = self.base_fee * (1.0 + np.maximum(self.base_fee_trend, 0.0))
        return (base + self.priority_fee) * self.native_usd

    def tx_fee_usd(self) -> np.ndarray:
        return self.tx_fee * self.native_usd

    def payout_tx_fee_usd(self) -> np.ndarray:
        """The fixed part of a payout's fee (a delivery's signatures, rent, declared fee), in USD."""
        return self.payout_fee * self.native_usd

    def payout_work(self) -> np.ndarray:
        """Gas of a payout in token transfers of its chain (EVM: ``XCHAIN_DEST_WORK``)."""
        return self.payout_gas / self.transfer_gas

    def transfer_fee_usd(self) -> np.ndarray:
        """Expected USD fee of one token transfer (or cross-chain origin leg) on each chain."""
        return self.fee_per_gas_usd() * self.transfer_gas + self.tx_fee_usd()

    def payout_fee_usd(self) -> np.ndarray:
        """Expected USD fee of delivering one cross-chain transfer on each chain (its destination leg)."""
        return self.fee_per_gas_usd() * self.payout_gas + self.payout_tx_fee_usd()

    def inclusion_latency_s(self) -> np.ndarray:
        """Expected seconds from submission to inclusion: half a block to the next, plus our backlog's blocks."""
        per_block = np.maximum(1.0, (self.target_utilisation - np.maximum(0.0, self.used_fraction_ema
                                                                          - self.own_fraction_ema)) * self.gas_limit)
        return self.block_time_s * (0.5 + np.floor(self.pending_gas / per_block))
