"""Issue 12, finding 1: a Cosmos payout paid N times. The attacker process (no key) asks every validator of the
running daemon to co-sign payouts of one attested 5-TST message at vault sequences s, s+1, s+2 with ``expires_at``
in the past, replays what it got, alters the context (timeout height, fee, sequence), and assembles and broadcasts
whatever was signed: first while no relayer has delivered the message (the module daemon runs its validators only:
relayers are untrusted and may be absent, and the original attack needs to ask first), then racing the daemon's
own delivery, then after it. Read from the chain: the recipient received the message's amount exactly once and
the vault's escrow dropped by exactly that, also once every co-signature any validator gave has expired; a later
transfer is still delivered.

The attacker is a malicious relayer the validators allow-listed (its requests are signed with its own relayer
identity): relayers are untrusted, so the validators' once-per-message rule must hold whoever asks. (Requests
from a relayer that is not allow-listed are refused before this rule: ``test_validator_endpoints.py``.)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from typing import Any

import pytest

from adapters.message import Domain, MessageId
from tests.adversarial.conftest import start_daemon
from tests.integration.harness import DaemonProcess, DevnetClient, wait_for_async

pytestmark = pytest.mark.integration

TST_HOME_UNITS = 10**18  # TST on l1 (18 decimals)
UXTST = 10**6  # one TST on Cosmos (uxtst, 6 decimals)
MESSAGE_TST = 5
THRESHOLD = 2
ATTACK = "cosmos_cosign.pay_one_message_many_times"
REFUSED_VARIANTS = ("sequence s+1", "sequence s+2", "timeout +1", "timeout far ahead", "timeout passed", "no timeout",
                    "fee x2", "sequence s-1", "replay of sequence s+1", "replay of sequence s+2", "replay of fee x2")


class Chains:
    """The test side's view: the recipient's and the vault's uxtst, read from the Cosmos chain."""

    def __init__(self, client: DevnetClient, recipient: str) -> None:
        self.client = client
        self.cosmos: Any = client.adapters["cosmos"]
        self.l1: Any = client.adapters["l1"]
        self.recipient = recipient
        self.vault = client.manifest["chains"]["cosmos"]["vault"]

    async def balances(self) -> tuple[int, int]:
        return (await self.cosmos.token_balance("TST", self.recipient),
                await self.cosmos.token_balance("TST", self.vault))

    async def send(self, tst: int) -> MessageId:
        """``tst`` TST from the devnet user on l1 to the recipient on Cosmos (test side: a devnet test key)."""
        _tx, message_id = await self.l1.send_token(self.client.key("l1"), "TST", tst * TST_HOME_UNITS,
                                                   Domain(self.client.domain("cosmos")),
                                                   self.cosmos.account_bytes32(self.recipient))
        return MessageId(message_id)

    async def wait_paid(self, expected: int, what: str) -> None:
        async def arrived() -> bool:
            return (await self.balances())[0] >= expected

        await wait_for_async(arrived, 120, what)

    async def wait_height(self, height: int) -> None:
        async def passed() -> bool:
            return int(await self.cosmos.latest_height()) >= height

        await wait_for_async(passed, 180, f"cosmos height {height}", interval=0.5)

    async def wait_every_cosignature_expired(self) -> None:
        """No validator co-signs a timeout more than 2 x delivery_timeout_blocks above its chain's height: once the
        chain passed that bound from now, nothing co-signed so far can land any more."""
        window = 2 * self.client.settings.chains["cosmos"].delivery_timeout_blocks  # type: ignore[union-attr]
        await self.wait_height(int(await self.cosmos.latest_height()) + window)


