"""In-process counters and gauges with labels, rendered in the Prometheus text format at ``/metrics``.

Every family has a HELP line (``_HELP``). Values are written exactly (``repr`` of the float, integers without
an exponent), so a height of 12,345,678 or a balance of 9999.998765432 survives the round trip.

The number of series is bounded whatever callers pass, so no request can grow ``/metrics``:

* a label given a closed set of values (``close_label``: the daemon closes ``chain``, ``origin``, ``destination``
  to the configured chain names and ``validator`` to the configured validator addresses) records any other value
  as ``unknown`` (a co-sign request naming a made-up chain used to add a series per request);
* a family holds at most ``max_series_per_family`` series; a new one past that is not recorded and counted in
  ``relayer_metric_series_dropped_total{family}``.
"""

from __future__ import annotations

import math
import threading
from collections import defaultdict
from collections.abc import Iterable

_HELP = {
    # chains (health job, every 2 s)
    "relayer_chain_height": "latest height seen per chain",
    "relayer_chain_finalized_lag": "latest minus finalized height per chain (blocks or slots)",
    "relayer_chain_up": "1 when the chain's RPC answered the last health check, else 0",
    "relayer_rpc_endpoint_up": "1 unless the endpoint's last request failed (endpoint: 0 is rpc_url, then "
                               "fallback_rpc_urls in order; Cosmos: then rest_url and fallback_rest_urls)",
    "relayer_rpc_quorum_disagreements_total": "reads on which an RPC endpoint was outvoted by the quorum of the "
                                              "others (rpc_mode quorum), by chain, JSON-RPC method and endpoint",
    "relayer_chain_utilisation": "mean fraction of the block gas limit used over recent blocks (eth_feeHistory)",
    "relayer_chain_base_fee": "next block's base fee (smallest native unit per gas)",
    # instances sharing one store
    "relayer_handovers_total": "dead or stopped instances whose work this instance took over",
    "relayer_messages_handed_over_total": "messages taken over from dead or stopped instances",
    "relayer_instances_alive": "instances sharing the store whose heartbeat is within relayer.instance_lease_s",
    "relayer_store_up": "1 when the last heartbeat reached the store",
    "relayer_keeper_instance": "1 on the instance that runs the keeper jobs (gas oracles, bridge queue releases, pool "
                               "netting) for every instance of the store, else 0",
    "relayer_store_errors_total": "store operations that failed (database down or restarting), "
                                  "by reason and where (heartbeat or a destination)",
    # pipeline
    "relayer_messages_indexed_total": "messages found dispatched on an origin at finality",
    "relayer_queue_depth": "messages per destination and pipeline state (0 once a state empties)",
    "relayer_messages_waiting": "undelivered messages by their last reason (why they wait, or were dropped)",
    "relayer_deliveries_total": "messages delivered on their destination",
    "relayer_messages_denied_total": "messages DROPPED(denied) by relayer.allow / relayer.deny, by destination",
    "relayer_message_filter_reloads_total": "reloads of relayer.allow / relayer.deny (SIGHUP or the admin API), by "
                                            "result: ok, or invalid (the old lists stay)",
    "relayer_message_filter_rules": "rules in force, by list (allow, deny)",
    "relayer_admin_requests_refused_total": "admin API requests refused, by reason: disabled (no admin.api_keys), "
                                            "missing_key, wrong_key",
    "relayer_messages_rate_limited_total": "messages held back by relayer.route_limits or by the validators' "
                                           "validator.payout_limits (each time one waits), by destination",
    "relayer_admin_actions_total": "actions taken through the admin API, by action (retry, drop, execute, "
                                   "pause_route, resume_route)",
    "relayer_messages_underpaid_total": "messages held back because they paid less than relayer.gas_payment asks "
                                        "(each time one is looked at), by destination",
    "relayer_gas_oracle_age_seconds": "seconds since the origin's GasOracle entry for the destination was written "
                                      "(-1: never)",
    "relayer_gas_oracle_stale": "1 while the origin's GasOracle entry for the destination is older than "
                                "relayer.gas_oracle.max_age_s (or was never written), else 0",
    "relayer_gas_oracle_updates_total": "gas oracle upkeep runs per origin, by result (written, failed)",
    "relayer_route_fees_collected_usd": "what senders paid the origin's paymaster for the route's messages, in USD "
                                        "at router.native_usd",
    "relayer_route_gas_spent_usd": "fees of the route's delivery transactions, in USD at router.native_usd",
    "relayer_route_profit_usd": "fees collected minus gas spent on the route, in USD",
    "relayer_bridge_queued_transfers": "inbound token transfers the chain's TokenBridge queued for want of "
                                       "rate-limit room, still waiting",
    "relayer_bridge_queued_released_total": "queued inbound token transfers this relayer paid out (releaseQueued)",
    # liquidity pools (the netting keeper)
    "relayer_pool_liquidity_tokens": "a liquidity pool's balance of its token, in whole tokens",
    "relayer_pool_owed_tokens": "what a liquidity pool owes in deferred payouts, in whole tokens",
    "relayer_pool_deferred_payouts": "payouts a liquidity pool could not cover yet (they wait for its settlement)",
    "relayer_pool_settlements_waiting": "settlements a chain's pool received and has not applied yet",
    "relayer_pool_settlements_sent_total": "epoch settlements this relayer sent from a chain's pool",
    "relayer_pool_settlements_completed_total": "settlements this relayer asked a chain's pool to apply",
    "relayer_pool_payouts_released_total": "deferred pool payouts this relayer released",
    "relayer_messages_reopened_total": "DROPPED(denied) messages a reloaded list allows, sent back to delivery",
    "relayer_failures_total": "failed or deferred delivery attempts by destination and reason (FailureReason)",
    "relayer_batches_submitted_total": "delivery transactions submitted",
    "relayer_gas_used_total": "gas used by mined delivery transactions (reverted ones included)",
    "relayer_fee_paid_total": "fee paid by mined delivery transactions (reverted ones included), in native tokens "
                              "(ETH, SOL, the fee denom's token), from their receipts",
    # the relayer's wallets (health job)
    "relayer_wallet_balance": "native balance of the account paying deliveries on a chain, in native tokens",
    "relayer_wallet_balance_low": "1 when the paying account's balance is below the chain's min_wallet_balance",
    "relayer_wallet_min_balance": "configured min_wallet_balance per chain, in native tokens",
    # origin history (indexer)
    "relayer_reorg_detected_total": "origin histories that contradicted indexed final data (reorg deeper than "
                                    "finality)",
    "relayer_origin_halted": "1 while an origin is halted after a finality violation (operator action needed)",
    # rollups that settle on an L1 (health job)
    "relayer_rollup_output_lag_blocks": "rollup blocks between the rollup's tip and the newest output root its "
                                        "proposer posted on the L1 (grows while the proposer is down)",
    "relayer_rollup_output_age_seconds": "age of the newest output root posted on the L1, in seconds (-1 before "
                                         "the first)",
    # validators as the relayer sees them (CheckpointCollector)
    "relayer_validator_up": "1 when the validator answered the relayer's last checkpoint request, else 0",
    "relayer_checkpoint_fetch_failures_total": "checkpoint requests to a validator that failed, by reason",
    "relayer_validator_latest_index": "latest checkpoint index a validator serves to the relayer, per origin",
    "relayer_checkpoint_quorum": "1 when the last collection for an origin found a quorum of valid signatures",
    # validators (their own process)
    "validator_checkpoints_signed_total": "checkpoints signed per origin and validator",
    "validator_latest_signed_index": "highest checkpoint index signed per origin and validator",
    "validator_checkpoint_refused_total": "checkpoints not signed, by reason",
    "validator_single_rpc_trust": "1 when the validator attests the chain on one RPC node's word (trust_single_rpc or "
                                  "verify_inclusion = false), 0 when a light client or agreeing endpoints check it",
    "validator_light_client_finalized_height": "execution height the origin's sync-committee light client finalized "
                                               "(claims above it wait)",
    "validator_cosigned_total": "Solana/Cosmos deliveries co-signed per chain and validator",
    "validator_cosign_refused_total": "co-sign requests refused, by chain and reason",
    "validator_cosign_rate_limited_total": "co-sign requests refused because a token payout is over the room of a "
                                           "validator.payout_limits bucket, by destination chain",
    "validator_payout_limit_room_home_units": "room of a validator.payout_limits bucket when last read or moved, in "
                                              "the token's home units, by destination chain, remote, token and "
                                              "validator",
    # solvency audit (periodic job, audit.interval_s); amounts in the home token's smallest units
    "relayer_audit_locked": "tokens locked on the token's home chain (TokenBridge balance or vault), in the home "
                            "token's smallest units",
    "relayer_audit_outstanding": "wrapped supply plus escrow paid out on every other chain, in the home token's "
                                 "smallest units",
    "relayer_audit_shortfall": "outstanding minus locked when positive (unbacked wrapped tokens; confirmed by two "
                               "readings), in the home token's smallest units; 0 when backed",
    "relayer_audit_runs_total": "audits run by the daemon, by result (backed, shortfall, failed)",
    "relayer_audit_up": "1 when the last audit read every chain, 0 when a chain could not be read (audit_failed)",
    # the validator's global accountant (relayer/pipeline/accountant.py)
    "validator_accountant_refused_total": "token transfers not attested because they would pay out more than the "
                                          "accountant holds for them (origin; reason exceeds_outstanding or "
                                          "exceeds_locked), counted once per transfer",
    "validator_accountant_cosign_refused_total": "co-sign requests the accountant refused, by destination chain and "
                                                 "reason (already_paid, payout_pending, exceeds_attested, ...)",
    "validator_accountant_blocked": "1 while an origin's checkpoints stop before a token transfer the accountant does "
                                    "not admit (refused, or waiting for another origin to be attested), else 0",
    "validator_accountant_outstanding": "per token and non-home chain: attested transfers in minus attested transfers "
                                        "out, in the token's home units (what may circulate there)",
    "validator_accountant_locked": "per token, at its home chain: attested transfers out minus attested transfers in, "
                                   "in home units (what the home bridge must hold)",
    "validator_requests_refused_total": "requests to the validator endpoints (cosign, checkpoint) refused before any "
                                        "check of their content, by endpoint and reason: missing, malformed, "
                                        "stale_timestamp, unknown_relayer, body_mismatch, bad_signature, replayed, "
                                        "rate_limited (relayer.api.relayer_auth)",
    "validator_requests_admitted_total": "requests to the validator endpoints admitted, by endpoint and client (an "
                                         "allow-listed relayer's address, or anonymous)",
    # router
    "router_chain_utilisation": "recent use of a chain (everyone's, ours included) as a fraction of its fee-market "
                                "target, from the capacity model (above 1: over target)",
    "router_chain_spare_transfers_per_second": "transfers per second the router may still add to a chain at its "
                                               "target (0 when drained)",
    "router_intents_refused_total": "routing API requests refused before anything was stored or sent, by reason "
                                    "(rate_limit, value_limit, call_not_allowed, unsigned_full, claim_refused)",
    "router_operator_api_unauthenticated": "1 when the routing API lets callers without an API key spend the operator "
                                           "accounts (router.api_keys empty; allowed on a loopback-only api.url)",
    "router_lane_transactions_repriced_total": "operator lane transactions re-signed at their nonce with bumped fees "
                                               "because the base fee outgrew their max fee, per chain",
    "router_lane_broadcasts_refused_total": "operator lane transactions the node refused (not for their nonce): the "
                                            "lane's later nonces wait behind them until it takes them, per chain",
    "router_lane_blocked": "1 while an operator lane waits on a transaction its node refuses (the account gets no new "
                           "intents meanwhile), per chain and account; 0 once the node takes it",
    # the HTTP front (relayer.api.http_front, relayer.api.request_guard)
    "relayer_api_refused_total": "requests and connections the HTTP front refused, by reason (a cap's api.* key, "
                                 "body_too_large, json_depth, content_type, not_utf8, header_timeout, body_timeout...)",
    "relayer_api_connections": "open HTTP connections admitted",
    "relayer_api_requests_in_flight": "HTTP requests being answered (open event streams included)",
    "relayer_api_streams": "open server-sent event streams",
    "relayer_python_recursion_limit": "the process's Python recursion limit (relayer.cli pins it to the default, 1000)",
    "relayer_metric_series_dropped_total": "new series not recorded because their family was at its series cap",
    # the event loops (relayer.daemon.loop_lag)
    "relayer_event_loop_lag_seconds": "how late a 100 ms timer fired on an event loop (relay or api): time the loop "
                                      "was blocked by synchronous work",
    "relayer_event_loop_lag_max_seconds": "longest event loop stall seen since start, per loop",
}

