"""The bridge's rules on Solana, without any RPC: what counts as a dispatch, and what a delivery transaction is.

There is no program of ours on Solana; the bridge is made of stock programs (System, SPL Token with its
native M-of-N multisig, Associated Token Account, Memo), so these rules are what every relayer and
validator applies identically to the same chain data.

Dispatch (origin). A successful transaction that references the ``bridge`` address and carries top-level
Memo instructions ``xchain:v1:...`` (``adapters.solana.memo``):

- token dispatch: exactly one dispatch memo and exactly one top-level SPL Token movement into the bridge:
  ``Transfer``/``TransferChecked`` into a configured native token's vault (the multisig's associated token
  account), or ``Burn``/``BurnChecked`` of a configured wrapped mint. The memo's recipient must be the
  destination's enrolled TokenBridge and its body the TokenBridge body naming this token's home
  (native: this domain and the mint's 32 bytes; wrapped: its configured home) with ``amount`` equal to the
  moved amount times ``10**(home_decimals - decimals)``. Sender of the message: the bridge.
- plain dispatch: no token movement into the bridge; each dispatch memo is one message, sender = the fee
  payer (which may not be the bridge itself).

Anything else (two movements, a movement and two memos, a mismatched amount, an unknown destination
bridge...) is not a dispatch and is ignored; nonces count valid dispatches only.

Delivery (destination). One transaction, fee payer = the relayer, signed by a quorum of the multisig's
members; per message: create-idempotent the recipient's associated token account, ``MintTo`` (wrapped) or
``Transfer`` out of the vault (native coming home) with the multisig as authority and the quorum as its
signers, and the REPLAY GUARD of each co-signer (``guard_instructions``): a System ``Transfer`` of the
guard's rent from the fee payer to ``guard_address(co-signer, id)``, then ``AllocateWithSeed(base=co-signer,
seed=first 32 hex chars of the id, space=GUARD_SPACE, owner=GUARD_OWNER)``. A final memo
``xchain-delivery:<ids>``.

Why the guard holds:

- only that validator can make it: the address is ``create_with_seed(co-signer, seed, GUARD_OWNER)``, and
  the System program changes an account's size or owner only with the signature of the address or, for a
  seed address, of its base; the one thing anyone can do to the address is send it lamports;
- lamports sent there first (any amount, by anyone) do not block it: the transfer adds the rent whatever the
  balance, and ``AllocateWithSeed`` accepts any system-owned account without data, funded or not (the old
  guard, ``CreateAccountWithSeed``, refused any address holding lamports: 0.0009 SOL froze a transfer);
- it is made once: ``AllocateWithSeed`` refuses an account that is not system-owned or holds data ("already
  in use"), and the guard owner (Memo v2, an immutable program that never writes to or debits an account)
  never gives it back. Two quorums of a multisig with threshold > N/2 share a member, so any second delivery
  of the id fails, atomically (no mint, no transfer), on that member's guard;
- it is recognisable: a guard is owned by ``GUARD_OWNER`` and holds ``GUARD_SPACE`` bytes, which no
  transfer can fake; its lamports say nothing (``is_guard``; ``SolanaAdapter.delivered`` counts guards).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from solders.compute_budget import set_compute_unit_price
from solders.hash import Hash
from solders.instruction import Instruction
from solders.message import Message as SolanaMessage
from solders.pubkey import Pubkey
from solders.system_program import AllocateWithSeedParams, allocate_with_seed
from solders.system_program import TransferParams as SystemTransferParams
from solders.system_program import transfer as system_transfer
from solders.transaction import VersionedTransaction
from spl.memo.constants import MEMO_PROGRAM_ID
from spl.memo.instructions import create_memo
from spl.memo.models import MemoParams
from spl.token.constants import TOKEN_PROGRAM_ID
from spl.token.instructions import (
    create_idempotent_associated_token_account,
    get_associated_token_address,
    mint_to,
    transfer,
)
from spl.token.models import MintToParams, TransferParams

from adapters.message import MESSAGE_VERSION, Domain, Message, MessageFormatError, MessageId
from adapters.solana.memo import (
    DISPATCH_PREFIX,
    GAS_PREFIX,
    DispatchMemo,
    GasMemo,
    MemoFormatError,
    TokenBody,
    decode_dispatch_memo,
    decode_gas_memo,
    encode_delivery_memo,
)
from config.settings import SolanaTokenConfig

MEMO_V1_PROGRAM_ID = Pubkey.from_string("Memo1UhkJRfHyvLMcVucJwxXeuD728EqVDDwQDxFMNo")
MEMO_PROGRAMS = (MEMO_PROGRAM_ID, MEMO_V1_PROGRAM_ID)
MAX_TX_SIZE = 1232
U64_MAX = 2**64 - 1
_TRANSFER, _TRANSFER_CHECKED, _BURN, _BURN_CHECKED = 3, 12, 8, 15
_U64 = struct.Struct("<Q")


class NotADispatch(ValueError):
    """A transaction that references the bridge but is not a valid dispatch (why, in the message)."""


class NotBridgeTraffic(NotADispatch):
    """A transaction that does not reference the bridge, or carries no dispatch memo: not an attempt at one."""


class Undeliverable(ValueError):
    """A message this chain will not deliver; ``reason`` is short and stable (log field, metric label)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        super().__init__(f"{reason}: {detail}" if detail else reason)


