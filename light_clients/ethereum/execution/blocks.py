"""Block validation without the EVM: does a block's body match the roots and hashes its header commits to?

A block is ``rlp([header, transactions, uncles])``, plus ``withdrawals`` from Shanghai on. Checked here:

* the header decodes strictly and, if an expected hash is given, hashes to it;
* ``parent_hash`` is the given parent's hash;
* ``transactions_root`` is the MPT (key ``rlp(i)``) of the transactions: a legacy transaction is its RLP
  list, a typed one (EIP-2718) is its envelope bytes ``type || payload``;
* ``ommers_hash`` is ``keccak256(rlp(uncles))``, and there are no uncles after the Merge (difficulty 0);
* ``withdrawals_root`` is the MPT of ``rlp(withdrawal)``, present exactly when the header has the field.

Execution results (state root, receipts root, gas used) need the EVM and are not checked here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from light_clients.ethereum.execution import rlp
from light_clients.ethereum.execution.errors import HeaderError, InvalidBlock, InvalidBlockReason, RlpError
from light_clients.ethereum.execution.header import BlockHeader
from light_clients.ethereum.execution.keccak import keccak256
from light_clients.ethereum.execution.rlp import RlpItem
from light_clients.ethereum.execution.trie import ordered_trie_root

_MAX_TX_TYPE = 0x7F


@dataclass(frozen=True)
class Block:
    """A decoded block: header, transactions (consensus encodings), uncles, withdrawals (RLP each)."""

    header: BlockHeader
    transactions: list[bytes]
    uncles: list[BlockHeader]
    withdrawals: list[bytes] | None

    def hash(self) -> bytes:
        """The block hash (of its header)."""
        return self.header.hash()


def transactions_root(raw_transactions: Sequence[bytes]) -> bytes:
    """The ``transactions_root`` for these consensus encodings (``eth_getRawTransactionByHash`` bytes)."""
    return ordered_trie_root(raw_transactions)


def _transaction_encoding(item: RlpItem, index: int) -> bytes:
    if isinstance(item, list):
        return rlp.encode(item)
    if not item or item[0] > _MAX_TX_TYPE:
        raise InvalidBlock(InvalidBlockReason.MALFORMED, f"transaction {index} is neither a list nor a typed envelope")
    return item


def decode_block(data: bytes) -> Block:
    """Decode a block's RLP; ``InvalidBlock(MALFORMED)`` if it is not a well-formed block."""
    try:
        parts = rlp.as_list(rlp.decode(data), "block")
        if len(parts) not in (3, 4):
            raise InvalidBlock(InvalidBlockReason.MALFORMED, f"block has {len(parts)} parts, expected 3 or 4")
        header = BlockHeader.from_rlp_item(parts[0])
        transactions = [_transaction_encoding(tx, i)
                        for i, tx in enumerate(rlp.as_list(parts[1], "transactions"))]
        uncles = [BlockHeader.from_rlp_item(u) for u in rlp.as_list(parts[2], "uncles")]
        withdrawals = None
        if len(parts) == 4:
            withdrawals = [rlp.encode(rlp.as_list(w, "withdrawal")) for w in rlp.as_list(parts[3], "withdrawals")]
    except (RlpError, HeaderError) as exc:
        raise InvalidBlock(InvalidBlockReason.MALFORMED, str(exc)) from exc
    return Block(header, transactions, uncles, withdrawals)


def validate_block(block: Block, *, parent_hash: bytes | None = None, expected_hash: bytes | None = None) -> None:
    """Check the body against the header (see the module docstring); ``InvalidBlock(reason)`` if not."""
    header = block.header
    if expected_hash is not None and header.hash() != expected_hash:
        raise InvalidBlock(InvalidBlockReason.HEADER_HASH,
                           f"header hashes to 0x{header.hash().hex()}, expected 0x{expected_hash.hex()}")
    if parent_hash is not None and header.parent_hash != parent_hash:
        raise InvalidBlock(InvalidBlockReason.UNKNOWN_PARENT,
                           f"parent_hash 0x{header.parent_hash.hex()} is not 0x{parent_hash.hex()}")
    computed_root = transactions_root(block.transactions)
    if computed_root != header.transactions_root:
        raise InvalidBlock(InvalidBlockReason.TRANSACTIONS_ROOT,
                           f"transactions hash to 0x{computed_root.hex()}, header has "
                           f"0x{header.transactions_root.hex()}")
    if header.difficulty == 0 and block.uncles:
        raise InvalidBlock(InvalidBlockReason.UNCLES_AFTER_MERGE, f"{len(block.uncles)} uncles after the Merge")
    uncles_hash = keccak256(rlp.encode([u.fields() for u in block.uncles]))
    if uncles_hash != header.ommers_hash:
        raise InvalidBlock(InvalidBlockReason.UNCLES_HASH,
                           f"uncles hash to 0x{uncles_hash.hex()}, header has 0x{header.ommers_hash.hex()}")
    if (header.withdrawals_root is None) != (block.withdrawals is None):
        raise InvalidBlock(InvalidBlockReason.WITHDRAWALS_ROOT,
                           "withdrawals must be in the body exactly when the header has withdrawals_root")
    if header.withdrawals_root is not None and block.withdrawals is not None:
        withdrawals_root = ordered_trie_root(block.withdrawals)
        if withdrawals_root != header.withdrawals_root:
            raise InvalidBlock(InvalidBlockReason.WITHDRAWALS_ROOT,
                               f"withdrawals hash to 0x{withdrawals_root.hex()}, header has "
                               f"0x{header.withdrawals_root.hex()}")


def decode_blocks(data: bytes) -> list[Block]:
    """Decode concatenated block RLPs (as in a ``chain.rlp`` export)."""
    blocks: list[Block] = []
    offset = 0
    while offset < len(data):
        end = offset + _item_length(data, offset)
        blocks.append(decode_block(data[offset:end]))
        offset = end
    return blocks


def _item_length(data: bytes, offset: int) -> int:
    """Total length (prefix and payload) of the RLP list starting at ``offset``."""
    prefix = data[offset]
    if prefix < 0xC0:
        raise InvalidBlock(InvalidBlockReason.MALFORMED, f"expected a block list at offset {offset}")
    if prefix <= 0xF7:
        return 1 + prefix - 0xC0
    length_of_length = prefix - 0xF7
    length = int.from_bytes(data[offset + 1:offset + 1 + length_of_length], "big")
    return 1 + length_of_length + length


def validate_chain(blocks: list[Block], trusted_parent_hash: bytes) -> None:
    """Validate each block and that it links to the one before (the first to ``trusted_parent_hash``)."""
    parent_hash = trusted_parent_hash
    for block in blocks:
        validate_block(block, parent_hash=parent_hash)
        parent_hash = block.hash()
