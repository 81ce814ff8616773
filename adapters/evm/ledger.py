"""EVM bridge ledger (the solvency audit, relayer/daemon/audit.py): what the TokenBridge holds of each token."""

from __future__ import annotations

from dataclasses import dataclass

from eth_utils import to_checksum_address

from adapters.evm import abi
from adapters.evm.chain import (
    EvmChain,
    evm_boundary,
)
from adapters.message import address_to_bytes32


@dataclass(frozen=True, slots=True)
class BridgeHolding:
    """What this chain's TokenBridge holds of one token identity (home domain, home token), for the solvency audit."""

    token: str  # the token's 0x address on this chain
    wrapped: bool  # True: the bridge's wrapped token, amount = its totalSupply; False: homed here, amount = locked
    amount: int  # smallest units; the bridge mints and burns message amounts unscaled, so these are home units
    decimals: int


class EvmBridgeLedger(EvmChain):
    """EVM bridge ledger (the solvency audit, relayer/daemon/audit.py): what the TokenBridge holds of each token."""

    @evm_boundary
    async def bridge_home_of(self, symbol: str) -> tuple[int, bytes]:
        """(home domain, home token as bytes32) of the configured token ``symbol``, as this chain's TokenBridge
        records it (``homeOf``): a wrapped token's home, or (this domain, the token's address) for any other."""
        token = self._token(symbol)
        (raw,) = await self._eth_calls([(self._bridge(), abi.encode_home_of(token))])
        domain, home = abi.decode_words(raw, 2)
        if domain == 0 and home == 0:
            return int(self._domain), address_to_bytes32(token)
        return domain, home.to_bytes(32, "big")

    @evm_boundary
    async def bridge_holding(self, home_domain: int, home_token: bytes) -> BridgeHolding | None:
        """The bridge's position in one token identity, read from the chain: the home token's balance held by
        the bridge when the token is homed here, else the totalSupply of the bridge's wrapped token
        (``wrappedToken(home)``); None when the bridge has no wrapped token for it."""
        bridge = self._bridge()
        if home_domain == int(self._domain):
            token = "0x" + home_token[12:].hex()
            balance, decimals = await self._eth_calls([(token, abi.encode_balance_of(bridge)), (token, abi.DECIMALS)])
            return BridgeHolding(to_checksum_address(token), False, abi.decode_words(balance, 1)[0],
                                 abi.decode_words(decimals, 1)[0])
        (raw,) = await self._eth_calls([(bridge, abi.encode_wrapped_token(home_domain, home_token))])
        address = abi.decode_words(raw, 1)[0]
        if address == 0:
            return None
        token = "0x" + address.to_bytes(20, "big").hex()
        supply, decimals = await self._eth_calls([(token, abi.TOTAL_SUPPLY), (token, abi.DECIMALS)])
        return BridgeHolding(to_checksum_address(token), True, abi.decode_words(supply, 1)[0],
                             abi.decode_words(decimals, 1)[0])
