"""Typed settings for the daemon. Every model forbids unknown keys, so a typo fails at start-up with its path.

A config file looks like ``config/examples/devnet.toml``: ``[chains.<name>]`` tables (a tagged union on
``family``), one ``[security]`` validator set, the ``[validator]`` and ``[relayer]`` roles, ``[store]``,
``[api]`` and ``[log]``.
"""

from __future__ import annotations

import ipaddress
import re
from enum import StrEnum
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from config.errors import ConfigError

U32 = Annotated[int, Field(ge=0, le=2**32 - 1)]
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_address(value: str) -> str:
    if not _ADDRESS.match(value):
        raise ValueError(f"expected a 0x-prefixed 20-byte hex address, got {value!r}")
    return value


def is_loopback_url(url: str) -> bool:
    """True only when ``url``'s host is a loopback address (127.0.0.0/8, ::1) or ``localhost``: a server bound there
    is reachable from this host alone. Any other name (it may resolve anywhere), ``0.0.0.0`` or ``::`` (every
    interface) is not loopback-only."""
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return False
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_http_url(value: str) -> str:
    if not re.match(r"^https?://[^\s/]+", value):
        raise ValueError(f"expected an http(s) URL, got {value!r}")
    return value.rstrip("/")


RPC_MODE_DESCRIPTION = (
    '"fallback": each request goes to one endpoint, the first configured, the next when it fails; "quorum": every '
    "read goes to all endpoints not demoted at once and is accepted only when rpc_quorum of them answer identically "
    "(heights: the highest a quorum reached), so one lying or stale endpoint is outvoted "
    "(relayer_rpc_quorum_disagreements_total{chain,method,endpoint}); without a quorum the read fails as "
    "rpc_unavailable and is retried; a signed transaction is sent to all, accepted when any accepts it; needs at "
    "least 2 distinct endpoints (of each kind)")
RPC_QUORUM_DESCRIPTION = (
    'in rpc_mode "quorum", how many endpoints must answer a read identically: more than half of all endpoints (of each '
    "kind), at most all of them (default: a majority, n // 2 + 1)")


def check_rpc_quorum(mode: str, quorum: int | None, urls: list[str], names: str) -> None:
    """The rules of rpc_mode and rpc_quorum (``EvmChainConfig._quorum``'s) for the endpoints ``urls``, known in
    messages by ``names`` (e.g. "rpc_url and fallback_rpc_urls") and index, never by URL (it may hold an API key)."""
    n = len(urls)
    if mode == "fallback":
        if quorum is not None:
            raise ValueError('rpc_quorum applies to rpc_mode = "quorum" only: remove it or set rpc_mode')
        return
    if n < 2:
        raise ValueError(f'rpc_mode = "quorum" needs at least 2 endpoints ({names}); got {n}')
    same = [(urls.index(u), i) for i, u in enumerate(urls) if urls.index(u) != i]
    if same:  # one node counted twice would outvote an honest one
        raise ValueError(f'rpc_mode = "quorum" needs distinct endpoints: endpoints {same[0][0]} and {same[0][1]} of '
                         f"{names} are the same URL")
    if quorum is not None and not n / 2 < quorum <= n:
        raise ValueError(f"rpc_quorum must be more than half of the {n} endpoints ({names}) and at most {n} "
                         f"(between {n // 2 + 1} and {n}); got {quorum}")


class SignerSettings(_Model):
    """Where a secp256k1 key comes from. Exactly one source. The key itself is never logged."""

    private_key_env: str | None = Field(None, description="name of an environment variable holding the hex key")
    keystore: str | None = Field(None, description="path of an encrypted (V3 JSON) keystore file")
    password_env: str | None = Field(None, description="environment variable holding the keystore password")
    private_key: SecretStr | None = Field(None, description="inline hex key: devnet test keys only")

    @model_validator(mode="after")
    def _one_source(self) -> SignerSettings:
        sources = [s for s in (self.private_key_env, self.keystore, self.private_key) if s]
        if len(sources) != 1:
            raise ValueError("give exactly one of private_key_env, keystore (+ password_env) or private_key")
        if self.keystore and not self.password_env:
            raise ValueError("keystore needs password_env, the variable that holds its password")
        return self


class GasSettings(_Model):
    fee_multiplier: float = Field(1.25, ge=1.0, le=10.0, description="applied to base fee + tip")
    priority_fee_gwei: float = Field(1.0, ge=0)
    max_fee_gwei: float = Field(500.0, gt=0, description="cap on max_fee_per_gas")
    gas_limit_multiplier: float = Field(1.2, ge=1.0, le=5.0)
    bump_percent: int = Field(15, ge=10, le=200, description="fee increase when replacing a stuck tx")
    stuck_after_s: float = Field(20.0, gt=0, description="replace a pending tx after this long")


class TokenConfig(_Model):
    address: str
    decimals: int = Field(18, ge=0, le=36)
    bridged: bool = Field(True, description="moves between chains through the token bridge (false: native per chain)")
    pool: str | None = Field(None, description=(
        "LiquidityPool of this token here (a token issued natively on several chains): transfers to another chain "
        "with a pool of the same symbol are paid out of that pool and netted per epoch (the relayer settles, "
        "completes and releases for everyone)"))

    _pool = field_validator("pool")(lambda cls, v: None if v is None else _check_address(v))


class TrustedCheckpoint(_Model):
    height: int = Field(ge=0)
    hash: str = Field(pattern=r"^0x[0-9a-fA-F]{64}$")


class RollupSettlement(_Model):
    """A rollup whose finality comes from the L1 (OP Stack semantics): its proposer posts output roots
    ``keccak256(version | stateRoot | messagePasserStorageRoot | blockHash)`` to an ``OutputOracle`` on the L1 every few
    rollup blocks, and a rollup height is final once an output root covering it sits in a finalized L1 block (rule
    ``optimistic``: and its challenge window has passed by that block's time). It replaces ``finality`` for this chain:
    the validator signs a dispatch only after proving the whole chain from the L1 header down to the Dispatch log
    (light_clients.ethereum.rollup)."""

    l1: str = Field(description="the settlement chain: an EVM chain under [chains] whose finality is its own")
    output_oracle: str = Field(description="the OutputOracle contract on the L1 that this rollup's proposer posts to")
    rule: Literal["optimistic", "posted"] = Field("optimistic", description=(
        '"optimistic": final once the output root has sat challenge_window_s in a finalized L1 block (a fault proof '
        'could still delete it before); "posted": final once posted in a finalized L1 block (a validity-proved '
        "(zk) rollup, whose outputs cannot be wrong)"))
    challenge_window_s: int = Field(604_800, ge=0, le=30 * 86_400, description=(
        "seconds an output root must have been on the L1 (by the finalized L1 block's timestamp) before it counts "
        "under the optimistic rule; OP mainnet: 7 days"))
    message_passer: str = Field("0x4200000000000000000000000000000000000016", description=(
        "the rollup account whose storage root the output root commits to (OP's L2ToL1MessagePasser predeploy)"))
    max_output_lag_blocks: int = Field(1_000, ge=1, description=(
        "rollup blocks past the newest posted output before the proposer counts as lagging: "
        "relayer_rollup_output_lag_blocks above it logs proposer_lagging"))

    _oracle = field_validator("output_oracle", "message_passer")(lambda cls, v: _check_address(v))


