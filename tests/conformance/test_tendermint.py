"""Tendermint light client against public vectors: tendermint-rs single-step verdicts, a header with a known
hash, real CometBFT node output (v0.37, v0.38), must-reject mutations of real data, and the CLI."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from light_clients.tendermint.blocks import BlockIdFlag, CommitSig, LightBlock, SignedHeader, TrustedState
from light_clients.tendermint.builder import Committee, build_light_block, validator_keys
from light_clients.tendermint.conformance import check_rpc_fixtures, run_single_step_file, verdict_name
from light_clients.tendermint.hashing import header_hash, validator_set_hash
from light_clients.tendermint.rpc_json import (
    parse_block_response,
    parse_blockchain_response,
    parse_commit_response,
    parse_genesis_validators,
    parse_header,
    parse_light_block,
    parse_signed_header,
    parse_validator_set,
)
from light_clients.tendermint.timestamps import NANOS_PER_SECOND, UnixNanos, parse_rfc3339
from light_clients.tendermint.verifier import (
    Invalid,
    NotEnoughTrust,
    Success,
    VerifyOptions,
    verify,
    verify_commit,
)

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "tendermint"
SINGLE_STEP = sorted((VECTORS / "single_step").glob("*.json"))
RPC_FIXTURES = [VECTORS / "rpc_kvstore_v0_37", VECTORS / "rpc_kvstore_v0_38"]
REPO = Path(__file__).resolve().parents[2]


def test_all_single_step_files_are_present() -> None:
    assert len(SINGLE_STEP) == 39


@pytest.mark.parametrize("path", SINGLE_STEP, ids=lambda p: p.stem)
def test_single_step_verdicts(path: Path) -> None:
    outcomes = run_single_step_file(path)
    assert outcomes
    got = [(o.index, verdict_name(o.actual)) for o in outcomes]
    assert got == [(o.index, o.expected) for o in outcomes], [str(o.actual) for o in outcomes]


def test_header_with_known_hash() -> None:
    header = parse_header(json.loads((VECTORS / "header_hash" / "header_with_known_hash.json").read_text()))
    assert (
        header_hash(header).hex().upper()
        == "F30A71F2409FB15AACAEDB6CC122DFA2525BEE9CAE521721B06BFDCA291B8D56"
    )


def _load(directory: Path, name: str) -> object:
    return json.loads((directory / name).read_text())


@pytest.mark.parametrize("directory", RPC_FIXTURES, ids=lambda p: p.name)
def test_rpc_fixtures_verify(directory: Path) -> None:
    assert check_rpc_fixtures(directory) == []
    block_id, header = parse_block_response(_load(directory, "block_at_height_10.json"))
    assert header_hash(header) == block_id.hash
    signed_header = parse_commit_response(_load(directory, "commit_at_height_10.json"))
    assert signed_header.commit.block_id == block_id
    genesis = parse_genesis_validators(_load(directory, "genesis.json"))
    assert validator_set_hash(genesis) == header.validators_hash
    assert verify_commit(signed_header, genesis) == Success()
    metas = parse_blockchain_response(_load(directory, "blockchain_from_1_to_10.json"))
    assert sorted(h.height for _, h in metas) == list(range(1, 11))
    assert all(header_hash(h) == bid.hash for bid, h in metas)
    # the chain links: each header's last_block_id is the previous block's id
    by_height = {h.height: (bid, h) for bid, h in metas}
    assert all(by_height[n][1].last_block_id == by_height[n - 1][0] for n in range(2, 11))


@pytest.mark.parametrize("directory", RPC_FIXTURES, ids=lambda p: p.name)
def test_rpc_commit_with_flipped_signature_is_rejected(directory: Path) -> None:
    signed_header = parse_commit_response(_load(directory, "commit_at_height_10.json"))
    genesis = parse_genesis_validators(_load(directory, "genesis.json"))
    verdict = verify_commit(
        _with_signature(signed_header, 0, _flip(signed_header.commit.signatures[0])), genesis
    )
    assert isinstance(verdict, Invalid) and "signature" in verdict.reason


# ---- must-reject mutations of real vector data ------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One step of a vector that verifies: trusted state, the block, options and clock."""

    trusted: TrustedState
    block: LightBlock
    options: VerifyOptions
    now: UnixNanos


