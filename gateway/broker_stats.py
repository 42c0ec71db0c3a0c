"""The broker's own view of its queues, read from Mosquitto's ``$SYS`` topics.

Once the broker acknowledges a kiosk's event, the kiosk deletes it: from then on a full broker queue
is the only place an event can be lost. Mosquitto 2.0.11 publishes (every ``sys_interval`` s,
retained) the number of messages it holds and the number it dropped; the gateway subscribes to
them (QoS 0, outside the shared ingest subscription) so the operator sees a queue filling before it
drops, and an alert when it drops. Brokers that publish no ``$SYS`` (the embedded iotcore demo
broker, EMQX without its ``$SYS`` plugin) leave the values unknown: ``/metrics`` then shows no
broker gauges and ``age_s`` stays ``None``.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

log = logging.getLogger("motcua.gateway.broker")

# $SYS topic → our name. Checked on 2.0.11 with sys_interval 1 (docs/gateway.md lists all it sends).
SYS_TOPICS: dict[str, str] = {
    "$SYS/broker/store/messages/count": "stored_messages",
    "$SYS/broker/store/messages/bytes": "stored_bytes",
    "$SYS/broker/publish/messages/dropped": "dropped_messages",
    "$SYS/broker/clients/connected": "clients_connected",
    "$SYS/broker/clients/disconnected": "clients_disconnected",
    "$SYS/broker/heap/current": "heap_bytes",
}


@dataclass(frozen=True)
class BrokerSnapshot:
    values: dict[str, float]
    age_s: float | None  # seconds since the last $SYS value; None = the broker sent none


class BrokerStats:
    """Latest ``$SYS`` values (written on the paho thread, read by /metrics and the sweeper)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, float] = {}
        self._at: float | None = None
        self.unparsed = 0

    def on_sys(self, topic: str, payload: bytes) -> None:
        name = SYS_TOPICS.get(topic)
        if name is None:
            return
        try:
            value = float(payload.split(b" ", 1)[0])
        except ValueError:
            self.unparsed += 1
            log.warning("unreadable %s: %r", topic, payload[:50])
            return
        with self._lock:
            self._values[name] = value
            self._at = time.monotonic()

    def snapshot(self) -> BrokerSnapshot:
        with self._lock:
            age = None if self._at is None else time.monotonic() - self._at
            return BrokerSnapshot(dict(self._values), age)
