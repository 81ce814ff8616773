"""The bridge's accounts on the Cosmos devnet: the validators' M-of-N multisig vault, funded for deliveries.

The vault receives locks (dispatches) and pays deliveries. It holds the whole escrow of the wrapped token's
denom from genesis (``vault_address`` gives the address to start the chain with: ``start_cosmos_devnet(escrow=
(vault, amount))``; no other account holds that denom), so what circulates on Cosmos is exactly what was paid
out for locks on the home chain. ``setup_cosmos_bridge`` checks that escrow and funds the fee denom from
genesis account 0 (a PUBLIC DEVNET TEST KEY).
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


class EscrowMismatch(RuntimeError):
    """The chain's vault does not hold the escrow of the token denom it was meant to get at genesis."""


def compressed_pubkey(private_key_hex: str) -> bytes:
    return coincurve.PrivateKey(bytes.fromhex(private_key_hex.removeprefix("0x"))).public_key.format(compressed=True)


def vault_address(member_keys_hex: Sequence[str], threshold: int, prefix: str = "cosmos") -> str:
    """The bech32 address of the ``threshold``-of-members legacy amino multisig (the bridge's vault)."""
    members = [compressed_pubkey(k) for k in member_keys_hex]
    return bech32_address(multisig_address(multisig_pub_key(threshold, members)), prefix)


def setup_cosmos_bridge(rest_url: str, *, member_keys_hex: Sequence[str], threshold: int, escrow: int,
                        fee_funding: int, settings: GenesisSettings | None = None,
                        timeout_s: float = 30.0, operators: Sequence[str] = ()) -> CosmosBridge:
    """The vault of the members' keys: check it holds ``escrow`` of the token denom (given at genesis; it is
    never funded from a user account, none holds any) and fund it with ``fee_funding`` of the fee denom
    (skipped for what it already holds). ``operators`` (the router's operator accounts, bech32) get ``fee_funding``
    of the fee denom too, for their lanes' fees (they get the token denom only by bridging it in, as anyone)."""
    settings = settings or GenesisSettings()
    members = [compressed_pubkey(k) for k in member_keys_hex]
    vault = vault_address(member_keys_hex, threshold, settings.prefix)
    client = LedgerClient(NetworkConfig(chain_id=settings.chain_id, url=f"rest+{rest_url}",
                                        fee_minimum_gas_price=float(settings.min_gas_price) * 4,
                                        fee_denomination=settings.fee_denom, staking_denomination=settings.fee_denom),
                          query_interval_secs=0.5, query_timeout_secs=timeout_s)
    held = client.query_bank_balance(Address(vault), settings.token_denom)
    if held < escrow:
        raise EscrowMismatch(f"vault {vault} holds {held}{settings.token_denom}, not the escrow {escrow}: start the "
                             f"chain with escrow=({vault!r}, {escrow})")
    funder = LocalWallet(genesis_accounts(settings)[0].private_key, prefix=settings.prefix)
    for account in (vault, *operators):
        have = client.query_bank_balance(Address(account), settings.fee_denom)
        if have < fee_funding:
            client.send_tokens(Address(account), fee_funding - have, settings.fee_denom, funder).wait_to_complete(
                timeout=timeout_s, poll_period=0.25)
    return CosmosBridge(vault, [m.hex() for m in members], threshold)
