"""The adversarial suite's fixtures: one devnet with every chain family for the suite (package scope: torn down
when the suite ends, so the rest of the tests do not share the machine with it), the public "world" the attacker
process sees (no validator, relayer or operator key in it: checked), the attacker's own funded accounts, and a
daemon per test module.

Only one process holding the validator keys may run on a devnet at a time (two would each keep their own record
of what they co-signed): a module that needs another daemon config stops the module daemon first, or starts
its own with ``start_daemon`` and no module daemon.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from config.loader import load_settings
from tests.integration.harness import ROOT, DaemonProcess, DevnetClient, free_port_block, write_daemon_config

ATTACK_TIMEOUT_S = 300.0
ATTACKER_ETH_WEI = 100 * 10**18
ATTACKER_SOL_LAMPORTS = 10 * 10**9
ATTACKER_COSMOS_FEE_UNITS = 10**9
ATTACKER_TST = 1_000 * 10**18
COSMOS_DELIVERY_TIMEOUT_BLOCKS = 16  # 8 s of Cosmos blocks: what is co-signed expires within 16 s (default: 60 s)


@pytest.fixture(scope="package")
def bridge_devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Three anvils, the Cosmos chain and the Solana devnet, contracts and bridges wired (``relayer devnet up``)."""
    from devnets.devnet import Devnet

    net = Devnet(tmp_path_factory.mktemp("adversarial-devnet"), base_port=free_port_block(21),
                 api_port=free_port_block(1), families=("evm", "cosmos", "solana"),
                 cosmos_delivery_timeout_blocks=COSMOS_DELIVERY_TIMEOUT_BLOCKS)
    net.up()
    yield net
    net.down()


def secret_values(manifest: dict[str, Any], config_text: str) -> set[str]:
    """Every private key the devnet's manifest and daemon config hold (what the attacker must never see)."""
    found: set[str] = set()

    def walk(node: Any, key: str = "") -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, k)
        elif isinstance(node, list):
            for v in node:
                walk(v, key)
        elif isinstance(node, str) and ("private_key" in key or key.endswith("_seed")):
            found.add(node.lower().removeprefix("0x"))

    walk(manifest)
    for line in config_text.splitlines():
        if "private_key" in line:
            for part in line.split('"')[1::2]:
                if len(part.removeprefix("0x")) >= 32:
                    found.add(part.lower().removeprefix("0x"))
    return {s for s in found if len(s) >= 32}


def public_settings(config: Path) -> dict[str, Any]:
    """The daemon settings with every key removed (what any operator could publish)."""
    doc = load_settings(config, env={}).model_dump(mode="json", by_alias=True)
    doc["validator"] = {k: v for k, v in doc["validator"].items() if k not in ("keys", "cosign_keys")}
    doc["router"] = {k: v for k, v in doc["router"].items() if k not in ("operator_keys", "api_keys")}
    for chain in doc["chains"].values():
        chain.pop("signer", None)
    relayer = doc.get("relayer") or {}
    relayer.pop("identity_key", None)
    relayer.pop("gas_oracle", None)  # the oracle updater's key
    doc.pop("admin", None)  # the admin API's keys
    return doc


def public_chains(manifest: dict[str, Any]) -> dict[str, Any]:
    chains = json.loads(json.dumps(manifest["chains"]))
    for chain in chains.values():
        chain["accounts"] = [{"address": a["address"]} for a in chain.get("accounts", [])]
        chain.pop("relayer_signer_seed", None)
    return chains


class Attacker:
    """Runs attacks in the attacker's own process (``tests/adversarial/attacker.py``) and returns what each saw."""

    def __init__(self, world_path: Path, addresses: dict[str, str], keys: dict[str, str]) -> None:
        self.world_path = world_path
        self.addresses = addresses  # the attacker's own accounts, by chain name
        self.keys = keys            # its own keys by family (the tests may use them to check balances)

    @property
    def identity(self) -> str:
        """The relayer identity the attacker signs with (its own EVM key): allow-list it to model a malicious
        relayer."""
        from adapters.evm import devnet as evm_devnet

        return evm_devnet.address_of(self.keys["evm"]).lower()

    def allow_as_relayer(self, config_text: str) -> str:
        """A daemon config whose validators also serve the attacker as a relayer (``validator.allowed_relayers``):
        relayers are untrusted, so what a validator signs must not depend on which relayer asks."""
        import re

        edited, n = re.subn(r"^allowed_relayers = \[", f'allowed_relayers = ["{self.identity}", ', config_text,
                            count=1, flags=re.MULTILINE)
        assert n == 1, "the daemon config has no validator.allowed_relayers line"
        return edited

    def run(self, target: str, timeout_s: float = ATTACK_TIMEOUT_S, **kwargs: Any) -> dict[str, Any]:
        args = [sys.executable, "-m", "tests.adversarial.attacker", "--world", str(self.world_path), target]
        for name, value in kwargs.items():
            args += ["--arg", f"{name}={json.dumps(value)}"]
        env = {k: v for k, v in os.environ.items() if not k.startswith("RELAYER")}
        env["PYTHONPATH"] = str(ROOT)
        done = subprocess.run(args, capture_output=True, text=True, timeout=timeout_s, cwd=ROOT, env=env, check=False)
        if done.returncode != 0:
            raise AssertionError(f"attacker {target} exited {done.returncode}:\n{done.stderr[-4000:]}")
        return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _fund_attacker(net: Any, addresses: dict[str, str]) -> None:
    """Gas money on every chain and some TST on the L1, paid by the devnet's own funded accounts (test side)."""
    import asyncio

    from adapters.evm import devnet as evm_devnet

    manifest = net.manifest()
    for name, chain in manifest["chains"].items():
        if chain["family"] == "evm":
            evm_devnet.rpc_call(chain["rpc_url"], "anvil_setBalance", [addresses[name], hex(ATTACKER_ETH_WEI)])
        elif chain["family"] == "solana":
            evm_devnet.rpc_call(chain["rpc_url"], "requestAirdrop", [addresses[name], ATTACKER_SOL_LAMPORTS])

    async def tokens() -> None:
        client = DevnetClient(net)
        try:
            await client.adapters["l1"].transfer_token(client.key("l1"), "TST", addresses["l1"], ATTACKER_TST)  # type: ignore[attr-defined]
            if "cosmos" in client.adapters:
                fee = client.settings.chains["cosmos"].fee_denom  # type: ignore[union-attr]
                await client.adapters["cosmos"].transfer_token(client.key("cosmos"), fee, addresses["cosmos"],  # type: ignore[attr-defined]
                                                               ATTACKER_COSMOS_FEE_UNITS)
        finally:
            await client.close()

    asyncio.run(tokens())


