"""Quotes against the fees deliveries actually pay (issue 14): ``POST /v1/quote`` for 1 TST from l1 to Cosmos and to
Solana, then that transfer relayed by the real daemon, and the fee its delivery paid read from the destination chain.

The devnet: three anvils, the project's Cosmos chain and the Solana devnet (LiteSVM). Native token prices are the
devnet config's (``router.native_usd_by_chain``, written by ``relayer devnet up``); the quote's destination fee in USD
divided by that price is the fee in the destination's native token, compared with what the chain says was paid:

* Cosmos: the vault multisig pays every delivery's fee in the fee denom; paid = its fee-denom balance before the
  transfer minus after the delivery (no other transaction touches it here), which must also be the fee the delivery
  transaction declares (the chain charges a declared fee whole).
* Solana: the relayer's fee payer pays; paid = the transaction's ``meta.fee`` plus the rent sent to the accounts the
  delivery created (replay guards, the recipient's token account), which must also be the fee payer's spend.

Tolerance: 1%. Neither devnet has a fee market: a payout's fee is fixed by configuration (Cosmos: the delivery's
gas x the configured gas price; Solana: signatures, a priority fee of 0, rent-exempt minimums), so a quote from the
right model is exact up to its rounding (6 significant digits of a float32); 1% leaves room for that and nothing
else. The quote is for a delivery alone to a recipient with no token account yet (the case here); a recipient that
has one pays less by exactly that account's rent (checked on Solana with a second transfer).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import pytest
from solders.keypair import Keypair

from adapters.base import TxHash
from devnets.devnet import DEVNET_NATIVE_USD, Devnet
from relayer.store import MessageState
from tests.integration.harness import (
    DevnetClient,
    free_port_block,
    start_routing_daemon,
    wait_for_async,
)

pytestmark = pytest.mark.integration

TOLERANCE = 1.01  # see the module docstring: fixed fees, the quote is exact up to 6 significant digits
ONE_TST = 10**18  # on l1 (18 decimals)
TOKEN_ACCOUNT_SPACE = 165  # bytes of an SPL token account


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    devnet = Devnet(tmp_path_factory.mktemp("devnet-fees"), base_port=free_port_block(21),
                    api_port=free_port_block(1), families=("evm", "cosmos", "solana"))
    devnet.up()
    yield devnet
    devnet.down()


@pytest.fixture(scope="module")
def api(net, tmp_path_factory):
    daemon = start_routing_daemon(net, tmp_path_factory.mktemp("fees-daemon"), "fees", timeout=60)
    yield daemon.api_url
    daemon.stop()


@pytest.fixture
async def client(net):
    c = DevnetClient(net)
    yield c
    await c.close()


def quote_to(api: str, dest: str) -> tuple[dict[str, Any], float]:
    """The quote for 1 TST from l1 to ``dest`` (its route, which must be its only option) and ``dest``'s native
    token price as ``/v1/chains`` reports it."""
    q = httpx.post(f"{api}/v1/quote", json={"kind": "xchain", "amount": "1", "token": "TST", "from_chain": "l1",
                                            "chains": [dest]}, timeout=10).json()
    route = q["route"]
    assert route is not None and route["chain"] == dest and route["origin"] == "l1"
    assert q["options"] == [route]  # one computation: the route is its option, figure for figure
    assert route["fee_usd"] == pytest.approx(route["origin_fee_usd"] + route["destination_fee_usd"], rel=1e-5)
    chains = {c["name"]: c for c in httpx.get(f"{api}/v1/chains", timeout=10).json()["chains"]}
    assert chains[dest]["native_usd"] == DEVNET_NATIVE_USD[dest]  # the devnet config's price, not ether's
    assert chains[dest]["payout_fee_usd"] == route["destination_fee_usd"]  # the chain card says the same
    return route, chains[dest]["native_usd"]


def within_tolerance(quoted: float, paid: int) -> bool:
    return paid / TOLERANCE <= quoted <= paid * TOLERANCE


async def delivery_tx(api: str, message_id: bytes) -> str:
    """The transaction that delivered ``message_id``, once the daemon has it delivered."""
    found: dict[str, Any] = {}

    async def delivered() -> bool:
        async with httpx.AsyncClient(timeout=10) as http:
            resp = await http.get(f"{api}/v1/messages/0x{message_id.hex()}")
        if resp.status_code != 200:
            return False
        rec = resp.json()["messages"][0]
        found.update(rec)
        return bool(rec["state"] == MessageState.DELIVERED.value and rec["delivery_tx"])

    await wait_for_async(delivered, 120, f"message 0x{message_id.hex()} delivered")
    return str(found["delivery_tx"])


def cosmos_balance(rest_url: str, address: str, denom: str) -> int:
    body = httpx.get(f"{rest_url}/cosmos/bank/v1beta1/balances/{address}/by_denom", params={"denom": denom},
                     timeout=5).json()
    return int(body["balance"]["amount"])


async def test_cosmos_quote_matches_the_fee_its_delivery_paid(api, client):
    route, native_usd = quote_to(api, "cosmos")
    chain = client.manifest["chains"]["cosmos"]
    cosmos, l1 = client.adapters["cosmos"], client.adapters["l1"]
    decimals = cosmos.native_decimals  # type: ignore[attr-defined]
    quoted = float(Decimal(str(route["destination_fee_usd"])) / Decimal(str(native_usd)) * 10**decimals)

    vault_before = cosmos_balance(chain["rest_url"], chain["vault"], chain["fee_denom"])
    recipient = cosmos.account_bytes32(client.address("cosmos"))  # type: ignore[attr-defined]
    _tx, message_id = await l1.send_token(client.key("l1"), "TST", ONE_TST, client.domain("cosmos"), recipient)  # type: ignore[attr-defined]
    tx = await delivery_tx(api, message_id)
    paid = vault_before - cosmos_balance(chain["rest_url"], chain["vault"], chain["fee_denom"])
    declared = (await cosmos.tx_receipt(TxHash(tx))).fee_paid  # type: ignore[attr-defined]

    assert paid == declared > 0, f"vault paid {paid}, the delivery {tx} declares {declared} {chain['fee_denom']}"
    assert within_tolerance(quoted, paid), (f"quoted {quoted:.1f} {chain['fee_denom']} "
                                            f"(${route['destination_fee_usd']}), the delivery paid {paid}")


def solana_rpc(url: str, method: str, params: list[Any]) -> Any:
    body = httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}, timeout=10).json()
    return body["result"]


def solana_paid(url: str, signature: str) -> int:
    """Lamports a transaction cost its fee payer: ``meta.fee`` plus the rent sent to the accounts it created (empty
    before it, funded after), checked against the fee payer's balance change."""
    tx = solana_rpc(url, "getTransaction", [signature, {"encoding": "json", "commitment": "confirmed"}])
    meta = tx["meta"]
    assert meta["err"] is None
    pre, post = meta["preBalances"], meta["postBalances"]
    created = sum(after for before, after in zip(pre, post, strict=True) if before == 0 and after > 0)
    paid = int(meta["fee"]) + created
    assert pre[0] - post[0] == paid, f"the fee payer spent {pre[0] - post[0]}, fee + created accounts {paid}"
    return paid


