"""The audit's arithmetic and the daemon job's reporting, over fake chain reads (the real chains: tests/integration/
test_audit.py): identities from the bridge and config, home units, a Cosmos vault above its escrow counting 0, a
shortfall seen in one reading only not reported, ``audit_shortfall`` logged once per change, ``audit_failed``."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from structlog.testing import capture_logs

from adapters.base import RpcUnavailable
from config.settings import Settings
from relayer.daemon.audit import AuditJob, audit
from relayer.daemon.metrics import Metrics

TST_L1 = "0x" + "11" * 20
TST_HOME = bytes(12) + bytes.fromhex("11" * 20)
SOLX_MINT = "SoLXmint1111111111111111111111111111111111"
SOLX_HOME = hashlib.sha256(SOLX_MINT.encode()).digest()
L1, A, SOLANA, COSMOS = 1000, 2000, 5000, 6000


def settings() -> Settings:
    evm = {"family": "evm", "chain_id": 1, "rpc_url": "http://127.0.0.1:1", "mailbox": "0x" + "22" * 20,
           "token_bridge": "0x" + "33" * 20}
    return Settings.model_validate({
        "security": {"threshold": 1, "validators": [{"address": "0x" + "44" * 20, "url": "http://127.0.0.1:2"}]},
        "chains": {
            "l1": {**evm, "domain": L1, "tokens": {"TST": {"address": TST_L1}, "SOLX": {"address": "0x" + "55" * 20,
                                                                                        "decimals": 9},
                                                   "USDC": {"address": "0x" + "66" * 20, "bridged": False}}},
            "rollup_a": {**evm, "domain": A, "tokens": {}},  # its wrapped TST is found through its bridge only
            "solana": {"family": "solana", "domain": SOLANA, "rpc_url": "http://127.0.0.1:3", "multisig": "m",
                       "multisig_threshold": 1, "bridge": "b",
                       "tokens": {"TST": {"mint": "tstmint", "decimals": 9, "wrapped": True, "home_domain": L1,
                                          "home_token": "0x" + TST_HOME.hex(), "home_decimals": 18},
                                  "SOLX": {"mint": SOLX_MINT, "decimals": 9}}},
            "cosmos": {"family": "cosmos", "domain": COSMOS, "chain_id": "c", "rpc_url": "http://127.0.0.1:4",
                       "rest_url": "http://127.0.0.1:5", "fee_denom": "ustake", "vault": "cosmos1vault",
                       "multisig_threshold": 1, "multisig_pubkeys": ["02" + "77" * 32],
                       "tokens": {"TST": {"denom": "uxtst", "decimals": 6, "wrapped": True, "home_domain": L1,
                                          "home_token": "0x" + TST_HOME.hex(), "home_decimals": 18, "escrow": 10**11}}},
        },
    })


@dataclass(frozen=True)
class Holding:
    token: str
    wrapped: bool
    amount: int
    decimals: int


class FakeEvm:
    """A TokenBridge's answers: ``homes`` by symbol, ``held`` by identity (locked here or wrapped supply)."""

    def __init__(self, domain: int, symbols: dict[str, str], homes: dict[str, tuple[int, bytes]],
                 held: dict[tuple[int, bytes], list[int]]) -> None:
        self.domain, self.symbols, self.homes, self.held = domain, symbols, homes, held
        self.down = False

    async def bridge_home_of(self, symbol: str) -> tuple[int, bytes]:
        return self.homes.get(symbol, (self.domain, bytes(12) + bytes.fromhex(self.symbols[symbol][2:])))

    async def bridge_holding(self, home_domain: int, home_token: bytes) -> Holding | None:
        if self.down:
            raise RpcUnavailable("connection refused", chain=f"evm-{self.domain}")
        readings = self.held.get((home_domain, home_token))
        if readings is None:
            return None
        amount = readings.pop(0) if len(readings) > 1 else readings[0]
        return Holding("0x" + "99" * 20, home_domain != self.domain, amount, 18)


class FakeSolana:
    def __init__(self, supply: int, vault: int) -> None:
        self.supply, self.vault = supply, vault

    async def token_supply(self, symbol: str) -> int:
        assert symbol == "TST"
        return self.supply

    async def vault_balance(self, symbol: str) -> int:
        assert symbol == "SOLX"
        return self.vault

    @staticmethod
    def account_bytes32(address: str) -> bytes:
        return hashlib.sha256(address.encode()).digest()

    def native_token_id(self, symbol: str) -> bytes:  # the mint, as the adapter names it
        return self.account_bytes32({"SOLX": SOLX_MINT}[symbol])


class FakeCosmos:
    def __init__(self, paid_out: int) -> None:
        self.paid_out = paid_out

    async def token_supply(self, symbol: str) -> int:
        return self.paid_out

    @staticmethod
    def native_token_id(symbol: str) -> bytes:  # this chain's config homes no token
        raise AssertionError(f"no native token {symbol}")


