"""Selectors, topics and calldata for the contracts the EVM adapter talks to, and revert-data decoding.

Selectors are computed once from the Solidity signatures, so the adapter needs no compiled artifact to
encode calls. Custom-error names come from a built-in table of the Mailbox / ISM / bridge errors, widened
with every ``error`` entry of an artifact's ABI when one is loaded (``ErrorTable.from_abi``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_abi.exceptions import DecodingError

from adapters.base import DeliveryBatch, SignedCheckpoint
from adapters.checkpoint import pack_signatures
from adapters.message import MessageFormatError, keccak256


def selector(signature: str) -> bytes:
    """The 4-byte function (or error) selector of a canonical signature such as ``root()``."""
    return keccak256(signature.encode())[:4]


def topic(signature: str) -> str:
    """The hex topic0 of an event signature."""
    return "0x" + keccak256(signature.encode()).hex()


# --- Mailbox
DISPATCH_TOPIC = topic("Dispatch(bytes32,uint32,bytes)")
PROCESS_TOPIC = topic("Process(bytes32,uint32)")
ROOT = selector("root()")
COUNT = selector("count()")
DELIVERED = selector("delivered(bytes32)")
DELIVERED_MANY = selector("deliveredMany(bytes32[])")
DISPATCH = selector("dispatch(uint32,bytes32,bytes)")
DISPATCH_BATCH = selector("dispatchBatch(uint32[],bytes32[],bytes[])")
PROCESS = selector("process(bytes,bytes)")
PROCESS_BATCH = selector("processBatch(bytes,bytes[],bytes32[])")

# --- TokenBridge and ERC-20
SENT_TRANSFER_REMOTE_TOPIC = topic("SentTransferRemote(bytes32,uint32,bytes32,uint256)")
TRANSFER_REMOTE = selector("transferRemote(address,uint32,bytes32,uint256)")
APPROVE = selector("approve(address,uint256)")
TRANSFER = selector("transfer(address,uint256)")
ALLOWANCE = selector("allowance(address,address)")
BALANCE_OF = selector("balanceOf(address)")
TOTAL_SUPPLY = selector("totalSupply()")
DECIMALS = selector("decimals()")
HOME_OF = selector("homeOf(address)")
WRAPPED_TOKEN = selector("wrappedToken(uint32,bytes32)")
ROUTES = selector("routes(uint32,address)")

_CHECKPOINT_TYPES = ("bytes32", "bytes32", "uint32", "bytes")
_ERROR_STRING = selector("Error(string)")
_PANIC = selector("Panic(uint256)")

# Errors our contracts declare; an artifact's ABI adds to (and overrides) these.
KNOWN_ERRORS = (
    "AlreadyDelivered(bytes32)",
    "VerificationFailed(bytes32)",
    "MixedOrigins(uint32,uint32)",
    "WrongDestination(uint32,uint32)",
    "InvalidVersion(uint8)",
    "MessageTooShort(uint256)",
    "BodyTooLong(uint256)",
    "IsmNotSet()",
    "TreeFull()",
    "LengthMismatch()",
    "EmptyBatch()",
    "NotOwner()",
    "ThresholdNotMet(uint256,uint256)",
    "InvalidSignature(uint256)",
    "InvalidSignatureLength(uint256)",
    "UnknownSigner(address)",
    "SignersNotSorted(uint256)",
    "InvalidProof(bytes32)",
    "ProofLengthMismatch()",
    "NoncesNotIncreasing(uint256)",
    "LeafNotInCheckpoint(bytes32,uint64,uint32)",
    "NoValidatorSet(uint32)",
    "InsufficientAllowance(address,uint256,uint256)",
    "InsufficientBalance(address,uint256,uint256)",
    "NoRemoteBridge(uint32)",
    "UnknownToken(uint32,bytes32)",
    "ZeroAmount()",
    "NoRoute(uint32,address)",
    "AmountNotRepresentable(uint32,address,uint256,uint256)",
    "AmountAboveRouteMax(uint32,address,uint256,uint256)",
    "InvalidRoute(uint128,uint128)",
)


def _address_bytes(address: str) -> bytes:
    raw = bytes.fromhex(address.removeprefix("0x"))
    if len(raw) != 20:
        raise MessageFormatError(f"expected a 20-byte address, got {len(raw)} bytes")
    return raw


def word(value: int) -> bytes:
    return value.to_bytes(32, "big")


def encode_checkpoint(signed: SignedCheckpoint) -> bytes:
    cp = signed.checkpoint
    return abi_encode(_CHECKPOINT_TYPES, (cp.origin_mailbox, cp.root, cp.index, pack_signatures(signed.signatures)))


def _padded(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 32)


def encode_process_batch(batch: DeliveryBatch) -> bytes:
    """Calldata of ``processBatch(bytes checkpoint, bytes[] messages, bytes32[] proof)``.

    Hand-written (the batch path is hot; eth_abi is several times slower on 200 messages), equal to
    ``PROCESS_BATCH + eth_abi.encode(("bytes", "bytes[]", "bytes32[]"), ...)``.
    """
    for h in batch.proof:
        if len(h) != 32:
            raise MessageFormatError(f"a multiproof hash is 32 bytes, got {len(h)}")
    checkpoint = encode_checkpoint(batch.checkpoint)
    n = len(batch.items)
    heads: list[bytes] = []
    tails: list[bytes] = []
    offset = 32 * n  # message offsets count from the start of the offsets, after the array length
    for item in batch.items:
        length = len(item.message)
        heads.append(offset.to_bytes(32, "big"))
        tails.append(length.to_bytes(32, "big"))
        tails.append(item.message)
        pad = -length % 32
        if pad:
            tails.append(b"\0" * pad)
        offset += 32 + length + pad
    messages_at = 96 + 32 + len(checkpoint) + (-len(checkpoint) % 32)
    proof_at = messages_at + 32 + offset
    return b"".join((
        PROCESS_BATCH, word(96), word(messages_at), word(proof_at),
        word(len(checkpoint)), _padded(checkpoint),
        word(n), *heads, *tails,
        word(len(batch.proof)), *batch.proof,
    ))


def encode_delivered_many(ids: Sequence[bytes]) -> bytes:
    return DELIVERED_MANY + abi_encode(("bytes32[]",), (list(ids),))


def decode_bool_array(data: bytes) -> list[bool]:
    """A ``bool[]`` return value (``deliveredMany``); ``MessageFormatError`` when the node returned something else."""
    try:
        return [bool(v) for v in abi_decode(("bool[]",), data)[0]]
    except DecodingError as exc:
        raise MessageFormatError(f"not an ABI-encoded bool[] ({len(data)} bytes): {exc}") from exc


def encode_dispatch_batch(destination: int, recipient: bytes, bodies: Sequence[bytes]) -> bytes:
    n = len(bodies)
    return DISPATCH_BATCH + abi_encode(("uint32[]", "bytes32[]", "bytes[]"),
                                       ([destination] * n, [recipient] * n, list(bodies)))


def encode_transfer_remote(token: str, destination: int, recipient: bytes, amount: int) -> bytes:
    return TRANSFER_REMOTE + abi_encode(("address", "uint32", "bytes32", "uint256"),
                                        (token, destination, recipient, amount))


def encode_approve(spender: str, amount: int) -> bytes:
    return APPROVE + b"\0" * 12 + _address_bytes(spender) + word(amount)


def encode_transfer(to: str, amount: int) -> bytes:
    return TRANSFER + b"\0" * 12 + _address_bytes(to) + word(amount)


def encode_allowance(owner: str, spender: str) -> bytes:
    return ALLOWANCE + b"\0" * 12 + _address_bytes(owner) + b"\0" * 12 + _address_bytes(spender)


def encode_balance_of(holder: str) -> bytes:
    return BALANCE_OF + b"\0" * 12 + _address_bytes(holder)


def encode_home_of(token: str) -> bytes:
    return HOME_OF + b"\0" * 12 + _address_bytes(token)


def encode_wrapped_token(home_domain: int, home_token: bytes) -> bytes:
    return WRAPPED_TOKEN + abi_encode(("uint32", "bytes32"), (home_domain, home_token))


def encode_routes(destination: int, token: str) -> bytes:
    return ROUTES + word(destination) + b"\0" * 12 + _address_bytes(token)


def decode_words(data: bytes, n: int) -> list[int]:
    """``n`` static 32-byte return values as integers; ``MessageFormatError`` when the node returned fewer bytes."""
    if len(data) < 32 * n:
        raise MessageFormatError(f"expected {n} ABI words, got {len(data)} bytes")
    return [int.from_bytes(data[32 * i : 32 * i + 32], "big") for i in range(n)]


def decode_single_bytes(data: bytes) -> bytes:
    """The one ``bytes`` argument of ABI-encoded data (a Dispatch log's non-indexed part), without eth_abi."""
    if len(data) < 64:
        raise MessageFormatError(f"ABI data of {len(data)} bytes cannot hold a bytes value")
    offset = int.from_bytes(data[0:32], "big")
    if offset + 32 > len(data):
        raise MessageFormatError(f"bytes offset {offset} is past the end of {len(data)} bytes of data")
    length = int.from_bytes(data[offset : offset + 32], "big")
    end = offset + 32 + length
    if end > len(data):
        raise MessageFormatError(f"bytes length {length} at offset {offset} runs past {len(data)} bytes of data")
    return data[offset + 32 : end]


def _format_arg(value: Any) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_format_arg(v) for v in value) + "]"
    return str(value)


