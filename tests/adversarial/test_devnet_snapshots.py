"""Nobody can rewind the Solana or the Cosmos devnet of ``relayer devnet up`` (or ``make run``): their in-place
snapshots (``xchain_snapshot`` / ``xchain_revert``, ``devnets.snapshots``) serve only a devnet started with the
opt-in (``--allow-snapshots``, the xchain pytest plugin's own session devnet), and the suite's devnet is started
without it, as ``relayer devnet up`` starts it.

The attacker process (public world, its own funded accounts) spends once, calls ``xchain_snapshot``, spends again
and calls ``xchain_revert`` with the ids a devnet would hand out, in every form (JSON-RPC ``POST /``; ``GET`` routes
on the CometBFT RPC). Every call is refused with the reason; read from the chains by the test process afterwards,
nothing moved: both spends are there and were not undone (the recipient holds both, each transaction is found at
its height), and the chains kept going.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from devnets import snapshots

pytestmark = pytest.mark.integration

REASON = "not started with snapshots enabled (--allow-snapshots)"


def _height(family: str, rpc_url: str) -> int:
    if family == "cosmos":
        return int(httpx.get(f"{rpc_url}/status", timeout=10).json()["result"]["sync_info"]["latest_block_height"])
    return int(_solana(rpc_url, "getSlot", [{"commitment": "processed"}]))


def _solana(rpc_url: str, method: str, params: list[Any]) -> Any:
    body = httpx.post(rpc_url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}, timeout=10).json()
    assert "result" in body, body
    return body["result"]


def test_nobody_rewinds_a_devnet_started_without_the_opt_in(attacker: Any, bridge_devnet: Any) -> None:
    assert bridge_devnet.allow_snapshots is False  # the suite's devnet is started as `relayer devnet up` starts it
    seen = attacker.run("devnet_snapshots.rewind")
    assert set(seen) == {"solana", "cosmos"}

    for name, report in seen.items():
        for answer in report["answers"]:
            error = answer["body"].get("error")
            assert error is not None and "result" not in answer["body"], (name, answer)
            assert error["code"] == snapshots.REFUSED_CODE, (name, answer)
            text = f"{error.get('message')} {error.get('data') or ''}"
            assert REASON in text and answer["method"].split("/")[-1] in text, (name, answer)
            if name == "cosmos":
                assert answer["status"] == 403, answer

    # Solana: both spends landed and stay; the recipient holds both; the slots went on
    solana = seen["solana"]
    statuses = _solana(solana["rpc_url"], "getSignatureStatuses", [solana["spent"], {"searchTransactionHistory": True}])
    assert all(s is not None and s["err"] is None for s in statuses["value"]), statuses
    for signature in solana["spent"]:
        found = _solana(solana["rpc_url"], "getTransaction",
                        [signature, {"commitment": "confirmed", "encoding": "base64",
                                     "maxSupportedTransactionVersion": 0}])
        assert found is not None and found["meta"]["err"] is None
    held = _solana(solana["rpc_url"], "getBalance", [solana["recipient"], {"commitment": "confirmed"}])["value"]
    assert held == 2 * solana["spend"]

    # Cosmos: both sends found at their heights; the recipient holds both
    cosmos = seen["cosmos"]
    for tx_hash in cosmos["spent"]:
        found = httpx.get(f"{cosmos['rpc_url']}/tx", params={"hash": "0x" + tx_hash}, timeout=10).json()
        assert "result" in found and found["result"]["tx_result"]["code"] == 0, found
        assert int(found["result"]["height"]) > cosmos["height_before"]
    balance = httpx.get(f"{cosmos['rest_url']}/cosmos/bank/v1beta1/balances/{cosmos['recipient']}/by_denom",
                        params={"denom": cosmos["fee_denom"]}, timeout=10).json()["balance"]
    assert int(balance["amount"]) == 2 * cosmos["spend"]

    # both chains kept going, past what the attacker saw last (no height went back)
    for name, report in seen.items():
        family = "solana" if name == "solana" else "cosmos"
        assert report["height_after"] > report["height_before"]
        deadline = time.monotonic() + 30
        while _height(family, report["rpc_url"]) <= report["height_after"]:
            assert time.monotonic() < deadline, f"{name} stopped producing blocks"
            time.sleep(0.1)
