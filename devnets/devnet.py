"""``relayer devnet up|down|status``: the local devnet the tests, the benchmarks and ``make run`` use.

``up`` starts the chains, deploys and wires the contracts, and writes into the devnet directory
(``.devnet/`` by default):

- ``devnet.json``  the manifest: chains (name, family, domain, chain_id, rpc_url, contracts, tokens,
  funded test accounts), validators (address, url), threshold, api_url;
- ``relayer.toml`` a complete daemon config for this devnet;
- ``state.json``   the processes it started (for ``down`` and ``status``), and one log per chain.

Each EVM chain also gets a beacon light-client endpoint (``devnets/beacon``: one process, ``beacon.log``, a port
per chain): a beacon chain whose slot N carries the anvil's block N, signed by a devnet sync committee and
finalizing what the anvil treats as final. ``relayer.toml`` points each EVM chain's validator at it
(``beacon_url``) from the beacon block finalized when the devnet came up (``trusted_block_root``). The Solana
devnet is one node: its chain says ``trust_single_rpc = true`` (logged by the validator at start), since a second
port on the same node would not be an independent endpoint.

``up`` when already up checks that everything answers and changes nothing. Otherwise it starts a new devnet on
every family: the chains' state of an earlier one (``NAME.state.json``, ``cosmos/``, ``solana/``, the beacon's
committee secret) and the relayer's store (``relayer.db``) are dropped first. ``down`` drops them too, unless it
is ``down(keep_state=True)`` (``relayer devnet down --keep-state``): then each anvil's chain is dumped to
``NAME.state.json``, everything else stays, ``kept.json`` says so, and the next ``up`` resumes that devnet (same
chains, contracts, heights, beacon chains and store) instead of starting a new one.

``up`` and ``down`` hold ``devnet.lock`` (an exclusive ``flock`` on the directory's lock file) while they run, and a
bench holds it from "is it up?" to "up": a process that finds another bringing the same devnet up or down waits for
it to finish, instead of taking a devnet still going down for a running one (or finding its ports held).

The Solana and Cosmos processes can snapshot and revert their chains in place (``xchain_snapshot`` /
``xchain_revert``, ``devnets.snapshots``) only when this devnet was made with ``Devnet(allow_snapshots=True)``, as the
``xchain`` pytest plugin's session does; ``relayer devnet up`` never turns it on, and its devnet refuses both. Such a
devnet's anvils are mined by the process that brought it up (``devnets.anvil_mining.AnvilMiner``, ``--no-mining``:
anvil's own interval miner races ``evm_revert``), and ``anvil_snapshots()`` snapshots and reverts them with that
mining paused.

All keys involved are the public anvil test keys, written as such; they guard nothing of value.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import json
import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import structlog

from adapters.evm import devnet as evm_devnet
from config.errors import RelayerError
from devnets.anvil_mining import AnvilMiner, AnvilSnapshots

log = structlog.get_logger("devnets.devnet")

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DIR = Path(".devnet")
THRESHOLD = 2
ROLLUP_FINALITY_RULES = ("confirmations", "optimistic", "posted")


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(type(v))


DEVNET_RELAYER_ACCOUNTS = (evm_devnet.RELAYER_A, evm_devnet.RELAYER_B)
IDENTITY_KEY_OFFSET = 100  # a relayer's identity is the devnet mnemonic's key at 100 + its wallet account's index


def relayer_identity_key(relayer_account: int) -> str:
    """The devnet identity key (``relayer.identity_key``) of the relayer paying with ``relayer_account``: a key of its
    own, apart from the wallet, derived from the public anvil test mnemonic (a devnet test key, guarding nothing)."""
    return evm_devnet.devnet_key(IDENTITY_KEY_OFFSET + relayer_account)


def relayer_toml(manifest: dict[str, Any], *, store_url: str, relayer_account: int = evm_devnet.RELAYER_A,
                 allowed_relayer_accounts: Iterable[int] = DEVNET_RELAYER_ACCOUNTS) -> str:
    """A daemon config for the devnet in ``manifest`` (devnet test keys inline, marked as such). The relayer's
    identity (``relayer.identity_key``) is ``relayer_identity_key(relayer_account)``; the validators serve the
    relayers of ``allowed_relayer_accounts`` (``validator.allowed_relayers``: the two devnet relayers by default)."""
    relayer_key = evm_devnet.devnet_key(relayer_account)
    allowed = [evm_devnet.address_of(relayer_identity_key(i)).lower() for i in allowed_relayer_accounts]
    lines = [
        "# Daemon config for the local devnet, written by `relayer devnet up`.",
        "# Every private key below is a PUBLIC anvil devnet test key: never use them on a real network.",
        "",
        "[store]",
        f"url = {_toml_value(store_url)}",
        "",
        "[api]",
        f"url = {_toml_value(manifest['api_url'])}",
        "",
        "[security]",
        f"threshold = {manifest['threshold']}",
        "validators = [",
        *[f"  {{ address = {_toml_value(v['address'])}, url = {_toml_value(v['url'])} }},"
          for v in manifest["validators"]],
        "]",
        "",
        "[validator]",
        "keys = [  # devnet test keys",
        *[f"  {{ private_key = {_toml_value(v['private_key'])} }}," for v in manifest["validator_keys"]],
        "]",
        *_cosign_keys_toml(manifest),
        "# relayers whose signed requests the validators serve (co-sign only for them; checkpoints for anyone)",
        f"allowed_relayers = {_toml_value(allowed)}",
        "",
        "[relayer]",
        "batch_size = 200",
        "# signs every request to the validators; its address is in validator.allowed_relayers",
        f"identity_key = {{ private_key = {_toml_value(relayer_identity_key(relayer_account))} }}  # devnet test key",
        "",
        *_gas_oracle_toml(manifest),
        "[audit]",
        "# solvency audit every interval_s: relayer_audit_* gauges, audit_shortfall logged (`relayer audit` on demand)",
        "enabled = true",
        "interval_s = 30.0",
        "",
        "[router]",
        *_native_usd_toml(manifest),
        "# the routing API signs submitted intents with the two funded devnet user accounts; no api_keys: allowed",
        "# because api.url is loopback-only (the daemon warns that anyone on this host can spend these accounts)",
        "operator_keys = [  # devnet test keys",
        *[f"  {{ private_key = {_toml_value(evm_devnet.devnet_key(i))} }},"
          for i in (evm_devnet.USER_A, evm_devnet.USER_B)],
        "]",
        *_router_limits_toml(manifest),
        "",
    ]
    for name, chain in manifest["chains"].items():
        if chain["family"] == "cosmos":
            lines += _cosmos_chain_toml(name, chain)
            continue
        if chain["family"] == "solana":
            lines += _solana_chain_toml(name, chain)
            continue
        lines += [
            f"[chains.{name}]",
            f"family = {_toml_value(chain['family'])}",
            f"domain = {chain['domain']}",
            f"chain_id = {chain['chain_id']}",
            f"rpc_url = {_toml_value(chain['rpc_url'])}",
            f"mailbox = {_toml_value(chain['contracts']['mailbox'])}",
            f"token_bridge = {_toml_value(chain['contracts']['token_bridge'])}",
            *_paymaster_toml(chain),
            *_finality_toml(chain, manifest.get("rollup_finality", "confirmations")),
            f"poll_interval_s = {min(0.25, chain['block_time_s'])}",
            f"signer = {{ private_key = {_toml_value(relayer_key)} }}  # devnet test key",
            f"tokens = {_toml_value({s: _token_entry(t) for s, t in chain['tokens'].items()})}",
            *_beacon_toml(chain),
            "",
        ]
    return "\n".join(lines)


def _finality_toml(chain: dict[str, Any], rollup_finality: str) -> list[str]:
    """A chain's finality rule: its own (``finality``), or for a rollup under an L1 rule its ``settlement``."""
    settlement = chain.get("settlement")
    if settlement is None or rollup_finality == "confirmations":
        return [f"finality = {_toml_value(chain['finality'])}"]
    table = {"l1": settlement["l1"], "output_oracle": settlement["output_oracle"], "rule": rollup_finality,
             "challenge_window_s": settlement["challenge_window_s"], "message_passer": settlement["message_passer"]}
    return [f"settlement = {_toml_value(table)}  # final by the output roots the devnet proposer posts on the L1"]


