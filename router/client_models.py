"""The answers of the daemon's public HTTP API as typed models, for ``router.client`` (pydantic v2).

Each model declares the fields the API always answers (required, possibly null) and those it answers only in some
configurations (a default); any other field the server sends is kept (``extra="allow"``), so a field added to the API
does not break an older client. Most answers are ``dict[str, Any]`` in the OpenAPI document (the routes build them by
hand), so the models are written from the routes' code (``router.intents.intent_view``, ``router.api``,
``relayer.api.schemas.message_view``, ``relayer.explorer.routes``); tests/unit/test_routing_client_openapi.py checks
them against the OpenAPI document where it has a schema, and against real answers of the app where it has none.

A model also reads like the JSON object it was decoded from: ``answer["field"]``, ``answer.get("field")``, ``"field"
in answer``, ``dict(answer)``, ``answer == {...}`` give the JSON as the server sent it (nested objects as plain dicts),
so code written against the dict-returning client keeps working; ``answer.field`` is the typed value.

The requests reuse the API's own models (``router.schemas``: ``QuoteRequest``, ``IntentRequest``, ``BroadcastRequest``),
plus ``IntentBatchRequest``, the body of ``POST /v1/intents`` (which the route reads itself, see
``router.schemas.INTENT_BATCH_BODY``).
"""

from __future__ import annotations

from collections.abc import ItemsView, KeysView, Mapping, ValuesView
from typing import Any, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    model_validator,
)

from router.schemas import ADDRESS, MAX_BATCH, IntentRequest

_FROM_JSON = "router.client_models.from_json"