@pytest.fixture(scope="module")
def relaying_daemon(bridge_devnet: Any, attacker: Any,
                    tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    """The devnet's daemon (role all) whose validators also serve the attacker as a relayer."""
    daemon = start_daemon(bridge_devnet, tmp_path_factory.mktemp("daemon"), edit=attacker.allow_as_relayer)
    yield daemon
    daemon.stop()


@contextlib.contextmanager
def validators_only(daemon: DaemonProcess) -> Iterator[DaemonProcess]:
    """The module daemon restarted as its validators alone (same config and store: what they co-signed is kept),
    then back as role all. One process holds the validator keys at any time."""
    daemon.stop()
    validators = DaemonProcess(daemon.config, daemon.log, role="validator", instance=daemon.instance).start()
    try:
        yield validators
    finally:
        validators.stop()
        daemon.start()


async def attack_while_sending(attacker: Any, chains: Chains, tmp_path: Any, **kwargs: Any) -> tuple[MessageId, dict]:
    """The attacker process starts first and pounces the moment the message id is public."""
    id_file = tmp_path / "message_id"
    attack = asyncio.ensure_future(asyncio.to_thread(attacker.run, ATTACK, message_id_file=str(id_file), signed=True,
                                                     **kwargs))
    message_id = await chains.send(MESSAGE_TST)
    id_file.write_text("0x" + bytes(message_id).hex())
    seen = await attack
    print("attack observed:", json.dumps({k: seen[k] for k in ("signed_payloads", "broadcasts")}))
    assert seen["message_id"] == "0x" + bytes(message_id).hex()
    return message_id, seen


def assert_at_most_one_payout(seen: dict[str, Any]) -> None:
    """Whatever the attacker was given, it was at most one payout with a quorum of co-signatures, and at most one
    of its broadcasts landed."""
    quorum = [p for p in seen["signed_payloads"] if len(p["validators"]) >= THRESHOLD]
    assert len(quorum) <= 1, seen["signed_payloads"]
    assert all(a["status"] in (200, 403) for a in seen["asked"]), seen["asked"]
    landed = {b["tx"] for b in seen["broadcasts"] if b.get("state") == "confirmed"}
    assert len(landed) <= 1, seen["broadcasts"]  # a replay of the same transaction is that transaction, not another


async def test_asking_first_the_attacker_gets_one_payout_signed_and_paid_once(attacker, bridge_devnet, relaying_daemon,
                                                                               tmp_path) -> None:
    """The original attack, with the attacker first in line (no relayer running): each validator co-signs the first
    payout it is asked for, refuses every other sequence, timeout and fee (whatever ``expires_at`` claims), and
    repeats its signature for a replay. The attacker's payout lands once; its replay of the same transaction lands
    nothing more."""
    client = DevnetClient(bridge_devnet)
    chains = Chains(client, attacker.addresses["cosmos"])
    validators = sorted(v["address"] for v in client.manifest["validators"])
    try:
        recipient_before, vault_before = await chains.balances()
        with validators_only(relaying_daemon):
            message_id, seen = await attack_while_sending(attacker, chains, tmp_path)
            assert_at_most_one_payout(seen)
            assert seen["signed_payloads"] == [{"sequence": str(seen["first_sequence"]),
                                                "timeout_height": str(seen["first_timeout_height"]),
                                                "fee": seen["signed_payloads"][0]["fee"], "validators": validators}]
            fresh_vault = seen["first_sequence"] == 0  # no sequence before the first: no "s-1" to ask for
            for name in REFUSED_VARIANTS:
                if name == "sequence s-1" and fresh_vault:
                    continue
                answers = [a for a in seen["asked"] if a["request"] == name]
                assert len(answers) == len(validators) and all(a["status"] == 403 for a in answers), (name, answers)
            reasons = {a["reason"] for a in seen["asked"] if a["status"] == 403}
            assert reasons == {"already cosigned", "expired", "timeout too far", "no timeout",
                               *(() if fresh_vault else ("stale sequence",))}
            assert [a["status"] for a in seen["asked"] if a["request"] in ("first", "replay of first")] == [200] * 6
            first, replay = seen["broadcasts"]
            assert first.get("state") == "confirmed"
            # its replay is the very same transaction: refused, or taken by the node as the one it already holds
            # (code 19: adapters/cosmos/client.py), never a second payout (the balances below)
            assert replay.get("state") is None or replay.get("tx") == first["tx"], seen["broadcasts"]
            assert seen["delivered"]
        await chains.wait_every_cosignature_expired()
        assert await chains.balances() == (recipient_before + MESSAGE_TST * UXTST,
                                           vault_before - MESSAGE_TST * UXTST)
    finally:
        await client.close()


async def test_racing_the_daemon_the_message_is_paid_once(attacker, bridge_devnet, relaying_daemon, tmp_path) -> None:
    """The daemon (validators and relayer) delivers while the attacker asks and broadcasts: whoever is first, the
    message is paid out once, also after everything the attacker was given has expired."""
    client = DevnetClient(bridge_devnet)
    chains = Chains(client, attacker.addresses["cosmos"])
    try:
        recipient_before, vault_before = await chains.balances()
        message_id, seen = await attack_while_sending(attacker, chains, tmp_path)
        assert_at_most_one_payout(seen)
        await chains.wait_paid(recipient_before + MESSAGE_TST * UXTST, "the message paid out on Cosmos")
        await chains.wait_height(seen["max_signed_timeout_height"])
        assert await chains.balances() == (recipient_before + MESSAGE_TST * UXTST,
                                           vault_before - MESSAGE_TST * UXTST)
        assert (await chains.cosmos.delivered([message_id]))[0]
    finally:
        await client.close()


async def test_after_the_daemon_delivered_nothing_is_signed_and_relaying_goes_on(attacker, bridge_devnet,
                                                                                 relaying_daemon) -> None:
    client = DevnetClient(bridge_devnet)
    chains = Chains(client, attacker.addresses["cosmos"])
    try:
        recipient_before, vault_before = await chains.balances()
        message_id = await chains.send(MESSAGE_TST)
        await chains.wait_paid(recipient_before + MESSAGE_TST * UXTST, "the message paid out on Cosmos")

        seen = attacker.run(ATTACK, message_id="0x" + bytes(message_id).hex(), sequence_offsets=[-1, 0, 1, 2, 3],
                            signed=True)
        assert seen["signed_payloads"] == [] and seen["broadcasts"] == [], seen
        reasons = {a["reason"] for a in seen["asked"]}
        assert reasons <= {"already delivered", "stale sequence", "expired", "timeout too far", "no timeout"}, reasons
        assert "already delivered" in reasons and "stale sequence" in reasons
        assert seen["delivered"]
        assert await chains.balances() == (recipient_before + MESSAGE_TST * UXTST,
                                           vault_before - MESSAGE_TST * UXTST)

        # the daemon keeps relaying: a later transfer arrives, once
        later = await chains.send(1)
        await chains.wait_paid(recipient_before + (MESSAGE_TST + 1) * UXTST, "a later transfer paid out")
        assert await chains.balances() == (recipient_before + (MESSAGE_TST + 1) * UXTST,
                                           vault_before - (MESSAGE_TST + 1) * UXTST)
        assert (await chains.cosmos.delivered([later]))[0]
    finally:
        await client.close()
