"""Typed settings for the daemon. Every model forbids unknown keys, so a typo fails at start-up with its path.

A config file looks like ``config/examples/devnet.toml``: ``[chains.<name>]`` tables (a tagged union on
``family``), one ``[security]`` validator set, the ``[validator]`` and ``[relayer]`` roles, ``[store]``,
``[api]`` and ``[log]``.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

U32 = Annotated[int, Field(ge=0, le=2**32 - 1)]
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_address(value: str) -> str:
    if not _ADDRESS.match(value):
        raise ValueError(f"expected a 0x-prefixed 20-byte hex address, got {value!r}")
    return value


def _check_http_url(value: str) -> str:
    if not re.match(r"^https?://[^\s/]+", value):
        raise ValueError(f"expected an http(s) URL, got {value!r}")
    return value.rstrip("/")


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


class TrustedCheckpoint(_Model):
    height: int = Field(ge=0)
    hash: str = Field(pattern=r"^0x[0-9a-fA-F]{64}$")


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
    trusted_checkpoint: TrustedCheckpoint | None = Field(None, description=(
        "block the validator's light client anchors on without a beacon_url (default: the genesis the node "
        "serves, logged)"))
    beacon_url: str | None = Field(None, description=(
        "Beacon API endpoint of the chain's consensus: the validator's sync-committee light client follows it "
        "from trusted_block_root and accepts only execution blocks that link to the finalized block it derives"))
    trusted_block_root: str | None = Field(None, pattern=r"^0x[0-9a-fA-F]{64}$", description=(
        "beacon block root the sync-committee light client starts from (obtained out of band; with beacon_url)"))
    trust_single_rpc: bool = Field(False, description=(
        "a validator may attest this origin on rpc_url alone (no beacon_url, no verify_rpc_urls): it then trusts "
        "that one node; logged at start and exported as validator_single_rpc_trust"))
    simulate_deliveries: Literal["always", "adaptive"] = Field(
        "adaptive", description='"always": eth_call every batch before sending; "adaptive": only after a revert '
        "or while the gas model is uncalibrated (signatures, roots and proofs are always checked locally)")
    token_bridge: str | None = Field(None, description="TokenBridge app address, for token sends")
    tokens: dict[str, TokenConfig] = Field(default_factory=dict, description="symbol -> token on this chain")

    @field_validator("token_bridge")
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
    _mailbox = field_validator("mailbox")(lambda cls, v: _check_address(v))
    _beacon = field_validator("beacon_url")(lambda cls, v: None if v is None else _check_http_url(v))

    @model_validator(mode="after")
    def _one_anchor(self) -> EvmChainConfig:
        if (self.beacon_url is None) != (self.trusted_block_root is None):
            raise ValueError("beacon_url and trusted_block_root go together: the light client follows beacon_url "
                             "from trusted_block_root")
        if self.beacon_url is not None and self.trusted_checkpoint is not None:
            raise ValueError("trusted_checkpoint is the anchor without a beacon light client; with beacon_url the "
                             "anchor is the block the sync committee finalized: remove one")
        return self


class SolanaTokenConfig(_Model):
    mint: str = Field(description="SPL mint (base58)")
    decimals: int = Field(9, ge=0, le=18)
    wrapped: bool = Field(False, description="minted here by the validators' multisig (else native: locked in the vault)")
    home_domain: U32 | None = Field(None, description="wrapped: domain of the token's home chain")
    home_token: str | None = Field(None, description="wrapped: 0x-hex bytes32 of the token on its home chain")
    home_decimals: int | None = Field(None, ge=0, le=36, description=(
        "wrapped: decimals on the home chain; amounts are scaled by 10**(home_decimals - decimals) (SPL amounts are u64)"))


class SolanaChainConfig(_Model):
    """A Solana cluster (issue 5). No program of ours: dispatches are token transfers into the bridge vault
    (or plain memo transactions) carrying the message in a Memo; deliveries are co-signed by the validators."""

    family: Literal["solana"]
    domain: U32
    rpc_url: str
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

    _rpc = field_validator("rpc_url")(lambda cls, v: _check_http_url(v))


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
    bech32_prefix: str = "cosmos"
    fee_denom: str
    gas_price: float = Field(0.0025, ge=0)
    vault: str = Field(description="bech32 multisig account of the validators: receives locks, sends deliveries")
    remote_bridges: dict[int, str] = Field(default_factory=dict, description=(
        "domain -> 0x-hex bytes32 of the token bridge there: the only senders whose token messages are honoured"))
    multisig_threshold: int = Field(ge=1, le=11)
    multisig_pubkeys: list[str] = Field(description="compressed secp256k1 public keys (hex) of the multisig, in order")
    tokens: dict[str, CosmosTokenConfig] = Field(default_factory=dict)
    verify_rpc_urls: list[str] = Field(default_factory=list)
    trusting_period_s: float = Field(14 * 24 * 3600, gt=0)
    poll_interval_s: float = Field(0.5, gt=0, le=60)
    request_timeout_s: float = Field(10.0, gt=0, le=300)
    start_height: int = Field(0, ge=0)
    signer: SignerSettings | None = Field(None, description="unused: deliveries are paid by the multisig account")
    min_wallet_balance: float | None = Field(None, ge=0, description=(
        "native tokens (not smallest units); when the paying account's balance falls below it the relayer logs "
        "wallet_balance_low and sets relayer_wallet_balance_low to 1 (unset: no warning)"))

    _rpc = field_validator("rpc_url", "rest_url")(lambda cls, v: _check_http_url(v))


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


class ValidatorRoleSettings(_Model):
    keys: list[SignerSettings] = Field(default_factory=list, description="one per validator this process runs")
    origins: list[str] | None = Field(None, description="chains to attest; default all")
    interval_s: float = Field(0.25, gt=0, le=60)
    verify_inclusion: bool = Field(True, description=(
        "prove every dispatch with the chain's light client (verified header chain, receipts root) before signing"))
    cosign_keys: dict[str, list[SignerSettings]] = Field(default_factory=dict, description=(
        "per co-signed destination chain (Solana, Cosmos), this process's validators' keys on that chain, in the "
        "order of keys"))


class RelayerRoleSettings(_Model):
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


class StoreSettings(_Model):
    url: str = Field("sqlite:///relayer.db", description="sqlite:///PATH or postgresql://...")

    @field_validator("url")
    @classmethod
    def _supported(cls, v: str) -> str:
        if not v.startswith(("sqlite://", "postgresql")):
            raise ValueError(f"expected sqlite:///PATH or postgresql://..., got {v!r}")
        return v


class ApiSettings(_Model):
    url: str = Field("http://127.0.0.1:8900", description="where the daemon serves HTTP")
    max_body_bytes: int = Field(1 << 20, ge=1024, le=64 << 20, description=(
        "largest request body the API reads (413 above it, before any route or chain call)"))

    _url = field_validator("url")(lambda cls, v: _check_http_url(v))


class RouterSettings(_Model):
    """Live routing (issue 3): what the capacity model cannot read from the chains."""

    native_usd: float = Field(3000.0, gt=0, description="USD price of the chains' native token, for fees in USD")
    transfer_gas: int = Field(50_000, gt=0, description="gas of one token transfer, the unit of an intent's work")
    operator_keys: list[SignerSettings] = Field(
        default_factory=list, description="accounts the router signs intents with (none: POST /v1/intents is refused)")
    api_keys: list[str] = Field(default_factory=list, description="X-API-Key values for POST /v1/quote and /v1/intents; "
                                                                  "empty: open (devnet)")
    integrator_fee_share: float = Field(0.1, ge=0, le=1, description="share of an intent's fee earned by its integrator")


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
        return self

    def chain_by_domain(self, domain: int) -> tuple[str, ChainConfig]:
        for name, chain in self.chains.items():
            if chain.domain == domain:
                return name, chain
        raise KeyError(domain)
