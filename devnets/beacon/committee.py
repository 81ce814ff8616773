"""The devnet sync committees: 32 BLS keys per period, derived from the devnet's committee secret.

Key ``i`` of period ``p`` on execution chain ``chain_id`` is ``KeyGen(sha256("xchain devnet sync committee" |
secret | chain_id | p | i))``. The committee changes every period, so a client following the chain really
rotates: it learns period ``p + 1``'s committee from an update signed by period ``p``'s (``next_sync_committee``
proved against the attested state root).

The secret (32 random bytes, made by ``relayer devnet up`` into ``beacon.secret`` of the devnet directory, mode
0600, and read only by the beacon process) is what makes the light client mean anything: a client trusts
whatever this committee signs, so whoever can derive its keys can sign the headers of a fork of their own. It is
in no manifest, config or log. It is still a devnet key: the committee of a real chain is its validators'.

Every member signs every slot, so the aggregate signature is one signature by the sum of the secret keys
(BLS is linear: ``sum(sk_i) * H(m) = sum(sk_i * H(m))``), which verifies under ``FastAggregateVerify`` of all
32 public keys exactly as the aggregate of 32 separate signatures would.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass

import blspy

from light_clients.ethereum.consensus.containers import SyncCommittee


@dataclass(frozen=True)
class PeriodCommittee:
    committee: SyncCommittee
    aggregate_secret: blspy.PrivateKey  # the sum of the members' secret keys (devnet test keys)


SECRET_SIZE = 32


def member_seed(secret: bytes, chain_id: int, period: int, index: int) -> bytes:
    return hashlib.sha256(b"xchain devnet sync committee" + secret + chain_id.to_bytes(8, "big")
                          + period.to_bytes(8, "big") + index.to_bytes(4, "big")).digest()


class DevnetCommittees:
    """Committees of one devnet beacon chain, the few most recently used kept (about 5 ms to derive one)."""

    def __init__(self, secret: bytes, chain_id: int, size: int, capacity: int = 8) -> None:
        if len(secret) != SECRET_SIZE:
            raise ValueError(f"the committee secret is {SECRET_SIZE} bytes, got {len(secret)}")
        self._secret = secret
        self.chain_id = chain_id
        self.size = size
        self._capacity = capacity
        self._cache: OrderedDict[int, PeriodCommittee] = OrderedDict()

    def of_period(self, period: int) -> PeriodCommittee:
        if period in self._cache:
            self._cache.move_to_end(period)
            return self._cache[period]
        secrets = [blspy.PopSchemeMPL.key_gen(member_seed(self._secret, self.chain_id, period, i))
                   for i in range(self.size)]
        publics = [sk.get_g1() for sk in secrets]
        aggregate_public = publics[0]
        for key in publics[1:]:
            aggregate_public = aggregate_public + key
        found = PeriodCommittee(SyncCommittee(tuple(bytes(k) for k in publics), bytes(aggregate_public)),
                                blspy.PrivateKey.aggregate(secrets))
        self._cache[period] = found
        while len(self._cache) > self._capacity:
            self._cache.popitem(last=False)
        return found

    def sign_all(self, period: int, signing_root: bytes) -> bytes:
        """The aggregate signature of every member of ``period``'s committee over ``signing_root``."""
        return bytes(blspy.PopSchemeMPL.sign(self.of_period(period).aggregate_secret, signing_root))