class ChainFamily(StrEnum):
    """The chain families, named as ``chains.NAME.family`` names them: one name per family everywhere (config, router
    profiles, devnet manifest). Each ``*ChainConfig`` below declares its own as the union's discriminator."""

    EVM = "evm"
    SOLANA = "solana"
    COSMOS = "cosmos"


class EvmChainConfig(_Model):
    family: Literal["evm"]
    domain: U32
    chain_id: int = Field(gt=0)
    rpc_url: str
    mailbox: str
    finality: Literal["finalized"] | Annotated[int, Field(ge=0, le=10_000)] = Field(
        2, description='"finalized" to use the block tag, or a number of confirmations'
    )
    confirmation_depth: int = Field(1, ge=1, le=1000, description="confirmations before a delivery counts")
    log_chunk_blocks: int = Field(2_000, ge=1, le=100_000)
    poll_interval_s: float = Field(0.25, gt=0, le=60)
    request_timeout_s: float = Field(10.0, gt=0, le=300)
    gas: GasSettings = GasSettings()
    signer: SignerSettings | None = Field(None, description="the relayer's key for deliveries to this chain")
    min_wallet_balance: float | None = Field(None, ge=0, description=(
        "native tokens (not smallest units); when the paying account's balance falls below it the relayer logs "
        "wallet_balance_low and sets relayer_wallet_balance_low to 1 (unset: no warning)"))
    start_height: int = Field(0, ge=0, description="first height the watcher indexes")
    verify_rpc_urls: list[str] = Field(default_factory=list, description=(
        "other independent endpoints of this chain; a validator signs only when they all serve the same finalized "
        "block hash as rpc_url"))
    fallback_rpc_urls: list[str] = Field(default_factory=list, description=(
        "more endpoints of this chain, for reads and sends: when rpc_url (or the one before) fails to connect, times "
        "out (request_timeout_s) or answers 429/5xx, the request goes to the next, and the failing one is skipped "
        "for 5 s (doubling while it keeps failing, up to 60 s) until a request finds it answering again; "
        "relayer_rpc_endpoint_up{chain,endpoint} (endpoint: 0 is rpc_url, then these in order); in rpc_mode "
        '"quorum" they are the other voters. A validator\'s light client reads headers and receipts from them in '
        "the same order, in either mode (it verifies what it reads, so it needs no vote), and also moves on when an "
        "endpoint answers not JSON"))
    rpc_mode: Literal["fallback", "quorum"] = Field("fallback", description=(
        '"fallback": each request goes to one endpoint, rpc_url first, the next when it fails; "quorum": every read '
        "goes to all endpoints not demoted (rpc_url and fallback_rpc_urls) at once and is accepted only when "
        "rpc_quorum of them answer identically, so one lying or stale endpoint is outvoted "
        "(relayer_rpc_quorum_disagreements_total{chain,method,endpoint}); without a quorum the read fails as "
        "rpc_unavailable and is retried; a signed transaction is sent to all, accepted when any accepts it; needs "
        "at least 2 endpoints"))
    rpc_quorum: int | None = Field(None, ge=1, description=(
        'in rpc_mode "quorum", how many endpoints must answer a read identically: more than half of all endpoints '
        "(rpc_url and fallback_rpc_urls), at most all of them (default: a majority, n // 2 + 1)"))
    trusted_checkpoint: TrustedCheckpoint | None = Field(None, description=(
        "block the validator's light client anchors on without a beacon_url (default: the genesis the node "
        "serves, logged)"))
    beacon_url: str | None = Field(None, description=(
        "Beacon API endpoint of the chain's consensus: the validator's sync-committee light client follows it "
        "from trusted_block_root and accepts only execution blocks that link to the finalized block it derives"))
    fallback_beacon_urls: list[str] = Field(default_factory=list, description=(
        "more Beacon API endpoints of the chain's consensus (with beacon_url): when beacon_url (or the one before) "
        "fails to connect, times out (request_timeout_s) or answers 429/5xx or not JSON, the light client reads the "
        "next, and the failing one is skipped for 5 s (doubling while it keeps failing, up to 60 s). Any endpoint "
        "will do, since every update is checked against the sync committee; one that serves an update the light "
        "client refuses is skipped too, and that claim is refused (checkpoint_refused), not retried at another "
        "endpoint at once. Logged by index (0 is beacon_url, then these in order), never by URL"))
    trusted_block_root: str | None = Field(None, pattern=r"^0x[0-9a-fA-F]{64}$", description=(
        "beacon block root the sync-committee light client starts from (obtained out of band; with beacon_url)"))
    trust_single_rpc: bool = Field(False, description=(
        "a validator may attest this origin on rpc_url alone (no beacon_url, no verify_rpc_urls): it then trusts "
        "that one node; logged at start and exported as validator_single_rpc_trust"))
    simulate_deliveries: Literal["always", "adaptive"] = Field(
        "adaptive", description='"always": eth_call every batch before sending; "adaptive": only after a revert '
        "or while the gas model is uncalibrated (signatures, roots and proofs are always checked locally)")
    token_bridge: str | None = Field(None, description="TokenBridge app address, for token sends")
    gas_paymaster: str | None = Field(None, description=(
        "GasPaymaster address: where senders pay for delivery of the messages they dispatch here (indexed with them; "
        "relayer.gas_payment says what a message must have paid); its GasOracle is kept current by "
        "relayer.gas_oracle"))
    tokens: dict[str, TokenConfig] = Field(default_factory=dict, description="symbol -> token on this chain")
    settlement: RollupSettlement | None = Field(None, description=(
        "a rollup that settles on an L1: its finality follows output roots posted there (replaces finality)"))

    @field_validator("token_bridge", "gas_paymaster")
    @classmethod
    def _bridge(cls, v: str | None) -> str | None:
        return None if v is None else _check_address(v)

    @field_validator("finality", mode="before")
    @classmethod
    def _finality(cls, v: object) -> object:
        if v == "finalized" or (isinstance(v, int) and not isinstance(v, bool)):
            return v
        raise ValueError(f'expected "finalized" or a whole number of confirmations, got {v!r}')

    _rpc = field_validator("rpc_url")(lambda cls, v: _check_http_url(v))
    _fallbacks = field_validator("fallback_rpc_urls")(lambda cls, v: [_check_http_url(u) for u in v])
    _mailbox = field_validator("mailbox")(lambda cls, v: _check_address(v))
    _beacon = field_validator("beacon_url")(lambda cls, v: None if v is None else _check_http_url(v))
    _beacon_fallbacks = field_validator("fallback_beacon_urls")(lambda cls, v: [_check_http_url(u) for u in v])

    @model_validator(mode="after")
    def _one_anchor(self) -> EvmChainConfig:
        if (self.beacon_url is None) != (self.trusted_block_root is None):
            raise ValueError("beacon_url and trusted_block_root go together: the light client follows beacon_url "
                             "from trusted_block_root")
        if self.fallback_beacon_urls and self.beacon_url is None:
            raise ValueError("fallback_beacon_urls are tried after beacon_url: set beacon_url (and trusted_block_root) "
                             "or remove them")
        if self.beacon_url is not None and self.trusted_checkpoint is not None:
            raise ValueError("trusted_checkpoint is the anchor without a beacon light client; with beacon_url the "
                             "anchor is the block the sync committee finalized: remove one")
        return self

    @model_validator(mode="after")
    def _quorum(self) -> EvmChainConfig:
        n = 1 + len(self.fallback_rpc_urls)
        if self.rpc_mode == "fallback":
            if self.rpc_quorum is not None:
                raise ValueError('rpc_quorum applies to rpc_mode = "quorum" only: remove it or set rpc_mode')
            return self
        if n < 2:
            raise ValueError('rpc_mode = "quorum" needs at least 2 endpoints (rpc_url and fallback_rpc_urls); '
                             f"got {n}")
        urls = self.rpc_urls
        same = [(urls.index(u), i) for i, u in enumerate(urls) if urls.index(u) != i]
        if same:  # one node counted twice would outvote an honest one; indexes only: a URL may hold an API key
            raise ValueError(f'rpc_mode = "quorum" needs distinct endpoints: endpoints {same[0][0]} and {same[0][1]} '
                             "are the same URL (0 is rpc_url, then fallback_rpc_urls)")
        if self.rpc_quorum is not None and not n / 2 < self.rpc_quorum <= n:
            raise ValueError(f"rpc_quorum must be more than half of the {n} endpoints and at most {n} "
                             f"(between {n // 2 + 1} and {n}); got {self.rpc_quorum}")
        return self

    @property
    def rpc_urls(self) -> list[str]:
        """Every endpoint in order: rpc_url, then fallback_rpc_urls."""
        return [self.rpc_url, *self.fallback_rpc_urls]

    @property
    def beacon_urls(self) -> list[str]:
        """Every Beacon API endpoint in order: beacon_url, then fallback_beacon_urls (none without beacon_url)."""
        return [] if self.beacon_url is None else [self.beacon_url, *self.fallback_beacon_urls]

    @property
    def quorum_size(self) -> int:
        """How many endpoints must agree on a read in rpc_mode "quorum" (rpc_quorum, or a majority)."""
        return self.rpc_quorum if self.rpc_quorum is not None else len(self.rpc_urls) // 2 + 1


