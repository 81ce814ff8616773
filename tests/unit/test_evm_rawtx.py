"""The coincurve signer produces exactly eth_account's raw transaction and hash (devnet test key)."""

from __future__ import annotations

import pytest
from eth_account import Account

from adapters.evm.rawtx import RawTxSigner

DEVNET_TEST_KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"  # public anvil key #1


@pytest.mark.parametrize("nonce,value,data", [(0, 0, b""), (7, 10**18, b"\xa9\x05\x9c\xbb" + bytes(64)),
                                              (2**40, 1, bytes(range(200)))])
def test_raw_transaction_matches_eth_account(nonce: int, value: int, data: bytes) -> None:
    account = Account.from_key(DEVNET_TEST_KEY)
    to = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
    tx = {"type": 2, "chainId": 31337, "nonce": nonce, "to": to, "value": value, "data": data, "gas": 65_000,
          "maxFeePerGas": 3_000_000_000, "maxPriorityFeePerGas": 1_000_000_000}
    expected = account.sign_transaction(tx)
    signer = RawTxSigner(bytes(account.key), account.address, 31337)
    got = signer.sign(nonce=nonce, to=to, data=data, gas=65_000, max_fee=3_000_000_000, tip=1_000_000_000,
                      value=value)
    assert got.raw == bytes(expected.raw_transaction)
    assert got.tx_hash == "0x" + bytes(expected.hash).hex()
    assert DEVNET_TEST_KEY[2:] not in repr(signer)