def _paymaster_toml(chain: dict[str, Any]) -> list[str]:
    paymaster = chain["contracts"].get("gas_paymaster")  # (absent from a devnet kept by an older version)
    return [f"gas_paymaster = {_toml_value(paymaster)}"] if paymaster else []


def _gas_oracle_toml(manifest: dict[str, Any]) -> list[str]:
    """The oracles' upkeep; no [[relayer.gas_payment]] rule, so the devnet delivers unpaid messages too (add one to
    try paid delivery: ``policy = "on_chain_quote"`` with the EVM origins)."""
    if not any(c["contracts"].get("gas_paymaster") for c in manifest["chains"].values() if "contracts" in c):
        return []
    key = evm_devnet.devnet_key(evm_devnet.GAS_ORACLE_UPDATER)
    return ["[relayer.gas_oracle]",
            "# keeps each EVM chain's GasOracle current from the destinations' live fees and router.native_usd",
            f"signer = {{ private_key = {_toml_value(key)} }}  # devnet test key", ""]


RECEIVED_SELECTOR = "0x83a6deb5"  # TestRecipient.received(): a view; calling it in a transaction changes nothing
DEVNET_INTENTS_PER_S = 100.0
DEVNET_INTENTS_BURST = 1000
DEVNET_VALUE_PER_DAY = {"TST": 10_000.0, "USDC": 100_000.0, "SOLX": 10_000.0}


# USD per whole native token of the devnet's non-EVM chains (their fee tokens), for fees in USD: assumed prices of
# the tokens they stand for (the Cosmos fee denom ustake as ATOM, Solana's lamports as SOL); ether is router.native_usd
DEVNET_NATIVE_USD = {"cosmos": 5.0, "solana": 150.0}


def _native_usd_toml(manifest: dict[str, Any]) -> list[str]:
    """``native_usd_by_chain`` for the chains whose native token is not ether (none on an EVM-only devnet)."""
    prices = {name: DEVNET_NATIVE_USD[chain["family"]] for name, chain in manifest["chains"].items()
              if chain["family"] in DEVNET_NATIVE_USD}
    if not prices:
        return []
    return ["# USD per native token (fees in USD: quotes, /v1/chains); ether at native_usd (3000); assumed prices of",
            "# the tokens these stand for: the Cosmos fee denom as ATOM, Solana's lamports as SOL",
            f"native_usd_by_chain = {_toml_value(prices)}"]


def _value_per_day(manifest: dict[str, Any]) -> dict[str, float]:
    """The operators' daily budget per client and token: TST and USDC, and SOLX where there is a Solana chain (the
    operators' Solana accounts send it cross-chain)."""
    solana = any(chain["family"] == "solana" for chain in manifest["chains"].values())
    return {t: v for t, v in DEVNET_VALUE_PER_DAY.items() if t != "SOLX" or solana}


def _router_limits_toml(manifest: dict[str, Any]) -> list[str]:
    """Per-client limits and the call allow-list: only TestRecipient's harmless ``received()``, nothing that moves
    or approves tokens."""
    allow = {name: [{"contract": chain["contracts"]["test_recipient"], "selectors": [RECEIVED_SELECTOR]}]
             for name, chain in manifest["chains"].items()
             if chain["family"] == "evm" and "test_recipient" in chain.get("contracts", {})}
    return [
        f"intents_per_s = {DEVNET_INTENTS_PER_S!r}            # per client (devnet: per address, all loopback)",
        f"intents_burst = {DEVNET_INTENTS_BURST}",
        f"value_per_day = {_toml_value(_value_per_day(manifest))}  # token units the operators send per client a day",
        "unsigned_ttl_s = 600.0",
        "max_open_unsigned = 10000",
        "",
        "[router.call_allowlist]  # TestRecipient.received() only",
        *[f"{name} = {_toml_value(targets)}" for name, targets in allow.items()],
    ]
def _beacon_toml(chain: dict[str, Any]) -> list[str]:
    """The validator's sync-committee light client for an EVM chain: the devnet beacon endpoint and the block root
    it starts from (the beacon block finalized when the devnet came up)."""
    if "beacon_url" not in chain:
        return []
    return ["# the devnet beacon endpoint of this chain; the light client starts from the root finalized at `up`",
            f"beacon_url = {_toml_value(chain['beacon_url'])}",
            f"trusted_block_root = {_toml_value(chain['trusted_block_root'])}"]