class SolanaTokenConfig(_Model):
    mint: str = Field(description="SPL mint (base58)")
    decimals: int = Field(9, ge=0, le=18)
    wrapped: bool = Field(False,
                          description="minted here by the validators' multisig (else native: locked in the vault)")
    home_domain: U32 | None = Field(None, description="wrapped: domain of the token's home chain")
    home_token: str | None = Field(None, description="wrapped: 0x-hex bytes32 of the token on its home chain")
    home_decimals: int | None = Field(None, ge=0, le=36, description=(
        "wrapped: decimals on the home chain; amounts are scaled by 10**(home_decimals - decimals) (SPL amounts are "
        "u64)"))


class SolanaChainConfig(_Model):
    """A Solana cluster (issue 5). No program of ours: dispatches are token transfers into the bridge vault
    (or plain memo transactions) carrying the message in a Memo; deliveries are co-signed by the validators."""

    family: Literal["solana"]
    domain: U32
    rpc_url: str
    fallback_rpc_urls: list[str] = Field(default_factory=list, description=(
        "more JSON-RPC endpoints of this cluster, for reads and sends: when rpc_url (or the one before) fails to "
        "connect, times out (request_timeout_s) or answers 429/5xx, the request goes to the next, and the failing one "
        "is skipped for 5 s (doubling while it keeps failing, up to 60 s) until a request finds it answering again; "
        "relayer_rpc_endpoint_up{chain,endpoint} (endpoint: 0 is rpc_url, then these in order); in rpc_mode "
        '"quorum" they are the other voters'))
    rpc_mode: Literal["fallback", "quorum"] = Field("fallback", description=RPC_MODE_DESCRIPTION)
    rpc_quorum: int | None = Field(None, ge=1, description=RPC_QUORUM_DESCRIPTION)
    verify_rpc_urls: list[str] = Field(default_factory=list, description="other endpoints that must agree")
    trust_single_rpc: bool = Field(False, description=(
        "a validator may attest this origin on rpc_url alone (no verify_rpc_urls): it then trusts that one node; "
        "logged at start and exported as validator_single_rpc_trust"))
    multisig: str = Field(description="SPL Token native multisig of the validators (base58): wrapped mints' "
                                      "authority and the vault's owner")
    multisig_threshold: int = Field(ge=1, le=11)
    bridge: str = Field(description="base58 address that identifies this chain's bridge in messages (the vault owner)")
    remote_bridges: dict[int, str] = Field(default_factory=dict, description=(
        "domain -> 0x-hex bytes32 of the token bridge there: the only senders whose token messages are honoured"))
    tokens: dict[str, SolanaTokenConfig] = Field(default_factory=dict)
    signer: SignerSettings | None = Field(None, description="the relayer's fee payer: a 32-byte ed25519 seed in hex")
    min_wallet_balance: float | None = Field(None, ge=0, description=(
        "native tokens (not smallest units); when the paying account's balance falls below it the relayer logs "
        "wallet_balance_low and sets relayer_wallet_balance_low to 1 (unset: no warning)"))
    poll_interval_s: float = Field(0.4, gt=0, le=60)
    request_timeout_s: float = Field(10.0, gt=0, le=300)
    priority_fee_micro_lamports: int = Field(0, ge=0)
    start_height: int = Field(0, ge=0, description="first slot the watcher indexes")
    gas_fee_account: str | None = Field(None, description=(
        "base58 account of the relayer's fees: a System transfer of lamports to it in a dispatch transaction is that "
        "transaction's messages' gas payment (relayer.gas_payment); not the bridge"))

    _rpc = field_validator("rpc_url")(lambda cls, v: _check_http_url(v))
    _fallbacks = field_validator("fallback_rpc_urls")(lambda cls, v: [_check_http_url(u) for u in v])

    @model_validator(mode="after")
    def _quorum(self) -> SolanaChainConfig:
        check_rpc_quorum(self.rpc_mode, self.rpc_quorum, self.rpc_urls, "rpc_url and fallback_rpc_urls")
        return self

    @property
    def rpc_urls(self) -> list[str]:
        """Every JSON-RPC endpoint in order: rpc_url, then fallback_rpc_urls."""
        return [self.rpc_url, *self.fallback_rpc_urls]

    @property
    def quorum_size(self) -> int:
        """How many endpoints must agree on a read in rpc_mode "quorum" (rpc_quorum, or a majority)."""
        return self.rpc_quorum if self.rpc_quorum is not None else len(self.rpc_urls) // 2 + 1


