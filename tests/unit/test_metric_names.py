"""Every metric family follows Prometheus' naming rules as ``promtool check metrics`` applies them (promlint's
rules, implemented in tests/metric_lint.py; tests/integration/test_metrics.py also runs promtool itself on a live
/metrics when the binary is installed): each family in ``_HELP`` and each name the code emits."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from relayer.daemon.metrics import _BUCKETS, _HELP, Metrics
from tests.metric_lint import emitted_families, problems, promtool_report

EMITTED, UNNAMED = emitted_families()


def _kind(name: str) -> str:
    """A family's kind as the code emits it (one kind per family)."""
    kinds = EMITTED[name].kinds
    assert len(kinds) == 1, f"{name} is emitted as {sorted(kinds)} at {EMITTED[name].sites}"
    return next(iter(kinds))


def test_every_emitted_name_is_a_literal_with_help() -> None:
    assert UNNAMED == [], "metric names must be string literals so they can be checked"
    assert len(EMITTED) >= 50  # the scan found the daemon's families (it parses the source tree)
    missing = {n: e.sites for n, e in EMITTED.items() if n not in _HELP}
    assert missing == {}, "families without a HELP line in relayer/daemon/metrics.py _HELP"


def test_every_help_family_is_emitted() -> None:
    assert sorted(set(_HELP) - set(EMITTED)) == [], "HELP for families no code emits (renamed or gone)"


@pytest.mark.parametrize("name", sorted(set(_HELP) | set(EMITTED)))
def test_family_follows_prometheus_naming(name: str) -> None:
    kind = _kind(name)
    labels = EMITTED[name].labels
    assert problems(name, kind, labels) == []
    assert (kind == "histogram") == (name in _BUCKETS)
    assert _HELP[name].strip() and _HELP[name] != name


@pytest.mark.parametrize(("name", "kind", "expected"), [
    ("router_chain_spare_transfers_per_s", "gauge", "abbreviated units"),
    ("relayer_request_duration_ms", "gauge", "abbreviated units"),
    ("relayer_delay_milliseconds", "gauge", 'use base unit "seconds" instead of "milliseconds"'),
    ("relayer_size_kilobytes", "gauge", 'use base unit "bytes" instead of "kilobytes"'),
    ("relayer_deliveries", "counter", '"_total" suffix'),
    ("relayer_height_total", "gauge", 'should not have "_total"'),
    ("relayer_lag_count", "gauge", '"_count"/"_sum" suffix'),
    ("relayer_lag_bucket", "gauge", '"_bucket" suffix'),
    ("relayer_up_gauge", "gauge", "include type 'gauge'"),
    ("relayer_chainHeight", "gauge", "snake_case"),
    ("relayer:height", "gauge", "snake_case"),
])
def test_the_rules_catch_what_promtool_reports(name: str, kind: str, expected: str) -> None:
    assert any(expected in p for p in problems(name, kind)), problems(name, kind)


def test_labels_follow_the_rules() -> None:
    assert problems("relayer_chain_height", "gauge", ["chainName"]) != []
    assert problems("relayer_chain_height", "gauge", ["le"]) != []
    assert problems("relayer_lag_seconds", "histogram", ["loop"]) == []


def test_rendered_page_declares_each_family_as_the_code_emits_it() -> None:
    metrics = Metrics()
    for name, emitted in EMITTED.items():
        kind = _kind(name)
        labels = {label: "x" for label in emitted.labels}
        if kind == "counter":
            metrics.inc(name, **labels)
        elif kind == "gauge":
            metrics.set(name, 1.0, **labels)
        else:
            metrics.observe(name, 0.01, **labels)
    page = metrics.render()
    assert promtool_report(page) in ("", None)  # promtool itself agrees, where it is installed
    declared = {f.name: f.type for f in text_string_to_metric_families(page)}
    # the parser drops a counter's _total from its family name
    assert {n.removesuffix("_total") if _kind(n) == "counter" else n: _kind(n) for n in EMITTED} == declared