@dataclass(frozen=True, slots=True)
class TokenRule:
    symbol: str
    mint: Pubkey
    decimals: int
    wrapped: bool
    home_domain: int
    home_token: bytes  # 32 bytes
    scale: int  # home amount = SPL amount * scale
    vault: Pubkey  # the multisig's associated token account of the mint (native tokens' lock box)


@dataclass(frozen=True, slots=True)
class ParsedDispatch:
    """One message a transaction dispatches, before the adapter gives it its nonce."""

    sender: bytes  # bytes32
    memo: DispatchMemo
    token: str = ""  # symbol, for token dispatches


GUARD_OWNER = MEMO_PROGRAM_ID
"""Owner of every replay guard: Memo v2, immutable, never writes to or debits an account it owns."""
GUARD_SPACE = 1
"""Data bytes of a guard. An address others only sent lamports to stays system-owned and empty, so a guard
differs from it in owner and in size (either would do; both are checked); one byte costs 6,960 lamports of
rent more than none."""


def guard_seed(message_id: bytes) -> str:
    return bytes(message_id).hex()[:32]


def guard_address(member: Pubkey, message_id: bytes) -> Pubkey:
    """The replay-guard account of ``member`` for a message id (derived with the owner it is assigned to)."""
    return Pubkey.create_with_seed(member, guard_seed(message_id), GUARD_OWNER)


def is_guard(owner: Pubkey, data: bytes) -> bool:
    """Whether an account (its owner and data) is a replay guard: its lamports are never looked at, since
    anyone can send lamports to any address."""
    return owner == GUARD_OWNER and len(data) == GUARD_SPACE


def guard_instructions(fee_payer: Pubkey, member: Pubkey, message_id: bytes, lamports: int) -> list[Instruction]:
    """``member``'s guard for a message: the fee payer sends the rent (``lamports``), then ``member`` (signing)
    allocates ``GUARD_SPACE`` bytes owned by ``GUARD_OWNER``; fails if the guard already exists."""
    address = guard_address(member, message_id)
    return [
        system_transfer(SystemTransferParams(from_pubkey=fee_payer, to_pubkey=address, lamports=lamports)),
        allocate_with_seed(AllocateWithSeedParams(address=address, base=member, seed=guard_seed(message_id),
                                                  space=GUARD_SPACE, owner=GUARD_OWNER)),
    ]