class CosmosTokenConfig(_Model):
    denom: str
    decimals: int = Field(6, ge=0, le=18)
    wrapped: bool = Field(False, description="paid out of the multisig's escrow (else native: locked in the vault)")
    home_domain: U32 | None = None
    home_token: str | None = Field(None, description="wrapped: 0x-hex bytes32 of the token on its home chain")
    home_decimals: int | None = Field(None, ge=0, le=36, description=(
        "wrapped: decimals on the home chain; amounts are scaled by 10**(home_decimals - decimals)"))
    escrow: int | None = Field(None, ge=0, description="wrapped: what the vault was funded with (smallest units)")


class CosmosChainConfig(_Model):
    """A Cosmos SDK chain (issue 6): dispatches are MsgSend to the vault with the message in the memo, proven by
    the Tendermint light client; deliveries are MsgSend from the validators' multisig account."""

    family: Literal["cosmos"]
    domain: U32
    chain_id: str
    rpc_url: str = Field(description="CometBFT RPC")
    rest_url: str = Field(description="Cosmos REST (gRPC gateway), as cosmpy's LedgerClient uses it")
    fallback_rpc_urls: list[str] = Field(default_factory=list, description=(
        "more CometBFT RPC endpoints, tried in order when rpc_url (or the one before) fails to connect, times out "
        "(request_timeout_s) or answers 429/5xx without a JSON-RPC answer; the failing one is skipped for 5 s "
        "(doubling while it keeps failing, up to 60 s) until a request finds it answering again. A validator's "
        "Tendermint light client reads commits, validators, blocks and results from them in the same order (also "
        "moving on when an endpoint answers not JSON), in either rpc_mode: it verifies what it reads"))
    fallback_rest_urls: list[str] = Field(default_factory=list, description=(
        "more REST endpoints (reads and broadcasts), tried like fallback_rpc_urls after rest_url. "
        "relayer_rpc_endpoint_up{chain,endpoint} numbers them all: 0 is rpc_url, then fallback_rpc_urls, then "
        "rest_url, then these"))
    rpc_mode: Literal["fallback", "quorum"] = Field("fallback", description=RPC_MODE_DESCRIPTION + (
        ": CometBFT RPC endpoints and REST endpoints vote separately"))
    rpc_quorum: int | None = Field(None, ge=1, description=RPC_QUORUM_DESCRIPTION)
    bech32_prefix: str = "cosmos"
    fee_denom: str
    gas_price: float = Field(0.0025, ge=0)
    vault: str = Field(description="bech32 multisig account of the validators: receives locks, sends deliveries")
    remote_bridges: dict[int, str] = Field(default_factory=dict, description=(
        "domain -> 0x-hex bytes32 of the token bridge there: the only senders whose token messages are honoured"))
    multisig_threshold: int = Field(ge=1, le=11)
    multisig_pubkeys: list[str] = Field(description="compressed secp256k1 public keys (hex) of the multisig, in order")
    delivery_timeout_blocks: int = Field(60, ge=2, le=100_000, description=(
        "a delivery's timeout_height is the relayer's latest height plus this; validators co-sign only a timeout "
        "above their chain's height and at most twice this ahead of it, so a co-signed payout that did not land "
        "holds its messages for at most that long (default: 60 blocks, 30 s at 0.5 s blocks)"))
    tokens: dict[str, CosmosTokenConfig] = Field(default_factory=dict)
    verify_rpc_urls: list[str] = Field(default_factory=list)
    trusting_period_s: float = Field(14 * 24 * 3600, gt=0)
    poll_interval_s: float = Field(0.5, gt=0, le=60)
    request_timeout_s: float = Field(10.0, gt=0, le=300)
    start_height: int = Field(0, ge=0)
    signer: SignerSettings | None = Field(None, description="unused: deliveries are paid by the multisig account")
    gas_fee_account: str | None = Field(None, description=(
        "bech32 account of the relayer's fees: a bank send of fee_denom to it in a dispatch transaction is that "
        "message's gas payment (relayer.gas_payment); not the vault"))
    min_wallet_balance: float | None = Field(None, ge=0, description=(
        "native tokens (not smallest units); when the paying account's balance falls below it the relayer logs "
        "wallet_balance_low and sets relayer_wallet_balance_low to 1 (unset: no warning)"))

    _rpc = field_validator("rpc_url", "rest_url")(lambda cls, v: _check_http_url(v))
    _fallbacks = field_validator("fallback_rpc_urls", "fallback_rest_urls")(
        lambda cls, v: [_check_http_url(u) for u in v])

    @property
    def rpc_urls(self) -> list[str]:
        """Every CometBFT RPC endpoint in order: rpc_url, then fallback_rpc_urls."""
        return [self.rpc_url, *self.fallback_rpc_urls]

    @property
    def rest_urls(self) -> list[str]:
        """Every REST endpoint in order: rest_url, then fallback_rest_urls."""
        return [self.rest_url, *self.fallback_rest_urls]

    @model_validator(mode="after")
    def _quorum(self) -> CosmosChainConfig:
        check_rpc_quorum(self.rpc_mode, self.rpc_quorum, self.rpc_urls, "rpc_url and fallback_rpc_urls")
        check_rpc_quorum(self.rpc_mode, self.rpc_quorum, self.rest_urls, "rest_url and fallback_rest_urls")
        return self

    def quorum_size(self, endpoints: int) -> int:
        """How many of ``endpoints`` endpoints of one kind must agree in rpc_mode "quorum" (rpc_quorum, or a
        majority of them)."""
        return self.rpc_quorum if self.rpc_quorum is not None else endpoints // 2 + 1


ChainConfig = Annotated[EvmChainConfig | SolanaChainConfig | CosmosChainConfig, Field(discriminator="family")]


class ValidatorRef(_Model):
    address: str
    url: str = Field(description="base URL where this validator serves signed checkpoints")

    _address = field_validator("address")(lambda cls, v: _check_address(v))
    _url = field_validator("url")(lambda cls, v: _check_http_url(v))


class SecuritySettings(_Model):
    """The validator set the destination ISMs are configured with, and its threshold."""

    threshold: int = Field(ge=1)
    validators: list[ValidatorRef] = Field(min_length=1)

    @model_validator(mode="after")
    def _threshold_fits(self) -> SecuritySettings:
        if self.threshold > len(self.validators):
            raise ValueError(f"threshold {self.threshold} is above the {len(self.validators)} validators listed")
        addresses = [v.address.lower() for v in self.validators]
        if len(set(addresses)) != len(addresses):
            raise ValueError("a validator address is listed twice")
        return self


