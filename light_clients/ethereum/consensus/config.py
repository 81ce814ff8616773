"""Networks: genesis validators root, preset and fork schedule (the fork version in force at each epoch).

The fork version signed into every sync-committee domain comes from here, so a wrong schedule makes
every signature fail rather than pass.
"""

from __future__ import annotations

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
