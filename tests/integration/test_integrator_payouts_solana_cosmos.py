"""Integrator rewards paid on Solana and Cosmos (issue 15), with the chain as judge, on the real devnets.

One devnet (l1, Solana LiteSVM, Cosmos), one daemon with the operators' keys, an admin key and payouts every
``INTERVAL_S``. A code is registered with a base58 payout account on solana and a bech32 one on cosmos; cross-chain
transfers from solana and from cosmos to l1 carry it and are delivered. Then each payout account's balance, read from
the chain, rose by exactly ``floor(share x the fees those intents paid)`` (each fee read from its transaction on
chain: Solana ``meta.fee`` in lamports, Cosmos the declared fee in the fee denom), once: the payout is one native
transfer from an operator account (a System transfer; a bank send), and the epoch that settled it paid nothing more.
The report shows each payout's transaction hash, which is that transfer's.

A payee account on Solana that does not exist yet is owed less than the rent-exempt minimum (read from the chain): the
epochs hold its payout back (``integrator_payout_held_back``, the report's pending figure with the reason), with no
payout row, no transaction and nothing on its way to it on chain. Once enough fees accrued, it is paid
``floor(share x every fee)`` at once, the first transfer at least that minimum, every payout paid, none failed.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Iterator
from decimal import ROUND_FLOOR, Decimal
from typing import Any

import httpx
import pytest
from solders.keypair import Keypair

from adapters.evm.devnet import USER_A, USER_B, devnet_key
from adapters.message import Domain
from adapters.solana.chain import keypair_from_hex
from devnets.devnet import Devnet
from router.client import RoutingClient
from tests.faults.test_chain_faults import log_events
from tests.integration.harness import DaemonProcess, DevnetClient, free_port_block, wait_for, wait_for_async
from tests.integration.lane_daemons import LANE_ENV, boot, lane_config

pytestmark = pytest.mark.integration

ADMIN_KEY = "admin-payouts-sc-" + secrets.token_hex(12)
INTERVAL_S = 2.0
SHARE = Decimal("0.25")
OPERATORS = (USER_A, USER_B)
SOLANA_PAYEE_START = 10**9  # lamports airdropped first: the payee account is rent-exempt before any payout
HOME_UNITS = 10**18  # TST at home on l1
COSMOS_UNITS = 10**6  # TST on Cosmos (uxtst)
RENT_SHARE = Decimal("0.999999")  # nearly every fee: the fewest intents reach the rent-exempt minimum
DELIVERY_S = 300.0


@pytest.fixture(scope="module")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    net = Devnet(tmp_path_factory.mktemp("devnet-payouts-sc"), base_port=free_port_block(21),
                 api_port=free_port_block(1), families=("evm", "solana", "cosmos"))
    net.up()
    yield net
    net.down()


@pytest.fixture(scope="module")
def daemon(devnet: Devnet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    directory = tmp_path_factory.mktemp("payouts-sc")
    config = lane_config(devnet, directory)
    env = {**LANE_ENV, "RELAYER__ADMIN__API_KEYS": f'["{ADMIN_KEY}"]',
           "RELAYER__ROUTER__INTEGRATOR_PAYOUT_INTERVAL_S": str(INTERVAL_S)}
    proc = DaemonProcess(config, directory / "d.log", instance="payouts-sc", env=env)
    boot(proc)
    yield proc
    proc.stop()


def _rpc(url: str, method: str, params: list[Any]) -> Any:
    answer = httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}, timeout=10).json()
    assert "error" not in answer, answer
    return answer["result"]


def _solana_rpc(devnet: Devnet) -> str:
    return str(devnet.manifest()["chains"]["solana"]["rpc_url"])


def _lamports(devnet: Devnet, account: str, commitment: str = "finalized") -> int:
    return int(_rpc(_solana_rpc(devnet), "getBalance", [account, {"commitment": commitment}])["value"])


def _solana_fee(devnet: Devnet, signature: str) -> int:
    found = _rpc(_solana_rpc(devnet), "getTransaction", [signature, {"encoding": "json", "commitment": "finalized",
                                                                     "maxSupportedTransactionVersion": 0}])
    assert found["meta"]["err"] is None
    return int(found["meta"]["fee"])


def _solana_transfer(devnet: Devnet, signature: str) -> tuple[str, str, int]:
    """(from, to, lamports) of the System transfer in ``signature``, read from the chain."""
    found = _rpc(_solana_rpc(devnet), "getTransaction", [signature, {"encoding": "jsonParsed",
                                                                     "commitment": "finalized",
                                                                     "maxSupportedTransactionVersion": 0}])
    (transfer,) = [ix["parsed"]["info"] for ix in found["transaction"]["message"]["instructions"]
                   if ix.get("program") == "system"]
    return transfer["source"], transfer["destination"], int(transfer["lamports"])


def _floor(x: Decimal) -> int:
    return int(x.to_integral_value(rounding=ROUND_FLOOR))


def _report(daemon: DaemonProcess, code: str) -> dict[str, Any]:
    return dict(httpx.get(f"{daemon.api_url}/v1/integrators/{code}/report", timeout=10).json())


def _register(daemon: DaemonProcess, code: str, addresses: dict[str, str], share: Decimal) -> None:
    put = httpx.put(f"{daemon.api_url}/admin/v1/integrators/{code}", timeout=10,
                    headers={"Authorization": f"Bearer {ADMIN_KEY}"},
                    json={"payout_addresses": addresses, "share": float(share)})
    assert put.status_code == 200, put.text


async def _fund_cosmos_operators(client: DevnetClient, whole_tst: int) -> None:
    """Each operator bridges ``whole_tst`` TST from l1 to its Cosmos account (the daemon relays it)."""
    l1, cosmos = client.adapters["l1"], client.adapters["cosmos"]
    accounts = [cosmos.account_of(devnet_key(i)) for i in OPERATORS]  # type: ignore[attr-defined]

    async def held() -> int:
        return sum([int(await cosmos.token_balance("TST", a)) for a in accounts])  # type: ignore[attr-defined]

    before = await held()
    for i, account in zip(OPERATORS, accounts, strict=True):
        await l1.send_token(devnet_key(i), "TST", whole_tst * HOME_UNITS, Domain(client.domain("cosmos")),  # type: ignore[attr-defined]
                            cosmos.account_bytes32(account))  # type: ignore[attr-defined]

    async def arrived() -> bool:
        return await held() == before + len(OPERATORS) * whole_tst * COSMOS_UNITS

    await wait_for_async(arrived, 120, "the operators' TST paid out on Cosmos")


def _xchain(origin: str, token: str, amount: str, code: str) -> dict[str, Any]:
    return {"kind": "xchain", "from_chain": origin, "chains": ["l1"], "token": token, "amount": amount,
            "recipient": "0x" + secrets.token_hex(20), "integrator": code}


async def test_solana_and_cosmos_payees_get_exactly_floor_share_of_the_fees_paid_on_chain_once(
        devnet: Devnet, daemon: DaemonProcess) -> None:
    client = DevnetClient(devnet)
    try:
        cosmos = client.adapters["cosmos"]
        fee_denom = client.manifest["chains"]["cosmos"]["fee_denom"]
        code = "sc-" + secrets.token_hex(4)
        solana_payee = str(Keypair().pubkey())
        cosmos_payee = cosmos.account_of(secrets.token_hex(32))  # type: ignore[attr-defined]
        _rpc(_solana_rpc(devnet), "requestAirdrop", [solana_payee, SOLANA_PAYEE_START])
        wait_for(lambda: _lamports(devnet, solana_payee) == SOLANA_PAYEE_START, 60, "the airdrop finalized")
        assert int(await cosmos.token_balance(fee_denom, cosmos_payee)) == 0  # type: ignore[attr-defined]
        _register(daemon, code, {"solana": solana_payee, "cosmos": cosmos_payee}, SHARE)

        await _fund_cosmos_operators(client, 2)
        intents = [_xchain("solana", "SOLX", "0.25", code), _xchain("solana", "SOLX", "0.5", code),
                   _xchain("cosmos", "TST", "1", code), _xchain("cosmos", "TST", "0.5", code)]
        with RoutingClient(daemon.api_url) as api:
            ids = api.submit_batch(intents)["ids"]
            assert None not in ids
            done = [api.wait(i, until={"delivered"}, timeout=180) for i in ids]
        assert [d["origin"] for d in done] == ["solana", "solana", "cosmos", "cosmos"]
        fees = {"solana": sum(_solana_fee(devnet, d["tx_hash"]) for d in done[:2]),
                "cosmos": sum([(await cosmos.tx_receipt(d["tx_hash"])).fee_paid for d in done[2:]])}  # type: ignore[attr-defined]
        expected = {c: _floor(SHARE * f) for c, f in fees.items()}
        assert all(e > 0 for e in expected.values()), fees

        def settled() -> bool:  # paid, and an epoch after it ran (it settled the payout and created nothing more)
            payouts = _report(daemon, code)["rewards"]["payouts"]
            return len(payouts) == 2 and all(p["status"] == "paid" and p["settled_at"] for p in payouts)

        try:  # 300 s: CI 50 (two loaded workers) saw the Solana payout's lane transaction still pending at 180 s
            wait_for(settled, 300, "both payouts paid and settled")
        except AssertionError as exc:
            lanes = [line for line in daemon.log.read_text().splitlines() if "lane" in line or "payout" in line]
            raise AssertionError(f"{exc} (report now: {_report(daemon, code)['rewards']}; the daemon's lane and "
                                 "payout lines:\n" + "\n".join(lanes[-40:])) from None
        gained = {"solana": _lamports(devnet, solana_payee) - SOLANA_PAYEE_START,
                  "cosmos": int(await cosmos.token_balance(fee_denom, cosmos_payee))}  # type: ignore[attr-defined]
        print(f"\npayouts on solana and cosmos: share {SHARE}, fees on chain {fees}, floor(share x fees) {expected}, "
              f"payees gained {gained}")
        assert gained == expected

        report = _report(daemon, code)["rewards"]
        by_chain = {p["chain"]: p for p in report["payouts"]}
        assert sorted(by_chain) == ["cosmos", "solana"]
        assert {c: int(p["amount"]) for c, p in by_chain.items()} == expected
        assert {c: b["paid"] for c, b in report["by_chain"].items()} == {c: str(e) for c, e in expected.items()}
        assert all(b["pending"] == "0" and b["payable"] for b in report["by_chain"].values())
        assert by_chain["solana"]["intents"] == 2 and by_chain["cosmos"]["intents"] == 2
        operators_sol = {str(keypair_from_hex(devnet_key(i)).pubkey()) for i in OPERATORS}
        source, destination, lamports = _solana_transfer(devnet, by_chain["solana"]["tx_hash"])
        assert source in operators_sol and (destination, lamports) == (solana_payee, expected["solana"])
        receipt = await cosmos.tx_receipt(by_chain["cosmos"]["tx_hash"])  # type: ignore[attr-defined]
        operators_cosmos = {cosmos.account_of(devnet_key(i)) for i in OPERATORS}  # type: ignore[attr-defined]
        assert receipt.success and receipt.sender in operators_cosmos and receipt.to == cosmos_payee
    finally:
        await client.close()


def _delivered(daemon: DaemonProcess, intents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``intents`` submitted as one batch; each intent's view once all are delivered (none may fail)."""
    with RoutingClient(daemon.api_url) as api:
        submitted = api.submit_batch(intents)
        assert None not in submitted["ids"], submitted

        def all_delivered() -> bool:
            counts = api.batch(submitted["batch"])["counts"]
            assert not set(counts) & {"failed", "unserved"}, counts
            return counts.get("delivered", 0) == len(intents)

        wait_for(all_delivered, DELIVERY_S, f"{len(intents)} intents delivered", interval=0.5)
        found = {i["id"]: i for i in api.batch(submitted["batch"])["intents"]}
    return [found[i] for i in submitted["ids"]]


