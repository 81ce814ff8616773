"""A devnet beacon chain built over one anvil: slot N is a beacon block whose execution payload is anvil's block N.

What each slot holds (everything a light client checks is real; what it never reads is left zero):

- **Body**: a 16-leaf tree (Deneb and Electra bodies have 12 and 13 fields) whose leaf 9, ``execution_payload``,
  is the ``ExecutionPayloadHeader`` root built from the anvil block (its hash recomputed from the header fields
  first); every other field is a zero leaf. ``execution_branch`` is the real branch of leaf 9 (gindex 25).
  ``transactions_root`` and ``withdrawals_root`` carry the execution header's Merkle-Patricia roots, not the SSZ
  list roots a real payload header commits to (no client reads them; the block hash covers them).
- **State**: a tree of the fork's width (Deneb 32 leaves, Electra 64) holding ``genesis_time``,
  ``genesis_validators_root``, ``slot``, ``finalized_checkpoint``, ``current_sync_committee``,
  ``next_sync_committee`` and ``latest_execution_payload_header`` at their real indices; every other field
  (validators, balances, randao mixes, ...) is a zero leaf. So the finality, current and next committee
  branches are real branches against the ``state_root`` of the header the committee signs.
- **Header**: ``(slot, proposer_index 0, parent_root = root of slot N-1, state_root, body_root)``.
- **Finality**: the finalized checkpoint of slot N is slot ``N - finality_depth`` (at least 1), the block the
  anvil itself treats as final at height N: the ``finalized`` tag for the L1 (two one-slot epochs: depth 2, the
  follower checks the tag agrees), N confirmations for a rollup. Its epoch is that slot's epoch (real finality is
  on epoch boundaries; the light client checks only the root). While that is slot 0, the checkpoint root is
  zero, the spec's genesis checkpoint. Finality depth 0 would make a state commit to its own block, so a chain
  with ``finality = 0`` is finalized one block behind.
- **Committees**: ``DevnetCommittees`` (one per period, every member signing). An update's aggregate is signed by
  the committee of ``period(signature_slot)`` in the domain of the fork at ``signature_slot - 1``. The server
  signs each head as soon as it has built it, dated to the next slot (``ChainFollower.signature_slot``), so the
  finalized block of the newest update is the one the anvil treats as final at its head, no block later.

Everything is a pure function of the anvil's chain, the chain id, ``genesis_time`` (anvil's genesis timestamp)
and the committee secret, so a restarted server rebuilds the same roots: a client's trusted block root stays
valid.
Kept per slot: four roots (beacon block, state, execution payload header, execution block hash), 128 bytes; the
full execution headers of recent slots are cached and older ones are read again from the anvil when asked for.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from devnets.beacon.committee import DevnetCommittees
from light_clients.ethereum.consensus.config import (
    DEVNET_SLOT_DURATION_MS,
    BeaconClock,
    NetworkConfig,
    devnet_network,
)
from light_clients.ethereum.consensus.containers import (
    BeaconBlockHeader,
    ExecutionPayloadHeader,
    LightClientBootstrap,
    LightClientFinalityUpdate,
    LightClientHeader,
    LightClientOptimisticUpdate,
    LightClientUpdate,
    SyncAggregate,
    SyncCommittee,
)
from light_clients.ethereum.consensus.preset import GENESIS_SLOT, MINIMAL, Gindex, LightClientFork, Preset
from light_clients.ethereum.consensus.signing import (
    DOMAIN_SYNC_COMMITTEE,
    compute_domain,
    compute_signing_root,
)
from light_clients.ethereum.consensus.ssz import ZERO_CHUNK, merkleize, root_of_uint, sha256
from light_clients.ethereum.execution import BlockHeader

BODY_DEPTH = 4  # execution_payload gindex 25: depth 4, index 9
STATE_GENESIS_TIME, STATE_GENESIS_VALIDATORS_ROOT, STATE_SLOT = 0, 1, 2
STATE_LATEST_EXECUTION_PAYLOAD_HEADER = 24
RECENT_EXECUTIONS = 4096


class BeaconChainError(Exception):
    """A block that does not extend the chain built so far, or a slot the chain does not hold."""


def tree_layers(leaves: list[bytes]) -> list[list[bytes]]:
    """Every layer of the Merkle tree over ``leaves`` (a power of two of them), leaves first, root last."""
    layers = [leaves]
    while len(layers[-1]) > 1:
        below = layers[-1]
        layers.append([sha256(below[i] + below[i + 1]) for i in range(0, len(below), 2)])
    return layers


def branch_of(layers: list[list[bytes]], index: int) -> tuple[bytes, ...]:
    """The siblings of leaf ``index``, bottom up (what ``is_valid_merkle_branch`` takes)."""
    return tuple(layers[level][(index >> level) ^ 1] for level in range(len(layers) - 1))


def execution_payload_header(block: BlockHeader) -> ExecutionPayloadHeader:
    """The payload header of an execution block (its hash recomputed from the fields by the caller's parser)."""
    if len(block.extra_data) > 32:
        raise BeaconChainError(f"block {block.number}: extra_data of {len(block.extra_data)} bytes")
    return ExecutionPayloadHeader(
        parent_hash=block.parent_hash, fee_recipient=block.beneficiary, state_root=block.state_root,
        receipts_root=block.receipts_root, logs_bloom=block.logs_bloom, prev_randao=block.mix_hash,
        block_number=block.number, gas_limit=block.gas_limit, gas_used=block.gas_used, timestamp=block.timestamp,
        extra_data=block.extra_data, base_fee_per_gas=block.base_fee_per_gas or 0, block_hash=block.hash(),
        transactions_root=block.transactions_root, withdrawals_root=block.withdrawals_root or ZERO_CHUNK,
        blob_gas_used=block.blob_gas_used or 0, excess_blob_gas=block.excess_blob_gas or 0,
    )


@dataclass(frozen=True)
class StateLayout:
    """Where the fields a light client proves sit in the state tree of a fork (from its gindices)."""

    depth: int
    current_sync_committee: int
    next_sync_committee: int
    finalized_checkpoint: int

    @classmethod
    def of(cls, fork: LightClientFork) -> StateLayout:
        current, following = fork.current_sync_committee_gindex, fork.next_sync_committee_gindex
        checkpoint = Gindex(fork.finalized_root_gindex.value >> 1)  # the Checkpoint container; its root is child 1
        assert current.depth == following.depth == checkpoint.depth
        return cls(current.depth, current.subtree_index, following.subtree_index, checkpoint.subtree_index)


class DevnetBeaconChain:
    """The beacon chain of one devnet EVM chain, built slot by slot from its blocks (see the module docstring)."""

    def __init__(self, chain_id: int, finality_depth: int, genesis_time: int, committee_secret: bytes, *,
                 fork: LightClientFork = LightClientFork.ELECTRA, preset: Preset = MINIMAL,
                 slot_duration_ms: int = DEVNET_SLOT_DURATION_MS) -> None:
        self.chain_id = chain_id
        self.finality_depth = max(1, finality_depth)
        self.fork = fork
        self.preset = preset
        self.network: NetworkConfig = devnet_network(chain_id)
        self.clock = BeaconClock(genesis_time, slot_duration_ms)
        self.committees = DevnetCommittees(committee_secret, chain_id, preset.sync_committee_size)
        self.layout = StateLayout.of(fork)
        self._block_roots = bytearray()
        self._state_roots = bytearray()
        self._execution_roots = bytearray()
        self._execution_hashes = bytearray()
        self._recent: OrderedDict[int, ExecutionPayloadHeader] = OrderedDict()

    # ------------------------------------------------------------------ building
    @property
    def length(self) -> int:
        """Slots built so far (the next block to append is number ``length``)."""
        return len(self._block_roots) // 32

    def append(self, block: BlockHeader) -> None:
        """Build the next slot from execution block ``length``, which must extend the last one."""
        slot = self.length
        if block.number != slot:
            raise BeaconChainError(f"block {block.number} given for slot {slot}")
        if slot > 0 and block.parent_hash != self.execution_hash(slot - 1):
            raise BeaconChainError(f"block {slot} does not extend block {slot - 1}")
        execution = execution_payload_header(block)
        execution_root = execution.hash_tree_root()
        self._execution_roots += execution_root
        self._execution_hashes += execution.block_hash
        state_root = tree_layers(self._state_leaves(slot))[-1][0]
        self._state_roots += state_root
        parent_root = self.block_root(slot - 1) if slot > 0 else ZERO_CHUNK
        header = BeaconBlockHeader(slot, 0, parent_root, state_root, self._body_root(execution_root))
        self._block_roots += header.hash_tree_root()
        self.remember(execution)

    def truncate(self, length: int) -> None:
        """Forget slots ``length`` and above (the anvil replaced their blocks)."""
        for data in (self._block_roots, self._state_roots, self._execution_roots, self._execution_hashes):
            del data[length * 32:]
        for slot in [s for s in self._recent if s >= length]:
            del self._recent[slot]

    def remember(self, execution: ExecutionPayloadHeader) -> None:
        """Cache a slot's execution header (one the chain holds: its hash must be the slot's)."""
        slot = execution.block_number
        if slot >= self.length or execution.block_hash != self.execution_hash(slot):
            raise BeaconChainError(f"execution block {slot} is not the one slot {slot} carries")
        self._recent[slot] = execution
        self._recent.move_to_end(slot)
        while len(self._recent) > RECENT_EXECUTIONS:
            self._recent.popitem(last=False)

    def missing_executions(self, slots: list[int]) -> list[int]:
        """Which of ``slots`` need their execution header read again from the node."""
        return sorted({s for s in slots if s not in self._recent})

    # ------------------------------------------------------------------ reading
    def _slice(self, data: bytearray, slot: int) -> bytes:
        if not 0 <= slot < len(data) // 32:
            raise BeaconChainError(f"slot {slot} is not built (length {self.length})")
        return bytes(data[slot * 32:(slot + 1) * 32])

    def block_root(self, slot: int) -> bytes:
        return self._slice(self._block_roots, slot)

    def execution_hash(self, slot: int) -> bytes:
        return self._slice(self._execution_hashes, slot)

    def slot_of_root(self, root: bytes) -> int | None:
        position = self._block_roots.find(root)
        while position != -1 and position % 32:
            position = self._block_roots.find(root, position + 1)
        return None if position == -1 else position // 32

    def finalized_slot(self, slot: int) -> int:
        """The slot whose block the state of ``slot`` has finalized (0: genesis, the zero checkpoint)."""
        return max(0, slot - self.finality_depth)

    def beacon_header(self, slot: int) -> BeaconBlockHeader:
        parent_root = self.block_root(slot - 1) if slot > 0 else ZERO_CHUNK
        body_root = self._body_root(self._slice(self._execution_roots, slot))
        return BeaconBlockHeader(slot, 0, parent_root, self._slice(self._state_roots, slot), body_root)

    def execution(self, slot: int) -> ExecutionPayloadHeader:
        try:
            return self._recent[slot]
        except KeyError:
            raise BeaconChainError(f"execution header of slot {slot} not cached: read it from the node") from None

    def light_client_header(self, slot: int) -> LightClientHeader:
        execution = self.execution(slot)
        body_layers = tree_layers(self._body_leaves(execution.hash_tree_root()))
        return LightClientHeader(self.beacon_header(slot), execution,
                                 branch_of(body_layers, self.fork.execution_payload_gindex.subtree_index))

    # ------------------------------------------------------------------ trees
    def _body_leaves(self, execution_root: bytes) -> list[bytes]:
        leaves = [ZERO_CHUNK] * (1 << BODY_DEPTH)
        leaves[self.fork.execution_payload_gindex.subtree_index] = execution_root
        return leaves

    def _body_root(self, execution_root: bytes) -> bytes:
        return tree_layers(self._body_leaves(execution_root))[-1][0]

    def _checkpoint(self, slot: int) -> tuple[bytes, bytes]:
        """(epoch leaf, root leaf) of the finalized checkpoint held by the state of ``slot``."""
        finalized = self.finalized_slot(slot)
        root = self.block_root(finalized) if finalized > GENESIS_SLOT else ZERO_CHUNK
        return root_of_uint(self.preset.epoch_at_slot(finalized), 8), root

    def _state_leaves(self, slot: int) -> list[bytes]:
        layout, period = self.layout, self.preset.period_at_slot(slot)
        leaves = [ZERO_CHUNK] * (1 << layout.depth)
        leaves[STATE_GENESIS_TIME] = root_of_uint(self.clock.genesis_time, 8)
        leaves[STATE_GENESIS_VALIDATORS_ROOT] = self.network.genesis_validators_root
        leaves[STATE_SLOT] = root_of_uint(slot, 8)
        leaves[layout.finalized_checkpoint] = merkleize(list(self._checkpoint(slot)))
        leaves[layout.current_sync_committee] = self.committees.of_period(period).committee.root
        leaves[layout.next_sync_committee] = self.committees.of_period(period + 1).committee.root
        leaves[STATE_LATEST_EXECUTION_PAYLOAD_HEADER] = self._slice(self._execution_roots, slot)
        return leaves

    def _state_branch(self, slot: int, index: int) -> tuple[bytes, ...]:
        return branch_of(tree_layers(self._state_leaves(slot)), index)

    # ------------------------------------------------------------------ light-client objects
    def committee(self, period: int) -> SyncCommittee:
        return self.committees.of_period(period).committee

    def bootstrap(self, slot: int) -> LightClientBootstrap:
        return LightClientBootstrap(self.light_client_header(slot),
                                    self.committee(self.preset.period_at_slot(slot)),
                                    self._state_branch(slot, self.layout.current_sync_committee))

    def sync_aggregate(self, signature_slot: int, attested: BeaconBlockHeader) -> SyncAggregate:
        """Every member of ``period(signature_slot)``'s committee signing ``attested`` (as block
        ``signature_slot``'s sync aggregate would)."""
        fork_version = self.network.fork_schedule.version_at_epoch(
            self.preset.epoch_at_slot(max(signature_slot, 1) - 1))
        domain = compute_domain(DOMAIN_SYNC_COMMITTEE, fork_version, self.network.genesis_validators_root)
        signature = self.committees.sign_all(self.preset.period_at_slot(signature_slot),
                                             compute_signing_root(attested, domain))
        bits = b"\xff" * (self.preset.sync_committee_size // 8)
        return SyncAggregate(bits, signature)

    def finality_parts(self, attested_slot: int) -> tuple[LightClientHeader, tuple[bytes, ...]]:
        """The finalized header the state of ``attested_slot`` names, and its branch (epoch leaf first)."""
        finalized = self.finalized_slot(attested_slot)
        header = self.light_client_header(finalized) if finalized > GENESIS_SLOT else LightClientHeader()
        epoch_leaf, _root = self._checkpoint(attested_slot)
        return header, (epoch_leaf, *self._state_branch(attested_slot, self.layout.finalized_checkpoint))

    def update(self, signature_slot: int, *, next_committee: bool = True) -> LightClientUpdate:
        """The update signed in ``signature_slot`` over slot ``signature_slot - 1``, with its finality and (if
        asked) the next period's committee proved against the attested state."""
        attested_slot = signature_slot - 1
        attested = self.light_client_header(attested_slot)
        finalized, finality_branch = self.finality_parts(attested_slot)
        if next_committee:
            following = self.committee(self.preset.period_at_slot(attested_slot) + 1)
            committee_branch = self._state_branch(attested_slot, self.layout.next_sync_committee)
        else:
            following = SyncCommittee.empty(self.preset)
            committee_branch = (ZERO_CHUNK,) * self.fork.next_sync_committee_gindex.depth
        return LightClientUpdate(attested, following, committee_branch, finalized, finality_branch,
                                 self.sync_aggregate(signature_slot, attested.beacon), signature_slot)

    def finality_update(self, signature_slot: int) -> LightClientFinalityUpdate:
        attested = self.light_client_header(signature_slot - 1)
        finalized, branch = self.finality_parts(signature_slot - 1)
        return LightClientFinalityUpdate(attested, finalized, branch,
                                         self.sync_aggregate(signature_slot, attested.beacon), signature_slot)

    def optimistic_update(self, signature_slot: int) -> LightClientOptimisticUpdate:
        attested = self.light_client_header(signature_slot - 1)
        return LightClientOptimisticUpdate(attested, self.sync_aggregate(signature_slot, attested.beacon),
                                           signature_slot)

    # ------------------------------------------------------------------ which slots an answer needs
    def period_update_signature_slot(self, period: int, head: int) -> int | None:
        """The signature slot of the update served for ``period`` when the newest signature slot is ``head``: the
        period's last slot once it is over, else ``head``; ``None`` while the period holds no attested slot whose
        finalized block is in the same period yet (the update could not move a client's store into this period)."""
        per = self.preset.slots_per_period
        signature_slot = min((period + 1) * per - 1, head)
        attested = signature_slot - 1
        if attested < max(period * per, 1):
            return None
        if period > 0 and self.finalized_slot(attested) < period * per:
            return None
        return signature_slot

    def slots_for_update(self, signature_slot: int) -> list[int]:
        """Slots whose execution headers an update signed in ``signature_slot`` shows."""
        attested = signature_slot - 1
        finalized = self.finalized_slot(attested)
        return [attested] + ([finalized] if finalized > GENESIS_SLOT else [])
