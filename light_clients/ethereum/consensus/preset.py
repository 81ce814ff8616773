"""Presets (sizes and periods fixed at compile time in clients) and light-client fork layouts (gindices)."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from light_clients.ethereum.consensus.errors import InvalidUpdate, RejectReason

GENESIS_SLOT = 0


@dataclass(frozen=True)
class Preset:
    """The preset constants the sync protocol depends on."""

    name: str
    sync_committee_size: int
    slots_per_epoch: int
    epochs_per_sync_committee_period: int
    min_sync_committee_participants: int = 1

    @property
    def slots_per_period(self) -> int:
        return self.slots_per_epoch * self.epochs_per_sync_committee_period

    @property
    def update_timeout(self) -> int:
        """Slots after which a stuck store may force its best valid update (one period)."""
        return self.slots_per_period

    def epoch_at_slot(self, slot: int) -> int:
        return slot // self.slots_per_epoch

    def period_at_slot(self, slot: int) -> int:
        return slot // self.slots_per_period

    def check_committee_size(self, size: int) -> None:
        if size != self.sync_committee_size:
            raise InvalidUpdate(
                RejectReason.WRONG_COMMITTEE_SIZE,
                f"{size} members, preset {self.name} needs {self.sync_committee_size}",
            )


MINIMAL = Preset(
    name="minimal", sync_committee_size=32, slots_per_epoch=8, epochs_per_sync_committee_period=8
)
MAINNET = Preset(
    name="mainnet", sync_committee_size=512, slots_per_epoch=32, epochs_per_sync_committee_period=256
)


@dataclass(frozen=True)
class Gindex:
    """A generalized index into a Merkle tree: depth and index among the leaves at that depth."""

    value: int

    @property
    def depth(self) -> int:
        return self.value.bit_length() - 1

    @property
    def subtree_index(self) -> int:
        return self.value - (1 << self.depth)


class LightClientFork(enum.Enum):
    """Light-client container layouts. Capella and Deneb share gindices; Electra deepened the state tree."""

    DENEB = "deneb"
    ELECTRA = "electra"

    @property
    def current_sync_committee_gindex(self) -> Gindex:
        return Gindex(86 if self is LightClientFork.ELECTRA else 54)

    @property
    def next_sync_committee_gindex(self) -> Gindex:
        return Gindex(87 if self is LightClientFork.ELECTRA else 55)

    @property
    def finalized_root_gindex(self) -> Gindex:
        return Gindex(169 if self is LightClientFork.ELECTRA else 105)

    @property
    def execution_payload_gindex(self) -> Gindex:
        """Of ``execution_payload`` in the block body, proved against ``beacon.body_root``."""
        return Gindex(25)
