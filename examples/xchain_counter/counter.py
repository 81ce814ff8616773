#!/usr/bin/env python3
"""A cross-chain counter on the relayer's devnet: deploy (or reuse) a CrossChainCounter on each chain, enrol them
with each other, send increments from one chain, follow each message through the relayer until it is delivered, and
read the counts back from the chains.

    make run                                  # in the relayer's checkout: the devnet and the relayer daemon
    python examples/xchain_counter/counter.py -n 3
    python examples/xchain_counter/counter.py -n 5 --from rollup_a --to l1 --json

Where things are: the devnet's manifest (``.devnet/devnet.json``, written by ``relayer devnet up`` and ``make run``;
looked for in the current directory, then in the directories above this script) names every chain's RPC URL,
Mailbox and funded test accounts, and the daemon's API URL; ``--api-url`` and ``--rpc-url NAME=URL`` override them.
The routing API (``router.client.RoutingClient``) tells which chains are healthy and have room (``capacity()``: the
increments go round-robin over the healthy destinations with the most spare capacity, unless ``--to`` names them)
and follows each message (``message()``, then ``message_detail()`` for its timeline); web3 deploys and calls the
contracts. The counters' addresses are kept in a state file next to the manifest and reused while their code is
still on the chain.

Keys: the account it sends from is the manifest's first funded account of each chain, a PUBLIC devnet test key (the
anvil test mnemonic's); it is never printed. Never point this at a real network.

The module is also the app's Python library: its tests (``tests/``) use ``compile_counter`` and ``Counter`` on the
plugin's devnet.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
from eth_abi import decode as abi_decode
from eth_account import Account
from eth_utils import keccak, to_checksum_address
from web3 import Web3
from web3.exceptions import ContractCustomError, ContractLogicError, TimeExhausted
from web3.logs import DISCARD

from router.client import NotFound, RoutingClient, RoutingError, Unavailable

HERE = Path(__file__).resolve().parent
COUNTER_SOL = HERE / "contracts" / "CrossChainCounter.sol"
DEFAULT_DEVNET = Path(".devnet")
RECEIPT_TIMEOUT_S = 60.0
POLL_S = 0.25


class CounterError(Exception):
    """Something the user can fix; the message says how."""


# ----------------------------------------------------------------------------------------------- the contract
@dataclass(frozen=True)
class Compiled:
    abi: list[dict[str, Any]]
    bytecode: str  # 0x hex creation code


def compile_counter(source: Path = COUNTER_SOL, contract: str = "CrossChainCounter") -> Compiled:
    """Compile the counter with the plugin's solcjs compile (``relayer.testing.deploy``: solcjs from the relayer's
    checkout or on PATH, ``npm i -g solc@0.8.30``; optimizer on)."""
    from relayer.testing.chains import XChainError
    from relayer.testing.deploy import compile_solidity

    try:
        built = compile_solidity(source, contract)
    except XChainError as exc:
        raise CounterError(str(exc)) from None
    return Compiled(built.abi, "0x" + built.bytecode.hex())


def explain_revert(abi: Sequence[dict[str, Any]], data: Any) -> str:
    """A revert's data as ``ErrorName(args)`` when it is one of the ABI's custom errors, else the raw data."""
    raw = data.get("data") if isinstance(data, dict) else data
    if not isinstance(raw, str) or not raw.startswith("0x") or len(raw) < 10:
        return str(data)
    for item in abi:
        if item.get("type") != "error":
            continue
        types = [str(i["type"]) for i in item["inputs"]]
        if keccak(text=f"{item['name']}({','.join(types)})")[:4].hex() == raw[2:10]:
            values = abi_decode(types, bytes.fromhex(raw[10:]))
            shown = ", ".join(_shown(t, v) for t, v in zip(types, values, strict=True))
            return f"{item['name']}({shown})"
    return raw


def _shown(abi_type: str, value: Any) -> str:
    if abi_type == "address":
        return to_checksum_address(value)
    return "0x" + value.hex() if isinstance(value, bytes) else str(value)


class Counter:
    """One deployed ``CrossChainCounter``: its state read with web3, its transactions signed with ``key`` (a public
    devnet test key) and sent to the chain."""

    def __init__(self, w3: Web3, address: str, abi: list[dict[str, Any]], key: str) -> None:
        self.w3 = w3
        self.address = to_checksum_address(address)
        self.abi = abi
        self.contract = w3.eth.contract(address=self.address, abi=abi)
        self._key = key
        self.sender = Account.from_key(key).address

    @property
    def domain(self) -> int:
        return int(self.contract.functions.localDomain().call())

    def count_from(self, origin_domain: int) -> int:
        return int(self.contract.functions.countFrom(origin_domain).call())

    def total(self) -> int:
        return int(self.contract.functions.total().call())

    def sent_to(self, destination_domain: int) -> int:
        return int(self.contract.functions.sentTo(destination_domain).call())

    def remote(self, domain: int) -> str | None:
        """The counter enrolled for ``domain`` (an address), or None."""
        raw = bytes(self.contract.functions.remotes(domain).call())
        return None if raw == bytes(32) else to_checksum_address(raw[12:])

    def enroll(self, domain: int, remote: str) -> str:
        """Trust the counter at ``remote`` as ``domain``'s (owner only); the transaction hash."""
        receipt = self.transact(self.contract.functions.enroll(domain, address32(remote)))
        return "0x" + bytes(receipt["transactionHash"]).hex()

    def increment(self, destination_domain: int, by: int = 1) -> tuple[str, str]:
        """Send ``by`` to the counter enrolled for ``destination_domain``: (message id, origin transaction hash)."""
        receipt = self.transact(self.contract.functions.increment(destination_domain, by))
        sent = self.contract.events.IncrementSent().process_receipt(receipt, errors=DISCARD)  # not the Mailbox's
        return "0x" + bytes(sent[0]["args"]["messageId"]).hex(), "0x" + bytes(receipt["transactionHash"]).hex()

    def transact(self, call: Any) -> Any:
        return send_transaction(self.w3, self._key, call, self.abi)


