"""The fault suite's own tools work: a PostgreSQL server that restarts under a live store, and metric parsing."""

from __future__ import annotations

import time

import pytest

from relayer.store import Store, StoreError
from tests.faults.conftest import parse_metrics
from tests.integration.harness import free_port_block
from tests.pg import PostgresServer


def test_postgres_restart_keeps_data_and_the_store_reconnects():
    server = PostgresServer(free_port_block(1)).init()
    server.start()
    try:
        url = server.new_database()
        store = Store(url, owner="a")
        store.set_cursor("index:1", 7)
        server.stop()
        with pytest.raises(StoreError, match="cursor failed") as down:
            store.cursor("index:1")
        assert down.value.reason == "store_unavailable"
        server.start()
        deadline = time.monotonic() + 10
        while True:  # pool_pre_ping replaces the dead connections once the server answers again
            try:
                assert store.cursor("index:1") == 7
                break
            except StoreError:
                assert time.monotonic() < deadline, "store did not reconnect after the restart"
                time.sleep(0.1)
        store.close()
    finally:
        server.destroy()


def test_metrics_parser_reads_labelled_samples():
    text = ('# HELP x y\n# TYPE relayer_failures_total counter\n'
            'relayer_failures_total{destination="l1",reason="rpc_unavailable"} 3\nup 1\n')
    samples = parse_metrics(text)
    assert samples[("relayer_failures_total", frozenset({("destination", "l1"), ("reason", "rpc_unavailable")}))] == 3
    assert samples[("up", frozenset())] == 1 and len(samples) == 2