class ErrorTable:
    """4-byte selector -> (name, argument types) of the custom errors we may meet in revert data."""

    def __init__(self, signatures: Iterable[str] = KNOWN_ERRORS) -> None:
        self._by_selector: dict[bytes, tuple[str, tuple[str, ...]]] = {}
        for sig in signatures:
            self.add(sig)

    def add(self, signature: str) -> None:
        name, _, rest = signature.partition("(")
        types = tuple(t for t in rest.rstrip(")").split(",") if t)
        self._by_selector[selector(signature)] = (name, types)

    @classmethod
    def from_abi(cls, abis: Iterable[Sequence[Mapping[str, Any]]]) -> ErrorTable:
        table = cls()
        for abi in abis:
            for entry in abi:
                if entry.get("type") == "error":
                    table.add(f"{entry['name']}({','.join(_canonical_type(i) for i in entry.get('inputs', []))})")
        return table

    def decode(self, data: bytes) -> str:
        """A readable reason for revert ``data``: ``InvalidProof(0x..)``, the ``Error(string)`` text, or
        ``Panic(0x11)``."""
        if not data:
            return "reverted without data"
        sel, args = data[:4], data[4:]
        try:
            if sel == _ERROR_STRING:
                return str(abi_decode(["string"], args)[0])
            if sel == _PANIC:
                return f"Panic({hex(abi_decode(['uint256'], args)[0])})"
            known = self._by_selector.get(sel)
            if known is not None:
                name, types = known
                values = abi_decode(list(types), args) if types else ()
                return f"{name}({','.join(_format_arg(v) for v in values)})"
        except Exception:  # noqa: BLE001 - eth_abi raises many decoding errors; still name what we can
            if sel in self._by_selector:
                return f"{self._by_selector[sel][0]}(<undecodable args 0x{args.hex()}>)"
        return f"unknown error 0x{data.hex()}"


def _canonical_type(param: Mapping[str, Any]) -> str:
    kind = str(param["type"])
    if kind.startswith("tuple"):
        return "(" + ",".join(_canonical_type(c) for c in param.get("components", [])) + ")" + kind[len("tuple"):]
    return kind