async def test_solana_quote_matches_the_fee_its_delivery_paid(api, client):
    route, native_usd = quote_to(api, "solana")
    url = client.manifest["chains"]["solana"]["rpc_url"]
    sol, l1 = client.adapters["solana"], client.adapters["l1"]
    quoted = float(Decimal(str(route["destination_fee_usd"])) / Decimal(str(native_usd)) * 10**9)  # lamports

    recipient = sol.account_bytes32(str(Keypair().pubkey()))  # type: ignore[attr-defined]  # no token account yet
    _tx, first = await l1.send_token(client.key("l1"), "TST", ONE_TST, client.domain("solana"), recipient)  # type: ignore[attr-defined]
    paid_new = solana_paid(url, await delivery_tx(api, first))
    assert within_tolerance(quoted, paid_new), (f"quoted {quoted:.0f} lamports (${route['destination_fee_usd']}), "
                                                f"the delivery paid {paid_new}")

    # the same recipient again: its token account exists, the delivery pays that account's rent less
    _tx, second = await l1.send_token(client.key("l1"), "TST", ONE_TST, client.domain("solana"), recipient)  # type: ignore[attr-defined]
    paid_known = solana_paid(url, await delivery_tx(api, second))
    rent = solana_rpc(url, "getMinimumBalanceForRentExemption", [TOKEN_ACCOUNT_SPACE])
    assert paid_known == paid_new - rent and quoted >= paid_known
