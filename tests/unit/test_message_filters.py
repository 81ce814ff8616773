"""relayer.allow / relayer.deny (relayer.pipeline.filters): rules compiled with the real adapters (each address read
in its chain's own format), matched on origin, sender, destination and recipient; bad rules are refused naming
the key; and the admin API's key guard (relayer.api.routes.admin) refuses whoever holds no admin key."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from solders.keypair import Keypair

from adapters.cosmos.transactions import multisig_key_address
from adapters.message import MESSAGE_VERSION, Message, address_to_bytes32
from config.errors import ConfigError
from config.loader import load_settings_dict
from config.settings import Settings
from devnets.cosmos.accounts import bech32_address
from relayer.api.routes.admin import admin_routes
from relayer.api.schemas import message_status
from relayer.daemon.composition import build_adapters
from relayer.daemon.metrics import Metrics
from relayer.pipeline.filters import FilterRules, MessageFilter, compile_rules
from router.errors import install_error_handlers

L1, A, SOLANA, COSMOS = 1000, 2000, 5000, 6000
EVM_SENDER = "0x" + "ab" * 20
SOLANA_ACCOUNT = str(Keypair.from_seed(bytes(range(32))).pubkey())
COSMOS_ACCOUNT = bech32_address(bytes([7] * 20), "cosmos")
ADMIN_KEY = "admin-key-for-unit-tests-0001"
MEMBER = bytes.fromhex("02" + "77" * 32)  # a compressed secp256k1 key shape: the vault is its 1-of-1 multisig


def _doc(allow: list[dict[str, Any]] | None = None, deny: list[dict[str, Any]] | None = None,
         admin_keys: list[str] | None = None) -> dict[str, Any]:
    evm = {"family": "evm", "chain_id": 1, "rpc_url": "http://127.0.0.1:1", "mailbox": "0x" + "22" * 20}
    program = str(Keypair.from_seed(bytes([1] * 32)).pubkey())
    return {
        "security": {"threshold": 1, "validators": [{"address": "0x" + "44" * 20, "url": "http://127.0.0.1:2"}]},
        "chains": {
            "l1": {**evm, "domain": L1},
            "rollup_a": {**evm, "domain": A},
            "solana": {"family": "solana", "domain": SOLANA, "rpc_url": "http://127.0.0.1:3", "multisig": program,
                       "multisig_threshold": 1, "bridge": program},
            "cosmos": {"family": "cosmos", "domain": COSMOS, "chain_id": "c", "rpc_url": "http://127.0.0.1:4",
                       "rest_url": "http://127.0.0.1:5", "fee_denom": "ustake",
                       "vault": bech32_address(multisig_key_address(1, [MEMBER]), "cosmos"),
                       "multisig_threshold": 1, "multisig_pubkeys": [MEMBER.hex()]},
        },
        "relayer": {"allow": allow or [], "deny": deny or []},
        "admin": {"api_keys": admin_keys or []},
    }


def _rules(**kw: Any) -> FilterRules:
    settings = Settings.model_validate(_doc(**kw))
    return compile_rules(settings, build_adapters(settings, with_signers=False))


def _message(origin: int, sender: bytes, destination: int, recipient: bytes) -> Message:
    return Message(version=MESSAGE_VERSION, nonce=0, origin=origin, sender=sender, destination=destination,  # type: ignore[arg-type]
                   recipient=recipient, body=b"x")


EVM = address_to_bytes32(EVM_SENDER)
OTHER = address_to_bytes32("0x" + "cd" * 20)


def test_a_deny_rule_matches_only_its_origin_and_sender_and_names_itself() -> None:
    rules = _rules(deny=[{"origin": "l1", "sender": EVM_SENDER}])
    why = rules.denial(_message(L1, EVM, A, OTHER))
    assert why is not None and "relayer.deny[0]" in why and EVM_SENDER in why
    assert rules.denial(_message(A, EVM, L1, OTHER)) is None  # another origin
    assert rules.denial(_message(L1, OTHER, A, OTHER)) is None  # another sender


def test_an_allow_list_lets_through_only_what_it_matches_and_deny_wins() -> None:
    rules = _rules(allow=[{"destination": ["rollup_a", "solana"]}], deny=[{"recipient": SOLANA_ACCOUNT}])
    assert rules.denial(_message(L1, EVM, A, OTHER)) is None
    assert rules.denial(_message(L1, EVM, COSMOS, OTHER)) == "denied: matches no rule of relayer.allow"
    solana_account = bytes(Keypair.from_seed(bytes(range(32))).pubkey())
    assert "relayer.deny[0]" in (rules.denial(_message(L1, EVM, SOLANA, solana_account)) or "")
    assert rules.denial(_message(L1, EVM, SOLANA, OTHER)) is None


@pytest.mark.parametrize(("chain", "address", "expected"), [
    ("l1", EVM_SENDER, EVM),
    ("l1", "0x" + "ee" * 32, bytes.fromhex("ee" * 32)),
    ("solana", SOLANA_ACCOUNT, bytes(Keypair.from_seed(bytes(range(32))).pubkey())),
    ("cosmos", COSMOS_ACCOUNT, bytes([7] * 20).rjust(32, b"\0")),
])
def test_each_address_is_read_in_its_chains_format(chain: str, address: str, expected: bytes) -> None:
    rule = _rules(deny=[{"origin": chain, "sender": address}]).deny[0]
    assert rule.senders == frozenset({expected})


def test_an_address_no_named_chain_reads_is_refused_naming_the_field_and_the_chains() -> None:
    with pytest.raises(ConfigError) as caught:
        _rules(deny=[{"origin": "l1", "sender": SOLANA_ACCOUNT}])  # a base58 account is no EVM address
    assert caught.value.path == "relayer.deny[0].sender"
    assert "not an account address on l1" in caught.value.problem


def test_a_rule_naming_an_unknown_chain_or_an_empty_entry_is_refused_at_load() -> None:
    with pytest.raises(ConfigError, match=r"relayer.allow\[0\].destination names 'nowhere'"):
        load_settings_dict(_doc(allow=[{"destination": "nowhere"}]))
    with pytest.raises(ConfigError, match="relayer.deny.0.sender"):
        load_settings_dict(_doc(deny=[{"sender": []}]))


def test_a_short_admin_key_is_refused_without_echoing_it() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings_dict(_doc(admin_keys=["short-secret"]))
    assert caught.value.path == "admin.api_keys" and "short-secret" not in str(caught.value)


def test_a_reload_swaps_the_rules_whole_and_a_malformed_message_is_left_to_the_pipeline() -> None:
    current = MessageFilter()
    raw = _message(L1, EVM, A, OTHER).encode()
    assert current.denial(raw) is None
    current.replace(_rules(deny=[{"sender": EVM_SENDER}]))
    assert current.reloads == 1 and current.denial(raw) is not None
    assert current.denial(b"\x01short") is None


class _View:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.metrics = Metrics()
        self.reloaded: list[str] = []

    def message_filters(self) -> dict[str, Any]:
        return {"allow": [], "deny": [], "loaded_at": 0.0, "reloads": len(self.reloaded)}

    async def reload_filters(self, source: str) -> dict[str, Any]:
        self.reloaded.append(source)
        return {"allow": 0, "deny": 0, "reopened": 0}


def _client(keys: list[str]) -> tuple[TestClient, _View]:
    view = _View(Settings.model_validate(_doc(admin_keys=keys)))
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(admin_routes(view))  # type: ignore[arg-type]
    return TestClient(app), view


def test_the_admin_api_is_off_without_admin_keys() -> None:
    client, view = _client([])
    for headers in ({}, {"Authorization": f"Bearer {ADMIN_KEY}"}):
        assert client.post("/admin/v1/filters/reload", headers=headers).status_code == 403
    assert view.reloaded == [] and view.metrics.value("relayer_admin_requests_refused_total", reason="disabled") == 2


def test_only_an_admin_key_reloads() -> None:
    client, view = _client([ADMIN_KEY])
    for headers in ({}, {"Authorization": "Bearer " + ADMIN_KEY[:-1]}, {"Authorization": "Basic " + ADMIN_KEY},
                    {"X-API-Key": ADMIN_KEY}):
        refused = client.post("/admin/v1/filters/reload", headers=headers)
        assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
        assert ADMIN_KEY not in refused.text
    assert view.reloaded == []
    ok = client.post("/admin/v1/filters/reload", headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    assert ok.status_code == 200 and view.reloaded == ["admin_api"]


@pytest.mark.parametrize(("state", "reason", "expected"), [
    ("DISPATCHED", None, ("waiting", "delivery")),
    ("ATTESTED", "no_quorum", ("waiting", "quorum")),
    ("DISPATCHED", "insufficient_funds", ("waiting", "funds")),
    ("DISPATCHED", "route_paused", ("waiting", "route_resumed")),
    ("DISPATCHED", "tx_reverted", ("waiting", "retry")),
    ("DISPATCHED", "operator_retry", ("waiting", "delivery")),
    ("SUBMITTED", None, ("submitted", None)),
    ("DELIVERED", "tx_reverted", ("delivered", None)),
    ("DROPPED", "denied", ("dropped", "denied")),
    ("DROPPED", "operator_dropped", ("dropped", "operator_dropped")),
])
def test_one_status_with_a_substate_for_callers(state: str, reason: str | None,
                                               expected: tuple[str, str | None]) -> None:
    assert message_status(state, reason) == expected


def test_a_route_limit_lets_through_its_burst_then_its_rate_and_the_first_matching_entry_applies() -> None:
    from config.settings import RouteLimit
    from relayer.pipeline.route_limits import RouteLimiter

    now = [100.0]
    limiter = RouteLimiter([RouteLimit(origin="l1", destination="rollup_a", messages_per_s=2, burst=3),
                            RouteLimit(destination="rollup_a", messages_per_s=1000, burst=1000)],
                           {"l1": L1, "rollup_a": A}, clock=lambda: now[0])
    assert limiter.admit(L1, A, 5) == (3, 0.5)  # the burst, then one more in 1 / 2 s
    assert limiter.admit(L1, A, 1)[0] == 0
    now[0] += 1.0
    assert limiter.admit(L1, A, 5)[0] == 2  # 2 a second
    assert limiter.admit(A, A, 500) == (500, 0.0)  # another origin: the second entry
    assert limiter.admit(L1, SOLANA, 10**6) == (10**6, 0.0)  # no entry: unlimited
    with pytest.raises(ConfigError, match=r"relayer.route_limits\[0\].origin names 'nowhere'"):
        load_settings_dict({**_doc(), "relayer": {"route_limits": [{"origin": "nowhere", "messages_per_s": 1}]}})
