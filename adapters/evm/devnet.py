"""EVM devnet chains: real ``anvil`` processes (npm ``@foundry-rs/anvil``) with our contracts deployed and wired.

Keys here are anvil's well-known public test keys (mnemonic "test test ... junk"); they hold value on
no real network and are marked as devnet test keys wherever they are written.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from eth_account import Account

from config.errors import RelayerError

# Public devnet test mnemonic shipped with anvil/hardhat. NOT A SECRET: never use on a real network.
DEVNET_TEST_MNEMONIC = "test test test test test test test test test test test junk"

DEPLOYER, RELAYER_A, RELAYER_B, USER_A, USER_B = 0, 1, 2, 3, 4
VALIDATOR_INDICES = (5, 6, 7)
GAS_ORACLE_UPDATER = 300  # relayer.gas_oracle.signer: a key of its own, funded with anvil_setBalance at deployment
PROPOSER, CHALLENGER = 302, 303  # the rollups' output proposer and challenger on the L1 (devnets.proposer)
OUTPUT_INTERVAL_BLOCKS = 4  # the proposer posts every this many rollup blocks
CHALLENGE_WINDOW_S = 4  # the devnet's optimistic challenge window (OutputOracle.finalizationPeriodSeconds)
MESSAGE_PASSER = "0x4200000000000000000000000000000000000016"  # OP's L2ToL1MessagePasser address (empty on anvil)
POOL_EPOCH_S = 8  # the liquidity pools' epoch: flows are netted and settled once per epoch and direction
POOL_LIQUIDITY = 10_000 * 10**6  # USDC each pool starts with (from the deployer's supply)
UPDATER_BALANCE_WEI = 1_000 * 10**18


class DevnetError(RelayerError):
    pass


@dataclass(frozen=True)
class EvmDevnetChain:
    name: str
    domain: int
    chain_id: int
    port: int
    block_time_s: float | None  # None: mine each transaction at once (automine)
    gas_limit: int
    finality: str | int  # "finalized" (anvil's tag, two epochs of one slot) or confirmations
    capacity_gas_limit: int | None = None  # block gas limit set once the contracts are deployed (None: keep)

    @property
    def rpc_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def default_chains(base_port: int = 8545) -> list[EvmDevnetChain]:
    """An L1 and two rollups with distinct ids, domains, block times and gas limits."""
    return [
        EvmDevnetChain("l1", 1000, 31337, base_port, 1.0, 30_000_000, "finalized"),
        EvmDevnetChain("rollup_a", 2000, 31338, base_port + 1, 0.5, 60_000_000, 2),
        EvmDevnetChain("rollup_b", 3000, 31339, base_port + 2, 0.25, 40_000_000, 4),
    ]


def route_bench_chains(base_port: int) -> list[EvmDevnetChain]:
    """Four chains whose capacity, not the client, limits same-chain transfers (``relayer bench route``).

    Block gas limits are set once the contracts are deployed so that at the EIP-1559 target (half full) the chains
    take about 160, 160, 160 and 150 token transfers per second (~52k gas each; ~630/s in all), with different block
    times (1, 0.5, 0.25 and 2 s), so that a capacity-blind round-robin is held back by the slow-block one.
    """
    return [
        EvmDevnetChain("l1", 1000, 31337, base_port, 1.0, 30_000_000, "finalized", 16_640_000),
        EvmDevnetChain("rollup_a", 2000, 31338, base_port + 1, 0.5, 30_000_000, 2, 8_320_000),
        EvmDevnetChain("rollup_b", 3000, 31339, base_port + 2, 0.25, 30_000_000, 4, 4_160_000),
        EvmDevnetChain("rollup_c", 4000, 31340, base_port + 3, 2.0, 40_000_000, 2, 31_200_000),
    ]


def devnet_key(index: int) -> str:
    """The ``index``-th anvil test key (public, devnet only)."""
    Account.enable_unaudited_hdwallet_features()
    return "0x" + bytes(Account.from_mnemonic(DEVNET_TEST_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}").key).hex()


def address_of(key: str) -> str:
    return Account.from_key(key).address


def anvil_binary(project_root: Path) -> str:
    local = project_root / "node_modules" / ".bin" / "anvil"
    if local.exists():
        return str(local)
    found = shutil.which("anvil")
    if found:
        return found
    if (project_root / "package.json").exists():  # a source checkout
        raise DevnetError(f"anvil not found: run `npm ci` in {project_root} (package @foundry-rs/anvil)")
    raise DevnetError("anvil not found on PATH: install it with `npm i -g @foundry-rs/anvil` (or put a Foundry "
                      "anvil on PATH)")


def rpc_call(url: str, method: str, params: list | None = None, timeout: float = 2.0):
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}).encode()
    req = urllib.request.Request(url, body, {"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        doc = json.loads(resp.read())
    if "error" in doc:
        raise DevnetError(f"{method} on {url}: {doc['error']}")
    return doc["result"]


def answers(url: str, chain_id: int | None = None) -> bool:
    try:
        got = int(rpc_call(url, "eth_chainId", timeout=1.0), 16)
    except (OSError, urllib.error.URLError, ValueError, DevnetError):
        return False
    return chain_id is None or got == chain_id


def start_anvil(chain: EvmDevnetChain, project_root: Path, log_path: Path, *, state_path: Path | None = None,
                state_interval_s: float | None = None, mined_by_caller: bool = False) -> subprocess.Popen:
    """An anvil for ``chain``. With ``state_path`` the node persists its chain there (blocks, receipts, state and
    historical states): loaded at start when the file exists, written on a clean exit (SIGTERM) and, with
    ``state_interval_s``, periodically, so a restarted node comes back with its chain (as far as its last dump).
    With ``mined_by_caller`` a chain with a block time mines nothing by itself (``--no-mining``): the caller mines
    it (``devnets.anvil_mining.AnvilMiner``)."""
    if answers(chain.rpc_url):
        raise DevnetError(f"port {chain.port} already answers JSON-RPC: another devnet or node is running there")
    args = [
        anvil_binary(project_root), "--host", "127.0.0.1", "--port", str(chain.port), "--chain-id", str(chain.chain_id),
        "--gas-limit", str(chain.gas_limit), "--accounts", "10",
        "--slots-in-an-epoch", "1", "--order", "fifo", "--disable-code-size-limit",
    ]
    if chain.block_time_s is not None:
        args += ["--no-mining"] if mined_by_caller else ["--block-time", str(chain.block_time_s)]
    if state_path is not None:
        args += ["--state", str(state_path), "--preserve-historical-states"]
        if state_interval_s is not None:
            args += ["--state-interval", str(max(1, round(state_interval_s)))]
    log_file = open(log_path, "ab")  # noqa: SIM115 - handed to the child process
    return subprocess.Popen(args, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True, cwd=project_root)


def wait_until_answers(chain: EvmDevnetChain, proc: subprocess.Popen | None, deadline_s: float = 30.0) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise DevnetError(f"anvil for {chain.name} exited with code {proc.returncode} (see its log)")
        if answers(chain.rpc_url, chain.chain_id):
            return
        time.sleep(0.05)
    raise DevnetError(f"anvil for {chain.name} did not answer on {chain.rpc_url} within {deadline_s:.0f}s")


def _signal(pid: int, sig: int) -> bool:
    """Signal ``pid``'s process group if it leads one (anvils do), else the process itself; False if gone."""
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:
        os.kill(pid, sig)
    return True


