"""Rollup finality from L1 output roots (OP Stack semantics): what an L1 state root proves about an L2 block.

The chain of proof, each link checked here with ``light_clients.ethereum.execution`` and nothing an RPC says:

1. L1 header -> oracle account. A verified L1 header's ``state_root`` proves the oracle's account (``eth_getProof``)
   and so its ``storage_root``.
2. Storage root -> posted output. Three storage proofs under that root give ``outputs.length`` and the two words
   of ``outputs[index]`` (``verify_posted_output``). contracts/src/OutputOracle.sol keeps ``OutputProposal[]
   outputs`` alone in slot 0, so with ``base = keccak256(pad32(0))`` (as an integer, arithmetic mod 2**256):

   - slot 0: the count; an index at or above it is no output;
   - ``base + 2*i``: ``outputRoot`` (never 0 for a posted output);
   - ``base + 2*i + 1``: ``timestamp`` in the low 128 bits (L1 time of posting), ``l2BlockNumber`` in the high 128.
3. Output root -> preimage -> rollup block hash. Version 0 is
   ``keccak256(bytes32(0) | stateRoot | messagePasserStorageRoot | blockHash)`` (``verify_output_preimage``): the
   rollup header must be of the posted L2 block number, the L2ToL1MessagePasser's (``0x4200..0016``) storage root
   is proven under its ``state_root``, and its hash is recomputed from its fields. Only the block the proposer
   committed to recomputes the posted root, so its hash (and every field it hashes) is proven.
4. Rollup block hash -> headers below. ``link_down`` links consecutive rollup headers down from that hash by
   ``parent_hash``, so any lower block's ``receipts_root`` (and the receipts and logs it proves) is committed too.

Whether the output is final (its L1 timestamp plus the finalization period has passed at a finalized L1 block) is
the caller's rule: ``PostedOutput.timestamp`` is what it needs. Every refusal is an ``OutputRootRefused`` whose
``reason`` names the link that broke.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from adapters.evm.settlement import output_root_v0
from light_clients.ethereum.execution.errors import HeaderChainError, LightClientError
from light_clients.ethereum.execution.header import BlockHeader, verify_header_chain
from light_clients.ethereum.execution.keccak import keccak256
from light_clients.ethereum.execution.state import AccountProof, slot_key

OUTPUTS_SLOT = 0
OUTPUT_COUNT_SLOT = OUTPUTS_SLOT
_WORD = 1 << 256
_LOW_128 = (1 << 128) - 1
_OUTPUTS_BASE = int.from_bytes(keccak256(slot_key(OUTPUTS_SLOT)), "big")

REASON_ORACLE_PROOF = "oracle proof invalid"
REASON_NO_OUTPUT = "no such output"
REASON_MISMATCH = "output root mismatch"
REASON_HEADER = "rollup header mismatch"
REASON_LINK = "rollup headers not linked"
REASON_PASSER_PROOF = "message passer proof invalid"


class OutputRootRefused(LightClientError):
    """A link of the output-root proof failed; ``reason`` is one of the ``REASON_*`` constants."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason


@dataclass(frozen=True, slots=True)
class PostedOutput:
    """``outputs[index]`` of the oracle as proven under an L1 state root, and the count proven with it."""

    index: int
    output_root: bytes
    timestamp: int
    l2_block_number: int
    count: int


def output_slots(index: int) -> tuple[int, int]:
    """The storage slots of ``outputs[index]``: (outputRoot slot, timestamp|l2BlockNumber slot)."""
    if index < 0:
        raise ValueError(f"output index {index} is negative")
    root_slot = (_OUTPUTS_BASE + 2 * index) % _WORD
    return root_slot, (root_slot + 1) % _WORD


def count_slot() -> int:
    """The slot of ``outputs.length``."""
    return OUTPUT_COUNT_SLOT


def _parse(proof: Mapping[str, Any], address: bytes, reason: str) -> AccountProof:
    """An ``eth_getProof`` result for ``address``; a malformed one or one for another account is refused."""
    try:
        parsed = AccountProof.from_rpc(proof)
    except (LightClientError, KeyError, TypeError, ValueError) as exc:
        raise OutputRootRefused(f"malformed eth_getProof result: {exc!r}", reason) from exc
    if parsed.address != address:
        raise OutputRootRefused(f"proof is for account 0x{parsed.address.hex()}, not 0x{address.hex()}", reason)
    return parsed


