"""The admin API: ``/admin/v1/...``, for the daemon's operator only.

Who may call it: a request whose ``Authorization: Bearer KEY`` header carries one of ``admin.api_keys``, the admin
API's own keys (a routing API key is not one). Anyone else is refused before the route runs:
- no admin keys configured: 403 for every admin request (the admin API is off);
- no header, or a wrong key: 401 with ``WWW-Authenticate: Bearer``.

Keys are compared in constant time and never logged or echoed. Every refusal is counted in
``relayer_admin_requests_refused_total{reason}``.

    GET  /admin/v1/filters          relayer.allow / relayer.deny in force, when they were loaded, reloads so far
    POST /admin/v1/filters/reload   read them again from the config file, as SIGHUP does: 200 with the new lists and
                                    how many DROPPED(denied) messages they sent back to delivery; 400 naming the key
                                    when the file does not load or a rule does not compile (the old lists stay)
    GET  /admin/v1/messages/stuck?min_wait_s=&limit=
                                    undelivered messages waiting at least min_wait_s (default 300), dropped, or that
                                    failed at least once: their cause, status and substate (as GET /v1/messages/{id}
                                    gives them) and how long they have waited, longest first
    POST /admin/v1/messages/{id}/retry
                                    a dropped or waiting message back to delivery now, attempts reset
    POST /admin/v1/messages/{id}/execute   {"gas_limit": N}
                                    manual execution: deliver it now in a transaction of its own with N gas (a
                                    message dropped for gas_limit_exceeded, max_attempts, ..., or one waiting)
    POST /admin/v1/messages/{id}/drop   {"note": ...}
                                    an open message DROPPED(operator_dropped) with the note (409 once submitted,
                                    or while a processor holds it)
    GET  /admin/v1/routes/paused    the routes paused, with their notes
    POST /admin/v1/routes/{origin}/{destination}/pause   {"note": ...}
    POST /admin/v1/routes/{origin}/{destination}/resume
                                    a paused route's messages wait (route_paused, no attempt spent) until resumed;
                                    the pause is in the database: every instance sees it, a restart keeps it
    PUT  /admin/v1/integrators/{code}   {"payout_addresses": {chain: address}, "share": 0.2 | null}
                                    register an integrator code, or replace its registration: a payout address per
                                    chain (each in its chain's own format) and its share (null: router.integrator_fee_
                                    share); in the database, for every instance (router/integrators.py); 400 naming the
                                    field (payout_addresses.l1, share, code)
    GET  /admin/v1/integrators/{code}, GET /admin/v1/integrators
                                    one registration, every registration

Every action is logged (``admin_action``) with what it changed and counted in ``relayer_admin_actions_total``.
"""

from __future__ import annotations

import hmac
from typing import Any

import structlog
from fastapi import APIRouter, Depends, Header, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field

from config.errors import ConfigError
from relayer.api.daemon_view import DaemonView, ExecutionRefused
from relayer.api.schemas import HEX32, bad_input, message_status, message_view
from router.errors import BODY_ERRORS, ErrorBody, error_responses
from router.integrators import RegistrationError, check_registration_code
from router.rewards import IntegratorRewards

log = structlog.get_logger("relayer.api.admin")

_REFUSALS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "a valid admin key is required: Authorization: Bearer KEY "
                                             "(admin.api_keys)"},
    403: {"model": ErrorBody, "description": "the admin API is off: admin.api_keys is empty"},
}


_MESSAGE_ANSWERS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "bad input: a malformed message id, a note over 500 characters"},
    404: {"model": ErrorBody, "description": "no such message"},
    409: {"model": ErrorBody, "description": "not possible in the message's state (submitted, delivered, already "
                                             "dropped, or held by a processor right now)"},
}


class AdminKeys:
    """The ``Depends`` that admits a request with an admin key and refuses any other (401 / 403)."""

    def __init__(self, daemon: DaemonView) -> None:
        self._keys = [k.get_secret_value().encode() for k in daemon.settings.admin.api_keys]
        self._metrics = daemon.metrics

    async def __call__(self, authorization: str | None = Header(None)) -> None:
        if not self._keys:
            self._refuse("disabled")
            raise HTTPException(403, {"error": "the admin API is off: set admin.api_keys to use it"})
        scheme, _, token = (authorization or "").partition(" ")
        offered = token.strip().encode()
        # every key compared (no early exit), each in constant time: the answer's timing tells nothing of the keys
        matched = [hmac.compare_digest(offered, key) for key in self._keys]
        if scheme.lower() != "bearer" or not offered or not any(matched):
            self._refuse("missing_key" if not offered else "wrong_key")
            raise HTTPException(401, {"error": "a valid admin key is required: Authorization: Bearer KEY "
                                               "(admin.api_keys)"}, headers={"WWW-Authenticate": "Bearer"})

    def _refuse(self, reason: str) -> None:
        self._metrics.inc("relayer_admin_requests_refused_total", reason=reason)


class Note(BaseModel):
    note: str = Field("", max_length=500, description="why: kept with the message or the pause, and logged")


