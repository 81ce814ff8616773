"""EVM <-> Cosmos end to end through the real daemon: L1 TST to the Cosmos devnet and back, supply conserved.

The devnet: three anvils plus the project's Cosmos chain (real CometBFT commits), the validators' 2-of-3
multisig vault holding the escrow of wrapped TST (``uxtst``, 6 decimals; 18 at home). One daemon (role all):
validators attest the L1 with the Ethereum light client and the Cosmos chain with the Tendermint one, and
co-sign Cosmos deliveries; the relayer delivers both ways.
"""

from __future__ import annotations

import httpx
import pytest

from adapters.message import address_to_bytes32
from devnets.devnet import COSMOS_ESCROW, Devnet
from tests.integration.harness import (
    DaemonProcess,
    DevnetClient,
    free_port_block,
    wait_for_async,
    write_daemon_config,
)

pytestmark = pytest.mark.integration

SCALE = 10**12  # TST has 18 decimals on the L1, uxtst 6
AT_START: dict[str, int] = {}  # uxtst of every genesis account and of the vault, read right after `devnet up`


def uxtst_holdings(net: Devnet) -> dict[str, int]:
    cosmos = net.manifest()["chains"]["cosmos"]
    addresses = [*cosmos["genesis_balances"]["accounts"], cosmos["vault"]]
    return {a: int(httpx.get(f"{cosmos['rest_url']}/cosmos/bank/v1beta1/balances/{a}/by_denom",
                             params={"denom": "uxtst"}, timeout=5).json()["balance"]["amount"]) for a in addresses}


@pytest.fixture(scope="module")
def cosmos_devnet(tmp_path_factory):
    base = free_port_block(21)
    net = Devnet(tmp_path_factory.mktemp("devnet-cosmos"), base_port=base, api_port=free_port_block(1),
                 families=("evm", "cosmos"))
    net.up()
    AT_START.update(uxtst_holdings(net))
    yield net
    net.down()


def test_at_start_only_the_vault_holds_wrapped_tst(cosmos_devnet):
    """`relayer devnet up`'s Cosmos chain: no genesis account holds uxtst, the vault holds the whole escrow, and the
    genesis document and the bank supply say the same (so every uxtst in circulation was paid out of the vault)."""
    cosmos = cosmos_devnet.manifest()["chains"]["cosmos"]
    vault = cosmos["vault"]
    accounts = cosmos["genesis_balances"]["accounts"]
    assert len(accounts) == 5 and all("uxtst" not in b for b in accounts.values())
    assert {a: AT_START[a] for a in accounts} == {a: 0 for a in accounts}
    assert AT_START[vault] == COSMOS_ESCROW == cosmos["tokens"]["TST"]["escrow"]
    assert cosmos["genesis_balances"]["escrow"] == {"address": vault, "balances": {"uxtst": COSMOS_ESCROW}}
    genesis = httpx.get(f"{cosmos['rpc_url']}/genesis", timeout=5).json()["result"]["genesis"]["app_state"]["bank"]
    assert [b["address"] for b in genesis["balances"] if any(c["denom"] == "uxtst" for c in b["coins"])] == [vault]
    supply = httpx.get(f"{cosmos['rest_url']}/cosmos/bank/v1beta1/supply/by_denom", params={"denom": "uxtst"},
                       timeout=5).json()["amount"]["amount"]
    assert int(supply) == COSMOS_ESCROW  # nothing minted since: the escrow is all there is


async def test_l1_token_to_cosmos_and_back_conserves_supply(cosmos_devnet, tmp_path):
    client = DevnetClient(cosmos_devnet)
    daemon = DaemonProcess(write_daemon_config(cosmos_devnet, tmp_path, api_port=free_port_block(1)),
                           tmp_path / "d.log").start()
    try:
        l1, cosmos = client.adapters["l1"], client.adapters["cosmos"]
        evm_user = client.address("l1")
        cosmos_user = client.address("cosmos")
        cosmos_user32 = cosmos.account_bytes32(cosmos_user)  # type: ignore[attr-defined]
        bridge_l1 = client.manifest["chains"]["l1"]["contracts"]["token_bridge"]
        supply_l1 = await l1.token_supply("TST")  # type: ignore[attr-defined]
        locked_before = await l1.token_balance("TST", bridge_l1)  # type: ignore[attr-defined]
        evm_before = await l1.token_balance("TST", evm_user)  # type: ignore[attr-defined]
        cosmos_before = await cosmos.token_balance("TST", cosmos_user)  # type: ignore[attr-defined]
        escrow_before = await cosmos.token_supply("TST")  # type: ignore[attr-defined]
        assert cosmos_before == AT_START[cosmos_user] == 0  # it holds only what it bridges in

        amount = 7 * 10**18
        _tx, out_id = await l1.send_token(client.key("l1"), "TST", amount, client.domain("cosmos"), cosmos_user32)  # type: ignore[attr-defined]

        async def arrived() -> bool:
            return await cosmos.token_balance("TST", cosmos_user) == cosmos_before + amount // SCALE  # type: ignore[attr-defined,no-any-return]

        await wait_for_async(arrived, 120, "TST paid out of the Cosmos vault")
        assert await l1.token_balance("TST", bridge_l1) == locked_before + amount  # type: ignore[attr-defined]
        assert (await cosmos.delivered([out_id]))[0]
        # wrapped out on Cosmos == locked on the L1 for this trip
        assert await cosmos.token_supply("TST") - escrow_before == amount // SCALE  # type: ignore[attr-defined]

        back = amount // SCALE
        _tx, back_id = await cosmos.send_token(client.key("cosmos"), "TST", back, client.domain("l1"),  # type: ignore[attr-defined]
                                               address_to_bytes32(evm_user))

        async def home() -> bool:
            return await l1.token_balance("TST", evm_user) == evm_before  # type: ignore[attr-defined,no-any-return]

        await wait_for_async(home, 120, "TST unlocked on the L1")
        assert (await l1.delivered([back_id]))[0]
        assert await l1.token_supply("TST") == supply_l1  # type: ignore[attr-defined]
        assert await l1.token_balance("TST", bridge_l1) == locked_before  # type: ignore[attr-defined]
        assert await cosmos.token_balance("TST", cosmos_user) == cosmos_before  # type: ignore[attr-defined]
        assert await cosmos.token_supply("TST") == escrow_before  # type: ignore[attr-defined]
    finally:
        daemon.stop()
        await client.close()
