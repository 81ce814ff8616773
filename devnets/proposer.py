"""The devnet's rollup proposer: posts each rollup's output roots to its ``OutputOracle`` on the L1 (OP Stack style).

``python -m devnets.proposer --spec JSON`` (started by ``Devnet.up``, its pid in ``state.json``): every
``interval_blocks`` rollup blocks it posts ``keccak256(0^32 | stateRoot | messagePasserStorageRoot | blockHash)`` of the
newest rollup block at a multiple of the interval, as the proposer account (``PROPOSER_KEY`` in the environment: a
public devnet test key), and waits for the L1 to include it. Where it starts again it reads what it posted last from the
oracle, so a stopped proposer (the fault tests stop it) resumes where the L1 says. Logs are JSON lines on stdout.

``--spec`` is ``{"l1_rpc_url", "chain_id", "interval_blocks", "message_passer", "poll_interval_s",
"rollups": [{"name", "rpc_url", "output_oracle"}]}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import structlog
from eth_abi import decode
from eth_account import Account

from adapters.evm import abi
from adapters.evm.settlement import encode_propose, rollup_output_root

log = structlog.get_logger("devnets.proposer")
LATEST_BLOCK_NUMBER = abi.selector("latestBlockNumber()")
RECEIPT_TIMEOUT_S = 30.0
_SOURCE_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class RollupSpec:
    name: str
    rpc_url: str
    output_oracle: str


class JsonRpc:
    def __init__(self, url: str, http: httpx.AsyncClient) -> None:
        self.url = url
        self._http = http

    async def __call__(self, method: str, params: list[Any]) -> Any:
        answer = (await self._http.post(self.url, json={"jsonrpc": "2.0", "id": 1, "method": method,
                                                        "params": params})).json()
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer["result"]


class Proposer:
    """Posts the output roots of ``rollups`` to their oracles on the L1 as the account of ``key``."""

    def __init__(self, spec: dict[str, Any], key: str, http: httpx.AsyncClient) -> None:
        self.l1 = JsonRpc(spec["l1_rpc_url"], http)
        self.chain_id = int(spec["chain_id"])
        self.interval = int(spec["interval_blocks"])
        self.message_passer = str(spec["message_passer"])
        self.poll_interval_s = float(spec.get("poll_interval_s", 0.25))
        self.rollups = [(RollupSpec(**r), JsonRpc(r["rpc_url"], http)) for r in spec["rollups"]]
        self._account = Account.from_key(key)

    async def run(self) -> None:
        log.info("proposer_started", proposer=self._account.address, interval_blocks=self.interval,
                 rollups=[r.name for r, _ in self.rollups])
        while True:
            for rollup, rpc in self.rollups:
                try:
                    await self.propose_due(rollup, rpc)
                except (httpx.HTTPError, RuntimeError, KeyError, ValueError) as exc:
                    log.warning("proposal_failed", rollup=rollup.name, error=str(exc)[:300])
            await asyncio.sleep(self.poll_interval_s)

    async def propose_due(self, rollup: RollupSpec, rpc: JsonRpc) -> None:
        """Post the newest interval block's output root when it is past what the oracle holds."""
        latest = int(await rpc("eth_blockNumber", []), 16)
        due = latest - latest % self.interval
        posted = await self._latest_posted(rollup)
        if due <= posted or due == 0:
            return
        root = await rollup_output_root(rpc, self.message_passer, due)
        await self._send(rollup.output_oracle, encode_propose(root, due))
        log.info("output_proposed", rollup=rollup.name, l2_block=due, output_root="0x" + root.hex())

    async def _latest_posted(self, rollup: RollupSpec) -> int:
        data = await self.l1("eth_call", [{"to": rollup.output_oracle, "data": "0x" + LATEST_BLOCK_NUMBER.hex()},
                                          "latest"])
        (number,) = decode(["uint256"], bytes.fromhex(data[2:]))
        return int(number)

    async def _send(self, to: str, data: bytes) -> None:
        nonce = int(await self.l1("eth_getTransactionCount", [self._account.address, "pending"]), 16)
        base_fee = int((await self.l1("eth_getBlockByNumber", ["latest", False]))["baseFeePerGas"], 16)
        tx = {"chainId": self.chain_id, "nonce": nonce, "to": to, "data": data, "value": 0, "gas": 200_000,
              "maxFeePerGas": 2 * base_fee + 10**9, "maxPriorityFeePerGas": 10**9, "type": 2}
        signed = self._account.sign_transaction(tx)
        tx_hash = await self.l1("eth_sendRawTransaction", ["0x" + bytes(signed.raw_transaction).hex()])
        deadline = asyncio.get_running_loop().time() + RECEIPT_TIMEOUT_S
        while asyncio.get_running_loop().time() < deadline:
            receipt = await self.l1("eth_getTransactionReceipt", [tx_hash])
            if receipt is not None:
                if int(receipt["status"], 16) != 1:
                    raise RuntimeError(f"proposal {tx_hash} reverted")
                return
            await asyncio.sleep(0.1)
        raise RuntimeError(f"proposal {tx_hash} not mined within {RECEIPT_TIMEOUT_S:.0f} s")


def start_proposer(spec: dict[str, Any], key: str, log_path: Path) -> subprocess.Popen[bytes]:
    """``python -m devnets.proposer`` for ``spec``, posting as ``key`` (a devnet test key, passed in its
    environment), logging to ``log_path``."""
    env = dict(os.environ, PROPOSER_KEY=key)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_SOURCE_ROOT), env.get("PYTHONPATH", "")) if p)
    out = open(log_path, "ab")  # noqa: SIM115 - the child holds it
    return subprocess.Popen([sys.executable, "-m", "devnets.proposer", "--spec", json.dumps(spec)], stdout=out,
                            stderr=subprocess.STDOUT, env=env, stdin=subprocess.DEVNULL)


def _configure_logging() -> None:
    structlog.configure(
        processors=[structlog.processors.add_log_level, structlog.processors.TimeStamper(fmt="iso", utc=True),
                    structlog.processors.JSONRenderer()],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stdout),
    )


async def _main(spec: dict[str, Any], key: str) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with httpx.AsyncClient(timeout=10.0) as http:
        task = asyncio.create_task(Proposer(spec, key, http).run())
        await stop.wait()
        task.cancel()
    log.info("proposer_stopped")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m devnets.proposer", description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", required=True, help="JSON: the L1, the interval and the rollups (see the module doc)")
    args = parser.parse_args(argv)
    _configure_logging()
    key = os.environ.get("PROPOSER_KEY")
    if not key:
        parser.error("PROPOSER_KEY (the proposer account's key) is not set")
    asyncio.run(_main(json.loads(args.spec), key))


if __name__ == "__main__":
    main()
