"""The routing API's input rules beyond what its models (``router.schemas``) say: each check raises the one bad-input
answer (``router.errors.bad_input``: 400 naming the field, 413 for a batch over ``MAX_BATCH``), and nothing is planned,
stored or asked of a chain from input that fails one.

    batch_items, batch_signer     the envelope of POST /v1/intents ({"intents": [...], "signer": ...})
    read_intents                  each intent against ``IntentRequest`` (field: intents[i].<field>)
    check_intent                  formats (recipient, integrator, calldata) and rules across fields
    check_signable                an operator-signed intent names chains where the operators sign (those with lanes)
    parse_request                 an intent against the live chains (amount, chains, from_chain): quote and submit
    token_units                   the amount in the token's smallest units; tokens that are not bridged
    planner_intents               parsed intents as the planner's arrays
    check_integrator_code         GET /v1/integrators/{code}/report
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import numpy as np
from pydantic import ValidationError

from router.capacity import CapacityModel
from router.errors import bad_input, first_problem
from router.planner import Intents, Kind
from router.schemas import (
    ADDRESS,
    HEX,
    INTEGRATOR_CODE,
    MAX_AMOUNT_DIGITS,
    MAX_BATCH,
    IntentRequest,
    QuoteRequest,
)

_KINDS = {"transfer": Kind.TRANSFER, "call": Kind.CALL, "xchain": Kind.XCHAIN}


@dataclass(frozen=True, slots=True)
class ParsedIntent:
    kind: Kind
    amount: Decimal
    allowed: np.ndarray
    origin: int
    work: float
    max_fee_usd: float
    max_latency_s: float


def parse_request(req: QuoteRequest, m: CapacityModel, prefix: str) -> ParsedIntent:
    """Check one request against the live chains; 400 naming ``prefix + field`` when it is wrong."""
    amount = _amount(req, prefix)
    names = list(m.index)
    allowed = np.zeros(len(names), dtype=bool)
    for i, name in enumerate(req.chains if req.chains is not None else names):
        if name not in m.index:
            raise bad_input(f"{prefix}chains[{i}]", f"unknown chain {name!r}; known: {', '.join(names)}")
        allowed[m.index[name]] = True
    origin = -1
    if req.kind == "xchain":
        if req.from_chain is None:
            raise bad_input(prefix + "from_chain", "an xchain intent needs its origin chain")
        if req.from_chain not in m.index:
            raise bad_input(prefix + "from_chain", f"unknown chain {req.from_chain!r}; known: {', '.join(names)}")
        origin = m.index[req.from_chain]
        allowed[origin] = False
    elif req.from_chain is not None:
        raise bad_input(prefix + "from_chain", "only an xchain intent has an origin chain")
    if not allowed.any():
        raise bad_input(prefix + "chains", "no chain left to route to")
    return ParsedIntent(_KINDS[req.kind], amount, allowed, origin, req.work if req.kind == "call" else 1.0,
                        req.max_fee_usd, req.max_latency_s)


def _amount(req: QuoteRequest, prefix: str) -> Decimal:
    """A decimal number: 0 for a call (no value is sent), else positive; at most ``MAX_AMOUNT_DIGITS`` digits."""
    try:
        amount = Decimal(req.amount)
    except InvalidOperation:
        raise bad_input(prefix + "amount", f"{req.amount!r} is not a number") from None
    if req.kind == "call":
        if not amount.is_finite() or amount != 0:
            raise bad_input(prefix + "amount", f"a call intent sends no value: amount must be 0, got {req.amount}")
    elif not amount.is_finite() or amount <= 0:
        raise bad_input(prefix + "amount", f"must be a positive number, got {req.amount}")
    if amount.is_finite() and amount != 0 and amount.adjusted() >= MAX_AMOUNT_DIGITS:
        raise bad_input(prefix + "amount",
                        f"at most {MAX_AMOUNT_DIGITS} digits before the decimal point, got {req.amount}")
    return amount


def batch_items(body: Mapping[str, Any]) -> list[Any]:
    """The batch's intents, unchecked: a non-empty list of at most ``MAX_BATCH`` (413 over it)."""
    raw = body.get("intents")
    if not isinstance(raw, list) or not raw:
        raise bad_input("intents", "a non-empty list of intents is required")
    if len(raw) > MAX_BATCH:
        raise bad_input("intents", f"at most {MAX_BATCH} intents per batch, got {len(raw)}", 413)
    return raw


def batch_signer(body: Mapping[str, Any]) -> str | None:
    """No field but ``intents`` and ``signer``; the signer, when given, an address."""
    if set(body) - {"intents", "signer"}:
        raise bad_input(min(set(body) - {"intents", "signer"}), "unknown field")
    signer = body.get("signer")
    if signer is not None and (not isinstance(signer, str) or not ADDRESS.match(signer)):
        raise bad_input("signer", f"{signer!r} is not a 0x-prefixed 20-byte address")
    return signer


