"""Discrete-time simulation of the planner against simulated chains (``relayer simulate``).

Time advances in ticks of ``tick_s``. Intents arrive as a Poisson stream at the offered rate with a seeded
random mix of kinds and constraints (``IntentMix``); at each tick boundary the intents that arrived during the
tick are planned with ``router.planner.plan`` against a ``CapacityModel`` fed only with what an adapter would
report (blocks: gas used, base fee; our own pending gas; errors), and submitted to per-chain queues. Each
chain produces a block every ``block_time_s`` (seeded phase); a block includes queued transactions in
arrival order up to its gas limit minus everyone else's load (``background_utilisation``), and its base
fee follows EIP-1559 (``capacity.next_base_fee``). A cross-chain transfer's destination leg becomes ready
``finality_s + relay overhead`` after its origin leg is included. After the offered window the chains run on
(no new arrivals) until every submitted transaction is included or ``drain_s`` passes, so slow-finality
routes count; an intent is *served* when its last leg is included, its fee is what its legs paid at the
base fees of their blocks, its latency runs from arrival to that inclusion.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from router.capacity import CapacityModel, ChainProfile, next_base_fee
from router.planner import RELAY_OVERHEAD_S, Intents, Kind, plan


@dataclass(frozen=True, slots=True)
class IntentMix:
    """The random workload: kinds, sizes and constraints."""

    kind_p: tuple[float, float, float] = (0.70, 0.20, 0.10)       # transfer, call, cross-chain transfer
    call_work: tuple[float, float] = (1.5, 3.0)                   # uniform, in token transfers
    tokens: int = 6                                              # token 0 is on every chain (a stablecoin)
    token0_p: float = 0.5
    token_chain_p: float = 0.6                                   # chance another token is on a given chain
    restricted_p: float = 0.2                                    # intents that allow only a random subset
    restricted_chain_p: float = 0.5
    max_fee_usd: tuple[float, ...] = (0.005, 0.02, 0.1, 1.0)
    max_fee_p: tuple[float, ...] = (0.3, 0.4, 0.2, 0.1)
    max_latency_s: tuple[float, ...] = (3.0, 15.0, 60.0)
    max_latency_p: tuple[float, ...] = (0.3, 0.4, 0.3)
    xchain_max_latency_s: tuple[float, ...] = (60.0, 1800.0, 3600.0)
    xchain_max_latency_p: tuple[float, ...] = (0.3, 0.4, 0.3)


class IntentSource:
    """Seeded generator of ``Intents`` for a fixed set of chains."""

    def __init__(self, chains: Sequence[ChainProfile], mix: IntentMix, rng: np.random.Generator) -> None:
        self.mix, self.rng, self.nc = mix, rng, len(chains)
        tokens = rng.random((mix.tokens, self.nc)) < mix.token_chain_p
        tokens[0] = True
        for t in range(mix.tokens):
            if tokens[t].sum() < min(3, self.nc):
                tokens[t, rng.choice(self.nc, min(3, self.nc), replace=False)] = True
        self.token_chains = tokens
        # cross-chain origins: where the token is, weighted by the chain's transfer capacity
        weight = np.array([c.transfers_per_s_at_target for c in chains]) + 1e-9
        w = tokens * weight[None, :]
        self.origin_cdf = np.cumsum(w, axis=1) / w.sum(axis=1, keepdims=True)

    def draw(self, n: int) -> Intents:
        mix, rng, nc = self.mix, self.rng, self.nc
        kind = rng.choice(3, n, p=mix.kind_p).astype(np.int8)
        work = np.where(kind == Kind.CALL, rng.uniform(*mix.call_work, n), 1.0).astype(np.float32)
        token = np.where(rng.random(n) < mix.token0_p, 0, rng.integers(1, mix.tokens, n)) if mix.tokens > 1 \
            else np.zeros(n, dtype=np.intp)
        liquidity = self.token_chains[token]
        allowed = np.ones((n, nc), dtype=bool)
        restricted = np.flatnonzero(rng.random(n) < mix.restricted_p)
        allowed[restricted] = rng.random((restricted.size, nc)) < mix.restricted_chain_p
        xchain = kind == Kind.XCHAIN
        origin = np.full(n, -1, dtype=np.int16)
        xi = np.flatnonzero(xchain)
        u = rng.random(xi.size)
        origin[xi] = np.minimum((self.origin_cdf[token[xi]] < u[:, None]).sum(axis=1), nc - 1)
        max_fee = rng.choice(np.array(mix.max_fee_usd), n, p=mix.max_fee_p).astype(np.float32)
        max_lat = np.where(xchain, rng.choice(np.array(mix.xchain_max_latency_s), n, p=mix.xchain_max_latency_p),
                           rng.choice(np.array(mix.max_latency_s), n, p=mix.max_latency_p)).astype(np.float32)
        return Intents(kind=kind, work=work, amount=rng.uniform(1.0, 1000.0, n), allowed=allowed,
                       liquidity=liquidity, max_fee_usd=max_fee, max_latency_s=max_lat, origin=origin)


@dataclass(slots=True)
class _Queue:
    """One chain's submitted, not yet included transactions, in submission order."""

    ready: np.ndarray = field(default_factory=lambda: np.empty(0))
    gas: np.ndarray = field(default_factory=lambda: np.empty(0))
    intent: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    dest: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))      # origin leg: its destination
    dest_gas: np.ndarray = field(default_factory=lambda: np.empty(0))
    delivery: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=bool))   # a cross-chain dest leg

    def push(self, ready: np.ndarray, gas: np.ndarray, intent: np.ndarray, dest: np.ndarray,
             dest_gas: np.ndarray, delivery: bool = False) -> None:
        self.delivery = np.concatenate([self.delivery, np.full(ready.size, delivery)])
        self.ready = np.concatenate([self.ready, ready])
        self.gas = np.concatenate([self.gas, gas])
        self.intent = np.concatenate([self.intent, intent])
        self.dest = np.concatenate([self.dest, dest])
        self.dest_gas = np.concatenate([self.dest_gas, dest_gas])

    def take(self, rows: np.ndarray) -> tuple[np.ndarray, ...]:
        out = (self.ready[rows], self.gas[rows], self.intent[rows], self.dest[rows], self.dest_gas[rows])
        keep = np.ones(self.ready.size, dtype=bool)
        keep[rows] = False
        self.ready, self.gas, self.intent = self.ready[keep], self.gas[keep], self.intent[keep]
        self.dest, self.dest_gas, self.delivery = self.dest[keep], self.dest_gas[keep], self.delivery[keep]
        return out


