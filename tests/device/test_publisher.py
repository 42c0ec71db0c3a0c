"""Publisher against a real Mosquitto: more than 65,535 queued events, none lost, in seq order.

paho-mqtt 2.2 silently loses QoS 1 messages past 65,535 unacknowledged (PLATFORM-NOTES); the
publisher caps in-flight messages, so a large backlog (a long network outage) drains completely.
"""

from __future__ import annotations

import queue
import threading
import time
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from contract.payloads import EventType
from device.clock import FakeClock
from device.config import BrokerConfig
from device.events import EventBuilder
from device.publisher import Publisher
from device.store import Store

N = 70_000


@pytest.mark.slow
def test_backlog_beyond_paho_message_ids_drains_in_order(tmp_path, mosquitto):
    clock = FakeClock(datetime(2026, 11, 30, 9, tzinfo=UTC))
    store = Store(tmp_path / "k.db", 1 << 30)
    builder = EventBuilder("kiosk-bulk", "LC-TEST", clock)
    data = {"service_day": "2026-11-30", "discarded_waiting": 0, "reason": "bulk"}
    with store.tx() as cur:
        for _ in range(N):
            store.append_event(cur, EventType.QUEUE_RESET, builder.builder(EventType.QUEUE_RESET, data))
    got: list[int] = []
    done = threading.Event()

    def on_message(c, u, msg) -> None:
        seq = int(msg.payload.split(b'"seq":', 1)[1].split(b",", 1)[0])
        got.append(seq)
        if len(got) >= N:
            done.set()

    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bulk-sub")
    sub.on_message = on_message
    subscribed = threading.Event()
    sub.on_subscribe = lambda *a: subscribed.set()
    sub.connect("127.0.0.1", mosquitto.port)
    sub.subscribe("motcua/v1/LC-TEST/kiosk-bulk/events", qos=1)
    sub.loop_start()
    assert subscribed.wait(30)
    pub = Publisher(
        BrokerConfig(url=mosquitto.url),
        "kiosk-bulk",
        "LC-TEST",
        store,
        builder,
        lambda: b"{}",
        3600,
        queue.Queue(),
    )
    pub.start()
    try:
        end = time.monotonic() + 400
        while not done.is_set() and time.monotonic() < end:
            done.wait(1)
        assert pub.wait_drained(60), f"outbox still holds {store.outbox_depth()}"
    finally:
        pub.stop()
        sub.loop_stop()
    first = []
    seen = set()
    for s in got:
        if s not in seen:
            seen.add(s)
            first.append(s)
    assert first == list(range(1, N + 1))
    assert pub.acked >= N
