"""Accounts, transactions and errors rendered in the JSON shapes of a real Solana RPC node."""

from __future__ import annotations

import base64
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from solders.account import Account
from solders.message import MessageV0
from solders.pubkey import Pubkey
from solders.token.state import Mint, Multisig, TokenAccount, TokenAccountState
from solders.transaction import VersionedTransaction

from devnets.solana.base58 import b58decode, b58encode

SYSTEM_PROGRAM_ID = Pubkey.from_string("11111111111111111111111111111111")
TOKEN_PROGRAM_ID = Pubkey.from_string("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA")
ASSOCIATED_TOKEN_PROGRAM_ID = Pubkey.from_string("ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL")
MEMO_PROGRAM_IDS = frozenset(
    {
        Pubkey.from_string("MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr"),
        Pubkey.from_string("Memo1UhkJRfHyvLMcVucJwxXeuD728EqVDDwQDxFMNo"),
    }
)
TOKEN_ACCOUNT_LEN, MINT_LEN, MULTISIG_LEN = 165, 82, 355
U64_MAX = 2**64 - 1

MintDecimals = Callable[[Pubkey], int | None]
"""Looks up a mint's decimals (``None`` when the mint is unknown)."""


@dataclass(frozen=True)
class TokenBalance:
    """A token account's mint, owner and amount, as in ``preTokenBalances``/``postTokenBalances``."""

    mint: Pubkey
    owner: Pubkey
    amount: int
    decimals: int


def ui_token_amount(amount: int, decimals: int) -> dict[str, Any]:
    text = str(amount)
    if decimals:
        text = text.rjust(decimals + 1, "0")
        text = f"{text[:-decimals]}.{text[-decimals:]}".rstrip("0").rstrip(".")
    return {
        "amount": str(amount),
        "decimals": decimals,
        "uiAmount": amount / 10**decimals,
        "uiAmountString": text,
    }


def token_balance(account: Account | None, mint_decimals: MintDecimals) -> TokenBalance | None:
    if account is None or account.owner != TOKEN_PROGRAM_ID or len(account.data) != TOKEN_ACCOUNT_LEN:
        return None
    state = TokenAccount.from_bytes(bytes(account.data))
    if state.state == TokenAccountState.Uninitialized:
        return None
    return TokenBalance(state.mint, state.owner, state.amount, mint_decimals(state.mint) or 0)


def parse_token_program_account(account: Account, mint_decimals: MintDecimals) -> dict[str, Any] | None:
    """``data.parsed`` of an SPL Token account, mint or multisig, or ``None`` if it is none of those."""
    data = bytes(account.data)
    if account.owner != TOKEN_PROGRAM_ID:
        return None
    if len(data) == TOKEN_ACCOUNT_LEN:
        acct = TokenAccount.from_bytes(data)
        if acct.state == TokenAccountState.Uninitialized:
            return None
        decimals = mint_decimals(acct.mint) or 0
        info: dict[str, Any] = {
            "isNative": acct.is_native is not None,
            "mint": str(acct.mint),
            "owner": str(acct.owner),
            "state": "frozen" if acct.state == TokenAccountState.Frozen else "initialized",
            "tokenAmount": ui_token_amount(acct.amount, decimals),
        }
        if acct.delegate is not None:
            info["delegate"] = str(acct.delegate)
            info["delegatedAmount"] = ui_token_amount(acct.delegated_amount, decimals)
        if acct.close_authority is not None:
            info["closeAuthority"] = str(acct.close_authority)
        if acct.is_native is not None:
            info["rentExemptReserve"] = ui_token_amount(acct.is_native, decimals)
        return {"info": info, "type": "account"}
    if len(data) == MINT_LEN:
        mint = Mint.from_bytes(data)
        if not mint.is_initialized:
            return None
        return {
            "info": {
                "decimals": mint.decimals,
                "freezeAuthority": None if mint.freeze_authority is None else str(mint.freeze_authority),
                "isInitialized": True,
                "mintAuthority": None if mint.mint_authority is None else str(mint.mint_authority),
                "supply": str(mint.supply),
            },
            "type": "mint",
        }
    if len(data) == MULTISIG_LEN:
        multisig = Multisig.from_bytes(data)
        if not multisig.is_initialized:
            return None
        return {
            "info": {
                "isInitialized": True,
                "numRequiredSigners": multisig.m,
                "numValidSigners": multisig.n,
                "signers": [str(s) for s in multisig.signers[: multisig.n]],
            },
            "type": "multisig",
        }
    return None