class PayoutLimit(_Model):
    """One entry of ``validator.payout_limits``: payouts of ``token`` (its symbol under ``chains.<chain>.tokens``) on
    ``chain`` (a Solana or Cosmos destination) for transfers from ``remote`` (a chain name, or ``"*"``: each origin
    its own bucket), at most ``capacity`` at once, refilled at ``refill_per_s``; both in the token's home units (the
    amounts of its transfer messages and of TokenBridge.setRateLimit). The bucket starts full."""

    chain: str
    remote: str = "*"
    token: str
    capacity: int = Field(gt=0, lt=2**128, description="home units the bucket holds when full")
    refill_per_s: int = Field(gt=0, lt=2**128, description="home units the bucket gains per second")


class ValidatorRoleSettings(_Model):
    keys: list[SignerSettings] = Field(default_factory=list, description="one per validator this process runs")
    origins: list[str] | None = Field(None, description="chains to attest; default all")
    interval_s: float = Field(0.25, gt=0, le=60)
    verify_inclusion: bool = Field(True, description=(
        "prove every dispatch with the chain's light client (verified header chain, receipts root) before signing"))
    cosign_keys: dict[str, list[SignerSettings]] = Field(default_factory=dict, description=(
        "per co-signed destination chain (Solana, Cosmos), this process's validators' keys on that chain, in the "
        "order of keys"))
    allowed_relayers: list[str] = Field(default_factory=list, description=(
        "addresses of the relayers (their relayer.identity_key) whose signed requests this validator serves: a co-sign "
        "request signed by anyone else is refused; required with cosign_keys"))
    request_max_age_s: float = Field(60.0, ge=5, le=3600, description=(
        "a relayer's signed request is accepted within this many seconds of its timestamp, either way (clock skew); "
        "outside it is refused as stale_timestamp, so a captured request cannot be replayed later"))
    relayer_requests_per_s: float = Field(500.0, gt=0, description=(
        "requests per second each allow-listed relayer may make to this process's co-sign and checkpoint endpoints"))
    relayer_burst: int = Field(1000, ge=1, description="requests an allow-listed relayer may make at once")
    anonymous_requests_per_s: float = Field(20.0, ge=0, description=(
        "checkpoint reads per second per client address without a relayer signature (co-sign always needs one)"))
    anonymous_burst: int = Field(40, ge=1, description="checkpoint reads a client address may make at once")
    payout_limits: list[PayoutLimit] = Field(default_factory=list, description=(
        "token buckets on payouts to Solana/Cosmos destinations the validators co-sign "
        "(relayer.pipeline.payout_limits): a payout over the room is refused with the wait until it fits; empty: none"))

    @field_validator("allowed_relayers")
    @classmethod
    def _relayer_addresses(cls, v: list[str]) -> list[str]:
        lowered = [_check_address(a).lower() for a in v]
        if len(set(lowered)) != len(lowered):
            raise ValueError("a relayer address is listed twice")
        return lowered


class MessageRule(_Model):
    """One rule of ``relayer.allow`` / ``relayer.deny`` (Hyperlane's whitelist / blacklist entries). A message matches
    when each of the four fields does: ``"*"`` (the default) matches anything; a chain name, an account address in
    its chain's own format (0x-hex, base58, bech32; or a 0x bytes32), or a list of them matches any entry."""

    origin: str | list[str] = "*"
    sender: str | list[str] = "*"
    destination: str | list[str] = "*"
    recipient: str | list[str] = "*"

    def values(self, field: str) -> list[str] | None:
        """``field``'s entries; None for ``"*"`` (anything)."""
        value = getattr(self, field)
        entries = [value] if isinstance(value, str) else list(value)
        return None if "*" in entries else entries

    @field_validator("origin", "sender", "destination", "recipient")
    @classmethod
    def _entries(cls, v: str | list[str]) -> str | list[str]:
        entries = [v] if isinstance(v, str) else v
        if not entries or any(not e.strip() for e in entries):
            raise ValueError('give "*", a value, or a non-empty list of values (an empty entry matches nothing)')
        return v


class RouteLimit(_Model):
    """One entry of ``relayer.route_limits``: at most ``messages_per_s`` delivered from ``origin`` to ``destination``
    (a chain name or ``"*"``), ``burst`` at once; the first entry matching a route is its limit."""

    origin: str = "*"
    destination: str = "*"
    messages_per_s: float = Field(gt=0, le=1e6, description="messages this relayer delivers on the route per second")
    burst: int = Field(1, ge=1, le=1_000_000, description="messages it may deliver at once before the rate applies")


class GasPaymentRule(MessageRule):
    """One entry of ``relayer.gas_payment`` (Hyperlane's gas payment enforcement): what the messages it matches (the
    four fields of ``MessageRule``) must have paid the origin's GasPaymaster before this relayer delivers them. The
    first matching entry applies; a message matching none is delivered unpaid (``none``)."""

    policy: Literal["none", "minimum", "on_chain_quote"] = Field(description=(
        '"none": deliver unpaid; "minimum": at least `minimum` (origin smallest units); "on_chain_quote": at least '
        "`fraction` of the origin paymaster's quote for `gas_amount` gas, read when the message is looked at"))
    minimum: int | None = Field(None, ge=0, description='policy "minimum": origin smallest units (wei)')
    fraction: float = Field(1.0, gt=0, le=10, description='policy "on_chain_quote": share of the quote required')
    gas_amount: int = Field(200_000, ge=1, le=30_000_000, description=(
        'policy "on_chain_quote": the gas a delivery of one message is quoted for'))

    @model_validator(mode="after")
    def _minimum_given(self) -> GasPaymentRule:
        if self.policy == "minimum" and self.minimum is None:
            raise ValueError('policy "minimum" needs minimum, in the origin\'s smallest units (wei)')
        return self


class GasFloor(_Model):
    """One entry of ``relayer.gas_oracle.floors``: the least a message from ``origin`` to ``destination`` (chain names
    or ``"*"``) is quoted, in USD, whatever the gas price; the first matching entry applies."""

    origin: str = "*"
    destination: str = "*"
    usd: float = Field(ge=0, le=1e6, allow_inf_nan=False)


class GasOracleSettings(_Model):
    """The relayer keeps each origin's GasOracle current (Hyperlane's gas oracle upkeep): per destination, its gas
    price from the destination's live fee data and the exchange rate from router.native_usd(_by_chain)."""

    signer: SignerSettings = Field(description=(
        "the oracles' updater key (GasOracle.updater on every origin): a key of its own, not a delivery wallet"))
    update_interval_s: float = Field(15.0, ge=1, le=3600, description="how often prices are read and compared")
    deviation: float = Field(0.1, gt=0, le=10, description=(
        "an entry is rewritten when the price moved by more than this fraction, or when it is older than "
        "max_age_s / 2"))
    max_age_s: float = Field(600.0, ge=10, le=86_400, description=(
        "an entry older than this is stale: relayer_gas_oracle_stale{origin,destination} = 1 and "
        "gas_oracle_stale logged (the quotes users pay by may no longer cover delivery)"))
    floors: list[GasFloor] = Field(default_factory=lambda: [GasFloor(usd=0.01)], description=(
        "USD floor per route, written on chain as the destination's minimum payment: a price drop cannot make a "
        "quote fall below it"))


