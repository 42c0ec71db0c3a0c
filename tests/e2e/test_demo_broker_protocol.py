"""The demo's embedded broker (iotcore 0.4.0 = rumqttd 0.20) and the kiosk's MQTT version.

The kiosk speaks MQTT 5 by default, to see a broker's refusal (device/publisher.py). rumqttd as
iotcore starts it has no MQTT 5 listener: it drops an MQTT 5 CONNECT. So the demo writes
``[broker] protocol = "3.1.1"`` for its embedded broker, and the kiosk's publisher delivers over it.
If a later iotcore accepts MQTT 5, the first test fails and the demo can drop the 3.1.1 line.
"""

from __future__ import annotations

import queue
import threading
import tomllib
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from contract.payloads import EventType
from demo.run import kiosk_config
from device.clock import FakeClock
from device.config import BrokerConfig, load_config
from device.events import EventBuilder
from device.publisher import Publisher
from device.store import Store
from tests.support.wait import wait_for


def test_embedded_broker_refuses_mqtt5(iotcore_port) -> None:
    seen: list[str] = []
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="probe-v5", protocol=mqtt.MQTTv5)
    c.on_connect = lambda cl, u, f, rc, p: seen.append(f"connack {rc}")
    c.on_disconnect = lambda cl, u, f, rc, p: seen.append(f"disconnect {rc}")
    c.connect("127.0.0.1", iotcore_port)
    c.loop_start()
    try:
        wait_for(lambda: seen, 20, "an answer to the MQTT 5 CONNECT")
    finally:
        c.loop_stop()
    assert seen[0].startswith("disconnect"), f"iotcore now accepts MQTT 5 ({seen}): drop the demo's 3.1.1"


def test_demo_kiosks_speak_3_1_1_to_the_embedded_broker_and_deliver(tmp_path, iotcore_port) -> None:
    path = tmp_path / "kiosk.toml"
    path.write_text(kiosk_config("k03390-q1", "03390", 1, mqtt_protocol="3.1.1"), encoding="utf-8")
    cfg = load_config(path)
    assert cfg.broker.protocol == "3.1.1"
    assert tomllib.loads(kiosk_config("k03390-q1", "03390", 1))["broker"]["protocol"] == "5"

    clock = FakeClock(datetime(2026, 11, 30, 9, tzinfo=UTC))
    store = Store(tmp_path / "k.db", 1 << 24)
    builder = EventBuilder("k03390-q1", "03390", clock)
    data = {"service_day": "2026-11-30", "discarded_waiting": 0, "reason": "demo"}
    with store.tx() as cur:
        for _ in range(20):
            store.append_event(cur, EventType.QUEUE_RESET, builder.builder(EventType.QUEUE_RESET, data))
    got: list[bytes] = []
    subscribed = threading.Event()
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="demo-gw")
    sub.on_message = lambda c, u, m: got.append(bytes(m.payload))
    sub.on_subscribe = lambda *a: subscribed.set()
    sub.connect("127.0.0.1", iotcore_port)
    sub.subscribe("motcua/v1/03390/k03390-q1/events", qos=1)
    sub.loop_start()
    assert subscribed.wait(30)
    broker = BrokerConfig(url=f"mqtt://127.0.0.1:{iotcore_port}", protocol="3.1.1")
    pub = Publisher(broker, "k03390-q1", "03390", store, builder, lambda: b"{}", 3600, queue.Queue())
    pub.start()
    try:
        assert pub.wait_drained(60), f"outbox still holds {store.outbox_depth()}: {pub.last_error}"
        wait_for(lambda: len(got) >= 20, 30, "20 events at the subscriber")
    finally:
        pub.stop()
        sub.loop_stop()
    seqs = [int(p.split(b'"seq":', 1)[1].split(b",", 1)[0]) for p in got]
    assert seqs == list(range(1, 21))