def encode_account(account: Account, encoding: str, mint_decimals: MintDecimals) -> dict[str, Any]:
    """The ``value`` of ``getAccountInfo`` for an existing account (``base64``, ``base58`` or ``jsonParsed``)."""
    data = bytes(account.data)
    encoded: Any
    parsed = parse_token_program_account(account, mint_decimals) if encoding == "jsonParsed" else None
    if parsed is not None:
        encoded = {"parsed": parsed, "program": "spl-token", "space": len(data)}
    elif encoding == "base58":
        encoded = [b58encode(data), "base58"]
    elif encoding == "base64+zstd":
        raise ValueError("base64+zstd encoding is not supported by this devnet")
    else:
        encoded = [base64.b64encode(data).decode(), "base64"]
    return {
        "data": encoded,
        "executable": account.executable,
        "lamports": account.lamports,
        "owner": str(account.owner),
        "rentEpoch": U64_MAX,
        "space": len(data),
    }


def memo_texts(tx: VersionedTransaction) -> list[str]:
    """The UTF-8 memos of the transaction's top-level Memo (v1 or v2) instructions."""
    keys = tx.message.account_keys
    texts = []
    for ix in tx.message.instructions:
        if keys[ix.program_id_index] in MEMO_PROGRAM_IDS:
            texts.append(bytes(ix.data).decode("utf-8", errors="replace"))
    return texts


def memo_field(texts: list[str]) -> str | None:
    """``getSignaturesForAddress``'s ``memo``: ``"[len] text"`` per memo, joined by ``"; "``."""
    if not texts:
        return None
    return "; ".join(f"[{len(t.encode())}] {t}" for t in texts)


def is_signer(tx: VersionedTransaction, index: int) -> bool:
    return index < tx.message.header.num_required_signatures


def is_writable(tx: VersionedTransaction, index: int) -> bool:
    header = tx.message.header
    nsig = header.num_required_signatures
    if index < nsig:
        return index < nsig - header.num_readonly_signed_accounts
    return index < len(tx.message.account_keys) - header.num_readonly_unsigned_accounts


def _compiled_instruction(program_id_index: int, accounts: bytes, data: bytes) -> dict[str, Any]:
    return {
        "accounts": list(accounts),
        "data": b58encode(data),
        "programIdIndex": program_id_index,
        "stackHeight": None,
    }


def return_data_json(meta: Any) -> dict[str, Any] | None:
    """``returnData`` of a LiteSVM ``TransactionMetadata`` (``None`` when no program set any)."""
    returned = meta.return_data()
    data = bytes(returned.data)
    if not data:
        return None
    return {"data": [base64.b64encode(data).decode(), "base64"], "programId": str(returned.program_id)}


def compiled_inner_instructions(inner: list[list[Any]]) -> list[dict[str, Any]]:
    """``meta.innerInstructions`` from LiteSVM's per-instruction lists of ``InnerInstruction``."""
    out = []
    for index, group in enumerate(inner):
        if group:
            items = []
            for item in group:
                ci = item.instruction()
                entry = _compiled_instruction(ci.program_id_index, bytes(ci.accounts), bytes(ci.data))
                entry["stackHeight"] = item.stack_height()
                items.append(entry)
            out.append({"index": index, "instructions": items})
    return out


def _parsed_instruction(program: Pubkey, accounts: list[Pubkey], data: bytes) -> dict[str, Any] | None:
    if program in MEMO_PROGRAM_IDS:
        return {"parsed": data.decode("utf-8", errors="replace"), "program": "spl-memo"}
    if (
        program == SYSTEM_PROGRAM_ID
        and len(data) == 12
        and data[:4] == struct.pack("<I", 2)
        and len(accounts) >= 2
    ):
        (lamports,) = struct.unpack("<Q", data[4:12])
        info = {"destination": str(accounts[1]), "lamports": lamports, "source": str(accounts[0])}
        return {"parsed": {"info": info, "type": "transfer"}, "program": "system"}
    if program == TOKEN_PROGRAM_ID and data:
        return _parsed_token_instruction(accounts, data)
    return None


