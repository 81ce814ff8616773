"""Solana's dispatch and delivery memos: the chain-neutral format of ``adapters.bridge_memo`` (SPL Memo
program, UTF-8); a token dispatch is an SPL ``Transfer`` into the bridge vault or a ``Burn`` of a wrapped mint in
the same transaction (``adapters.solana.dispatch``)."""

from adapters.bridge_memo import (
    DELIVERY_PREFIX,
    DISPATCH_PREFIX,
    GAS_PREFIX,
    TOKEN_BODY_LEN,
    DispatchMemo,
    GasMemo,
    MemoFormatError,
    TokenBody,
    decode_delivery_memo,
    decode_dispatch_memo,
    decode_gas_memo,
    encode_delivery_memo,
    encode_dispatch_memo,
    encode_gas_memo,
)

__all__ = [
    "DELIVERY_PREFIX", "DISPATCH_PREFIX", "GAS_PREFIX", "TOKEN_BODY_LEN", "DispatchMemo", "GasMemo", "MemoFormatError",
    "TokenBody", "decode_delivery_memo", "decode_dispatch_memo", "decode_gas_memo", "encode_delivery_memo",
    "encode_dispatch_memo", "encode_gas_memo",
]
