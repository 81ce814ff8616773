"""EVM origin role: the mailbox's Dispatch logs, its Merkle root and count, its Process logs."""

from __future__ import annotations

from typing import Any

from adapters.base import (
    DispatchedMessage,
    Height,
    MailboxNotDeployed,
    MailboxState,
    RpcError,
    TxHash,
)
from adapters.evm import abi
from adapters.evm.chain import (
    TIMESTAMP_CACHE,
    EvmChain,
    evm_boundary,
    hex_int,
    log,
)
from adapters.evm.errors import LogQueryTooLarge
from adapters.message import Message, MessageFormatError, MessageId, keccak256


class EvmOrigin(EvmChain):
    """EVM origin role: the mailbox's Dispatch logs, its Merkle root and count, its Process logs."""

    async def _get_logs(self, topic0: str, from_height: int, to_height: int, *, address: str | None = None
                        ) -> list[dict[str, Any]]:
        """Logs of the mailbox (or ``address``) with ``topic0`` in the range, in chunks; halves the chunk when the
        node refuses."""
        chunk = self._config.log_chunk_blocks
        start = from_height
        out: list[dict[str, Any]] = []
        while start <= to_height:
            end = min(to_height, start + chunk - 1)
            try:
                logs = await self._rpc(
                    "eth_getLogs",
                    [{"address": address or self._mailbox, "topics": [topic0], "fromBlock": hex(start),
                      "toBlock": hex(end)}],
                )
            except LogQueryTooLarge:
                if chunk == 1:
                    raise
                chunk = max(1, (end - start + 1) // 2)
                log.info("log_chunk_halved", chain=self._name, chunk_blocks=chunk)
                continue
            out.extend(lg for lg in logs if not lg.get("removed"))
            start = end + 1
        return out

    async def _timestamps_of(self, heights: set[int]) -> dict[int, float]:
        cache = self._timestamps
        missing = sorted(h for h in heights if h not in cache)
        if missing:
            blocks = await self._rpc_many([("eth_getBlockByNumber", [hex(h), False]) for h in missing])
            for h, block in zip(missing, blocks):
                if block is None:
                    raise RpcError(f"block {h} is missing on the node (reorg or pruned?)", chain=self._name,
                                   reason="block missing")
                cache[h] = float(hex_int(block["timestamp"]))
            while len(cache) > TIMESTAMP_CACHE:
                cache.popitem(last=False)
        return {h: cache[h] for h in heights}

    @evm_boundary
    async def fetch_dispatched(self, from_height: Height, to_height: Height) -> list[DispatchedMessage]:
        if to_height < from_height:
            return []
        logs = await self._get_logs(abi.DISPATCH_TOPIC, from_height, to_height)
        if not logs:
            return []
        times = await self._timestamps_of({hex_int(lg["blockNumber"]) for lg in logs})
        found: list[DispatchedMessage] = []
        for lg in logs:
            tx_hash = lg["transactionHash"]
            height = hex_int(lg["blockNumber"])
            try:
                raw = abi.decode_single_bytes(bytes.fromhex(lg["data"][2:]))
                message = Message.decode(raw)
            except (MessageFormatError, ValueError) as exc:
                raise RpcError(f"Dispatch log {hex_int(lg['logIndex'])} of tx {tx_hash} does not hold a message: {exc}",
                               chain=self._name, reason="malformed dispatch log") from exc
            mid = keccak256(raw)
            topic_id = lg["topics"][1] if len(lg["topics"]) > 1 else ""
            if "0x" + mid.hex() != topic_id.lower():
                raise RpcError(
                    f"Dispatch log {hex_int(lg['logIndex'])} of tx {tx_hash}: message hashes to 0x{mid.hex()}, the "
                    f"log's id is {topic_id}",
                    chain=self._name, reason="dispatch id mismatch",
                )
            found.append(DispatchedMessage(message, raw, MessageId(mid), Height(height), TxHash(tx_hash),
                                           hex_int(lg["logIndex"]), times[height]))
        found.sort(key=lambda d: d.message.nonce)
        return found

    @evm_boundary
    async def mailbox_state(self, height: Height) -> MailboxState:
        block = hex(height)
        call = {"to": self._mailbox}
        root_hex, count_hex = await self._rpc_many([
            ("eth_call", [{**call, "data": "0x" + abi.ROOT.hex()}, block]),
            ("eth_call", [{**call, "data": "0x" + abi.COUNT.hex()}, block]),
        ])
        if len(root_hex) < 66 or len(count_hex) < 66:
            raise MailboxNotDeployed(f"mailbox {self._config.mailbox} returned no data at height {height} (no code "
                                     "there yet?)",
                                     chain=self._name, reason="mailbox not deployed")
        return MailboxState(self._mailbox32, bytes.fromhex(root_hex[2:66]), hex_int(count_hex[:66]), Height(height))

    @evm_boundary
    async def processed_messages(self, from_height: Height, to_height: Height) -> list[tuple[MessageId, Height]]:
        if to_height < from_height:
            return []
        logs = await self._get_logs(abi.PROCESS_TOPIC, from_height, to_height)
        return [(MessageId(bytes.fromhex(lg["topics"][1][2:])), Height(hex_int(lg["blockNumber"]))) for lg in logs]