@dataclass(frozen=True, slots=True)
class Outage:
    """A chain that stops producing blocks and answering between ``start_s`` and ``end_s``."""

    chain: str
    start_s: float
    end_s: float


@dataclass(slots=True)
class SimResult:
    offered_tps: float
    seconds: float
    arrived: int
    served: int
    achieved_tps: float
    served_fraction: float
    decisions_per_s: float
    fee_p50: float
    fee_p99: float
    fee_max: float
    latency_p50_s: float
    latency_p99_s: float
    base_fee_max_ratio: float
    blocks_over_target: float
    served_over_max_fee: int
    served_over_max_latency: int
    unserved_by_reason: dict[str, int]
    chains: list[dict[str, Any]]
    capacity_tps_real: float
    capacity_tps_projected: float
    series: dict[str, Any]

    def summary(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.__slots__ if k != "series"}
        return out


def simulate(chains: Sequence[ChainProfile], *, offered_tps: float, seconds: float, seed: int = 0,
             tick_s: float = 0.25, mix: IntentMix | None = None, drain_s: float = 3600.0,
             outages: Sequence[Outage] = (), drain_step_s: float = 5.0, poisson: bool = True,
             aligned_blocks: bool = False, incoming_window_s: float = 5.0) -> SimResult:
    """Run the simulation (see the module docstring). ``poisson=False`` gives exactly ``offered_tps x tick_s``
    evenly spaced arrivals per tick and ``aligned_blocks`` puts every chain's first block at ``block_time_s``:
    both for hand-checked cases."""
    from router.planner import Reason

    rng = np.random.default_rng(seed)
    mix = mix or IntentMix()
    nc = len(chains)
    model = CapacityModel(chains, stale_after_s=3.0)
    source = IntentSource(chains, mix, rng)
    names = [c.name for c in chains]
    bt = model.block_time_s
    limit = model.gas_limit
    tau = model.target_utilisation
    dmax = model.base_fee_max_change
    min_fee = model.min_base_fee
    bg_gas = np.array([c.background_utilisation for c in chains]) * limit
    base_fee = model.base_fee.copy()          # the chains' truth; the model sees it through observe_blocks
    base_fee0 = base_fee.copy()
    fee_ratio_max = np.ones(nc)
    gas_usd = lambda c: (base_fee[c] + model.priority_fee[c]) * model.native_usd[c]
    tx_usd = model.tx_fee * model.native_usd
    next_block = bt.copy() if aligned_blocks else rng.uniform(0.0, bt)
    queues = [_Queue() for _ in range(nc)]
    down = {model.index[o.chain]: o for o in outages}
    incoming = np.zeros(nc)                # EMA of destination-leg gas planned per second, per chain

    cap = max(1024, int(offered_tps * seconds * 1.1) + 1024)
    arrival = np.zeros(cap)
    done_at = np.full(cap, np.nan)
    fee_paid = np.zeros(cap)
    max_fee = np.zeros(cap)
    max_lat = np.zeros(cap)
    n_total = 0
    reasons = np.zeros(len(Reason), dtype=np.int64)
    plan_time = 0.0
    planned = 0
    ticks = math.ceil(seconds / tick_s)
    frac_sum = np.zeros((ticks, nc))      # per tick: sum of blocks' gas used / gas limit, and block count
    frac_cnt = np.zeros((ticks, nc))
    used_total = np.zeros(nc)              # offered window only
    over_target = np.zeros(nc)             # blocks above the fee-market target, offered window only
    blocks_total = np.zeros(nc)

    def is_down(c: int, t: float) -> bool:
        o = down.get(c)
        return o is not None and o.start_s <= t < o.end_s

    def run_blocks(c: int, until: float, tick: int | None) -> None:
        q = queues[c]
        while next_block[c] <= until:
            tb = next_block[c]
            if is_down(c, tb):
                next_block[c] = tb + bt[c] * max(1, math.ceil((min(until, down[c].end_s) - tb) / bt[c]))
                continue
            eligible = np.flatnonzero(q.ready < tb)
            if eligible.size == 0:
                # empty blocks (just the background load) until something is ready or `until`
                horizon = min(until, q.ready.min()) if q.ready.size else until
                k = max(1, math.ceil((horizon - tb) / bt[c]))
                factor = float(next_base_fee(np.ones(1), bg_gas[c:c + 1], limit[c:c + 1], tau[c:c + 1],
                                             dmax[c:c + 1], np.zeros(1))[0])
                base_fee[c] = max(min_fee[c], base_fee[c] * factor ** k)
                if tick is not None:
                    frac_sum[tick, c] += k * bg_gas[c] / limit[c]
                    frac_cnt[tick, c] += k
                    used_total[c] += k * bg_gas[c]
                    blocks_total[c] += k
                next_block[c] = tb + k * bt[c]
                model.observe_blocks(c, gas_used=bg_gas[c], base_fee=base_fee[c], now_s=next_block[c] - bt[c])
                continue
            order = eligible[np.argsort(q.ready[eligible], kind="stable")]
            fits = np.cumsum(q.gas[order]) <= limit[c] - bg_gas[c]
            rows = order[fits]
            _, gas, intent, dest, dest_gas = q.take(rows)
            fee = gas * gas_usd(c) + tx_usd[c]
            np.add.at(fee_paid, intent, fee)
            final = dest < 0
            done_at[intent[final]] = tb
            if (~final).any():
                ready = tb + model.finality_s[c] + RELAY_OVERHEAD_S
                for d in np.unique(dest[~final]):
                    sel = ~final & (dest == d)
                    queues[d].push(np.full(sel.sum(), ready), dest_gas[sel], intent[sel],
                                   np.full(sel.sum(), -1, dtype=np.int64), np.zeros(sel.sum()), delivery=True)
            used = bg_gas[c] + gas.sum()
            if tick is not None:
                frac_sum[tick, c] += used / limit[c]
                frac_cnt[tick, c] += 1
                over_target[c] += used > tau[c] * limit[c] * (1 + 1e-9)
                used_total[c] += used
                blocks_total[c] += 1
            base_fee[c] = next_base_fee(base_fee[c:c + 1], np.array([used]), limit[c:c + 1], tau[c:c + 1],
                                        dmax[c:c + 1], min_fee[c:c + 1])[0]
            fee_ratio_max[c] = max(fee_ratio_max[c], base_fee[c] / base_fee0[c] if base_fee0[c] > 0 else 1.0)
            model.observe_blocks(c, gas_used=used, base_fee=base_fee[c], own_gas=gas.sum(), now_s=tb)
            next_block[c] = tb + bt[c]

    for k in range(ticks):
        t0, t1 = k * tick_s, (k + 1) * tick_s
        n = (int(rng.poisson(offered_tps * tick_s)) if poisson else round(offered_tps * tick_s)) \
            if t0 < seconds else 0
        if n:
            if n_total + n > cap:
                grow = max(cap, n)
                arrival = np.concatenate([arrival, np.zeros(grow)])
                done_at = np.concatenate([done_at, np.full(grow, np.nan)])
                fee_paid = np.concatenate([fee_paid, np.zeros(grow)])
                max_fee = np.concatenate([max_fee, np.zeros(grow)])
                max_lat = np.concatenate([max_lat, np.zeros(grow)])
                cap += grow
            ids = np.arange(n_total, n_total + n)
            arrival[ids] = np.sort(rng.uniform(t0, t1, n)) if poisson else t0 + np.arange(n) / n * tick_s
            n_total += n
            intents = source.draw(n)
            max_fee[ids] = intents.max_fee_usd
            max_lat[ids] = intents.max_latency_s
            for c in range(nc):
                if is_down(c, t1):
                    model.observe_error(c)
            model.observe_pending(np.arange(nc), np.array([q.gas[~q.delivery & (q.ready <= t1 + bt[c])].sum()
                                                           for c, q in enumerate(queues)]))
            model.observe_incoming(np.arange(nc), incoming)
            started = time.perf_counter()
            a = plan(intents, model, window_s=tick_s, seed=seed * 1_000_003 + k, now_s=t1)
            plan_time += time.perf_counter() - started
            planned += n
            reasons += np.bincount(a.reason, minlength=len(Reason))
            x = a.served & (intents.kind == Kind.XCHAIN)
            landing = np.bincount(a.chain[x], weights=a.gas[x], minlength=nc) / tick_s
            incoming += (landing - incoming) * min(1.0, tick_s / incoming_window_s)
            served = a.served
            xchain = served & (intents.kind == Kind.XCHAIN)
            same = served & ~xchain
            for c in np.unique(a.chain[same]):
                sel = same & (a.chain == c)
                m = int(sel.sum())
                queues[c].push(np.full(m, t1), a.gas[sel], ids[sel], np.full(m, -1, dtype=np.int64), np.zeros(m))
            for c in np.unique(a.origin[xchain]):
                sel = xchain & (a.origin == c)
                m = int(sel.sum())
                queues[c].push(np.full(m, t1), a.origin_gas[sel], ids[sel], a.chain[sel].astype(np.int64), a.gas[sel])
        for c in range(nc):
            run_blocks(c, t1 + tick_s, k)
    # drain: no new arrivals; all chains advance together in steps until everything submitted is included
    t = (ticks + 1) * tick_s
    while t < ticks * tick_s + drain_s and any(q.ready.size for q in queues):
        t += drain_step_s
        for c in range(nc):
            if queues[c].ready.size:
                run_blocks(c, t, None)

    done = ~np.isnan(done_at[:n_total])
    lat = (done_at[:n_total] - arrival[:n_total])[done]
    fees = fee_paid[:n_total][done]
    over_fee = int(np.sum(fees > max_fee[:n_total][done] * (1 + 1e-6)))
    over_latency = int(np.sum(lat > max_lat[:n_total][done]))
    pct = (lambda v, p: float(np.percentile(v, p)) if v.size else float("nan"))
    window = ticks * tick_s
    util = used_total / np.maximum(blocks_total, 1) / limit
    frac = np.divide(frac_sum, frac_cnt, out=np.full_like(frac_sum, np.nan), where=frac_cnt > 0)
    for k in range(1, ticks):     # a chain slower than a tick shows its last block until the next one
        frac[k] = np.where(np.isnan(frac[k]), frac[k - 1], frac[k])
    fin = done_at[:n_total]
    in_window = (fin >= 0) & (fin < window)
    bucket = (fin[in_window] // tick_s).astype(np.intp)
    done_tick = np.bincount(bucket, minlength=ticks)[:ticks]
    fee_p_tick = np.full((ticks, 2), np.nan)
    order = np.argsort(bucket, kind="stable")
    for k, chunk in enumerate(np.split(fee_paid[:n_total][in_window][order], np.cumsum(done_tick)[:-1])):
        if chunk.size:
            fee_p_tick[k] = np.percentile(chunk, [50, 99])
    chain_rows = [{"name": names[c], "scale_out": chains[c].scale_out, "utilisation": round(float(util[c]), 4),
                   "target_utilisation": round(float(tau[c]), 4),
                   "base_fee_max_ratio": round(float(fee_ratio_max[c]), 4)} for c in range(nc)]
    real = sum(c.transfers_per_s_at_target for c in chains if not c.scale_out)
    projected = sum(c.transfers_per_s_at_target for c in chains if c.scale_out)
    return SimResult(
        offered_tps=offered_tps, seconds=seconds, arrived=n_total, served=int(done.sum()),
        achieved_tps=round(float(done.sum()) / seconds, 1),
        served_fraction=round(float(done.sum()) / max(1, n_total), 5),
        decisions_per_s=round(planned / plan_time, 1) if plan_time else float("nan"),
        fee_p50=pct(fees, 50), fee_p99=pct(fees, 99), fee_max=float(fees.max()) if fees.size else float("nan"),
        latency_p50_s=pct(lat, 50), latency_p99_s=pct(lat, 99),
        base_fee_max_ratio=round(float(fee_ratio_max.max()), 4),
        blocks_over_target=round(float(over_target.sum() / max(1.0, blocks_total.sum())), 5),
        served_over_max_fee=over_fee, served_over_max_latency=over_latency,
        unserved_by_reason={r.name.lower(): int(reasons[r]) for r in Reason if r != Reason.OK and reasons[r]},
        chains=chain_rows, capacity_tps_real=round(real, 1), capacity_tps_projected=round(projected, 1),
        series={"t": (np.arange(ticks) + 1) * tick_s, "tps": done_tick / tick_s,
                "utilisation": frac, "target": tau, "names": names,
                "scale_out": np.array([c.scale_out for c in chains]), "fee_p50": fee_p_tick[:, 0],
                "fee_p99": fee_p_tick[:, 1], "offered_tps": offered_tps},
    )


def plot(result: SimResult, path: str) -> None:
    """Throughput, utilisation (relative to each chain's target) and fees over time, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = result.series
    t = s["t"]
    fig, (ax1, ax2, ax3) = plt.subplots(3, 1, figsize=(11, 10), sharex=True, constrained_layout=True)
    smooth = np.convolve(s["tps"], np.ones(8) / 8)[: t.size]      # trailing 2 s mean
    ax1.plot(t, s["tps"], lw=0.6, alpha=0.35, color="C0", label="per tick (blocks alias with ticks)")
    ax1.plot(t, smooth, lw=2, color="C0",
             label="intents completed per second (trailing 2 s mean; cross-chain ones after finality)")
    ax1.axhline(s["offered_tps"], color="k", ls="--", lw=1, label="offered")
    ax1.set_ylabel("intents / s")
    ax1.set_title(f"offered {result.offered_tps:,.0f} TPS over {len(s['names'])} chains: served "
                  f"{result.served_fraction:.1%}, achieved {result.achieved_tps:,.0f} TPS; planner "
                  f"{result.decisions_per_s:,.0f} decisions/s")
    ax1.legend(loc="lower right")
    rel = s["utilisation"] / s["target"][None, :]
    order = np.argsort(-rel.mean(0))
    real = ~s["scale_out"]
    for c in [i for i in order if real[i]][:8]:
        ax2.plot(t, rel[:, c], lw=1, label=s["names"][c])
    if (~real).any():
        ax2.plot(t, np.median(rel[:, ~real], axis=1), color="grey", lw=2, label="scale-out (median)")
    ax2.axhline(1.0, color="red", ls="--", lw=1, label="fee-market target")
    ax2.set_ylabel("block gas used / target")
    ax2.set_ylim(0, max(2.5, float(np.nanpercentile(rel, 99.5)) * 1.05))
    ax2.legend(loc="upper right", ncol=5, fontsize=8)
    ax2.set_title("busiest real chains, and the median projected scale-out chain", fontsize=10)
    ax3.plot(t, s["fee_p50"], lw=1.5, label="fee p50")
    ax3.plot(t, s["fee_p99"], lw=1.5, label="fee p99 (cross-chain legs complete after origin finality)")
    ax3.set_yscale("log")
    ax3.set_ylim(1e-4, 1e-1)
    ax3.set_title(f"highest base fee on any chain: x{result.base_fee_max_ratio:.3f} of its start; "
                  f"{result.blocks_over_target:.2%} of blocks above target (deliveries landing in bursts)",
                  fontsize=10)
    ax3.set_ylabel("USD per intent\n(completed in tick)")
    ax3.set_xlabel("simulated seconds")
    ax3.legend(loc="upper right")
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run_cli_simulation(profile: str, *, offered_tps: float, seconds: float, seed: int = 0,
                       plot_path: str | None = None, out: Any = None) -> dict[str, Any]:
    """What ``relayer simulate`` does: load the profile, simulate, plot, and return the summary."""
    from router.profiles import load_profile

    prof = load_profile(profile)
    result = simulate(prof.chains, offered_tps=offered_tps, seconds=seconds, seed=seed)
    if plot_path:
        plot(result, plot_path)
    summary = {"profile": prof.name, **result.summary()}
    for key in ("fee_p50", "fee_p99", "fee_max"):
        summary[key] = round(summary[key], 6)
    for key in ("latency_p50_s", "latency_p99_s"):
        summary[key] = round(summary[key], 3)
    summary["chains"] = len(result.chains)
    summary["chains_real"] = sum(1 for c in result.chains if not c["scale_out"])
    summary["utilisation"] = {c["name"]: c["utilisation"] for c in result.chains}
    summary["per_chain"] = result.chains
    if plot_path:
        summary["plot"] = plot_path
    if out is not None:
        print(f"profile {prof.name}: {summary['chains']} chains ({summary['chains_real']} real, "
              f"{summary['chains'] - summary['chains_real']} projected scale-out)", file=out)
        print(f"offered {offered_tps:,.0f} TPS for {seconds:g} s: achieved {result.achieved_tps:,.0f} TPS, "
              f"served {result.served_fraction:.2%}, planner {result.decisions_per_s:,.0f} decisions/s", file=out)
        print(f"fee p50 ${result.fee_p50:.5f} p99 ${result.fee_p99:.5f} max ${result.fee_max:.4f}; base fee max "
              f"x{result.base_fee_max_ratio:.3f} of start; latency p50 {result.latency_p50_s:.2f} s "
              f"p99 {result.latency_p99_s:.2f} s", file=out)
        print(f"unserved: {result.unserved_by_reason or 'none'}", file=out)
        for c in result.chains:
            tag = " (scale-out)" if c["scale_out"] else ""
            print(f"  {c['name']:<16} utilisation {c['utilisation']:.3f} of limit "
                  f"(target {c['target_utilisation']:.3f}){tag}", file=out)
        if plot_path:
            print(f"plot: {plot_path}", file=out)
    return summary
