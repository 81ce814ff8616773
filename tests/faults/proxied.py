"""A daemon whose first endpoints are cuttable proxies to the devnet's nodes, the nodes themselves its fallbacks
(``tests/faults/test_rpc_fallback_families.py``, ``test_light_client_fallback.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.integration.harness import DaemonProcess, TcpProxy


@dataclass
class Relay:
    """The daemon, and per chain the proxies that are its first endpoints."""

    daemon: DaemonProcess
    proxies: dict[str, list[TcpProxy]]


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def with_fallback(text: str, key: str, url: str, proxy: TcpProxy, fallback_key: str) -> str:
    """The config with ``key = url`` replaced by the proxy, and the node itself as the fallback."""
    line = f'{key} = "{url}"'
    assert text.count(line) == 1, f"{line} not found once in the daemon config"
    return text.replace(line, f'{key} = "{proxy.url}"\n{fallback_key} = ["{url}"]', 1)


@contextmanager
def proxied_relay(config: Path, proxies: dict[str, list[TcpProxy]], directory: Path, instance: str) -> Iterator[Relay]:
    """The proxies up and the daemon started on ``config``; stopped and closed after."""
    every = [p for group in proxies.values() for p in group]
    for proxy in every:
        proxy.up()
    daemon = DaemonProcess(config, directory / "d.log", instance=instance)
    try:
        daemon.start()
        yield Relay(daemon, proxies)
    finally:
        daemon.stop()
        for proxy in every:
            proxy.close()
