"""A JSON body nested 10^5 deep (the issue's one-request crash: a segfault in libpython) sent to every route of a
real ``relayer run`` daemon: each is answered 400 naming ``api.max_json_depth``, and the daemon is still alive
and relaying (a message dispatched afterwards is processed on its destination, read from the chain). The running
daemon's recursion limit is CPython's default (``relayer_python_recursion_limit`` in ``/metrics``)."""

from __future__ import annotations

import pytest

from adapters.base import Height
from adapters.message import address_to_bytes32
from tests import httpabuse
from tests.api_routes import every_route
from tests.faults.conftest import metric
from tests.integration.harness import (
    DaemonProcess,
    DevnetClient,
    free_port_block,
    wait_for_async,
    write_daemon_config,
)

pytestmark = pytest.mark.integration


async def test_every_route_refuses_a_hundred_thousand_levels_and_the_daemon_relays_on(devnet, tmp_path):
    config = write_daemon_config(devnet, tmp_path, api_port=free_port_block(1))
    daemon = DaemonProcess(config, tmp_path / "daemon.log", instance="depth").start()
    client = DevnetClient(devnet)
    try:
        assert metric(daemon.api_url, "relayer_python_recursion_limit") == 1000
        routes = every_route()
        assert len(routes) >= 25 and ["POST", "/validators/x/cosign"] in routes and ["GET", "/healthz"] in routes
        answers = {}
        for kind in ("array", "object"):
            body = httpabuse.deep_body(kind)
            for i, (method, path) in enumerate(routes):
                answer = await httpabuse.request(daemon.api_url, method, path, body, src=httpabuse.source(30, i))
                answers[(kind, method, path)] = answer.status
                assert answer.status == 400, (kind, method, path, answer.body[:300])
                assert "api.max_json_depth" in answer.json()["detail"]["error"]
        assert len(answers) == 2 * len(routes)
        assert daemon.healthy()
        assert metric(daemon.api_url, "relayer_api_refused_total", reason="json_depth") == 2 * len(routes)
        # still relaying: one message l1 -> rollup_a, read from rollup_a's Process events
        await client.mark()
        recipient = address_to_bytes32(client.manifest["chains"]["rollup_a"]["contracts"]["test_recipient"])
        _tx, (mid,) = await client.adapters["l1"].dispatch_messages(  # type: ignore[attr-defined]
            client.key("l1"), client.domain("rollup_a"), recipient, [b"after the deep bodies"])

        async def processed() -> bool:
            dest = client.adapters["rollup_a"]
            found = await dest.processed_messages(Height(client.start_heights["rollup_a"]), await dest.latest_height())  # type: ignore[attr-defined]
            return any(m == mid for m, _h in found)

        await wait_for_async(processed, 60, "the message to be processed on rollup_a")
        assert daemon.healthy() and metric(daemon.api_url, "relayer_python_recursion_limit") == 1000
    finally:
        daemon.stop()
        await client.close()
