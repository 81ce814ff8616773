"""The counter app's fixtures on the ``xchain`` plugin's devnet: a ``CrossChainCounter`` on l1 and one on rollup_a,
deployed and enrolled with each other once per session, in the baseline every test starts from."""

from __future__ import annotations

import pytest
from counter import COUNTER_SOL, Counter, compile_counter
from web3 import Web3

from relayer.testing.xchain import XChain

CHAINS = ("l1", "rollup_a")
OWNER = 1  # accounts[1] of each chain deploys and owns the counters; the xchain fixture's own sends sign with
# accounts[0]. Both are funded PUBLIC devnet test keys (the anvil test mnemonic's).


class Counters:
    """The session's counters as a test uses them: ``on(chain)`` is a ``counter.Counter`` (web3) signing with
    ``accounts[sender]`` of that chain."""

    def __init__(self, xchain: XChain, addresses: dict[str, str], abi: list[dict]) -> None:
        self.xchain = xchain
        self.addresses = addresses
        self.abi = abi

    def on(self, chain: str, sender: int = OWNER, address: str | None = None) -> Counter:
        info = self.xchain.chains[chain]
        w3 = Web3(Web3.HTTPProvider(info.rpc_url))
        return Counter(w3, address or self.addresses[chain], self.abi, info.accounts[sender].private_key)

    def increment(self, origin: str, destination: str, by: int = 1) -> str:
        """``origin``'s counter sends ``by`` to ``destination``'s: the message id."""
        message_id, _tx = self.on(origin).increment(self.xchain.chains[destination].domain, by)
        return message_id

    def count(self, chain: str, origin: str) -> int:
        """What ``chain``'s counter has counted from ``origin``, read from the chain."""
        return self.on(chain).count_from(self.xchain.chains[origin].domain)


@pytest.fixture(scope="session")
def counter_abi() -> list[dict]:
    return compile_counter().abi


@pytest.fixture(scope="session")
def counter_addresses(xchain_session, counter_abi) -> dict[str, str]:
    """Deploy and enroll the counters once; ``baseline()`` makes that the state every reset goes back to."""
    xchain = XChain(xchain_session)
    addresses = {name: xchain.deploy(name, COUNTER_SOL, xchain.chains[name].contracts["mailbox"], sender=OWNER)
                 for name in CHAINS}
    counters = Counters(xchain, addresses, counter_abi)
    for name in CHAINS:
        for other in CHAINS:
            if other != name:
                counters.on(name).enroll(xchain.chains[other].domain, addresses[other])
    xchain_session.baseline()
    return addresses


@pytest.fixture
def counters(xchain: XChain, counter_addresses: dict[str, str], counter_abi: list[dict]) -> Counters:
    return Counters(xchain, counter_addresses, counter_abi)

