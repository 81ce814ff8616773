"""EVM <-> Solana end to end through the real daemon: L1 TST to Solana as a wrapped SPL token and back, supply
conserved on both sides; a plain message Solana -> rollup; a Solana devnet restart mid-flight loses nothing.

The devnet: three anvils plus the Solana devnet (LiteSVM behind JSON-RPC), the validators' 2-of-3 SPL
multisig as the wrapped mint's authority. One daemon (role all): validators attest the L1 (light client) and
Solana (finalized reads), and co-sign Solana deliveries, each guarded on chain by per-validator accounts.
"""

from __future__ import annotations

import pytest

from adapters.message import address_to_bytes32
from devnets.devnet import Devnet
from devnets.solana import start_solana_devnet, wait_until_ready
from tests.integration.harness import (
    DaemonProcess,
    DevnetClient,
    free_port_block,
    wait_for_async,
    write_daemon_config,
)

pytestmark = pytest.mark.integration

SCALE = 10**9  # TST: 18 decimals on the L1, 9 on Solana


@pytest.fixture(scope="module")
def solana_devnet(tmp_path_factory):
    net = Devnet(tmp_path_factory.mktemp("devnet-solana"), base_port=free_port_block(21), api_port=free_port_block(1),
                 families=("evm", "solana"))
    net.up()
    yield net
    net.down()


async def test_l1_token_to_solana_and_back_conserves_supply(solana_devnet, tmp_path):
    client = DevnetClient(solana_devnet)
    daemon = DaemonProcess(write_daemon_config(solana_devnet, tmp_path, api_port=free_port_block(1)),
                           tmp_path / "d.log").start()
    try:
        l1, sol = client.adapters["l1"], client.adapters["solana"]
        evm_user = client.address("l1")
        sol_user = client.address("solana")
        bridge_l1 = client.manifest["chains"]["l1"]["contracts"]["token_bridge"]
        supply_l1 = await l1.token_supply("TST")  # type: ignore[attr-defined]
        locked_before = await l1.token_balance("TST", bridge_l1)  # type: ignore[attr-defined]
        evm_before = await l1.token_balance("TST", evm_user)  # type: ignore[attr-defined]
        sol_before = await sol.token_balance("TST", sol_user)  # type: ignore[attr-defined]
        wrapped_before = await sol.token_supply("TST")  # type: ignore[attr-defined]

        amount = 3 * 10**18
        _tx, out_id = await l1.send_token(client.key("l1"), "TST", amount, client.domain("solana"),  # type: ignore[attr-defined]
                                          sol.account_bytes32(sol_user))  # type: ignore[attr-defined]

        async def arrived() -> bool:
            return await sol.token_balance("TST", sol_user) == sol_before + amount // SCALE  # type: ignore[attr-defined,no-any-return]

        await wait_for_async(arrived, 120, "wrapped TST minted on Solana")
        assert (await sol.delivered([out_id]))[0]
        assert await sol.token_supply("TST") - wrapped_before == amount // SCALE  # type: ignore[attr-defined]
        assert await l1.token_balance("TST", bridge_l1) == locked_before + amount  # type: ignore[attr-defined]

        _tx, back_id = await sol.send_token(client.key("solana"), "TST", amount // SCALE, client.domain("l1"),  # type: ignore[attr-defined]
                                            address_to_bytes32(evm_user))

        async def home() -> bool:
            return await l1.token_balance("TST", evm_user) == evm_before  # type: ignore[attr-defined,no-any-return]

        await wait_for_async(home, 120, "TST unlocked on the L1")
        assert (await l1.delivered([back_id]))[0]
        assert await l1.token_supply("TST") == supply_l1  # type: ignore[attr-defined]
        assert await l1.token_balance("TST", bridge_l1) == locked_before  # type: ignore[attr-defined]
        assert await sol.token_supply("TST") == wrapped_before  # type: ignore[attr-defined]  (burned on the way out)
        assert await sol.token_balance("TST", sol_user) == sol_before  # type: ignore[attr-defined]
    finally:
        daemon.stop()
        await client.close()


async def test_message_from_solana_to_a_rollup_survives_a_solana_restart(solana_devnet, tmp_path):
    client = DevnetClient(solana_devnet)
    daemon = DaemonProcess(write_daemon_config(solana_devnet, tmp_path, api_port=free_port_block(1)),
                           tmp_path / "d.log").start()
    try:
        sol, rollup = client.adapters["solana"], client.adapters["rollup_a"]
        recipient = address_to_bytes32(client.manifest["chains"]["rollup_a"]["contracts"]["test_recipient"])
        _tx, first = await sol.dispatch_messages(client.key("solana"), client.domain("rollup_a"), recipient,  # type: ignore[attr-defined]
                                                 [b"hello rollup from solana"])
        # restart the Solana devnet on its state directory while the message is in flight
        state = solana_devnet._state()["chains"]["solana"]
        from adapters.evm.devnet import stop_process

        stop_process(state["pid"])
        port = int(state["rpc_url"].rsplit(":", 1)[1])
        proc = start_solana_devnet(port, solana_devnet.dir / "solana", log_path=solana_devnet.dir / "solana.log")
        solana_devnet._record_process("solana", proc.pid, state["rpc_url"], "solana")
        wait_until_ready(state["rpc_url"], timeout=60, process=proc)
        _tx, second = await sol.dispatch_messages(client.key("solana"), client.domain("rollup_a"), recipient,  # type: ignore[attr-defined]
                                                  [b"second, after the restart"])

        async def both() -> bool:
            return all(await rollup.delivered([first[0], second[0]]))

        await wait_for_async(both, 120, "both Solana messages delivered on rollup_a")
    finally:
        daemon.stop()
        await client.close()
