"""``_BufferedClient`` relies on paho 2.2 internals (``_sock_recv``, ``_sock_close``, ``loop_read``,
``_on_message_filtered``); these tests fail as soon as a paho release changes any of them, instead
of the gateway silently losing its buffered reads (or its messages)."""

from __future__ import annotations

import inspect
import threading
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
from paho.mqtt.matcher import MQTTMatcher

from gateway.config import BrokerSettings
from gateway.mqtt_client import GatewayMqtt, _BufferedClient, _Matcher
from tests.gateway.conftest import wait_for
from tests.gateway.kiosk_sim import EventFactory, Publisher


def test_paho_private_names_the_buffered_client_overrides_are_unchanged() -> None:
    expected = {
        "_packet_queue": ["self", "command", "packet", "mid", "qos", "info"],
        "_sock_recv": ["self", "bufsize"],
        "_sock_close": ["self"],
        "loop_read": ["self", "max_packets"],
    }
    for name, params in expected.items():
        assert list(inspect.signature(getattr(mqtt.Client, name)).parameters) == params, name
    c = _BufferedClient(mqtt.CallbackAPIVersion.VERSION2)
    assert isinstance(c._on_message_filtered, _Matcher) and isinstance(c._on_message_filtered, MQTTMatcher)
    assert hasattr(MQTTMatcher(), "_root") and hasattr(MQTTMatcher()._root, "_children")


def test_a_burst_is_read_in_few_recv_calls_and_nothing_is_lost(mosquitto, monkeypatch) -> None:
    calls = {"n": 0}
    real = mqtt.Client._sock_recv

    def counting(self: mqtt.Client, bufsize: int) -> bytes:
        calls["n"] += 1
        return real(self, bufsize)

    monkeypatch.setattr(mqtt.Client, "_sock_recv", counting)
    got: list[int] = []
    lock = threading.Lock()

    def on_message(topic: str, payload: bytes, mid: int, qos: int) -> None:
        with lock:
            got.append(mid)
            if len(got) % 100 == 0:  # acknowledged in batches, as the writer does after a commit
                m.ack_many(got[-100:])

    cfg = BrokerSettings(url=mosquitto.url, client_id="paho-check")
    m = GatewayMqtt(cfg, on_message)
    m.start()
    assert m.wait_connected(30)
    m.stop()  # persistent session: what follows queues at the broker, then arrives as a burst
    f = EventFactory("k03390-q1", "03390", 1)
    pub = Publisher(mosquitto.port)
    n = 0
    for no in range(1, 1001):
        for ev in f.visit(no, datetime.now(UTC).date(), datetime.now(UTC), 60.0, 60.0):
            pub.event(ev)
            n += 1
    pub.flush()
    pub.close()
    calls["n"] = 0
    m = GatewayMqtt(cfg, on_message)
    m.start()
    wait_for(lambda: len(got) >= n, what="all messages")
    # every batched PUBACK reaches the broker (its log names each one it processed)
    wait_for(lambda: mosquitto.log_text().count("Received PUBACK from paho-check") >= n, what="PUBACKs")
    m.stop()
    assert len(got) == n and n % 100 == 0
    # and the session has nothing to redeliver
    got.clear()
    m = GatewayMqtt(cfg, on_message)
    m.start()
    assert m.wait_connected(30)
    f2 = EventFactory("k03390-q2", "03390", 2)
    pub = Publisher(mosquitto.port)
    marker = f2.visit(1, datetime.now(UTC).date(), datetime.now(UTC), 60.0, 60.0)[0]
    pub.event(marker)
    pub.flush()
    pub.close()
    wait_for(lambda: got, what="the marker")
    m.stop()
    assert len(got) == 1, f"{len(got) - 1} messages redelivered: batched PUBACKs were lost"
    # paho alone makes 3 recv calls per message; buffered, a queued burst shares 64 KiB reads
    assert calls["n"] < n / 2, (calls["n"], n)