def _cosign_keys_toml(manifest: dict[str, Any]) -> list[str]:
    """Validators' keys on the co-signed chains (devnet: the Cosmos multisig members are their secp256k1 keys)."""
    lines = []
    for name, chain in manifest["chains"].items():
        if chain["family"] in ("cosmos", "solana"):  # devnet: the same 32 bytes serve as the ed25519 seed
            keys = ", ".join(f"{{ private_key = {_toml_value(v['private_key'])} }}" for v in manifest["validator_keys"])
            lines.append(f"cosign_keys.{name} = [{keys}]  # devnet test keys")
    return lines


def _solana_chain_toml(name: str, chain: dict[str, Any]) -> list[str]:
    tokens = {s: {"mint": t["address"], "decimals": t["decimals"], "wrapped": t.get("wrapped", False),
                  **{k: t[k] for k in ("home_domain", "home_token", "home_decimals") if k in t}}
              for s, t in chain["tokens"].items()}
    return [
        f"[chains.{name}]",
        'family = "solana"',
        f"domain = {chain['domain']}",
        f"rpc_url = {_toml_value(chain['rpc_url'])}",
        f"multisig = {_toml_value(chain['multisig'])}",
        f"multisig_threshold = {chain['multisig_threshold']}",
        f"bridge = {_toml_value(chain['bridge'])}",
        f"remote_bridges = {_toml_value(chain['remote_bridges'])}",
        f"tokens = {_toml_value(tokens)}",
        f"signer = {{ private_key = {_toml_value(chain['relayer_signer_seed'])} }}  # devnet test key (ed25519 seed)",
        *_fee_account_toml(chain),
        "# one devnet node, no light client: the validator trusts it (logged at start, validator_single_rpc_trust 1)",
        "trust_single_rpc = true",
        "",
    ]


def _cosmos_chain_toml(name: str, chain: dict[str, Any]) -> list[str]:
    tokens = {s: {"denom": t["address"], "decimals": t["decimals"], "wrapped": t.get("wrapped", False),
                  **{k: t[k] for k in ("home_domain", "home_token", "home_decimals", "escrow") if k in t}}
              for s, t in chain["tokens"].items()}
    return [
        f"[chains.{name}]",
        'family = "cosmos"',
        f"domain = {chain['domain']}",
        f"chain_id = {_toml_value(chain['chain_id'])}",
        f"rpc_url = {_toml_value(chain['rpc_url'])}",
        f"rest_url = {_toml_value(chain['rest_url'])}",
        f"bech32_prefix = {_toml_value(chain['bech32_prefix'])}",
        f"fee_denom = {_toml_value(chain['fee_denom'])}",
        f"gas_price = {chain['gas_price']!r}",
        f"vault = {_toml_value(chain['vault'])}",
        f"multisig_threshold = {chain['multisig_threshold']}",
        f"multisig_pubkeys = {_toml_value(chain['multisig_pubkeys'])}",
        f"delivery_timeout_blocks = {chain.get('delivery_timeout_blocks', 60)}  # co-signed payouts expire after this",
        f"remote_bridges = {_toml_value(chain['remote_bridges'])}",
        f"tokens = {_toml_value(tokens)}",
        *_fee_account_toml(chain),
        "",
    ]


def _fee_account_toml(chain: dict[str, Any]) -> list[str]:
    """Where dispatches from this chain pay for delivery (absent from a devnet kept by an older version)."""
    account = chain.get("gas_fee_account")
    return ([f"gas_fee_account = {_toml_value(account)}  # a PUBLIC devnet test account: the relayer's fees"]
            if account else [])


def _token_entry(token: dict[str, Any]) -> dict[str, Any]:
    entry = {"address": token["address"], "decimals": token["decimals"]}
    if not token.get("bridged", True):
        entry["bridged"] = False
    if token.get("pool"):
        entry["pool"] = token["pool"]
    return entry