def read_intents(raw: list[Any]) -> list[IntentRequest]:
    """Each item as an ``IntentRequest``; the first that is not one is 400 naming ``intents[i].<field>``."""
    reqs: list[IntentRequest] = []
    for i, item in enumerate(raw):
        try:
            reqs.append(IntentRequest.model_validate(item))
        except ValidationError as exc:
            raise bad_input(*first_problem(exc.errors(), prefix=f"intents[{i}].")) from None
    return reqs


def check_intent(i: int, req: IntentRequest, signer: str | None) -> None:
    """What the model cannot say of intent ``i``: formats with their own messages and rules across its fields."""
    if not ADDRESS.match(req.recipient):
        raise bad_input(f"intents[{i}].recipient", f"{req.recipient!r} is not a 0x-prefixed 20-byte address")
    if req.integrator is not None and not INTEGRATOR_CODE.match(req.integrator):
        raise bad_input(f"intents[{i}].integrator", "an integrator code is 1-32 of [a-z0-9_-]")
    if req.kind == "call":
        if req.calldata is None or not HEX.match(req.calldata):
            raise bad_input(f"intents[{i}].calldata", "a call intent needs calldata: 0x followed by whole bytes of hex")
        if req.chains is None:
            raise bad_input(f"intents[{i}].chains", "a call intent names the chains where its contract is")
    elif req.calldata is not None:
        raise bad_input(f"intents[{i}].calldata", "only a call intent has calldata")
    if signer is not None and req.kind == "xchain":
        raise bad_input(f"intents[{i}].kind", "xchain intents are signed by the operator accounts; omit signer")
    if signer is not None and req.max_wait_s:
        raise bad_input(f"intents[{i}].max_wait_s", "signer-mode intents do not queue; omit max_wait_s or use 0")


def check_signable(i: int, req: IntentRequest, signable: Mapping[str, Collection[str]]) -> None:
    """An operator-signed intent must be able to run where the operator accounts sign its kind: on chains whose
    durable lanes (``router.lanes``) take it (``signable``: per kind). A call or same-chain transfer that names only
    other chains, or a cross-chain transfer from another chain, is refused with the chains it could use (a dApp may
    sign a same-chain one itself: signer mode)."""
    where = ", ".join(sorted(signable.get(req.kind, ()))) or "none"
    if req.kind == "xchain":
        if req.from_chain is not None and req.from_chain not in signable.get("xchain", ()):
            raise bad_input(f"intents[{i}].from_chain", f"the operator accounts do not sign cross-chain transfers "
                                                       f"from {req.from_chain!r}; they do from: {where}")
    elif req.chains is not None and not set(req.chains) & set(signable.get(req.kind, ())):
        raise bad_input(f"intents[{i}].chains", f"the operator accounts sign {req.kind} intents on none of "
                                                f"{sorted(req.chains)}; they do on: {where} (or pass signer to sign "
                                                "the transaction yourself)")


def token_units(i: int, req: IntentRequest, p: ParsedIntent, decimals: Mapping[str, int],
                not_bridged: frozenset[str], chain_decimals: Mapping[tuple[str, str], int] | None = None) -> int:
    """The amount of intent ``i`` in its token's smallest units (a known token, no more decimals than it has; a
    cross-chain transfer's in its origin's token, ``chain_decimals`` where they differ); an xchain intent needs a
    bridged token."""
    places = decimals.get(req.token)
    if places is not None and p.kind == Kind.XCHAIN and req.from_chain is not None and chain_decimals:
        places = chain_decimals.get((req.from_chain, req.token), places)
    if places is None:
        raise bad_input(f"intents[{i}].token", f"unknown token {req.token!r}; known: {', '.join(sorted(decimals))}")
    scaled = p.amount.scaleb(places)
    if scaled != scaled.to_integral_value():
        raise bad_input(f"intents[{i}].amount", f"more than {places} decimals")
    if p.kind == Kind.XCHAIN and req.token in not_bridged:
        raise bad_input(f"intents[{i}].token", f"{req.token} is issued natively on each chain and is not bridged; "
                                               "use a bridged token for xchain intents")
    return int(scaled)


def check_integrator_code(code: str, field: str = "code") -> None:
    if not INTEGRATOR_CODE.match(code):
        raise bad_input(field, "an integrator code is 1-32 of [a-z0-9_-]")


def planner_intents(rows: list[ParsedIntent], m: CapacityModel) -> Intents:
    """Parsed intents as the planner's arrays (every chain liquid: ``submit_batch`` sets the liquidity)."""
    n = len(rows)
    return Intents(
        kind=np.array([r.kind for r in rows], dtype=np.int8), work=np.array([r.work for r in rows], dtype=np.float32),
        amount=np.array([float(r.amount) for r in rows]),
        allowed=np.array([r.allowed for r in rows], dtype=bool).reshape(n, len(m)),
        liquidity=np.ones((n, len(m)), dtype=bool),
        max_fee_usd=np.array([r.max_fee_usd for r in rows], dtype=np.float32),
        max_latency_s=np.array([r.max_latency_s for r in rows], dtype=np.float32),
        origin=np.array([r.origin for r in rows], dtype=np.int16))