class ApiModel(BaseModel):
    """An answer of the API (see the module docstring): typed attributes, and the JSON it came from by key."""

    model_config = ConfigDict(extra="allow")
    _raw: dict[str, Any] | None = PrivateAttr(default=None)

    @model_validator(mode="wrap")
    @classmethod
    def _keep_json(cls, data: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo) -> Any:
        model = handler(data)
        if isinstance(data, dict) and isinstance(model, ApiModel) and info.context and info.context.get(_FROM_JSON):
            model._raw = data
        return model

    @classmethod
    def from_json(cls, data: Any) -> Self:
        """The model of a decoded JSON answer, keeping that JSON for reading by key."""
        return cls.model_validate(data, context={_FROM_JSON: True})

    @property
    def raw(self) -> dict[str, Any]:
        """The JSON object as the server sent it (a model built in code: its JSON dump)."""
        return self._raw if self._raw is not None else self.model_dump(mode="json")

    def __getitem__(self, key: str) -> Any:
        return self.raw[key]

    def __contains__(self, key: object) -> bool:
        return key in self.raw

    def get(self, key: str, default: Any = None) -> Any:
        return self.raw.get(key, default)

    def keys(self) -> KeysView[str]:
        return self.raw.keys()

    def values(self) -> ValuesView[Any]:
        return self.raw.values()

    def items(self) -> ItemsView[str, Any]:
        return self.raw.items()

    def __eq__(self, other: object) -> bool:
        """Equal to the same model of the same values (however each was built), or to its JSON as a mapping."""
        if isinstance(other, ApiModel):
            return type(self) is type(other) and self.model_dump() == other.model_dump()
        if isinstance(other, Mapping):
            return self.raw == dict(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by value (as BaseModel)


# ---- requests (the rest are router.schemas')

class IntentBatchRequest(BaseModel):
    """``POST /v1/intents``: the intents (``router.schemas.IntentRequest``), and ``signer`` for unsigned
    transactions the dApp signs itself."""

    model_config = ConfigDict(extra="forbid")

    intents: list[IntentRequest] = Field(min_length=1, max_length=MAX_BATCH)
    signer: str | None = Field(None, pattern=ADDRESS.pattern)


# ---- the routing API (router.api)

class RouteOption(ApiModel):
    """One chain an intent could run on (``/v1/quote``'s ``route`` and ``options``)."""

    chain: str
    origin: str
    fee_usd: float
    origin_fee_usd: float
    destination_fee_usd: float
    latency_s: float
    bridge_limit: dict[str, Any] | None = None  # cross-chain transfers, where the daemon reads the bridges' limits


class Quote(ApiModel):
    """``POST /v1/quote``: the route options, cheapest first, and the planner's ``route`` (null:
    ``unserved_reason``)."""

    kind: str
    amount: str
    token: str
    route: RouteOption | None
    unserved_reason: str | None
    options: list[RouteOption]
    expires_at: float
    bridge_limit: dict[str, Any] | None
    pool: dict[str, Any] | None
    wait_s: float | None


class ChainCapacity(ApiModel):
    """One chain of ``GET /v1/chains``: health, capacity, fees (USD)."""

    name: str
    domain: int
    healthy: bool
    block_time_s: float
    gas_limit: int
    utilisation: float
    target_utilisation: float
    spare_gas_per_s: float
    spare_transfers_per_s: float
    base_fee_per_gas: float
    base_fee_trend: float
    native_usd: float
    transfer_fee_usd: float
    payout_fee_usd: float
    error_rate: float
    bridge_limits: dict[str, Any] | None = None  # where the daemon reads the token bridges' rate limits


class ChainsAnswer(ApiModel):
    """``GET /v1/chains``."""

    chains: list[ChainCapacity]


class SubmitAnswer(ApiModel):
    """``POST /v1/intents`` (``router.schemas.IntentBatchAnswer``): one entry per intent, in order; ``None`` as id
    for an intent not stored (unserved, or failed in signer mode)."""

    batch: str | None
    ids: list[str | None]
    statuses: list[str]
    reasons: list[str | None]
    transactions: list[dict[str, Any] | None] | None = None  # signer mode only


class IntentView(ApiModel):
    """One intent (``GET /v1/intents/{id}``, a batch's intents, ``intent`` events): ``router.intents.intent_view``."""

    id: str
    batch: str
    status: str
    reason: str | None
    kind: str
    token: str
    amount: str
    recipient: str
    integrator: str | None
    from_chain: str | None
    chain: str | None
    origin: str | None
    tx_hash: str | None
    message_id: str | None
    fee_estimate_usd: float | None
    latency_estimate_s: float | None
    height: int | None
    calldata: str | None
    fee_paid: str | None
    fee_paid_usd: float | None
    signer: str | None
    operator: str | None
    nonce: int | None
    executor: str | None
    included_at: float | None
    deadline_at: float | None
    replaced_tx_hashes: list[str]
    created_at: float
    updated_at: float


class BatchView(ApiModel):
    """``GET /v1/batches/{batch}``: every intent of the batch and counts by status."""

    batch: str
    counts: dict[str, int]
    settled: bool
    intents: list[IntentView]


class BatchDone(ApiModel):
    """The ``done`` event of a batch's stream: every intent settled."""

    batch: str
    settled: int


class IntegratorTotals(ApiModel):
    intents: int
    volume: str
    fees_usd: float
    fee_share_usd: float


class IntegratorReport(IntegratorTotals):
    """``GET /v1/integrators/{code}/report``; ``rewards``, ``quotes``, ``conversion`` and ``by_chain_day`` where the
    daemon pays rewards (``router.rewards``)."""

    integrator: str
    fee_share: float
    pending: int
    by_chain: dict[str, IntegratorTotals]
    by_day: dict[str, IntegratorTotals]
    rewards: dict[str, Any] | None = None
    quotes: dict[str, Any] | None = None
    conversion: dict[str, Any] | None = None
    by_chain_day: list[dict[str, Any]] | None = None


# ---- the relayer's reads (relayer.api.routes, relayer.explorer)

class Health(ApiModel):
    """``GET /healthz``."""

    status: str


class Readiness(ApiModel):
    """``GET /readyz`` (answered 503 when not ready: the client returns it, ``ready`` false)."""

    ready: bool
    chains: dict[str, str]
    store: str


class ChainStatus(ApiModel):
    domain: int
    healthy: bool
    latest_height: int | None
    finalized_height: int | None
    latency_s: float | None
    detail: str | None
    capacity: dict[str, Any] | None


class RelayerStatus(ApiModel):
    """``GET /v1/status``: chains, queue depths by destination and state, failure reasons, validators."""

    role: str
    chains: dict[str, ChainStatus]
    messages: dict[str, dict[str, int]]
    reasons: dict[str, int]
    validators: list[str]
    latest_signed_index: dict[str, int | None]


class MessageView(ApiModel):
    """One message (``relayer.api.schemas.message_view``); ``updated_at`` in lists and events."""

    id: str
    status: str
    substate: str | None
    state: str
    origin: str
    origin_domain: int
    destination: str
    destination_domain: int
    nonce: int
    sender: str
    recipient: str
    origin_tx: str | None
    origin_height: int | None
    dispatched_at: float | None
    attempts: int
    last_reason: str | None
    last_error: str | None
    next_attempt_at: float | None
    checkpoint_index: int | None
    delivery_tx: str | None
    delivered_height: int | None
    delivered_at: float | None
    lease_owner: str | None
    handed_over_from: str | None
    updated_at: float | None = None


class MessageLookup(ApiModel):
    """``GET /v1/messages/{id or tx hash}``: the messages with that id, or sent in that transaction."""

    messages: list[MessageView]


class MessagePage(ApiModel):
    """``GET /v1/messages``: newest change first; ``next_before`` pages on, ``latest_change`` starts an event stream."""

    messages: list[MessageView]
    next_before: str | None
    latest_change: float | None


class GasOwed(ApiModel):
    """``GET /v1/messages/{id}/gas``: what the message still owes its origin's paymaster and the call that pays it."""

    id: str
    origin: str
    destination: str
    rule: str | None
    policy: str
    required: str | None
    paid: str
    shortfall: str
    gas_limit: int
    value: str
    pay: dict[str, Any] | None
    fee_account: str | None = None  # origins paid through the relayer's fee account (Solana, Cosmos)
    how_to_pay: Any = None


class RouteProfit(ApiModel):
    origin: str
    destination: str
    payments: int
    fees_collected_usd: float
    gas_spent_usd: float
    profit_usd: float


class RouteProfits(ApiModel):
    """``GET /v1/routes/profit``."""

    routes: list[RouteProfit]


class MessageDetail(ApiModel):
    """``GET /v1/explorer/messages/{id}``: the message, its timeline and delivery transactions."""

    message: MessageView
    updated_at: float
    timeline: list[dict[str, Any]]
    deliveries: list[dict[str, Any]]


class Throughput(ApiModel):
    """``GET /v1/explorer/throughput``: deliveries per destination and dispatches per origin, per bucket."""

    window_s: int
    bucket_s: int
    start: float
    end: float
    buckets: list[float]
    delivered: dict[str, list[int]]
    dispatched: dict[str, list[int]]
    totals: dict[str, dict[str, int]]


class SampledChain(ApiModel):
    name: str
    domain: int
    family: str


class ChainSamples(ApiModel):
    """``GET /v1/explorer/samples``: what the daemon's health job saw of every chain over the window."""

    chains: list[SampledChain]
    last_seq: int
    samples: list[dict[str, Any]]

