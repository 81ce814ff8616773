"""The global accountant (issue 12, defence in depth): a validator never attests nor co-signs a payout of more
than was locked for it, whatever else went wrong (a once-rule fooled, a wrapped token minted out of thin air).

Tokens and amounts are the TokenBridge's: a token is ``(home_domain, home_token)`` and every amount is in its home
units (``TokenBody.amount``), whatever the token's decimals on each chain. A message is a token transfer when its
sender is its origin's bridge (EVM ``token_bridge``, Solana ``bridge``, Cosmos ``vault``, from the config) and its
body is a ``TokenBody``; every other message is plain and not counted.

**The ledger** (``Ledger``), built only from messages this validator attested (its light client proved them):

* ``locked[token]``: transfers out of the token's home chain minus transfers into it: what the home bridge holds;
* ``outstanding[token][chain]`` for every other chain: transfers into it minus transfers out of it: the wrapped
  supply (or the escrow paid out) that chain may have. The outstanding amounts add up to ``locked``.

It is rebuilt from the validator's store at start (every message of each origin up to the index it signed:
``load``) and moved forward as the attester signs (``admit`` then ``commit``).

**Attest time** (``OriginAttester``, before it signs a new index): in nonce order, a transfer out of a non-home
chain may not exceed what is outstanding there, a transfer to the home chain may not exceed the lock. The attester
signs up to the message before the first refused one and no further (a checkpoint covers a prefix of the tree, so
the origin waits there, ``validator_accountant_blocked{origin}`` 1). It is re-evaluated every poll: a validator
that merely lagged on another origin (the lock not attested yet, as after a start on a fresh store) signs as soon
as it caught up. While another origin is not indexed to its finalized height or not attested to its index (and is
not stopped by the accountant itself), the wait is logged once as ``accountant_waiting`` (info); once none is and
the transfer still does not fit, it is refused: logged once as ``accountant_refused`` (error: token, chain, amount,
available, message id) and counted in ``validator_accountant_refused_total{origin,reason}``.

**Co-sign time** (``CosignService``, before it signs a Solana/Cosmos delivery; ``check_cosign``), per validator and
destination chain, from the chain's own answers:

* every message must be a token transfer to this chain, listed once;
* no message may be delivered already (asked of the chain), nor be in another co-signed transaction that can
  still land (a *reservation*, below): a message is paid at most once even if the once-rule wrongly allowed it;
* per token: paid out there (wrapped: ``token_supply`` x scale, the supply or the escrow paid out) + reserved +
  this payout <= outstanding there; at the token's home (native payouts out of the custodian's balance):
  reserved + this payout <= custodian's balance - ``locked`` (what must stay to back the wrapped tokens).

Each co-signature is recorded as a reservation (``accountant_cosigns``: the request, its ids and amounts) that
counts as paid out until the chain says the transaction can never land (``CosignLiveness.cosign_can_land``: Cosmos,
the vault's sequence passed the payload's; Solana, its blockhash expired or a message was delivered), never on the
requester's word (its ``expires_at``). Without that capability a reservation lasts until all its messages are
delivered. The same payload again is no new payout (one transaction lands at most once). Refusals are 403s
(``CosignRefused``, reason ``accountant: ...``), logged as ``accountant_cosign_refused`` and counted in
``validator_accountant_cosign_refused_total{chain,reason}``.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import structlog

from adapters.base import AdapterError, ChainAdapter, CosignLiveness, CosignRefused, CosignRequest
from adapters.bridge_memo import TokenBody
from adapters.capabilities import Bytes32Accounts, NativeTokenIds
from adapters.message import Message, MessageFormatError, MessageId, address_to_bytes32, id_hex, message_id
from config.settings import Settings
from relayer.daemon.metrics import Metrics
from relayer.store import CosignReservation, Store

log = structlog.get_logger("relayer.pipeline.accountant")

TokenKey = tuple[int, bytes]  # (home domain, home token as bytes32)


def token_text(token: TokenKey) -> str:
    return f"{token[0]}:0x{token[1].hex()}"


@dataclass(frozen=True, slots=True)
class TokenTransfer:
    """A token message as the accountant counts it."""

    id: MessageId
    origin: int
    nonce: int
    destination: int
    token: TokenKey
    amount: int  # home units

    @property
    def home(self) -> int:
        return self.token[0]


@dataclass(frozen=True, slots=True)
class Refusal:
    reason: str  # exceeds_outstanding | exceeds_locked
    chain: int  # where the amount is missing (the origin, or the home chain)
    available: int


@dataclass
class Ledger:
    """The accountant's arithmetic, no I/O: see the module docstring."""

    locked: dict[TokenKey, int] = field(default_factory=lambda: defaultdict(int))
    outstanding: dict[TokenKey, dict[int, int]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(int)))

    def refusal(self, t: TokenTransfer) -> Refusal | None:
        """Why ``t`` may not be attested now (None: it may)."""
        if t.origin != t.home:
            available = self.outstanding.get(t.token, {}).get(t.origin, 0)
            if t.amount > available:
                return Refusal("exceeds_outstanding", t.origin, available)
            if t.destination == t.home and t.amount > self.locked.get(t.token, 0):
                return Refusal("exceeds_locked", t.home, self.locked.get(t.token, 0))
        return None

    def apply(self, t: TokenTransfer) -> None:
        if t.origin == t.home:
            self.locked[t.token] += t.amount
        else:
            self.outstanding[t.token][t.origin] -= t.amount
        if t.destination == t.home:
            self.locked[t.token] -= t.amount
        else:
            self.outstanding[t.token][t.destination] += t.amount

    def snapshot(self) -> dict[str, Any]:
        """Every non-zero amount (for logs and for comparing two ledgers)."""
        return {
            "locked": {token_text(k): v for k, v in sorted(self.locked.items()) if v},
            "outstanding": {token_text(k): {c: v for c, v in sorted(per.items()) if v}
                            for k, per in sorted(self.outstanding.items()) if any(per.values())},
        }


