"""Ethereum execution-layer light client: strict RLP, Merkle-Patricia proofs, headers, receipts, state.

Independent of web3 and of any RLP/trie library: everything a verifier trusts is written here.
What is verified, and why:

* ``header``: a header's hash is keccak256 of its RLP, recomputed from the fields (an RPC cannot lie about a
  field without changing the hash); a run of headers links by ``parent_hash`` to a trusted hash.
* ``receipts``: a receipt (and so a log) is proven by an MPT proof under the header's ``receipts_root``.
* ``state``: an account and its storage slots are proven under the header's ``state_root`` (``eth_getProof``).
* ``blocks``: a block body (transactions, uncles, withdrawals) matches the roots its header commits to.
"""

from light_clients.ethereum.execution.blocks import Block, decode_block, transactions_root, validate_block
from light_clients.ethereum.execution.errors import (
    HeaderChainError,
    HeaderError,
    InvalidBlock,
    InvalidBlockReason,
    LightClientError,
    LogMismatch,
    ProofError,
    RlpError,
    RpcDataError,
)
from light_clients.ethereum.execution.header import BlockHeader, header_from_rpc_checked, verify_header_chain
from light_clients.ethereum.execution.receipts import (
    Log,
    Receipt,
    decode_receipt,
    encode_receipt,
    receipt_proof,
    receipts_root,
    verify_log_inclusion,
    verify_receipt_proof,
)
from light_clients.ethereum.execution.state import (
    Account,
    AccountProof,
    StorageProof,
    verify_account_proof,
    verify_storage_proof,
)
from light_clients.ethereum.execution.trie import Trie, verify_proof

__all__ = [
    "Account", "AccountProof", "Block", "BlockHeader", "HeaderChainError", "HeaderError", "InvalidBlock",
    "InvalidBlockReason", "LightClientError", "Log", "LogMismatch", "ProofError", "Receipt", "RlpError",
    "RpcDataError", "StorageProof", "Trie", "decode_block", "decode_receipt", "encode_receipt",
    "header_from_rpc_checked", "receipt_proof", "receipts_root", "transactions_root", "validate_block",
    "verify_account_proof", "verify_header_chain", "verify_log_inclusion", "verify_proof", "verify_receipt_proof",
    "verify_storage_proof",
]