def world(*, rollup_a_supply: list[int], locked: int = 10 * 10**18, cosmos_paid: int = 3 * 10**6,
          solana_supply: int = 2 * 10**9) -> dict[str, Any]:
    tst, solx = (L1, TST_HOME), (SOLANA, SOLX_HOME)
    return {
        "l1": FakeEvm(L1, {"TST": TST_L1, "SOLX": "0x" + "55" * 20, "USDC": "0x" + "66" * 20}, {"SOLX": solx},
                      {tst: [locked], solx: [4 * 10**9]}),
        "rollup_a": FakeEvm(A, {}, {}, {tst: rollup_a_supply}),
        "solana": FakeSolana(solana_supply, 4 * 10**9),
        "cosmos": FakeCosmos(cosmos_paid),
    }


async def test_balance_sheet_in_home_units_from_the_bridges_and_config() -> None:
    sheet = await audit(settings(), world(rollup_a_supply=[5 * 10**18]))
    assert sheet.ok and sheet.errors == [] and sheet.shortfall == 0
    tokens = {t.symbol: t for t in sheet.tokens}
    assert set(tokens) == {"TST", "SOLX"}  # USDC is bridged = false
    tst = tokens["TST"]
    assert tst.home_chain == "l1" and tst.home_decimals == 18
    assert {p.chain: (p.kind, p.amount, p.home_units) for p in tst.positions} == {
        "l1": ("locked", 10 * 10**18, 10 * 10**18),
        "rollup_a": ("wrapped_supply", 5 * 10**18, 5 * 10**18),  # found by the bridge, not in config
        "solana": ("wrapped_supply", 2 * 10**9, 2 * 10**18),
        "cosmos": ("escrow_paid_out", 3 * 10**6, 3 * 10**18),
    }
    assert (tst.locked, tst.outstanding, tst.surplus) == (10 * 10**18, 10 * 10**18, 0)
    solx = tokens["SOLX"]
    assert solx.home_chain == "solana" and solx.locked == solx.outstanding == 4 * 10**9
    doc = sheet.to_json()
    assert doc["shortfall"] == 0 and doc["tokens"][0]["chains"]["cosmos"]["home_units"] == 3 * 10**18


async def test_a_shortfall_needs_two_readings_and_the_smaller_stands() -> None:
    transient = await audit(settings(), world(rollup_a_supply=[6 * 10**18, 5 * 10**18]))
    assert transient.shortfall == 0 and transient.readings == 2
    real = await audit(settings(), world(rollup_a_supply=[8 * 10**18, 7 * 10**18]))
    tst = next(t for t in real.tokens if t.symbol == "TST")
    assert tst.shortfall == 2 * 10**18 == real.shortfall and not real.ok
    assert real.to_json()["tokens_short"] == ["TST"]


async def test_a_vault_above_its_escrow_hides_nothing() -> None:
    sheet = await audit(settings(), world(rollup_a_supply=[9 * 10**18], cosmos_paid=-5 * 10**6))
    tst = next(t for t in sheet.tokens if t.symbol == "TST")
    cosmos = next(p for p in tst.positions if p.chain == "cosmos")
    assert cosmos.home_units == 0 and "more than its escrow" in cosmos.note
    assert tst.shortfall == 1 * 10**18  # 9 + 2 out against 10 locked: the donation does not offset it


async def test_the_job_logs_a_shortfall_once_per_change_and_a_failed_read() -> None:
    chains = world(rollup_a_supply=[5 * 10**18])
    metrics = Metrics()
    job = AuditJob(settings(), chains, metrics)
    with capture_logs() as logs:
        await job.run_once()
        chains["rollup_a"].held[(L1, TST_HOME)] = [7 * 10**18]
        await job.run_once()
        await job.run_once()
        chains["rollup_a"].held[(L1, TST_HOME)] = [8 * 10**18]
        await job.run_once()
        chains["rollup_a"].held[(L1, TST_HOME)] = [5 * 10**18]
        await job.run_once()
        chains["rollup_a"].down = True
        await job.run_once()
    events = [(e["event"], e.get("shortfall")) for e in logs]
    assert events == [("audit_shortfall", str(2 * 10**18)), ("audit_shortfall", str(3 * 10**18)),
                      ("audit_shortfall_cleared", None), ("audit_failed", None)]
    assert [e["log_level"] for e in logs] == ["error", "error", "info", "warning"]
    assert logs[-1]["chains"] == ["rollup_a"]
    assert metrics.value("relayer_audit_up") == 0.0
    assert metrics.value("relayer_audit_shortfall", token="TST", home="l1") == 0.0  # the last complete reading
    assert metrics.value("relayer_audit_locked", token="TST", home="l1") == float(10 * 10**18)
    assert metrics.value("relayer_audit_runs_total", result="shortfall") == 3
    assert metrics.value("relayer_audit_runs_total", result="failed") == 1
