"""The validator's start-up rule: every attested origin has a light-client source, agreeing endpoints, or the
operator's explicit ``trust_single_rpc`` (logged as a warning, exported as ``validator_single_rpc_trust``);
otherwise ``ConfigError`` names the chain and the keys to set. And the keys' own checks."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from config.errors import ConfigError
from config.loader import load_settings_dict
from relayer.daemon.daemon import origin_trust, report_origin_trust
from relayer.daemon.metrics import Metrics

EXAMPLE = Path(str(files("config") / "examples" / "devnet.toml"))
ROOT = "0x" + "ab" * 32


def settings(edit: dict[str, dict[str, Any]] | None = None, drop: dict[str, tuple[str, ...]] | None = None,
             validator: dict[str, Any] | None = None) -> Any:
    import tomllib

    doc = tomllib.loads(EXAMPLE.read_text())
    for chain, keys in (drop or {}).items():
        for key in keys:
            doc["chains"][chain].pop(key, None)
    for chain, values in (edit or {}).items():
        doc["chains"].setdefault(chain, {}).update(values)
    doc["validator"].update(validator or {})
    return load_settings_dict(doc)


SOLANA = {"family": "solana", "domain": 5000, "rpc_url": "http://127.0.0.1:8899", "multisig": "M",
          "multisig_threshold": 2, "bridge": "B"}


def test_the_example_shows_each_source() -> None:
    found = {t.chain: t.source for t in origin_trust(settings())}
    assert found == {"l1": "beacon", "rollup_a": "endpoints", "rollup_b": "single_rpc"}


@pytest.mark.parametrize(("chain", "drop", "extra", "needle"), [
    ("l1", ("beacon_url", "trusted_block_root"), {}, "beacon_url + trusted_block_root"),
    ("rollup_a", ("verify_rpc_urls",), {}, "verify_rpc_urls"),
    ("rollup_b", ("trust_single_rpc",), {}, "trust_single_rpc = true"),
    ("solana", (), {"solana": SOLANA}, "set verify_rpc_urls"),
])
def test_an_origin_without_a_source_refuses_to_start(chain, drop, extra, needle) -> None:
    with pytest.raises(ConfigError) as raised:
        origin_trust(settings(edit=extra, drop={chain: drop}))
    assert raised.value.path == f"chains.{chain}"
    assert needle in str(raised.value) and "trust_single_rpc = true" in str(raised.value)
    if chain == "solana":
        assert "beacon_url" not in str(raised.value)  # no light client exists for Solana


def test_only_attested_origins_count_and_solana_may_be_trusted_explicitly() -> None:
    s = settings(edit={"solana": {**SOLANA, "trust_single_rpc": True}}, drop={"rollup_b": ("trust_single_rpc",)},
                 validator={"origins": ["l1", "solana"]})
    found = {t.chain: (t.source, t.reason) for t in origin_trust(s)}
    assert found == {"l1": ("beacon", ""), "solana": ("single_rpc", "chains.solana.trust_single_rpc = true")}
    with_urls = settings(edit={"solana": {**SOLANA, "verify_rpc_urls": ["http://127.0.0.1:9899"]}})
    assert {t.chain: t.source for t in origin_trust(with_urls)}["solana"] == "endpoints"


def test_verify_inclusion_off_is_single_rpc_trust_for_evm() -> None:
    found = {t.chain: t for t in origin_trust(settings(validator={"verify_inclusion": False}))}
    assert all(t.source == "single_rpc" and t.reason == "validator.verify_inclusion = false" for t in found.values())


def test_single_rpc_trust_is_logged_and_exported() -> None:
    metrics = Metrics()
    with capture_logs() as logs:
        report_origin_trust(origin_trust(settings()), metrics)
    assert metrics.value("validator_single_rpc_trust", chain="rollup_b") == 1
    assert metrics.value("validator_single_rpc_trust", chain="l1") == 0
    assert metrics.value("validator_single_rpc_trust", chain="rollup_a") == 0
    (warning,) = [e for e in logs if e["event"] == "validator_single_rpc_trust"]
    assert warning["log_level"] == "warning" and warning["chain"] == "rollup_b"
    assert warning["reason"] == "chains.rollup_b.trust_single_rpc = true"
    assert "# HELP validator_single_rpc_trust" in metrics.render()


@pytest.mark.parametrize(("values", "needle"), [
    ({"trusted_block_root": None}, "beacon_url and trusted_block_root go together"),
    ({"trusted_block_root": "0x1234"}, "trusted_block_root"),
    ({"beacon_url": "localhost:5052"}, "http(s) URL"),
    ({"trusted_checkpoint": {"height": 1, "hash": ROOT}}, "remove one"),
])
def test_beacon_keys_are_checked(values, needle) -> None:
    import tomllib

    doc = tomllib.loads(EXAMPLE.read_text())
    for key, value in values.items():
        if value is None:
            doc["chains"]["l1"].pop(key)
        else:
            doc["chains"]["l1"][key] = value
    with pytest.raises(ConfigError) as raised:
        load_settings_dict(doc)
    assert raised.value.path.startswith("chains.l1") and needle in str(raised.value)


ORACLE = "0x" + "0c" * 20


def test_a_rollup_settling_on_the_l1_rests_on_the_l1s_light_client() -> None:
    rollup = {"settlement": {"l1": "l1", "output_oracle": ORACLE, "rule": "posted"}}
    found = {t.chain: t.source for t in origin_trust(settings(edit={"rollup_b": rollup},
                                                              drop={"rollup_b": ("trust_single_rpc",)}))}
    assert found["rollup_b"] == "l1_outputs"


def test_a_rollup_on_an_l1_without_a_light_client_refuses_to_start() -> None:
    rollup = {"settlement": {"l1": "l1", "output_oracle": ORACLE}}
    with pytest.raises(ConfigError) as refused:
        origin_trust(settings(edit={"rollup_b": rollup}, drop={"l1": ("beacon_url", "trusted_block_root"),
                                                               "rollup_b": ("trust_single_rpc",)},
                              validator={"origins": ["rollup_b"]}))
    assert refused.value.path == "chains.rollup_b.settlement" and "beacon_url" in str(refused.value)


@pytest.mark.parametrize(("settlement", "needle"), [
    ({"l1": "nowhere", "output_oracle": ORACLE}, "chains.rollup_b.settlement.l1 names 'nowhere'"),
    ({"l1": "rollup_b", "output_oracle": ORACLE}, "not another EVM chain"),
    ({"l1": "l1", "output_oracle": "0x12"}, "output_oracle"),
    ({"l1": "l1", "output_oracle": ORACLE, "rule": "instant"}, "rule"),
])
def test_a_bad_settlement_names_the_key(settlement: dict[str, Any], needle: str) -> None:
    with pytest.raises(ConfigError) as refused:
        settings(edit={"rollup_b": {"settlement": settlement}})
    assert needle in str(refused.value)


def test_a_rollup_cannot_settle_on_a_rollup() -> None:
    with pytest.raises(ConfigError) as refused:
        settings(edit={"rollup_a": {"settlement": {"l1": "l1", "output_oracle": ORACLE}},
                       "rollup_b": {"settlement": {"l1": "rollup_a", "output_oracle": ORACLE}}})
    assert "settles on l1 itself" in str(refused.value)
