"""In-process counters and gauges with labels, rendered in the Prometheus text format at ``/metrics``.

Every family has a HELP line (``_HELP``). Values are written exactly (``repr`` of the float, integers without
an exponent), so a height of 12,345,678 or a balance of 9999.998765432 survives the round trip.
"""

from __future__ import annotations

import math
import threading
from collections import defaultdict

_HELP = {
    # chains (health job, every 2 s)
    "relayer_chain_height": "latest height seen per chain",
    "relayer_chain_finalized_lag": "latest minus finalized height per chain (blocks or slots)",
    "relayer_chain_up": "1 when the chain's RPC answered the last health check, else 0",
    "relayer_chain_utilisation": "mean fraction of the block gas limit used over recent blocks (eth_feeHistory)",
    "relayer_chain_base_fee": "next block's base fee (smallest native unit per gas)",
    # instances sharing one store
    "relayer_handovers_total": "dead or stopped instances whose work this instance took over",
    "relayer_messages_handed_over_total": "messages taken over from dead or stopped instances",
    "relayer_instances_alive": "instances sharing the store whose heartbeat is within relayer.instance_lease_s",
    "relayer_store_up": "1 when the last heartbeat reached the store",
    "relayer_store_errors_total": "store operations that failed (database down or restarting), by reason and where (heartbeat or a destination)",
    # pipeline
    "relayer_messages_indexed_total": "messages found dispatched on an origin at finality",
    "relayer_queue_depth": "messages per destination and pipeline state (0 once a state empties)",
    "relayer_messages_waiting": "undelivered messages by their last reason (why they wait, or were dropped)",
    "relayer_deliveries_total": "messages delivered on their destination",
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
    "relayer_reorg_detected_total": "origin histories that contradicted indexed final data (reorg deeper than finality)",
    "relayer_origin_halted": "1 while an origin is halted after a finality violation (operator action needed)",
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
    # router
    "router_chain_utilisation": "recent use of a chain (everyone's, ours included) as a fraction of its fee-market "
                                "target, from the capacity model (above 1: over target)",
    "router_chain_spare_transfers_per_s": "transfers per second the router may still add to a chain at its target "
                                          "(0 when drained)",
}


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


class Metrics:
    def __init__(self) -> None:
        self._counters: dict[str, dict[tuple[tuple[str, str], ...], float]] = defaultdict(dict)
        self._gauges: dict[str, dict[tuple[tuple[str, str], ...], float]] = defaultdict(dict)
        self._lock = threading.Lock()

    def inc(self, name: str, amount: float = 1.0, **labels: object) -> None:
        key = tuple(sorted((k, str(v)) for k, v in labels.items()))
        with self._lock:
            series = self._counters[name]
            series[key] = series.get(key, 0.0) + amount

    def set(self, name: str, value: float, **labels: object) -> None:
        key = tuple(sorted((k, str(v)) for k, v in labels.items()))
        with self._lock:
            self._gauges[name][key] = value

    def replace(self, name: str, series: dict[tuple[tuple[str, str], ...], float]) -> None:
        """Set a gauge family to exactly ``series`` (label tuples as ``set`` builds them): series not given vanish."""
        with self._lock:
            self._gauges[name] = {tuple(sorted(k)): v for k, v in series.items()}

    def value(self, name: str, **labels: object) -> float:
        key = tuple(sorted((k, str(v)) for k, v in labels.items()))
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
        return "\n".join(out) + "\n"
