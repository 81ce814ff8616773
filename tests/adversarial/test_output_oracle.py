"""The rollups' output oracles under attack (issue 16): the attacker (attacks/output_oracle.py), with its own funded
l1 account and neither the proposer's nor the challenger's key, tries to post an output root of its own for rollup_a
and to delete the posted ones. Every attempt reverts (NotProposer, NotChallenger); read from l1 afterwards, the oracle
holds no root of the attacker's and has lost no output, and a message from rollup_a is still delivered on l1."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.adversarial.conftest import start_daemon
from tests.integration.harness import DaemonProcess, delivered_on, dispatch_to_test_recipient, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def daemon(bridge_devnet: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    process = start_daemon(bridge_devnet, tmp_path_factory.mktemp("output-oracle"), instance="output-oracle")
    yield process
    process.stop()


def test_nobody_but_the_proposer_posts_and_nobody_but_the_challenger_deletes(bridge_devnet, attacker, daemon) -> None:
    seen = attacker.run("output_oracle.post_or_delete_outputs")
    reasons = {case: r["reason"] for case, r in seen["cases"].items()}
    assert all(r["status"] == 0 for r in seen["cases"].values()), seen["cases"]
    assert reasons == {
        "post a root far ahead of the rollup": "NotProposer()",
        "post a root just past the newest output": "NotProposer()",
        "delete every output": "NotChallenger()",
        "delete the newest output": "NotChallenger()",
    }
    assert seen["count_before"] >= 1 and seen["count_after"] >= seen["count_before"]  # nothing deleted
    assert seen["attacker_root"] not in seen["roots"]
    manifest = bridge_devnet.manifest()
    key = manifest["chains"]["rollup_a"]["accounts"][0]["private_key"]  # public devnet test key
    (mid,) = dispatch_to_test_recipient(bridge_devnet, key, "rollup_a", "l1", [b"still relayed"])
    wait_for(lambda: delivered_on(bridge_devnet, "l1", mid), 90, "rollup_a -> l1 still delivered")