def address32(address: str) -> bytes:
    return bytes(12) + bytes.fromhex(to_checksum_address(address)[2:])


def send_transaction(w3: Web3, key: str, call: Any, abi: Sequence[dict[str, Any]]) -> Any:
    """Build (gas estimated: a revert is reported here with its custom error), sign, send, wait for the receipt."""
    sender = Account.from_key(key).address
    try:
        tx = call.build_transaction({"from": sender, "nonce": w3.eth.get_transaction_count(sender, "pending")})
    except (ContractCustomError, ContractLogicError) as exc:
        raise CounterError(f"the transaction would revert: {explain_revert(abi, exc.data)}") from None
    signed = Account.sign_transaction(tx, key)
    tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
    try:
        receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=RECEIPT_TIMEOUT_S, poll_latency=0.1)
    except TimeExhausted:
        raise CounterError(f"transaction 0x{bytes(tx_hash).hex()} not mined within {RECEIPT_TIMEOUT_S:.0f} s") from None
    if receipt["status"] != 1:
        raise CounterError(f"transaction 0x{bytes(tx_hash).hex()} reverted")
    return receipt


def deploy_counter(w3: Web3, compiled: Compiled, mailbox: str, key: str) -> Counter:
    """Deploy a counter on ``mailbox``'s chain, owned by ``key``'s account."""
    factory = w3.eth.contract(abi=compiled.abi, bytecode=compiled.bytecode)
    receipt = send_transaction(w3, key, factory.constructor(to_checksum_address(mailbox)), compiled.abi)
    return Counter(w3, receipt["contractAddress"], compiled.abi, key)


# ----------------------------------------------------------------------------------------------- the devnet
@dataclass
class Chain:
    """One EVM chain of the devnet manifest. ``key``: its first funded account's PUBLIC devnet test key."""

    name: str
    domain: int
    rpc_url: str
    mailbox: str
    key: str = field(repr=False)
    w3: Web3 = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.w3 = Web3(Web3.HTTPProvider(self.rpc_url, request_kwargs={"timeout": 10}))


