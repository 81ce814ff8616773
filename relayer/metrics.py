"""In-process counters and gauges with labels, rendered in the Prometheus text format at ``/metrics``."""

from __future__ import annotations

import threading
from collections import defaultdict

_HELP = {
    "relayer_messages_indexed_total": "messages found dispatched on an origin at finality",
    "relayer_deliveries_total": "messages delivered on their destination",
    "relayer_failures_total": "failed delivery attempts by reason",
    "relayer_batches_submitted_total": "delivery transactions submitted",
    "relayer_gas_used_total": "gas used by confirmed delivery transactions",
    "relayer_queue_depth": "messages per destination and pipeline state",
    "relayer_chain_height": "latest height seen per chain",
    "relayer_chain_finalized_lag": "latest minus finalized height per chain",
    "relayer_chain_up": "1 when the chain's RPC answered the last health check",
    "relayer_chain_utilisation": "mean fraction of the block gas limit used over recent blocks",
    "relayer_chain_base_fee": "next block's base fee (smallest native unit per gas)",
    "relayer_reorg_detected_total": "origin histories that contradicted indexed final data (reorg deeper than finality)",
    "relayer_origin_halted": "1 while an origin is halted after a finality violation (operator action needed)",
    "validator_checkpoints_signed_total": "checkpoints signed per origin and validator",
    "validator_checkpoint_refused_total": "checkpoints not signed, by reason",
}


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
                        labels = ",".join(f'{k}="{v}"' for k, v in key)
                        out.append(f"{name}{{{labels}}} {value:g}" if labels else f"{name} {value:g}")
        return "\n".join(out) + "\n"
