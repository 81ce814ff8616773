"""Prometheus' metric naming rules as ``promtool check metrics`` applies them (client_golang's promlint), in
Python, plus where each metric family is emitted in the project's code.

``problems(name, kind, labels)`` lists what promlint would report for one family: no snake_case, reserved ``:``,
a counter without ``_total`` or ``_total`` on a non-counter, a non-histogram ending in ``_bucket``/``_count``/
``_sum`` or labelled ``le``, a non-summary labelled ``quantile``, a non-gauge ending in ``_timestamp_seconds``,
the type in the name, a unit that is not a base unit (``milliseconds`` -> ``seconds``) and an abbreviated unit
(``_s``, ``_ms``, ``_b``, ...: ``_per_s`` is one). ``emitted_families()`` finds every ``metrics.inc/set/observe/
replace("name", label=...)`` in the source tree by parsing it.
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE_DIRS = ("relayer", "router", "adapters", "light_clients", "config", "devnets")
KIND_OF_CALL = {"inc": "counter", "set": "gauge", "replace": "gauge", "observe": "histogram"}
FAMILY_PREFIXES = ("relayer_", "validator_", "router_")

SNAKE_CASE = re.compile(r"^[a-z_][a-z0-9_]*$")
TYPE_NAMES = ("counter", "gauge", "summary", "histogram", "gauge_histogram")
BASE_UNITS = {
    "amperes": "amperes", "bytes": "bytes", "celsius": "celsius", "grams": "grams", "joules": "joules",
    "kelvin": "kelvin", "meters": "meters", "metres": "metres", "seconds": "seconds", "volts": "volts",
    "minutes": "seconds", "hours": "seconds", "days": "seconds", "weeks": "seconds", "kelvins": "kelvin",
    "fahrenheit": "celsius", "rankine": "celsius", "inches": "meters", "yards": "meters", "miles": "meters",
    "bits": "bytes", "calories": "joules", "pounds": "grams", "ounces": "grams",
}
UNIT_PREFIXES = ("pico", "nano", "micro", "milli", "centi", "deci", "deca", "hecto", "kilo", "kibi", "mega", "mibi",
                 "giga", "gibi", "tera", "tebi", "peta", "pebi")
UNIT_ABBREVIATIONS = ("s", "ms", "us", "ns", "sec", "b", "kb", "mb", "gb", "tb", "pb", "m", "h", "d")


def _unit(name: str) -> tuple[str, str] | None:
    """The first known unit among the name's ``_``-separated words and its base unit (promlint's metricUnits)."""
    for word in name.split("_"):
        if word in BASE_UNITS:
            return word, BASE_UNITS[word]
        for prefix in UNIT_PREFIXES:
            if word.startswith(prefix) and word[len(prefix):] in BASE_UNITS:
                return word, BASE_UNITS[word[len(prefix):]]
    return None


def _has_word(name: str, word: str) -> bool:
    return f"_{word}_" in name or name.endswith(f"_{word}")


def name_problems(name: str, kind: str) -> list[str]:
    found = []
    if not SNAKE_CASE.match(name):
        found.append("metric names should be written in 'snake_case' (and contain no ':')")
    if kind == "counter" and not name.endswith("_total"):
        found.append('counter metrics should have "_total" suffix')
    if kind != "counter" and name.endswith("_total"):
        found.append('non-counter metrics should not have "_total" suffix')
    if kind != "histogram" and name.endswith("_bucket"):
        found.append('non-histogram metrics should not have "_bucket" suffix')
    if kind not in ("histogram", "summary") and name.endswith(("_count", "_sum")):
        found.append('non-histogram and non-summary metrics should not have "_count"/"_sum" suffix')
    if kind != "gauge" and name.endswith("_timestamp_seconds"):
        found.append('non-gauge metrics should not have "_timestamp_seconds" suffix')
    found += [f"metric name should not include type '{t}'" for t in TYPE_NAMES if _has_word(name, t)]
    unit = _unit(name)
    if unit is not None and unit[0] != unit[1]:
        found.append(f'use base unit "{unit[1]}" instead of "{unit[0]}"')
    if any(_has_word(name, a) for a in UNIT_ABBREVIATIONS):
        found.append("metric names should not contain abbreviated units")
    return found


def label_problems(labels: Iterable[str], kind: str) -> list[str]:
    found = []
    for label in labels:
        if not SNAKE_CASE.match(label):
            found.append(f"label {label!r} should be written in 'snake_case'")
        if label == "le" and kind != "histogram":
            found.append('non-histogram metrics should not have "le" label')
        if label == "quantile" and kind != "summary":
            found.append('non-summary metrics should not have "quantile" label')
    return found


def problems(name: str, kind: str, labels: Iterable[str] = ()) -> list[str]:
    return name_problems(name, kind) + label_problems(labels, kind)


@dataclass
class Emitted:
    """One family as the code emits it: its kinds (one, unless the code is inconsistent), labels and sites."""

    kinds: set[str] = field(default_factory=set)
    labels: set[str] = field(default_factory=set)
    sites: list[str] = field(default_factory=list)


def _metric_call(node: ast.AST) -> tuple[str, ast.Call] | None:
    """``(method, call)`` for ``<...>metrics.<inc|set|observe|replace>(...)``."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr in KIND_OF_CALL):
        return None
    receiver = node.func.value
    receiver_name = receiver.attr if isinstance(receiver, ast.Attribute) else getattr(receiver, "id", "")
    return (node.func.attr, node) if receiver_name.endswith("metrics") and node.args else None


def emitted_families(root: Path = ROOT) -> tuple[dict[str, Emitted], list[str]]:
    """Every family name the code passes to the metrics object, and the sites that pass a name not written as a
    literal (which no test could check)."""
    families: dict[str, Emitted] = defaultdict(Emitted)
    unnamed: list[str] = []
    for directory in SOURCE_DIRS:
        for path in sorted((root / directory).rglob("*.py")):
            tree = ast.parse(path.read_text(), str(path))
            for node in ast.walk(tree):
                site = f"{path.relative_to(root)}:{getattr(node, 'lineno', 0)}"
                found = _metric_call(node)
                if found is not None:
                    method, call = found
                    first = call.args[0]
                    if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
                        unnamed.append(site)
                        continue
                    family = families[first.value]
                    family.kinds.add(KIND_OF_CALL[method])
                    family.labels.update(k.arg for k in call.keywords if k.arg is not None)
                    family.sites.append(site)
                elif (isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute)
                      and node.value.attr == "_counters" and isinstance(node.slice, ast.Constant)):
                    families[str(node.slice.value)].kinds.add("counter")
                    families[str(node.slice.value)].sites.append(site)
    return dict(families), unnamed


def promtool_report(text: str) -> str | None:
    """What ``promtool check metrics`` says of a /metrics page ("" when clean), or None without a promtool binary
    (Debian's ``prometheus`` package ships it; .ci/run installs it)."""
    promtool = shutil.which("promtool")
    if promtool is None:
        return None
    lint = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30,
                          check=False)
    return (lint.stdout + lint.stderr).strip() if lint.returncode != 0 else ""
