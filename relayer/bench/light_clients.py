"""``relayer bench light-clients``: verifications per second of each light client on one core, no devnet."""

from __future__ import annotations

import sys
from typing import Any

from relayer.cli.progress import make_progress


def run_light_client_bench(*, seconds: float = 3.0, json_output: bool = False) -> dict[str, Any]:
    """Verifications per second of each light client on one core (medians of repeated rounds)."""
    from light_clients.ethereum.consensus.bench import bench_sync_committee_updates
    from light_clients.ethereum.execution.bench import bench_receipt_proofs
    from light_clients.tendermint.bench import bench_skipping

    progress = make_progress(not json_output and sys.stderr.isatty())
    out: dict[str, Any] = {}
    with progress:
        task = progress.add_task("light clients", total=3)
        tm = bench_skipping(validators=100, seconds=seconds)
        progress.update(task, advance=1)
        rc = bench_receipt_proofs(seconds=seconds)
        progress.update(task, advance=1)
        sc = bench_sync_committee_updates(seconds=seconds)
        progress.update(task, advance=1)
    out["tendermint_skipping_verifications_per_s"] = round(tm["tendermint_skipping_verifications_per_s"], 1)
    out["tendermint_validators"] = tm["validators"]
    out["receipt_proofs_verified_per_s"] = round(rc["receipt_proofs_verified_per_s"], 1)
    out["receipts_in_block"] = rc["receipts_in_block"]
    out["sync_committee_updates_per_s"] = round(sc["sync_committee_updates_per_s"], 1)
    out["sync_committee_size"] = sc["committee_size"]
    out["details"] = {"tendermint": tm, "receipts": rc, "sync_committee": sc}
    if not json_output:
        for k, v in out.items():
            if k != "details":
                print(f"{k:>40}: {v}")
    return out
