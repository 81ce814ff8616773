"""Deploying a test's own contracts on an EVM devnet chain: from an artifact of this project (``Mailbox``,
``TestRecipient``, ... in ``adapters/evm/artifacts``), an artifact JSON file (``abi`` and ``bytecode``: this
project's, Hardhat's, or Foundry's ``{"object": ...}``), or a Solidity source compiled with solcjs.

solcjs: the project's pinned npm ``solc`` (``node_modules/.bin/solcjs`` in a source checkout, ``npm ci``), else
``solcjs`` on PATH (``npm i -g solc@0.8.30``). Imports resolve from the source's directory.

The deployment is an ``eth_sendTransaction`` from the account, impersonated on the anvil (no signing here: ``relayer/``
uses no chain SDK), its constructor arguments encoded by ``relayer.testing.abi_args``."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_utils import to_checksum_address

from adapters.evm.contracts import load_artifact
from adapters.evm.devnet import rpc_call
from devnets.devnet import PROJECT_ROOT
from relayer.testing.abi_args import encode_args
from relayer.testing.chains import XChainError

COMPILE_TIMEOUT_S = 120.0
RECEIPT_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Compiled:
    name: str
    abi: list[dict[str, Any]]
    bytecode: bytes  # creation code


def load_contract(artifact: str | Path, contract: str | None = None) -> Compiled:
    """``artifact``: a ``.sol`` file (``contract`` names one of its contracts when it holds several), a ``.json``
    artifact file, or the name of one of this project's artifacts."""
    path = Path(artifact)
    if path.suffix == ".sol":
        return compile_solidity(path, contract)
    if path.suffix == ".json":
        return _from_json(path)
    found = load_artifact(str(artifact))
    return Compiled(found.name, found.abi_list, bytes.fromhex(found.bytecode.removeprefix("0x")))


def _from_json(path: Path) -> Compiled:
    doc = json.loads(path.read_text())
    bytecode = doc.get("bytecode")
    if isinstance(bytecode, dict):  # Foundry: {"object": "0x..."}
        bytecode = bytecode.get("object")
    if not isinstance(bytecode, str) or not isinstance(doc.get("abi"), list):
        raise XChainError(f"{path} is not a contract artifact (needs abi and bytecode)")
    return Compiled(str(doc.get("contractName", path.stem)), doc["abi"], bytes.fromhex(bytecode.removeprefix("0x")))


def solcjs() -> str:
    local = PROJECT_ROOT / "node_modules" / ".bin" / "solcjs"
    found = str(local) if local.exists() else shutil.which("solcjs")
    if found is None:
        raise XChainError("deploying from Solidity source needs solcjs: `npm ci` in the project, or `npm i -g "
                          "solc@0.8.30` (or deploy an artifact JSON with abi and bytecode)")
    return found


def compile_solidity(source: Path, contract: str | None = None) -> Compiled:
    """Compile ``source`` (optimizer on, cancun) and pick ``contract`` (or the only contract with code in it)."""
    request = {"language": "Solidity", "sources": {source.name: {"content": source.read_text()}},
               "settings": {"optimizer": {"enabled": True, "runs": 200}, "evmVersion": "cancun",
                            "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object"]}}}}
    command = [solcjs(), "--standard-json", "--base-path", str(source.parent.resolve())]
    done = subprocess.run(command, input=json.dumps(request), capture_output=True, text=True,
                          timeout=COMPILE_TIMEOUT_S, check=False)
    if done.returncode != 0:
        raise XChainError(f"solcjs failed on {source}: {done.stderr.strip()[:2000]}")
    output = json.loads(done.stdout[done.stdout.index("{"):])
    errors = [e.get("formattedMessage", e.get("message")) for e in output.get("errors", [])
              if e.get("severity") == "error"]
    if errors:
        raise XChainError(f"{source} does not compile:\n" + "\n".join(errors))
    built = {name: c for name, c in output["contracts"][source.name].items() if c["evm"]["bytecode"]["object"]}
    return Compiled(*_pick(source, built, contract))


def _pick(source: Path, built: dict[str, Any], contract: str | None) -> tuple[str, list[dict[str, Any]], bytes]:
    if contract is None and len(built) == 1:
        contract = next(iter(built))
    if contract not in built:
        raise XChainError(f"name the contract to deploy from {source}: one of {', '.join(built) or 'none'}")
    return contract, built[contract]["abi"], bytes.fromhex(built[contract]["evm"]["bytecode"]["object"])


def constructor_data(compiled: Compiled, args: tuple[Any, ...]) -> bytes:
    ctor = next((e for e in compiled.abi if e.get("type") == "constructor"), None)
    types = [str(i["type"]) for i in ctor["inputs"]] if ctor else []
    if len(types) != len(args):
        raise XChainError(f"{compiled.name}'s constructor takes {len(types)} arguments, got {len(args)}")
    return compiled.bytecode + encode_args(types, args)


def deploy(rpc_url: str, sender: str, compiled: Compiled, args: tuple[Any, ...]) -> str:
    """Deploy ``compiled`` with ``args`` from ``sender`` (an address the anvil impersonates); its checksum address
    once mined (``XChainError`` if it reverted or was not mined within ``RECEIPT_TIMEOUT_S``)."""
    data = "0x" + constructor_data(compiled, args).hex()
    rpc_call(rpc_url, "anvil_impersonateAccount", [sender])
    try:
        tx = rpc_call(rpc_url, "eth_sendTransaction", [{"from": sender, "data": data}], timeout=30.0)
    finally:
        rpc_call(rpc_url, "anvil_stopImpersonatingAccount", [sender])
    receipt = _receipt(rpc_url, tx)
    if int(receipt["status"], 16) != 1 or not receipt.get("contractAddress"):
        raise XChainError(f"deploying {compiled.name}: transaction {tx} reverted")
    return to_checksum_address(receipt["contractAddress"])


def _receipt(rpc_url: str, tx: str) -> dict[str, Any]:
    deadline = time.monotonic() + RECEIPT_TIMEOUT_S
    while (receipt := rpc_call(rpc_url, "eth_getTransactionReceipt", [tx])) is None:
        if time.monotonic() > deadline:
            raise XChainError(f"transaction {tx} not mined within {RECEIPT_TIMEOUT_S:.0f} s")
        time.sleep(0.05)
    return dict(receipt)
