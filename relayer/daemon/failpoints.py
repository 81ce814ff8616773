"""Fault injection for the fault suite. TEST-ONLY: never set ``RELAYER_FAILPOINTS`` in production.

A failpoint is a named place between two steps of the pipeline. It does nothing unless the environment
variable ``RELAYER_FAILPOINTS`` names it when the process starts, e.g.::

    RELAYER_FAILPOINTS="before_confirm=hang"        # that step of the pipeline stops there, forever
    RELAYER_FAILPOINTS="after_claim=exit"           # the process dies there at once (like kill -9)
    RELAYER_FAILPOINTS="@/tmp/points"               # the same syntax, read from that file at every point:
                                                    # a test arms points once the daemon has caught up
    RELAYER_FAILPOINTS="cosign_once_rule=off"       # a check switched off (``switched_off``)

so a test can stop a daemon in a chosen pipeline state, then ``kill -9`` it. When the variable is unset the
call sites test one module constant (``if failpoints.ENABLED:``) and nothing else runs.

Points (``relayer/pipeline/processor.py``):
    after_claim       messages claimed (leased), still DISPATCHED
    after_attest      a quorum checkpoint attached: ATTESTED, not yet submitted
    after_submit      delivery tx sent and recorded: SUBMITTED (the confirm loop goes on)
    before_confirm    following a delivery tx: SUBMITTED, never confirmed by us
    after_confirmed   the delivery tx is confirmed on chain, the store not yet told (still SUBMITTED)

Points (``router/lanes.py``, operator-signed intents):
    intent_before_sign      planned intents read by their lane, nothing signed
    intent_after_sign       signed transactions stored (write-ahead), none sent
    intent_after_broadcast  sent, not yet recorded as submitted
    intent_before_settle    mined on chain, the store not yet told

Switches (action ``off`` only):
    cosign_once_rule  the co-sign service's at-most-once rule (``relayer/pipeline/cosign.py``) is skipped, as if it were
                      fooled: the adversarial suite shows the accountant alone stops a double payout
    claim             this instance claims no messages (the others on its database do): a scale-out test chooses which
                      instance holds the deliveries it then kills
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import structlog

from config.errors import ConfigError

log = structlog.get_logger("relayer.daemon.failpoints")

POINTS = frozenset({"after_claim", "after_attest", "after_submit", "before_confirm", "after_confirmed",
                    "intent_before_sign", "intent_after_sign", "intent_after_broadcast", "intent_before_settle"})
ACTIONS = frozenset({"hang", "exit"})
SWITCHES = frozenset({"cosign_once_rule", "claim"})
ENV = "RELAYER_FAILPOINTS"


def parse(spec: str) -> dict[str, str]:
    """``"point=action,point=action"`` -> {point: action}; unknown names are a ``ConfigError``."""
    armed: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        point, sep, action = item.partition("=")
        if not sep or not ((point in POINTS and action in ACTIONS) or (point in SWITCHES and action == "off")):
            raise ConfigError(ENV, f"{item!r}: expected POINT=ACTION with POINT in {sorted(POINTS)} "
                                   f"and ACTION in {sorted(ACTIONS)}, or SWITCH=off with SWITCH in {sorted(SWITCHES)}")
        armed[point] = action
    return armed


_SPEC = os.environ.get(ENV, "")
_FILE = Path(_SPEC[1:]) if _SPEC.startswith("@") else None
ARMED: dict[str, str] = {} if _FILE is not None else parse(_SPEC)
ENABLED = bool(ARMED) or _FILE is not None


def armed() -> dict[str, str]:
    if _FILE is None:
        return ARMED
    try:
        return parse(_FILE.read_text())
    except FileNotFoundError:
        return {}


async def reached(point: str) -> None:
    """Run the action armed at ``point``, if any (call only under ``if failpoints.ENABLED``)."""
    action = armed().get(point)
    if action is None:
        return
    log.warning("failpoint_reached", point=point, action=action)
    if action == "exit":
        os._exit(137)
    await asyncio.Event().wait()  # hang: this step never goes on; the rest of the process does


def switched_off(switch: str) -> bool:
    """Whether the check ``switch`` is armed off (call only under ``if failpoints.ENABLED``); logged every time."""
    off = armed().get(switch) == "off"
    if off:
        log.warning("failpoint_reached", point=switch, action="off")
    return off
