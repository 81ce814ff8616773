"""Deploy and wire our contracts on an EVM chain (devnets, tests, benchmarks).

Synchronous web3.py over HTTP, signing locally with eth_account and sending raw EIP-1559 transactions.
Independent transactions go out back to back with explicit nonces (contract addresses are known before
they are mined), then every receipt is awaited with a deadline, so a chain with a block time costs about
one block per step instead of one block per transaction. A reverted or failed transaction raises
``DeployError`` naming the contract and step (and the decoded custom error when the node gives one).
Private keys are only ever handed to ``Account.from_key``; no message here carries one.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, cast

import rlp
from eth_abi import encode as abi_encode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes
from web3 import Web3
from web3.exceptions import ContractLogicError, TransactionNotFound
from web3.types import TxParams

from adapters.evm.abi import ErrorTable
from adapters.evm.contracts import ARTIFACT_NAMES, load_artifact
from adapters.message import address_to_bytes32, keccak256
from config.errors import RelayerError

RECEIPT_TIMEOUT_S = 60.0
ROUTE_UNBOUNDED = 2**128 - 1  # TokenBridge.UNBOUNDED: a route whose destination holds any amount (EVM chains)
PRIORITY_FEE_WEI = 10**9
GAS_HEADROOM = 1.25


class DeployError(RelayerError):
    """A deployment or wiring transaction failed; the message names the contract and step."""


@dataclass(frozen=True)
class _Tx:
    label: str  # e.g. "deploy Mailbox", "Mailbox.setIsm"
    to: str | None
    data: bytes
    gas: int | None = None  # None: estimate against the current state


@cache
def _error_table() -> ErrorTable:
    return ErrorTable.from_abi(load_artifact(name).abi for name in ARTIFACT_NAMES)


def _revert_reason(exc: Exception) -> str:
    data = getattr(exc, "data", None)
    if isinstance(data, str) and data.startswith("0x"):
        try:
            return _error_table().decode(bytes.fromhex(data[2:]))
        except ValueError:
            pass
    return str(exc) or type(exc).__name__


def create_address(sender: str, nonce: int) -> str:
    """The address a CREATE from ``sender`` at ``nonce`` gets."""
    raw = keccak256(rlp.encode([bytes.fromhex(sender[2:]), nonce]))[12:]
    return Web3.to_checksum_address(raw)


def _account(key: str) -> LocalAccount:
    try:
        return Account.from_key(key)
    except (ValueError, TypeError):  # never echo the key
        raise DeployError("deployer key is not a valid secp256k1 private key") from None


def _constructor_data(name: str, args: Sequence[Any] = ()) -> bytes:
    artifact = load_artifact(name)
    ctor = next((e for e in artifact.abi if e.get("type") == "constructor"), None)
    types = [i["type"] for i in ctor["inputs"]] if ctor else []
    if len(types) != len(args):
        raise DeployError(f"{name} constructor takes {len(types)} arguments, got {len(args)}")
    return bytes.fromhex(artifact.bytecode[2:]) + (abi_encode(types, list(args)) if types else b"")


def _call_data(w3: Web3, name: str, fn: str, args: Sequence[Any]) -> bytes:
    contract = w3.eth.contract(abi=load_artifact(name).abi_list)
    return bytes.fromhex(contract.encode_abi(fn, list(args))[2:])


def _send_all(w3: Web3, account: LocalAccount, txs: Sequence[_Tx]) -> list[dict[str, Any]]:
    """Send ``txs`` back to back with consecutive nonces, then wait for every receipt; all must succeed."""
    if not txs:
        return []
    chain_id = w3.eth.chain_id
    base_fee = int(w3.eth.get_block("latest").get("baseFeePerGas", 0) or 0)
    max_fee = 2 * base_fee + PRIORITY_FEE_WEI
    nonce = w3.eth.get_transaction_count(account.address, "pending")
    hashes: list[tuple[_Tx, HexBytes]] = []
    for i, tx in enumerate(txs):
        fields: dict[str, Any] = {
            "chainId": chain_id,
            "nonce": nonce + i,
            "from": account.address,
            "value": 0,
            "data": tx.data,
            "maxFeePerGas": max_fee,
            "maxPriorityFeePerGas": PRIORITY_FEE_WEI,
            "type": 2,
        }
        if tx.to is not None:
            fields["to"] = tx.to
        gas = tx.gas
        if gas is None:
            try:
                # estimated against the latest state; earlier txs of this burst may not be mined yet, so
                # steps that depend on them pass an explicit gas limit instead
                estimate = w3.eth.estimate_gas(
                    cast(TxParams, {k: fields[k] for k in ("from", "to", "data", "value") if k in fields})
                )
            except ContractLogicError as exc:
                raise DeployError(f"{tx.label} would revert: {_revert_reason(exc)}") from exc
            gas = int(estimate * GAS_HEADROOM)
        fields["gas"] = gas
        signed = account.sign_transaction(fields)
        hashes.append((tx, HexBytes(w3.eth.send_raw_transaction(signed.raw_transaction))))
    return [_wait_receipt(w3, tx, h) for tx, h in hashes]


def _wait_receipt(w3: Web3, tx: _Tx, tx_hash: HexBytes) -> dict[str, Any]:
    deadline = time.monotonic() + RECEIPT_TIMEOUT_S
    delay = 0.02
    while True:
        try:
            receipt = dict(w3.eth.get_transaction_receipt(tx_hash))
            break
        except TransactionNotFound:
            if time.monotonic() > deadline:
                raise DeployError(
                    f"{tx.label}: no receipt for {tx_hash.to_0x_hex()} within {RECEIPT_TIMEOUT_S:.0f}s"
                ) from None
            time.sleep(delay)
            delay = min(delay * 1.5, 0.25)
    if receipt.get("status") != 1:
        raise DeployError(
            f"{tx.label} reverted in tx {tx_hash.to_0x_hex()} (block {receipt.get('blockNumber')})"
        )
    return receipt


def _deploy_tx(name: str, args: Sequence[Any] = ()) -> _Tx:
    return _Tx(f"deploy {name}", None, _constructor_data(name, args))


def deploy_core(w3: Web3, deployer_key: str, domain: int) -> dict[str, str]:
    """Mailbox, MultisigIsm (set as the mailbox's ISM), TokenBridge and TestRecipient; checksum addresses."""
    account = _account(deployer_key)
    nonce = w3.eth.get_transaction_count(account.address, "pending")
    mailbox = create_address(account.address, nonce)
    ism = create_address(account.address, nonce + 1)
    bridge = create_address(account.address, nonce + 3)
    recipient = create_address(account.address, nonce + 4)
    txs = [
        _deploy_tx("Mailbox", [domain]),
        _deploy_tx("MultisigIsm"),
        _Tx("Mailbox.setIsm", mailbox, _call_data(w3, "Mailbox", "setIsm", [ism]), gas=100_000),
        _deploy_tx("TokenBridge", [mailbox, domain]),
        _deploy_tx("TestRecipient", [mailbox]),
    ]
    receipts = _send_all(w3, account, txs)
    for (label, expected), receipt in zip(
        [
            ("Mailbox", mailbox),
            ("MultisigIsm", ism),
            ("", ""),
            ("TokenBridge", bridge),
            ("TestRecipient", recipient),
        ],
        receipts,
        strict=True,
    ):
        if label and receipt.get("contractAddress") != expected:
            raise DeployError(
                f"deploy {label}: landed at {receipt.get('contractAddress')}, expected {expected}"
            )
    return {"mailbox": mailbox, "multisig_ism": ism, "token_bridge": bridge, "test_recipient": recipient}


def deploy_gas_paymaster(w3: Web3, deployer_key: str, updater: str, beneficiary: str) -> dict[str, str]:
    """A ``GasOracle`` written by ``updater`` and the ``GasPaymaster`` quoting from it, paying ``beneficiary``."""
    account = _account(deployer_key)
    nonce = w3.eth.get_transaction_count(account.address, "pending")
    oracle = create_address(account.address, nonce)
    txs = [_deploy_tx("GasOracle", [Web3.to_checksum_address(updater)]),
           _deploy_tx("GasPaymaster", [oracle, Web3.to_checksum_address(beneficiary)])]
    oracle_receipt, paymaster_receipt = _send_all(w3, account, txs)
    if oracle_receipt.get("contractAddress") != oracle:
        raise DeployError(f"deploy GasOracle: landed at {oracle_receipt.get('contractAddress')}, expected {oracle}")
    return {"gas_oracle": oracle, "gas_paymaster": Web3.to_checksum_address(paymaster_receipt["contractAddress"])}


def deploy_output_oracle(w3: Web3, deployer_key: str, proposer: str, challenger: str,
                         finalization_period_s: int) -> str:
    """An ``OutputOracle`` (a rollup's output roots on this L1), posted to by ``proposer``, whose outputs
    ``challenger`` may delete within ``finalization_period_s`` seconds; its checksum address."""
    account = _account(deployer_key)
    (receipt,) = _send_all(w3, account, [_deploy_tx("OutputOracle", [Web3.to_checksum_address(proposer),
                                                                     Web3.to_checksum_address(challenger),
                                                                     finalization_period_s])])
    return str(receipt["contractAddress"])


def set_validators(
    w3: Web3, key: str, ism: str, origin_domains: list[int], validators: list[str], threshold: int
) -> None:
    """``MultisigIsm.setValidators(origin, validators, threshold)`` for every origin domain."""
    account = _account(key)
    checksummed = [Web3.to_checksum_address(v) for v in validators]
    txs = [
        _Tx(
            f"MultisigIsm.setValidators(origin={origin})",
            Web3.to_checksum_address(ism),
            _call_data(w3, "MultisigIsm", "setValidators", [origin, checksummed, threshold]),
        )
        for origin in origin_domains
    ]
    _send_all(w3, account, txs)


def enroll_remote_bridges(w3: Web3, key: str, bridge: str, remotes: dict[int, str]) -> None:
    """``TokenBridge.enrollRemote(domain, bridge as bytes32)`` for every remote."""
    account = _account(key)
    txs = [
        _Tx(
            f"TokenBridge.enrollRemote(domain={domain})",
            Web3.to_checksum_address(bridge),
            _call_data(w3, "TokenBridge", "enrollRemote", [domain, _bytes32(remote)]),
        )
        for domain, remote in sorted(remotes.items())
    ]
    _send_all(w3, account, txs)


@dataclass(frozen=True)
class RouteSpec:
    """One ``TokenBridge.enrollRoute``: ``token`` (on this chain) may go to ``destination`` in multiples of
    ``scale`` (home units per destination unit) up to ``max_amount`` home units."""

    destination: int
    token: str
    scale: int = 1
    max_amount: int = ROUTE_UNBOUNDED


def route_scale(home_decimals: int, destination_decimals: int) -> int:
    """Home units per destination unit; a destination with more decimals than home is not supported."""
    if destination_decimals > home_decimals:
        raise DeployError(f"a destination with {destination_decimals} decimals cannot carry a token of "
                          f"{home_decimals} home decimals (amounts travel in home units)")
    return 10 ** (home_decimals - destination_decimals)


def route_max(scale: int, destination_max_units: int | None) -> int:
    """The route's maximum in home units: the destination's own maximum times the scale (None: unbounded),
    capped at what the route can store."""
    if destination_max_units is None:
        return ROUTE_UNBOUNDED
    return min(destination_max_units * scale, ROUTE_UNBOUNDED)


def enroll_routes(w3: Web3, key: str, bridge: str, routes: Sequence[RouteSpec]) -> None:
    """``TokenBridge.enrollRoute(destination, token, scale, maxAmount)`` for every route (one burst of txs)."""
    account = _account(key)
    bridge_addr = Web3.to_checksum_address(bridge)
    txs = []
    for r in routes:
        if r.scale < 1 or not r.scale <= r.max_amount <= ROUTE_UNBOUNDED:
            raise DeployError(f"route to {r.destination} for {r.token}: scale {r.scale} and max {r.max_amount} "
                              f"must satisfy 1 <= scale <= max <= 2**128-1")
        data = _call_data(w3, "TokenBridge", "enrollRoute",
                          [r.destination, Web3.to_checksum_address(r.token), r.scale, r.max_amount])
        txs.append(_Tx(f"TokenBridge.enrollRoute(destination={r.destination}, token={r.token})", bridge_addr, data,
                       gas=120_000))
    _send_all(w3, account, txs)


def set_rate_limit(w3: Web3, key: str, bridge: str, domain: int, token: str, *, inbound: bool, capacity: int,
                   rate_per_s: int) -> None:
    """``TokenBridge.setRateLimit``: ``token`` to (or, ``inbound``, from) ``domain`` at most ``capacity`` at once,
    refilled at ``rate_per_s`` (home units); capacity 0 removes the limit."""
    data = _call_data(w3, "TokenBridge", "setRateLimit", [domain, Web3.to_checksum_address(token), inbound, capacity,
                                                          rate_per_s])
    direction = "inbound" if inbound else "outbound"
    _send_all(w3, _account(key), [_Tx(f"TokenBridge.setRateLimit({direction}, domain={domain})",
                                      Web3.to_checksum_address(bridge), data)])


def bridge_token_for(w3: Web3, bridge: str, home_domain: int, home_token: str | bytes) -> str | None:
    """The token on this chain that carries identity (``home_domain``, ``home_token``): the token itself when it
    is homed here, else the bridge's wrapped token; None when this chain has neither."""
    contract = w3.eth.contract(address=Web3.to_checksum_address(bridge), abi=load_artifact("TokenBridge").abi_list)
    home = _bytes32(home_token)
    if int(contract.functions.localDomain().call()) == home_domain:
        return Web3.to_checksum_address(home[12:])
    wrapped = contract.functions.wrappedToken(home_domain, home).call()
    return None if int(wrapped, 16) == 0 else Web3.to_checksum_address(wrapped)


def token_decimals(w3: Web3, token: str) -> int:
    contract = w3.eth.contract(address=Web3.to_checksum_address(token), abi=load_artifact("TestToken").abi_list)
    return int(contract.functions.decimals().call())


def deploy_test_token(w3: Web3, key: str, name: str, symbol: str, decimals: int, initial_supply: int, *,
                      artifact: str = "TestToken") -> str:
    """A devnet token (``TestToken``, or ``PoolToken``: one the minters it names may mint and burn)."""
    account = _account(key)
    (receipt,) = _send_all(w3, account, [_deploy_tx(artifact, [name, symbol, decimals, initial_supply])])
    return Web3.to_checksum_address(receipt["contractAddress"])


def deploy_liquidity_pool(w3: Web3, key: str, mailbox: str, domain: int, token: str, epoch_seconds: int,
                          liquidity: int) -> str:
    """A ``LiquidityPool`` of ``token`` (a ``PoolToken`` owned by ``key``'s account, which makes the pool a minter),
    seeded with ``liquidity`` from that account; its checksum address."""
    account = _account(key)
    nonce = w3.eth.get_transaction_count(account.address, "pending")
    pool = create_address(account.address, nonce)
    token_addr = Web3.to_checksum_address(token)
    txs = [_deploy_tx("LiquidityPool", [Web3.to_checksum_address(mailbox), domain, token_addr, epoch_seconds]),
           _Tx("PoolToken.setMinter", token_addr, _call_data(w3, "PoolToken", "setMinter", [pool, True])),
           _Tx("PoolToken.approve", token_addr, _call_data(w3, "PoolToken", "approve", [pool, liquidity])),
           _Tx("LiquidityPool.addLiquidity", pool, _call_data(w3, "LiquidityPool", "addLiquidity", [liquidity]),
               gas=200_000)]
    receipts = _send_all(w3, account, txs)
    if receipts[0].get("contractAddress") != pool:
        raise DeployError(f"deploy LiquidityPool: landed at {receipts[0].get('contractAddress')}, expected {pool}")
    return pool


def enroll_remote_pools(w3: Web3, key: str, pool: str, remotes: dict[int, str]) -> None:
    """``LiquidityPool.enrollRemotePool`` for each remote domain's pool (an address)."""
    account = _account(key)
    txs = [_Tx(f"LiquidityPool.enrollRemotePool({domain})", Web3.to_checksum_address(pool),
               _call_data(w3, "LiquidityPool", "enrollRemotePool", [domain, _bytes32(remote)]))
           for domain, remote in remotes.items()]
    _send_all(w3, account, txs)


def mint_test_token(w3: Web3, key: str, token: str, to: str, amount: int) -> None:
    account = _account(key)
    data = _call_data(w3, "TestToken", "mint", [Web3.to_checksum_address(to), amount])
    _send_all(w3, account, [_Tx(f"TestToken.mint(to={to})", Web3.to_checksum_address(token), data)])


def create_wrapped_token(
    w3: Web3,
    key: str,
    bridge: str,
    home_domain: int,
    home_token: str | bytes,
    name: str,
    symbol: str,
    decimals: int,
) -> str:
    """``TokenBridge.createWrapped``; ``home_token`` is an address or a bytes32 (hex or bytes). Returns the token."""
    account = _account(key)
    bridge_addr = Web3.to_checksum_address(bridge)
    home = _bytes32(home_token)
    data = _call_data(w3, "TokenBridge", "createWrapped", [home_domain, home, name, symbol, decimals])
    _send_all(w3, account, [_Tx(f"TokenBridge.createWrapped({symbol})", bridge_addr, data)])
    contract = w3.eth.contract(address=bridge_addr, abi=load_artifact("TokenBridge").abi_list)
    token = contract.functions.wrappedToken(home_domain, home).call()
    return Web3.to_checksum_address(token)


def _bytes32(value: str | bytes) -> bytes:
    if isinstance(value, bytes):
        raw = value
    else:
        try:
            raw = bytes.fromhex(value.removeprefix("0x"))
        except ValueError:
            raise DeployError(f"{value!r} is not a hex address or bytes32") from None
    if len(raw) not in (20, 32):
        raise DeployError(f"expected a 20-byte address or a bytes32, got {len(raw)} bytes")
    return address_to_bytes32(raw)