def _attacker_accounts(manifest: dict[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    from adapters.evm import devnet as evm_devnet

    keys = {"evm": "0x" + secrets.token_hex(32), "cosmos": "0x" + secrets.token_hex(32),
            "solana": "0x" + secrets.token_hex(32)}
    addresses: dict[str, str] = {}
    for name, chain in manifest["chains"].items():
        if chain["family"] == "evm":
            addresses[name] = evm_devnet.address_of(keys["evm"])
        elif chain["family"] == "solana":
            from solders.keypair import Keypair

            addresses[name] = str(Keypair.from_seed(bytes.fromhex(keys["solana"][2:])).pubkey())
        elif chain["family"] == "cosmos":
            from cosmpy.crypto.keypairs import PrivateKey

            from adapters.cosmos.chain import address_of as _address_of

            addresses[name] = _address_of(PrivateKey(bytes.fromhex(keys["cosmos"][2:])), chain["bech32_prefix"])
    return keys, addresses


@pytest.fixture(scope="package")
def attacker(bridge_devnet: Any, tmp_path_factory: pytest.TempPathFactory) -> Attacker:
    """The attacker process's world: public data only (checked) and its own funded accounts."""
    manifest = bridge_devnet.manifest()
    keys, addresses = _attacker_accounts(manifest)
    world = {"api_url": manifest["api_url"], "chains": public_chains(manifest),
             "settings": public_settings(bridge_devnet.config_path), "validators": manifest["validators"],
             "attacker_keys": keys, "attacker_addresses": addresses}
    text = json.dumps(world)
    leaked = [s[:8] + "..." for s in secret_values(manifest, bridge_devnet.config_path.read_text())
              if s in text.lower()]
    assert not leaked, f"the attacker's world holds keys it must not: {leaked}"
    path = tmp_path_factory.mktemp("attacker") / "world.json"
    path.write_text(text)
    _fund_attacker(bridge_devnet, addresses)
    return Attacker(path, addresses, keys)


def start_daemon(net: Any, directory: Path, *, edit: Callable[[str], str] | None = None,
                 env: dict[str, str] | None = None, role: str = "all", instance: str = "adversarial") -> DaemonProcess:
    """``relayer run`` on the devnet's config served at the devnet's API URL (where the attacker aims), its own
    store in ``directory``; ``edit`` rewrites the config text first."""
    api_port = int(net.manifest()["api_url"].rsplit(":", 1)[1])
    path = write_daemon_config(net, directory, api_port=api_port)
    if edit is not None:
        path.write_text(edit(path.read_text()))
    return DaemonProcess(path, directory / "daemon.log", role=role, instance=instance, env=env).start()


def assert_audit_backed(net: Any) -> dict[str, Any]:
    """``relayer audit --json`` on the devnet (the real CLI in its own process, reading every chain): every chain
    was read and no bridged token is short (nothing outstanding that nothing locked backs). Every adversarial test
    ends with it; returns the balance sheet."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELAYER")}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run([sys.executable, "-m", "relayer.cli", "audit", "-c", str(net.config_path), "--json"],
                          capture_output=True, text=True, timeout=120, cwd=ROOT, env=env, check=False)
    lines = done.stdout.strip().splitlines()
    sheet = dict(json.loads(lines[-1])) if lines else {}
    assert done.returncode == 0 and sheet.get("shortfall") == 0 and not sheet.get("errors"), (
        f"relayer audit exited {done.returncode}: shortfall {sheet.get('shortfall')} in {sheet.get('tokens_short')}, "
        f"errors {sheet.get('errors')}\n{done.stderr[-2000:]}")
    return sheet


@pytest.fixture(scope="module")
def bridge_daemon(bridge_devnet: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    """The devnet's daemon (role all: validators, co-signer, relayer, routing API) for one test module."""
    daemon = start_daemon(bridge_devnet, tmp_path_factory.mktemp("daemon"))
    yield daemon
    daemon.stop()


@pytest.fixture(scope="module", autouse=True)
def audit_backed_after_module(bridge_devnet: Any) -> Iterator[None]:
    """Every adversarial module ends with ``relayer audit`` on the devnet: whatever the attacker tried, every bridged
    token is still backed (nothing outstanding that nothing locked backs)."""
    yield
    assert_audit_backed(bridge_devnet)