class RelayerRoleSettings(_Model):
    identity_key: SignerSettings | None = Field(None, description=(
        "the relayer's identity: signs every request it sends to validators (co-sign, checkpoints); its address must "
        "be in their validator.allowed_relayers. Required by the relayer role; never a validator's key"))
    batch_size: int = Field(200, ge=1, le=2_000, description="messages per destination transaction")
    backoff_base_s: float = Field(1.0, gt=0)
    backoff_max_s: float = Field(120.0, gt=0)
    max_attempts: int = Field(30, ge=1, description="then DROPPED(reason)")
    poll_interval_s: float = Field(0.2, gt=0, le=60)
    max_inflight_per_destination: int = Field(8, ge=1, le=256)
    signature_timeout_s: float = Field(5.0, gt=0)
    instance_lease_s: float = Field(
        30.0, ge=1, le=3600, description="instances sharing a database beat every instance_lease_s/5; one silent for "
                                         "longer is dead and a live one takes over its deliveries and leased messages")
    adopted_tx_timeout_s: float = Field(
        120.0, gt=0, description="a dead instance's delivery tx still unmined this long after the hand-over is given "
                                 "up (its wallet's tx cannot be bumped by us): its messages are re-asked of the chain "
                                 "and retried")
    allow: list[MessageRule] = Field(default_factory=list, description=(
        "only messages matching one of these rules are delivered (empty: every message); any other is "
        "DROPPED(denied). Reloaded without a restart on SIGHUP or POST /admin/v1/filters/reload"))
    deny: list[MessageRule] = Field(default_factory=list, description=(
        "messages matching any of these rules are never delivered: DROPPED(denied), whatever relayer.allow says. "
        "Reloaded like relayer.allow"))
    max_gas_per_message: int | None = Field(None, ge=21_000, le=100_000_000, description=(
        "the most gas this relayer spends per message of a delivery (a batch may use this times its messages; a "
        "larger batch is split): a message whose delivery alone needs more is DROPPED(gas_limit_exceeded), so that a "
        "recipient burning gas cannot drain the relayer's wallet; the operator may execute it with a higher gas limit "
        "(POST /admin/v1/messages/{id}/execute). Unset: no limit"))
    gas_payment: list[GasPaymentRule] = Field(default_factory=list, description=(
        "what messages must pay before delivery, first matching entry (empty: everything is delivered unpaid); a "
        "message paying less waits as underpaid (no attempt spent) until a top-up is indexed"))
    gas_oracle: GasOracleSettings | None = Field(None, description=(
        "keep the GasOracle of every origin with a gas_paymaster current (unset: the oracles are left alone)"))
    route_limits: list[RouteLimit] = Field(default_factory=list, description=(
        "messages per second this relayer delivers per route, to protect a destination: over it a message waits "
        "(rate_limited, no attempt spent); the first entry matching a route applies. Each instance on a shared "
        "database keeps its own buckets"))


class StoreSettings(_Model):
    url: str = Field("sqlite:///relayer.db", description="sqlite:///PATH or postgresql://...")

    @field_validator("url")
    @classmethod
    def _supported(cls, v: str) -> str:
        if not v.startswith(("sqlite://", "postgresql")):
            raise ValueError(f"expected sqlite:///PATH or postgresql://..., got {v!r}")
        return v


class ApiSettings(_Model):
    """The HTTP front (``relayer/api/http_front.py``, ``relayer/api/request_guard.py``): what one client, and all of
    them together, may hold. A client is its IP address (an IPv6 client its /64). Over a per-client cap the answer is
    429, over a server-wide cap 503, both with ``Retry-After`` and a JSON body naming the key."""

    url: str = Field("http://127.0.0.1:8900", description="where the daemon serves HTTP")
    max_body_bytes: int = Field(1 << 20, ge=1024, le=64 << 20, description=(
        "largest request body the API reads (413 above it, before any route or chain call)"))
    max_json_depth: int = Field(64, ge=2, le=256, description=(
        "deepest nesting of arrays and objects in a JSON body (400 above it, decided before any JSON parser runs)"))
    max_header_bytes: int = Field(16 << 10, ge=1024, le=1 << 20, description=(
        "largest request line plus headers (431 above it, decided while they stream in)"))
    header_timeout_s: float = Field(10.0, gt=0, le=300, description=(
        "a connection must send a request's complete headers within this many seconds of opening, or of the "
        "previous response (slow headers: 408 and closed)"))
    body_timeout_s: float = Field(30.0, gt=0, le=600, description=(
        "a request's body must arrive within this many seconds of its headers (408 and closed)"))
    keep_alive_s: int = Field(5, ge=1, le=300,
                              description="an idle keep-alive connection is closed after this many seconds")
    max_connections: int = Field(1024, ge=1, le=100_000, description="open connections, all clients together")
    max_connections_per_client: int = Field(64, ge=1, le=100_000, description="open connections of one client")
    max_requests_in_flight: int = Field(256, ge=1, le=100_000, description=(
        "requests being answered at once, all clients together (an open event stream counts)"))
    max_requests_in_flight_per_client: int = Field(32, ge=1, le=100_000, description=(
        "requests being answered at once for one client"))
    max_streams: int = Field(256, ge=1, le=100_000, description="open server-sent event streams, all clients together")
    max_streams_per_client: int = Field(8, ge=1, le=100_000, description="open server-sent event streams of one client")
    own_thread: bool = Field(True, description=(
        "serve HTTP on a thread and event loop of its own, so relaying is never queued behind API work (the routes "
        "that need the relay loop's objects still run there, at most max_relay_requests_per_s)"))
    max_relay_requests_per_s: float = Field(100.0, gt=0, le=1_000_000, description=(
        "requests a second handed to the relay loop (quotes, intents, chains, status, co-sign, checkpoints), all "
        "clients together (503 above it)"))
    max_relay_requests_per_s_per_client: float = Field(20.0, gt=0, le=1_000_000, description=(
        "requests a second handed to the relay loop for one client (429 above it)"))
    max_intents_per_s: float = Field(20.0, gt=0, le=1_000_000, description=(
        "intents POST /v1/intents admits per second, all clients together (a full batch of 1,000 fits the burst): "
        "each is work for the daemon's chains and loop (per-client quotas: router.intents_per_s)"))

    _url = field_validator("url")(lambda cls, v: _check_http_url(v))

    @model_validator(mode="after")
    def _per_client_within_total(self) -> ApiSettings:
        for per_client, total in (("max_connections_per_client", "max_connections"),
                                  ("max_requests_in_flight_per_client", "max_requests_in_flight"),
                                  ("max_streams_per_client", "max_streams"),
                                  ("max_relay_requests_per_s_per_client", "max_relay_requests_per_s")):
            if getattr(self, per_client) > getattr(self, total):
                raise ValueError(f"{per_client} ({getattr(self, per_client)}) is above {total} "
                                 f"({getattr(self, total)})")
        return self


