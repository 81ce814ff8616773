"""Real devnet and real daemon processes for integration tests: free loopback ports, polling with deadlines."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from adapters.base import Height
from adapters.message import MessageId, address_to_bytes32
from config.loader import load_settings
from config.settings import Settings
from devnets.devnet import Devnet
from relayer.daemon.daemon import build_adapters
from relayer.testing.ports import free_port_block  # shared with the pytest plugin (relayer.testing)

ROOT = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def evm_devnet_of_its_own(factory: Any, name: str, **options: Any) -> Iterator[Devnet]:
    """An EVM-only devnet on free ports for one test module (``name``: its directory), down at the end."""
    net = Devnet(factory.mktemp(name), base_port=free_port_block(3), api_port=free_port_block(1), families=("evm",),
                 **options)
    net.up()
    try:
        yield net
    finally:
        net.down()


def wait_for(predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


async def wait_for_async(predicate: Callable[[], Awaitable[bool]], timeout: float, what: str,
                         interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


class DaemonProcess:
    """``relayer run`` in a child process, with env overrides (store, API port, signer)."""

    def __init__(self, config: Path, log: Path, *, role: str = "all", instance: str = "test",
                 env: dict[str, str] | None = None, api_url: str | None = None) -> None:
        self.config = config
        self.log = log
        self.role = role
        self.instance = instance
        self.env = dict(os.environ, **(env or {}))
        self.env["PYTHONPATH"] = str(ROOT)
        self.api_url = api_url or load_settings(config, env=self.env).api.url
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, wait: bool = True) -> DaemonProcess:
        args = [sys.executable, "-m", "relayer.cli", "run", "-c", str(self.config), "--role", self.role,
                "--instance", self.instance, "--no-status"]
        self.proc = subprocess.Popen(args, stdout=open(self.log, "ab"), stderr=subprocess.STDOUT, env=self.env,  # noqa: SIM115
                                     cwd=ROOT, start_new_session=True)
        if wait:
            wait_for(self.healthy, 60, f"daemon {self.instance} to serve {self.api_url} (log {self.log})")
        return self

    def healthy(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"daemon {self.instance} exited with {self.proc.returncode}; "
                                 f"log:\n{self.log.read_text()[-3000:]}")
        try:
            return httpx.get(f"{self.api_url}/healthz", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    def kill9(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.kill9()


class DevnetClient:
    """Adapters for every devnet chain, to send and to check what happened on chain."""

    def __init__(self, devnet: Devnet) -> None:
        self.devnet = devnet
        self.manifest: dict[str, Any] = devnet.manifest()
        self.settings: Settings = load_settings(devnet.config_path, env={})
        self.adapters = build_adapters(self.settings, with_signers=False)
        self.start_heights: dict[str, int] = {}

    def domain(self, name: str) -> int:
        return self.settings.chains[name].domain

    def key(self, chain: str, i: int = 0) -> str:
        return self.manifest["chains"][chain]["accounts"][i]["private_key"]  # public devnet test key

    def address(self, chain: str, i: int = 0) -> str:
        return self.manifest["chains"][chain]["accounts"][i]["address"]

    async def mark(self) -> None:
        for n, a in self.adapters.items():
            self.start_heights[n] = int(await a.latest_height())

    async def processed_since_mark(self) -> dict[MessageId, list[str]]:
        seen: dict[MessageId, list[str]] = {}
        for n, a in self.adapters.items():
            latest = await a.latest_height()
            for mid, _h in await a.processed_messages(Height(self.start_heights.get(n, 0)), latest):  # type: ignore[attr-defined]
                seen.setdefault(mid, []).append(n)
        return seen

    async def close(self) -> None:
        for a in self.adapters.values():
            await a.close()


def write_daemon_config(devnet: Devnet, directory: Path, *, api_port: int, relayer_account: int = 1,
                        validator_api_url: str | None = None,
                        allowed_relayer_accounts: tuple[int, ...] | None = None) -> Path:
    """A daemon config for ``devnet`` with its own store and API port (validators served at ``validator_api_url``).
    The relayer signs with its account's key (``relayer_account``); the validators serve the relayers of
    ``allowed_relayer_accounts`` (default: the two devnet relayer accounts)."""
    from devnets.devnet import DEVNET_RELAYER_ACCOUNTS, relayer_toml

    manifest = dict(devnet.manifest())
    api_url = f"http://127.0.0.1:{api_port}"
    served_at = validator_api_url or api_url
    manifest["api_url"] = api_url
    manifest["validators"] = [{"address": v["address"], "url": f"{served_at}/validators/{v['address']}"}
                              for v in manifest["validators"]]
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "relayer.toml"
    path.write_text(relayer_toml(manifest, store_url=f"sqlite:///{directory / 'relayer.db'}",
                                 relayer_account=relayer_account,
                                 allowed_relayer_accounts=allowed_relayer_accounts or DEVNET_RELAYER_ACCOUNTS))
    return path


def start_routing_daemon(devnet: Devnet, directory: Path, instance: str, *, role: str = "all",
                         env: dict[str, str] | None = None, timeout: float = 30) -> DaemonProcess:
    """A daemon of its own on ``devnet`` (config and store in ``directory``), started and waited for until its
    routing API answers ``/v1/chains`` (the chains' capacity sampled once)."""
    daemon = DaemonProcess(write_daemon_config(devnet, directory, api_port=free_port_block(1)), directory / "d.log",
                           role=role, instance=instance, env=env).start()
    wait_for(lambda: httpx.get(f"{daemon.api_url}/v1/chains").status_code == 200, timeout, "capacity to be sampled")
    return daemon


def token_balance(devnet: Devnet, chain: str, token: str, holder: str) -> int:
    """``holder``'s balance of ``token`` on ``chain``, read from the chain (a client of its own, closed after)."""
    async def read() -> int:
        client = DevnetClient(devnet)
        try:
            return int(await client.adapters[chain].token_balance(token, holder))  # type: ignore[attr-defined]
        finally:
            await client.close()

    return asyncio.run(read())


class TcpProxy:
    """A loopback TCP proxy that can be cut and restored: an RPC endpoint that goes down and comes back."""

    def __init__(self, target_port: int) -> None:
        import threading

        self.target_port = target_port
        self.port = free_port_block(1)
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.base_events.Server | None = None
        self._conns: set[asyncio.StreamWriter] = set()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self._conns |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        self._conns -= {writer, up_writer}

    def _run(self, coro):  # type: ignore[no-untyped-def]
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    def up(self) -> None:
        async def start() -> None:
            self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port, reuse_address=True)
        self._run(start())

    def down(self) -> None:
        async def stop() -> None:
            if self._server is not None:
                self._server.close()
                await self._server.wait_closed()
                self._server = None
            for w in list(self._conns):
                w.close()
            self._conns.clear()
        self._run(stop())

    def close(self) -> None:
        self.down()
        self._loop.call_soon_threadsafe(self._loop.stop)


