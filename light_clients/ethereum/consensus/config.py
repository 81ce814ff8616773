"""Networks: genesis validators root, preset and fork schedule (the fork version in force at each epoch).

The fork version signed into every sync-committee domain comes from here, so a wrong schedule makes
every signature fail rather than pass.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from light_clients.ethereum.consensus.errors import LightClientError
from light_clients.ethereum.consensus.preset import MAINNET as MAINNET_PRESET
from light_clients.ethereum.consensus.preset import MINIMAL as MINIMAL_PRESET
from light_clients.ethereum.consensus.preset import Preset

FAR_FUTURE_EPOCH = 2**64 - 1
FORK_NAMES = ("GENESIS", "ALTAIR", "BELLATRIX", "CAPELLA", "DENEB", "ELECTRA", "FULU")


class ForkScheduleError(LightClientError, ValueError):
    """A fork schedule is empty, unordered or unparseable."""


@dataclass(frozen=True)
class ScheduledFork:
    name: str
    epoch: int
    version: bytes


@dataclass(frozen=True)
class ForkSchedule:
    """Forks in activation order; the version at an epoch is that of the last fork activated by then."""

    forks: tuple[ScheduledFork, ...]

    def __post_init__(self) -> None:
        if not self.forks or self.forks[0].epoch != 0:
            raise ForkScheduleError("a fork schedule starts with a fork at epoch 0")
        epochs = [fork.epoch for fork in self.forks]
        if epochs != sorted(epochs):
            raise ForkScheduleError(f"fork epochs out of order: {epochs}")
        if any(len(fork.version) != 4 for fork in self.forks):
            raise ForkScheduleError("fork versions are 4 bytes")

    def version_at_epoch(self, epoch: int) -> bytes:
        version = self.forks[0].version
        for fork in self.forks:
            if fork.epoch <= epoch:
                version = fork.version
        return version

    @classmethod
    def from_spec_config(cls, text: str) -> ForkSchedule:
        """From a consensus-spec ``config.yaml`` (``<FORK>_FORK_VERSION`` / ``<FORK>_FORK_EPOCH`` lines)."""
        values = dict(re.findall(r"^([A-Z0-9_]+):\s*'?([0-9A-Za-zx]+)'?\s*$", text, flags=re.MULTILINE))
        forks = []
        for name in FORK_NAMES:
            version = values.get(f"{name}_FORK_VERSION")
            epoch = "0" if name == "GENESIS" else values.get(f"{name}_FORK_EPOCH")
            if version is None or epoch is None or int(epoch) >= FAR_FUTURE_EPOCH:
                continue
            forks.append(ScheduledFork(name.lower(), int(epoch), bytes.fromhex(version.removeprefix("0x"))))
        if not forks:
            raise ForkScheduleError("no <FORK>_FORK_VERSION entries in the config")
        forks.sort(key=lambda fork: fork.epoch)
        return cls(tuple(forks))


@dataclass(frozen=True)
class NetworkConfig:
    """What identifies a chain to the light client."""

    name: str
    preset: Preset
    genesis_validators_root: bytes
    fork_schedule: ForkSchedule


MAINNET_FORK_SCHEDULE = ForkSchedule(
    (
        ScheduledFork("genesis", 0, bytes.fromhex("00000000")),
        ScheduledFork("altair", 74240, bytes.fromhex("01000000")),
        ScheduledFork("bellatrix", 144896, bytes.fromhex("02000000")),
        ScheduledFork("capella", 194048, bytes.fromhex("03000000")),
        ScheduledFork("deneb", 269568, bytes.fromhex("04000000")),
        ScheduledFork("electra", 364032, bytes.fromhex("05000000")),
    )
)

MAINNET = NetworkConfig(
    name="mainnet",
    preset=MAINNET_PRESET,
    genesis_validators_root=bytes.fromhex("4b363db94e286120d76eb905340fdd4e54bfe9f06bf33ff6cf5ad27f511bfe95"),
    fork_schedule=MAINNET_FORK_SCHEDULE,
)


def minimal_network(config_yaml: str, genesis_validators_root: bytes, name: str = "minimal") -> NetworkConfig:
    """A minimal-preset network from a spec-test ``config.yaml`` and its genesis validators root."""
    return NetworkConfig(
        name, MINIMAL_PRESET, genesis_validators_root, ForkSchedule.from_spec_config(config_yaml)
    )


# --- the project's devnet beacon chains (devnets/beacon) -----------------------------------------------------
# One beacon chain per EVM devnet chain: slot N carries the anvil's block N as its execution payload, under the
# minimal preset (32-member sync committees, 8-slot epochs, 64-slot periods) and Electra container layouts.
# Every fork is active from genesis (the versions end in 0x78, "x": no public network uses them), so the domain
# of every signature is Electra's. Slots are blocks, not time: the clock runs at DEVNET_SLOT_DURATION_MS a slot,
# faster than any devnet chain makes blocks (1, 2 and 4 a second), so an honest update's signature slot is never
# ahead of a client's clock; the server publishes a slot only once the clock has reached it (after a burst of
# blocks, ``anvil_mine``, the slots come out as the clock reaches them).
DEVNET_SLOT_DURATION_MS = 100
DEVNET_FORK_SCHEDULE = ForkSchedule(
    tuple(
        ScheduledFork(name.lower(), 0, bytes([i, 0, 0, 0x78]))
        for i, name in enumerate(FORK_NAMES[: FORK_NAMES.index("ELECTRA") + 1])
    )
)


def devnet_genesis_validators_root(chain_id: int) -> bytes:
    """The devnet beacon chain's genesis validators root: a fixed function of the execution chain id, so a client
    knows it without asking the endpoint (a signature made for another chain's domain fails)."""
    return hashlib.sha256(b"xchain devnet beacon chain" + chain_id.to_bytes(8, "big")).digest()


def devnet_network(chain_id: int) -> NetworkConfig:
    return NetworkConfig(f"devnet-{chain_id}", MINIMAL_PRESET, devnet_genesis_validators_root(chain_id),
                         DEVNET_FORK_SCHEDULE)


@dataclass(frozen=True)
class BeaconClock:
    """Slot arithmetic of a beacon chain: ``genesis_time`` (unix seconds) and the slot duration."""

    genesis_time: int
    slot_duration_ms: int

    def slot_at(self, unix_time_s: float) -> int:
        """The slot whose span holds ``unix_time_s`` (0 before genesis): a client's ``current_slot``."""
        return max(0, int((unix_time_s - self.genesis_time) * 1000) // self.slot_duration_ms)

    def start_of(self, slot: int) -> float:
        return self.genesis_time + slot * self.slot_duration_ms / 1000
