"""``relayer bench netting``: what netting opposite flows saves against lock/mint on one route (issue 16).

On one devnet of its own (EVM chains only; ``.devnet-netting`` on ports 8745.. and API port 8994 by default, brought up
unless it is up and brought down afterwards unless it was up or ``keep_devnet``) with one daemon (its relayer delivers,
its netting keeper settles, completes and releases), the bench runs four scenarios on the same route ``A:B``, one
after the other, each waited for until it is over before the next starts (so no transaction of one is counted in
another):

1. ``symmetric_pool``: ``transfers`` USDC deposits each way (A->B and B->A, interleaved, sent at once right after an
   epoch boundary so they fall in as few epochs as possible), into the origin's LiquidityPool, each to a fresh random
   recipient; over once every recipient holds its amount (read from the chain), every epoch with flow between the two
   pools is settled and completed on both sides (``pool_epochs``) and both pools hold what they held before, owing
   nothing;
2. ``symmetric_lock_mint``: the same load as TST through the TokenBridge (``transferRemote``: locked on its home chain,
   minted wrapped elsewhere, and back); a side where TST is wrapped is first given what it sends (bridged in from the
   home chain before anything is measured); over once every recipient is credited;
3. ``one_way_pool``: ``transfers`` USDC deposits A->B only, adding up to ``ONE_WAY_POOL_SHARE`` (1.2x) of what B's pool
   holds free: the last ones exceed the pool and are deferred (``FillDeferred``) until the epoch's settlement mints B's
   share back and the keeper releases them (``deferred``/``released`` in the figures);
4. ``one_way_lock_mint``: the same as TST A->B.

Every figure is read from the chains (logs, receipts, balances) over the scenario's block window on A and B:

- ``settlement_messages``: pools: ``SettlementSent`` events (one per epoch with flow and direction: what carries the
  net); lock/mint: one cross-chain message per transfer (each moves its full amount). ``payout_messages``: pools: the
  FILL messages, one per deposit (a pool transfer still needs one attested message for its payout; netting removes the
  per-transfer mint/burn and moves only the net); lock/mint: 0 separate (the transfer's message is its payout).
  ``messages``: both; ``messages_ratio``: the pool scenario's settlement messages / the lock/mint scenario's messages;
  ``total_messages_ratio``: all messages of the pool scenario / the lock/mint scenario's.
- ``gas`` (per kind), ``gas_total``, ``gas_per_transfer``: the gasUsed of every transaction of the scenario: the
  senders' approvals (one standing approval per sending chain and scenario, for the scenario's total) and deposits or
  ``transferRemote``s; every transaction to either pool (the keeper's ``settle``, ``completeSettlement``,
  ``releaseDeferred``; reverted ones included), found by scanning every block of the window; and the relayer's
  ``processBatch`` deliveries of the scenario's messages (fills and settlements, or transfers), each counted for the
  share of its Process events that are the scenario's (``deliveries``: [chain, the scenario's messages, all messages,
  gasUsed] of each). The bench sends with gas limits of ``SEND_GAS_LIMIT_MULTIPLIER`` x the estimate (see there);
  a reverted transaction counts under ``reverted_<kind>``.
- ``latency_*``: first sight (wall clock; each chain's height polled every 50 ms) of the block paying the recipient
  (``FillPaid``, or ``DeferredReleased`` for a deferred payout; lock/mint: ``ReceivedTransferRemote``) minus first
  sight of the block that included the deposit (``transferRemote``); ``chain_latency_*``: the same from the blocks'
  timestamps (whole seconds).
- ``lost``: transfers sent whose recipient was never paid; ``duplicated``: transfers paid more than once (a balance
  above the amount, more than one payout event per recipient, or more than one Process event per message).
- ``supply_conserved``: pools: the USDC totalSupply summed over every chain is the same before and after (once
  settled); lock/mint: TST's home supply is unchanged and what the home bridge holds locked equals the wrapped supply
  elsewhere, before and after. ``value_settled``: what was minted or burnt (pools: the epochs' nets; lock/mint: every
  transfer's amount, locked or burnt on one side and unlocked or minted on the other).

``ratios``: each pool figure over its lock/mint counterpart (symmetric and one-way).
"""

from __future__ import annotations

import asyncio
import math
import secrets
import statistics
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import structlog
from rich.progress import Progress, TaskID

from adapters.base import AdapterError, ChainAdapter, ContractCalls, MessageSender
from adapters.capabilities import LiquidityPools
from adapters.evm import abi
from adapters.message import Domain
from config.errors import RelayerError
from config.loader import load_settings
from config.settings import Settings
from devnets.devnet import Devnet
from relayer.bench.daemon import BlockClock, bench_devnet_and_daemon, percentile
from relayer.cli.progress import make_progress

log = structlog.get_logger("relayer.bench.netting")

NETTING_DEVNET_DIR = Path(".devnet-netting")
NETTING_BASE_PORT = 8745
NETTING_API_PORT = 8994
DEFAULT_ROUTE = ("l1", "rollup_a")
DEFAULT_TRANSFERS = 20
POOL_TOKEN = "USDC"
BRIDGE_TOKEN = "TST"
SYMMETRIC_AMOUNT = 10  # tokens per transfer in the symmetric scenarios (far below a pool: every payout at once)
ONE_WAY_POOL_SHARE = Decimal("1.2")  # one-way deposits add up to this share of the destination pool's free liquidity
SCENARIOS = ("symmetric_pool", "symmetric_lock_mint", "one_way_pool", "one_way_lock_mint")
SEND_WINDOW_S = 1.5  # deposits start at most this far into an epoch (else the bench waits for the next one)
RPC_BATCH = 50
POLL_S = 0.5

