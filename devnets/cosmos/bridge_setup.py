"""The bridge's accounts on the Cosmos devnet: the validators' M-of-N multisig vault, funded for deliveries.

The vault receives locks (dispatches) and pays deliveries; it holds an escrow of the wrapped token's denom
(deliveries of a token homed elsewhere are paid out of it, locks of it return to it) and the fee denom.
Funded from genesis account 0 (a PUBLIC DEVNET TEST KEY).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import coincurve
from cosmpy.aerial.client import LedgerClient, NetworkConfig
from cosmpy.aerial.wallet import LocalWallet
from cosmpy.crypto.address import Address

from devnets.cosmos.accounts import bech32_address
from devnets.cosmos.genesis import GenesisSettings, genesis_accounts
from devnets.cosmos.multisig import multisig_address, multisig_pub_key


@dataclass(frozen=True)
class CosmosBridge:
    vault: str                      # bech32 multisig address
    multisig_pubkeys: list[str]     # compressed secp256k1, hex, in the multisig's order
    threshold: int


def compressed_pubkey(private_key_hex: str) -> bytes:
    return coincurve.PrivateKey(bytes.fromhex(private_key_hex.removeprefix("0x"))).public_key.format(compressed=True)


def setup_cosmos_bridge(rest_url: str, *, member_keys_hex: Sequence[str], threshold: int, escrow: int,
                        fee_funding: int, settings: GenesisSettings | None = None,
                        timeout_s: float = 30.0) -> CosmosBridge:
    """Derive the vault from the members' keys and fund it with ``escrow`` of the token denom and
    ``fee_funding`` of the fee denom (skipped for what it already holds)."""
    settings = settings or GenesisSettings()
    members = [compressed_pubkey(k) for k in member_keys_hex]
    vault = bech32_address(multisig_address(multisig_pub_key(threshold, members)), settings.prefix)
    client = LedgerClient(NetworkConfig(chain_id=settings.chain_id, url=f"rest+{rest_url}",
                                        fee_minimum_gas_price=float(settings.min_gas_price) * 4,
                                        fee_denomination=settings.fee_denom, staking_denomination=settings.fee_denom),
                          query_interval_secs=0.5, query_timeout_secs=timeout_s)
    funder = LocalWallet(genesis_accounts(settings)[0].private_key, prefix=settings.prefix)
    for denom, amount in ((settings.token_denom, escrow), (settings.fee_denom, fee_funding)):
        have = client.query_bank_balance(Address(vault), denom)
        if have < amount:
            client.send_tokens(Address(vault), amount - have, denom, funder).wait_to_complete(
                timeout=timeout_s, poll_period=0.25)
    return CosmosBridge(vault, [m.hex() for m in members], threshold)