def default_devnet() -> Path:
    """``.devnet`` here if it holds a manifest, else the first above this script that does (the relayer's checkout,
    where ``make run`` writes it), else ``.devnet``."""
    for devnet in (DEFAULT_DEVNET, *(parent / DEFAULT_DEVNET for parent in HERE.parents)):
        if (devnet / "devnet.json").exists():
            return devnet
    return DEFAULT_DEVNET


def load_manifest(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text()))
    except FileNotFoundError:
        raise CounterError(f"no devnet manifest at {path}: start the devnet and the relayer with `make run` in the "
                           "relayer's checkout (or `relayer run --start-devnet`), or pass --devnet DIR / --manifest "
                           "FILE") from None
    except ValueError as exc:
        raise CounterError(f"{path} is not a devnet manifest (JSON): {exc}") from None


def evm_chains(manifest: dict[str, Any], rpc_overrides: dict[str, str]) -> dict[str, Chain]:
    """The manifest's EVM chains (those with a Mailbox and a funded account), RPC URLs overridden by name."""
    chains = {}
    for name, chain in manifest.get("chains", {}).items():
        mailbox = chain.get("contracts", {}).get("mailbox")
        if chain.get("family", "evm") != "evm" or not mailbox or not chain.get("accounts"):
            continue
        chains[name] = Chain(name, int(chain["domain"]), rpc_overrides.get(name, chain["rpc_url"]), mailbox,
                             chain["accounts"][0]["private_key"])  # a public devnet test key
    unknown = sorted(set(rpc_overrides) - set(chains))
    if unknown:
        raise CounterError(f"--rpc-url names {', '.join(unknown)}: not an EVM chain of the manifest "
                           f"({', '.join(chains) or 'none'})")
    return chains


def check_rpc(chain: Chain) -> None:
    try:
        chain.w3.eth.block_number  # noqa: B018 - the call is the check
    except Exception as exc:  # noqa: BLE001 - any failure here means the same thing to the user
        raise CounterError(f"{chain.name}'s RPC at {chain.rpc_url} does not answer ({type(exc).__name__}): is the "
                           "devnet up? Start it with `make run` in the relayer's checkout") from None


def connect_api(api_url: str) -> RoutingClient:
    """The routing client, once the daemon answers ``/healthz`` (asked once, without retries: no daemon is the
    usual reason for no answer)."""
    try:
        with RoutingClient(api_url, max_retries=0, timeout=5.0) as probe:
            probe.health()
    except httpx.TransportError:
        raise CounterError(f"no relayer daemon answers at {api_url}: start the devnet and the daemon with `make run` "
                           "in the relayer's checkout (or pass --api-url)") from None
    except RoutingError as exc:
        raise CounterError(f"the relayer daemon at {api_url} is not healthy: {exc}") from None
    return RoutingClient(api_url)


def read_capacity(client: RoutingClient, names: Sequence[str], settle_s: float = 10.0,
                  wait_s: float = 30.0) -> dict[str, Any]:
    """``GET /v1/chains`` by chain name, once every one of ``names`` is healthy, or some are and ``settle_s``
    passed, or ``wait_s`` passed (a daemon that just started has not sampled every chain yet: 503, or not healthy)."""
    started = time.monotonic()
    while True:
        waited = time.monotonic() - started
        try:
            capacity = {c.name: c for c in client.capacity().chains}
        except Unavailable as exc:
            if waited > wait_s:
                raise CounterError(f"the relayer has no capacity figures yet (GET /v1/chains: {exc}); try again "
                                   "in a few seconds") from None
        else:
            healthy = [n for n in names if n in capacity and capacity[n].healthy]
            if len(healthy) == len(names) or (healthy and waited > settle_s) or waited > wait_s:
                return capacity
        time.sleep(0.5)


