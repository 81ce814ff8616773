"""The devnet's chain: one LiteSVM, a slot clock, recent blockhashes, commitment levels and history.

``SolanaLedger`` is not thread-safe (LiteSVM is not): the server calls it only from its event loop.
Blockhash age is checked here rather than by LiteSVM (which only knows its latest blockhash), so a
blockhash stays usable for ``blockhash_valid_slots`` slots as on a real cluster. Account reads at
``confirmed``/``finalized`` see the state as of that slot: the first pre-image of every account a slot
modified is kept until that slot is finalized.

``snapshot`` / ``revert`` (``xchain_snapshot`` / ``xchain_revert``, devnet-only: ``devnets.snapshots``) put the
chain back in place, the LiteSVM kept: its accounts, the slot, the blockhashes, the pre-images and the stored
history as they were. There is no mempool to drop (a transaction executes when it is sent).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import structlog
from solders.account import Account
from solders.clock import Clock
from solders.hash import Hash
from solders.litesvm import LiteSVM
from solders.message import Message
from solders.pubkey import Pubkey
from solders.system_program import TransferParams, transfer
from solders.token.state import Mint
from solders.transaction import VersionedTransaction
from solders.transaction_metadata import (
    FailedTransactionMetadata,
    SimulatedTransactionInfo,
    TransactionMetadata,
)

from devnets.solana.encoding import (
    MINT_LEN,
    SYSTEM_PROGRAM_ID,
    TOKEN_PROGRAM_ID,
    TokenBalance,
    compiled_inner_instructions,
    memo_field,
    memo_texts,
    return_data_json,
    token_balance,
    ui_token_amount,
)
from devnets.solana.errors import PreflightFailure, SignatureVerificationFailure
from devnets.solana.keys import DEVNET_ACCOUNT_COUNT, devnet_keypair, faucet_keypair
from devnets.solana.store import LedgerStore, TransactionRecord

log = structlog.get_logger(__name__)

Commitment = Literal["processed", "confirmed", "finalized"]
GENESIS_SLOT = 1
SYSVAR_OWNER = Pubkey.from_string("Sysvar1111111111111111111111111111111111111")
NATIVE_LOADER = Pubkey.from_string("NativeLoader1111111111111111111111111111111")
LANDING_ERRORS = frozenset({"InstructionError", "InsufficientFundsForRent"})
"""Errors of transactions that are still included in a block (fee charged); others never land."""


@dataclass(frozen=True)
class LedgerParams:
    """How the devnet's cluster behaves; the defaults are a real cluster's."""

    blockhash_valid_slots: int = 150
    confirmed_lag: int = 1
    finalized_lag: int = 32
    genesis_lamports: int = 1_000_000 * 10**9
    devnet_accounts: int = DEVNET_ACCOUNT_COUNT


@dataclass(frozen=True)
class SimulationOutcome:
    """``simulateTransaction``'s value, also the ``data`` of a failed preflight."""

    err: Any
    logs: list[str]
    units_consumed: int
    post_accounts: list[tuple[Pubkey, Account | None]] = field(default_factory=list)
    inner_instructions: list[dict[str, Any]] = field(default_factory=list)
    return_data: dict[str, Any] | None = None

    @staticmethod
    def of(
        err: Any, meta: TransactionMetadata, posts: list[tuple[Pubkey, Account | None]]
    ) -> SimulationOutcome:
        return SimulationOutcome(
            err,
            list(meta.logs()),
            meta.compute_units_consumed(),
            posts,
            compiled_inner_instructions(meta.inner_instructions()),
            return_data_json(meta),
        )

    def to_json(self, *, inner_instructions: bool = False) -> dict[str, Any]:
        return {
            "accounts": None,
            "err": self.err,
            "innerInstructions": self.inner_instructions if inner_instructions else None,
            "logs": self.logs,
            "replacementBlockhash": None,
            "returnData": self.return_data,
            "unitsConsumed": self.units_consumed,
        }


@dataclass(frozen=True)
class SignatureStatus:
    slot: int
    confirmations: int | None
    err: Any
    confirmation_status: Commitment

    def to_json(self) -> dict[str, Any]:
        return {
            "slot": self.slot,
            "confirmations": self.confirmations,
            "err": self.err,
            "status": {"Ok": None} if self.err is None else {"Err": self.err},
            "confirmationStatus": self.confirmation_status,
        }