# bucket upper bounds (seconds or the family's unit) of each histogram family
_BUCKETS = {
    "relayer_event_loop_lag_seconds": (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
}

UNKNOWN = "unknown"
DEFAULT_MAX_SERIES_PER_FAMILY = 2000


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _format(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 2**63:
        return str(int(value))
    return repr(float(value))


class _Histogram:
    """Cumulative bucket counts, sum and count of one histogram series."""

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * len(bounds)
        self.total = 0.0
        self.count = 0

    def add(self, value: float) -> None:
        for i, bound in enumerate(self.bounds):
            if value <= bound:
                self.counts[i] += 1
        self.total += value
        self.count += 1

    def render(self, name: str, key: tuple[tuple[str, str], ...]) -> list[str]:
        labels = "".join(f'{k}="{_escape(v)}",' for k, v in key)
        lines = [f'{name}_bucket{{{labels}le="{_format(b)}"}} {c}'
                 for b, c in zip(self.bounds, self.counts, strict=True)]
        lines.append(f'{name}_bucket{{{labels}le="+Inf"}} {self.count}')
        plain = labels.rstrip(",")
        suffix = f"{{{plain}}}" if plain else ""
        return [*lines, f"{name}_sum{suffix} {_format(self.total)}", f"{name}_count{suffix} {self.count}"]


class Metrics:
    def __init__(self, *, max_series_per_family: int = DEFAULT_MAX_SERIES_PER_FAMILY) -> None:
        self._counters: dict[str, dict[tuple[tuple[str, str], ...], float]] = defaultdict(dict)
        self._gauges: dict[str, dict[tuple[tuple[str, str], ...], float]] = defaultdict(dict)
        self._histograms: dict[str, dict[tuple[tuple[str, str], ...], _Histogram]] = defaultdict(dict)
        self._lock = threading.Lock()
        self._closed: dict[str, frozenset[str]] = {}
        self.max_series_per_family = max_series_per_family

    def close_label(self, label: str, values: Iterable[object]) -> None:
        """From now on label ``label`` takes only ``values`` (compared as strings); any other value is recorded as
        ``unknown``. Closing it again with more values widens the set."""
        with self._lock:
            self._closed[label] = self._closed.get(label, frozenset()) | {str(v) for v in values}

    def _key(self, labels: dict[str, object]) -> tuple[tuple[str, str], ...]:
        out = []
        for k, v in labels.items():
            text = str(v)
            allowed = self._closed.get(k)
            out.append((k, text if allowed is None or text in allowed else UNKNOWN))
        return tuple(sorted(out))

    def _room(self, name: str, series: dict[tuple[tuple[str, str], ...], float],
              key: tuple[tuple[str, str], ...]) -> bool:
        """Whether ``key`` may be recorded in ``series`` (held lock): it exists, or the family is under its cap."""
        if key in series or len(series) < self.max_series_per_family:
            return True
        dropped = self._counters["relayer_metric_series_dropped_total"]
        marker = (("family", name),)
        dropped[marker] = dropped.get(marker, 0.0) + 1
        return False

    def inc(self, name: str, amount: float = 1.0, **labels: object) -> None:
        key = self._key(labels)
        with self._lock:
            series = self._counters[name]
            if self._room(name, series, key):
                series[key] = series.get(key, 0.0) + amount

    def set(self, name: str, value: float, **labels: object) -> None:
        key = self._key(labels)
        with self._lock:
            series = self._gauges[name]
            if self._room(name, series, key):
                series[key] = value

    def observe(self, name: str, value: float, **labels: object) -> None:
        """Add ``value`` to histogram ``name`` (its buckets are in ``_BUCKETS``)."""
        key = self._key(labels)
        with self._lock:
            series = self._histograms[name]
            if key in series or len(series) < self.max_series_per_family:
                series.setdefault(key, _Histogram(_BUCKETS[name])).add(value)

    def replace(self, name: str, series: dict[tuple[tuple[str, str], ...], float]) -> None:
        """Set a gauge family to exactly ``series`` (label tuples as ``set`` builds them): series not given vanish."""
        with self._lock:
            self._gauges[name] = {tuple(sorted(k)): v for k, v in series.items()}

    def value(self, name: str, **labels: object) -> float:
        key = self._key(labels)
        return self._counters.get(name, {}).get(key, self._gauges.get(name, {}).get(key, 0.0))

    def render(self) -> str:
        out: list[str] = []
        with self._lock:
            for kind, families in (("counter", self._counters), ("gauge", self._gauges)):
                for name in sorted(families):
                    out.append(f"# HELP {name} {_HELP.get(name, name)}")
                    out.append(f"# TYPE {name} {kind}")
                    for key, value in sorted(families[name].items()):
                        labels = ",".join(f'{k}="{_escape(v)}"' for k, v in key)
                        out.append(f"{name}{{{labels}}} {_format(value)}" if labels else f"{name} {_format(value)}")
            for name in sorted(self._histograms):
                out.append(f"# HELP {name} {_HELP.get(name, name)}")
                out.append(f"# TYPE {name} histogram")
                for key, histogram in sorted(self._histograms[name].items()):
                    out.extend(histogram.render(name, key))
        return "\n".join(out) + "\n"
