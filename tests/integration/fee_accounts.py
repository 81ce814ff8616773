"""Helpers for paid delivery from Solana and Cosmos origins (issue 15): native balances read from the chains, the
daemon's view of what a message owes, and dispatches that pay (or fail to pay) the relayer's fee account."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from adapters.capabilities import FeeAccountPayments
from adapters.message import address_to_bytes32
from tests.integration.harness import DevnetClient, on_devnet

PAYING_RULES = """
[[relayer.gas_payment]]
origin = "solana"
destination = "l1"
policy = "on_chain_quote"
gas_amount = {gas}

[[relayer.gas_payment]]
origin = "cosmos"
destination = "l1"
policy = "on_chain_quote"
gas_amount = {gas}
"""


def fee_account(devnet: Any, chain: str) -> str:
    return str(devnet.manifest()["chains"][chain]["gas_fee_account"])


def native_balance(devnet: Any, chain: str, address: str) -> int:
    """``address``'s lamports (Solana) or fee denom (Cosmos), read from the chain's own RPC."""
    spec = devnet.manifest()["chains"][chain]
    if spec["family"] == "solana":
        answer = httpx.post(spec["rpc_url"], json={"jsonrpc": "2.0", "id": 1, "method": "getBalance",
                                                   "params": [address, {"commitment": "finalized"}]}, timeout=10)
        return int(answer.json()["result"]["value"])
    answer = httpx.get(f"{spec['rest_url']}/cosmos/bank/v1beta1/balances/{address}/by_denom",
                       params={"denom": spec["fee_denom"]}, timeout=10)
    return int(answer.json()["balance"]["amount"])


def owed(api_url: str, mid: bytes) -> dict[str, Any]:
    """``GET /v1/messages/{id}/gas``."""
    return dict(httpx.get(f"{api_url}/v1/messages/0x{mid.hex()}/gas", timeout=10).json())


def dispatch_paying(devnet: Any, origin: str, payment: int, body: bytes, *, account: int = 0,
                    to_fee_account: str | None = None) -> bytes:
    """One message from ``origin`` to l1's TestRecipient paying ``payment`` in its dispatch transaction to the fee
    account (or to ``to_fee_account`` instead: an adapter configured with another account); its id."""
    async def go(client: DevnetClient, adapter: FeeAccountPayments) -> bytes:
        recipient = address_to_bytes32(client.manifest["chains"]["l1"]["contracts"]["test_recipient"])
        _tx, [mid] = await adapter.dispatch_paying(client.key(origin, account), client.domain("l1"),  # type: ignore[arg-type]
                                                   recipient, [body], payment)
        return bytes(mid)
    return bytes(_with_fee_account(devnet, origin, to_fee_account, go))


def top_up(devnet: Any, origin: str, mid: bytes, destination: str, amount: int, *,
           to_fee_account: str | None = None) -> str:
    """A top-up of ``amount`` for ``mid`` naming ``destination`` in its gas memo, paid to the fee account (or to
    ``to_fee_account`` instead); its transaction, once final."""
    async def go(client: DevnetClient, adapter: FeeAccountPayments) -> str:
        return str(await adapter.top_up_gas(client.key(origin), mid, client.domain(destination), amount))
    return str(_with_fee_account(devnet, origin, to_fee_account, go))


def _with_fee_account(devnet: Any, origin: str, to_fee_account: str | None,
                      act: Callable[[DevnetClient, FeeAccountPayments], Awaitable[Any]]) -> Any:
    """``act`` with ``origin``'s adapter, or one configured with ``to_fee_account`` as the relayer's fee account."""
    async def go(client: DevnetClient) -> Any:
        adapter = client.adapters[origin]
        if to_fee_account is not None:
            adapter = type(adapter)(origin, client.settings.chains[origin].model_copy(  # type: ignore[call-arg]
                update={"gas_fee_account": to_fee_account}))
        assert isinstance(adapter, FeeAccountPayments)
        try:
            return await act(client, adapter)
        finally:
            if adapter is not client.adapters[origin]:
                await adapter.close()
    return on_devnet(devnet, go)