def _proven_slots(parsed: AccountProof, state_root: bytes, slots: Sequence[int]) -> list[int]:
    """The values of exactly ``slots`` (in that order), each proven under the account proven at ``state_root``."""
    try:
        parsed.verify(state_root)
    except LightClientError as exc:
        raise OutputRootRefused(str(exc), REASON_ORACLE_PROOF) from exc
    values = {entry.key: entry.value for entry in parsed.storage_proofs}
    wanted = [slot_key(slot) for slot in slots]
    if len(parsed.storage_proofs) != len(wanted) or set(values) != set(wanted):
        got = ", ".join(f"0x{entry.key.hex()}" for entry in parsed.storage_proofs)
        raise OutputRootRefused(f"storage proofs are for slots [{got}], expected "
                                f"[{', '.join(f'0x{key.hex()}' for key in wanted)}]", REASON_ORACLE_PROOF)
    return [values[key] for key in wanted]


def verify_posted_output(l1_state_root: bytes, oracle: bytes, index: int, proof: Mapping[str, Any]) -> PostedOutput:
    """``outputs[index]`` of ``oracle`` proven by ``proof`` (``eth_getProof(oracle, [0, root slot, meta slot])``)
    under ``l1_state_root``; ``OutputRootRefused`` if a proof fails or there is no such output."""
    if index < 0:
        raise OutputRootRefused(f"output index {index} is negative", REASON_NO_OUTPUT)
    parsed = _parse(proof, oracle, REASON_ORACLE_PROOF)
    count, root_word, meta = _proven_slots(parsed, l1_state_root, [count_slot(), *output_slots(index)])
    if index >= count:
        raise OutputRootRefused(f"output {index} not posted: the oracle holds {count} outputs", REASON_NO_OUTPUT)
    if root_word == 0:
        raise OutputRootRefused(f"output {index} has an empty root", REASON_NO_OUTPUT)
    return PostedOutput(index=index, output_root=root_word.to_bytes(32, "big"), timestamp=meta & _LOW_128,
                        l2_block_number=meta >> 128, count=count)


def verify_output_preimage(posted: PostedOutput, rollup_header: BlockHeader, message_passer: bytes,
                           passer_proof: Mapping[str, Any]) -> None:
    """Check that ``rollup_header`` and the message passer's storage root (``passer_proof``:
    ``eth_getProof(message_passer, [], that block)``) hash to ``posted.output_root``."""
    if rollup_header.number != posted.l2_block_number:
        raise OutputRootRefused(f"header is of block {rollup_header.number}, output {posted.index} is of block "
                                f"{posted.l2_block_number}", REASON_HEADER)
    parsed = _parse(passer_proof, message_passer, REASON_PASSER_PROOF)
    try:
        parsed.verify(rollup_header.state_root)
    except LightClientError as exc:
        raise OutputRootRefused(str(exc), REASON_PASSER_PROOF) from exc
    computed = output_root_v0(rollup_header.state_root, parsed.account.storage_root, rollup_header.hash())
    if computed != posted.output_root:
        raise OutputRootRefused(f"block {rollup_header.number} gives output root 0x{computed.hex()}, output "
                                f"{posted.index} posts 0x{posted.output_root.hex()}", REASON_MISMATCH)


def link_down(headers: Sequence[BlockHeader], top_hash: bytes) -> None:
    """Check that ``headers`` (ascending, consecutive) end at the block hashing to ``top_hash`` and that each is
    the parent of the next."""
    if not headers:
        raise OutputRootRefused("no rollup headers to link", REASON_LINK)
    top = headers[-1]
    if top.hash() != top_hash:
        raise OutputRootRefused(f"header {top.number}: hash 0x{top.hash().hex()}, expected 0x{top_hash.hex()}",
                                REASON_LINK)
    try:
        verify_header_chain(headers[0], headers[1:])
    except HeaderChainError as exc:
        raise OutputRootRefused(str(exc), REASON_LINK) from exc