_SELECTOR = r"^0x[0-9a-fA-F]{8}$"
_TOKEN_SYMBOL = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")


class CallTarget(_Model):
    """One contract the operator accounts may call for ``call`` intents, and the functions they may call on it."""

    contract: str = Field(description="0x-prefixed 20-byte address of the contract on that chain")
    selectors: list[Annotated[str, Field(pattern=_SELECTOR)]] = Field(min_length=1, description=(
        "allowed 4-byte function selectors (0x + 8 hex digits, the first 4 bytes of the calldata); "
        "anything else sent to the contract is refused"))

    _contract = field_validator("contract")(lambda cls, v: _check_address(v))


class RouterSettings(_Model):
    """Live routing (issue 3): what the capacity model cannot read from the chains, and who may spend the operator
    accounts through the routing API (issue 12)."""

    native_usd: float = Field(3000.0, gt=0, description="USD price of the chains' native token, for fees in USD")
    native_usd_by_chain: dict[str, Annotated[float, Field(gt=0, allow_inf_nan=False)]] = Field(
        default_factory=dict, description=(
            "chain -> USD price of one whole native token of that chain, the token its fees are paid in (a Cosmos "
            "chain: its fee_denom, e.g. 1 ATOM = 10**6 uatom; Solana: 1 SOL), for quotes and /v1/chains; a chain not "
            "listed is priced at native_usd (an EVM chain's ether: list every chain whose native token is not it)"))
    transfer_gas: int = Field(50_000, gt=0, description="gas of one token transfer, the unit of an intent's work")
    operator_keys: list[SignerSettings] = Field(
        default_factory=list, description="accounts the router signs intents with (none: POST /v1/intents is refused)")
    api_keys: list[str] = Field(default_factory=list, description=(
        "X-API-Key values for POST /v1/quote, /v1/intents and /v1/intents/{id}/broadcast; empty: open, which with "
        "operator_keys is allowed only when api.url is loopback-only"))
    integrator_fee_share: float = Field(0.1, ge=0, le=1,
                                        description="share of an intent's fee earned by its integrator")
    integrator_payout_interval_s: float = Field(300.0, ge=0.5, le=86_400, description=(
        "every this many seconds each daemon pays each registered integrator (PUT /admin/v1/integrators/{code}) its "
        "share of the fees its counted intents paid and no payout covers yet: one native transfer per chain, from an "
        "operator account, exactly once (router/payouts.py)"))
    call_allowlist: dict[str, list[CallTarget]] = Field(default_factory=dict, description=(
        "chain -> contracts (and their function selectors) the operator accounts may call for call intents; "
        "empty: call intents signed by the operator accounts are refused"))
    intents_per_s: float = Field(10.0, gt=0, le=1e6, description=(
        "intents (and broadcast reports) each client may submit per second: a token bucket per API key, or per "
        "client address when no api_keys are set; over it: 429 with Retry-After"))
    intents_burst: int = Field(1000, ge=1, le=1_000_000, description=(
        "intents a client may submit at once before intents_per_s applies (a larger batch is refused)"))
    value_per_day: dict[str, float] = Field(default_factory=dict, description=(
        "token symbol -> token units (not smallest units) each client may have the operator accounts send per day "
        "(a budget refilled continuously over 24 h); a token not listed is never sent by the operator accounts"))
    unsigned_ttl_s: float = Field(600.0, ge=10, le=7 * 86400, description=(
        "an unsigned intent (signer mode) must be broadcast within this, and its transaction mined within this of "
        "the broadcast, else it fails; unsigned intents, failed signer-mode intents and failed intents that sent "
        "nothing are deleted this long after their last change"))
    max_wait_s: float = Field(60.0, ge=0, le=86_400, description=(
        "an operator-signed intent that finds the chains full waits this long for room (queued) unless it says "
        "otherwise (max_wait_s in the intent); 0: answer unserved: capacity at once"))
    max_queued: int = Field(100_000, ge=0, le=10_000_000, description=(
        "queued intents daemon-wide (all daemons on the database); beyond it new ones are answered unserved: capacity"))
    backlog_s: float = Field(3.0, gt=0, le=3600, description=(
        "the daemons stop taking intents for a chain once the work they took there and have not seen mined exceeds "
        "this many seconds of its spare rate at the fee-market target (admission is a rate, router/room.py; this "
        "bounds the queue when the chain or the sender falls behind)"))
    lane_lease_s: float = Field(10.0, ge=1, le=600, description=(
        "an operator account is signed with by one daemon at a time, under a lease renewed every quarter of this; "
        "a daemon silent this long loses its accounts to the others (router/lanes.py)"))
    lane_reprice_after_s: float = Field(30.0, ge=1, le=3600, description=(
        "a lane transaction sent this long ago and not mined is sent again; one whose max fee the base fee has "
        "outgrown is first re-signed at the same nonce with bumped fees (chains.*.gas.bump_percent), keeping the "
        "earlier hash: whichever is mined settles the intent (router/lanes.py)"))
    max_open_unsigned: int = Field(10_000, ge=1, le=10_000_000, description=(
        "signer-mode intents unsigned or submitted at once, daemon-wide; beyond it POST /v1/intents with a signer "
        "answers 503 with Retry-After"))

    @field_validator("value_per_day")
    @classmethod
    def _value_limits(cls, v: dict[str, float]) -> dict[str, float]:
        for symbol, limit in v.items():
            if not _TOKEN_SYMBOL.match(symbol):
                raise ValueError(f"{symbol!r} is not a token symbol")
            if not limit > 0:
                raise ValueError(f"the daily limit of {symbol} must be a positive number of token units, got {limit!r}")
        return v


class AuditSettings(_Model):
    """The solvency audit the daemon runs (``relayer audit`` is the same reading on demand)."""

    enabled: bool = Field(True, description="run the periodic audit (relayer_audit_* gauges, audit_shortfall log)")
    interval_s: float = Field(30.0, ge=1, le=86_400, description=(
        "seconds between two audits; each reads every chain's bridge balances once (twice when it finds a shortfall)"))


class AdminSettings(_Model):
    """The admin API (``/admin/v1/...``: the message filters; ``relayer.api.routes.admin``), its own keys, separate
    from the routing API's."""

    api_keys: list[SecretStr] = Field(default_factory=list, description=(
        "Bearer tokens for /admin/v1/... (Authorization: Bearer KEY); none: every admin request is refused with 403. "
        "Secrets: set them from the environment (RELAYER__ADMIN__API_KEYS='[\"...\"]'), not in a committed file"))

    @field_validator("api_keys")
    @classmethod
    def _long_enough(cls, v: list[SecretStr]) -> list[SecretStr]:
        if any(len(k.get_secret_value()) < 16 for k in v):
            raise ValueError("each admin key needs at least 16 characters (it guards the admin API)")
        return v


