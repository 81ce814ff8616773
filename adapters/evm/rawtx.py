"""EIP-1559 (type 2) transactions signed with coincurve directly: ~5x less CPU per transaction than
``eth_account.sign_transaction`` (which validates and re-encodes every field through several layers), so one
daemon can sign thousands of router transfers a second. ``tests/unit/test_evm_rawtx.py`` holds it byte for byte
to eth_account's encoding and signature.

    payload = 0x02 || rlp([chainId, nonce, maxPriorityFeePerGas, maxFeePerGas, gas, to, value, data, accessList])
    sighash = keccak256(payload)
    raw     = 0x02 || rlp([... same nine fields ..., yParity, r, s])
    hash    = keccak256(raw)
"""

from __future__ import annotations

from dataclasses import dataclass

import coincurve
import rlp

from adapters.message import keccak256


@dataclass(frozen=True, slots=True)
class RawTx:
    """A signed transaction ready for ``eth_sendRawTransaction``."""

    raw: bytes
    tx_hash: str  # 0x-hex
    nonce: int


class RawTxSigner:
    """Signs type-2 transactions for one account. Holds the key inside a coincurve object only; ``repr`` shows the
    address, never the key."""

    def __init__(self, private_key: bytes, address: str, chain_id: int) -> None:
        self._key = coincurve.PrivateKey(private_key)
        self.address = address
        self.chain_id = chain_id

    def __repr__(self) -> str:
        return f"RawTxSigner(address={self.address!r}, chain_id={self.chain_id})"

    def sign(self, *, nonce: int, to: str, data: bytes, gas: int, max_fee: int, tip: int, value: int = 0) -> RawTx:
        fields = [self.chain_id, nonce, tip, max_fee, gas, bytes.fromhex(to.removeprefix("0x")), value, data, []]
        payload = b"\x02" + rlp.encode(fields)
        signature = self._key.sign_recoverable(keccak256(payload), hasher=None)  # r(32) s(32) v(1)
        r, s, y_parity = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:64], "big"), signature[64]
        raw = b"\x02" + rlp.encode([*fields, y_parity, r, s])
        return RawTx(raw, "0x" + keccak256(raw).hex(), nonce)
