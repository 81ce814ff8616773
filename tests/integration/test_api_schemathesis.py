"""Schemathesis against the daemon's own OpenAPI (``/openapi.json``), over loopback, on a real ``relayer run``
daemon on the session devnet: no 5xx on any operation, and every response is documented (status code, content
type, body schema).

The daemon runs with no operator keys (``RELAYER__ROUTER__OPERATOR_KEYS=[]``) and as a validator only, so no
account it holds can send: a fuzzed ``POST /v1/intents`` is refused (409) or, with ``"signer"``, answered with
unsigned transactions. The nonce of every funded devnet account (the router's operator accounts, the relayer's,
the users') is read on every chain before and after: the fuzz sent nothing."""

from __future__ import annotations

import os
import time

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from adapters.evm.devnet import address_of, devnet_key
from tests.integration.harness import DaemonProcess, free_port_block, wait_for, write_daemon_config

pytestmark = pytest.mark.integration

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def _nonces(manifest: dict) -> dict[tuple[str, str], int]:
    """The transaction count of each of anvil's ten funded accounts (deployer, relayers, users: the router's operator
    accounts among them) on every chain, pending included (JSON-RPC over loopback)."""
    out = {}
    for chain, info in manifest["chains"].items():
        for address in (address_of(devnet_key(i)) for i in range(10)):
            body = {"jsonrpc": "2.0", "id": 1, "method": "eth_getTransactionCount", "params": [address, "pending"]}
            out[(chain, address)] = int(httpx.post(info["rpc_url"], json=body, timeout=10).json()["result"], 16)
    return out


@pytest.fixture(scope="module")
def fuzzed_daemon(devnet, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("schemathesis")
    config = write_daemon_config(devnet, tmp, api_port=free_port_block(1))
    daemon = DaemonProcess(config, tmp / "d.log", role="validator", instance="schemathesis",
                           env={"RELAYER__ROUTER__OPERATOR_KEYS": "[]"}).start()
    before = _nonces(devnet.manifest())
    try:
        wait_for(lambda: httpx.get(f"{daemon.api_url}/v1/chains").status_code == 200, 60, "capacity to be sampled")
        yield daemon
    finally:
        daemon.stop()
    after = _nonces(devnet.manifest())
    changed = {k: (before[k], after[k]) for k in before if before[k] != after[k]}
    assert not changed, f"the fuzz sent transactions: {changed}"


# per operation and generation mode: 2 x 17 operations x <= 30 requests (+ shrinking); more for a longer local run
MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "30"))


@pytest.fixture(scope="module")
def api_schema(fuzzed_daemon):
    return schemathesis.openapi.from_url(f"{fuzzed_daemon.api_url}/openapi.json")


# server-sent event streams run until their length parameter (default 300 s): a valid length is cut to 0.5 s so the
# fuzz reads whole streams quickly; an invalid one (negative mode) is left for the server to refuse
STREAM_LENGTH = {"/v1/explorer/events": "max_s", "/v1/batches/{batch}/events": "timeout_s"}


def _bound_stream(case) -> None:
    name = STREAM_LENGTH.get(case.operation.path)
    if name is None:
        return
    query = dict(case.query or {})
    value = query.get(name)
    try:
        valid = value is None or 0 < float(value) <= 3600
    except (TypeError, ValueError):
        valid = False
    if valid:
        query[name] = 0.5 if value is None else min(float(value), 0.5)
        case.query = query


def _fuzz(operation, mode: GenerationMode, session: requests.Session) -> None:
    @given(operation.as_strategy(generation_mode=mode))
    @settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck),
              phases=[Phase.explicit, Phase.generate, Phase.shrink], database=None)
    def run(case):
        _bound_stream(case)
        case.call_and_validate(session=session, checks=CHECKS, timeout=30)

    run()


# schemathesis' own pytest plugin (schemathesis.pytest.from_fixture) does not run under pytest 9, so the test
# walks the operations itself: one hypothesis run per operation, every failure collected and reported together.
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["positive", "negative"])
def test_every_operation_conforms_to_its_openapi(api_schema, mode):
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 15, [op.label for op in operations]
    failures = {}
    session = requests.Session()  # one keep-alive connection for the run
    for operation in operations:
        t0 = time.monotonic()
        try:
            _fuzz(operation, mode, session)
        except Unsatisfiable:  # nothing to negate: the operation takes no parameters, or only free-form strings
            continue
        except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - collected: every operation is fuzzed, then all failures reported
            failures[operation.label] = f"{type(exc).__name__}: {str(exc)[:1500]}"
        finally:
            print(f"{operation.label}: {time.monotonic() - t0:.1f} s")
    assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())


def test_valid_intents_without_operator_keys_send_nothing(fuzzed_daemon):
    """Beyond the fuzz: well-formed batches on this daemon. Without "signer" they are refused (409: no operator
    accounts); with it they are planned and answered with unsigned transactions. The module's teardown then
    finds every account's nonce unchanged."""
    intent = {"amount": "0.5", "token": "TST", "recipient": "0x" + "ab" * 20, "chains": ["l1"]}
    refused = httpx.post(f"{fuzzed_daemon.api_url}/v1/intents", json={"intents": [intent]})
    assert refused.status_code == 409 and "operator" in refused.json()["detail"]["error"]
    signer = address_of(devnet_key(0))
    unsigned = httpx.post(f"{fuzzed_daemon.api_url}/v1/intents", json={"intents": [intent] * 2, "signer": signer},
                          timeout=30)
    assert unsigned.status_code == 202, unsigned.text
    body = unsigned.json()
    assert body["statuses"] == ["unsigned", "unsigned"] and all(tx for tx in body["transactions"])