def _parsed_token_instruction(accounts: list[Pubkey], data: bytes) -> dict[str, Any] | None:
    tag = data[0]
    if tag in (3, 7) and len(data) >= 9 and len(accounts) >= 3:
        (amount,) = struct.unpack("<Q", data[1:9])
        first, second, authority = (str(a) for a in accounts[:3])
        if tag == 3:
            info: dict[str, Any] = {"amount": str(amount), "destination": second, "source": first}
            kind = "transfer"
        else:
            info = {"account": second, "amount": str(amount), "mint": first}
            kind = "mintTo"
        info["multisigAuthority" if len(accounts) > 3 else "authority"] = authority
        if len(accounts) > 3:
            info["signers"] = [str(a) for a in accounts[3:]]
        return {"parsed": {"info": info, "type": kind}, "program": "spl-token"}
    if tag == 12 and len(data) >= 10 and len(accounts) >= 4:
        (amount,) = struct.unpack("<Q", data[1:9])
        decimals = data[9]
        source, mint, destination, authority = (str(a) for a in accounts[:4])
        info = {
            "destination": destination,
            "mint": mint,
            "source": source,
            "tokenAmount": ui_token_amount(amount, decimals),
        }
        info["multisigAuthority" if len(accounts) > 4 else "authority"] = authority
        if len(accounts) > 4:
            info["signers"] = [str(a) for a in accounts[4:]]
        return {"parsed": {"info": info, "type": "transferChecked"}, "program": "spl-token"}
    return None


def _ui_instruction(
    keys: list[Pubkey], program_id_index: int, accounts: bytes, data: bytes, parsed: bool, stack: int | None
) -> dict[str, Any]:
    if not parsed:
        entry = _compiled_instruction(program_id_index, accounts, data)
        entry["stackHeight"] = stack
        return entry
    program = keys[program_id_index]
    account_keys = [keys[i] for i in accounts]
    decoded = _parsed_instruction(program, account_keys, data)
    if decoded is None:
        decoded = {"accounts": [str(a) for a in account_keys], "data": b58encode(data)}
    decoded["programId"] = str(program)
    decoded["stackHeight"] = stack
    return decoded


def encode_transaction(tx: VersionedTransaction, encoding: str) -> Any:
    """``getTransaction``'s ``transaction`` in ``json``, ``jsonParsed``, ``base64`` or ``base58``."""
    if encoding == "base64":
        return [base64.b64encode(bytes(tx)).decode(), "base64"]
    if encoding == "base58":
        return [b58encode(bytes(tx)), "base58"]
    parsed = encoding == "jsonParsed"
    msg = tx.message
    keys = list(msg.account_keys)
    message: dict[str, Any] = {}
    if parsed:
        message["accountKeys"] = [
            {
                "pubkey": str(k),
                "signer": is_signer(tx, i),
                "source": "transaction",
                "writable": is_writable(tx, i),
            }
            for i, k in enumerate(keys)
        ]
    else:
        message["accountKeys"] = [str(k) for k in keys]
        header = msg.header
        message["header"] = {
            "numReadonlySignedAccounts": header.num_readonly_signed_accounts,
            "numReadonlyUnsignedAccounts": header.num_readonly_unsigned_accounts,
            "numRequiredSignatures": header.num_required_signatures,
        }
    message["instructions"] = [
        _ui_instruction(keys, ix.program_id_index, bytes(ix.accounts), bytes(ix.data), parsed, None)
        for ix in msg.instructions
    ]
    message["recentBlockhash"] = str(msg.recent_blockhash)
    if isinstance(msg, MessageV0):
        message["addressTableLookups"] = []
    return {"message": message, "signatures": [str(s) for s in tx.signatures]}


def encode_meta(meta: dict[str, Any], tx: VersionedTransaction, encoding: str) -> dict[str, Any]:
    """The stored ``meta`` (kept in ``json`` shape) adapted to ``encoding``."""
    if encoding != "jsonParsed":
        return meta
    keys = list(tx.message.account_keys)
    out = {k: v for k, v in meta.items() if k != "loadedAddresses"}
    out["innerInstructions"] = [
        {
            "index": group["index"],
            "instructions": [
                _ui_instruction(
                    keys,
                    ix["programIdIndex"],
                    bytes(ix["accounts"]),
                    b58decode(ix["data"]),
                    True,
                    ix.get("stackHeight"),
                )
                for ix in group["instructions"]
            ],
        }
        for group in meta.get("innerInstructions", [])
    ]
    return out


def transaction_version(tx: VersionedTransaction) -> Any:
    return 0 if isinstance(tx.message, MessageV0) else "legacy"
