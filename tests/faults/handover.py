"""Helpers for the hand-over tests: relayer instances on one PostgreSQL database, a store reader, catching up."""

from __future__ import annotations

from pathlib import Path

from adapters.message import address_to_bytes32
from relayer.store import MessageRecord, MessageState, Store
from tests.integration.harness import (
    DaemonProcess,
    DevnetClient,
    free_port_block,
    wait_for,
    write_daemon_config,
)

INSTANCE_LEASE_S = 8.0  # short, so hand-overs happen within a test; beats every 1.6 s (4 s: a starved one lapsed)


def instance_env(pg_url: str, **extra: str) -> dict[str, str]:
    return {"RELAYER_STORE_URL": pg_url, "RELAYER__RELAYER__INSTANCE_LEASE_S": str(INSTANCE_LEASE_S),
            "RELAYER__RELAYER__ADOPTED_TX_TIMEOUT_S": "30", **extra}


def relayer_instance(devnet, directory: Path, name: str, *, pg_url: str, account: int, role: str = "all",
                     validator_api_url: str | None = None, env: dict[str, str] | None = None,
                     api_port: int | None = None,
                     allowed_relayer_accounts: tuple[int, ...] | None = None) -> DaemonProcess:
    """A daemon on the shared database with its own wallet and identity (``account``) and API port (not started);
    its validators serve the relayers of ``allowed_relayer_accounts`` (default: the two devnet relayer accounts)."""
    config = write_daemon_config(devnet, directory / name, api_port=api_port or free_port_block(1),
                                 relayer_account=account,
                                 validator_api_url=validator_api_url, allowed_relayer_accounts=allowed_relayer_accounts)
    return DaemonProcess(config, directory / f"{name}.log", role=role, instance=name,
                         env=instance_env(pg_url, **(env or {})))


def boot(*daemons: DaemonProcess, timeout: float = 150) -> None:
    """Start daemons together and wait until each serves HTTP (generous: a loaded 2-core machine boots slowly)."""
    for d in daemons:
        d.start(wait=False)
    for d in daemons:
        wait_for(d.healthy, timeout, f"{d.instance} to serve {d.api_url} (log {d.log})")


def rows(store: Store, ids: list[bytes]) -> list[MessageRecord]:
    found = [store.get("0x" + i.hex()) for i in ids]
    return [r for r in found if r is not None]


async def wait_caught_up(client: DevnetClient, store: Store, timeout: float = 120) -> None:
    """Every message dispatched on the devnet so far is indexed into ``store`` and settled: nothing open or in
    flight (earlier tests of the session left messages on the shared chains)."""
    targets = {a.domain: int(await a.finalized_height()) for a in client.adapters.values()}

    def settled() -> bool:
        if any((store.cursor(f"index:{d}") or -1) < h for d, h in targets.items()):
            return False
        counts = store.counts_by_state()
        busy = (MessageState.DISPATCHED.value, MessageState.ATTESTED.value, MessageState.SUBMITTED.value)
        return not any(n for (_d, state), n in counts.items() if state in busy)

    wait_for(settled, timeout, "the store to catch up with the devnet's history", interval=0.3)


async def dispatch(client: DevnetClient, origin: str, destination: str, n: int) -> list[bytes]:
    """``n`` messages in one origin transaction (so one indexing round sees them all)."""
    recipient = address_to_bytes32(client.manifest["chains"][destination]["contracts"]["test_recipient"])
    _tx, ids = await client.adapters[origin].dispatch_messages(
        client.key(origin), client.domain(destination), recipient,
        [f"{origin}->{destination} #{i}".encode() for i in range(n)])
    return list(ids)


async def processed_on_chain(client: DevnetClient, ids: list[bytes]) -> bool:
    seen = await client.processed_since_mark()
    return all(i in seen for i in ids)

