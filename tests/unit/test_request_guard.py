"""The request guard's decisions as logic (the served front is tests/integration/test_api_limits.py): the JSON
depth scan against the parser, client keys, caps and the refusal bodies, the throttled refusal log."""

from __future__ import annotations

import json
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relayer.api.request_guard import (
    FrontLimits,
    ThrottledLog,
    cap_answer,
    client_key,
    json_depth,
    stream_route_patterns,
)
from relayer.daemon.metrics import Metrics


def parser_depth(value: object) -> int:
    if isinstance(value, list):
        return 1 + max((parser_depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((parser_depth(v) for v in value.values()), default=0)
    return 0


# strings full of what could fool a scan: quotes, backslashes, brackets, escapes of each
tricky = st.text(alphabet=st.sampled_from(list('[]{}"\\/ aé\u2028\x00\n')), max_size=12)
documents = st.recursive(st.none() | st.booleans() | st.integers() | tricky,
                         lambda inner: st.lists(inner, max_size=4) | st.dictionaries(tricky, inner, max_size=4),
                         max_leaves=30)


@settings(max_examples=500, deadline=None)
@given(documents, st.sampled_from([None, 1, 2]), st.booleans())
def test_depth_scan_equals_the_parsers_depth(doc, indent, ascii_only):
    text = json.dumps(doc, indent=indent, ensure_ascii=ascii_only).encode()
    assert json_depth(text) == parser_depth(json.loads(text))


def reference_depth(text: bytes) -> int:
    """The deepest nesting a parser reaches reading ``text`` from the start: a byte-at-a-time walk."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in text:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in b"[{":
            depth += 1
            deepest = max(deepest, depth)
        elif byte in b"]}":
            depth -= 1
    return deepest


@settings(max_examples=300, deadline=None)
@given(documents, st.integers(0, 10_000), st.binary(max_size=40))
def test_depth_scan_is_never_below_what_the_parser_walks_through_before_an_error(doc, cut, tail):
    """A valid prefix followed by anything: the scan counts at least the depth the parser reaches in the prefix
    (it stops at the first error, so it never reaches deeper than that)."""
    text = json.dumps(doc).encode()
    prefix = text[: cut % (len(text) + 1)]
    assert json_depth(prefix + tail) >= reference_depth(prefix)


@pytest.mark.parametrize(("body", "depth"), [
    (b"", 0), (b"1", 0), (b"[]", 1), (b"[[[]]]", 3), (b'{"a": {"b": [1]}}', 3),
    (b'["[[[[", "]]"]', 1), (b'["\\"[[[["]', 1), (b'["\\\\", [[1]]]', 3), (b'["\\\\\\"[[", 1]', 1),
    (b'{"a\\\\": [[]]}', 3), (b"[" * 100_000 + b"]" * 100_000, 100_000),
    (b'{"a":' * 100_000 + b"1" + b"}" * 100_000, 100_000),
    (b'"' + b'\\"' * 300_000 + b"[[[", 0),  # one unterminated string: its brackets are inside it
])
def test_depth_scan_examples(body, depth):
    assert json_depth(body) == depth


def test_depth_scan_is_linear_on_hostile_bodies():
    """1 MiB of each shape the scan handles specially: well under 50 ms each on one core."""
    for body in (b"[" * (1 << 20), b'"' * (1 << 20), b'\\"' * (1 << 19), b'"\\' * (1 << 19), b'["' * (1 << 19),
                 b"\\\\" * (1 << 19)):
        t0 = time.perf_counter()
        json_depth(body)
        assert time.perf_counter() - t0 < 0.25, body[:4]


@pytest.mark.parametrize(("host", "key"), [
    ("127.0.0.1", "127.0.0.1"), ("10.1.2.3", "10.1.2.3"), ("::ffff:10.1.2.3", "10.1.2.3"),
    ("2001:db8::1", "2001:db8::/64"), ("2001:db8::ffff:1", "2001:db8::/64"), ("2001:db8:0:1::1", "2001:db8:0:1::/64"),
    (None, "unknown"), ("", "unknown"), ("not an address" * 20, ("not an address" * 20)[:64]),
])
def test_client_key_is_the_address_or_its_ipv6_64(host, key):
    assert client_key(host) == key


def test_caps_answer_429_per_client_and_503_in_all_with_retry_after_and_the_key():
    limits = FrontLimits(max_requests_in_flight=3, max_requests_in_flight_per_client=2)
    assert limits.requests.acquire("a") is None and limits.requests.acquire("a") is None
    per_client = limits.requests.acquire("a")
    assert per_client is not None and per_client.key == "max_requests_in_flight_per_client"
    assert limits.requests.acquire("b") is None
    total = limits.requests.acquire("c")
    assert total is not None and total.key == "max_requests_in_flight"
    status, headers, body = cap_answer(per_client, limits.requests.what)
    assert status == 429 and (b"retry-after", b"1") in headers
    detail = json.loads(body)["detail"]
    assert detail == {"error": "too many requests in flight from this client: the cap is 2 "
                               "(api.max_requests_in_flight_per_client); retry later",
                      "cap": "api.max_requests_in_flight_per_client", "limit": 2}
    assert cap_answer(total, limits.requests.what)[0] == 503
    for key in ("a", "a", "b"):
        limits.requests.release(key)
    assert limits.requests.in_flight == 0 and limits.requests.limiter.held_by("a") == 0


def test_front_limits_come_from_every_api_setting():
    from config.settings import ApiSettings

    api = ApiSettings(max_json_depth=10, header_timeout_s=2.5, max_streams=9, max_streams_per_client=3)
    limits = FrontLimits.from_settings(api)
    assert (limits.max_json_depth, limits.header_timeout_s, limits.streams.caps["total"].limit,
            limits.streams.caps["per_key"].limit) == (10, 2.5, 9, 3)
    assert limits.max_body_bytes == api.max_body_bytes and limits.keep_alive_s == api.keep_alive_s


def test_per_client_caps_above_their_total_fail_naming_both():
    from pydantic import ValidationError

    from config.settings import ApiSettings

    with pytest.raises(ValidationError, match="max_streams_per_client .20. is above max_streams .10."):
        ApiSettings(max_streams=10, max_streams_per_client=20)


def test_refusals_are_counted_and_logged_at_most_once_per_reason_and_interval():
    now = [0.0]
    metrics = Metrics()
    limits = FrontLimits(metrics=metrics, log=ThrottledLog(10.0, clock=lambda: now[0]))
    from structlog.testing import capture_logs

    with capture_logs() as logs:
        for _ in range(1000):
            limits.refused("json_depth", path="/x")
        now[0] = 11.0
        limits.refused("json_depth", path="/x")
        limits.refused("max_streams", path="/y")
    assert metrics.value("relayer_api_refused_total", reason="json_depth") == 1001
    assert [(e["reason"], e["not_logged_since"]) for e in logs] == [("json_depth", 0), ("json_depth", 999),
                                                                     ("max_streams", 0)]


def test_stream_routes_are_found_in_the_openapi_document():
    doc = {"paths": {
        "/v1/batches/{batch}/events": {"get": {"responses": {"200": {"content": {"text/event-stream": {}}}}}},
        "/v1/batches/{batch}": {"get": {"responses": {"200": {"content": {"application/json": {}}}}}},
    }}
    (pattern,) = stream_route_patterns(doc)
    assert pattern.match("/v1/batches/bat_1/events") and not pattern.match("/v1/batches/bat_1")
    assert not pattern.match("/v1/batches/a/b/events")


def test_the_daemons_intent_rate_counts_only_what_is_taken_and_reopens_its_door():
    """api.max_intents_per_s: a batch is admitted against the daemon-wide bucket; what a later check refused or the
    planner left unserved is given back, so one client's refused batches cannot spend everyone's budget; a refusal
    closes the door (refused before the body is read) until tokens are back."""
    from fastapi import HTTPException

    limits = FrontLimits(max_intents_per_s=10.0)
    limits.admit_intents("127.0.0.1", 1000)  # the burst: one whole batch
    with pytest.raises(HTTPException) as refused:
        limits.admit_intents("127.0.0.2", 10)
    assert refused.value.status_code == 503 and refused.value.headers["Retry-After"] == "1"
    assert limits.intents.refused_at_door() is not None
    limits.release_intents(1000)  # the first batch was all unserved
    assert limits.intents.refused_at_door() is None
    limits.admit_intents("127.0.0.2", 1000)
