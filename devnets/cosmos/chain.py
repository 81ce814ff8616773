"""The devnet chain: a mempool fed by CheckTx, blocks produced on demand (the node calls
``produce_block`` on a timer), signed by the validators, persisted after each block.

Block ``H`` carries the app hash and results hash of block ``H - 1``; its time is the time of the votes
of the commit for ``H - 1`` (all validators vote at the same instant, so that is their median, as BFT
time requires). The commit for ``H`` is signed as soon as ``H`` is produced.

``snapshot`` / ``revert`` (``xchain_snapshot`` / ``xchain_revert``, devnet-only: ``devnets.snapshots``) put the
chain back in place: the blocks after the snapshot's height and their txs go (store and tx index), the state is
the snapshot's (balances, account numbers and sequences), the mempool is dropped. The next block is the
snapshot's height + 1, built on its block and commit.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import structlog

from devnets.cosmos.accounts import address_bytes
from devnets.cosmos.blocks import (
    StoredBlock,
    commit_hash,
    consensus_params_hash,
    data_hash,
    results_hash,
)
from devnets.cosmos.genesis import GenesisSettings, genesis_balances, validator_committee
from devnets.cosmos.state import LedgerState
from devnets.cosmos.store import ChainStore
from devnets.cosmos.transactions import ExecMode, TxProcessor, TxResult
from light_clients.tendermint.blocks import BlockId, Header, ValidatorSet
from light_clients.tendermint.builder import DEFAULT_VERSION, Committee, part_set_header_for, sign_commit
from light_clients.tendermint.hashing import header_hash, validator_set_hash
from light_clients.tendermint.timestamps import UnixNanos

log = structlog.get_logger(__name__)

EMPTY_HASH = hashlib.sha256(b"").digest()
MAX_TXS_PER_BLOCK = 5000
TX_ALREADY_IN_CACHE = 19


@dataclass(frozen=True)
class TxLocation:
    height: int
    index: int


@dataclass(frozen=True)
class ChainSnapshot:
    """The chain at one height (``CosmosChain.snapshot``): blocks up to it never change, so the height and a copy
    of the state after it are all a revert needs."""

    height: int
    state: LedgerState


class CosmosChain:
    """Blocks, state, mempool and the tx index of the devnet."""

    def __init__(
        self, settings: GenesisSettings, state_dir: Path, *, signer_count: int | None = None
    ) -> None:
        self.store = ChainStore(state_dir)
        stored = self.store.meta("settings")
        if stored is not None:
            settings = GenesisSettings.from_json(json.loads(stored))
        self.settings = settings
        self.committee: Committee = validator_committee(settings.validator_count)
        ordered = self.committee.validator_set.validators
        count = len(ordered) if signer_count is None else signer_count
        self.signers: Collection[bytes] = [v.address for v in ordered[:count]]
        self.processor = TxProcessor(settings)
        self.blocks: list[StoredBlock] = []
        self.tx_index: dict[bytes, TxLocation] = {}
        self.mempool: list[bytes] = []
        if stored is None:
            self.genesis_time = UnixNanos(time.time_ns())
            self.state = self._genesis_state()
            self.store.set_meta(
                {"settings": json.dumps(settings.to_json()), "genesis_time": str(self.genesis_time)}
            )
            self.genesis_app_hash = self.state.app_hash()
            self.store.set_meta({"genesis_app_hash": self.genesis_app_hash.hex()})
        else:
            self.genesis_time = UnixNanos(int(self.store.meta("genesis_time") or 0))
            self.genesis_app_hash = bytes.fromhex(self.store.meta("genesis_app_hash") or "")
            for block in self.store.load_blocks():
                self._index(block)
            self.state = self.store.load_state() or self._genesis_state()
        self.check_state = self.state.copy()
        log.info(
            "cosmos_chain_loaded", chain_id=settings.chain_id, height=self.height, state_dir=str(state_dir)
        )

    def _genesis_state(self) -> LedgerState:
        state = LedgerState()
        for address, coins in genesis_balances(self.settings).items():
            raw = address_bytes(address)
            state.ensure_account(raw)
            state.balances[raw] = dict(coins)
        state.ensure_account(self.processor.fee_collector)
        return state

    def _index(self, block: StoredBlock) -> None:
        self.blocks.append(block)
        for index, tx in enumerate(block.txs):
            self.tx_index[hashlib.sha256(tx).digest()] = TxLocation(block.height, index)

    @property
    def height(self) -> int:
        return self.blocks[-1].height if self.blocks else 0

    @property
    def validator_set(self) -> ValidatorSet:
        return self.committee.validator_set

    def block(self, height: int) -> StoredBlock | None:
        if 1 <= height <= self.height:
            return self.blocks[height - 1]
        return None

    # ---- txs ---------------------------------------------------------------------------------------------

    def check_tx(self, raw: bytes) -> TxResult:
        """CheckTx: the ante handler against the mempool's state; accepted txs wait for the next block."""
        tx_hash = hashlib.sha256(raw).digest()
        if tx_hash in self.tx_index or raw in self.mempool:
            return TxResult(TX_ALREADY_IN_CACHE, "sdk", "tx already exists in cache", b"", 0, 0)
        result = self.processor.run(self.check_state, raw, ExecMode.CHECK, self.height + 1)
        if result.code == 0:
            self.mempool.append(raw)
        log.info("cosmos_check_tx", tx_hash=tx_hash.hex().upper(), code=result.code, log=result.log)
        return result

    def simulate(self, raw: bytes) -> TxResult:
        return self.processor.run(self.check_state.copy(), raw, ExecMode.SIMULATE, self.height + 1)

    def find_tx(self, tx_hash: bytes) -> tuple[StoredBlock, int] | None:
        location = self.tx_index.get(tx_hash)
        if location is None:
            return None
        return self.blocks[location.height - 1], location.index

    # ---- snapshots ---------------------------------------------------------------------------------------

    def snapshot(self) -> ChainSnapshot:
        return ChainSnapshot(self.height, self.state.copy())

    def revert(self, snapshot: ChainSnapshot) -> None:
        """Back to ``snapshot`` in place: the store first (one SQLite transaction), then the blocks, the tx
        index, the state and the mempool's check state; the txs waiting in the mempool are dropped."""
        self.store.revert(snapshot.height, snapshot.state)
        dropped = len(self.mempool)
        del self.blocks[snapshot.height :]
        self.tx_index = {h: at for h, at in self.tx_index.items() if at.height <= snapshot.height}
        self.mempool = []
        self.state = snapshot.state.copy()
        self.check_state = self.state.copy()
        log.info("cosmos_chain_reverted", height=self.height, mempool_dropped=dropped)

    # ---- blocks ------------------------------------------------------------------------------------------

    def produce_block(self) -> StoredBlock:
        """Build, execute, sign and persist the next block with the txs of the mempool."""
        previous = self.blocks[-1] if self.blocks else None
        height = self.height + 1
        txs = tuple(self.mempool[:MAX_TXS_PER_BLOCK])
        if previous is None:
            block_time = self.genesis_time
        else:
            votes = [sig.timestamp for sig in previous.commit.signatures if sig.signature]
            block_time = UnixNanos(sorted(votes)[len(votes) // 2] if votes else previous.header.time + 1)
        ordered = self.validator_set.validators
        header = Header(
            version=DEFAULT_VERSION,
            chain_id=self.settings.chain_id,
            height=height,
            time=UnixNanos(block_time),
            last_block_id=previous.block_id if previous else BlockId(),
            last_commit_hash=commit_hash(previous.commit if previous else None),
            data_hash=data_hash(txs),
            validators_hash=validator_set_hash(self.validator_set),
            next_validators_hash=validator_set_hash(self.validator_set),
            consensus_hash=consensus_params_hash(),
            app_hash=self.state.app_hash() if previous else self.genesis_app_hash,
            last_results_hash=results_hash(previous.results if previous else ()),
            evidence_hash=EMPTY_HASH,
            proposer_address=ordered[(height - 1) % len(ordered)].address,
        )
        new_state = self.state.copy()
        results = tuple(self.processor.run(new_state, tx, ExecMode.DELIVER, height) for tx in txs)
        block_hash = header_hash(header)
        block_id = BlockId(block_hash, part_set_header_for(block_hash))
        vote_time = max(time.time_ns(), header.time + 1_000_000)
        commit = sign_commit(
            header, self.committee, signers=self.signers, vote_time=vote_time, block_id=block_id
        )
        block = StoredBlock(header, block_id, txs, results, commit, previous.commit if previous else None)
        self.store.save_block(block, new_state)
        self.state = new_state
        self._index(block)
        self.mempool = self.mempool[len(txs) :]
        self.check_state = self.state.copy()
        for raw in list(self.mempool):
            if self.processor.run(self.check_state, raw, ExecMode.CHECK, height + 1).code != 0:
                self.mempool.remove(raw)
        if txs:
            log.info("cosmos_block", height=height, txs=len(txs), codes=[r.code for r in results])
        return block

    def balance(self, address: str, denom: str) -> int:
        return self.state.balance(address_bytes(address), denom)
