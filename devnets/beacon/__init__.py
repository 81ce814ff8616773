"""The devnet's beacon light-client endpoints: one beacon chain per anvil, served over the Beacon API.

``chain`` builds the beacon chain (slot N carries anvil block N; real branches, zero leaves elsewhere),
``committee`` its sync committees (devnet test keys), ``follower`` follows the anvil, ``server`` serves the
light-client routes, ``process`` starts and waits for ``python -m devnets.beacon``.
"""

from devnets.beacon.follower import ChainSpec
from devnets.beacon.process import (
    BeaconNotReady,
    finalized_block_root,
    start_beacon_devnet,
    wait_until_ready,
    write_committee_secret,
)

__all__ = ["BeaconNotReady", "ChainSpec", "finalized_block_root", "start_beacon_devnet", "wait_until_ready",
           "write_committee_secret"]
