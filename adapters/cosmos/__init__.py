"""Cosmos SDK chains (issue 6): ``CosmosAdapter`` (adapter), the dispatch / delivery memo format (memo),
the transactions it reads and builds (transactions), and its HTTP access and error mapping (client)."""

from adapters.cosmos.adapter import CosmosAdapter
from adapters.cosmos.memo import decode_dispatch_memo, encode_dispatch_memo
from adapters.cosmos.transactions import DispatchRules, ParsedDispatch, TokenRule

__all__ = ["CosmosAdapter", "DispatchRules", "ParsedDispatch", "TokenRule", "decode_dispatch_memo",
           "encode_dispatch_memo"]