class Devnet:
    """The devnet rooted at one directory. ``layout``: ``default`` (an L1 and two rollups) or ``route`` (four
    chains with capacity limits, for ``relayer bench route``)."""

    def __init__(self, directory: Path = DEFAULT_DIR, *, base_port: int = 8545, api_port: int = 8900,
                 layout: str = "default", families: tuple[str, ...] = ("evm", "cosmos", "solana"),
                 persistent: bool = False, state_interval_s: float | None = None,
                 cosmos_delivery_timeout_blocks: int = 60, solana_blockhash_valid_slots: int | None = None,
                 rollup_finality: str = "confirmations", allow_snapshots: bool = False) -> None:
        """``cosmos_delivery_timeout_blocks``: the Cosmos chain's ``delivery_timeout_blocks`` in the written config
        (how long an unlanded co-signed payout holds its messages; tests shorten it to wait less).
        ``solana_blockhash_valid_slots``: how many slots a Solana blockhash stays usable (default: a real cluster's
        150; tests shorten it to see a transaction expire sooner). ``persistent``: every anvil keeps its chain in
        ``DIR/NAME.state.json`` (written on SIGTERM and, with ``state_interval_s``, periodically), so
        ``restart_chain`` brings a node back with its chain, as a real node restarts from its database. Without it an
        anvil restart would be a new, empty chain. ``rollup_finality``: the rule the written config gives the rollups'
        origins: ``confirmations`` (their own, fast), or ``optimistic`` / ``posted`` (``chains.<rollup>.settlement``:
        final by the output roots the devnet proposer posts on the L1). The proposer runs either way.
        ``allow_snapshots``: the Solana and Cosmos processes serve ``xchain_snapshot`` / ``xchain_revert``
        (``devnets.snapshots``: in-place snapshots, as anvil's ``evm_snapshot``). Only a test session's own devnet
        turns it on (the ``xchain`` pytest plugin); ``relayer devnet up`` and ``make run`` do not, and their devnets
        refuse both methods, saying why."""
        if rollup_finality not in ROLLUP_FINALITY_RULES:
            raise RelayerError(f"unknown rollup finality {rollup_finality!r}; known: "
                               f"{', '.join(ROLLUP_FINALITY_RULES)}")
        self.rollup_finality = rollup_finality
        self.allow_snapshots = allow_snapshots
        self.miner: AnvilMiner | None = None  # mines the anvils when allow_snapshots (started by up)
        self.persistent = persistent
        self.solana_blockhash_valid_slots = solana_blockhash_valid_slots
        self.cosmos_delivery_timeout_blocks = cosmos_delivery_timeout_blocks
        self.state_interval_s = state_interval_s
        self.dir = Path(directory).resolve()
        self.base_port = base_port
        self.api_url = f"http://127.0.0.1:{api_port}"
        if layout not in ("default", "route"):
            raise RelayerError(f"unknown devnet layout {layout!r}; known: default, route")
        self.layout = layout
        unknown = set(families) - {"evm", "cosmos", "solana"}
        if unknown or "evm" not in families:
            raise RelayerError(f"devnet families must include evm and be among evm, cosmos, solana; got {families}")
        self.families = families
        self._lock_depth = 0

    @contextlib.contextmanager
    def locked(self, timeout_s: float = 180.0) -> Iterator[None]:
        """Hold the devnet's lock: no other process brings this devnet up or down meanwhile (re-entrant within this
        object). Waits up to ``timeout_s`` for a holder (logging that it waits), then a ``RelayerError``."""
        if self._lock_depth:
            self._lock_depth += 1
            try:
                yield
            finally:
                self._lock_depth -= 1
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / "devnet.lock", "a+") as fd:
            _flock_within(fd, self.dir, timeout_s)
            self._lock_depth = 1
            try:
                yield
            finally:
                self._lock_depth = 0
                fcntl.flock(fd, fcntl.LOCK_UN)

    @property
    def manifest_path(self) -> Path:
        return self.dir / "devnet.json"

    @property
    def config_path(self) -> Path:
        return self.dir / "relayer.toml"

    @property
    def state_path(self) -> Path:
        return self.dir / "state.json"

    def manifest(self) -> dict[str, Any]:
        try:
            return json.loads(self.manifest_path.read_text())
        except FileNotFoundError:
            raise RelayerError(f"no devnet manifest at {self.manifest_path}: run `relayer devnet up` first") from None

    def _state(self) -> dict[str, Any]:
        try:
            return json.loads(self.state_path.read_text())
        except FileNotFoundError:
            return {}

    def status(self) -> dict[str, Any]:
        state = self._state()
        chains = {}
        for name, info in state.get("chains", {}).items():
            alive = _pid_alive(info["pid"])
            height = _height(info.get("family", "evm"), info["rpc_url"]) if alive else None
            chains[name] = {"pid": info["pid"], "alive": alive, "rpc_url": info["rpc_url"], "height": height}
        up = bool(chains) and all(c["height"] is not None for c in chains.values())
        out: dict[str, Any] = {"up": up, "dir": str(self.dir), "chains": chains}
        beacon = state.get("beacon")
        if beacon is not None:
            alive = _pid_alive(beacon["pid"])
            out["beacon"] = {"pid": beacon["pid"], "alive": alive, "urls": beacon.get("urls", {})}
            up = out["up"] = up and alive
        out["manifest"] = str(self.manifest_path) if up else None
        return out

    @property
    def kept_path(self) -> Path:
        """Written by ``down(keep_state=True)``: the next ``up`` resumes the devnet kept here."""
        return self.dir / "kept.json"

    def up(self, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
        """Start the devnet: resume the one ``down(keep_state=True)`` kept, else a new one on every family (holding
        the devnet's lock: a devnet another process is bringing up or down is waited for)."""
        with self.locked():
            return self._up(progress or (lambda _m: None))

    def _up(self, step: Callable[[str], None]) -> dict[str, Any]:
        if self.status()["up"] and self.manifest_path.exists():
            step("devnet already up")
            return self.manifest()
        self._stop_processes()
        if self.kept_path.exists():
            return self._resume(step)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._drop_chain_state()
        chains = self._evm_chains()
        procs = {}
        try:
            for c in chains:
                procs[c.name] = self._start_anvil(c)
            self.state_path.write_text(json.dumps({"chains": {c.name: {"pid": procs[c.name].pid, "rpc_url": c.rpc_url}
                                                              for c in chains}}))
            for c in chains:
                evm_devnet.wait_until_answers(c, procs[c.name])
            self._start_miner(chains)
            step(f"{len(chains)} anvil chains answering")
            beacon = self._start_beacon(chains)  # follows the anvils while the contracts are deployed
            validator_keys = [evm_devnet.devnet_key(i) for i in evm_devnet.VALIDATOR_INDICES]
            validators = [evm_devnet.address_of(k) for k in validator_keys]
            deployed = evm_devnet.deploy_devnet(chains, validators=validators, threshold=THRESHOLD, progress=step)
            beacons = self._beacon_roots(chains, beacon)
        except BaseException:
            self.down()
            raise
        accounts = [evm_devnet.devnet_key(i) for i in (evm_devnet.USER_A, evm_devnet.USER_B)]
        manifest: dict[str, Any] = {
            "note": "devnet only: every private_key here is a public anvil test key",
            "chains": {
                c.name: {
                    "name": c.name, "family": "evm", "domain": c.domain, "chain_id": c.chain_id, "rpc_url": c.rpc_url,
                    "block_time_s": c.block_time_s, "gas_limit": c.capacity_gas_limit or c.gas_limit,
                    "finality": c.finality,
                    "contracts": deployed[c.name]["contracts"],
                    "tokens": deployed[c.name]["tokens"],
                    "accounts": [{"address": evm_devnet.address_of(k), "private_key": k} for k in accounts],
                    **beacons[c.name],
                    **({"settlement": deployed[c.name]["settlement"]} if "settlement" in deployed[c.name] else {}),
                }
                for c in chains
            },
            "validators": [{"address": a.lower(), "url": f"{self.api_url}/validators/{a.lower()}"} for a in validators],
            "validator_keys": [{"address": a.lower(), "private_key": k} for a, k in zip(validators, validator_keys)],
            "threshold": THRESHOLD,
            "rollup_finality": self.rollup_finality,
            "api_url": self.api_url,
            "relayer_accounts": [evm_devnet.address_of(evm_devnet.devnet_key(i))
                                 for i in (evm_devnet.RELAYER_A, evm_devnet.RELAYER_B)],
            "created_at": time.time(),
        }
        try:
            self._start_proposer(manifest)
            if "cosmos" in self.families:
                manifest["chains"]["cosmos"] = self._up_cosmos(manifest, step)
            if "solana" in self.families:
                manifest["chains"]["solana"] = self._up_solana(manifest, step)
        except BaseException:
            self.down()
            raise
        self.manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
        self.config_path.write_text(relayer_toml(manifest, store_url=f"sqlite:///{self.dir / 'relayer.db'}"))
        step(f"manifest written to {self.manifest_path}")
        log.info("devnet_up", dir=str(self.dir), chains=[asdict(c) for c in chains])
        return manifest

    def _start_beacon(self, chains: list[evm_devnet.EvmDevnetChain], ports: dict[str, int | None] | None = None) -> Any:
        """One ``python -m devnets.beacon`` following every anvil (any free port per chain, or ``ports``: a resumed
        devnet's), recorded in ``state.json``. Its sync committees derive from ``beacon.secret`` (random, mode 0600,
        written here and in no manifest or config): whoever could derive them could sign a fork's headers. A resumed
        devnet keeps its secret: the beacon rebuilds the same beacon chains from the same anvil blocks."""
        from devnets.beacon import ChainSpec, start_beacon_devnet, write_committee_secret

        specs = [ChainSpec(c.name, c.chain_id, c.rpc_url, c.finality, _finality_depth(c),
                           (ports or {}).get(c.name) or 0)
                 for c in chains]
        if ports is None:
            write_committee_secret(self.dir / "beacon.secret")  # new chains, new committees; only the beacon reads it
        proc = start_beacon_devnet(specs, self.dir / "beacon.ports.json", self.dir / "beacon.secret",
                                   log_path=self.dir / "beacon.log")
        state = self._state()
        state["beacon"] = {"pid": proc.pid}
        self.state_path.write_text(json.dumps(state))
        return proc

    def _start_proposer(self, manifest: dict[str, Any]) -> None:
        """The rollups' output proposer (``python -m devnets.proposer``), recorded in ``state.json``."""
        from devnets.proposer import start_proposer

        rollups = {n: c for n, c in manifest["chains"].items() if "settlement" in c}
        if not rollups:
            return
        any_rollup = next(iter(rollups.values()))["settlement"]
        l1 = manifest["chains"][any_rollup["l1"]]
        spec = {"l1_rpc_url": l1["rpc_url"], "chain_id": l1["chain_id"],
                "interval_blocks": any_rollup["interval_blocks"], "message_passer": any_rollup["message_passer"],
                "rollups": [{"name": n, "rpc_url": c["rpc_url"], "output_oracle": c["settlement"]["output_oracle"]}
                            for n, c in rollups.items()]}
        proc = start_proposer(spec, evm_devnet.devnet_key(evm_devnet.PROPOSER), self.dir / "proposer.log")
        state = self._state()
        state["proposer"] = {"pid": proc.pid, "spec": spec}
        self.state_path.write_text(json.dumps(state))

    def stop_proposer(self) -> None:
        """Stop the rollups' proposer (a fault: no more output roots are posted until ``start_proposer``)."""
        state = self._state()
        info = state.pop("proposer", None)
        if info is None:
            raise RelayerError(f"no proposer is running in {self.dir}")
        evm_devnet.stop_process(info["pid"])
        state["proposer_stopped"] = info["spec"]
        self.state_path.write_text(json.dumps(state))

    def start_proposer(self) -> None:
        """Start the proposer ``stop_proposer`` stopped; it resumes from what the oracles hold."""
        from devnets.proposer import start_proposer

        state = self._state()
        spec = state.pop("proposer_stopped", None)
        if spec is None:
            raise RelayerError(f"no stopped proposer in {self.dir}")
        proc = start_proposer(spec, evm_devnet.devnet_key(evm_devnet.PROPOSER), self.dir / "proposer.log")
        state["proposer"] = {"pid": proc.pid, "spec": spec}
        self.state_path.write_text(json.dumps(state))

    def _beacon_roots(self, chains: list[evm_devnet.EvmDevnetChain], proc: Any) -> dict[str, dict[str, Any]]:
        """Each chain's beacon URL and the root of its beacon block finalized now (slot 1 at least): what the
        validators' light clients start from."""
        from devnets.beacon import finalized_block_root

        urls = self._beacon_urls(chains, proc)
        found = {}
        deadline = time.monotonic() + 60
        for name, url in urls.items():
            slot, root = finalized_block_root(url)
            while slot < 1 and time.monotonic() < deadline:
                time.sleep(0.1)
                slot, root = finalized_block_root(url)
            if slot < 1:
                raise RelayerError(f"the beacon chain of {name} finalized nothing within 60 s (see beacon.log)")
            found[name] = {"beacon_url": url, "trusted_block_root": root, "beacon_trusted_slot": slot}
        return found

    def _beacon_urls(self, chains: list[evm_devnet.EvmDevnetChain], proc: Any) -> dict[str, str]:
        """Each chain's beacon URL once it answers (caught up with its anvil), recorded in ``state.json``."""
        from devnets.beacon import wait_until_ready

        urls = wait_until_ready(self.dir / "beacon.ports.json", [c.name for c in chains], process=proc, timeout=60)
        state = self._state()
        state["beacon"]["urls"] = urls
        self.state_path.write_text(json.dumps(state))
        return urls

    def _evm_chains(self) -> list[evm_devnet.EvmDevnetChain]:
        return (evm_devnet.route_bench_chains(self.base_port) if self.layout == "route"
                else evm_devnet.default_chains(self.base_port))

    def _start_anvil(self, chain: evm_devnet.EvmDevnetChain, *, resume: bool = False) -> Any:
        state = self.dir / f"{chain.name}.state.json" if self.persistent or resume else None
        return evm_devnet.start_anvil(chain, PROJECT_ROOT, self.dir / f"{chain.name}.log", state_path=state,
                                      state_interval_s=self.state_interval_s, mined_by_caller=self.allow_snapshots)

    def _start_miner(self, chains: list[evm_devnet.EvmDevnetChain]) -> None:
        """A devnet that is reverted mines its anvils itself (``devnets.anvil_mining``: anvil's own miner races
        ``evm_revert``)."""
        if self.allow_snapshots:
            self._stop_miner()
            self.miner = AnvilMiner(chains)
            self.miner.start()

    def _stop_miner(self) -> None:
        if self.miner is not None:
            self.miner.stop()
            self.miner = None

    def anvil_snapshots(self) -> AnvilSnapshots:
        """Snapshots of every anvil of this devnet, taken and reverted while its miner (if this process mines them)
        is paused."""
        return AnvilSnapshots({c.name: c.rpc_url for c in self._evm_chains()}, self.miner)

    def _evm_chain(self, name: str) -> evm_devnet.EvmDevnetChain:
        chains = {c.name: c for c in self._evm_chains()}
        if name not in chains:
            raise RelayerError(f"no EVM devnet chain {name!r}; known: {', '.join(chains)}")
        if not self.persistent:
            raise RelayerError("this devnet was not started persistent=True: a restarted anvil would come back "
                               "as a new, empty chain")
        return chains[name]

    def stop_chain(self, name: str) -> None:
        """Stop one anvil with SIGTERM (it writes its state file) and wait for it to exit."""
        chain = self._evm_chain(name)
        info = self._state().get("chains", {}).get(name)
        if info is None:
            raise RelayerError(f"chain {name} is not running in {self.dir}")
        evm_devnet.stop_process(info["pid"], timeout_s=30.0)
        log.info("devnet_chain_stopped", chain=name, port=chain.port)

    def start_chain(self, name: str) -> int:
        """Start one stopped anvil again on its port, from its state file; returns its height."""
        chain = self._evm_chain(name)
        proc = self._start_anvil(chain)
        self._record_process(name, proc.pid, chain.rpc_url, "evm")
        evm_devnet.wait_until_answers(chain, proc)
        height = _height("evm", chain.rpc_url)
        log.info("devnet_chain_started", chain=name, port=chain.port, height=height)
        return height or 0

    def restart_chain(self, name: str) -> int:
        """``stop_chain`` then ``start_chain``: the node comes back on the same port with its chain."""
        self.stop_chain(name)
        return self.start_chain(name)

    def _record_process(self, name: str, pid: int, rpc_url: str, family: str) -> None:
        state = self._state()
        state.setdefault("chains", {})[name] = {"pid": pid, "rpc_url": rpc_url, "family": family}
        self.state_path.write_text(json.dumps(state))

    def _up_cosmos(self, manifest: dict[str, Any], step: Callable[[str], None]) -> dict[str, Any]:
        """The Cosmos devnet (its own CometBFT-committed chain), the validators' multisig vault, and the EVM
        side: its vault enrolled as the Cosmos chain's token bridge. TST (home l1) is paid out of the vault's
        escrow of ``uxtst`` (6 decimals) on Cosmos and locked back into it. The escrow is the vault's from
        genesis and no other account holds ``uxtst``: a user gets it only by bridging TST in from l1."""
        from devnets.cosmos import genesis_manifest
        from devnets.cosmos.accounts import address_bytes, bech32_address, secp256k1_address
        from devnets.cosmos.bridge_setup import compressed_pubkey, setup_cosmos_bridge, vault_address
        from devnets.cosmos.genesis import GenesisSettings

        rpc_port, rest_port = self.base_port + 10, self.base_port + 11
        rpc_url, rest_url = f"http://127.0.0.1:{rpc_port}", f"http://127.0.0.1:{rest_port}"
        validator_keys = [v["private_key"] for v in manifest["validator_keys"]]
        vault = vault_address(validator_keys, manifest["threshold"])
        settings = GenesisSettings(escrow_address=vault, escrow_balance=COSMOS_ESCROW)
        self._start_cosmos(vault)
        # the router's operator keys (the EVM user keys) as secp256k1 keys on Cosmos: fee money for their lanes
        operators = [bech32_address(secp256k1_address(compressed_pubkey(evm_devnet.devnet_key(i))), settings.prefix)
                     for i in (evm_devnet.USER_A, evm_devnet.USER_B)]
        bridge = setup_cosmos_bridge(rest_url, member_keys_hex=validator_keys, threshold=manifest["threshold"],
                                     escrow=COSMOS_ESCROW, fee_funding=10**9, settings=settings, operators=operators)
        vault32 = "0x" + address_bytes(bridge.vault).rjust(32, b"\0").hex()
        evm = _evm_bridges(manifest)
        home = manifest["chains"]["l1"]["tokens"]["TST"]["address"]
        # TST may go to Cosmos in whole uxtst (multiples of 10**12 home units); Cosmos amounts are 256-bit: no maximum
        tst = evm_devnet.ForeignRoute(manifest["chains"]["l1"]["domain"], _bytes32_hex(home), COSMOS_TST_DECIMALS)
        evm_devnet.enroll_foreign_bridge(evm, COSMOS_DOMAIN, vault32,
                                         validators=[v["address"] for v in manifest["validators"]],
                                         threshold=manifest["threshold"], routes=[tst])
        step("cosmos devnet up, vault funded and enrolled on the EVM bridges, TST routed")
        genesis = genesis_manifest(settings)
        return {
            "name": "cosmos", "family": "cosmos", "domain": COSMOS_DOMAIN, "chain_id": settings.chain_id,
            "rpc_url": rpc_url, "rest_url": rest_url, "fee_denom": settings.fee_denom, "bech32_prefix": settings.prefix,
            "gas_price": float(settings.min_gas_price) * 4, "block_time_s": 0.5, "vault": bridge.vault,
            "delivery_timeout_blocks": self.cosmos_delivery_timeout_blocks,
            "multisig_pubkeys": bridge.multisig_pubkeys, "multisig_threshold": bridge.threshold,
            "remote_bridges": _remote_bridges(manifest),
            "tokens": {"TST": {"address": settings.token_denom, "decimals": COSMOS_TST_DECIMALS, "wrapped": True,
                               "home": "l1", "home_domain": manifest["chains"]["l1"]["domain"],
                               "home_token": _bytes32_hex(home), "home_decimals": 18,
                               "escrow": COSMOS_ESCROW}},
            # devnet test keys; they hold the fee denom only (uxtst: bridge TST in from l1 first)
            "accounts": [{"address": a["address"], "private_key": a["private_key_hex"]}
                         for a in genesis["accounts"][1:3]],
            # the relayer's fee account: genesis account devnet-4, a PUBLIC devnet test account no one else uses
            "gas_fee_account": genesis["accounts"][COSMOS_FEE_ACCOUNT]["address"],
            "genesis_balances": {"accounts": {a["address"]: a["balances"] for a in genesis["accounts"]},
                                 "escrow": genesis["escrow"]},
        }

    def _start_cosmos(self, vault: str) -> None:
        """The Cosmos devnet process over ``cosmos/`` (a new chain whose escrow is ``vault``'s, or the kept one)."""
        from devnets.cosmos import start_cosmos_devnet, wait_until_ready

        rpc_port, rest_port = self.base_port + 10, self.base_port + 11
        rpc_url, rest_url = f"http://127.0.0.1:{rpc_port}", f"http://127.0.0.1:{rest_port}"
        proc = start_cosmos_devnet(rpc_port=rpc_port, rest_port=rest_port, state_dir=self.dir / "cosmos",
                                   log_path=self.dir / "cosmos.log", escrow=(vault, COSMOS_ESCROW),
                                   allow_snapshots=self.allow_snapshots)
        self._record_process("cosmos", proc.pid, rpc_url, "cosmos")
        wait_until_ready(rpc_url, rest_url, process=proc, timeout=60)

    def _start_solana(self) -> str:
        """The Solana devnet process over ``solana/`` (a new ledger, or the kept one); its RPC URL."""
        from devnets.solana import devnet_url, start_solana_devnet, wait_until_ready

        port = self.base_port + 20
        rpc_url = devnet_url(port)
        extra = ([] if self.solana_blockhash_valid_slots is None
                 else ["--blockhash-valid-slots", str(self.solana_blockhash_valid_slots)])
        proc = start_solana_devnet(port, self.dir / "solana", log_path=self.dir / "solana.log", extra_args=extra,
                                   allow_snapshots=self.allow_snapshots)
        self._record_process("solana", proc.pid, rpc_url, "solana")
        wait_until_ready(rpc_url, timeout=60, process=proc)
        return rpc_url

    def _up_solana(self, manifest: dict[str, Any], step: Callable[[str], None]) -> dict[str, Any]:
        """The Solana devnet (LiteSVM behind JSON-RPC), the validators' SPL multisig with wrapped TST and native
        SOLX, and the EVM side: the multisig enrolled as Solana's token bridge, SOLX wrapped on every EVM chain."""
        import asyncio

        from solders.keypair import Keypair

        from devnets.solana import devnet_keypair
        from devnets.solana.base58 import b58decode, b58encode
        from devnets.solana.bridge_setup import setup_solana_bridge

        rpc_url = self._start_solana()
        users = [devnet_keypair(1), devnet_keypair(2)]
        validator_keys = [v["private_key"] for v in manifest["validator_keys"]]
        # the router's operator keys (the EVM user keys) as ed25519 seeds: their Solana accounts sign its lanes there
        operators = [Keypair.from_seed(bytes.fromhex(evm_devnet.devnet_key(i).removeprefix("0x"))).pubkey()
                     for i in (evm_devnet.USER_A, evm_devnet.USER_B)]
        bridge = asyncio.run(setup_solana_bridge(rpc_url, validator_seeds_hex=validator_keys,
                                                 threshold=manifest["threshold"], payer=devnet_keypair(0),
                                                 users=[u.pubkey() for u in users], operators=operators))
        multisig32 = "0x" + b58decode(bridge.multisig).hex()
        solx32 = "0x" + b58decode(bridge.solx_mint).hex()
        evm = _evm_bridges(manifest)
        home = manifest["chains"]["l1"]["tokens"]["TST"]["address"]
        # SPL amounts are u64 of 9 decimals: TST (18 at home) goes in multiples of 10**9, SOLX unscaled
        routes = [evm_devnet.ForeignRoute(manifest["chains"]["l1"]["domain"], _bytes32_hex(home), SOLANA_DECIMALS,
                                          SPL_AMOUNT_MAX),
                  evm_devnet.ForeignRoute(SOLANA_DOMAIN, solx32, SOLANA_DECIMALS, SPL_AMOUNT_MAX)]
        wrapped = evm_devnet.enroll_foreign_bridge(evm, SOLANA_DOMAIN, multisig32,
                                                   validators=[v["address"] for v in manifest["validators"]],
                                                   threshold=manifest["threshold"],
                                                   wrapped=[(SOLANA_DOMAIN, solx32, "Wrapped SOLX", "SOLX",
                                                             SOLANA_DECIMALS)],
                                                   routes=routes)
        for name, tokens in wrapped.items():
            manifest["chains"][name]["tokens"]["SOLX"] = {"address": tokens["SOLX"], "decimals": SOLANA_DECIMALS,
                                                          "home": "solana"}
        step("solana devnet up, multisig and mints created, enrolled on the EVM bridges, TST and SOLX routed")
        relayer = devnet_keypair(3)
        return {
            "name": "solana", "family": "solana", "domain": SOLANA_DOMAIN, "rpc_url": rpc_url, "block_time_s": 0.4,
            "multisig": bridge.multisig, "multisig_threshold": bridge.threshold, "bridge": bridge.multisig,
            "validators_solana": bridge.validators,
            "remote_bridges": _remote_bridges(manifest),
            "tokens": {
                "TST": {"address": bridge.tst_mint, "decimals": SOLANA_DECIMALS, "wrapped": True, "home": "l1",
                        "home_domain": manifest["chains"]["l1"]["domain"], "home_token": _bytes32_hex(home),
                        "home_decimals": 18},
                "SOLX": {"address": bridge.solx_mint, "decimals": SOLANA_DECIMALS, "home": "solana",
                         "vault": bridge.solx_vault},
            },
            "accounts": [{"address": str(u.pubkey()), "private_key": b58encode(bytes(u))} for u in users],
            "relayer_signer_seed": "0x" + bytes(relayer.secret()).hex(),
            # the relayer's fee account: devnet_keypair(0), a PUBLIC devnet test account (the setup payer, funded
            # at genesis, idle after setup), so payments of any size land and its balance moves only by them
            "gas_fee_account": str(devnet_keypair(0).pubkey()),
        }

    def down(self, *, keep_state: bool = False) -> list[str]:
        """Stop every process; the names stopped. Without ``keep_state`` the chains' state and the relayer's store
        go too (the next ``up`` is a new devnet); with it each anvil's chain is dumped first and ``kept.json``
        written, so the next ``up`` resumes this devnet."""
        with self.locked():
            return self._down(keep_state=keep_state)

    def _down(self, *, keep_state: bool) -> list[str]:
        if keep_state and not self.status()["up"]:
            raise RelayerError(f"no running devnet in {self.dir} to keep: `relayer devnet up` first")
        if keep_state:
            self._dump_anvils()
        stopped = self._stop_processes()
        if keep_state:
            kept = {"families": list(self.families), "layout": self.layout, "base_port": self.base_port}
            self.kept_path.write_text(json.dumps(kept))
        else:
            self._drop_chain_state()
        return stopped

    def _stop_processes(self) -> list[str]:
        self._stop_miner()
        stopped: list[str] = []
        state = self._state()
        for process in ("proposer", "beacon"):
            if process in state:
                evm_devnet.stop_process(state[process]["pid"])
                stopped.append(process)
        for name, info in state.get("chains", {}).items():
            evm_devnet.stop_process(info["pid"])
            stopped.append(name)
        self.state_path.unlink(missing_ok=True)
        return stopped

    def _drop_chain_state(self) -> None:
        """Forget the chains of an earlier devnet: anvil dumps, the Cosmos and Solana ledgers, the beacon's
        committee secret and ports, and the relayer's store (its cursors and Merkle trees are those chains')."""
        for stale in [*self.dir.glob("*.db*"), *self.dir.glob("*.state.json"), self.kept_path,
                      self.dir / "beacon.secret", self.dir / "beacon.ports.json"]:
            stale.unlink(missing_ok=True)
        for ledger in ("cosmos", "solana"):
            shutil.rmtree(self.dir / ledger, ignore_errors=True)

    def _dump_anvils(self) -> None:
        """Each anvil's chain (blocks, transactions, state) into ``NAME.state.json``, the file ``--state`` loads."""
        for name, info in self._state().get("chains", {}).items():
            if info.get("family", "evm") == "evm":
                dumped = evm_devnet.rpc_call(info["rpc_url"], "anvil_dumpState", timeout=60.0)
                (self.dir / f"{name}.state.json").write_bytes(gzip.decompress(bytes.fromhex(dumped[2:])))

    def _resume(self, step: Callable[[str], None]) -> dict[str, Any]:
        """Start the kept devnet's processes again on their ports, from their state; the manifest stays."""
        kept = json.loads(self.kept_path.read_text())
        wanted = {"families": list(self.families), "layout": self.layout, "base_port": self.base_port}
        if kept != wanted:
            raise RelayerError(f"the devnet kept in {self.dir} has {kept}, not {wanted}: start it with those options, "
                               "or `relayer devnet down` to drop it")
        manifest = self.manifest()
        chains = self._evm_chains()
        try:
            procs = {c.name: self._start_anvil(c, resume=True) for c in chains}
            for c in chains:
                self._record_process(c.name, procs[c.name].pid, c.rpc_url, "evm")
                evm_devnet.wait_until_answers(c, procs[c.name])
            self._start_miner(chains)
            ports = {n: urlsplit(c["beacon_url"]).port for n, c in manifest["chains"].items() if "beacon_url" in c}
            beacon = self._start_beacon(chains, ports=ports)
            self._beacon_urls(chains, beacon)
            self._start_proposer(manifest)
            if "cosmos" in self.families:
                self._start_cosmos(manifest["chains"]["cosmos"]["vault"])
            if "solana" in self.families:
                self._start_solana()
        except BaseException:
            self._stop_processes()
            raise
        self.kept_path.unlink()
        step(f"devnet resumed from the state kept in {self.dir}")
        log.info("devnet_resumed", dir=str(self.dir), chains=list(manifest["chains"]))
        return manifest


def _flock_within(fd: Any, directory: Path, timeout_s: float) -> None:
    """An exclusive ``flock`` on ``fd``, polled until ``timeout_s`` (then ``RelayerError``)."""
    deadline = time.monotonic() + timeout_s
    waiting = False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise RelayerError(f"the devnet in {directory} is still being brought up or down by another process "
                                   f"after {timeout_s:.0f} s (devnet.lock)") from None
            if not waiting:
                log.info("devnet_lock_wait", dir=str(directory), detail="another process is bringing it up or down")
                waiting = True
            time.sleep(0.1)


COSMOS_DOMAIN = 6000
COSMOS_ESCROW = 10**11  # uxtst in the vault: the wrapped TST the Cosmos side can pay out (100,000 TST)
COSMOS_TST_DECIMALS = 6  # uxtst
COSMOS_FEE_ACCOUNT = 4  # genesis account devnet-4: the relayer's gas_fee_account (a public devnet test account)
SOLANA_DOMAIN = 5000
SOLANA_DECIMALS = 9  # both devnet mints (wrapped TST, native SOLX)
SPL_AMOUNT_MAX = 2**64 - 1  # an SPL token amount is a u64


def _bytes32_hex(address: str) -> str:
    """A 0x EVM address as the 0x bytes32 that names it in token identities."""
    return "0x" + bytes.fromhex(address[2:]).rjust(32, b"\0").hex()


def _remote_bridges(manifest: dict[str, Any]) -> dict[str, str]:
    """Domain -> bytes32 of each EVM chain's TokenBridge: the senders a Solana/Cosmos bridge honours."""
    return {str(c["domain"]): "0x" + bytes.fromhex(c["contracts"]["token_bridge"][2:]).rjust(32, b"\0").hex()
            for c in manifest["chains"].values() if c["family"] == "evm"}


def _evm_bridges(manifest: dict[str, Any]) -> dict[str, tuple[str, str, str]]:
    """EVM chain -> (rpc_url, TokenBridge, MultisigIsm): where a new foreign bridge is enrolled."""
    return {n: (c["rpc_url"], c["contracts"]["token_bridge"], c["contracts"]["multisig_ism"])
            for n, c in manifest["chains"].items() if c["family"] == "evm"}


def _height(family: str, rpc_url: str) -> int | None:
    """The chain's height if it answers (EVM JSON-RPC, CometBFT /status or Solana getSlot)."""
    try:
        if family == "evm":
            return int(evm_devnet.rpc_call(rpc_url, "eth_blockNumber"), 16) if evm_devnet.answers(rpc_url) else None
        if family == "cosmos":
            import urllib.request

            with urllib.request.urlopen(f"{rpc_url}/status", timeout=2) as resp:
                return int(json.loads(resp.read())["result"]["sync_info"]["latest_block_height"])
        return int(evm_devnet.rpc_call(rpc_url, "getSlot"))
    except (OSError, ValueError, KeyError, RelayerError):
        return None


def _finality_depth(chain: evm_devnet.EvmDevnetChain) -> int:
    """Blocks between an anvil's head and what it treats as final: its ``finalized`` tag is two one-slot epochs
    behind (``--slots-in-an-epoch 1``), a rollup's rule is its confirmations."""
    return 2 if chain.finality == "finalized" else int(chain.finality)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # reap a zombie child of this very process
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True