@dataclass(frozen=True)
class LedgerSnapshot:
    """The chain at one slot (``SolanaLedger.snapshot``): what ``revert`` puts back. The store's account rows are
    the state (every account a transaction or genesis wrote; programs and sysvars are LiteSVM's own and no
    transaction of this devnet changes them); ``last_seq`` is the last transaction kept."""

    slot: int
    block_time: int
    last_seq: int
    accounts: dict[str, bytes]
    blockhashes: dict[str, int]
    slot_hashes: dict[int, str]
    pre_images: dict[Pubkey, list[tuple[int, Account | None]]]


EMPTY_ACCOUNT = Account(0, b"", Pubkey.default(), False, 0)
"""What an account created after a snapshot becomes at its revert: LiteSVM's way of saying there is none."""


class SolanaLedger:
    """Owns the LiteSVM and the store; every chain operation of the RPC server goes through it."""

    def __init__(self, store: LedgerStore, params: LedgerParams | None = None) -> None:
        self.store = store
        self.params = params or LedgerParams()
        self.svm = LiteSVM().with_blockhash_check(False).with_sigverify(False)
        self.block_time = int(time.time())
        self._kept_blockhash_slots = 2 * self.params.blockhash_valid_slots
        self._blockhashes: dict[str, int] = {}
        self._slot_hashes: dict[int, str] = {}
        self._pre_images: dict[Pubkey, list[tuple[int, Account | None]]] = {}
        self.genesis_hash = str(Hash.hash(b"xchain-relayer solana devnet genesis"))
        self.faucet = faucet_keypair()
        saved_slot = store.load_slot()
        if saved_slot is None:
            self.slot = GENESIS_SLOT
            self._set_clock()
            self._write_genesis()
        else:
            self.slot = saved_slot + 1
            self._set_clock()
            accounts = store.load_accounts()
            for key, account in accounts:
                self.svm.set_account(key, account)
            for slot, blockhash in store.load_blockhashes(since_slot=self.slot - self._kept_blockhash_slots):
                self._remember_blockhash(slot, blockhash)
            for key, slot, before in store.load_pre_images():
                self._pre_images.setdefault(key, []).append((slot, before))
            log.info(
                "solana_devnet_restored",
                slot=self.slot,
                accounts=len(accounts),
                transactions=store.transaction_count(),
            )
        self._record_slot()

    # -- slots and blockhashes --------------------------------------------------------------------

    def advance_slot(self) -> None:
        """One slot passes: the clock moves, a new blockhash appears, old ones and pre-images expire."""
        self.slot += 1
        self._set_clock()
        self.svm.expire_blockhash()
        self._record_slot()
        finalized = self.slot_for("finalized")
        for key in list(self._pre_images):
            kept = [(s, a) for s, a in self._pre_images[key] if s > finalized]
            if kept:
                self._pre_images[key] = kept
            else:
                del self._pre_images[key]

    def slot_for(self, commitment: Commitment) -> int:
        lag = {"processed": 0, "confirmed": self.params.confirmed_lag, "finalized": self.params.finalized_lag}
        return max(GENESIS_SLOT, self.slot - lag[commitment])

    def blockhash_for(self, commitment: Commitment) -> tuple[str, int]:
        """The newest blockhash at ``commitment`` and the last block height it is valid at."""
        target = self.slot_for(commitment)
        slot = max((s for s in self._slot_hashes if s <= target), default=min(self._slot_hashes))
        return self._slot_hashes[slot], slot + self.params.blockhash_valid_slots

    def is_blockhash_valid(self, blockhash: str) -> bool:
        slot = self._blockhashes.get(blockhash)
        return slot is not None and self.slot <= slot + self.params.blockhash_valid_slots

    def _set_clock(self, block_time: int | None = None) -> None:
        self.svm.warp_to_slot(self.slot)
        self.block_time = int(time.time()) if block_time is None else block_time
        clock = self.svm.get_clock()
        self.svm.set_clock(
            Clock(
                self.slot,
                clock.epoch_start_timestamp,
                clock.epoch,
                clock.leader_schedule_epoch,
                self.block_time,
            )
        )

    def _record_slot(self) -> None:
        blockhash = str(self.svm.latest_blockhash())
        self._remember_blockhash(self.slot, blockhash)
        oldest = self.slot - self._kept_blockhash_slots
        for slot in [s for s in self._slot_hashes if s < oldest]:
            del self._blockhashes[self._slot_hashes.pop(slot)]
        self.store.save_slot(self.slot, blockhash, self.block_time, self.slot_for("finalized"))

    def _remember_blockhash(self, slot: int, blockhash: str) -> None:
        self._blockhashes[blockhash] = slot
        self._slot_hashes[slot] = blockhash

    def _write_genesis(self) -> None:
        funded = [self.faucet.pubkey()] + [
            devnet_keypair(i).pubkey() for i in range(self.params.devnet_accounts)
        ]
        accounts = []
        for key in funded:
            account = Account(self.params.genesis_lamports, b"", Pubkey.default(), False, 0)
            self.svm.set_account(key, account)
            accounts.append((key, account))
        self.store.save_genesis(self.slot, accounts)
        log.info("solana_devnet_genesis", slot=self.slot, funded=[str(k) for k in funded])

    # -- snapshots ----------------------------------------------------------------------------------

    def snapshot(self) -> LedgerSnapshot:
        """The chain as it is now (a copy: later slots and transactions do not change it)."""
        last_seq, accounts = self.store.snapshot_rows()
        return LedgerSnapshot(
            slot=self.slot,
            block_time=self.block_time,
            last_seq=last_seq,
            accounts=accounts,
            blockhashes=dict(self._blockhashes),
            slot_hashes=dict(self._slot_hashes),
            pre_images={k: list(v) for k, v in self._pre_images.items()},
        )

    def revert(self, snapshot: LedgerSnapshot) -> None:
        """Back to ``snapshot`` in place: the store first (one SQLite transaction), then every account that changed
        since set back in the LiteSVM (one created since emptied), the slot, its block time and clock, the
        blockhashes and the pre-images. The LiteSVM's own blockhash is not rewound, so the slots produced after the
        revert get new blockhashes, none of those of the abandoned slots."""
        pre_images = [(k, slot, a) for k, versions in snapshot.pre_images.items() for slot, a in versions]
        changed = self.store.revert(
            slot=snapshot.slot, last_seq=snapshot.last_seq, accounts=snapshot.accounts, pre_images=pre_images
        )
        for key, row in changed.items():
            self.svm.set_account(Pubkey.from_string(key), EMPTY_ACCOUNT if row is None else Account.from_bytes(row))
        self.slot = snapshot.slot
        self._set_clock(snapshot.block_time)
        self._blockhashes = dict(snapshot.blockhashes)
        self._slot_hashes = dict(snapshot.slot_hashes)
        self._pre_images = {k: list(v) for k, v in snapshot.pre_images.items()}
        log.info("solana_devnet_reverted", slot=self.slot, accounts_reset=len(changed))

    # -- accounts -----------------------------------------------------------------------------------

    def account(self, key: Pubkey, commitment: Commitment = "processed") -> Account | None:
        """The account as of ``commitment``'s slot (``None`` if it does not exist or holds no lamports)."""
        target = self.slot_for(commitment)
        for slot, before in self._pre_images.get(key, []):
            if slot > target:
                return _existing(before)
        return _existing(self.svm.get_account(key))

    def mint_decimals(self, mint: Pubkey) -> int | None:
        account = self.svm.get_account(mint)
        if account is None or account.owner != TOKEN_PROGRAM_ID or len(account.data) != MINT_LEN:
            return None
        return Mint.from_bytes(bytes(account.data)).decimals

    def token_accounts_by_owner(
        self, owner: Pubkey, *, mint: Pubkey | None, program_id: Pubkey | None, commitment: Commitment
    ) -> list[tuple[Pubkey, Account]]:
        if program_id is not None and program_id != TOKEN_PROGRAM_ID:
            return []
        found = []
        for key, _ in self.svm.get_program_accounts(TOKEN_PROGRAM_ID):
            account = self.account(key, commitment)
            balance = token_balance(account, self.mint_decimals)
            if account is None or balance is None or balance.owner != owner:
                continue
            if mint is None or balance.mint == mint:
                found.append((key, account))
        return found

    # -- transactions -------------------------------------------------------------------------------

    def verify_signatures(self, tx: VersionedTransaction) -> None:
        if not all(tx.verify_with_results()):
            raise SignatureVerificationFailure()

    def simulate(self, tx: VersionedTransaction, *, check_blockhash: bool = True) -> SimulationOutcome:
        if check_blockhash and not self.is_recent(tx):
            return SimulationOutcome("BlockhashNotFound", [], 0)
        if self.store.transaction(str(tx.signatures[0])) is not None:
            return SimulationOutcome("AlreadyProcessed", [], 0)
        result = self.svm.simulate_transaction(tx)
        if isinstance(result, SimulatedTransactionInfo):
            return SimulationOutcome.of(None, result.meta(), list(result.post_accounts()))
        return SimulationOutcome.of(_error_json(result), result.meta(), [])

    def is_recent(self, tx: VersionedTransaction) -> bool:
        """Its blockhash is one of the last ``blockhash_valid_slots``, or it is a durable-nonce transaction
        whose nonce account holds that blockhash as its nonce."""
        blockhash = tx.message.recent_blockhash
        if self.is_blockhash_valid(str(blockhash)):
            return True
        if not tx.uses_durable_nonce():
            return False
        advance = tx.message.instructions[0]
        nonce = self.svm.get_account(tx.message.account_keys[advance.accounts[0]])
        data = b"" if nonce is None else bytes(nonce.data)
        return nonce is not None and nonce.owner == SYSTEM_PROGRAM_ID and data[40:72] == bytes(blockhash)

    def submit(self, tx: VersionedTransaction, *, skip_preflight: bool) -> str:
        """Checks (unless ``skip_preflight``) and executes ``tx``; records it if it lands; returns its signature.

        Raises ``SignatureVerificationFailure``, or ``PreflightFailure`` when preflight is on and the
        transaction would fail. With preflight off, a transaction that cannot land is dropped silently,
        as a real leader drops it.
        """
        self.verify_signatures(tx)
        signature = str(tx.signatures[0])
        if not skip_preflight:
            outcome = self.simulate(tx)
            if outcome.err is not None:
                raise PreflightFailure(
                    f"Transaction simulation failed: {describe_transaction_error(outcome.err)}",
                    outcome.to_json(),
                )
        elif not self.is_recent(tx) or self.store.transaction(signature):
            return signature
        self._execute(tx)
        return signature

    def airdrop(self, to: Pubkey, lamports: int) -> str:
        """A System transfer from the faucet, recorded like any other transaction."""
        blockhash, _ = self.blockhash_for("processed")
        message = Message.new_with_blockhash(
            [transfer(TransferParams(from_pubkey=self.faucet.pubkey(), to_pubkey=to, lamports=lamports))],
            self.faucet.pubkey(),
            Hash.from_string(blockhash),
        )
        tx = VersionedTransaction(message, [self.faucet])
        return self.submit(tx, skip_preflight=False)

    def _execute(self, tx: VersionedTransaction) -> None:
        keys = list(tx.message.account_keys)
        before = [self.svm.get_account(k) for k in keys]
        pre_tokens = self._token_balances(before)
        result = self.svm.send_transaction(tx)
        err = _error_json(result) if isinstance(result, FailedTransactionMetadata) else None
        if err is not None and not (isinstance(err, dict) and LANDING_ERRORS & err.keys()):
            log.info("solana_tx_dropped", signature=str(tx.signatures[0]), err=err)
            return
        meta = result.meta() if isinstance(result, FailedTransactionMetadata) else result
        after = [self.svm.get_account(k) for k in keys]
        new_pre_images = []
        for key, old, new in zip(keys, before, after, strict=True):
            versions = self._pre_images.setdefault(key, [])
            if old != new and (not versions or versions[-1][0] != self.slot):
                versions.append((self.slot, old))
                new_pre_images.append((key, self.slot, old))
        memos = memo_texts(tx)
        meta_json: dict[str, Any] = {
            "computeUnitsConsumed": meta.compute_units_consumed(),
            "err": err,
            "fee": meta.fee(),
            "innerInstructions": compiled_inner_instructions(meta.inner_instructions()),
            "loadedAddresses": {"readonly": [], "writable": []},
            "logMessages": list(meta.logs()),
            "postBalances": [a.lamports if a else 0 for a in after],
            "returnData": return_data_json(meta),
            "postTokenBalances": self._token_balances(after),
            "preBalances": [a.lamports if a else 0 for a in before],
            "preTokenBalances": pre_tokens,
            "rewards": [],
            "status": {"Ok": None} if err is None else {"Err": err},
        }
        signature = str(tx.signatures[0])
        self.store.save_transaction(
            signature=signature,
            slot=self.slot,
            block_time=self.block_time,
            tx=bytes(tx),
            meta=meta_json,
            err=err,
            memo=memo_field(memos),
            addresses=[str(k) for k in keys],
            accounts=_persistable(zip(keys, after, strict=True)),
            pre_images=new_pre_images,
        )
        log.info("solana_tx_landed", signature=signature, slot=self.slot, err=err)

    def _token_balances(self, accounts: list[Account | None]) -> list[dict[str, Any]]:
        out = []
        for index, account in enumerate(accounts):
            balance: TokenBalance | None = token_balance(account, self.mint_decimals)
            if balance is not None:
                out.append(
                    {
                        "accountIndex": index,
                        "mint": str(balance.mint),
                        "owner": str(balance.owner),
                        "programId": str(TOKEN_PROGRAM_ID),
                        "uiTokenAmount": ui_token_amount(balance.amount, balance.decimals),
                    }
                )
        return out

    # -- history ------------------------------------------------------------------------------------

    def status(self, signature: str) -> SignatureStatus | None:
        record = self.store.transaction(signature)
        if record is None:
            return None
        return SignatureStatus(
            record.slot, self._confirmations(record), record.err, self.commitment_of(record)
        )

    def transaction(self, signature: str, commitment: Commitment) -> TransactionRecord | None:
        record = self.store.transaction(signature)
        if record is None or record.slot > self.slot_for(commitment):
            return None
        return record

    def commitment_of(self, record: TransactionRecord) -> Commitment:
        if record.slot <= self.slot_for("finalized"):
            return "finalized"
        if record.slot <= self.slot_for("confirmed"):
            return "confirmed"
        return "processed"

    def _confirmations(self, record: TransactionRecord) -> int | None:
        return None if self.commitment_of(record) == "finalized" else self.slot - record.slot


