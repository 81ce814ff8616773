"""Every route the daemon serves has a row in the README's "Who may call what" table (read from the app itself,
so a route added or moved without saying who may call it fails here). The rows that restrict a caller are
attacked on the devnet by the other tests of this folder (the table names them)."""

from __future__ import annotations

import re

from tests.api_routes import every_route
from tests.integration.harness import ROOT


def who_may_call_patterns() -> list[str]:
    """The endpoints the table's first column names, as regular expressions (``{param}`` one path segment,
    ``...`` anything after)."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### Who may call what"):readme.index("### Defence in depth")]
    patterns = []
    for row in section.splitlines():
        if not row.startswith("| ") or row.startswith("| endpoint"):
            continue
        for span in re.findall(r"`([^`]+)`", row.split("|")[1]):
            path = span.split()[-1]
            if path.startswith("/"):
                pattern = re.escape(path).replace(r"\.\.\.", ".*")
                patterns.append(re.sub(r"\\\{[^}]+\\\}", "[^/]+", pattern))
    return patterns


def test_every_route_says_who_may_call_it():
    patterns = who_may_call_patterns()
    assert patterns, "the README's who-may-call table was not found"
    unlisted = [f"{method} {path}" for method, path in every_route()
                if not any(re.fullmatch(p, path) for p in patterns)]
    assert unlisted == []
