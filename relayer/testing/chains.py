"""What a test sees of each devnet chain (``xchain.chains[name]``), read from the devnet manifest (``devnet.json``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

FAMILIES = ("evm", "cosmos", "solana")  # the devnet's order (devnets.devnet.Devnet)


class XChainError(Exception):
    """The plugin cannot do what was asked (unknown chain or token, a helper the chain's family lacks, a devnet or
    daemon that did not come up)."""


@dataclass(frozen=True)
class Account:
    """A funded devnet account. ``private_key``: a PUBLIC devnet test key (anvil's mnemonic, the Solana devnet's
    published seeds, the Cosmos genesis keys), in the format the chain's adapter takes: 0x hex (EVM, Cosmos) or
    base58 of the 64-byte keypair (Solana)."""

    address: str
    private_key: str


@dataclass(frozen=True)
class ChainInfo:
    """One devnet chain: ``contracts`` by name (EVM: mailbox, token_bridge, test_recipient, ...; Solana: bridge,
    multisig; Cosmos: vault), ``tokens`` by symbol (address, mint or denom)."""

    name: str
    family: str
    domain: int
    rpc_url: str
    accounts: list[Account] = field(default_factory=list)
    contracts: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_manifest(cls, chain: dict[str, Any]) -> ChainInfo:
        return cls(name=chain["name"], family=chain["family"], domain=int(chain["domain"]), rpc_url=chain["rpc_url"],
                   accounts=[Account(a["address"], a["private_key"]) for a in chain.get("accounts", [])],
                   contracts=_contracts(chain), tokens={s: t["address"] for s, t in chain.get("tokens", {}).items()})


def _contracts(chain: dict[str, Any]) -> dict[str, str]:
    if chain["family"] == "solana":
        return {"bridge": chain["bridge"], "multisig": chain["multisig"]}
    if chain["family"] == "cosmos":
        return {"vault": chain["vault"]}
    return dict(chain.get("contracts", {}))


def chains_of(manifest: dict[str, Any]) -> dict[str, ChainInfo]:
    return {name: ChainInfo.from_manifest(chain) for name, chain in manifest["chains"].items()}
