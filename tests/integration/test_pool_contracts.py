"""PoolToken and LiquidityPool (issue 16, netting opposite flows) against one bare anvil.

Two cores (Mailbox, ISM, ...) on the same chain stand in for domains A and B; each domain gets its own PoolToken
(the token issued natively on both) and its own LiquidityPool wired to the real Mailbox of its domain, so
deposit() and settle() dispatch real messages. Delivery plays the validators' part: the test reads the Dispatch
log, impersonates the destination's Mailbox (anvil_impersonateAccount) and calls the destination pool's
handle() with the message's origin, sender and body, exactly as Mailbox.process would.

Epochs are EPOCH seconds; every test starts at the beginning of a fresh epoch and closes it with evm_increaseTime.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from web3 import HTTPProvider, Web3
from web3.exceptions import ContractLogicError

from adapters.evm import deploy
from adapters.evm.contracts import load_artifact
from adapters.message import Message, address_to_bytes32, keccak256
from tests.integration.anvil import start_anvil

pytestmark = pytest.mark.integration

# anvil's well-known dev key 0 (mnemonic "test test ... junk"). PUBLIC DEVNET TEST KEY, worthless anywhere else.
DEPLOYER_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
A, B, UNKNOWN = 2000, 3000, 4242
EPOCH = 3600
SUPPLY = 10**12  # 1,000,000 USDC (6 decimals) per chain
LIQUIDITY = 10_000
USER_FUNDS = 100_000
FILL, SETTLE = 1, 2
FILL_TYPES = ["uint8", "uint64", "bytes32", "uint256"]
SETTLE_TYPES = ["uint8", "uint64", "uint256", "uint256"]
NONE, PENDING, DONE = 0, 1, 2


# ---------------------------------------------------------------------------------------------- helpers


def tx(w3: Web3, fn: Any, sender: str) -> dict[str, Any]:
    receipt = dict(w3.eth.wait_for_transaction_receipt(fn.transact({"from": sender}), timeout=30, poll_latency=0.02))
    assert receipt["status"] == 1, f"transaction reverted: {receipt}"
    return receipt


def error_selector(name: str) -> str:
    for contract in ("LiquidityPool", "PoolToken"):
        for entry in load_artifact(contract).abi:
            if entry.get("type") == "error" and entry["name"] == name:
                sig = f"{name}({','.join(i['type'] for i in entry['inputs'])})"
                return "0x" + keccak256(sig.encode())[:4].hex()
    raise KeyError(name)


def expect_revert(fn: Any, sender: str, error: str, args: tuple[list[str], list[Any]] | None = None) -> None:
    """``fn`` (eth_call from ``sender``) reverts with custom error ``error`` (and these ABI-encoded ``args``)."""
    with pytest.raises(ContractLogicError) as info:
        fn.call({"from": sender})
    data = info.value.data
    assert isinstance(data, str) and data.startswith(error_selector(error)), f"expected {error}, got {data!r}"
    if args is not None:
        assert bytes.fromhex(data[10:]) == abi_encode(*args), f"{error} arguments: {data}"


def events(contract: Any, name: str, receipt: dict[str, Any]) -> list[dict[str, Any]]:
    """The decoded ``name`` events ``contract`` itself emitted in ``receipt`` (args only)."""
    event = getattr(contract.events, name)()
    topic = bytes.fromhex(str(event.topic).removeprefix("0x"))
    out = []
    for log in receipt["logs"]:
        if log["address"] == contract.address and bytes(log["topics"][0]) == topic:
            out.append(dict(event.process_log(log)["args"]))
    return out


def dispatched(receipt: dict[str, Any], mailbox: str) -> list[Message]:
    """The messages ``mailbox`` dispatched in ``receipt``."""
    topic = keccak256(b"Dispatch(bytes32,uint32,bytes)")
    out = []
    for log in receipt["logs"]:
        if log["address"] == mailbox and bytes(log["topics"][0]) == topic:
            (raw,) = abi_decode(["bytes"], bytes(log["data"]))
            out.append(Message.decode(raw))
    return out


@dataclass
class Side:
    """One domain: its core, token and pool."""

    domain: int
    mailbox: str
    token: Any
    pool: Any

    @property
    def pool32(self) -> bytes:
        return address_to_bytes32(self.pool.address)

    def balance(self, who: str | None = None) -> int:
        return int(self.token.functions.balanceOf(who or self.pool.address).call())

    def supply(self) -> int:
        return int(self.token.functions.totalSupply().call())

    def settlement(self, origin: int, epoch: int) -> list[Any]:
        return list(self.pool.functions.settlementIn(origin, epoch).call())


@dataclass
class World:
    w3: Web3
    deployer: str
    user: str
    payee: str
    stranger: str
    a: Side
    b: Side

    def other(self, side: Side) -> Side:
        return self.b if side is self.a else self.a

    def deliver(self, dest: Side, origin: int, sender: bytes, body: bytes) -> dict[str, Any]:
        """``dest``'s Mailbox calls ``dest.pool.handle`` (what Mailbox.process does once the ISM accepts)."""
        return tx(self.w3, dest.pool.functions.handle(origin, sender, body), dest.mailbox)

    def relay(self, receipt: dict[str, Any], origin: Side) -> list[dict[str, Any]]:
        """Deliver every message ``origin``'s Mailbox dispatched in ``receipt``; their receipts."""
        out = []
        for msg in dispatched(receipt, origin.mailbox):
            dest = self.other(origin)
            assert (msg.origin, msg.destination, msg.recipient) == (origin.domain, dest.domain, dest.pool32)
            out.append(self.deliver(dest, msg.origin, msg.sender, msg.body))
        return out

    def deposit(self, origin: Side, amount: int, recipient: str | None = None) -> dict[str, Any]:
        dest = self.other(origin)
        to = address_to_bytes32(recipient or self.payee)
        return tx(self.w3, origin.pool.functions.deposit(dest.domain, to, amount), self.user)

    def fresh_epoch(self) -> int:
        """Move the chain to the first second of a new epoch; returns it."""
        now = int(self.w3.eth.get_block("latest")["timestamp"])
        start = (now // EPOCH + 1) * EPOCH
        self.w3.provider.make_request("evm_setNextBlockTimestamp", [start])  # type: ignore[arg-type]
        self.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
        assert int(self.a.pool.functions.currentEpoch().call()) == start // EPOCH
        return start // EPOCH

    def close_epoch(self) -> None:
        self.w3.provider.make_request("evm_increaseTime", [EPOCH])  # type: ignore[arg-type]
        self.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def chain() -> Iterator[tuple[Web3, dict[int, dict[str, str]]]]:
    node = start_anvil(31390)
    try:
        w3 = Web3(HTTPProvider(node.url, request_kwargs={"timeout": 30}))
        cores = {d: deploy.deploy_core(w3, DEPLOYER_KEY, d) for d in (A, B)}
        for core in cores.values():  # the mailboxes play "the validators' delivery": they need gas
            w3.provider.make_request("anvil_impersonateAccount", [core["mailbox"]])  # type: ignore[arg-type]
            w3.provider.make_request("anvil_setBalance", [core["mailbox"], hex(10**20)])  # type: ignore[arg-type]
        yield w3, cores
    finally:
        node.stop()


def _deploy(w3: Web3, name: str, sender: str, *args: Any) -> Any:
    artifact = load_artifact(name)
    factory = w3.eth.contract(abi=artifact.abi_list, bytecode=artifact.bytecode)
    receipt = tx(w3, factory.constructor(*args), sender)
    return w3.eth.contract(address=receipt["contractAddress"], abi=artifact.abi_list)


def _side(w3: Web3, core: dict[str, str], domain: int, deployer: str, minter: bool) -> Side:
    token = _deploy(w3, "PoolToken", deployer, "USD Coin", "USDC", 6, SUPPLY)
    pool = _deploy(w3, "LiquidityPool", deployer, core["mailbox"], domain, token.address, EPOCH)
    if minter:
        tx(w3, token.functions.setMinter(pool.address, True), deployer)
    tx(w3, token.functions.approve(pool.address, 2**256 - 1), deployer)
    tx(w3, pool.functions.addLiquidity(LIQUIDITY), deployer)
    return Side(domain, core["mailbox"], token, pool)


def make_world(chain: tuple[Web3, dict[int, dict[str, str]]], *, minters: bool = True) -> World:
    w3, cores = chain
    accounts: list[str] = list(w3.eth.accounts)
    deployer, user, payee, stranger = accounts[0], accounts[3], accounts[4], accounts[5]
    a = _side(w3, cores[A], A, deployer, minters)
    b = _side(w3, cores[B], B, deployer, minters)
    for side, remote in ((a, b), (b, a)):
        tx(w3, side.pool.functions.enrollRemotePool(remote.domain, remote.pool32), deployer)
        tx(w3, side.token.functions.transfer(user, USER_FUNDS), deployer)
        tx(w3, side.token.functions.approve(side.pool.address, 2**256 - 1), user)
    return World(w3, deployer, user, payee, stranger, a, b)


@pytest.fixture
def world(chain: tuple[Web3, dict[int, dict[str, str]]]) -> World:
    return make_world(chain)


# ---------------------------------------------------------------------------------------------- tests


def test_pool_token_roles(world: World) -> None:
    token, owner, stranger = world.a.token, world.deployer, world.stranger
    assert token.functions.owner().call() == owner
    assert token.functions.balanceOf(owner).call() == SUPPLY - LIQUIDITY - USER_FUNDS
    assert (token.functions.name().call(), token.functions.symbol().call(), token.functions.decimals().call()) == (
        "USD Coin", "USDC", 6)
    assert token.functions.isMinter(world.a.pool.address).call() is True
    assert token.functions.isMinter(stranger).call() is False
    expect_revert(token.functions.setMinter(stranger, True), stranger, "NotOwner")
    expect_revert(token.functions.mint(stranger, 1), stranger, "NotMinter")
    expect_revert(token.functions.burn(stranger, 0), stranger, "NotMinter")
    expect_revert(token.functions.burn(owner, 1), owner, "NotMinter")  # the owner mints but is no minter
    receipt = tx(world.w3, token.functions.setMinter(stranger, True), owner)
    assert events(token, "MinterSet", receipt) == [{"minter": stranger, "allowed": True}]
    assert token.functions.isMinter(stranger).call() is True
    supply = world.a.supply()
    tx(world.w3, token.functions.mint(stranger, 50), stranger)
    tx(world.w3, token.functions.mint(stranger, 5), owner)
    expect_revert(token.functions.burn(owner, 1), stranger, "BurnOthers")
    tx(world.w3, token.functions.burn(stranger, 20), stranger)
    assert world.a.balance(stranger) == 35 and world.a.supply() == supply + 35
    tx(world.w3, token.functions.setMinter(stranger, False), owner)
    expect_revert(token.functions.burn(stranger, 1), stranger, "NotMinter")
    expect_revert(token.functions.mint(stranger, 1), stranger, "NotMinter")


def test_deposit_records_and_dispatches_a_fill(world: World) -> None:
    a, b = world.a, world.b
    e = world.fresh_epoch()
    recipient = address_to_bytes32(world.payee)
    before_user, before_pool = a.balance(world.user), a.balance()
    expected_id = a.pool.functions.deposit(B, recipient, 700).call({"from": world.user})
    receipt = world.deposit(a, 700)
    world.deposit(a, 300)
    assert a.pool.functions.sent(B, e).call() == 1000 and a.pool.functions.sentCount(B, e).call() == 2
    assert a.pool.functions.sent(B, e + 1).call() == 0 and a.pool.functions.sent(A, e).call() == 0
    assert a.balance(world.user) == before_user - 1000 and a.balance() == before_pool + 1000
    assert a.pool.functions.freeLiquidity().call() == LIQUIDITY + 1000
    (msg,) = dispatched(receipt, a.mailbox)
    assert (msg.origin, msg.sender, msg.destination, msg.recipient) == (A, a.pool32, B, b.pool32)
    assert msg.body == abi_encode(FILL_TYPES, [FILL, e, recipient, 700])
    assert msg.id == expected_id
    assert events(a.pool, "Deposited", receipt) == [
        {"messageId": msg.id, "destination": B, "epoch": e, "recipient": recipient, "amount": 700}]
    # refusals, before anything moves
    expect_revert(a.pool.functions.deposit(UNKNOWN, recipient, 1), world.user, "NoRemotePool",
                  (["uint32"], [UNKNOWN]))
    expect_revert(a.pool.functions.deposit(B, recipient, 0), world.user, "ZeroAmount")
    expect_revert(a.pool.functions.deposit(B, b"\0" * 32, 1), world.user, "InvalidRecipient")
    expect_revert(a.pool.functions.deposit(B, b"\1" * 32, 1), world.user, "InvalidRecipient")
    expect_revert(a.pool.functions.enrollRemotePool(UNKNOWN, recipient), world.user, "NotOwner")
    assert a.pool.functions.sentCount(B, e).call() == 2


def test_fill_is_paid_when_the_pool_is_liquid(world: World) -> None:
    a, b = world.a, world.b
    e = world.fresh_epoch()
    (delivery,) = world.relay(world.deposit(a, 2500), a)
    assert b.balance(world.payee) == 2500 and b.balance() == LIQUIDITY - 2500
    assert b.pool.functions.received(A, e).call() == 2500 and b.pool.functions.receivedCount(A, e).call() == 1
    assert events(b.pool, "FillPaid", delivery) == [
        {"origin": A, "epoch": e, "recipient": world.payee, "amount": 2500}]
    assert events(b.pool, "FillDeferred", delivery) == []
    assert b.pool.functions.deferredCount().call() == 0 and b.pool.functions.deferredTotal().call() == 0
    assert b.pool.functions.freeLiquidity().call() == LIQUIDITY - 2500


def test_fill_is_deferred_when_short_then_released(world: World) -> None:
    a, b = world.a, world.b
    e = world.fresh_epoch()
    (big,) = world.relay(world.deposit(a, LIQUIDITY + 500), a)  # the message is delivered all the same
    assert events(b.pool, "FillDeferred", big) == [
        {"id": 1, "origin": A, "recipient": world.payee, "amount": LIQUIDITY + 500, "reason": "pool short"}]
    assert events(b.pool, "FillPaid", big) == []
    assert b.pool.functions.deferred(1).call() == [world.payee, A, LIQUIDITY + 500]
    assert b.pool.functions.received(A, e).call() == LIQUIDITY + 500
    assert b.pool.functions.receivedCount(A, e).call() == 1
    assert b.balance() == LIQUIDITY and b.pool.functions.freeLiquidity().call() == 0
    # a small fill does not jump the queue: the balance is owed to the deferred payout
    (small,) = world.relay(world.deposit(a, 10, world.stranger), a)
    assert [ev["id"] for ev in events(b.pool, "FillDeferred", small)] == [2]
    assert b.pool.functions.deferredCount().call() == 2
    assert b.pool.functions.deferredTotal().call() == LIQUIDITY + 510
    expect_revert(b.pool.functions.releaseDeferred(1), world.stranger, "PoolShort",
                  (["uint256", "uint256"], [LIQUIDITY, LIQUIDITY + 510]))
    expect_revert(b.pool.functions.releaseDeferred(3), world.stranger, "NoDeferred", (["uint256"], [3]))
    added = tx(world.w3, b.pool.functions.addLiquidity(600), world.deployer)
    assert events(b.pool, "LiquidityAdded", added) == [{"provider": world.deployer, "amount": 600}]
    assert b.pool.functions.freeLiquidity().call() == 90
    released = tx(world.w3, b.pool.functions.releaseDeferred(2), world.stranger)  # any order, by anyone
    assert events(b.pool, "DeferredReleased", released) == [{"id": 2, "recipient": world.stranger, "amount": 10}]
    tx(world.w3, b.pool.functions.releaseDeferred(1), world.stranger)
    assert b.balance(world.payee) == LIQUIDITY + 500 and b.balance(world.stranger) == 10
    assert b.balance() == 90 and b.pool.functions.deferredTotal().call() == 0
    assert b.pool.functions.deferred(1).call() == ["0x" + "00" * 20, 0, 0]
    expect_revert(b.pool.functions.releaseDeferred(1), world.stranger, "NoDeferred")


def test_handle_accepts_only_the_mailbox_and_the_enrolled_remote(world: World) -> None:
    a, b = world.a, world.b
    e = world.fresh_epoch()
    body = abi_encode(FILL_TYPES, [FILL, e, address_to_bytes32(world.payee), 5])
    handle = b.pool.functions.handle
    expect_revert(handle(A, a.pool32, body), world.stranger, "NotMailbox")
    expect_revert(handle(A, a.pool32, body), a.mailbox, "NotMailbox")  # another domain's mailbox
    expect_revert(handle(A, address_to_bytes32(world.stranger), body), b.mailbox, "UnknownSender",
                  (["uint32", "bytes32"], [A, address_to_bytes32(world.stranger)]))
    expect_revert(handle(UNKNOWN, a.pool32, body), b.mailbox, "UnknownSender")
    expect_revert(handle(B, b.pool32, body), b.mailbox, "UnknownSender")  # itself
    expect_revert(handle(UNKNOWN, b"\0" * 32, body), b.mailbox, "UnknownSender")  # unenrolled: zero pool
    expect_revert(handle(A, a.pool32, body[:96]), b.mailbox, "MalformedBody", (["uint256"], [96]))
    expect_revert(handle(A, a.pool32, abi_encode(FILL_TYPES, [3, e, b"\0" * 32, 5])), b.mailbox, "UnknownKind",
                  (["uint256"], [3]))
    assert b.pool.functions.receivedCount(A, e).call() == 0 and b.balance(world.payee) == 0
    world.deliver(b, A, a.pool32, body)
    assert b.pool.functions.receivedCount(A, e).call() == 1 and b.balance(world.payee) == 5


def test_settlement_waits_then_nets_opposite_flows(world: World) -> None:
    a, b = world.a, world.b
    w3 = world.w3
    e = world.fresh_epoch()
    supply_a, supply_b = a.supply(), b.supply()
    # epoch e: A -> B 100 + 50, B -> A 30
    fill_100 = world.deposit(a, 100)
    fill_50 = world.deposit(a, 50)
    world.relay(world.deposit(b, 30), b)
    world.relay(fill_100, a)  # the 50 is still in flight
    assert (a.balance(), b.balance()) == (LIQUIDITY + 150 - 30, LIQUIDITY + 30 - 100)
    expect_revert(a.pool.functions.settle(B, e), world.stranger, "EpochOpen", (["uint64", "uint64"], [e, e]))
    # A's SETTLE (what A will send once its epoch closes) reaches B while B's epoch e is still open
    settle_a = abi_encode(SETTLE_TYPES, [SETTLE, e, 150, 2])
    early = world.deliver(b, A, a.pool32, settle_a)
    assert events(b.pool, "SettlementReceived", early) == [
        {"origin": A, "epoch": e, "remoteSent": 150, "remoteCount": 2}]
    assert events(b.pool, "SettlementWaiting", early) == [{"origin": A, "epoch": e, "reason": "epoch open here"}]
    assert b.settlement(A, e) == [PENDING, 150, 2, 0]
    expect_revert(b.pool.functions.handle(A, a.pool32, settle_a), b.mailbox, "AlreadySettled",
                  (["uint32", "uint64"], [A, e]))
    world.close_epoch()
    # closed here, but one of A's deposits has not arrived
    assert b.pool.functions.completeSettlement(A, e).call({"from": world.stranger}) is False
    waiting = tx(w3, b.pool.functions.completeSettlement(A, e), world.stranger)
    assert events(b.pool, "SettlementWaiting", waiting) == [
        {"origin": A, "epoch": e, "reason": "deposits in flight"}]
    assert b.settlement(A, e)[0] == PENDING and b.supply() == supply_b
    world.relay(fill_50, a)
    assert b.pool.functions.completeSettlement(A, e).call({"from": world.stranger}) is True
    done = tx(w3, b.pool.functions.completeSettlement(A, e), world.stranger)
    # B gained 30 (deposits towards A) and paid 150 (A's deposits): it mints 120
    assert events(b.pool, "SettlementCompleted", done) == [{"origin": A, "epoch": e, "net": -120}]
    assert b.settlement(A, e) == [DONE, 150, 2, -120]
    assert b.supply() == supply_b + 120 and b.balance() == LIQUIDITY
    expect_revert(b.pool.functions.completeSettlement(A, e), world.stranger, "NotPending",
                  (["uint32", "uint64"], [A, e]))
    expect_revert(b.pool.functions.completeSettlement(A, e + 1), world.stranger, "NotPending")
    # A's real settle() sends exactly the body B already took
    sent_a = tx(w3, a.pool.functions.settle(B, e), world.stranger)
    (msg,) = dispatched(sent_a, a.mailbox)
    assert msg.body == settle_a and msg.recipient == b.pool32
    assert events(a.pool, "SettlementSent", sent_a) == [
        {"messageId": msg.id, "destination": B, "epoch": e, "sent": 150, "count": 2}]
    assert a.pool.functions.settledOut(B, e).call() is True
    expect_revert(a.pool.functions.settle(B, e), world.stranger, "AlreadySettled", (["uint32", "uint64"], [B, e]))
    expect_revert(b.pool.functions.handle(A, a.pool32, msg.body), b.mailbox, "AlreadySettled")
    # B's settle() reaches A, whose deposits all arrived: it completes on delivery, A burns 120
    (delivery,) = world.relay(tx(w3, b.pool.functions.settle(A, e), world.stranger), b)
    assert events(a.pool, "SettlementCompleted", delivery) == [{"origin": B, "epoch": e, "net": 120}]
    assert events(a.pool, "SettlementWaiting", delivery) == []
    assert a.settlement(B, e) == [DONE, 30, 1, 120]
    assert a.supply() == supply_a - 120 and a.balance() == LIQUIDITY
    assert a.supply() + b.supply() == supply_a + supply_b  # opposite flows cancelled, supply conserved
    expect_revert(a.pool.functions.handle(B, b.pool32, abi_encode(SETTLE_TYPES, [SETTLE, e, 30, 1])), a.mailbox,
                  "AlreadySettled")


def test_settle_of_an_empty_epoch_closes_it_for_the_other_side(world: World) -> None:
    a, b = world.a, world.b
    e = world.fresh_epoch()
    expect_revert(a.pool.functions.settle(B, e + 5), world.stranger, "EpochOpen", (["uint64", "uint64"], [e + 5, e]))
    world.relay(world.deposit(b, 40), b)
    world.close_epoch()
    expect_revert(a.pool.functions.settle(UNKNOWN, e), world.stranger, "NoRemotePool")
    receipt = tx(world.w3, a.pool.functions.settle(B, e), world.stranger)
    assert [ev["sent"] for ev in events(a.pool, "SettlementSent", receipt)] == [0]
    (msg,) = dispatched(receipt, a.mailbox)
    assert msg.body == abi_encode(SETTLE_TYPES, [SETTLE, e, 0, 0])
    supply_b = b.supply()
    (delivery,) = world.relay(receipt, a)
    # B received nothing from A and deposited 40 towards it: it burns 40
    assert events(b.pool, "SettlementCompleted", delivery) == [{"origin": A, "epoch": e, "net": 40}]
    assert b.settlement(A, e) == [DONE, 0, 0, 40] and b.supply() == supply_b - 40 and b.balance() == LIQUIDITY


def test_completion_waits_without_the_minter_role(chain: tuple[Web3, dict[int, dict[str, str]]]) -> None:
    world = make_world(chain, minters=False)
    a, b, w3 = world.a, world.b, world.w3
    e = world.fresh_epoch()
    supply_a, supply_b = a.supply(), b.supply()
    world.relay(world.deposit(a, 200), a)
    world.close_epoch()
    (to_b,) = world.relay(tx(w3, a.pool.functions.settle(B, e), world.stranger), a)  # B must mint 200
    (to_a,) = world.relay(tx(w3, b.pool.functions.settle(A, e), world.stranger), b)  # A must burn 200
    for pool, origin, receipt in ((b.pool, A, to_b), (a.pool, B, to_a)):
        assert events(pool, "SettlementWaiting", receipt) == [
            {"origin": origin, "epoch": e, "reason": "mint or burn failed"}]
        assert pool.functions.settlementIn(origin, e).call()[0] == PENDING
        assert pool.functions.completeSettlement(origin, e).call({"from": world.stranger}) is False
    assert (a.supply(), b.supply()) == (supply_a, supply_b)
    assert (a.balance(), b.balance()) == (LIQUIDITY + 200, LIQUIDITY - 200)
    for side in (a, b):
        tx(w3, side.token.functions.setMinter(side.pool.address, True), world.deployer)
    done_b = tx(w3, b.pool.functions.completeSettlement(A, e), world.stranger)
    done_a = tx(w3, a.pool.functions.completeSettlement(B, e), world.stranger)
    assert events(b.pool, "SettlementCompleted", done_b) == [{"origin": A, "epoch": e, "net": -200}]
    assert events(a.pool, "SettlementCompleted", done_a) == [{"origin": B, "epoch": e, "net": 200}]
    assert b.settlement(A, e) == [DONE, 200, 1, -200] and a.settlement(B, e) == [DONE, 0, 0, 200]
    assert (a.supply(), b.supply()) == (supply_a - 200, supply_b + 200)
    assert (a.balance(), b.balance()) == (LIQUIDITY, LIQUIDITY)


def test_a_settlement_that_is_not_the_sum_of_the_flows_is_refused(world: World) -> None:
    a, b = world.a, world.b
    e = world.fresh_epoch()
    world.relay(world.deposit(a, 100), a)
    world.close_epoch()
    mismatch = (["uint32", "uint64", "uint256", "uint256"], [A, e, 999, 100])
    forged = abi_encode(SETTLE_TYPES, [SETTLE, e, 999, 1])
    expect_revert(b.pool.functions.handle(A, a.pool32, forged), b.mailbox, "SettlementMismatch", mismatch)
    # more deposits delivered than the settlement counts
    expect_revert(b.pool.functions.handle(A, a.pool32, abi_encode(SETTLE_TYPES, [SETTLE, e, 0, 0])), b.mailbox,
                  "SettlementMismatch", (["uint32", "uint64", "uint256", "uint256"], [A, e, 0, 100]))
    assert b.settlement(A, e) == [NONE, 0, 0, 0]
    # the genuine one completes
    supply_b = b.supply()
    (delivery,) = world.relay(tx(world.w3, a.pool.functions.settle(B, e), world.stranger), a)
    assert events(b.pool, "SettlementCompleted", delivery) == [{"origin": A, "epoch": e, "net": -100}]
    assert b.settlement(A, e) == [DONE, 100, 1, -100] and b.supply() == supply_b + 100