def stop_process(pid: int, timeout_s: float = 5.0) -> None:
    """SIGTERM, wait up to ``timeout_s``, then SIGKILL (the Solana and Cosmos devnets run in our own process
    group, anvils in their own: both are handled)."""
    if not _signal(pid, signal.SIGTERM):
        return
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return
        except ChildProcessError:
            pass
        time.sleep(0.05)
    _signal(pid, signal.SIGKILL)


def deploy_devnet(chains: list[EvmDevnetChain], *, validators: list[str], threshold: int,
                  progress=None) -> dict[str, dict]:
    """Deploy and wire the contracts on every chain; returns per chain its contracts and tokens."""
    from web3 import HTTPProvider, Web3

    from adapters.evm import deploy

    deployer = devnet_key(DEPLOYER)
    users = [address_of(devnet_key(i)) for i in (USER_A, USER_B)]
    gas_oracle_updater = address_of(devnet_key(GAS_ORACLE_UPDATER))
    w3s = {c.name: Web3(HTTPProvider(c.rpc_url, request_kwargs={"timeout": 30})) for c in chains}
    step = progress or (lambda _msg: None)

    def core(c: EvmDevnetChain) -> dict[str, str]:
        return deploy.deploy_core(w3s[c.name], deployer, c.domain)

    with ThreadPoolExecutor(len(chains)) as pool:
        cores = dict(zip([c.name for c in chains], pool.map(core, chains)))
    step("contracts deployed")
    home = chains[0]
    token_supply = 10**9 * 10**18

    def wire(c: EvmDevnetChain) -> dict:
        w3 = w3s[c.name]
        contracts = cores[c.name]
        rpc_call(c.rpc_url, "anvil_setBalance", [gas_oracle_updater, hex(UPDATER_BALANCE_WEI)])
        contracts.update(deploy.deploy_gas_paymaster(w3, deployer, gas_oracle_updater, address_of(
            devnet_key(RELAYER_A))))
        deploy.set_validators(w3, deployer, contracts["multisig_ism"], [o.domain for o in chains], validators,
                              threshold)
        remotes = {o.domain: cores[o.name]["token_bridge"] for o in chains if o.name != c.name}
        deploy.enroll_remote_bridges(w3, deployer, contracts["token_bridge"], remotes)
        return {}

    with ThreadPoolExecutor(len(chains)) as pool:
        list(pool.map(wire, chains))
    step("validators and bridges wired")
    w3 = w3s[home.name]
    tst = deploy.deploy_test_token(w3, deployer, "Test Token", "TST", 18, token_supply)
    for user in users:
        deploy.mint_test_token(w3, deployer, tst, user, 10**6 * 10**18)
    tokens: dict[str, dict[str, dict]] = {home.name: {"TST": {"address": tst, "decimals": 18, "home": home.name}}}

    def wrapped(c: EvmDevnetChain) -> tuple[str, str]:
        addr = deploy.create_wrapped_token(w3s[c.name], deployer, cores[c.name]["token_bridge"], home.domain,
                                           "0x" + bytes.fromhex(tst[2:]).rjust(32, b"\0").hex(), "Wrapped Test Token",
                                           "TST", 18)
        return c.name, addr

    with ThreadPoolExecutor(len(chains)) as pool:
        for name, addr in pool.map(wrapped, chains[1:]):
            tokens[name] = {"TST": {"address": addr, "decimals": 18, "home": home.name}}

    def tst_routes(c: EvmDevnetChain) -> None:
        # TST may go from every EVM chain to every other one, amounts unchanged (same decimals everywhere)
        token = tokens[c.name]["TST"]["address"]
        deploy.enroll_routes(w3s[c.name], deployer, cores[c.name]["token_bridge"],
                             [deploy.RouteSpec(o.domain, token) for o in chains if o.name != c.name])

    with ThreadPoolExecutor(len(chains)) as pool:
        list(pool.map(tst_routes, chains))
    step("test token deployed, wrapped and routed")

    def native_usdc(c: EvmDevnetChain) -> tuple[str, str, str]:
        # a stablecoin issued natively on every chain (like USDC), for same-chain transfers anywhere; not bridged
        # (each chain's supply is its own) but pooled: a LiquidityPool per chain pays transfers out of its
        # liquidity, and the epochs' nets are burnt on one side and minted on the other
        w3 = w3s[c.name]
        addr = deploy.deploy_test_token(w3, deployer, "Devnet USD Coin", "USDC", 6, 10**9 * 10**6,
                                        artifact="PoolToken")
        for user in users:
            deploy.mint_test_token(w3, deployer, addr, user, 10**8 * 10**6)
        liquidity_pool = deploy.deploy_liquidity_pool(w3, deployer, cores[c.name]["mailbox"], c.domain, addr,
                                                      POOL_EPOCH_S, POOL_LIQUIDITY)
        return c.name, addr, liquidity_pool

    with ThreadPoolExecutor(len(chains)) as pool:
        pools = {}
        for name, addr, liquidity_pool in pool.map(native_usdc, chains):
            tokens.setdefault(name, {})["USDC"] = {"address": addr, "decimals": 6, "bridged": False,
                                                   "pool": liquidity_pool}
            pools[name] = liquidity_pool
    with ThreadPoolExecutor(len(chains)) as pool:
        list(pool.map(lambda c: deploy.enroll_remote_pools(w3s[c.name], deployer, pools[c.name], {
            o.domain: pools[o.name] for o in chains if o.name != c.name}), chains))
    step("USDC issued on every chain, with a liquidity pool each")
    settlements = deploy_output_oracles(w3s[home.name], home, chains[1:])
    step("output oracles deployed on the L1")
    for c in chains:
        if c.capacity_gas_limit is not None:
            rpc_call(c.rpc_url, "anvil_setBlockGasLimit", [hex(c.capacity_gas_limit)])
    return {c.name: {"contracts": cores[c.name], "tokens": tokens.get(c.name, {}),
                     **({"settlement": settlements[c.name]} if c.name in settlements else {})} for c in chains}


