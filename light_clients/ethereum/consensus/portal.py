"""Portal network (history/beacon sub-network) encoding of light-client objects.

A content value is a 4-byte fork digest followed by the SSZ object; ``LightClientUpdatesByRange`` is an
SSZ list of such values. Content keys are a selector byte and the SSZ of the lookup key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from light_clients.ethereum.consensus.containers import (
    LightClientBootstrap,
    LightClientFinalityUpdate,
    LightClientOptimisticUpdate,
    LightClientUpdate,
)
from light_clients.ethereum.consensus.errors import MalformedSsz
from light_clients.ethereum.consensus.preset import LightClientFork, Preset
from light_clients.ethereum.consensus.signing import compute_fork_data_root
from light_clients.ethereum.consensus.ssz import split_variable_list

FORK_DIGEST_SIZE = 4
BOOTSTRAP_SELECTOR = 0x10
UPDATES_BY_RANGE_SELECTOR = 0x11
FINALITY_UPDATE_SELECTOR = 0x12
OPTIMISTIC_UPDATE_SELECTOR = 0x13


def compute_fork_digest(fork_version: bytes, genesis_validators_root: bytes) -> bytes:
    return compute_fork_data_root(fork_version, genesis_validators_root)[:FORK_DIGEST_SIZE]


@dataclass(frozen=True)
class PortalContent:
    """One content item: its key and its value (fork digest, then SSZ)."""

    key: bytes
    value: bytes

    @classmethod
    def from_test_yaml(cls, text: str) -> PortalContent:
        """From a portal-spec-tests file: ``content_key`` / ``content_value`` hex, wrapped with ``\\``."""
        found = {}
        for name in ("content_key", "content_value"):
            match = re.search(name + r':\s*"0x([0-9a-fA-F\\\s]*)"', text)
            if match is None:
                raise MalformedSsz(f"no {name} in the portal test file")
            found[name] = bytes.fromhex(re.sub(r"[\\\s]", "", match.group(1)))
        return cls(found["content_key"], found["content_value"])

    @property
    def fork_digest(self) -> bytes:
        return self.value[:FORK_DIGEST_SIZE]

    @property
    def payload(self) -> bytes:
        return self.value[FORK_DIGEST_SIZE:]

    def bootstrap_block_root(self) -> bytes:
        """The block root a bootstrap key asks for (what the bootstrap header must hash to)."""
        if len(self.key) != 33 or self.key[0] != BOOTSTRAP_SELECTOR:
            raise MalformedSsz("not a bootstrap content key")
        return self.key[1:]

    def bootstrap(self, preset: Preset, fork: LightClientFork) -> LightClientBootstrap:
        return LightClientBootstrap.decode(self.payload, preset, fork)

    def finality_update(self, preset: Preset, fork: LightClientFork) -> LightClientFinalityUpdate:
        return LightClientFinalityUpdate.decode(self.payload, preset, fork)

    def optimistic_update(self, preset: Preset) -> LightClientOptimisticUpdate:
        return LightClientOptimisticUpdate.decode(self.payload, preset)

    def updates_by_range(
        self, preset: Preset, fork: LightClientFork
    ) -> list[tuple[bytes, LightClientUpdate]]:
        """``(fork_digest, update)`` for each item of a ``LightClientUpdatesByRange`` value."""
        items = split_variable_list(self.value, "LightClientUpdatesByRange")
        return [
            (item[:FORK_DIGEST_SIZE], LightClientUpdate.decode(item[FORK_DIGEST_SIZE:], preset, fork))
            for item in items
        ]