def choose_destinations(client: RoutingClient, origin: str, candidates: Sequence[str],
                        asked: Sequence[str]) -> list[dict[str, Any]]:
    """The destinations the increments go to, in order, each with the capacity the routing API reports for it:
    ``asked`` (``--to``) as given, else every healthy candidate, most spare transfers a second first."""
    for name in [origin, *asked]:
        if name not in candidates:
            raise CounterError(f"{name!r} is not an EVM chain of this devnet; chains: {', '.join(candidates)}")
    if origin in asked:
        raise CounterError(f"--to {origin} is the origin (--from) itself")
    names = list(asked) or [n for n in candidates if n != origin]
    if not names:
        raise CounterError(f"the devnet has no EVM chain but {origin} to send to")
    capacity = read_capacity(client, names)
    known = [capacity[n] for n in names if n in capacity]
    healthy = [c for c in known if c.healthy]
    if not asked:
        if not healthy:
            raise CounterError(f"the relayer reports none of {', '.join(names)} healthy (GET /v1/chains): wait for "
                               "the devnet to settle, or name destinations with --to")
        names = [c.name for c in sorted(healthy, key=lambda c: (-c.spare_transfers_per_s, c.transfer_fee_usd))]
    chosen = []
    for name in names:
        cap = capacity.get(name)
        chosen.append({"chain": name, "healthy": cap.healthy if cap else None,
                       "spare_transfers_per_s": cap.spare_transfers_per_s if cap else None,
                       "transfer_fee_usd": cap.transfer_fee_usd if cap else None})
    return chosen


# ----------------------------------------------------------------------------------------------- counters
def load_state(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text()))
    except (FileNotFoundError, ValueError):
        return {}


def counters_for(chains: Sequence[Chain], state_path: Path, redeploy: bool,
                 say: Callable[[str], None]) -> tuple[dict[str, Counter], list[str]]:
    """A counter per chain: the state file's while its code is on the chain, on the same Mailbox, and built from the
    same source, else a new one (the state file updated); also the names of the chains where one was deployed."""
    source = hashlib.sha256(COUNTER_SOL.read_bytes()).hexdigest()
    state = load_state(state_path)
    if redeploy or state.get("source_sha256") != source:
        state = {}
    abi = state.get("abi")
    compiled: Compiled | None = None
    counters, deployed = {}, []
    for chain in chains:
        kept = state.get("counters", {}).get(chain.name, {})
        address = kept.get("address")
        if (abi and address and kept.get("mailbox", "").lower() == chain.mailbox.lower()
                and len(chain.w3.eth.get_code(to_checksum_address(address))) > 0):
            counters[chain.name] = Counter(chain.w3, address, abi, chain.key)
            continue
        compiled = compiled or compile_counter()
        abi = compiled.abi
        say(f"deploying a counter on {chain.name}")
        counters[chain.name] = deploy_counter(chain.w3, compiled, chain.mailbox, chain.key)
        deployed.append(chain.name)
        state.setdefault("counters", {})[chain.name] = {"address": counters[chain.name].address,
                                                        "mailbox": chain.mailbox}
    state.update(source_sha256=source, abi=abi)
    state_path.parent.mkdir(parents=True, exist_ok=True)
    state_path.write_text(json.dumps(state, indent=1) + "\n")
    return counters, deployed


def enroll_all(chains: dict[str, Chain], counters: dict[str, Counter], say: Callable[[str], None]) -> int:
    """Each counter trusts every other one; the number of enrolments sent (those already in place are skipped)."""
    sent = 0
    for name, counter in counters.items():
        for other, remote in counters.items():
            domain = chains[other].domain
            if other == name or (counter.remote(domain) or "").lower() == remote.address.lower():
                continue
            try:
                counter.enroll(domain, remote.address)
            except CounterError as exc:
                raise CounterError(f"enrolling {other}'s counter on {name}: {exc} (a counter kept from another "
                                   "account? run again with --redeploy)") from None
            say(f"enrolled {other}'s counter on {name}")
            sent += 1
    return sent


