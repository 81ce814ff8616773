"""The alerting rules shipped in ``config/examples/alerts.yml``: every metric they name is one the code exports (a
renamed metric would leave an alert that never fires), each rule has a severity and a summary, and Prometheus' own
``promtool`` finds them valid and fires each tested alert from sample series (``alert_rules_test.yml``), and only
then."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.metric_lint import emitted_families

ROOT = Path(__file__).resolve().parent.parent.parent
RULES = ROOT / "config" / "examples" / "alerts.yml"
RULE_TESTS = Path(__file__).with_name("alert_rules_test.yml")
METRIC = re.compile(r"\b((?:relayer|validator|router)_[a-z0-9_]+)\b")


def _rules() -> list[dict[str, object]]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def test_every_alert_names_metrics_the_daemon_exports() -> None:
    exported, _unnamed = emitted_families()
    for rule in _rules():
        named = set(METRIC.findall(str(rule["expr"])))
        assert named, f"{rule['alert']} names no metric of ours"
        assert named <= set(exported), f"{rule['alert']} names {sorted(named - set(exported))}, which nothing exports"


def test_every_alert_has_a_severity_and_a_summary() -> None:
    names = [str(rule["alert"]) for rule in _rules()]
    assert len(names) == len(set(names))
    for rule in _rules():
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]  # type: ignore[index]
        assert rule["annotations"]["summary"], rule["alert"]  # type: ignore[index]


def test_promtool_checks_the_rules_and_fires_the_tested_alerts() -> None:
    if shutil.which("promtool") is None:
        pytest.skip("promtool is not installed (.ci/run installs Debian's prometheus package)")
    checked = subprocess.run(["promtool", "check", "rules", str(RULES)], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = subprocess.run(["promtool", "test", "rules", str(RULE_TESTS)], capture_output=True, text=True,
                            check=False, cwd=RULE_TESTS.parent)
    assert tested.returncode == 0 and "SUCCESS" in tested.stdout, tested.stdout + tested.stderr
