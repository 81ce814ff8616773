"""Local chains the project serves itself for tests, benchmarks and ``make run`` (Solana on LiteSVM, a Cosmos
chain with real CometBFT commits). Each speaks its chain's real RPC, so nothing in ``adapters/`` knows it talks
to a devnet. Anvil chains are started by ``adapters.evm.devnet``; ``devnets.devnet`` starts them all."""