def deploy_output_oracles(w3, l1: EvmDevnetChain, rollups: Sequence[EvmDevnetChain]) -> dict[str, dict]:
    """One ``OutputOracle`` per rollup on the L1, with the devnet proposer and challenger (funded there); per rollup
    what ``chains.<rollup>.settlement`` needs."""
    from adapters.evm import deploy

    proposer, challenger = (address_of(devnet_key(i)) for i in (PROPOSER, CHALLENGER))
    for account in (proposer, challenger):
        rpc_call(l1.rpc_url, "anvil_setBalance", [account, hex(UPDATER_BALANCE_WEI)])
    return {r.name: {"l1": l1.name, "output_oracle": deploy.deploy_output_oracle(
                w3, devnet_key(DEPLOYER), proposer, challenger, CHALLENGE_WINDOW_S),
                     "challenge_window_s": CHALLENGE_WINDOW_S, "interval_blocks": OUTPUT_INTERVAL_BLOCKS,
                     "message_passer": MESSAGE_PASSER, "proposer": proposer, "challenger": challenger}
            for r in rollups}


@dataclass(frozen=True)
class ForeignRoute:
    """A token that may leave the EVM chains for a foreign (Solana or Cosmos) chain: its identity, the decimals
    it has there and the largest amount the foreign chain can hold in its own units (None: no limit; an SPL
    amount is a u64)."""

    home_domain: int
    home_token: str  # 0x bytes32
    decimals: int
    max_units: int | None = None