def token_rules(domain: int, multisig: Pubkey, tokens: Mapping[str, SolanaTokenConfig]) -> dict[str, TokenRule]:
    """``TokenRule`` per symbol from ``SolanaChainConfig.tokens`` (validated: a wrapped token names its home)."""
    rules: dict[str, TokenRule] = {}
    for symbol, cfg in tokens.items():
        mint = Pubkey.from_string(cfg.mint)
        decimals = cfg.decimals
        if cfg.wrapped:
            if cfg.home_domain is None or cfg.home_token is None:
                raise ValueError(f"tokens.{symbol}: a wrapped token needs home_domain and home_token")
            home = bytes.fromhex(cfg.home_token.removeprefix("0x")).rjust(32, b"\0")
            home_decimals = decimals if cfg.home_decimals is None else cfg.home_decimals
            if home_decimals < decimals:
                raise ValueError(f"tokens.{symbol}: home_decimals below decimals is not supported")
            rules[symbol] = TokenRule(symbol, mint, decimals, True, int(cfg.home_domain), home,
                                      10 ** (home_decimals - decimals), get_associated_token_address(multisig, mint))
        else:
            rules[symbol] = TokenRule(symbol, mint, decimals, False, domain, bytes(mint), 1,
                                      get_associated_token_address(multisig, mint))
    return rules


SYSTEM_PROGRAM_ID = Pubkey.from_string("11111111111111111111111111111111")
_SYSTEM_TRANSFER = 2
_SYSTEM_TRANSFER_DATA = struct.Struct("<IQ")


def fee_paid(tx: VersionedTransaction, fee_account: Pubkey) -> int:
    """Lamports a transaction's top-level System ``Transfer`` instructions move to ``fee_account`` from any other
    account (``adapters.fee_account``: the gas payment of the messages it dispatches). Transfers made by programs
    (inner instructions) and other System instructions do not count."""
    message = tx.message
    keys = list(message.account_keys)
    total = 0
    for ix in message.instructions:
        if ix.program_id_index >= len(keys) or keys[ix.program_id_index] != SYSTEM_PROGRAM_ID:
            continue
        data, accounts = bytes(ix.data), bytes(ix.accounts)
        if len(data) != _SYSTEM_TRANSFER_DATA.size or len(accounts) < 2 or max(accounts[:2]) >= len(keys):
            continue
        opcode, lamports = _SYSTEM_TRANSFER_DATA.unpack(data)
        source, dest = keys[accounts[0]], keys[accounts[1]]
        if opcode == _SYSTEM_TRANSFER and dest == fee_account and source != fee_account:
            total += lamports
    return total


def gas_top_up(tx: VersionedTransaction) -> GasMemo | None:
    """The gas memo of a top-up (``adapters.fee_account``): a transaction whose memo instructions hold exactly one
    well-formed gas memo and no dispatch memo; ``None`` for any other transaction."""
    message = tx.message
    keys = list(message.account_keys)
    texts = []
    for ix in message.instructions:
        if ix.program_id_index < len(keys) and keys[ix.program_id_index] in MEMO_PROGRAMS:
            try:
                texts.append(bytes(ix.data).decode("utf-8"))
            except UnicodeDecodeError:
                continue
    gas = [t for t in texts if t.startswith(GAS_PREFIX)]
    if len(gas) != 1 or any(t.startswith(DISPATCH_PREFIX) for t in texts):
        return None
    try:
        return decode_gas_memo(gas[0])
    except MemoFormatError:
        return None


def _key(keys: Sequence[Pubkey], accounts: bytes, position: int) -> Pubkey:
    if position >= len(accounts) or accounts[position] >= len(keys):
        raise NotADispatch("instruction account out of range")
    return keys[accounts[position]]


