"""The store never blocks the event loop: a daemon over fake chains whose database answers every statement 0.5 s
late (a SQLAlchemy event listener) keeps its loop's lag small and its API answering /healthz at once, on SQLite and
on PostgreSQL (RELAYER_TEST_POSTGRES_URL, or one of the tests' own)."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import event
from sqlalchemy.engine import Engine

from config.loader import load_settings
from relayer.daemon.daemon import RelayerDaemon
from relayer.store import Store
from tests.fakes.chain import FakeChain
from tests.integration.harness import free_port_block, wait_for_async
from tests.integration.test_store_backends import own_pg_server, store_url  # noqa: F401 - fixtures

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "examples" / "devnet.toml"
SLOW_S = 0.5  # each statement's delay while slowed
MEASURE_S = 6.0


class SlowStatements:
    """A fault: every statement on ``engine`` waits ``delay_s`` before it goes to the database, while ``on``."""

    def __init__(self, engine: Engine, delay_s: float) -> None:
        self.delay_s = delay_s
        self.on = False
        self.slowed = 0
        self._lock = threading.Lock()
        event.listen(engine, "before_cursor_execute", self._before)

    def _before(self, *_args: Any, **_kwargs: Any) -> None:
        if self.on:
            with self._lock:
                self.slowed += 1
            time.sleep(self.delay_s)


async def test_a_slow_store_stalls_neither_the_loop_nor_the_api(store_url, tmp_path):  # noqa: F811 - fixture
    port = free_port_block(1)
    # the API on the relay loop itself (api.own_thread off): /healthz waits for whatever blocks that loop
    settings = load_settings(EXAMPLE, env={}, overrides={
        "api.url": f"http://127.0.0.1:{port}", "api.own_thread": False, "store.url": store_url,
        "validator.verify_inclusion": False})
    adapters = {n: FakeChain(n, c.domain) for n, c in settings.chains.items()}
    first, second = list(adapters.values())[:2]
    for i in range(20):  # work for the indexers and processors
        first.dispatch(second.domain, b"m%d" % i)
    store = Store(store_url, owner="slow")
    daemon = RelayerDaemon(settings, "relayer", adapters, store, [], httpx.AsyncClient())  # type: ignore[arg-type]
    slow = SlowStatements(store.engine, SLOW_S)
    stop = asyncio.Event()
    run = asyncio.create_task(daemon.run(stop))
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        async def up() -> bool:
            try:
                return (await client.get("/healthz")).status_code == 200
            except httpx.TransportError:
                return False

        try:
            await wait_for_async(up, 60, "the daemon's API")
            daemon.metrics.set("relayer_event_loop_lag_max_seconds", 0.0, loop="relay")  # from now on
            slow.on = True
            answers: list[float] = []
            end = time.monotonic() + MEASURE_S
            while time.monotonic() < end:
                asked = time.monotonic()
                try:
                    ok = (await client.get("/healthz")).status_code == 200
                except httpx.TransportError:  # the server gave up on a request its blocked loop could not read
                    ok = False
                answers.append(time.monotonic() - asked if ok else float("inf"))
                await asyncio.sleep(0.1)
            lag_max = daemon.metrics.value("relayer_event_loop_lag_max_seconds", loop="relay")
        finally:
            slow.on = False
            stop.set()
            await asyncio.wait_for(run, 60)
            await daemon.close()
    print(f"\n{store.engine.dialect.name}: statements slowed {slow.slowed}, loop lag max {lag_max:.3f} s, "
          f"/healthz slowest {max(answers):.3f} s of {len(answers)}")
    assert slow.slowed >= MEASURE_S / SLOW_S / 2, "the daemon did not use the store while it was slow"
    assert lag_max < SLOW_S / 2, f"the relay loop was blocked {lag_max:.3f} s"
    assert max(answers) < SLOW_S / 2, f"/healthz took {max(answers):.3f} s"

