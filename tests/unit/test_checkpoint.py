import pytest
from eth_account import Account
from eth_account.messages import encode_defunct

from adapters.base import Checkpoint
from adapters.checkpoint import (
    CheckpointSigner,
    SignatureError,
    checkpoint_digest,
    recover_signer,
    sorted_signatures,
)

# anvil's public devnet test keys (not secrets)
KEYS = [
    "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
]
CP = Checkpoint(1000, b"\x11" * 32, b"\x22" * 32, 41)


def test_signature_recovers_and_matches_eip191():
    signer = CheckpointSigner.from_hex(KEYS[0])
    sig = signer.sign(CP)
    assert recover_signer(CP, sig) == signer.address
    assert Account.recover_message(encode_defunct(primitive=checkpoint_digest(CP)),
                                   signature=sig).lower() == signer.address


def test_key_not_in_repr():
    signer = CheckpointSigner.from_hex(KEYS[0])
    assert KEYS[0] not in repr(signer) and signer.address in repr(signer)


def test_other_checkpoint_recovers_other_address():
    signer = CheckpointSigner.from_hex(KEYS[0])
    sig = signer.sign(CP)
    other = Checkpoint(1000, b"\x11" * 32, b"\x22" * 32, 42)
    assert recover_signer(other, sig) != signer.address


def test_malleable_and_malformed_signatures_rejected():
    sig = CheckpointSigner.from_hex(KEYS[0]).sign(CP)
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    high_s = sig[:32] + (n - int.from_bytes(sig[32:64], "big")).to_bytes(32, "big") + bytes([55 - sig[64]])
    with pytest.raises(SignatureError, match="upper half"):
        recover_signer(CP, high_s)
    with pytest.raises(SignatureError, match="65 bytes"):
        recover_signer(CP, sig[:64])
    with pytest.raises(SignatureError, match="v is"):
        recover_signer(CP, sig[:64] + b"\x05")


def test_sorted_signatures_orders_by_address_and_dedups():
    signers = [CheckpointSigner.from_hex(k) for k in KEYS]
    sigs = [(s.address, s.sign(CP)) for s in signers]
    ordered = sorted_signatures(sigs[::-1] + sigs)
    assert [a for a, _ in ordered] == sorted({s.address for s in signers}, key=lambda a: int(a, 16))