@dataclass(frozen=True, slots=True)
class TokenPlace:
    """A token on a chain delivered by co-signatures: its symbol there, how many home units one local unit is,
    and whether it is native there (paid out of ``custodian``'s balance) or wrapped (its supply there, as the
    adapter's ``token_supply`` gives it, is what was paid out)."""

    symbol: str
    scale: int
    native: bool
    custodian: str = ""


@dataclass
class TokenDirectory:
    """What the accountant knows from the config: each chain's bridge, names, and where tokens are paid out."""

    bridges: dict[int, bytes]  # domain -> bytes32 of its bridge (the sender of its token messages)
    chain_names: dict[int, str] = field(default_factory=dict)
    places: dict[tuple[int, TokenKey], TokenPlace] = field(default_factory=dict)  # (chain domain, token) -> place
    symbols: dict[TokenKey, str] = field(default_factory=dict)

    def transfer(self, raw: bytes) -> TokenTransfer | None:
        """The token transfer ``raw`` makes, or None for a plain message (or bytes that are no message)."""
        try:
            message = Message.decode(raw)
        except MessageFormatError:
            return None
        bridge = self.bridges.get(int(message.origin))
        if bridge is None or message.sender != bridge:
            return None
        try:
            body = TokenBody.decode(message.body)
        except MessageFormatError:
            return None
        return TokenTransfer(message_id(raw), int(message.origin), message.nonce, int(message.destination),
                             (body.home_domain, body.home_token), body.amount)

    def token_label(self, token: TokenKey) -> str:
        return self.symbols.get(token) or token_text(token)

    def chain_label(self, domain: int) -> str:
        return self.chain_names.get(domain, str(domain))

    @classmethod
    def from_settings(cls, settings: Settings, adapters: Mapping[str, ChainAdapter]) -> TokenDirectory:
        """From the daemon's chains: EVM ``token_bridge`` and ``tokens`` (a token homed there is its address),
        Cosmos ``vault`` and ``tokens`` (wrapped: their configured home; native: ``sha256(denom)``), Solana
        ``bridge`` and ``tokens`` (wrapped: their home; native: the mint). Addresses and native tokens of non-EVM
        chains are turned into bytes32 by their adapter (``account_bytes32``, ``native_token_id``)."""
        directory = cls({})
        for name, chain in settings.chains.items():
            domain = chain.domain
            directory.chain_names[domain] = name
            if chain.family == "evm":
                if chain.token_bridge:
                    directory.bridges[domain] = address_to_bytes32(chain.token_bridge)
                for symbol, evm_token in chain.tokens.items():
                    if evm_token.bridged:
                        directory.symbols.setdefault((domain, address_to_bytes32(evm_token.address)), symbol)
                continue
            adapter = adapters[name]
            if not isinstance(adapter, Bytes32Accounts) or not isinstance(adapter, NativeTokenIds):
                raise TypeError(f"{name}: its adapter cannot turn account addresses and native tokens into bytes32")
            # where a native token waits while it is away: the Cosmos vault, the Solana bridge's multisig
            bridge, holder = (chain.vault, chain.vault) if chain.family == "cosmos" else (chain.bridge, chain.multisig)
            directory.bridges[domain] = adapter.account_bytes32(bridge)
            for symbol, token in chain.tokens.items():
                if token.wrapped:
                    key, scale = _home_of(token.home_domain, token.home_token, token.home_decimals, token.decimals)
                    directory.places[(domain, key)] = TokenPlace(symbol, scale, False)
                else:
                    key = (domain, adapter.native_token_id(symbol))
                    directory.places[(domain, key)] = TokenPlace(symbol, 1, True, holder)
                directory.symbols.setdefault(key, symbol)
        return directory


