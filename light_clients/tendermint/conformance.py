"""Conformance runner for the public Tendermint vectors (``tests/vectors/tendermint``).

    python -m light_clients.tendermint.conformance FILE...         single-step vector files
    python -m light_clients.tendermint.conformance --rpc-fixtures DIR...   recorded node output

Prints, per step, the expected and the actual verdict (with its reason); exits 1 on any disagreement or
any file that cannot be read, 0 when everything agrees. The single-step semantics are those of
tendermint-rs's model-based runner (see ``tests/vectors/tendermint/SOURCE.md``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from light_clients.tendermint.blocks import LightBlock, TrustedState
from light_clients.tendermint.errors import LightBlockParseError
from light_clients.tendermint.hashing import header_hash, validator_set_hash
from light_clients.tendermint.rpc_json import (
    parse_block_response,
    parse_blockchain_response,
    parse_commit_response,
    parse_genesis_validators,
    parse_light_block,
    parse_signed_header,
    parse_validator_set,
)
from light_clients.tendermint.timestamps import TimestampFormatError, parse_rfc3339
from light_clients.tendermint.verifier import (
    Invalid,
    NotEnoughTrust,
    Success,
    Verdict,
    VerifyOptions,
    verify,
    verify_commit,
)

_VERDICT_NAMES = {Success: "SUCCESS", NotEnoughTrust: "NOT_ENOUGH_TRUST", Invalid: "INVALID"}


def verdict_name(verdict: Verdict) -> str:
    """``SUCCESS`` / ``NOT_ENOUGH_TRUST`` / ``INVALID``, as the vectors spell them."""
    return _VERDICT_NAMES[type(verdict)]


@dataclass(frozen=True)
class StepOutcome:
    index: int
    height: int
    expected: str
    actual: Verdict

    @property
    def agrees(self) -> bool:
        return verdict_name(self.actual) == self.expected


def run_single_step_vector(document: object) -> list[StepOutcome]:
    """Run one single-step vector (parsed JSON); one outcome per ``input`` step."""
    if not isinstance(document, dict):
        raise LightBlockParseError("", "expected a JSON object")
    initial = document["initial"]
    signed_header = parse_signed_header(initial["signed_header"], "initial.signed_header")
    next_validators = parse_validator_set(initial["next_validator_set"], "initial.next_validator_set")
    trusted: LightBlock | TrustedState = TrustedState(signed_header.header, next_validators)
    options = VerifyOptions(trusting_period=int(initial["trusting_period"]), clock_drift=0)
    outcomes = []
    for index, step in enumerate(document["input"]):
        block = parse_light_block(step["block"], f"input[{index}].block")
        verdict = verify(trusted, block, options, parse_rfc3339(step["now"]))
        outcomes.append(StepOutcome(index, block.height, step["verdict"], verdict))
        if isinstance(verdict, Success):
            trusted = block
    return outcomes


def run_single_step_file(path: Path) -> list[StepOutcome]:
    return run_single_step_vector(json.loads(path.read_text()))


def _load(directory: Path, name: str) -> object:
    return json.loads((directory / name).read_text())


def check_rpc_fixtures(directory: Path) -> list[str]:
    """Check recorded CometBFT RPC output (``rpc_kvstore_*``); returns the problems found (none is good).

    ``H(block_at_height_10.header) == its block_id``, the commit at height 10 is for that header and carries
    more than 2/3 valid power of the genesis validator set (which hashes to ``validators_hash``), and every
    ``/blockchain`` block meta's header hashes to its block id.
    """
    problems = []
    block_id, header = parse_block_response(_load(directory, "block_at_height_10.json"))
    if header_hash(header) != block_id.hash:
        problems.append("block_at_height_10: header hash != block_id.hash")
    signed_header = parse_commit_response(_load(directory, "commit_at_height_10.json"))
    genesis = parse_genesis_validators(_load(directory, "genesis.json"))
    if signed_header.header != header:
        problems.append("commit_at_height_10: header differs from block_at_height_10's")
    if validator_set_hash(genesis) != signed_header.header.validators_hash:
        problems.append("genesis validators do not hash to validators_hash")
    commit_verdict = verify_commit(signed_header, genesis)
    if not isinstance(commit_verdict, Success):
        problems.append(f"commit_at_height_10: {commit_verdict}")
    metas = parse_blockchain_response(_load(directory, "blockchain_from_1_to_10.json"))
    if not metas:
        problems.append("blockchain_from_1_to_10: no block metas")
    for meta_id, meta_header in metas:
        if header_hash(meta_header) != meta_id.hash:
            problems.append(f"blockchain: header hash at height {meta_header.height} != block_id.hash")
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m light_clients.tendermint.conformance", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("files", nargs="*", type=Path, help="single-step vector files")
    parser.add_argument(
        "--rpc-fixtures",
        nargs="*",
        type=Path,
        default=[],
        metavar="DIR",
        help="directories of recorded RPC output (rpc_kvstore_v0_37, ...)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="print only disagreements and the summary")
    args = parser.parse_args(argv)
    if not args.files and not args.rpc_fixtures:
        parser.error("give vector files and/or --rpc-fixtures directories")
    failures = steps = 0
    for path in args.files:
        try:
            outcomes = run_single_step_file(path)
        except (OSError, ValueError, KeyError, TypeError, LightBlockParseError, TimestampFormatError) as exc:
            print(f"{path}: cannot run: {exc!r}")
            failures += 1
            continue
        for outcome in outcomes:
            steps += 1
            mark = "ok  " if outcome.agrees else "FAIL"
            if not outcome.agrees:
                failures += 1
            if not args.quiet or not outcome.agrees:
                print(
                    f"{mark} {path.name} step {outcome.index} (height {outcome.height}): "
                    f"expected {outcome.expected}, got {outcome.actual}"
                )
    for directory in args.rpc_fixtures:
        try:
            problems = check_rpc_fixtures(directory)
        except (OSError, ValueError, KeyError, LightBlockParseError) as exc:
            problems = [f"cannot run: {exc!r}"]
        failures += len(problems)
        for problem in problems:
            print(f"FAIL {directory}: {problem}")
        if not problems:
            print(f"ok   {directory}: header hashes, validator set hash and commit signatures verify")
    verdict = "all agree" if failures == 0 else f"{failures} disagreements"
    print(f"{len(args.files)} files, {steps} steps, {len(args.rpc_fixtures)} rpc fixture dirs: {verdict}")
    return 0 if failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