DEPOSITED = abi.topic("Deposited(bytes32,uint32,uint64,bytes32,uint256)")
FILL_PAID = abi.topic("FillPaid(uint32,uint64,address,uint256)")
FILL_DEFERRED = abi.topic("FillDeferred(uint256,uint32,address,uint256,string)")
DEFERRED_RELEASED = abi.topic("DeferredReleased(uint256,address,uint256)")
SETTLEMENT_SENT = abi.topic("SettlementSent(bytes32,uint32,uint64,uint256,uint256)")
SETTLEMENT_RECEIVED = abi.topic("SettlementReceived(uint32,uint64,uint256,uint256)")
SETTLEMENT_COMPLETED = abi.topic("SettlementCompleted(uint32,uint64,int256)")
SETTLEMENT_WAITING = abi.topic("SettlementWaiting(uint32,uint64,string)")
RECEIVED_TRANSFER_REMOTE = abi.topic("ReceivedTransferRemote(uint32,bytes32,uint256)")
TX_KINDS = {"0x" + abi.selector(sig).hex(): kind for sig, kind in (
    ("deposit(uint32,bytes32,uint256)", "deposit"),
    ("approve(address,uint256)", "approve"),
    ("transferRemote(address,uint32,bytes32,uint256)", "transfer_remote"),
    ("settle(uint32,uint64)", "settle"),
    ("completeSettlement(uint32,uint64)", "complete_settlement"),
    ("releaseDeferred(uint256)", "release_deferred"),
)}