class BridgeRules:
    """The dispatch and delivery rules of one Solana chain (pure: same inputs, same answer, on every node)."""

    def __init__(self, domain: int, bridge: Pubkey, multisig: Pubkey, tokens: Mapping[str, TokenRule],
                 remote_bridges: Mapping[int, bytes]) -> None:
        self.domain = Domain(domain)
        self.bridge = bridge
        self.multisig = multisig
        self.tokens = dict(tokens)
        self.remote_bridges = dict(remote_bridges)
        self._by_vault = {t.vault: t for t in self.tokens.values() if not t.wrapped}
        self._wrapped_by_mint = {t.mint: t for t in self.tokens.values() if t.wrapped}
        self._by_home = {(t.home_domain, t.home_token): t for t in self.tokens.values()}

    # ---- origin
    def parse_dispatch(self, tx: VersionedTransaction) -> list[ParsedDispatch]:
        """The messages a successful transaction dispatches, in instruction order; ``NotADispatch`` otherwise."""
        message = tx.message
        keys = list(message.account_keys)
        if self.bridge not in keys:
            raise NotBridgeTraffic("does not reference the bridge")
        memos: list[DispatchMemo] = []
        movements: list[tuple[TokenRule, int]] = []
        for ix in message.instructions:
            if ix.program_id_index >= len(keys):
                raise NotADispatch("program index out of range")
            program = keys[ix.program_id_index]
            data = bytes(ix.data)
            accounts = bytes(ix.accounts)
            if program in MEMO_PROGRAMS:
                try:
                    text = data.decode("utf-8")
                except UnicodeDecodeError:
                    continue
                if text.startswith(DISPATCH_PREFIX):
                    try:
                        memos.append(decode_dispatch_memo(text))
                    except MemoFormatError as exc:
                        raise NotADispatch(str(exc)) from exc
            elif program == TOKEN_PROGRAM_ID and data:
                moved = self._movement(keys, accounts, data)
                if moved is not None:
                    movements.append(moved)
        if not memos:
            raise NotBridgeTraffic("no dispatch memo")
        if movements:
            return [self._token_dispatch(memos, movements)]
        payer = keys[0]
        if payer == self.bridge:
            raise NotADispatch("the bridge itself cannot send plain messages")
        for memo in memos:
            if memo.destination == self.domain:
                raise NotADispatch("destination is this chain")
        return [ParsedDispatch(bytes(payer), memo) for memo in memos]

    def _movement(self, keys: Sequence[Pubkey], accounts: bytes, data: bytes) -> tuple[TokenRule, int] | None:
        opcode = data[0]
        if opcode in (_TRANSFER, _TRANSFER_CHECKED):
            if len(data) < 9:
                raise NotADispatch("short token instruction")
            dest = _key(keys, accounts, 1 if opcode == _TRANSFER else 2)
            token = self._by_vault.get(dest)
            if token is None:
                return None
            if opcode == _TRANSFER_CHECKED and _key(keys, accounts, 1) != token.mint:
                raise NotADispatch("transfer names another mint")
            return token, _U64.unpack_from(data, 1)[0]
        if opcode in (_BURN, _BURN_CHECKED):
            if len(data) < 9:
                raise NotADispatch("short token instruction")
            wrapped = self._wrapped_by_mint.get(_key(keys, accounts, 1))
            if wrapped is None:
                return None
            return wrapped, _U64.unpack_from(data, 1)[0]
        return None

    def _token_dispatch(self, memos: Sequence[DispatchMemo], movements: Sequence[tuple[TokenRule, int]]
                        ) -> ParsedDispatch:
        if len(movements) != 1 or len(memos) != 1:
            raise NotADispatch("a token dispatch holds exactly one movement and one memo")
        (token, moved), memo = movements[0], memos[0]
        remote = self.remote_bridges.get(int(memo.destination))
        if remote is None or memo.destination == self.domain:
            raise NotADispatch(f"no remote bridge for domain {memo.destination}")
        if memo.recipient != remote:
            raise NotADispatch("recipient is not the destination's bridge")
        try:
            body = TokenBody.decode(memo.body)
        except MemoFormatError as exc:
            raise NotADispatch(str(exc)) from exc
        if (body.home_domain, body.home_token) != (token.home_domain, token.home_token):
            raise NotADispatch("body names another token")
        if body.amount != moved * token.scale:
            raise NotADispatch(f"body amount {body.amount} differs from the moved {moved} x {token.scale}")
        return ParsedDispatch(bytes(self.bridge), memo, token.symbol)

    def canonical(self, parsed: ParsedDispatch, nonce: int) -> Message:
        return Message(MESSAGE_VERSION, nonce, self.domain, parsed.sender, parsed.memo.destination,
                       parsed.memo.recipient, parsed.memo.body)

    # ---- destination
    def payout(self, raw: bytes) -> tuple[MessageId, TokenRule, Pubkey, int]:
        """(id, token, recipient owner, SPL amount) a message pays out here; ``Undeliverable`` otherwise."""
        try:
            message = Message.decode(raw)
        except MessageFormatError as exc:
            raise Undeliverable("bad message", str(exc)) from exc
        if message.destination != self.domain:
            raise Undeliverable("wrong destination", f"message is for domain {message.destination}")
        if message.recipient != bytes(self.bridge):
            raise Undeliverable("unknown recipient", "only the bridge takes messages on this chain")
        expected = self.remote_bridges.get(int(message.origin))
        if expected is None or message.sender != expected:
            raise Undeliverable("unknown sender", f"sender 0x{message.sender.hex()} is not the bridge of "
                                                  f"domain {message.origin}")
        try:
            body = TokenBody.decode(message.body)
        except MemoFormatError as exc:
            raise Undeliverable("not a token message", str(exc)) from exc
        token = self._by_home.get((body.home_domain, body.home_token))
        if token is None:
            raise Undeliverable("unknown token", f"home {body.home_domain}/0x{body.home_token.hex()}")
        if body.amount % token.scale:
            raise Undeliverable("amount not divisible", f"{body.amount} is not a multiple of {token.scale}")
        amount = body.amount // token.scale
        if amount > U64_MAX:
            raise Undeliverable("amount too large", f"{amount} does not fit u64")
        return message.id, token, Pubkey(body.recipient), amount

    def delivery_instructions(self, raws: Sequence[bytes], *, fee_payer: Pubkey, signers: Sequence[Pubkey],
                              guard_lamports: int, priority_micro_lamports: int = 0
                              ) -> tuple[list[Instruction], list[MessageId]]:
        if not raws:
            raise Undeliverable("empty delivery")
        if not signers or len(set(signers)) != len(signers) or fee_payer in signers:
            raise Undeliverable("bad signers", "co-signers must be distinct and not the fee payer")
        ixs: list[Instruction] = []
        if priority_micro_lamports:
            ixs.append(set_compute_unit_price(priority_micro_lamports))
        ids: list[MessageId] = []
        for raw in raws:
            message_id, token, owner, amount = self.payout(raw)
            if message_id in ids:
                raise Undeliverable("duplicate message", "a message appears twice in one delivery")
            ids.append(message_id)
            ata = get_associated_token_address(owner, token.mint)
            ixs.append(create_idempotent_associated_token_account(fee_payer, owner, token.mint))
            if token.wrapped:
                ixs.append(mint_to(MintToParams(program_id=TOKEN_PROGRAM_ID, mint=token.mint, dest=ata,
                                                mint_authority=self.multisig, amount=amount, signers=list(signers))))
            else:
                ixs.append(transfer(TransferParams(program_id=TOKEN_PROGRAM_ID, source=token.vault, dest=ata,
                                                   owner=self.multisig, amount=amount, signers=list(signers))))
            for member in signers:
                ixs.extend(guard_instructions(fee_payer, member, message_id, guard_lamports))
        ixs.append(create_memo(MemoParams(program_id=MEMO_PROGRAM_ID, signer=fee_payer,
                                          message=encode_delivery_memo(ids).encode())))
        return ixs, ids

    def delivery_message(self, raws: Sequence[bytes], *, fee_payer: Pubkey, signers: Sequence[Pubkey],
                         blockhash: Hash, guard_lamports: int, priority_micro_lamports: int = 0
                         ) -> tuple[SolanaMessage, list[MessageId]]:
        """The delivery transaction's message (what every signer signs) and the ids it delivers."""
        ixs, ids = self.delivery_instructions(raws, fee_payer=fee_payer, signers=signers,
                                              guard_lamports=guard_lamports,
                                              priority_micro_lamports=priority_micro_lamports)
        message = SolanaMessage.new_with_blockhash(ixs, fee_payer, blockhash)
        size = transaction_size(message)
        if size > MAX_TX_SIZE:
            raise Undeliverable("transaction too large", f"{size} bytes > {MAX_TX_SIZE}; deliver fewer messages")
        return message, ids


def transaction_size(message: SolanaMessage) -> int:
    signatures = message.header.num_required_signatures
    prefix = 1 if signatures < 0x80 else 2
    return prefix + 64 * signatures + len(bytes(message))
