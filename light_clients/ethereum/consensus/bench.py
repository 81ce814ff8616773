"""Throughput of full sync-committee update verification on real mainnet data (512-member committee).

Each round decodes the update afresh (so no hash is cached on it), builds a fresh store from the
bootstrap and times ``process_light_client_update`` alone: participation, execution, finality and
next-committee branches, and BLS FastAggregateVerify over 511 keys. Warm rounds share one committee
key cache, as a running client does within a period; cold rounds parse all 512 G1 keys each time.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from light_clients.ethereum.consensus.config import MAINNET
from light_clients.ethereum.consensus.containers import LightClientUpdate
from light_clients.ethereum.consensus.portal import PortalContent
from light_clients.ethereum.consensus.preset import LightClientFork
from light_clients.ethereum.consensus.signing import CommitteeKeyCache
from light_clients.ethereum.consensus.ssz import split_variable_list
from light_clients.ethereum.consensus.store import initialize_light_client_store
from light_clients.ethereum.consensus.sync import process_light_client_update

PORTAL_VECTORS = (
    Path(__file__).resolve().parents[3] / "tests" / "vectors" / "eth_consensus" / "portal-mainnet-deneb"
)


def _timed_rounds(
    seconds: float, bootstrap: PortalContent, update_ssz: bytes, share_keys: bool
) -> list[float]:
    preset, fork = MAINNET.preset, LightClientFork.DENEB
    bootstrap_object = bootstrap.bootstrap(preset, fork)
    shared = CommitteeKeyCache()
    durations: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(durations) < 3:
        update = LightClientUpdate.decode(update_ssz, preset, fork)
        store = initialize_light_client_store(
            bootstrap.bootstrap_block_root(),
            bootstrap_object,
            preset,
            fork,
            key_cache=shared if share_keys else CommitteeKeyCache(),
        )
        started = time.perf_counter()
        process_light_client_update(
            store, update, update.signature_slot, MAINNET.genesis_validators_root, MAINNET.fork_schedule
        )
        durations.append(time.perf_counter() - started)
        if store.next_sync_committee != update.next_sync_committee:
            raise RuntimeError("benchmark update did not apply")
    return durations


def bench_sync_committee_updates(
    seconds: float = 3.0, vectors: Path = PORTAL_VECTORS
) -> dict[str, float | int]:
    """Median rate of full update verification on fresh stores: warm (cached keys) and cold."""
    bootstrap = PortalContent.from_test_yaml((vectors / "bootstrap.yaml").read_text())
    updates = PortalContent.from_test_yaml((vectors / "updates.yaml").read_text())
    update_ssz = split_variable_list(updates.value)[0][4:]
    participants = LightClientUpdate.decode(update_ssz, MAINNET.preset, LightClientFork.DENEB).sync_aggregate
    warm = _timed_rounds(seconds * 0.75, bootstrap, update_ssz, share_keys=True)
    cold = _timed_rounds(seconds * 0.25, bootstrap, update_ssz, share_keys=False)
    warm_median, cold_median = statistics.median(warm), statistics.median(cold)
    return {
        "sync_committee_updates_per_s": 1.0 / warm_median,
        "median_ms": warm_median * 1e3,
        "cold_key_cache_updates_per_s": 1.0 / cold_median,
        "cold_median_ms": cold_median * 1e3,
        "committee_size": MAINNET.preset.sync_committee_size,
        "participants": participants.participant_count(),
        "rounds": len(warm) + len(cold),
    }


if __name__ == "__main__":
    print(bench_sync_committee_updates())