# ----------------------------------------------------------------------------------------------- following
@dataclass
class Increment:
    """One increment sent: where to, its message, and what the relayer says of it. ``seconds``: from sending to this
    script seeing it delivered (polled every ``POLL_S``); ``timeline``: the relayer's steps (``at``: the relayer's
    and the chains' clocks)."""

    n: int
    destination: str
    by: int
    message_id: str
    origin_tx: str
    status: str = "sent"
    substate: str | None = None
    last_reason: str | None = None
    last_error: str | None = None
    delivery_tx: str | None = None
    seconds: float | None = None
    timeline: list[dict[str, Any]] = field(default_factory=list)
    sent_at: float = field(default_factory=time.monotonic, repr=False)


def follow(client: RoutingClient, increments: Sequence[Increment], timeout_s: float,
           say: Callable[[str], None]) -> None:
    """Poll the relayer's view of each message (``GET /v1/messages/{id}``) until it is delivered or dropped, or
    ``timeout_s`` passes; then its timeline from the explorer (``GET /v1/explorer/messages/{id}``)."""
    deadline = time.monotonic() + timeout_s
    pending = list(increments)
    while pending and time.monotonic() < deadline:
        for inc in list(pending):
            try:
                found = client.message(inc.message_id).messages
            except NotFound:
                continue  # not indexed yet: its origin block is not final
            if not found:
                continue
            view = found[0]
            inc.status, inc.substate = view.status, view.substate
            inc.last_reason, inc.last_error = view.last_reason, view.last_error
            if view.status in ("delivered", "dropped"):
                pending.remove(inc)
                inc.seconds = round(time.monotonic() - inc.sent_at, 1)
                inc.delivery_tx = view.delivery_tx
                inc.timeline = [{k: e.get(k) for k in ("step", "at", "chain", "tx") if e.get(k) is not None}
                                for e in client.message_detail(inc.message_id).timeline]
                say(_line(inc))
        if pending:
            time.sleep(POLL_S)
    for inc in pending:
        say(_line(inc) + f" after {timeout_s:.0f} s")


def _line(inc: Increment) -> str:
    if inc.status == "delivered":
        return f"#{inc.n} -> {inc.destination}: delivered {inc.seconds} s after sending, in {inc.delivery_tx}"
    why = f" ({inc.substate or inc.last_reason}{': ' + inc.last_error if inc.last_error else ''})" \
        if (inc.substate or inc.last_reason) else ""
    return f"#{inc.n} -> {inc.destination}: {inc.status}{why}, message {inc.message_id}"


# ----------------------------------------------------------------------------------------------- the command
def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="counter.py", description=__doc__.split("\n\n", 1)[0],
        epilog="Start the devnet and the relayer first: `make run` in the relayer's checkout. Exit status: 0 when "
               "every increment was delivered and counted, 1 when one was not, 2 for a usage or setup problem.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-n", "--count", type=int, default=3, help="increments to send (default 3)")
    p.add_argument("--by", type=int, default=1, help="what each increment adds (default 1)")
    p.add_argument("--from", dest="origin", default="l1", help="the chain the increments are sent from (default l1)")
    p.add_argument("--to", action="append", default=[], metavar="CHAIN",
                   help="a destination (repeatable; increments go round-robin); default: every healthy EVM chain "
                        "but the origin, most spare capacity first (the routing API's GET /v1/chains)")
    p.add_argument("--devnet", type=Path,
                   help="the devnet's directory, holding devnet.json (default: .devnet here, else in the "
                        "relayer's checkout above this script)")
    p.add_argument("--manifest", type=Path, help="the devnet manifest itself (default DEVNET/devnet.json)")
    p.add_argument("--api-url", help="the relayer daemon's API (default: the manifest's api_url)")
    p.add_argument("--rpc-url", action="append", default=[], metavar="NAME=URL",
                   help="a chain's JSON-RPC URL instead of the manifest's (repeatable)")
    p.add_argument("--state", type=Path, help="where the counters' addresses are kept (default "
                                              "xchain_counter.json next to the manifest)")
    p.add_argument("--redeploy", action="store_true", help="deploy new counters even if the state file has some")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the deliveries (default 120)")
    p.add_argument("--json", action="store_true", help="print one JSON document instead of lines")
    args = p.parse_args(argv)
    if args.count < 1 or args.by < 1:
        p.error("--count and --by must be positive")
    return args


