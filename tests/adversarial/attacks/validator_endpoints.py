"""Attacks on the validators' endpoints (``POST /validators/{address}/cosign``, ``GET .../checkpoints/...``).

The attacker holds no relayer identity key. It asks for co-signatures without a signature, with its own key, in the
relayer's name, and by replaying, altering, retargeting and re-dating a real signed co-sign request of the relayer
that it was handed (what an eavesdropper on the relayer's link would have seen); and it floods the checkpoint
endpoints, unsigned and signed with its own key, from the same loopback address the relayer uses.
"""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path
from typing import Any

from adapters.message import keccak256
from relayer.api.relayer_auth import (
    HEADER_ADDRESS,
    HEADER_BODY_HASH,
    HEADER_TIMESTAMP,
    RelayerRequestSigner,
)
from tests.adversarial.attacker import AttackerContext

JSON = {"Content-Type": "application/json"}


def _altered(body: str) -> str:
    """The same co-sign request with one hex digit of its payload changed (another transaction)."""
    found = re.search(r'"payload"\s*:\s*"', body)
    if found is None:
        raise ValueError("the captured body has no payload")
    at = found.end() + 10
    return body[:at] + ("1" if body[at] != "1" else "2") + body[at + 1:]


async def _post(ctx: AttackerContext, path: str, body: str, headers: dict[str, str]) -> dict[str, Any]:
    resp = await ctx.http.post(f"{ctx.api_url}{path}", content=body.encode(), headers={**JSON, **headers})
    try:
        doc = resp.json()
    except ValueError:
        doc = {}
    detail = doc.get("detail") if isinstance(doc, dict) else None
    return {"status": resp.status_code, "reason": detail.get("reason") if isinstance(detail, dict) else None,
            "cosigned": isinstance(doc, dict) and "signature" in doc}


async def cosign_attacks(ctx: AttackerContext, captured: dict[str, Any], validators: list[str],
                         late_replay_s: float = 0.0) -> dict[str, Any]:
    """Co-sign requests built from ``captured`` (path, headers, body of one real signed request of the relayer).
    With ``late_replay_s``, the captured request is then replayed once a second until the validator calls it stale
    (at most that many seconds)."""
    path, body = str(captured["path"]), str(captured["body"])
    headers = {k: v for k, v in captured["headers"].items() if k.lower().startswith("x-relayer-")}
    victim = path.split("/")[2].lower()
    other = next(v for v in validators if v.lower() != victim)
    own = RelayerRequestSigner(ctx.keys["evm"])
    altered = _altered(body)
    relayer_address = next(v for k, v in headers.items() if k.lower() == HEADER_ADDRESS.lower())
    stamp = next(k for k in headers if k.lower() == HEADER_TIMESTAMP.lower())
    attempts: dict[str, tuple[str, str, dict[str, str]]] = {
        "unsigned": (path, body, {}),
        "own_key": (path, body, own.headers("POST", path.encode(), body.encode())),
        "own_key_altered_payload": (path, altered, own.headers("POST", path.encode(), altered.encode())),
        "own_key_in_relayers_name": (path, body, {**own.headers("POST", path.encode(), body.encode()),
                                                  HEADER_ADDRESS: relayer_address}),
        "replayed": (path, body, headers),
        "altered_payload": (path, altered, headers),
        "altered_payload_rehashed": (path, altered, {**{k: v for k, v in headers.items()
                                                        if k.lower() != HEADER_BODY_HASH.lower()},
                                                     HEADER_BODY_HASH: "0x" + keccak256(altered.encode()).hex()}),
        "retargeted": (f"/validators/{other}/cosign", body, headers),
        "redated": (path, body, {**headers, stamp: str(int(headers[stamp]) + 1)}),
    }
    results = {name: await _post(ctx, p, b, h) for name, (p, b, h) in attempts.items()}
    late: list[dict[str, Any]] = []
    deadline = time.monotonic() + late_replay_s
    while late_replay_s and time.monotonic() < deadline:
        answer = await _post(ctx, path, body, headers)
        answer["age_s"] = round(time.time() - int(headers[stamp]), 1)
        late.append(answer)
        if answer["reason"] == "stale_timestamp":
            break
        await asyncio.sleep(1.0)
    return {"attempts": results, "late": late}


async def checkpoint_flood(ctx: AttackerContext, validators: list[str], origins: list[int], stop_file: str,
                           max_s: float = 240.0, concurrency: int = 6) -> dict[str, Any]:
    """GET the validators' latest checkpoints as fast as ``concurrency`` connections go, half unsigned and half signed
    with the attacker's own key, until ``stop_file`` exists (at most ``max_s``)."""
    own = RelayerRequestSigner(ctx.keys["evm"])
    counts: dict[str, dict[int, int]] = {"unsigned": {}, "own_key": {}}
    retry_after: set[str] = set()
    errors = 0
    started = time.monotonic()
    stop = Path(stop_file)

    async def worker(i: int) -> None:
        nonlocal errors
        kind = "own_key" if i % 2 else "unsigned"
        n = 0
        while not stop.exists() and time.monotonic() - started < max_s:
            path = f"/validators/{validators[n % len(validators)]}/checkpoints/{origins[n % len(origins)]}/latest"
            n += 1
            headers = own.headers("GET", path.encode(), b"") if kind == "own_key" else {}
            try:
                resp = await ctx.http.get(f"{ctx.api_url}{path}", headers=headers)
            except Exception:  # noqa: BLE001 - the attacker counts what failed and goes on
                errors += 1
                continue
            counts[kind][resp.status_code] = counts[kind].get(resp.status_code, 0) + 1
            if resp.status_code == 429:
                retry_after.add(resp.headers.get("Retry-After", ""))

    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return {"counts": {k: {str(s): n for s, n in v.items()} for k, v in counts.items()},
            "retry_after": sorted(retry_after), "errors": errors, "duration_s": time.monotonic() - started,
            "stopped_by_file": stop.exists()}
