"""``python -m devnets.beacon --chains JSON --secret-file PATH --ports-file PATH [--host 127.0.0.1]``: the devnet
beacon light-client endpoints, one port per chain (``port`` 0: any free port; the ports taken are written to
``--ports-file``); the sync committees' keys derive from the 32 bytes in ``--secret-file`` (see committee.py).

``--chains`` is a JSON list of ``{"name", "chain_id", "rpc_url", "finality", "finality_depth", "port"}``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import sys
from pathlib import Path

import httpx
import structlog
import uvicorn

from devnets.beacon.follower import ChainFollower, ChainSpec
from devnets.beacon.server import MultiChainApp


def _configure_logging() -> None:
    structlog.configure(
        processors=[structlog.processors.add_log_level, structlog.processors.TimeStamper(fmt="iso", utc=True),
                    structlog.processors.format_exc_info, structlog.processors.JSONRenderer()],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stdout),
    )
    logging.basicConfig(level=logging.WARNING, stream=sys.stdout)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m devnets.beacon", description=__doc__.split("\n\n")[0])
    parser.add_argument("--chains", required=True, help="JSON list of chains to follow")
    parser.add_argument("--ports-file", type=Path, required=True, help="where to write {chain: port} once bound")
    parser.add_argument("--secret-file", type=Path, required=True, help="32 secret bytes the committees derive from")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--poll-interval-s", type=float, default=0.1)
    args = parser.parse_args(argv)
    _configure_logging()
    specs = [ChainSpec(**doc) for doc in json.loads(args.chains)]
    secret = args.secret_file.read_bytes()
    sockets, ports = [], {}
    for spec in specs:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((args.host, spec.port))
        sock.listen(128)
        sockets.append(sock)
        ports[spec.name] = sock.getsockname()[1]
    http = httpx.AsyncClient(timeout=10.0, limits=httpx.Limits(max_connections=16))
    followers = {ports[s.name]: ChainFollower(s, http, secret, poll_interval_s=args.poll_interval_s) for s in specs}
    partial = args.ports_file.with_suffix(".tmp")
    partial.write_text(json.dumps(ports))
    os.replace(partial, args.ports_file)
    structlog.get_logger("devnets.beacon").info("beacon_devnet_listening", ports=ports, pid=os.getpid())
    config = uvicorn.Config(MultiChainApp(followers), log_level="warning", access_log=False, lifespan="on")
    uvicorn.Server(config).run(sockets=sockets)


if __name__ == "__main__":
    main()
