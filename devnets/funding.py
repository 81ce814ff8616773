"""How to give an address its chain's coin on the devnet: the node's own test call where it has one (anvil's
``anvil_setBalance``, the Solana devnet's faucet ``requestAirdrop``); the Cosmos devnet has none (a bank send from
another of its funded accounts does it).

This is the devnet's knowledge, not the chain's: a real EVM node or Solana cluster serves neither call, so no adapter
offers it. The request goes to the node the devnet's manifest names (``chains.<name>.rpc_url``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

ANVIL_GIFT_WEI = 10**18  # anvil_setBalance sets the balance to this (1 ETH)
AIRDROP_LAMPORTS = 10**9  # requestAirdrop adds this (1 SOL)


@dataclass(frozen=True, slots=True)
class FundingCall:
    """One JSON-RPC request to a devnet node that gives an address ``units`` (smallest native units) of the coin."""

    rpc_url: str
    method: str
    params: tuple[Any, ...]
    units: int

    def request(self) -> dict[str, Any]:
        return {"jsonrpc": "2.0", "id": 1, "method": self.method, "params": list(self.params)}


def funding_call(chain: Mapping[str, Any], address: str) -> FundingCall | None:
    """The call that funds ``address`` on the devnet chain ``chain`` (its entry in the devnet manifest); None where
    the devnet's node has none (Cosmos), or the entry does not say which node it is."""
    family, url = chain.get("family"), chain.get("rpc_url")
    if not isinstance(url, str):
        return None
    if family == "evm":
        return FundingCall(url, "anvil_setBalance", (address, hex(ANVIL_GIFT_WEI)), ANVIL_GIFT_WEI)
    if family == "solana":
        return FundingCall(url, "requestAirdrop", (address, AIRDROP_LAMPORTS), AIRDROP_LAMPORTS)
    return None