async def dispatch_spread(client: DevnetClient, per_route: int, batch: int = 50) -> list[bytes]:
    """``per_route`` messages on every ordered pair of chains, to each destination's TestRecipient."""
    names = list(client.settings.chains)
    jobs = []
    for origin in names:
        for dest in names:
            if dest == origin:
                continue
            recipient = address_to_bytes32(client.manifest["chains"][dest]["contracts"]["test_recipient"])
            for start in range(0, per_route, batch):
                bodies = [f"{origin}->{dest} #{i}".encode() for i in range(start, min(per_route, start + batch))]
                jobs.append((origin, dest, recipient, bodies))

    async def send_all(origin: str) -> list[bytes]:
        ids: list[bytes] = []
        for o, dest, recipient, bodies in jobs:
            if o == origin:
                _tx, got = await client.adapters[origin].dispatch_messages(client.key(origin), client.domain(dest),
                                                                           recipient, bodies)
                ids.extend(got)
        return ids

    groups = await asyncio.gather(*(send_all(n) for n in names))
    return [i for g in groups for i in g]


async def all_delivered_once(client: DevnetClient, ids: list[bytes], timeout: float) -> dict:
    async def done() -> bool:
        seen = await client.processed_since_mark()
        return all(i in seen for i in ids)

    await wait_for_async(done, timeout, f"{len(ids)} messages to be processed on chain")
    seen = await client.processed_since_mark()
    duplicated = {i: v for i, v in seen.items() if i in set(ids) and len(v) > 1}
    assert duplicated == {}, f"delivered more than once: {list(duplicated)[:3]}"
    return seen


def dispatch_to_test_recipient(devnet: Devnet, key: str, origin: str, destination: str,
                               bodies: list[bytes]) -> list[bytes]:
    """Messages from ``key``'s account on ``origin`` to ``destination``'s TestRecipient, in one transaction: their
    ids (a client of its own, closed after)."""
    async def go() -> list[bytes]:
        client = DevnetClient(devnet)
        try:
            recipient = address_to_bytes32(client.manifest["chains"][destination]["contracts"]["test_recipient"])
            _tx, ids = await client.adapters[origin].dispatch_messages(  # type: ignore[attr-defined]
                key, client.domain(destination), recipient, bodies)
            return [bytes(i) for i in ids]
        finally:
            await client.close()

    return asyncio.run(go())


def on_devnet(devnet: Devnet, fn: Callable[[DevnetClient], Awaitable[Any]]) -> Any:
    """``fn(client)`` with a devnet client of its own, closed after (for tests that are not coroutines)."""
    async def go() -> Any:
        client = DevnetClient(devnet)
        try:
            return await fn(client)
        finally:
            await client.close()

    return asyncio.run(go())


def delivered_on(devnet: Devnet, chain: str, *mids: bytes) -> bool:
    """Whether ``chain``'s mailbox shows every message of ``mids`` processed (read from the chain, in one call)."""
    async def go() -> bool:
        client = DevnetClient(devnet)
        try:
            return all(await client.adapters[chain].delivered([MessageId(m) for m in mids]))  # type: ignore[attr-defined]
        finally:
            await client.close()

    return asyncio.run(go())


def message_record(api_url: str, mid: bytes) -> dict[str, Any] | None:
    """The daemon's record of ``mid`` (``GET /v1/messages/{id}``); None when it does not know it."""
    resp = httpx.get(f"{api_url}/v1/messages/0x{mid.hex()}", timeout=5)
    return dict(resp.json()["messages"][0]) if resp.status_code == 200 else None


def message_status(api_url: str, mid: bytes) -> tuple[str, str | None] | None:
    """(status, substate) of ``mid`` as the daemon reports it; None when it does not know it."""
    found = message_record(api_url, mid)
    return None if found is None else (found["status"], found["substate"])
