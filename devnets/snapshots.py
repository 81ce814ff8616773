"""In-place snapshots of the project's own devnets (Solana, Cosmos): the devnet-only counterpart of anvil's
``evm_snapshot`` / ``evm_revert``, served on each devnet's RPC port as ``xchain_snapshot`` and ``xchain_revert``.

- ``xchain_snapshot`` answers an id (``"0x1"``, ``"0x2"``, ...): the chain as it is now (state, blocks or slots,
  transaction history), kept in the devnet process's memory (a restart of the process forgets its snapshots).
- ``xchain_revert(id)`` puts the chain back to that snapshot in place (no process restart), answers ``true``, and
  the chain goes on producing blocks from the reverted height. Unlike anvil's, a snapshot is reusable: it survives
  its revert, so a test session snapshots once and reverts to the same id before every test. Reverting to an id
  discards the snapshots taken after it (they describe a chain that no longer exists); an unknown or discarded id
  is an error, and nothing moves.

Who may call them: nobody, unless the devnet process was started with ``--allow-snapshots``
(``devnets.devnet.Devnet(allow_snapshots=True)``, which only the ``xchain`` pytest plugin's session does; ``relayer
devnet up`` and ``make run`` do not). Otherwise both methods are refused with an error that says so: a devnet that
others use (a shared ``make run``, a CI devnet) cannot be rewound under them by whoever reaches its RPC port.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any, Generic, TypeVar

SNAPSHOT = "xchain_snapshot"
REVERT = "xchain_revert"
METHODS = (SNAPSHOT, REVERT)
ALLOW_FLAG = "--allow-snapshots"
REFUSED_CODE = -32000
"""The JSON-RPC error code of a refused snapshot or revert (a server error; the message says why)."""

T = TypeVar("T")


def refusal(method: str) -> str:
    """The error message of a snapshot or revert on a devnet started without the opt-in."""
    return (f"{method} refused: this devnet was not started with snapshots enabled ({ALLOW_FLAG}); snapshot and "
            "revert are for a test session's own devnet (the xchain pytest plugin), not for a devnet others use")


class SnapshotError(Exception):
    """A revert to an id that is not a live snapshot (malformed, unknown, or discarded by an earlier revert); on
    the client side (``take`` / ``revert``), any error answer of the devnet."""


class SnapshotBook(Generic[T]):
    """The snapshots one devnet process holds, by id (``0x``-hex, counting from 1, never reused)."""

    def __init__(self) -> None:
        self._taken: dict[int, T] = {}
        self._next = 1

    def add(self, snapshot: T) -> str:
        number = self._next
        self._next += 1
        self._taken[number] = snapshot
        return hex(number)

    def revert_to(self, snapshot_id: object) -> T:
        """The snapshot ``snapshot_id`` names; the ones taken after it are discarded (it stays)."""
        number = _parse_id(snapshot_id)
        snapshot = self._taken.get(number) if number is not None else None
        if number is None or snapshot is None:
            live = ", ".join(hex(n) for n in self._taken) or "none"
            raise SnapshotError(f"no snapshot {snapshot_id!r} to revert to (live snapshots: {live})")
        for later in [n for n in self._taken if n > number]:
            del self._taken[later]
        return snapshot

    def __len__(self) -> int:
        return len(self._taken)


def _parse_id(snapshot_id: object) -> int | None:
    if isinstance(snapshot_id, bool):
        return None
    if isinstance(snapshot_id, int):
        return snapshot_id
    if isinstance(snapshot_id, str):
        try:
            return int(snapshot_id, 0)
        except ValueError:
            return None
    return None


# ---- the client side: what a test session calls ----------------------------------------------------------


def take(family: str, rpc_url: str, timeout_s: float = 10.0) -> str:
    """``xchain_snapshot`` on the ``family`` (``solana`` or ``cosmos``) devnet at ``rpc_url``: the snapshot's id."""
    result = _call(family, rpc_url, SNAPSHOT, None, timeout_s)
    return str(result["id"] if family == "cosmos" else result)


def revert(family: str, rpc_url: str, snapshot_id: str, timeout_s: float = 10.0) -> None:
    """``xchain_revert`` to ``snapshot_id`` on the ``family`` devnet at ``rpc_url`` (``SnapshotError`` if refused)."""
    result = _call(family, rpc_url, REVERT, snapshot_id, timeout_s)
    if (result.get("reverted") if family == "cosmos" else result) is not True:
        raise SnapshotError(f"{REVERT} to {snapshot_id} on {rpc_url} answered {result!r}")


def _call(family: str, rpc_url: str, method: str, snapshot_id: str | None, timeout_s: float) -> Any:
    """One JSON-RPC ``POST /``: params ``[id]`` (Solana) or ``{"id": id}`` (CometBFT), none for a snapshot."""
    if family not in ("solana", "cosmos"):
        raise ValueError(f"no in-place snapshots on a {family} devnet (anvil: evm_snapshot / evm_revert)")
    params: Any = ([] if snapshot_id is None else [snapshot_id]) if family == "solana" else (
        {} if snapshot_id is None else {"id": snapshot_id})
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
    request = urllib.request.Request(rpc_url, body, {"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            answer = json.loads(response.read())
    except urllib.error.HTTPError as exc:  # the CometBFT app answers its errors with HTTP 4xx/5xx and a JSON body
        try:
            answer = json.loads(exc.read())
        except ValueError:
            raise SnapshotError(f"{method} on {rpc_url}: HTTP {exc.code}") from exc
    if "error" in answer:
        error = answer["error"]
        raise SnapshotError(f"{method} on {rpc_url}: {error.get('data') or error.get('message')}")
    return answer["result"]
