"""The project's own Cosmos devnet: a chain of N ed25519 validators whose headers, commits and validator
sets follow CometBFT exactly, serving CometBFT RPC and the Cosmos REST endpoints cosmpy uses, executing
real protobuf transactions (secp256k1 and legacy-amino multisig accounts, bank ``MsgSend``).

    proc = start_cosmos_devnet(rpc_port=26657, rest_port=1317, state_dir=Path("state"))
    wait_until_ready("http://127.0.0.1:26657", "http://127.0.0.1:1317", process=proc)
    genesis_manifest()   # PUBLIC DEVNET TEST KEYS of the funded accounts, and the validators

Modules: ``accounts`` (keys, addresses, secp256k1 checks), ``genesis``, ``multisig``, ``state``,
``transactions`` (ante handler and bank), ``blocks`` (CometBFT hashes), ``store`` (SQLite), ``chain``,
``server`` (RPC and REST apps), ``node``, ``process`` (subprocess start and readiness).
"""

from devnets.cosmos.accounts import DevnetAccountKey, devnet_account_key
from devnets.cosmos.genesis import GenesisSettings, genesis_accounts, genesis_manifest, validator_committee
from devnets.cosmos.multisig import build_multisig_send_tx, multisig_address, multisig_pub_key
from devnets.cosmos.process import DevnetNotReady, start_cosmos_devnet, wait_until_ready

__all__ = [
    "DevnetAccountKey",
    "DevnetNotReady",
    "GenesisSettings",
    "build_multisig_send_tx",
    "devnet_account_key",
    "genesis_accounts",
    "genesis_manifest",
    "multisig_address",
    "multisig_pub_key",
    "start_cosmos_devnet",
    "validator_committee",
    "wait_until_ready",
]