class LogSettings(_Model):
    level: Literal["debug", "info", "warning", "error"] = "info"
    json_output: bool | None = Field(None, alias="json", description="default: JSON when stdout is not a TTY")


class Settings(_Model):
    chains: dict[str, ChainConfig] = Field(min_length=1)
    security: SecuritySettings
    validator: ValidatorRoleSettings = ValidatorRoleSettings()
    relayer: RelayerRoleSettings = RelayerRoleSettings()
    store: StoreSettings = StoreSettings()
    api: ApiSettings = ApiSettings()
    router: RouterSettings = RouterSettings()
    audit: AuditSettings = AuditSettings()
    admin: AdminSettings = AdminSettings()
    log: LogSettings = LogSettings()

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        for name in self.chains:
            if not _NAME.match(name):
                raise ValueError(f"chain name {name!r}: use lower-case letters, digits and _ (max 32)")
        domains: dict[int, str] = {}
        for name, chain in self.chains.items():
            if chain.domain in domains:
                raise ValueError(f"chains.{name}.domain {chain.domain} is also the domain of {domains[chain.domain]}")
            domains[chain.domain] = name
        for origin in self.validator.origins or []:
            if origin not in self.chains:
                raise ValueError(f"validator.origins names {origin!r}, which is not under [chains]")
        for allowed in self.router.call_allowlist:
            if allowed not in self.chains:
                raise ValueError(f"router.call_allowlist names {allowed!r}, which is not under [chains]")
        for priced in self.router.native_usd_by_chain:
            if priced not in self.chains:
                raise ValueError(f"router.native_usd_by_chain names {priced!r}, which is not under [chains]")
        self._check_payout_limits()
        self._check_settlements()
        for i, limit in enumerate(self.relayer.route_limits):
            for field in ("origin", "destination"):
                name = getattr(limit, field)
                if name != "*" and name not in self.chains:
                    raise ValueError(f"relayer.route_limits[{i}].{field} names {name!r}, which is not under [chains]")
        for kind, rules in (("allow", self.relayer.allow), ("deny", self.relayer.deny),
                            ("gas_payment", self.relayer.gas_payment)):
            for i, rule in enumerate(rules):
                for field in ("origin", "destination"):
                    for name in rule.values(field) or []:
                        if name not in self.chains:
                            raise ValueError(f"relayer.{kind}[{i}].{field} names {name!r}, which is not under [chains]")
        self._check_paid_origins()
        for i, floor in enumerate(self.relayer.gas_oracle.floors if self.relayer.gas_oracle else []):
            for field in ("origin", "destination"):
                name = getattr(floor, field)
                if name != "*" and name not in self.chains:
                    raise ValueError(f"relayer.gas_oracle.floors[{i}].{field} names {name!r}, which is not under "
                                     "[chains]")
        return self

    def _check_payout_limits(self) -> None:
        """``validator.payout_limits``: a co-signed destination, a known remote chain, a token of the destination;
        one entry per (chain, remote, token)."""
        seen: set[tuple[str, str, str]] = set()
        for i, limit in enumerate(self.validator.payout_limits):
            where = f"validator.payout_limits[{i}]"
            chain = self.chains.get(limit.chain)
            if chain is None or chain.family not in ("solana", "cosmos"):
                raise ValueError(f"{where}.chain names {limit.chain!r}, which is not a Solana or Cosmos chain under "
                                 "[chains] (EVM destinations limit in their TokenBridge)")
            if limit.remote != "*" and (limit.remote not in self.chains or limit.remote == limit.chain):
                raise ValueError(f"{where}.remote names {limit.remote!r}, which is not another chain under [chains]")
            if limit.token not in chain.tokens:
                raise ValueError(f"{where}.token names {limit.token!r}, which is not under chains.{limit.chain}.tokens")
            key = (limit.chain, limit.remote, limit.token)
            if key in seen:
                raise ValueError(f"{where} repeats chain {limit.chain!r}, remote {limit.remote!r}, token "
                                 f"{limit.token!r}")
            seen.add(key)

    def _check_settlements(self) -> None:
        """``chains.<rollup>.settlement.l1``: another EVM chain, which settles on nothing itself."""
        for name, chain in self.chains.items():
            settlement = chain.settlement if isinstance(chain, EvmChainConfig) else None
            if settlement is None:
                continue
            l1 = self.chains.get(settlement.l1)
            if not isinstance(l1, EvmChainConfig) or settlement.l1 == name:
                raise ValueError(f"chains.{name}.settlement.l1 names {settlement.l1!r}, which is not another EVM chain "
                                 "under [chains]")
            if l1.settlement is not None:
                raise ValueError(f"chains.{name}.settlement.l1 names {settlement.l1!r}, which settles on "
                                 f"{l1.settlement.l1} itself: name a chain whose finality is its own")

    def _check_paid_origins(self) -> None:
        """A rule that asks for payment may only match origins where payments can be made and read: EVM chains with a
        gas_paymaster, Solana and Cosmos chains with a gas_fee_account."""
        for i, rule in enumerate(self.relayer.gas_payment):
            if rule.policy == "none":
                continue
            for name in rule.values("origin") or list(self.chains):
                chain = self.chains[name]
                key = "gas_paymaster" if isinstance(chain, EvmChainConfig) else "gas_fee_account"
                if getattr(chain, key, None) is None:
                    raise ValueError(
                        f"relayer.gas_payment[{i}] asks messages from {name} to pay ({rule.policy}), but chains.{name} "
                        f"has no {key}: set it, or name the paying origins in the rule's origin field")

    def settlement_l1(self, chain: str) -> ChainConfig | None:
        """The config of the L1 that ``chain`` settles on (None: it is no rollup with a ``settlement``)."""
        config = self.chains[chain]
        if isinstance(config, EvmChainConfig) and config.settlement is not None:
            return self.chains[config.settlement.l1]
        return None

    def native_usd(self, chain: str) -> float:
        """The USD price of ``chain``'s native token: ``router.native_usd_by_chain``, else ``router.native_usd``."""
        return self.router.native_usd_by_chain.get(chain, self.router.native_usd)

    @property
    def operator_api_open(self) -> bool:
        """The routing API would let anyone who reaches it spend the operator accounts: operator keys, no API key."""
        return bool(self.router.operator_keys) and not self.router.api_keys

    def check_operator_exposure(self) -> None:
        """Refuse operator accounts behind an API that needs no key unless ``api.url`` is loopback-only: anyone who
        can reach the port could otherwise send the operators' tokens (issue 12, finding 3). ``ConfigError`` naming
        ``router.api_keys``; the loopback-only case is allowed (the devnet) and warned about at start."""
        if self.operator_api_open and not is_loopback_url(self.api.url):
            raise ConfigError("router.api_keys", (
                f"router.operator_keys is set and router.api_keys is empty, and api.url {self.api.url} is not "
                "loopback-only: anyone who reaches the API could spend the operator accounts. Set router.api_keys, "
                "or serve the API on 127.0.0.1 / ::1 / localhost"))
