"""The routing API's request and answer models (pydantic): with ``router.validation``, the whole of its input rules.

The models hold what a type can say (kinds, lengths, ranges, no unknown fields); ``router.validation`` holds the
rest (formats with their own messages, rules across fields, rules against the live chains and the tokens).
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_BATCH = 1000
MAX_AMOUNT_DIGITS = 40  # 1e40 smallest units of an 18-decimal token is beyond any supply; bounds the int() of it
ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
INTEGRATOR_CODE = re.compile(r"^[a-z0-9_-]{1,32}$")
HEX = re.compile(r"^0x([0-9a-fA-F]{2})*$")


class QuoteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["transfer", "call", "xchain"] = "transfer"
    amount: str = Field(max_length=80, description="token amount as a decimal string, > 0")
    token: str = Field("TST", min_length=1, max_length=32)
    chains: list[str] | None = Field(None,
                                     description="chains the intent accepts (destination for xchain); default all")
    from_chain: str | None = Field(None, description="origin chain of an xchain transfer")
    work: float = Field(1.0, ge=1.0, le=1000.0, description="gas of the call in token transfers (call only)")
    max_fee_usd: float = Field(1e9, gt=0)
    max_latency_s: float = Field(1e9, gt=0)
    integrator: str | None = Field(None, description=(
        "referral code, [a-z0-9_-]{1,32}; a quote served to a registered code counts for it (its conversion)"))


class IntentRequest(QuoteRequest):
    recipient: str = Field(description="0x-prefixed 20-byte address that receives the tokens (call: the contract)")
    calldata: str | None = Field(None, max_length=2 + 2 * 24_576,
                                 description="call only: 0x-hex data for the contract (no value is sent; amount is 0)")
    max_wait_s: float | None = Field(None, ge=0, le=86_400, description=(
        "operator-signed intents: when the chains are full, wait up to this many seconds for room (status queued; "
        "released in order, or expired with nothing sent) instead of coming back unserved: capacity. Default "
        "router.max_wait_s; 0: do not wait. Signer mode does not queue."))


class IntentBatchAnswer(BaseModel):
    """The answer to ``POST /v1/intents``: one entry per submitted intent, in order. An intent that is stored (and
    then followed with ``GET /v1/intents/{id}``) has an id; one the planner left ``unserved`` (or, in signer mode,
    whose transaction could not be built: ``failed``) is answered here only, with its reason, and has ``null`` as
    id: nothing of it is kept. ``batch`` is null when no intent of the batch was stored."""

    batch: str | None = Field(description="id for GET /v1/batches/{batch}; null when nothing was stored")
    ids: list[str | None] = Field(description="intent ids in submission order; null for an intent not stored")
    statuses: list[str] = Field(description="planned, queued (waiting for room), unsigned (signer mode), unserved, or "
                                            "failed (signer mode)")
    reasons: list[str | None] = Field(description="why an intent is unserved or failed (planner reason or error)")
    transactions: list[dict[str, Any] | None] | None = Field(
        None, description="signer mode: the unsigned transaction of each intent (null where none)")


class BroadcastRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tx_hash: str = Field(pattern=r"^0x[0-9a-fA-F]{64}$", description="hash of the signed transaction you broadcast")


# POST /v1/intents reads its body itself (one bad intent names ``intents[i].field``; 413 over MAX_BATCH); this is
# the body it takes, for the OpenAPI document
INTENT_BATCH_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": {
    "type": "object", "additionalProperties": False, "required": ["intents"],
    "properties": {
        "intents": {"type": "array", "minItems": 1, "maxItems": MAX_BATCH, "items": IntentRequest.model_json_schema()},
        "signer": {"type": "string", "pattern": ADDRESS.pattern,
                   "description": "get unsigned transactions for this address to sign, instead of the operator's"},
    }}}}}}