def enroll_foreign_bridge(chains: dict[str, tuple[str, str, str]], domain: int, bridge32: str, *,
                          validators: Sequence[str], threshold: int,
                          wrapped: Sequence[tuple[int, str, str, str, int]] = (),
                          routes: Sequence[ForeignRoute] = ()) -> dict[str, dict[str, str]]:
    """On every EVM chain (``name -> (rpc_url, token_bridge, multisig_ism)``): accept ``domain`` (a Solana or
    Cosmos chain) as an origin checked by ``validators`` / ``threshold``, enroll ``bridge32`` (0x bytes32) as its
    token bridge, create the wrapped tokens of its native tokens (``(home_domain, home_token32, name, symbol,
    decimals)``), and enrol the TokenBridge routes: to ``domain`` for each of ``routes`` whose token the chain
    carries (scale from the token's decimals here and there, maximum from the foreign chain's), and between the
    EVM chains for the new wrapped tokens (scale 1). Returns ``{evm chain: {symbol: wrapped address}}``."""
    from web3 import HTTPProvider, Web3

    from adapters.evm import deploy
    from adapters.evm.contracts import load_artifact

    deployer = devnet_key(DEPLOYER)
    w3s = {name: Web3(HTTPProvider(rpc_url, request_kwargs={"timeout": 30})) for name,
           (rpc_url, _, _) in chains.items()}

    def local_domain(name: str) -> int:
        bridge = w3s[name].eth.contract(address=Web3.to_checksum_address(chains[name][1]),
                                        abi=load_artifact("TokenBridge").abi_list)
        return int(bridge.functions.localDomain().call())

    domains = {name: local_domain(name) for name in chains}

    def wire(name: str) -> tuple[str, dict[str, str]]:
        w3 = w3s[name]
        _, bridge, ism = chains[name]
        deploy.set_validators(w3, deployer, ism, [domain], list(validators), threshold)
        deploy.enroll_remote_bridges(w3, deployer, bridge, {domain: bridge32})
        created = {symbol: deploy.create_wrapped_token(w3, deployer, bridge, home_domain, home_token, token_name,
                                                       symbol, decimals)
                   for home_domain, home_token, token_name, symbol, decimals in wrapped}
        specs = [deploy.RouteSpec(domains[other], token) for token in created.values()
                 for other in chains if other != name]
        for route in routes:
            token = deploy.bridge_token_for(w3, bridge, route.home_domain, route.home_token)
            if token is None:
                continue
            scale = deploy.route_scale(deploy.token_decimals(w3, token), route.decimals)
            specs.append(deploy.RouteSpec(domain, token, scale, deploy.route_max(scale, route.max_units)))
        deploy.enroll_routes(w3, deployer, bridge, specs)
        return name, created

    with ThreadPoolExecutor(max(1, len(chains))) as pool:
        return dict(pool.map(wire, list(chains)))