def _existing(account: Account | None) -> Account | None:
    return account if account is not None and account.lamports > 0 else None


def _persistable(accounts: Iterable[tuple[Pubkey, Account | None]]) -> list[tuple[Pubkey, Account]]:
    """Accounts to write back: not programs or sysvars (LiteSVM provides those); closed ones as empty."""
    out = []
    for key, account in accounts:
        if account is None:
            out.append((key, Account(0, b"", Pubkey.default(), False, 0)))
        elif not account.executable and account.owner not in (SYSVAR_OWNER, NATIVE_LOADER):
            out.append((key, account))
    return out


def _error_json(result: FailedTransactionMetadata) -> Any:
    return json.loads(result.to_json())["err"]


def describe_transaction_error(err: Any) -> str:
    """The text a real node puts after ``Transaction simulation failed: ``."""
    simple = {
        "BlockhashNotFound": "Blockhash not found",
        "AccountNotFound": "Attempt to debit an account but found no record of a prior credit.",
        "AlreadyProcessed": "This transaction has already been processed",
        "InsufficientFundsForFee": "Insufficient funds for fee",
        "AccountInUse": "Account in use",
        "ProgramAccountNotFound": "Attempt to load a program that does not exist",
        "InvalidAccountForFee": "This account may not be used to pay transaction fees",
        "SignatureFailure": "Transaction did not pass signature verification",
    }
    if isinstance(err, str):
        return simple.get(err, err)
    if isinstance(err, dict) and "InstructionError" in err:
        index, inner = err["InstructionError"]
        return f"Error processing Instruction {index}: {_describe_instruction_error(inner)}"
    if isinstance(err, dict) and "InsufficientFundsForRent" in err:
        return (
            f"Transaction results in an account ({err['InsufficientFundsForRent']['account_index']}) with "
            "insufficient funds for rent"
        )
    return json.dumps(err)


def _describe_instruction_error(inner: Any) -> str:
    if isinstance(inner, dict) and "Custom" in inner:
        return f"custom program error: {inner['Custom']:#x}"
    texts = {
        "MissingRequiredSignature": "missing required signature for instruction",
        "InvalidAccountData": "invalid account data for instruction",
        "InvalidArgument": "invalid program argument",
        "InvalidInstructionData": "invalid instruction data",
        "InsufficientFunds": "insufficient funds for instruction",
        "AccountAlreadyInitialized": "instruction requires an uninitialized account",
        "UninitializedAccount": "instruction requires an initialized account",
        "IncorrectProgramId": "incorrect program id for instruction",
        "NotEnoughAccountKeys": "insufficient account keys for instruction",
    }
    return texts.get(inner, str(inner)) if isinstance(inner, str) else json.dumps(inner)