def _successful_steps(path: Path) -> list[Case]:
    document = json.loads(path.read_text())
    initial = document["initial"]
    trusted = TrustedState(
        parse_signed_header(initial["signed_header"]).header,
        parse_validator_set(initial["next_validator_set"]),
    )
    options = VerifyOptions(trusting_period=int(initial["trusting_period"]))
    cases = []
    for step in document["input"]:
        block = parse_light_block(step["block"])
        if step["verdict"] == "SUCCESS":
            cases.append(Case(trusted, block, options, parse_rfc3339(step["now"])))
            trusted = TrustedState.of(block)
    return cases


def _committed(block: LightBlock) -> int:
    return sum(sig.block_id_flag == BlockIdFlag.COMMIT for sig in block.commit.signatures)


@pytest.fixture(scope="module")
def skipping_case() -> Case:
    """The real non-adjacent successful step with the most signatures."""
    cases = [
        c for path in SINGLE_STEP for c in _successful_steps(path) if c.block.height > c.trusted.height + 1
    ]
    return max(cases, key=lambda c: _committed(c.block))


@pytest.fixture(scope="module")
def adjacent_case() -> Case:
    cases = [
        c for path in SINGLE_STEP for c in _successful_steps(path) if c.block.height == c.trusted.height + 1
    ]
    return max(cases, key=lambda c: _committed(c.block))


def _flip(sig: CommitSig) -> CommitSig:
    return dataclasses.replace(sig, signature=bytes([sig.signature[0] ^ 1]) + sig.signature[1:])


def _with_signature(signed_header: SignedHeader, index: int, sig: CommitSig) -> SignedHeader:
    signatures = list(signed_header.commit.signatures)
    signatures[index] = sig
    return SignedHeader(
        signed_header.header, dataclasses.replace(signed_header.commit, signatures=tuple(signatures))
    )


def _with_signed_header(block: LightBlock, signed_header: SignedHeader) -> LightBlock:
    return dataclasses.replace(block, signed_header=signed_header)


def _run(case: Case, block: LightBlock | None = None, now: int | None = None) -> object:
    return verify(case.trusted, block or case.block, case.options, case.now if now is None else now)


@pytest.mark.parametrize("case_name", ["skipping_case", "adjacent_case"])
def test_real_steps_succeed_before_mutation(case_name: str, request: pytest.FixtureRequest) -> None:
    case: Case = request.getfixturevalue(case_name)
    assert _committed(case.block) >= 2
    assert _run(case) == Success()


@pytest.mark.parametrize("case_name", ["skipping_case", "adjacent_case"])
def test_flipped_signature_byte_is_invalid(case_name: str, request: pytest.FixtureRequest) -> None:
    case: Case = request.getfixturevalue(case_name)
    sigs = case.block.commit.signatures
    for index, sig in enumerate(sigs):
        if sig.block_id_flag != BlockIdFlag.COMMIT:
            continue
        mutated = _with_signed_header(
            case.block, _with_signature(case.block.signed_header, index, _flip(sig))
        )
        verdict = _run(case, mutated)
        assert isinstance(verdict, Invalid), (index, verdict)
        assert "signature" in verdict.reason


@pytest.mark.parametrize("field", ["app_hash", "chain_id", "time", "proposer_address", "height"])
def test_changed_header_field_is_invalid(field: str, skipping_case: Case) -> None:
    header = skipping_case.block.header
    changes: dict[str, Any] = {
        "app_hash": b"\x01" * 32,
        "chain_id": header.chain_id + "x",
        "time": header.time + 1,
        "proposer_address": b"\x02" * 20,
        "height": header.height + 1,
    }
    mutated_header = dataclasses.replace(header, **{field: changes[field]})
    mutated = _with_signed_header(
        skipping_case.block, SignedHeader(mutated_header, skipping_case.block.commit)
    )
    verdict = _run(skipping_case, mutated)
    assert isinstance(verdict, Invalid)
    assert "block_id" in verdict.reason or "height" in verdict.reason