class Execution(BaseModel):
    gas_limit: int = Field(ge=21_000, le=100_000_000, description=(
        "gas for the delivery transaction of this one message (the destination's gas: EVM gas, Cosmos gas, Solana "
        "compute units), whatever relayer.max_gas_per_message says"))


def admin_routes(daemon: DaemonView) -> APIRouter:
    api = APIRouter(prefix="/admin/v1", dependencies=[Depends(AdminKeys(daemon))], tags=["admin"])
    _filter_routes(api, daemon)
    _message_routes(api, daemon)
    _execute_route(api, daemon)
    _route_routes(api, daemon)
    _integrator_routes(api, daemon)
    return api


def _acted(daemon: DaemonView, action: str, **what: Any) -> None:
    daemon.metrics.inc("relayer_admin_actions_total", action=action)
    log.info("admin_action", action=action, **what)


def _filter_routes(api: APIRouter, daemon: DaemonView) -> None:
    @api.get("/filters", responses=_REFUSALS)
    async def filters() -> dict[str, Any]:
        """relayer.allow and relayer.deny in force."""
        return daemon.message_filters()

    @api.post("/filters/reload", responses={**_REFUSALS, 400: {"model": ErrorBody, "description": (
        "the config file does not load, or a rule of relayer.allow / relayer.deny does not compile: detail names "
        "the key; the lists in force stay")}})
    async def reload_filters() -> dict[str, Any]:
        """Read relayer.allow and relayer.deny again from the daemon's config file (as SIGHUP does) and apply them;
        DROPPED(denied) messages the new lists allow go back to delivery."""
        try:
            return await daemon.reload_filters("admin_api")
        except ConfigError as exc:
            raise HTTPException(400, {"field": exc.path or "config", "error": exc.problem}) from None


def _message_routes(api: APIRouter, daemon: DaemonView) -> None:
    names = {c.domain: n for n, c in daemon.settings.chains.items()}

    @api.get("/messages/stuck", responses=_REFUSALS)
    async def stuck(min_wait_s: float = Query(300.0, ge=0, le=365 * 86_400),
                    limit: int = Query(100, ge=1, le=1000)) -> dict[str, Any]:
        """Undelivered messages that waited at least min_wait_s, were dropped, or failed at least once."""
        found = await daemon.store.aio.stuck_messages(min_wait_s, limit)
        return {"messages": [{**vars(m), "origin": names.get(m.origin, str(m.origin)),
                              "destination": names.get(m.destination, str(m.destination)),
                              **dict(zip(("status", "substate"), message_status(m.state, m.reason), strict=True))}
                             for m in found]}

    def checked(key: str) -> str:
        if not HEX32.match(key):
            raise bad_input("id", f"{key!r} is not a 0x-prefixed 32-byte hex message id")
        return key.lower()

    @api.post("/messages/{key}/retry", responses={**_REFUSALS, **_MESSAGE_ANSWERS})
    async def retry(key: str) -> dict[str, Any]:
        """A dropped or waiting message goes back to delivery now, its attempts reset."""
        rec = await daemon.store.aio.retry_now(checked(key))
        if rec is None:
            raise HTTPException(404, {"error": f"no message {key}"})
        if rec.state in ("SUBMITTED", "DELIVERED"):
            raise HTTPException(409, {"error": f"message {key} is {rec.state}: nothing to retry"})
        daemon.destinations_changed()
        _acted(daemon, "retry", message=rec.id)
        return message_view(rec, names)

    @api.post("/messages/{key}/drop", responses={**error_responses(*BODY_ERRORS), **_REFUSALS, **_MESSAGE_ANSWERS})
    async def drop(key: str, body: Note) -> dict[str, Any]:
        """An open message (not yet submitted) is DROPPED(operator_dropped) with the note."""
        rec, dropped = await daemon.store.aio.operator_drop(checked(key), body.note)
        if rec is None:
            raise HTTPException(404, {"error": f"no message {key}"})
        if not dropped:
            raise HTTPException(409, {"error": f"message {key} is {rec.state}" + (
                ", held by a processor right now: try again in a moment" if rec.state in ("DISPATCHED", "ATTESTED")
                else ": only an open message can be dropped")})
        _acted(daemon, "drop", message=rec.id, note=body.note)
        return message_view(rec, names)


def _execute_route(api: APIRouter, daemon: DaemonView) -> None:
    @api.post("/messages/{key}/execute", responses={**error_responses(*BODY_ERRORS), **_REFUSALS, **_MESSAGE_ANSWERS,
                                                    503: {"model": ErrorBody, "description": (
                                                        "the destination did not take the transaction")}})
    async def execute(key: str, body: Execution) -> dict[str, Any]:
        """Manual execution (CCIP's): deliver this message now, in a transaction of its own with ``gas_limit`` gas: a
        message DROPPED(gas_limit_exceeded), max_attempts, operator_dropped or denied, or one waiting. The answer is
        the transaction sent; the message ends DELIVERED once it is confirmed (409: delivered already, in flight, held
        by a processor right now, origin reorged, or no quorum checkpoint covers it yet)."""
        if not HEX32.match(key):
            raise bad_input("id", f"{key!r} is not a 0x-prefixed 32-byte hex message id")
        try:
            done = await daemon.execute_message(key.lower(), body.gas_limit)
        except ExecutionRefused as exc:
            raise HTTPException(exc.status, {"error": str(exc)}) from None
        _acted(daemon, "execute", message=done["id"], gas_limit=body.gas_limit, tx=done["tx"])
        return done


