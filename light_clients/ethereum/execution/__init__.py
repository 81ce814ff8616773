"""Ethereum execution-layer light client: strict RLP, Merkle-Patricia proofs, headers, receipts, state.

Independent of web3 and of any RLP/trie library: everything a verifier trusts is written here.
What is verified, and why:

* ``header``: a header's hash is keccak256 of its RLP, recomputed from the fields (an RPC cannot lie about a
  field without changing the hash); a run of headers links by ``parent_hash`` to a trusted hash.
* ``receipts``: a receipt (and so a log) is proven by an MPT proof under the header's ``receipts_root``.
* ``state``: an account and its storage slots are proven under the header's ``state_root`` (``eth_getProof``).
* ``blocks``: a block body (transactions, uncles, withdrawals) matches the roots its header commits to.
"""
