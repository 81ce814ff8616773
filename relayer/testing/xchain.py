"""``XChain``: what a test holds as the ``xchain`` fixture. Everything it says about delivery is read from the
destination chain (its mailbox's ``delivered`` and ``Process`` events), never from the relayer's own records."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from adapters.base import Height, MessageDispatcher
from adapters.capabilities import Bytes32Accounts, LiquidityPools
from adapters.message import Domain, MessageId, address_to_bytes32
from config.settings import TokenConfig
from relayer.testing.chains import Account, ChainInfo, XChainError
from relayer.testing.clients import ChainClients
from relayer.testing.session import XChainSession

SEND_TIMEOUT_S = 120.0  # a dispatch or a token transfer waits for its inclusion
POLL_S = 0.1


@dataclass(frozen=True)
class SentMessage:
    """A message the test sent through the fixture. ``from_height``: the destination's height just before the
    dispatch, where its ``Process`` events are counted from."""

    id: str
    origin: str
    destination: str
    what: str
    from_height: int


class XChain:
    """The session's devnet as a test sees it: ``chains`` by name, sending, waiting for and checking deliveries,
    ``reset``, deploying contracts, mining and warping time. Messages are named by their 0x-hex id."""

    def __init__(self, session: XChainSession) -> None:
        self.session = session
        self.chains: dict[str, ChainInfo] = session.chains()
        self.sent: list[SentMessage] = []

    @property
    def api_url(self) -> str:
        """The daemon's HTTP API (the routing API, the explorer, ``/v1/messages``)."""
        return self.session.api_url

    @property
    def _clients(self) -> ChainClients:
        return self.session.clients

    # ---------------------------------------------------------------- sending
    def send_message(self, origin: str, destination: str, recipient: str | bytes | None = None,
                     body: bytes | str = b"", *, sender: int = 0) -> str:
        """Dispatch ``body`` from ``origin`` (signed by its ``accounts[sender]``) to ``recipient`` on the EVM chain
        ``destination``: an address, a name of ``chains[destination].contracts``, or None for its TestRecipient.
        Returns once the dispatch is mined; the message id."""
        if self._chain(destination).family != "evm":
            raise XChainError(f"{destination} ({self._chain(destination).family}) takes token transfers only: "
                              "send_token")
        recipient32 = self._recipient32(destination, recipient if recipient is not None else "test_recipient")
        payload = body.encode() if isinstance(body, str) else bytes(body)
        origin_adapter, key, domain = self._clients.sender(origin), self._key(origin, sender), self._domain(destination)

        async def dispatch() -> MessageId:
            _tx, ids = await origin_adapter.dispatch_messages(key, domain, recipient32, [payload])
            return ids[0]

        return self._send(origin, destination, "message", dispatch)

    def send_token(self, origin: str, destination: str, symbol: str, amount: Decimal | str | int,
                   recipient: str | bytes | None = None, *, sender: int = 0) -> str:
        """Bridge ``amount`` whole tokens (decimals allowed) of ``symbol`` from ``origin``'s ``accounts[sender]``
        to ``recipient`` (default: ``destination``'s first account), through the token bridge, or the liquidity
        pools when both chains pool the token (USDC). Returns once the transfer is mined; the message id."""
        units = self._units(origin, symbol, amount)
        recipient32 = self._recipient32(destination, recipient or self._chain(destination).accounts[0].address)
        key, domain, pooled = self._key(origin, sender), self._domain(destination), self._pooled(origin, destination,
                                                                                               symbol)
        origin_adapter = self._clients.sender(origin)

        async def transfer() -> MessageId:
            if pooled is not None:
                return (await pooled.pool_deposit(key, symbol, units, domain, recipient32))[1]
            return (await origin_adapter.send_token(key, symbol, units, domain, recipient32))[1]

        return self._send(origin, destination, f"{amount} {symbol}", transfer)

    def _send(self, origin: str, destination: str, what: str, send: Callable[[], Awaitable[MessageId]]) -> str:
        dest = self._clients.adapter(destination)

        async def go() -> tuple[MessageId, Height]:
            height = await dest.latest_height()
            return await send(), height

        mid, height = self._clients.run(go(), SEND_TIMEOUT_S)
        sent = SentMessage("0x" + bytes(mid).hex(), origin, destination, f"{what} {origin} -> {destination}",
                           int(height))
        self.sent.append(sent)
        self.session.dirty = True
        return sent.id

    # ---------------------------------------------------------------- delivery, read from the destination chain
    def delivered(self, message_id: str, destination: str | None = None) -> bool:
        """Whether the destination's mailbox shows the message processed."""
        sent = self._sent(message_id, destination)
        dest = self._clients.adapter(sent.destination)
        return bool(self._clients.run(dest.delivered([_mid(message_id)]), 30)[0])

    def wait_delivered(self, message_id: str, timeout: float = 60.0, *, destination: str | None = None) -> None:
        """Poll the destination chain until the message is delivered; ``AssertionError`` with its timeline and the
        daemon's log after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not self.delivered(message_id, destination):
            if time.monotonic() > deadline:
                sent = self._sent(message_id, destination)
                raise AssertionError(f"message {message_id} ({sent.what}) not delivered on {sent.destination} within "
                                     f"{timeout:.0f} s\n{self.timeline(message_id)}")
            time.sleep(POLL_S)

    def delivered_count(self, message_id: str, destination: str | None = None) -> int:
        """How many ``Process`` events for the message the destination's mailbox emitted since it was sent."""
        sent = self._sent(message_id, destination)
        dest = self._clients.adapter(sent.destination)
        if not isinstance(dest, MessageDispatcher):
            raise XChainError(f"{sent.destination} cannot list the messages it processed")

        async def count() -> int:
            processed = await dest.processed_messages(Height(sent.from_height), await dest.latest_height())
            return sum(1 for mid, _height in processed if bytes(mid) == _mid(message_id))

        return self._clients.run(count(), 60)

    def assert_delivered_once(self, message_id: str, *, destination: str | None = None) -> None:
        """Exactly one ``Process`` event for the message on its destination, read from the chain; otherwise
        ``AssertionError`` with its timeline."""
        count = self.delivered_count(message_id, destination)
        if count != 1:
            sent = self._sent(message_id, destination)
            raise AssertionError(f"message {message_id} ({sent.what}) was processed {count} times on "
                                 f"{sent.destination}, not once\n{self.timeline(message_id)}")

    def balance(self, chain: str, symbol: str, holder: str) -> Decimal:
        """``holder``'s balance of ``symbol`` on ``chain`` in whole tokens, read from the chain."""
        units = self._clients.run(self._clients.sender(chain).token_balance(symbol, holder), 30)
        return Decimal(units).scaleb(-self._decimals(chain, symbol))

    # ---------------------------------------------------------------- the devnet
    def reset(self) -> float:
        """Back to the session's baseline: chains, store and daemon (see ``XChainSession.reset``); the seconds it
        took. Messages sent before stay in ``sent`` (for the failure report), but their chains' state is gone."""
        return self.session.reset()

    def deploy(self, chain: str, artifact: str | Path, *args: Any, contract: str | None = None,
               sender: int = 0) -> str:
        """Deploy a contract on the EVM chain ``chain`` from ``accounts[sender]``: ``artifact`` is a ``.sol`` file
        (needs solcjs; ``contract`` picks one of several), an artifact ``.json`` (abi and bytecode), or one of
        this project's artifact names. Returns its checksum address."""
        from relayer.testing import deploy

        info = self._evm(chain, "deploy")
        return deploy.deploy(info.rpc_url, self._account(chain, sender).address,
                             deploy.load_contract(artifact, contract), args)

    def mine(self, chain: str, blocks: int = 1) -> int:
        """Mine ``blocks`` blocks on the EVM chain ``chain`` at once (moves its finality along); its new height.
        The validators' beacon light client publishes at most 10 blocks a second, so attestations catch up with
        a big jump only gradually."""
        from adapters.evm.devnet import rpc_call

        url = self._evm(chain, "mine").rpc_url
        rpc_call(url, "anvil_mine", [hex(blocks)])
        return int(rpc_call(url, "eth_blockNumber"), 16)

    def warp(self, chain: str, seconds: int) -> None:
        """Move the EVM chain ``chain``'s clock ``seconds`` ahead (``evm_increaseTime``) and mine a block with it."""
        from adapters.evm.devnet import rpc_call

        url = self._evm(chain, "warp").rpc_url
        rpc_call(url, "evm_increaseTime", [hex(seconds)])
        rpc_call(url, "evm_mine")

    # ---------------------------------------------------------------- what the failure report shows
    def timeline(self, message_id: str) -> str:
        """The message as ``relayer messages show`` prints it, and its timeline from the daemon."""
        from relayer.testing.report import message_report

        what = next((s.what for s in self.sent if s.id == message_id.lower()), "not sent through this fixture")
        return message_report(*self._report_sources(), [(message_id.lower(), what)])

    def report(self) -> str:
        """Every message the test sent, as ``timeline`` shows them."""
        from relayer.testing.report import message_report

        return message_report(*self._report_sources(), [(s.id, s.what) for s in self.sent])

    def _report_sources(self) -> tuple[str, str, dict[int, str]]:
        settings = self._clients.settings
        return settings.store.url, self.api_url, {c.domain: n for n, c in settings.chains.items()}

    def daemon_log(self, lines: int = 50) -> str:
        return self.session.daemon.tail(lines)

    # ---------------------------------------------------------------- helpers
    def _chain(self, name: str) -> ChainInfo:
        if name not in self.chains:
            raise XChainError(f"no devnet chain {name!r}; chains: {', '.join(self.chains)} (families of the session: "
                              f"{', '.join(self.session.families)}: ask for more with @pytest.mark.xchain(families=))")
        return self.chains[name]

    def _evm(self, name: str, what: str) -> ChainInfo:
        chain = self._chain(name)
        if chain.family != "evm":
            raise XChainError(f"{what} works on EVM chains (anvil); {name} is {chain.family}, whose devnet makes "
                              "blocks on its own clock")
        return chain

    def _domain(self, name: str) -> Domain:
        return Domain(self._chain(name).domain)

    def _account(self, chain: str, sender: int) -> Account:
        accounts = self._chain(chain).accounts
        if not 0 <= sender < len(accounts):
            raise XChainError(f"{chain} has {len(accounts)} funded accounts; no sender {sender}")
        return accounts[sender]

    def _key(self, chain: str, sender: int) -> str:
        return self._account(chain, sender).private_key  # a public devnet test key

    def _recipient32(self, chain: str, recipient: str | bytes) -> bytes:
        if isinstance(recipient, bytes):
            return recipient if len(recipient) == 32 else address_to_bytes32(recipient)
        address = self._chain(chain).contracts.get(recipient, recipient)
        dest = self._clients.adapter(chain)
        return dest.account_bytes32(address) if isinstance(dest, Bytes32Accounts) else address_to_bytes32(address)

    def _decimals(self, chain: str, symbol: str) -> int:
        tokens = self._clients.settings.chains[self._chain(chain).name].tokens
        if symbol not in tokens:
            raise XChainError(f"no token {symbol!r} on {chain}; tokens: {', '.join(tokens)}")
        return tokens[symbol].decimals

    def _units(self, chain: str, symbol: str, amount: Decimal | str | int) -> int:
        try:
            units = Decimal(str(amount)).scaleb(self._decimals(chain, symbol))
        except InvalidOperation:
            raise XChainError(f"amount {amount!r} is not a number") from None
        if not units.is_finite() or units <= 0 or units != units.to_integral_value():
            raise XChainError(f"amount {amount} of {symbol} on {chain} must be positive, in at most "
                              f"{self._decimals(chain, symbol)} decimals")
        return int(units)

    def _pooled(self, origin: str, destination: str, symbol: str) -> LiquidityPools | None:
        """The origin's pools when both chains pool ``symbol`` (the fast route), else None (the token bridge)."""
        chains = self._clients.settings.chains
        here, there = chains[origin].tokens.get(symbol), chains[destination].tokens.get(symbol)
        adapter = self._clients.adapter(origin)
        if (isinstance(here, TokenConfig) and isinstance(there, TokenConfig) and here.pool and there.pool
                and isinstance(adapter, LiquidityPools)):
            return adapter
        return None

    def _sent(self, message_id: str, destination: str | None) -> SentMessage:
        found = next((s for s in self.sent if s.id == message_id.lower()), None)
        if found is not None:
            return found
        if destination is None:
            raise XChainError(f"message {message_id} was not sent through this fixture: pass destination=")
        # dispatched by the test's own contract: from now on the fixture follows it (a failed test's report shows it)
        found = SentMessage(message_id.lower(), "?", destination, f"sent by the test's own code -> {destination}", 0)
        self.sent.append(found)
        return found


def _mid(message_id: str) -> MessageId:
    raw = bytes.fromhex(message_id.removeprefix("0x"))
    if len(raw) != 32:
        raise XChainError(f"{message_id!r} is not a 0x-hex 32-byte message id")
    return MessageId(raw)
