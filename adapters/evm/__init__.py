"""EVM chains (L1s and rollups) through web3.py."""