class _Rpc:
    """Plain JSON-RPC reads (batched) on the devnet's chains: logs, receipts, blocks, balances."""

    def __init__(self, http: httpx.AsyncClient, urls: dict[str, str]) -> None:
        self.http = http
        self.urls = urls

    async def batch(self, chain: str, calls: Sequence[tuple[str, list[Any]]]) -> list[Any]:
        out: list[Any] = []
        for start in range(0, len(calls), RPC_BATCH):
            chunk = calls[start:start + RPC_BATCH]
            body = [{"jsonrpc": "2.0", "id": i, "method": m, "params": p} for i, (m, p) in enumerate(chunk)]
            docs = (await self.http.post(self.urls[chain], json=body)).json()
            if not isinstance(docs, list):
                raise RelayerError(f"{chain}: a JSON-RPC batch answered {str(docs)[:300]}")
            for doc in sorted(docs, key=lambda d: d["id"]):
                if "error" in doc:
                    raise RelayerError(f"{chain}: {chunk[doc['id']][0]}: {doc['error']}")
                out.append(doc["result"])
        return out

    async def call(self, chain: str, method: str, params: list[Any]) -> Any:
        return (await self.batch(chain, [(method, params)]))[0]

    async def height(self, chain: str) -> int:
        return int(await self.call(chain, "eth_blockNumber", []), 16)

    async def words(self, chain: str, calls: Sequence[tuple[str, bytes]]) -> list[int]:
        """``eth_call`` of each (contract, calldata) at the latest block, each answer read as one uint256."""
        raw = await self.batch(chain, [("eth_call", [{"to": to, "data": "0x" + data.hex()}, "latest"])
                                       for to, data in calls])
        return [int(r[:66], 16) if r and r != "0x" else 0 for r in raw]

    async def logs(self, chain: str, address: str, from_block: int, to_block: int,
                   topics: list[str] | None = None) -> list[dict[str, Any]]:
        query: dict[str, Any] = {"address": address, "fromBlock": hex(from_block), "toBlock": hex(to_block)}
        if topics:
            query["topics"] = [topics]
        return list(await self.call(chain, "eth_getLogs", [query]))

    async def receipt(self, chain: str, tx: str, timeout_s: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while (receipt := await self.call(chain, "eth_getTransactionReceipt", [tx])) is None:
            if time.monotonic() > deadline:
                raise RelayerError(f"{chain}: transaction {tx} not mined within {timeout_s:.0f}s")
            await asyncio.sleep(0.2)
        return dict(receipt)


@dataclass
class _Transfer:
    """One transfer of a scenario: where it goes, to whom, how much (smallest units), what became of its sending."""

    origin: str
    destination: str
    recipient: str  # 0x.. lower-case, fresh and random
    units: int
    tx: str | None = None
    message_id: str | None = None  # 0x.. of its message (a FILL, or the TokenBridge transfer)
    error: str | None = None


@dataclass
class _Scenario:
    name: str
    kind: str  # "pool" | "lock_mint"
    token: str
    transfers: list[_Transfer]
    transactions: dict[str, set[str]] = field(default_factory=dict)  # chain -> the bench's own transactions


@dataclass
class _Bench:
    """What every scenario shares: the chains, their adapters and clocks, the senders, the progress bars."""

    manifest: dict[str, Any]
    settings: Settings
    adapters: dict[str, ChainAdapter]
    rpc: _Rpc
    clocks: dict[str, BlockClock]
    progress: Progress
    a: str
    b: str
    timeout_s: float

    def key(self, chain: str) -> str:
        return str(self.manifest["chains"][chain]["accounts"][0]["private_key"])  # public devnet test key

    def sender(self, chain: str) -> str:
        return str(self.manifest["chains"][chain]["accounts"][0]["address"]).lower()

    def token(self, chain: str, symbol: str) -> dict[str, Any]:
        return dict(self.manifest["chains"][chain]["tokens"][symbol])

    def contract(self, chain: str, name: str) -> str:
        return str(self.manifest["chains"][chain]["contracts"][name]).lower()

    def domain(self, chain: str) -> int:
        return int(self.settings.chains[chain].domain)

    def pools(self, chain: str) -> LiquidityPools:
        adapter = self.adapters[chain]
        if not isinstance(adapter, LiquidityPools):
            raise RelayerError(f"{chain} has no liquidity pools")
        return adapter

    def chains_with(self, symbol: str) -> list[str]:
        return [n for n, c in self.manifest["chains"].items() if c["family"] == "evm" and symbol in c["tokens"]]


def _fresh_recipient() -> str:
    return "0x" + secrets.token_hex(20)


def _address_topic(topic: str) -> str:
    return "0x" + topic[-40:].lower()


def _int(value: str) -> int:
    return int(value, 16)


# ------------------------------------------------------------------ sending


async def _approve(bench: _Bench, sc: _Scenario) -> None:
    """One standing approval per sending chain for the scenario's total (the pool, or the bridge), mined before any
    transfer is sent (the adapters approve per transfer only when the allowance falls short)."""
    totals: Counter[str] = Counter()
    for t in sc.transfers:
        totals[t.origin] += t.units

    async def one(chain: str, total: int) -> None:
        spender = (bench.token(chain, sc.token)["pool"] if sc.kind == "pool"
                   else bench.contract(chain, "token_bridge"))
        caller = bench.adapters[chain]
        if not isinstance(caller, ContractCalls):
            raise RelayerError(f"{chain} cannot call contracts")
        tx = await caller.call_contract(bench.key(chain), bench.token(chain, sc.token)["address"],
                                        abi.encode_approve(spender, total))
        receipt = await bench.rpc.receipt(chain, tx, 60)
        if _int(receipt["status"]) != 1:
            raise RelayerError(f"{chain}: approve {tx} reverted")
        sc.transactions.setdefault(chain, set()).add(str(tx).lower())

    await asyncio.gather(*(one(c, total) for c, total in totals.items()))


async def _to_epoch_start(bench: _Bench) -> None:
    """Wait, if needed, for the next epoch to begin (chain time follows the wall clock on anvil), so that the
    deposits sent at once fall in as few epochs as possible."""
    seconds = (await bench.pools(bench.a).pool_state(POOL_TOKEN)).epoch_seconds
    into = time.time() % seconds
    if into > SEND_WINDOW_S:
        await asyncio.sleep(seconds - into + 0.3)


async def _send_all(bench: _Bench, sc: _Scenario, task: TaskID) -> None:
    """Every transfer of ``sc`` at once (in its order: interleaved when symmetric); a failed one is recorded."""

    async def one(t: _Transfer) -> None:
        sender = bench.adapters[t.origin]
        recipient = bytes.fromhex(t.recipient[2:])
        destination = Domain(bench.domain(t.destination))
        try:
            if sc.kind == "pool":
                tx, mid = await bench.pools(t.origin).pool_deposit(bench.key(t.origin), sc.token, t.units,
                                                                   destination, recipient)
            else:
                if not isinstance(sender, MessageSender):
                    raise RelayerError(f"{t.origin} cannot send tokens")
                tx, mid = await sender.send_token(bench.key(t.origin), sc.token, t.units, destination, recipient)
        except (AdapterError, RelayerError) as exc:
            t.error = f"{t.origin}->{t.destination}: {type(exc).__name__}: {exc}"[:300]
            log.warning("netting_send_failed", scenario=sc.name, error=t.error)
            return
        t.tx, t.message_id = str(tx).lower(), "0x" + bytes(mid).hex()
        sc.transactions.setdefault(t.origin, set()).add(t.tx)
        bench.progress.update(task, advance=1)

    await asyncio.gather(*(one(t) for t in sc.transfers))


async def _bridge_in(bench: _Bench, needed: dict[str, int]) -> None:
    """A chain where TST is wrapped holds none at genesis: bridge what its sender will send in from TST's home chain
    (before anything is measured), and wait until it arrived."""
    async def one(chain: str, units: int) -> None:
        home = bench.token(chain, BRIDGE_TOKEN)["home"]
        token = bench.token(chain, BRIDGE_TOKEN)["address"]
        (have,) = await bench.rpc.words(chain, [(token, abi.encode_balance_of(bench.sender(chain)))])
        if home == chain or have >= units:
            return
        sender = bench.adapters[home]
        if not isinstance(sender, MessageSender):
            raise RelayerError(f"{home} cannot send tokens")
        await sender.send_token(bench.key(home), BRIDGE_TOKEN, units - have, Domain(bench.domain(chain)),
                                bytes.fromhex(bench.sender(chain)[2:]))
        deadline = time.monotonic() + bench.timeout_s
        while (await bench.rpc.words(chain, [(token, abi.encode_balance_of(bench.sender(chain)))]))[0] < units:
            if time.monotonic() > deadline:
                raise RelayerError(f"{BRIDGE_TOKEN} bridged in from {home} did not arrive on {chain} within "
                                   f"{bench.timeout_s:.0f}s")
            await asyncio.sleep(POLL_S)
        log.info("netting_bridged_in", chain=chain, token=BRIDGE_TOKEN, units=str(units - have), home=home)

    await asyncio.gather(*(one(c, u) for c, u in needed.items()))


# ------------------------------------------------------------------ waiting


async def _balances(bench: _Bench, sc: _Scenario) -> dict[str, int]:
    """Every sent transfer's recipient balance now (read from the chain), by recipient."""
    sent = [t for t in sc.transfers if t.tx]
    balances: dict[str, int] = {}
    for chain in (bench.a, bench.b):
        mine = [t for t in sent if t.destination == chain]
        token = bench.token(chain, sc.token)["address"]
        words = await bench.rpc.words(chain, [(token, abi.encode_balance_of(t.recipient)) for t in mine])
        balances.update({t.recipient: w for t, w in zip(mine, words, strict=True)})
    return balances


async def _epochs_settled(bench: _Bench, epochs: Sequence[int]) -> tuple[int, int]:
    """(epochs with flow between the two pools settled and completed on both sides, epochs with flow)."""
    ours = await bench.pools(bench.a).pool_epochs(POOL_TOKEN, bench.domain(bench.b), epochs)
    theirs = await bench.pools(bench.b).pool_epochs(POOL_TOKEN, bench.domain(bench.a), epochs)
    flow = done = 0
    for here, there in zip(ours, theirs, strict=True):
        if not (here.has_flow or there.has_flow):
            continue
        flow += 1
        done += (here.settled_out and there.settled_out and here.settlement_in == "done"
                 and there.settlement_in == "done")
    return done, flow


async def _pools_now(bench: _Bench) -> dict[str, tuple[int, int]]:
    """(balance, owed) of each pool of the route."""
    out = {}
    for chain in (bench.a, bench.b):
        state = await bench.pools(chain).pool_state(POOL_TOKEN)
        out[chain] = (state.balance, state.owed)
    return out


async def _wait_over(bench: _Bench, sc: _Scenario, epochs: range, pools_before: dict[str, tuple[int, int]],
                     paid_task: TaskID, settled_task: TaskID | None) -> bool:
    """Until every recipient is paid and (pools) every epoch with flow is settled and completed on both sides and
    the pools hold what they held before, owing nothing; False if the scenario's time ran out first."""
    sent = sum(1 for t in sc.transfers if t.tx)
    deadline = time.monotonic() + bench.timeout_s
    while True:
        balances = await _balances(bench, sc)
        paid = sum(1 for t in sc.transfers if t.tx and balances[t.recipient] >= t.units)
        bench.progress.update(paid_task, completed=paid)
        over = paid >= sent
        if settled_task is not None:
            done, flow = await _epochs_settled(bench, list(epochs))
            bench.progress.update(settled_task, completed=done, total=max(1, flow))
            over = over and done == flow and await _pools_now(bench) == {
                c: (balance, 0) for c, (balance, _owed) in pools_before.items()}
        if over:
            return True
        if time.monotonic() > deadline:
            log.warning("netting_scenario_timeout", scenario=sc.name, paid=paid, sent=sent,
                        timeout_s=bench.timeout_s)
            return False
        await asyncio.sleep(POLL_S)


async def _supply(bench: _Bench, symbol: str) -> dict[str, Any]:
    """USDC: each chain's totalSupply and their sum. TST: the home chain's supply, what its bridge holds locked, and
    the wrapped supply on the other chains."""
    if symbol == POOL_TOKEN:
        per_chain = {c: (await bench.rpc.words(c, [(bench.token(c, symbol)["address"], abi.TOTAL_SUPPLY)]))[0]
                     for c in bench.chains_with(symbol)}
        return {"total": sum(per_chain.values()), "per_chain": per_chain}
    chains = bench.chains_with(symbol)
    home = bench.token(chains[0], symbol)["home"]
    home_token = bench.token(home, symbol)["address"]
    home_supply, locked = await bench.rpc.words(home, [(home_token, abi.TOTAL_SUPPLY), (
        home_token, abi.encode_balance_of(bench.contract(home, "token_bridge")))])
    wrapped = 0
    for c in chains:
        if c != home:
            wrapped += (await bench.rpc.words(c, [(bench.token(c, symbol)["address"], abi.TOTAL_SUPPLY)]))[0]
    return {"home": home, "home_supply": home_supply, "locked": locked, "wrapped": wrapped}


def _conserved(kind: str, before: dict[str, Any], after: dict[str, Any]) -> bool:
    if kind == "pool":
        return bool(before["total"] == after["total"])
    return bool(before["home_supply"] == after["home_supply"] and before["locked"] == before["wrapped"]
                and after["locked"] == after["wrapped"])


# ------------------------------------------------------------------ reading the chains


async def _blocks(bench: _Bench, chain: str, start: int, end: int) -> list[dict[str, Any]]:
    return list(await bench.rpc.batch(chain, [("eth_getBlockByNumber", [hex(h), True]) for h in range(start, end + 1)]))


async def _from_chain(bench: _Bench, sc: _Scenario, start: dict[str, int], end: dict[str, int]) -> dict[str, Any]:
    """Messages, payouts, gas and latencies of ``sc`` over its block window, read from the chains."""
    route = (bench.a, bench.b)
    other = {bench.a: bench.b, bench.b: bench.a}
    sent = [t for t in sc.transfers if t.tx and t.message_id]
    events: dict[str, list[dict[str, Any]]] = {}
    process: dict[str, list[dict[str, Any]]] = {}
    blocks: dict[str, dict[int, dict[str, Any]]] = {}
    for chain in route:
        watched = (bench.token(chain, sc.token)["pool"] if sc.kind == "pool" else bench.contract(chain, "token_bridge"))
        events[chain] = await bench.rpc.logs(chain, watched, start[chain], end[chain])
        process[chain] = await bench.rpc.logs(chain, bench.contract(chain, "mailbox"), start[chain], end[chain],
                                              [abi.PROCESS_TOPIC])
        blocks[chain] = {_int(b["number"]): b for b in await _blocks(bench, chain, start[chain], end[chain])}

    def of(chain: str, topic: str) -> list[dict[str, Any]]:
        return [lg for lg in events[chain] if lg["topics"][0] == topic]

    # the scenario's messages: its transfers' (FILLs or bridge transfers) and, for pools, the settlements
    settlements = [(chain, lg) for chain in route for lg in of(chain, SETTLEMENT_SENT)
                   if _int(lg["topics"][2]) == bench.domain(other[chain])]
    messages = {t.message_id or "" for t in sent} | {str(lg["topics"][1]).lower() for _c, lg in settlements}
    processed: Counter[str] = Counter()
    delivery_txs: dict[str, set[str]] = {c: set() for c in route}
    for chain in route:
        for lg in process[chain]:
            mid = lg["topics"][1].lower()
            if mid in messages:
                processed[mid] += 1
                delivery_txs[chain].add(lg["transactionHash"].lower())

    # payouts per recipient: (chain, block) of each payout event
    payouts: dict[str, list[int]] = {}
    deferred = released = 0
    for chain in route:
        if sc.kind == "pool":
            for lg in of(chain, FILL_PAID):
                payouts.setdefault(_address_topic(lg["topics"][3]), []).append(_int(lg["blockNumber"]))
            for lg in of(chain, DEFERRED_RELEASED):
                payouts.setdefault(_address_topic(lg["topics"][2]), []).append(_int(lg["blockNumber"]))
            deferred += len(of(chain, FILL_DEFERRED))
            released += len(of(chain, DEFERRED_RELEASED))
        else:
            for lg in of(chain, RECEIVED_TRANSFER_REMOTE):
                payouts.setdefault(_address_topic(lg["topics"][2]), []).append(_int(lg["blockNumber"]))

    gas, txs, reverted, included_at, deliveries = await _gas(bench, sc, blocks, delivery_txs, messages)
    final = await _balances(bench, sc)
    seen_lat: list[float] = []
    chain_lat: list[float] = []
    lost = duplicated = 0
    for t in sent:
        balance = final[t.recipient]
        paid_at = sorted(payouts.get(t.recipient, []))
        if balance < t.units:
            lost += 1
            continue
        if balance > t.units or len(paid_at) > 1 or processed[t.message_id or ""] > 1:
            duplicated += 1
        if not paid_at:
            continue
        included = included_at[t.tx or ""]
        t0, t1 = bench.clocks[t.origin].time_of(included), bench.clocks[t.destination].time_of(paid_at[0])
        if t0 is not None and t1 is not None:
            seen_lat.append(max(0.0, t1 - t0))
        origin_block, payout_block = blocks[t.origin].get(included), blocks[t.destination].get(paid_at[0])
        if origin_block is not None and payout_block is not None:
            chain_lat.append(float(_int(payout_block["timestamp"]) - _int(origin_block["timestamp"])))

    decimals = int(bench.token(bench.a, sc.token)["decimals"])
    if sc.kind == "pool":
        nets = [int.from_bytes(bytes.fromhex(lg["data"][2:66]), "big", signed=True)
                for chain in route for lg in of(chain, SETTLEMENT_COMPLETED) if _int(lg["topics"][1]) == bench.domain(
                    other[chain])]
        value_settled = sum(n for n in nets if n > 0)  # burnt on one side = minted on the other
        settlement_messages, payout_messages = len(settlements), len(sent)
        epochs = sorted({_int(lg["topics"][3]) for chain in route for lg in of(chain, DEPOSITED)})
        extra: dict[str, Any] = {
            "epochs_with_deposits": epochs,
            "settlements_completed": len(nets),
            "settlement_waits": sum(len(of(c, SETTLEMENT_WAITING)) for c in route),
            "deferred": deferred, "released": released,
            "net_burnt": str(Decimal(sum(n for n in nets if n > 0)) / 10**decimals),
            "net_minted": str(Decimal(-sum(n for n in nets if n < 0)) / 10**decimals),
        }
    else:
        value_settled = sum(t.units for t in sent)
        settlement_messages, payout_messages = len(sent), 0
        extra = {}
    transfers = len(sent)
    gas_total = sum(gas.values())
    return {
        "transfers": transfers,
        "send_errors": [t.error for t in sc.transfers if t.error],
        "settlement_messages": settlement_messages,
        "payout_messages": payout_messages,
        "messages": settlement_messages + payout_messages,
        "delivered": sum(1 for t in sent if processed[t.message_id or ""]),
        "paid": transfers - lost,
        "lost": lost + sum(1 for t in sc.transfers if t.error is None and not t.tx),
        "duplicated": duplicated,
        "value_settled": str(Decimal(value_settled) / 10**decimals),
        "value_transferred": str(Decimal(sum(t.units for t in sent)) / 10**decimals),
        **extra,
        "gas": {k: round(v) for k, v in sorted(gas.items())},
        "transactions": dict(sorted(txs.items())),
        "reverted_transactions": reverted,
        "deliveries": deliveries,
        "gas_total": round(gas_total),
        "gas_per_transfer": round(gas_total / transfers) if transfers else None,
        **_stats(seen_lat, "latency"),
        **_stats(chain_lat, "chain_latency"),
    }


async def _gas(bench: _Bench, sc: _Scenario, blocks: dict[str, dict[int, dict[str, Any]]],
               delivery_txs: dict[str, set[str]], messages: set[str]
               ) -> tuple[dict[str, float], Counter[str], int, dict[str, int], list[list[Any]]]:
    """gasUsed per kind of the scenario's transactions (see the module doc), how many of each, how many reverted,
    the block of each (by hash), and each delivery as [chain, the scenario's messages in it, all its messages, its
    gasUsed]. Pools: every transaction to either pool in the window (deposits, the keeper's
    calls); lock/mint: the senders' transactions to the token and the bridge; both: the bench's own approvals and the
    deliveries (their share)."""
    gas: defaultdict[str, float] = defaultdict(float)  # a delivery counts for its share: floats, rounded by the caller
    count: Counter[str] = Counter()
    reverted = 0
    heights: dict[str, int] = {}
    deliveries: list[list[Any]] = []
    for chain, by_height in blocks.items():
        pool = str(bench.token(chain, POOL_TOKEN).get("pool", "")).lower()
        token = str(bench.token(chain, sc.token)["address"]).lower()
        bridge = bench.contract(chain, "token_bridge")
        mailbox = bench.contract(chain, "mailbox")
        ours = set(sc.transactions.get(chain, set()))
        for block in by_height.values():
            for tx in block["transactions"]:
                to, sender = (tx.get("to") or "").lower(), tx["from"].lower()
                if (tx["hash"].lower() in ours or (sc.kind == "pool" and to == pool)
                        or (sender == bench.sender(chain) and to in (token, bridge) and sc.kind == "lock_mint")):
                    ours.add(tx["hash"].lower())
        wanted = sorted(ours | delivery_txs[chain])
        receipts = await bench.rpc.batch(chain, [("eth_getTransactionReceipt", [h]) for h in wanted])
        inputs = {tx["hash"].lower(): tx.get("input", "0x") for b in by_height.values() for tx in b["transactions"]}
        for h, receipt in zip(wanted, receipts, strict=True):
            used = _int(receipt["gasUsed"])
            heights[h] = _int(receipt["blockNumber"])
            reverted += _int(receipt["status"]) != 1
            if h in delivery_txs[chain]:
                process = [lg for lg in receipt["logs"] if lg["address"].lower() == mailbox
                           and lg["topics"] and lg["topics"][0] == abi.PROCESS_TOPIC]
                ours_here = sum(1 for lg in process if lg["topics"][1].lower() in messages)
                gas["delivery"] += used * ours_here / max(1, len(process))
                deliveries.append([chain, ours_here, len(process), used])
                count["delivery"] += 1
                continue
            kind = TX_KINDS.get(inputs.get(h, "0x")[:10], "other")
            if _int(receipt["status"]) != 1:
                kind = f"reverted_{kind}"
            gas[kind] += used
            count[kind] += 1
    return gas, count, reverted, heights, deliveries


def _stats(values: list[float], prefix: str) -> dict[str, float | None]:
    return {f"{prefix}_median_s": round(statistics.median(values), 3) if values else None,
            f"{prefix}_p90_s": round(percentile(values, 0.9), 3) if values else None,
            f"{prefix}_max_s": round(max(values), 3) if values else None}


# ------------------------------------------------------------------ one scenario


async def _scenario(bench: _Bench, sc: _Scenario) -> dict[str, Any]:
    """Send ``sc``, wait until it is over, and read its figures from the chains."""
    route = (bench.a, bench.b)
    log.info("netting_scenario_start", scenario=sc.name, transfers=len(sc.transfers), token=sc.token)
    start = {c: await bench.rpc.height(c) for c in route}
    supply_before = await _supply(bench, sc.token)
    pools_before = await _pools_now(bench) if sc.kind == "pool" else {}
    send_task = bench.progress.add_task(f"{sc.name}: sent", total=len(sc.transfers))
    paid_task = bench.progress.add_task(f"{sc.name}: paid (on chain)", total=len(sc.transfers))
    settled_task = (bench.progress.add_task(f"{sc.name}: epochs settled", total=1) if sc.kind == "pool" else None)
    await _approve(bench, sc)
    first_epoch = 0
    if sc.kind == "pool":
        await _to_epoch_start(bench)
        first_epoch = min([(await bench.pools(c).pool_state(POOL_TOKEN)).epoch for c in route])
    began = time.monotonic()
    await _send_all(bench, sc, send_task)
    last_epoch = max([(await bench.pools(c).pool_state(POOL_TOKEN)).epoch for c in route]) if sc.kind == "pool" else 0
    finished = await _wait_over(bench, sc, range(first_epoch, last_epoch + 1), pools_before, paid_task, settled_task)
    took = time.monotonic() - began
    end = {c: await bench.rpc.height(c) for c in route}
    await asyncio.sleep(0.2)  # the clocks have seen the last block read
    row = await _from_chain(bench, sc, start, end)
    supply_after = await _supply(bench, sc.token)
    row.update({
        "finished": finished, "seconds": round(took, 2),
        "supply_before": supply_before, "supply_after": supply_after,
        "supply_conserved": _conserved(sc.kind, supply_before, supply_after),
    })
    if sc.kind == "pool":
        row["pools_back_to_seed"] = await _pools_now(bench) == {c: (b, 0) for c, (b, _o) in pools_before.items()}
    ok = finished and row["lost"] == 0 and row["duplicated"] == 0 and row["supply_conserved"]
    (log.info if ok else log.warning)("netting_scenario_done", scenario=sc.name, finished=finished,
                                      transfers=row["transfers"], lost=row["lost"], duplicated=row["duplicated"],
                                      settlement_messages=row["settlement_messages"],
                                      gas_per_transfer=row["gas_per_transfer"],
                                      latency_median_s=row["latency_median_s"], seconds=row["seconds"])
    return row


def _scenarios(bench: _Bench, n: int, one_way_units: dict[str, int],
               symmetric_units: dict[str, int]) -> list[_Scenario]:
    a, b = bench.a, bench.b

    def legs(directions: list[tuple[str, str]], units: int) -> list[_Transfer]:
        return [_Transfer(o, d, _fresh_recipient(), units) for _ in range(n) for o, d in directions]

    return [
        _Scenario("symmetric_pool", "pool", POOL_TOKEN, legs([(a, b), (b, a)], symmetric_units[POOL_TOKEN])),
        _Scenario("symmetric_lock_mint", "lock_mint", BRIDGE_TOKEN,
                  legs([(a, b), (b, a)], symmetric_units[BRIDGE_TOKEN])),
        _Scenario("one_way_pool", "pool", POOL_TOKEN, legs([(a, b)], one_way_units[POOL_TOKEN])),
        _Scenario("one_way_lock_mint", "lock_mint", BRIDGE_TOKEN, legs([(a, b)], one_way_units[BRIDGE_TOKEN])),
    ]


def _ratio(pool: Any, lock_mint: Any, digits: int = 3) -> float | None:
    if pool is None or lock_mint in (None, 0):
        return None
    return round(float(pool) / float(lock_mint), digits)


def _ratios(pool: dict[str, Any], lock_mint: dict[str, Any]) -> dict[str, float | None]:
    return {
        "messages_ratio": _ratio(pool["settlement_messages"], lock_mint["messages"]),
        "total_messages_ratio": _ratio(pool["messages"], lock_mint["messages"]),
        "value_settled_ratio": _ratio(Decimal(pool["value_settled"]), Decimal(lock_mint["value_settled"])),
        "gas_per_transfer_ratio": _ratio(pool["gas_per_transfer"], lock_mint["gas_per_transfer"]),
        "latency_median_ratio": _ratio(pool["latency_median_s"], lock_mint["latency_median_s"]),
        "latency_p90_ratio": _ratio(pool["latency_p90_s"], lock_mint["latency_p90_s"]),
    }


async def _netting_bench(devnet: Devnet, route: tuple[str, str], n: int, timeout_s: float, one_way_share: Decimal,
                         show: bool) -> dict[str, Any]:
    from relayer.daemon.daemon import build_adapters

    manifest = devnet.manifest()
    _check_route(manifest, route)
    settings = load_settings(devnet.config_path, env={})  # dispatching sends get DISPATCH_GAS_HEADROOM (the adapter)
    adapters = build_adapters(settings, with_signers=False)
    stop = asyncio.Event()
    clock_tasks: list[asyncio.Task[None]] = []
    try:
        async with httpx.AsyncClient(timeout=30) as http:
            rpc = _Rpc(http, {c: manifest["chains"][c]["rpc_url"] for c in manifest["chains"]
                              if manifest["chains"][c]["family"] == "evm"})
            clocks = {c: BlockClock(adapters[c]) for c in route}
            clock_tasks = [asyncio.create_task(c.run(stop)) for c in clocks.values()]
            with make_progress(show) as progress:
                bench = _Bench(manifest, settings, adapters, rpc, clocks, progress, route[0], route[1], timeout_s)
                b_pool = await bench.pools(bench.b).pool_state(POOL_TOKEN)
                usdc, tst = (int(bench.token(bench.a, s)["decimals"]) for s in (POOL_TOKEN, BRIDGE_TOKEN))
                # whole tokens per one-way deposit, adding up to ``one_way_share`` of B's free liquidity
                one_way_tokens = math.ceil(one_way_share * b_pool.free / n / 10**usdc)
                scenarios = _scenarios(bench, n, {POOL_TOKEN: one_way_tokens * 10**usdc,
                                                  BRIDGE_TOKEN: one_way_tokens * 10**tst},
                                       {POOL_TOKEN: SYMMETRIC_AMOUNT * 10**usdc,
                                        BRIDGE_TOKEN: SYMMETRIC_AMOUNT * 10**tst})
                needed: Counter[str] = Counter()
                for sc in scenarios:
                    if sc.kind == "lock_mint":
                        for t in sc.transfers:
                            needed[t.origin] += t.units
                await _bridge_in(bench, dict(needed))
                await asyncio.sleep(1.0)  # the bridge-in's delivery is behind the first scenario's window
                rows = {sc.name: await _scenario(bench, sc) for sc in scenarios}
                header = {"epoch_seconds": b_pool.epoch_seconds, "destination_pool_free": str(
                    Decimal(b_pool.free) / 10**usdc), "one_way_amount": str(one_way_tokens),
                          "one_way_exceeds_destination_pool": one_way_tokens * n * 10**usdc > b_pool.free}
    finally:
        stop.set()
        await asyncio.gather(*clock_tasks, return_exceptions=True)
        for adapter in adapters.values():
            await adapter.close()
    rows["symmetric_pool"]["messages_ratio"] = _ratio(rows["symmetric_pool"]["settlement_messages"],
                                                      rows["symmetric_lock_mint"]["messages"])
    rows["one_way_pool"]["messages_ratio"] = _ratio(rows["one_way_pool"]["settlement_messages"],
                                                    rows["one_way_lock_mint"]["messages"])
    for name in ("symmetric_lock_mint", "one_way_lock_mint"):
        rows[name]["messages_ratio"] = 1.0
    return {
        "route": f"{route[0]}:{route[1]}", "transfers_per_direction": n,
        "symmetric_amount": str(SYMMETRIC_AMOUNT), **header,
        **rows,
        "ratios": {"symmetric": _ratios(rows["symmetric_pool"], rows["symmetric_lock_mint"]),
                   "one_way": _ratios(rows["one_way_pool"], rows["one_way_lock_mint"])},
        "lost": sum(r["lost"] for r in rows.values()),
        "duplicated": sum(r["duplicated"] for r in rows.values()),
        "send_errors": sum(len(r["send_errors"]) for r in rows.values()),
        "supply_conserved": all(r["supply_conserved"] for r in rows.values()),
        "finished": all(r["finished"] for r in rows.values()),
    }


def _check_route(manifest: dict[str, Any], route: tuple[str, str]) -> None:
    a, b = route
    chains = manifest["chains"]
    for name in route:
        c = chains.get(name)
        if c is None or c["family"] != "evm" or POOL_TOKEN not in c["tokens"] or "pool" not in c["tokens"][POOL_TOKEN]:
            pooled = [n for n, c in chains.items()
                      if c["family"] == "evm" and "pool" in c["tokens"].get(POOL_TOKEN, {})]
            raise RelayerError(f"--route {a}:{b}: {name!r} is not an EVM chain of the devnet with a {POOL_TOKEN} pool "
                               f"({', '.join(pooled)})")
        if BRIDGE_TOKEN not in c["tokens"]:
            raise RelayerError(f"--route {a}:{b}: {name!r} has no {BRIDGE_TOKEN}")
    if a == b:
        raise RelayerError(f"--route {a}:{b}: origin and destination are the same chain")


def run_netting_bench(*, transfers: int = DEFAULT_TRANSFERS, route: tuple[str, str] = DEFAULT_ROUTE,
                      devnet_dir: Path = NETTING_DEVNET_DIR, json_output: bool = False, keep_devnet: bool = False,
                      base_port: int = NETTING_BASE_PORT, api_port: int = NETTING_API_PORT,
                      timeout_s: float = 240.0, one_way_share: Decimal = ONE_WAY_POOL_SHARE) -> dict[str, Any]:
    """The four scenarios on one devnet with one daemon (see the module doc); ``timeout_s``: how long each scenario
    may take to be over once sent."""
    if transfers <= 0 or timeout_s <= 0 or one_way_share <= 0:
        raise RelayerError("transfers, timeout_s and one_way_share must be positive")
    devnet = Devnet(devnet_dir, base_port=base_port, api_port=api_port, families=("evm",))
    show = not json_output and sys.stderr.isatty()
    log.info("netting_bench_start", dir=str(devnet.dir), route=f"{route[0]}:{route[1]}", transfers=transfers)
    with bench_devnet_and_daemon(devnet, {}, instance="bench-netting", keep_devnet=keep_devnet):
        result = asyncio.run(_netting_bench(devnet, route, transfers, timeout_s, one_way_share, show))
    log.info("netting_bench_done", lost=result["lost"], duplicated=result["duplicated"],
             supply_conserved=result["supply_conserved"], ratios=result["ratios"])
    if not json_output:
        _print_table(result)
    return result


def _print_table(result: dict[str, Any]) -> None:
    print(f"route {result['route']}: {result['transfers_per_direction']} transfers per direction; symmetric "
          f"{result['symmetric_amount']} each, one-way {result['one_way_amount']} each "
          f"({'exceeding' if result['one_way_exceeds_destination_pool'] else 'within'} the destination pool's "
          f"{result['destination_pool_free']} free); pool epochs {result['epoch_seconds']} s")
    head = ("scenario", "transfers", "settle_msgs", "payout_msgs", "msgs", "gas/transfer", "median_s", "p90_s",
            "lost", "dup", "supply_ok")
    line = "{:>20} {:>9} {:>11} {:>11} {:>5} {:>12} {:>8} {:>7} {:>4} {:>3} {:>9}"
    print(line.format(*head))
    for name in SCENARIOS:
        r = result[name]
        print(line.format(name, r["transfers"], r["settlement_messages"], r["payout_messages"], r["messages"],
                          str(r["gas_per_transfer"]), str(r["latency_median_s"]), str(r["latency_p90_s"]), r["lost"],
                          r["duplicated"], str(r["supply_conserved"])))
    for name in ("symmetric_pool", "one_way_pool"):
        r = result[name]
        print(f"{name}: epochs {r['epochs_with_deposits']}, deferred {r['deferred']}, released {r['released']}, "
              f"net burnt {r['net_burnt']} / minted {r['net_minted']}, settlement waits {r['settlement_waits']}, "
              f"pools back to seed {r['pools_back_to_seed']}")
    for name in SCENARIOS:
        print(f"{name} gas: {result[name]['gas']}")
        for err in result[name]["send_errors"]:
            print(f"{name} send error: {err}")
    print("pool / lock-mint:")
    for case, ratios in result["ratios"].items():
        print(f"  {case}: " + ", ".join(f"{k} {v}" for k, v in ratios.items()))