def _overrides(pairs: Sequence[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        name, sep, url = pair.partition("=")
        if not sep or not name or not url:
            raise CounterError(f"--rpc-url {pair!r}: expected NAME=URL, e.g. l1=http://127.0.0.1:8545")
        out[name] = url
    return out


def run(args: argparse.Namespace, say: Callable[[str], None]) -> dict[str, Any]:
    manifest_path = args.manifest or (args.devnet or default_devnet()) / "devnet.json"
    manifest = load_manifest(manifest_path)
    chains = evm_chains(manifest, _overrides(args.rpc_url))
    api_url = args.api_url or manifest.get("api_url")
    if not api_url:
        raise CounterError(f"{manifest_path} names no api_url: pass --api-url")
    with connect_api(api_url) as client:
        destinations = choose_destinations(client, args.origin, list(chains), args.to)
        say("destinations: " + ", ".join(
            f"{d['chain']} (healthy {d['healthy']}, spare {d['spare_transfers_per_s']} transfers/s)"
            for d in destinations))
        involved = [chains[args.origin], *(chains[d["chain"]] for d in destinations)]
        for chain in involved:
            check_rpc(chain)
        state_path = args.state or manifest_path.parent / "xchain_counter.json"
        counters, deployed = counters_for(involved, state_path, args.redeploy, say)
        enrolled = enroll_all(chains, counters, say)
        origin = counters[args.origin]
        origin_domain = chains[args.origin].domain
        before = {d["chain"]: counters[d["chain"]].count_from(origin_domain) for d in destinations}

        increments = []
        for n in range(1, args.count + 1):
            dest = destinations[(n - 1) % len(destinations)]["chain"]
            mid, tx = origin.increment(chains[dest].domain, args.by)
            increments.append(Increment(n, dest, args.by, mid, tx))
            say(f"#{n} +{args.by} {args.origin} -> {dest}: message {mid} in {tx}")
        follow(client, increments, args.timeout, say)

    counts = {}
    for d in destinations:
        name = d["chain"]
        counter = counters[name]
        counts[name] = {"from_origin": counter.count_from(origin_domain), "before": before[name],
                        "total": counter.total()}
        expected = sum(i.by for i in increments if i.destination == name)
        counts[name]["expected"] = before[name] + expected
        say(f"{name}: counted {counts[name]['from_origin']} from {args.origin} (was {before[name]}, sent "
            f"{expected}), {counts[name]['total']} in all")
    ok = (all(i.status == "delivered" for i in increments)
          and all(c["from_origin"] == c["expected"] for c in counts.values()))
    shown = [{k: v for k, v in asdict(i).items() if k != "sent_at"} for i in increments]
    return {"ok": ok, "api_url": api_url, "origin": args.origin, "destinations": destinations,
            "counters": {n: c.address for n, c in counters.items()}, "deployed": deployed, "enrolled": enrolled,
            "state": str(state_path), "increments": shown, "counts": counts}


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)

    def say(line: str) -> None:
        print(line, file=sys.stderr if args.json else sys.stdout, flush=True)

    try:
        result = run(args, say)
    except CounterError as exc:
        print(f"counter.py: {exc}", file=sys.stderr)
        return 2
    except (httpx.TransportError, RoutingError) as exc:
        print(f"counter.py: the relayer daemon stopped answering ({type(exc).__name__}: {exc}); is `make run` "
              "still running?", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result, indent=2))
    elif not result["ok"]:
        say("not every increment was delivered and counted: see the lines above (`relayer messages show ID` "
            "tells more)")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
