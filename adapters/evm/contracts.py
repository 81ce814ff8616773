"""Compiled contract artifacts (``adapters/evm/artifacts/<Name>.json``, written by scripts/compile-contracts.mjs).

The artifacts are committed; ``node scripts/compile-contracts.mjs --check`` proves they match contracts/src.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

ARTIFACT_NAMES = ("Mailbox", "MultisigIsm", "TokenBridge", "WrappedToken", "TestToken", "TestRecipient", "GasOracle",
                  "GasPaymaster", "OutputOracle", "PoolToken", "LiquidityPool")


class ArtifactError(LookupError):
    """An artifact that is missing or malformed."""


@dataclass(frozen=True)
class ContractArtifact:
    name: str
    abi: tuple[dict[str, Any], ...]
    bytecode: str  # 0x-prefixed creation code

    @property
    def abi_list(self) -> list[dict[str, Any]]:
        """The ABI as the plain list web3 expects."""
        return list(self.abi)


@cache
def load_artifact(name: str) -> ContractArtifact:
    """The artifact of contract ``name`` (cached; the ABI entries must not be mutated)."""
    try:
        text = resources.files("adapters.evm").joinpath("artifacts", f"{name}.json").read_text("utf-8")
    except FileNotFoundError:
        raise ArtifactError(
            f"no artifact for contract {name!r} (known: {', '.join(ARTIFACT_NAMES)}); "
            "run `node scripts/compile-contracts.mjs`"
        ) from None
    try:
        doc = json.loads(text)
        abi, bytecode = doc["abi"], doc["bytecode"]
    except (ValueError, KeyError) as exc:
        raise ArtifactError(f"artifact {name}.json is malformed: {exc}") from exc
    if doc.get("contractName") != name or not isinstance(bytecode, str) or not bytecode.startswith("0x"):
        raise ArtifactError(f"artifact {name}.json does not hold contract {name} with 0x bytecode")
    return ContractArtifact(name=name, abi=tuple(abi), bytecode=bytecode)