def test_signers_dropped_below_two_thirds_is_invalid(adjacent_case: Case) -> None:
    block = adjacent_case.block
    total = block.validators.total_voting_power()
    by_address = block.validators.by_address()
    signed_header = block.signed_header
    remaining = sum(
        by_address[s.validator_address].voting_power
        for s in signed_header.commit.signatures
        if s.block_id_flag == BlockIdFlag.COMMIT
    )
    for index, sig in enumerate(signed_header.commit.signatures):
        if remaining * 3 <= total * 2:
            break
        if sig.block_id_flag == BlockIdFlag.COMMIT:
            signed_header = _with_signature(
                signed_header, index, CommitSig(BlockIdFlag.ABSENT, b"", UnixNanos(0), b"")
            )
            remaining -= by_address[sig.validator_address].voting_power
    verdict = _run(adjacent_case, _with_signed_header(block, signed_header))
    assert isinstance(verdict, Invalid) and "2/3" in verdict.reason


def test_expired_trusting_period_is_invalid(skipping_case: Case) -> None:
    expiry = skipping_case.trusted.header.time + skipping_case.options.trusting_period
    assert _run(skipping_case, now=expiry - 1) == Success()
    verdict = _run(skipping_case, now=expiry)
    assert isinstance(verdict, Invalid) and "trusting period" in verdict.reason


def test_header_from_the_future_is_invalid(skipping_case: Case) -> None:
    verdict = _run(skipping_case, now=skipping_case.block.header.time)
    assert isinstance(verdict, Invalid) and "future" in verdict.reason


def test_too_few_signers_skipping_is_not_enough_trust_or_invalid() -> None:
    """Four equal validators, trusted = untrusted set: 1 signer is not > 1/3 (NotEnoughTrust), 2 are > 1/3
    of the trusted set but not > 2/3 of the signing set (Invalid), 3 succeed."""
    committee = Committee.equal_power(validator_keys(4), power=10)
    addresses = [v.address for v in committee.validator_set.validators]
    trusted = build_light_block(chain_id="c", height=1, time=0, committee=committee)
    options = VerifyOptions.from_seconds(trusting_period=3600)
    now = 100 * NANOS_PER_SECOND

    def skip_to(signers: int) -> object:
        block = build_light_block(
            chain_id="c",
            height=50,
            time=50 * NANOS_PER_SECOND,
            committee=committee,
            signers=addresses[:signers],
        )
        return verify(trusted, block, options, now)

    one = skip_to(1)
    assert isinstance(one, NotEnoughTrust) and (one.tallied, one.total) == (10, 40)
    assert isinstance(skip_to(2), Invalid)
    assert skip_to(3) == Success()


# ---- the CLI ----------------------------------------------------------------------------------------


def _cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "light_clients.tendermint.conformance", *map(str, args)],
        check=False,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_cli_agrees_on_all_real_files() -> None:
    result = _cli(*SINGLE_STEP, "--rpc-fixtures", *RPC_FIXTURES)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "39 files" in result.stdout and "all agree" in result.stdout
    assert "expected NOT_ENOUGH_TRUST, got NOT_ENOUGH_TRUST" in result.stdout


def test_cli_fails_on_a_flipped_expected_verdict(tmp_path: Path) -> None:
    source = VECTORS / "single_step" / "MC4_4_faulty_TestSuccess.json"
    document = json.loads(source.read_text())
    step = document["input"][-1]
    step["verdict"] = "INVALID" if step["verdict"] == "SUCCESS" else "SUCCESS"
    flipped = tmp_path / "flipped.json"
    flipped.write_text(json.dumps(document))
    result = _cli(source, flipped)
    assert result.returncode != 0
    assert "FAIL flipped.json" in result.stdout
    assert "1 disagreements" in result.stdout


def test_cli_fails_on_an_unreadable_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"initial": {}}')
    assert _cli(broken).returncode != 0