def _rent_intents(code: str, n: int) -> list[dict[str, Any]]:
    return [_xchain("solana", "SOLX", "0.001", code) for _ in range(n)]


async def test_a_solana_payee_below_rent_is_owed_without_a_payout_until_its_share_reaches_the_minimum(
        devnet: Devnet, daemon: DaemonProcess) -> None:
    rent = int(_rpc(_solana_rpc(devnet), "getMinimumBalanceForRentExemption", [0]))
    code, payee = "rent-" + secrets.token_hex(4), str(Keypair().pubkey())
    assert _lamports(devnet, payee, "processed") == 0  # no account yet
    _register(daemon, code, {"solana": payee}, RENT_SHARE)

    first = _delivered(daemon, _rent_intents(code, 2))
    fees = [_solana_fee(devnet, d["tx_hash"]) for d in first]
    owed = _floor(RENT_SHARE * sum(fees))
    assert 0 < owed < rent, (owed, rent)

    def held_back() -> list[dict[str, Any]]:
        return [e for e in log_events(daemon.log, "integrator_payout_held_back")
                if e.get("code") == code and e.get("owed") == owed]

    wait_for(lambda: len(held_back()) >= 2, 60, "two epochs holding the payout back")
    assert {(e["chain"], e["address"], e["minimum"]) for e in held_back()} == {("solana", payee, rent)}
    report = _report(daemon, code)["rewards"]
    assert report["payouts"] == []  # no row, failed or other, and so no lane transaction
    pending = report["by_chain"]["solana"]
    assert (pending["pending"], pending["payable"]) == (str(owed), True)
    assert f"{owed} owed" in pending["pending_reason"] and str(rent) in pending["pending_reason"]
    assert _lamports(devnet, payee, "processed") == 0

    # enough more fees for floor(share x fees) to reach the minimum, at the fee each of the first ones paid
    more = math.ceil((rent - RENT_SHARE * sum(fees)) / (RENT_SHARE * min(fees)))
    rest = _delivered(daemon, _rent_intents(code, more))
    total = sum(fees) + sum(_solana_fee(devnet, d["tx_hash"]) for d in rest)
    expected = _floor(RENT_SHARE * total)
    assert expected >= rent

    def paid() -> bool:
        rewards = _report(daemon, code)["rewards"]
        assert all(p["status"] != "failed" for p in rewards["payouts"]), rewards["payouts"]
        return (rewards["by_chain"]["solana"]["pending"] == "0" and bool(rewards["payouts"])
                and all(p["status"] == "paid" and p["settled_at"] for p in rewards["payouts"])
                and sum(int(p["amount"]) for p in rewards["payouts"]) == expected)

    wait_for(paid, 180, f"floor(share x fees) = {expected} paid to the payee below rent")
    payouts = _report(daemon, code)["rewards"]["payouts"]
    operators = {str(keypair_from_hex(devnet_key(i)).pubkey()) for i in OPERATORS}
    transfers = [_solana_transfer(devnet, p["tx_hash"]) for p in payouts]
    print(f"\nrent-exempt minimum {rent}: {owed} held back, then {len(first) + more} intents' fees {total} paid "
          f"{[t[2] for t in transfers]} (floor(share x fees) {expected})")
    assert transfers[0][2] >= rent
    assert all(src in operators and dst == payee for src, dst, _ in transfers)
    assert [t[2] for t in transfers] == [int(p["amount"]) for p in payouts]
    assert sum(p["intents"] for p in payouts) == len(first) + more
    assert _lamports(devnet, payee) == expected