def _home_of(home_domain: int | None, home_token: str | None, home_decimals: int | None, decimals: int
             ) -> tuple[TokenKey, int]:
    if home_domain is None or home_token is None:  # the adapters refuse such a config at start-up
        raise ValueError("a wrapped token needs home_domain and home_token")
    token = bytes.fromhex(home_token.removeprefix("0x")).rjust(32, b"\0")
    return (int(home_domain), token), 10 ** ((decimals if home_decimals is None else home_decimals) - decimals)


@runtime_checkable
class SupplySource(Protocol):
    """What the co-sign check reads of a destination (``MessageSender`` has both)."""

    async def token_supply(self, symbol: str) -> int: ...

    async def token_balance(self, symbol: str, holder: str) -> int: ...


class GlobalAccountant:
    """One per validator process: the ledger of what it attested, and its co-signature reservations."""

    def __init__(self, directory: TokenDirectory, store: Store, metrics: Metrics, *,
                 clock: Callable[[], float] = time.time,
                 lagging: Callable[[], Iterable[int]] = lambda: ()) -> None:
        """``lagging()``: origins this process has not indexed to their finalized height or not attested to their
        indexed count yet."""
        self.directory = directory
        self.store = store
        self.metrics = metrics
        self.clock = clock
        self.ledger = Ledger()
        self.lagging = lagging
        # origin -> (transfer it stops at, refused (else waiting))
        self._refused: dict[int, tuple[MessageId, bool]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    # ---- the ledger: rebuilt from the store, moved forward by the attesters
    def load(self, attested: Mapping[int, int]) -> None:
        """Rebuild the ledger from every token message of each origin up to the index it was signed to."""
        ledger = Ledger()
        for origin, index in attested.items():
            transfers = self._transfers(origin, 0, index)
            if transfers is None:
                log.error("accountant_store_incomplete", origin=self.directory.chain_label(origin), index=index,
                          detail="the store lacks messages this validator signed; counted what it holds")
                transfers = self._transfers(origin, 0, index, complete=False) or []
            for t in transfers:
                ledger.apply(t)
        self.ledger = ledger
        self._publish(None)
        for origin in attested:
            self.metrics.set("validator_accountant_blocked", 0, origin=self.directory.chain_label(origin))
        log.info("accountant_loaded", attested={self.directory.chain_label(o): i for o, i in attested.items()},
                 **self.ledger.snapshot())

    def _transfers(self, origin: int, first: int, last: int, *, complete: bool = True) -> list[TokenTransfer] | None:
        """Token transfers of ``origin`` with ``first <= nonce <= last`` from the store; None if the store does not
        hold every message of that range (yet) or holds one whose bytes are not its id."""
        if last < first:
            return []
        bridge = self.directory.bridges.get(origin)
        if bridge is None:
            return []
        count, rows = self.store.messages_sent_by(origin, bridge, first, last + 1)
        if complete and count != last - first + 1:
            return None
        out = []
        for _nonce, mid, raw in rows:
            transfer = self.directory.transfer(raw)
            if transfer is None:
                continue
            if transfer.id != mid:
                log.error("accountant_store_mismatch", origin=self.directory.chain_label(origin),
                          message_id=id_hex(mid))
                return None
            out.append(transfer)
        return out

    async def admit(self, origin: int, first: int, last: int) -> tuple[int, list[TokenTransfer]]:
        """The highest nonce in ``first..last`` the attester may sign now (``first - 1``: none) and the transfers
        that signature counts (``commit`` them once it is signed). Stops before the first transfer that would pay
        out more than the ledger holds for it."""
        transfers = await self.store.aio.run(self._transfers, origin, first, last)  # reads the store
        if transfers is None:
            log.debug("accountant_waits_for_store", origin=self.directory.chain_label(origin), first=first, last=last)
            return first - 1, []
        if not transfers:
            return last, []
        trial = copy.deepcopy(self.ledger)
        admitted: list[TokenTransfer] = []
        for t in transfers:
            refusal = trial.refusal(t)
            if refusal is not None:
                self._note_refusal(t, refusal)
                return t.nonce - 1, admitted
            trial.apply(t)
            admitted.append(t)
            if origin in self._refused and self._refused[origin][0] == t.id:
                del self._refused[origin]
                self.metrics.set("validator_accountant_blocked", 0, origin=self.directory.chain_label(origin))
                log.info("accountant_caught_up", origin=self.directory.chain_label(origin),
                         message_id=id_hex(t.id), token=self.directory.token_label(t.token), amount=t.amount)
        return last, admitted

    def commit(self, transfers: Iterable[TokenTransfer]) -> None:
        """Count transfers the attester has just signed over."""
        touched: set[TokenKey] = set()
        for t in transfers:
            self.ledger.apply(t)
            touched.add(t.token)
        if touched:
            self._publish(touched)

    def _note_refusal(self, t: TokenTransfer, refusal: Refusal) -> None:
        """Log and count once per transfer: as waiting while other origins lag, as refused once none does."""
        origin = self.directory.chain_label(t.origin)
        # an origin stopped by the accountant itself attested all it can: waiting for it would be waiting forever
        behind = sorted(self.directory.chain_label(o) for o in set(self.lagging()) - set(self._refused) - {t.origin})
        seen = self._refused.get(t.origin)
        if seen is not None and seen[0] == t.id and (seen[1] or behind):
            return  # logged (and counted) already; re-checked every poll
        self._refused[t.origin] = (t.id, not behind)
        self.metrics.set("validator_accountant_blocked", 1, origin=origin)
        if behind:
            log.info("accountant_waiting", origin=origin, message_id=id_hex(t.id), nonce=t.nonce,
                     token=self.directory.token_label(t.token), amount=t.amount, available=refusal.available,
                     waiting_for=behind)
            return
        self.metrics.inc("validator_accountant_refused_total", origin=origin, reason=refusal.reason)
        log.error("accountant_refused", origin=origin, reason=refusal.reason,
                  token=self.directory.token_label(t.token), chain=self.directory.chain_label(refusal.chain),
                  amount=t.amount, available=refusal.available, message_id=id_hex(t.id), nonce=t.nonce,
                  destination=self.directory.chain_label(t.destination),
                  action="not attested: this origin's checkpoints stop before it until the amount is there")

    def _publish(self, tokens: set[TokenKey] | None) -> None:
        names = self.directory
        for token in (tokens if tokens is not None else set(self.ledger.locked) | set(self.ledger.outstanding)):
            label = names.token_label(token)
            self.metrics.set("validator_accountant_locked", self.ledger.locked.get(token, 0), token=label,
                             chain=names.chain_label(token[0]))
            for chain, amount in self.ledger.outstanding.get(token, {}).items():
                self.metrics.set("validator_accountant_outstanding", amount, token=label,
                                 chain=names.chain_label(chain))

    # ---- co-signatures
    def _lock(self, chain: str) -> asyncio.Lock:
        return self._locks.setdefault(chain, asyncio.Lock())

    def _cosign_refused(self, validator: str, chain: str, reason: str, detail: str, **fields: object) -> CosignRefused:
        self.metrics.inc("validator_accountant_cosign_refused_total", chain=chain, reason=reason)
        log.error("accountant_cosign_refused", chain=chain, validator=validator, reason=reason, detail=detail[:300],
                  **fields)
        return CosignRefused(detail, chain=chain, reason=f"accountant: {reason.replace('_', ' ')}")

    async def check_cosign(self, validator: str, adapter: ChainAdapter, request: CosignRequest) -> None:
        """Raise ``CosignRefused`` unless co-signing ``request`` (already checked to deliver exactly its messages,
        all attested) keeps every message paid at most once and every token's payouts on this chain within what
        was attested for it; then reserve it. See the module docstring."""
        chain = adapter.name
        transfers: list[TokenTransfer] = []
        for i, raw in enumerate(request.messages):
            t = self.directory.transfer(raw)
            if t is None or t.destination != adapter.domain:
                raise self._cosign_refused(validator, chain, "not_a_token_transfer",
                                           f"messages[{i}] is not a token transfer to {chain} the accountant counts")
            transfers.append(t)
        ids = [t.id for t in transfers]
        if len(set(ids)) != len(ids):
            raise self._cosign_refused(validator, chain, "duplicate_message",
                                       "a message is listed twice in one delivery")
        digest = hashlib.sha256(request.payload).hexdigest()
        async with self._lock(chain):
            open_rows = await self.store.aio.open_reservations(validator, chain)
            if any(r.payload_sha256 == digest for r in open_rows):
                return  # the same transaction again: it lands at most once and is counted already
            try:
                live = await self._still_live(adapter, open_rows)
                delivered = await adapter.delivered(ids)
                rooms = {token: await self._room(adapter, token, live) for token in {t.token for t in transfers}}
            except AdapterError as exc:
                raise self._cosign_refused(validator, chain, "unverifiable",
                                           f"could not read what {chain} paid out: {exc}") from exc
            for t, done in zip(transfers, delivered, strict=True):
                if done:
                    raise self._cosign_refused(validator, chain, "already_paid",
                                               f"message {id_hex(t.id)} is already delivered on {chain}",
                                               message_id=id_hex(t.id))
            reserved = {i for r in live for i in r.ids()}
            for t in transfers:
                if t.id in reserved:
                    raise self._cosign_refused(validator, chain, "payout_pending",
                                               f"message {id_hex(t.id)} is in another co-signed transaction "
                                               "that can still land", message_id=id_hex(t.id))
            for token, room in rooms.items():
                if room is None:
                    raise self._cosign_refused(validator, chain, "unknown_token",
                                               f"no payout of {token_text(token)} on {chain} is known to the "
                                               "accountant")
                used, available = room
                payout = sum(t.amount for t in transfers if t.token == token)
                if used + payout > available:
                    raise self._cosign_refused(
                        validator, chain, "exceeds_attested",
                        f"paying {payout} more of {self.directory.token_label(token)} on {chain} would make "
                        f"{used + payout}, above the {available} attested there",
                        token=self.directory.token_label(token),
                        amount=payout, paid_and_reserved=used, available=available,
                        message_ids=[id_hex(i) for i in ids])
            await self._reserve(validator, chain, digest, request, transfers)

    async def _still_live(self, adapter: ChainAdapter, rows: list[CosignReservation]) -> list[CosignReservation]:
        """The reservations whose transaction may still land; the others are settled (the chain's supply now
        counts whatever they paid)."""
        if not rows:
            return []
        if isinstance(adapter, CosignLiveness):
            liveness = adapter

            async def can_land(row: CosignReservation) -> bool:
                return await liveness.cosign_can_land(row.cosign_request())
        else:
            async def can_land(row: CosignReservation) -> bool:
                return not all(await adapter.delivered(row.ids()))

        verdicts = await asyncio.gather(*(can_land(r) for r in rows))
        dead = [r for r, alive in zip(rows, verdicts, strict=True) if not alive]
        if dead:
            await self.store.aio.settle_reservations(dead, at=self.clock())
        return [r for r, alive in zip(rows, verdicts, strict=True) if alive]

    async def _room(self, adapter: ChainAdapter, token: TokenKey, live: list[CosignReservation]
                    ) -> tuple[int, int] | None:
        """(paid out or reserved, what may be) for ``token`` on ``adapter``'s chain, in home units; None if the
        accountant does not know how the token is paid out there."""
        place = self.directory.places.get((int(adapter.domain), token))
        if place is None or not isinstance(adapter, SupplySource):
            return None
        reserved = sum(r.amount(token_text(token)) for r in live)
        if place.native:  # at home: the custodian keeps what backs the wrapped tokens elsewhere
            held = await adapter.token_balance(place.symbol, place.custodian) * place.scale
            return reserved, held - self.ledger.locked.get(token, 0)
        paid = await adapter.token_supply(place.symbol) * place.scale
        return paid + reserved, self.ledger.outstanding.get(token, {}).get(int(adapter.domain), 0)

    async def _reserve(self, validator: str, chain: str, digest: str, request: CosignRequest,
                       transfers: list[TokenTransfer]) -> None:
        amounts: dict[str, int] = defaultdict(int)
        for t in transfers:
            amounts[token_text(t.token)] += t.amount
        ids = [t.id for t in transfers]
        await self.store.aio.reserve_cosign(validator, chain, digest, request, ids, amounts, at=self.clock())
