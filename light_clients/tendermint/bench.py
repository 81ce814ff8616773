"""Benchmark of skipping verification: trusted height h, untrusted h + 1000, every validator signing.

Each verification does the full work a light client does for an unseen block: hashes the header and both
validator sets, builds every vote's sign bytes and checks every signature (libsodium ed25519).

    python -m light_clients.tendermint.bench [--validators 100] [--seconds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

from light_clients.tendermint.builder import (
    DEFAULT_GENESIS_TIME,
    Committee,
    build_light_block,
    validator_keys,
)
from light_clients.tendermint.timestamps import NANOS_PER_SECOND, UnixNanos
from light_clients.tendermint.verifier import Success, VerifyOptions, verify

TRUSTED_HEIGHT = 1000
SKIP = 1000
ROUNDS = 5


def bench_skipping(validators: int = 100, seconds: float = 3.0) -> dict[str, Any]:
    """Skipping verifications per second (median of ``ROUNDS`` rounds sharing ``seconds``)."""
    committee = Committee.equal_power(validator_keys(validators, prefix="bench"), power=100)
    trusted = build_light_block(
        chain_id="bench-chain", height=TRUSTED_HEIGHT, time=DEFAULT_GENESIS_TIME, committee=committee
    )
    untrusted = build_light_block(
        chain_id="bench-chain",
        height=TRUSTED_HEIGHT + SKIP,
        time=DEFAULT_GENESIS_TIME + SKIP * NANOS_PER_SECOND,
        committee=committee,
    )
    options = VerifyOptions.from_seconds(trusting_period=14 * 24 * 3600)
    now = UnixNanos(untrusted.header.time + NANOS_PER_SECOND)
    first = verify(trusted, untrusted, options, now)
    if first != Success():
        raise RuntimeError(f"benchmark block does not verify: {first}")
    rates = []
    samples = 0
    round_budget = seconds / ROUNDS
    for _ in range(ROUNDS):
        count = 0
        start = time.perf_counter()
        while True:
            verify(trusted, untrusted, options, now)
            count += 1
            elapsed = time.perf_counter() - start
            if elapsed >= round_budget:
                break
        rates.append(count / elapsed)
        samples += count
    median = statistics.median(rates)
    return {
        "tendermint_skipping_verifications_per_s": median,
        "validators": validators,
        "samples": samples,
        "rounds": ROUNDS,
        "skip_heights": SKIP,
        "signatures_per_verification": validators,
        "ms_per_verification": 1000.0 / median,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m light_clients.tendermint.bench", description=__doc__)
    parser.add_argument("--validators", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    print(json.dumps(bench_skipping(args.validators, args.seconds), indent=2))


if __name__ == "__main__":
    main()