def _route_routes(api: APIRouter, daemon: DaemonView) -> None:
    chains = daemon.settings.chains

    def route(origin: str, destination: str) -> tuple[int, int]:
        for field, name in (("origin", origin), ("destination", destination)):
            if name not in chains:
                raise bad_input(field, f"{name!r} is not a configured chain ({', '.join(chains)})")
        return chains[origin].domain, chains[destination].domain

    @api.get("/routes/paused", responses=_REFUSALS)
    async def paused() -> dict[str, Any]:
        names = {c.domain: n for n, c in chains.items()}
        found = await daemon.store.aio.paused_routes()
        return {"routes": [{"origin": names.get(o, str(o)), "destination": names.get(d, str(d)), "note": note}
                           for (o, d), note in sorted(found.items())]}

    @api.post("/routes/{origin}/{destination}/pause", responses={**error_responses(*BODY_ERRORS), **_REFUSALS,
                                                                 400: {"model": ErrorBody, "description": (
                                                                     "bad input: an unknown chain, a note over 500 "
                                                                     "characters")}})
    async def pause(origin: str, destination: str, body: Note) -> dict[str, Any]:
        """The route's messages wait (route_paused, no attempt spent) until it is resumed."""
        o, d = route(origin, destination)
        await daemon.store.aio.pause_route(o, d, body.note)
        daemon.destinations_changed()
        _acted(daemon, "pause_route", origin=origin, destination=destination, note=body.note)
        return {"origin": origin, "destination": destination, "paused": True, "note": body.note}

    @api.post("/routes/{origin}/{destination}/resume", responses={**_REFUSALS, 400: {"model": ErrorBody,
                                                                                    "description": "unknown chain"}})
    async def resume(origin: str, destination: str) -> dict[str, Any]:
        """The route's waiting messages are delivered again."""
        o, d = route(origin, destination)
        was = await daemon.store.aio.resume_route(o, d)
        daemon.destinations_changed()
        _acted(daemon, "resume_route", origin=origin, destination=destination, was_paused=was)
        return {"origin": origin, "destination": destination, "paused": False, "was_paused": was}


class Registration(BaseModel):
    """An integrator's registration (router/integrators.py): where its rewards are paid, and its share."""

    model_config = ConfigDict(extra="forbid")

    payout_addresses: dict[str, str] = Field(description=(
        "chain -> payout address in that chain's own format (EVM 0x-hex, Solana base58, Cosmos bech32); rewards are "
        "paid there in the chain's smallest native units (router/payouts.py)"))
    share: float | None = Field(None, description=(
        "share of the fees its intents paid, 0-1, at most 6 decimal places; null: router.integrator_fee_share"))


_INTEGRATOR_ANSWERS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "bad input, naming the field: code, payout_addresses.CHAIN, share"},
    503: {"model": ErrorBody, "description": "the routing API's intents are not enabled on this daemon"},
}


def _integrator_routes(api: APIRouter, daemon: DaemonView) -> None:
    def rewards() -> IntegratorRewards:
        found = daemon.intents.rewards if daemon.intents is not None else None
        if found is None:
            raise HTTPException(503, {"error": "the routing API's intents are not enabled on this daemon"})
        return found

    @api.put("/integrators/{code}", responses={**error_responses(*BODY_ERRORS), **_REFUSALS, **_INTEGRATOR_ANSWERS})
    async def register(code: str, body: Registration) -> dict[str, Any]:
        """Register an integrator code, or replace its registration whole: a payout address per chain and its share.
        Its rewards are then paid on chain every router.integrator_payout_interval_s (router/payouts.py)."""
        try:
            view, created = await rewards().register(code, body.model_dump())
        except RegistrationError as exc:
            raise bad_input(exc.field, exc.error) from None
        _acted(daemon, "register_integrator", code=code, created=created, share=view["share"],
               payout_addresses=view["payout_addresses"])
        return {"integrator": view, "created": created}

    @api.get("/integrators/{code}", responses={**_REFUSALS, **_INTEGRATOR_ANSWERS,
                                                404: {"model": ErrorBody, "description": "not registered"}})
    async def integrator(code: str) -> dict[str, Any]:
        """One integrator's registration."""
        try:
            check_registration_code(code)
        except RegistrationError as exc:
            raise bad_input(exc.field, exc.error) from None
        found = await rewards().get(code)
        if found is None:
            raise HTTPException(404, {"error": f"integrator {code!r} is not registered"})
        return found

    @api.get("/integrators", responses={**_REFUSALS, 503: _INTEGRATOR_ANSWERS[503]})
    async def integrators() -> dict[str, Any]:
        """Every registered integrator."""
        return {"integrators": await rewards().all()}
