"""The Solana JSON-RPC methods, over a ``SolanaLedger``, with a real node's request and answer shapes."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import structlog
from solders.account import Account
from solders.message import Message, MessageV0
from solders.pubkey import Pubkey
from solders.token.state import Mint
from solders.transaction import VersionedTransaction

from devnets import snapshots
from devnets.solana.base58 import b58decode
from devnets.solana.encoding import (
    encode_account,
    encode_meta,
    encode_transaction,
    token_balance,
    transaction_version,
    ui_token_amount,
)
from devnets.solana.errors import (
    BlockNotAvailable,
    InternalError,
    InvalidParams,
    InvalidRequest,
    MethodNotFound,
    SnapshotsRefused,
    SolanaRpcError,
    UnsupportedTransactionVersion,
)
from devnets.solana.ledger import Commitment, LedgerSnapshot, SolanaLedger
from devnets.solana.store import TransactionRecord

log = structlog.get_logger(__name__)

API_VERSION = "2.1.0"
FEE_PER_SIGNATURE = 5000
MAX_SIGNATURES_FOR_ADDRESS = 1000
MAX_BLOCK_RANGE = 500_000
_COMMITMENT_ALIASES: dict[str, Commitment] = {
    "processed": "processed",
    "recent": "processed",
    "single": "confirmed",
    "singleGossip": "confirmed",
    "confirmed": "confirmed",
    "finalized": "finalized",
    "max": "finalized",
    "root": "finalized",
}

Params = list[Any]
Method = Callable[[Params], Any]


class SolanaRpc:
    """Dispatches JSON-RPC request objects (single or batch) to the ledger. ``allow_snapshots``: serve
    ``xchain_snapshot`` / ``xchain_revert`` (``devnets.snapshots``); without it both are refused."""

    def __init__(self, ledger: SolanaLedger, *, allow_snapshots: bool = False) -> None:
        self.ledger = ledger
        self.allow_snapshots = allow_snapshots
        self.snapshots: snapshots.SnapshotBook[LedgerSnapshot] = snapshots.SnapshotBook()
        self.methods: dict[str, Method] = {
            "getLatestBlockhash": self.get_latest_blockhash,
            "isBlockhashValid": self.is_blockhash_valid,
            "sendTransaction": self.send_transaction,
            "simulateTransaction": self.simulate_transaction,
            "getSignatureStatuses": self.get_signature_statuses,
            "getTransaction": self.get_transaction,
            "getBlock": self.get_block,
            "getBlocks": self.get_blocks,
            "getBlockTime": self.get_block_time,
            "getProgramAccounts": self.get_program_accounts,
            "getSignaturesForAddress": self.get_signatures_for_address,
            "getAccountInfo": self.get_account_info,
            "getMultipleAccounts": self.get_multiple_accounts,
            "getBalance": self.get_balance,
            "getTokenAccountBalance": self.get_token_account_balance,
            "getTokenAccountsByOwner": self.get_token_accounts_by_owner,
            "getTokenSupply": self.get_token_supply,
            "getSlot": self.get_slot,
            "getBlockHeight": self.get_block_height,
            "getHealth": lambda _: "ok",
            "getVersion": lambda _: {"solana-core": API_VERSION, "feature-set": 0},
            "getGenesisHash": lambda _: self.ledger.genesis_hash,
            "getMinimumBalanceForRentExemption": self.get_minimum_balance_for_rent_exemption,
            "requestAirdrop": self.request_airdrop,
            "getFeeForMessage": self.get_fee_for_message,
            "getEpochInfo": self.get_epoch_info,
            "getTransactionCount": lambda p: self.ledger.store.transaction_count(),
            snapshots.SNAPSHOT: self.xchain_snapshot,
            snapshots.REVERT: self.xchain_revert,
        }

    def handle(self, body: Any) -> Any:
        """The answer to a parsed request body: a response object, or a list of them for a batch."""
        if isinstance(body, list):
            if not body:
                return _error_response(None, InvalidRequest("Invalid request"))
            return [self.handle_one(item) for item in body]
        return self.handle_one(body)

    def handle_one(self, request: Any) -> dict[str, Any]:
        if not isinstance(request, dict) or request.get("jsonrpc") != "2.0" or "method" not in request:
            return _error_response(None, InvalidRequest("Invalid request"))
        request_id = request.get("id")
        method = self.methods.get(request["method"])
        try:
            if method is None:
                raise MethodNotFound("Method not found")
            params = request.get("params", [])
            if not isinstance(params, list):
                raise InvalidParams("Invalid params: expected an array")
            return {"jsonrpc": "2.0", "result": method(params), "id": request_id}
        except SolanaRpcError as exc:
            return _error_response(request_id, exc)
        except Exception as exc:  # a bug of ours: answer it as a JSON-RPC internal error, keep serving
            log.exception("solana_rpc_internal_error", method=request["method"])
            return _error_response(request_id, InternalError(f"Internal error: {exc}"))

    # -- devnet-only snapshots (devnets.snapshots) ------------------------------------------------------

    def xchain_snapshot(self, params: Params) -> str:
        """The chain as it is now, kept in this process; its id (``0x``-hex) for ``xchain_revert``."""
        if not self.allow_snapshots:
            raise SnapshotsRefused(snapshots.refusal(snapshots.SNAPSHOT))
        snapshot_id = self.snapshots.add(self.ledger.snapshot())
        log.info("solana_devnet_snapshot", id=snapshot_id, slot=self.ledger.slot)
        return snapshot_id

    def xchain_revert(self, params: Params) -> bool:
        """``[id]``: the chain back to that snapshot, in place; ``true``. The snapshot stays (revert to it again);
        the ones taken after it are discarded."""
        if not self.allow_snapshots:
            raise SnapshotsRefused(snapshots.refusal(snapshots.REVERT))
        if len(params) != 1:
            raise InvalidParams("Invalid params: expected [snapshot id]")
        try:
            snapshot = self.snapshots.revert_to(params[0])
        except snapshots.SnapshotError as exc:
            raise InvalidParams(f"Invalid params: {exc}") from exc
        self.ledger.revert(snapshot)
        return True

    # -- helpers --------------------------------------------------------------------------------------

    def _context(self, commitment: Commitment, value: Any) -> dict[str, Any]:
        return {
            "context": {"apiVersion": API_VERSION, "slot": self.ledger.slot_for(commitment)},
            "value": value,
        }

    def _decode_account(self, key: Pubkey, commitment: Commitment, config: dict[str, Any]) -> Any:
        account = self.ledger.account(key, commitment)
        if account is None:
            return None
        encoding = config.get("encoding", "binary")
        data_slice = config.get("dataSlice")
        if data_slice is not None and encoding != "jsonParsed":
            start = int(data_slice.get("offset", 0))
            data = bytes(account.data)[start : start + int(data_slice.get("length", 0))]
            account = Account(account.lamports, data, account.owner, account.executable, account.rent_epoch)
        if encoding == "binary":
            encoded = encode_account(account, "base58", self.ledger.mint_decimals)
            encoded["data"] = encoded["data"][0]
            return encoded
        if encoding not in ("base58", "base64", "jsonParsed"):
            raise InvalidParams(f"Invalid params: unsupported encoding {encoding!r}")
        return encode_account(account, encoding, self.ledger.mint_decimals)

    # -- blockhashes and slots ----------------------------------------------------------------------

    def get_latest_blockhash(self, params: Params) -> Any:
        commitment = _commitment(_config(params, 0))
        blockhash, last_valid = self.ledger.blockhash_for(commitment)
        return self._context(commitment, {"blockhash": blockhash, "lastValidBlockHeight": last_valid})

    def is_blockhash_valid(self, params: Params) -> Any:
        blockhash = _string(params, 0, "blockhash")
        commitment = _commitment(_config(params, 1))
        return self._context(commitment, self.ledger.is_blockhash_valid(blockhash))

    def get_slot(self, params: Params) -> int:
        return self.ledger.slot_for(_commitment(_config(params, 0)))

    def get_block_height(self, params: Params) -> int:
        return self.ledger.slot_for(_commitment(_config(params, 0)))

    def get_epoch_info(self, params: Params) -> dict[str, Any]:
        slot = self.ledger.slot_for(_commitment(_config(params, 0)))
        schedule = self.ledger.svm.get_epoch_schedule()
        per_epoch = schedule.slots_per_epoch
        return {
            "absoluteSlot": slot,
            "blockHeight": slot,
            "epoch": slot // per_epoch,
            "slotIndex": slot % per_epoch,
            "slotsInEpoch": per_epoch,
            "transactionCount": self.ledger.store.transaction_count(),
        }

    # -- transactions -------------------------------------------------------------------------------

    def send_transaction(self, params: Params) -> str:
        config = _config(params, 1)
        tx = _decode_transaction(_string(params, 0, "transaction"), config.get("encoding", "base58"))
        return self.ledger.submit(tx, skip_preflight=bool(config.get("skipPreflight", False)))

    def simulate_transaction(self, params: Params) -> Any:
        config = _config(params, 1)
        commitment = _commitment(config)
        tx = _decode_transaction(_string(params, 0, "transaction"), config.get("encoding", "base58"))
        replace = bool(config.get("replaceRecentBlockhash", False))
        if replace and config.get("sigVerify"):
            raise InvalidParams("sigVerify may not be used with replaceRecentBlockhash")
        if config.get("sigVerify"):
            self.ledger.verify_signatures(tx)
        outcome = self.ledger.simulate(tx, check_blockhash=not replace)
        value = outcome.to_json(inner_instructions=bool(config.get("innerInstructions", False)))
        if replace:
            blockhash, last_valid = self.ledger.blockhash_for(commitment)
            value["replacementBlockhash"] = {"blockhash": blockhash, "lastValidBlockHeight": last_valid}
        wanted = (config.get("accounts") or {}).get("addresses")
        if wanted:
            posts = dict(outcome.post_accounts)
            encoding = (config.get("accounts") or {}).get("encoding", "base64")
            value["accounts"] = [
                None
                if (acct := posts.get(_pubkey(a)) or self.ledger.account(_pubkey(a))) is None
                else encode_account(acct, encoding, self.ledger.mint_decimals)
                for a in wanted
            ]
        return self._context(commitment, value)

    def get_signature_statuses(self, params: Params) -> Any:
        signatures = params[0] if params and isinstance(params[0], list) else None
        if signatures is None or len(signatures) > 256:
            raise InvalidParams("Invalid params: expected an array of at most 256 signatures")
        statuses = []
        for sig in signatures:
            status = self.ledger.status(str(sig))
            statuses.append(None if status is None else status.to_json())
        return self._context("processed", statuses)

    def get_transaction(self, params: Params) -> Any:
        signature = _string(params, 0, "signature")
        raw = params[1] if len(params) > 1 else {}
        config = _present({"encoding": raw} if isinstance(raw, str) else (raw or {}))
        commitment = _commitment(config, minimum_confirmed=True)
        encoding = config.get("encoding", "json")
        if encoding not in ("json", "jsonParsed", "base64", "base58"):
            raise InvalidParams(f"Invalid params: unsupported encoding {encoding!r}")
        record = self.ledger.transaction(signature, commitment)
        if record is None:
            return None
        answer = _transaction_with_meta(record, encoding, config.get("maxSupportedTransactionVersion"))
        return {"blockTime": record.block_time, "slot": record.slot, **answer}

    def get_block(self, params: Params) -> Any:
        if not params or not isinstance(params[0], int):
            raise InvalidParams("Invalid params: expected the slot")
        slot = params[0]
        raw = params[1] if len(params) > 1 else {}
        config = _present({"encoding": raw} if isinstance(raw, str) else (raw or {}))
        commitment = _commitment(config, minimum_confirmed=True)
        block = self.ledger.store.block(slot) if slot <= self.ledger.slot_for(commitment) else None
        if block is None:
            raise BlockNotAvailable(slot)
        blockhash, block_time = block
        parent = self.ledger.store.block(slot - 1)
        answer: dict[str, Any] = {
            "blockHeight": slot,
            "blockTime": block_time,
            "blockhash": blockhash,
            "parentSlot": max(0, slot - 1),  # one block a slot, none skipped; slot 1's parent is genesis (slot 0)
            "previousBlockhash": parent[0] if parent is not None else blockhash,
        }
        details = config.get("transactionDetails", "full")
        records = self.ledger.store.transactions_in_slot(slot)
        if details == "full":
            encoding = config.get("encoding", "json")
            max_version = config.get("maxSupportedTransactionVersion")
            answer["transactions"] = [_transaction_with_meta(r, encoding, max_version) for r in records]
        elif details == "signatures":
            answer["signatures"] = [r.signature for r in records]
        elif details != "none":
            raise InvalidParams(f"Invalid params: unsupported transactionDetails {details!r}")
        if config.get("rewards", True):
            answer["rewards"] = []
        return answer

    def get_blocks(self, params: Params) -> list[int]:
        if not params or not isinstance(params[0], int):
            raise InvalidParams("Invalid params: expected the start slot")
        start = params[0]
        end = params[1] if len(params) > 1 and isinstance(params[1], int) else None
        config = _config(params, 2) if len(params) > 2 else _config(params, 1) if end is None else {}
        top = self.ledger.slot_for(_commitment(config, minimum_confirmed=True))
        end = top if end is None else min(end, top)
        if end - start > MAX_BLOCK_RANGE:
            raise InvalidParams(f"Slot range too large; max {MAX_BLOCK_RANGE}")
        return self.ledger.store.block_slots(start, end, MAX_BLOCK_RANGE + 1)

    def get_block_time(self, params: Params) -> int:
        if not params or not isinstance(params[0], int):
            raise InvalidParams("Invalid params: expected the slot")
        block = self.ledger.store.block(params[0])
        if block is None:
            raise BlockNotAvailable(params[0])
        return block[1]

    def get_program_accounts(self, params: Params) -> Any:
        program = _pubkey(_string(params, 0, "program id"))
        config = _config(params, 1)
        commitment = _commitment(config)
        filters = config.get("filters") or []
        found = []
        for key, _ in self.ledger.svm.get_program_accounts(program):
            account = self.ledger.account(key, commitment)
            if account is None or account.owner != program or not _matches(bytes(account.data), filters):
                continue
            found.append({"account": self._decode_account(key, commitment, config), "pubkey": str(key)})
        return self._context(commitment, found) if config.get("withContext") else found

    def get_signatures_for_address(self, params: Params) -> list[dict[str, Any]]:
        address = str(_pubkey(_string(params, 0, "address")))
        config = _config(params, 1)
        commitment = _commitment(config, minimum_confirmed=True)
        limit = int(config.get("limit") or MAX_SIGNATURES_FOR_ADDRESS)
        if not 1 <= limit <= MAX_SIGNATURES_FOR_ADDRESS:
            raise InvalidParams(f"Invalid limit; max {MAX_SIGNATURES_FOR_ADDRESS}")
        records = self.ledger.store.signatures_for_address(
            address,
            max_slot=self.ledger.slot_for(commitment),
            before=config.get("before"),
            until=config.get("until"),
            limit=limit,
        )
        return [
            {
                "blockTime": r.block_time,
                "confirmationStatus": self.ledger.commitment_of(r),
                "err": r.err,
                "memo": r.memo,
                "signature": r.signature,
                "slot": r.slot,
            }
            for r in records
        ]

    def get_fee_for_message(self, params: Params) -> Any:
        commitment = _commitment(_config(params, 1))
        raw = _decode_bytes(_string(params, 0, "message"), "base64")
        try:
            message: Message | MessageV0 = (
                MessageV0.from_bytes(raw[1:]) if raw and raw[0] & 0x80 else Message.from_bytes(raw)
            )
        except ValueError as exc:
            raise InvalidParams(f"Invalid params: invalid message: {exc}") from exc
        if not self.ledger.is_blockhash_valid(str(message.recent_blockhash)):
            return self._context(commitment, None)  # a durable-nonce message also answers null here
        return self._context(commitment, FEE_PER_SIGNATURE * message.header.num_required_signatures)

    # -- accounts -----------------------------------------------------------------------------------

    def get_account_info(self, params: Params) -> Any:
        key = _pubkey(_string(params, 0, "pubkey"))
        config = _config(params, 1)
        commitment = _commitment(config)
        return self._context(commitment, self._decode_account(key, commitment, config))

    def get_multiple_accounts(self, params: Params) -> Any:
        keys = params[0] if params and isinstance(params[0], list) else None
        if keys is None or len(keys) > 100:
            raise InvalidParams("Invalid params: expected an array of at most 100 pubkeys")
        config = _config(params, 1)
        commitment = _commitment(config)
        return self._context(commitment, [self._decode_account(_pubkey(k), commitment, config) for k in keys])

    def get_balance(self, params: Params) -> Any:
        key = _pubkey(_string(params, 0, "pubkey"))
        commitment = _commitment(_config(params, 1))
        account = self.ledger.account(key, commitment)
        return self._context(commitment, 0 if account is None else account.lamports)

    def get_minimum_balance_for_rent_exemption(self, params: Params) -> int:
        if not params or not isinstance(params[0], int):
            raise InvalidParams("Invalid params: expected the data length")
        return self.ledger.svm.minimum_balance_for_rent_exemption(params[0])

    def get_token_account_balance(self, params: Params) -> Any:
        key = _pubkey(_string(params, 0, "pubkey"))
        commitment = _commitment(_config(params, 1))
        balance = token_balance(self.ledger.account(key, commitment), self.ledger.mint_decimals)
        if balance is None:
            raise InvalidParams("Invalid param: could not find account")
        return self._context(commitment, ui_token_amount(balance.amount, balance.decimals))

    def get_token_supply(self, params: Params) -> Any:
        key = _pubkey(_string(params, 0, "mint"))
        commitment = _commitment(_config(params, 1))
        account = self.ledger.account(key, commitment)
        decimals = self.ledger.mint_decimals(key)
        if account is None or decimals is None:
            raise InvalidParams("Invalid param: not a Token mint")
        return self._context(
            commitment, ui_token_amount(Mint.from_bytes(bytes(account.data)).supply, decimals)
        )

    def get_token_accounts_by_owner(self, params: Params) -> Any:
        owner = _pubkey(_string(params, 0, "owner"))
        selector = _present(params[1]) if len(params) > 1 and isinstance(params[1], dict) else None
        if selector is None or len(selector.keys() & {"mint", "programId"}) != 1:
            raise InvalidParams('Invalid params: expected {"mint": ...} or {"programId": ...}')
        mint = _pubkey(selector["mint"]) if "mint" in selector else None
        program = _pubkey(selector["programId"]) if "programId" in selector else None
        config = _config(params, 2)
        commitment = _commitment(config)
        found = self.ledger.token_accounts_by_owner(
            owner, mint=mint, program_id=program, commitment=commitment
        )
        return self._context(
            commitment,
            [
                {"account": self._decode_account(key, commitment, config), "pubkey": str(key)}
                for key, _ in found
            ],
        )

    def request_airdrop(self, params: Params) -> str:
        key = _pubkey(_string(params, 0, "pubkey"))
        if len(params) < 2 or not isinstance(params[1], int) or params[1] <= 0:
            raise InvalidParams("Invalid params: expected a positive lamport amount")
        return self.ledger.airdrop(key, params[1])


def _transaction_with_meta(
    record: TransactionRecord, encoding: str, max_version: int | None
) -> dict[str, Any]:
    """``transaction`` and ``meta`` (and ``version`` when the client names one) of a stored record."""
    if encoding not in ("json", "jsonParsed", "base64", "base58"):
        raise InvalidParams(f"Invalid params: unsupported encoding {encoding!r}")
    tx = VersionedTransaction.from_bytes(record.tx)
    version = transaction_version(tx)
    if version != "legacy" and (max_version is None or max_version < version):
        raise UnsupportedTransactionVersion(
            f"Transaction version ({version}) is not supported by the requesting client. Please try the "
            'request again with the following configuration parameter: "maxSupportedTransactionVersion": 0'
        )
    answer: dict[str, Any] = {
        "meta": encode_meta(record.meta, tx, encoding),
        "transaction": encode_transaction(tx, encoding),
    }
    if max_version is not None:
        answer["version"] = version
    return answer


def _matches(data: bytes, filters: list[Any]) -> bool:
    """``getProgramAccounts`` filters: ``dataSize`` and ``memcmp`` (base58 or base64 bytes)."""
    for item in filters:
        if not isinstance(item, dict):
            raise InvalidParams("Invalid params: bad filter")
        if "dataSize" in item:
            if len(data) != item["dataSize"]:
                return False
        elif "memcmp" in item:
            memcmp = item["memcmp"]
            wanted = _decode_bytes(memcmp["bytes"], memcmp.get("encoding", "base58"))
            offset = int(memcmp.get("offset", 0))
            if data[offset : offset + len(wanted)] != wanted:
                return False
        else:
            raise InvalidParams(f"Invalid params: unsupported filter {item!r}")
    return True


def _error_response(request_id: Any, error: SolanaRpcError) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "error": error.to_json(), "id": request_id}


def _config(params: Params, index: int) -> dict[str, Any]:
    if len(params) <= index or params[index] is None:
        return {}
    if not isinstance(params[index], dict):
        raise InvalidParams(f"Invalid params: expected a configuration object at position {index}")
    return _present(params[index])


def _present(config: dict[str, Any]) -> dict[str, Any]:
    """The options a client gave (solana-py sends ``null`` for the ones it leaves unset)."""
    return {k: v for k, v in config.items() if v is not None}


def _commitment(config: dict[str, Any], *, minimum_confirmed: bool = False) -> Commitment:
    name = config.get("commitment", "finalized")
    commitment = _COMMITMENT_ALIASES.get(name)
    if commitment is None:
        raise InvalidParams(f"Invalid params: unknown commitment {name!r}")
    if minimum_confirmed and commitment == "processed":
        raise InvalidParams("Method does not support commitment below `confirmed`")
    return commitment


def _string(params: Params, index: int, what: str) -> str:
    if len(params) <= index or not isinstance(params[index], str):
        raise InvalidParams(f"Invalid params: expected the {what} as a string at position {index}")
    return str(params[index])


def _pubkey(text: Any) -> Pubkey:
    try:
        return Pubkey.from_string(str(text))
    except ValueError as exc:
        raise InvalidParams(f"Invalid param: {exc}") from exc


def _decode_bytes(text: str, encoding: str) -> bytes:
    try:
        if encoding == "base64":
            return base64.b64decode(text, validate=True)
        if encoding == "base58":
            return b58decode(text)
    except ValueError as exc:
        raise InvalidParams(f"invalid {encoding} encoding: {exc}") from exc
    raise InvalidParams(f"Invalid params: unsupported encoding {encoding!r}")


def _decode_transaction(text: str, encoding: str) -> VersionedTransaction:
    raw = _decode_bytes(text, encoding)
    try:
        tx = VersionedTransaction.from_bytes(raw)
        tx.sanitize()
    except Exception as exc:  # solders raises its own error types for malformed wire data
        raise InvalidParams(
            f"failed to deserialize solana_sdk::transaction::versioned::VersionedTransaction: {exc}"
        ) from exc
    if bytes(tx) != raw:
        raise InvalidParams("failed to deserialize transaction: trailing bytes")
    if isinstance(tx.message, MessageV0) and tx.message.address_table_lookups:
        raise InvalidParams("Invalid params: address table lookups are not supported by this devnet")
    return tx
