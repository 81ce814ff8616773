"""Devnet integration tests for dApps: the ``xchain`` pytest plugin.

``pip install xchain-relayer`` registers the plugin (``[project.entry-points.pytest11]``: ``xchain =
relayer.testing.plugin``); a suite then writes::

    pytestmark = pytest.mark.xchain(families=["evm", "solana", "cosmos"])

    def test_my_bridge_app(xchain):
        mid = xchain.send_token("l1", "rollup_a", "TST", "2.5", xchain.chains["rollup_a"].accounts[1].address)
        xchain.wait_delivered(mid, timeout=60)
        xchain.assert_delivered_once(mid)

It needs ``anvil`` (npm ``@foundry-rs/anvil``: the project's ``node_modules/.bin`` in a source checkout, else on
PATH) and, to deploy from Solidity source, ``solcjs`` likewise (``relayer.testing.deploy``).

Fixtures (their names are the interface other suites rely on):

- ``xchain`` (``relayer.testing.xchain.XChain``, per test): ``chains[name]`` (``ChainInfo``: ``rpc_url``,
  ``domain``, ``family``, funded ``accounts`` of ``Account(address, private_key)``: public devnet test keys,
  ``contracts``, ``tokens``); ``send_message(origin, destination, recipient=None, body=b"")`` and
  ``send_token(origin, destination, symbol, amount, recipient=None)`` (amount in whole tokens: Decimal, str or int)
  answer the message id (0x hex); ``wait_delivered(id, timeout=60)``, ``delivered(id)``, ``delivered_count(id)``,
  ``assert_delivered_once(id)``, ``balance(chain, symbol, holder)``; ``reset()``; ``deploy(chain, artifact, *args)``,
  ``mine(chain, blocks)``, ``warp(chain, seconds)``; ``timeline(id)``, ``daemon_log()``; ``api_url``;
- ``xchain_client``: a ``router.client.RoutingClient`` on the daemon's API;
- ``xchain_session`` (``relayer.testing.session.XChainSession``, session scope): the devnet itself. A session
  fixture that deploys the suite's own contracts once calls ``xchain_session.baseline()`` afterwards, so that resets
  go back to the state with them (``XChain(xchain_session)`` gives it the helpers).

Design decisions:

- Families: the union of the ``xchain`` markers' families over the session's collected tests, ``evm`` always
  included (default: ``evm`` alone). One devnet per session, per pytest-xdist worker: ``devnets.devnet.Devnet``
  (three anvils ``l1``, ``rollup_a``, ``rollup_b`` with the beacon endpoints and the proposer; ``cosmos`` and
  ``solana`` when asked), brought up once and down at the end.
- Ports: ``relayer.testing.ports.free_port_block`` (moved here from the project's test harness, which imports it):
  blocks below the ephemeral range, reserved across processes (a file per port naming its live owner), so two
  sessions or xdist workers on one machine never take the same ports.
- The daemon: ``relayer run``'s daemon (role ``all``: the validators and the relayer, one process) in a child
  process (its crash cannot take the test process with it, and its log is a file of its own), forked from a warm
  fork server (``relayer.testing.daemon_child``): the server imports the daemon's code once, and each child is built
  (``build_daemon`` and its HTTP API) ahead of time and waits for a signal to run. A (re)start then costs the
  daemon's own start only (store loads, a health sample, the API's listening socket), not an interpreter start,
  imports and build (~2.5 s); two standbys are kept built (``daemon.STANDBYS``), so a reset right after another, or
  after a short test, still finds one warm. The daemon's environment sets ``SSL_CERT_DIR`` to an empty directory
  (unless a CA bundle is configured): the devnet is plain http, and every httpx client would otherwise load the CA
  bundle. An in-process daemon was not chosen: it would share the test's interpreter, logging config and GIL, and a
  crash or a leaked task would be the test's.
- Baseline and reset: when the session is up, the daemon is stopped cleanly, then every anvil is snapshotted
  (``evm_snapshot``), the Solana and Cosmos devnets too (``xchain_snapshot``, their own in-place snapshot), the
  relayer's SQLite store is copied (SQLite backup API), and the daemon started again. ``reset()``: the daemon killed
  (SIGKILL: its store is thrown away), each anvil's pool dropped (``anvil_dropAllTransactions``: nothing the killed
  daemon sent may land) and reverted, then snapshotted again (an anvil snapshot is one-shot; all of it while the
  session's own miner is paused: the session's anvils run with ``--no-mining`` and ``devnets.anvil_mining`` mines
  them every block time, since anvil's interval miner races ``evm_revert``), the Solana and Cosmos
  devnets reverted (``xchain_revert``), the store written back into its file (the backup API: the standby, which
  opened it already, reads the restored content), the daemon started from a standby; the fixture's adapters are
  rebuilt (their nonces and heights were the old chain's). The store thus always follows the chains back; the
  daemon re-reads what happened after the baseline from the chains. Anvil time goes back too: after a reset the
  chains' block times lag the wall clock by the time since the baseline.
- Solana and Cosmos: their devnets snapshot and revert in place, in their running processes, as anvil does
  (``devnets.snapshots``: ``xchain_snapshot`` / ``xchain_revert`` on their RPC ports, milliseconds each). A revert
  puts back the chain's state (balances, Cosmos account sequences, Solana accounts), its blocks or slots and their
  transactions (lookups of what came after find nothing), the height or slot, and drops the Cosmos mempool; each
  devnet goes on producing blocks from the reverted height (a fork of the abandoned blocks; new Solana blockhashes).
  Unlike an anvil's, their snapshot is reusable: taken at the baseline, reverted to at every reset. Only a devnet
  made with ``Devnet(allow_snapshots=True)`` (``--allow-snapshots`` on its processes) serves them, and the session
  makes its own devnet so; ``relayer devnet up`` and ``make run`` do not, and their devnets refuse both methods with
  an error that says why, so nobody who reaches their RPC ports can rewind them.
- Resets between tests (``--xchain-reset=each``, the default): ``xchain`` resets before a test when an earlier test
  used the devnet since the last reset (a test that ends with ``reset()`` leaves it clean); ``--xchain-reset=manual``:
  only explicit ``reset()`` calls.
- Delivery is read from the destination chain, never from the relayer's records: ``wait_delivered`` polls the
  mailbox's ``delivered`` with a deadline (no sleep as synchronisation), ``assert_delivered_once`` counts its
  ``Process`` events for the id since the message was sent. Both fail with the message's timeline.
- Failure output: ``pytest_runtest_makereport`` gives a failed test that used ``xchain`` two report sections: each
  message it sent as ``relayer messages show ID`` prints it (``message_view`` of the store's record, one
  ``key: value`` a line, read from the store as the command does) followed by its timeline (the daemon's explorer
  API), and the daemon's last 50 log lines (one log for every daemon generation, a marker line at each start).
- Timings: the terminal summary prints the session start (devnet up, first daemon start, baseline) and the resets'
  median, min and max. Measured on a 2-CPU machine shared with other test sessions (load average 3-6), EVM only:
  first session start 23-25 s (devnet up ~17 s, first daemon start ~2.2 s, baseline ~2.6 s); one reset 0.6-1.5 s,
  median 0.87-1.28 s over four runs (kill ~0.02 s, revert and store ~0.03 s, the rest is the daemon's own start to
  ``/healthz``: its HTTP API is built inside ``RelayerDaemon.run``, ~0.4-0.6 s of it); the 8-test example suite
  (tests/xchain_plugin/example_app.py, 12 resets) 56-63 s with its session start. With Cosmos and Solana: session
  start 30-37 s; a reset (8 resets 2 s apart, load average 2-6, two runs) median 0.59-0.63 s, of which the two
  reverts take ~5 ms and the daemon's start ~0.4 s (2.19-2.57 s in the same conditions when a reset restarted their
  processes from copies of their ledgers).
- ``deploy``: through the anvil's JSON-RPC (``anvil_impersonateAccount``, ``eth_sendTransaction``): ``relayer/``
  imports no chain SDK, so constructor arguments are encoded by ``relayer.testing.abi_args`` (elementary types and
  arrays; no tuples).
"""

from relayer.testing.chains import Account, ChainInfo, XChainError

__all__ = ["Account", "ChainInfo", "XChainError"]
