"""``_BufferedClient`` relies on paho 2.2 internals (``_sock_recv``, ``_sock_close``, ``loop_read``,
``_on_message_filtered``); these tests fail as soon as a paho release changes any of them, instead
of the gateway silently losing its buffered reads (or its messages)."""

from __future__ import annotations

import inspect
import threading
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
from paho.mqtt import _packet
from paho.mqtt.matcher import MQTTMatcher

from gateway.config import BrokerSettings
from gateway.mqtt_client import GatewayMqtt, _BufferedClient, _Matcher, _parse_publish
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
    # the fast PUBLISH path reads paho's packet state and keep-alive stamp, and its clock
    assert c._in_packet["command"] == 0 and isinstance(c._last_bytes_received, float)
    assert c._msgtime_mutex is not None and c._protocol == mqtt.MQTTv311 and callable(mqtt.time_func)
    assert hasattr(MQTTMatcher(), "_root") and hasattr(MQTTMatcher()._root, "_children")


def _publish_packet(
    topic: bytes, payload: bytes, mid: int, *, header: int = 0x32, props: bytes | None = None
) -> bytes:
    """A PUBLISH packet as a broker sends it (``props``: the v5 properties, length included)."""
    body = len(topic).to_bytes(2, "big") + topic + mid.to_bytes(2, "big") + (props or b"") + payload
    n, length = len(body), bytearray()
    while True:
        n, digit = divmod(n, 128)
        length.append(digit | (128 if n else 0))
        if not n:
            return bytes([header, *length]) + body


def _paho_reads(packet: bytes, protocol: int) -> tuple[str, bytes, int]:
    length, body = 0, 1
    for i, b in enumerate(packet[1:5]):
        length += (b & 127) * 128**i
        body += 1
        if not b & 128:
            break
    got = _packet.decode_publish(packet[0], packet[body : body + length], protocol)
    return got.topic.decode(), got.payload, got.mid


def test_the_fast_publish_parser_agrees_with_paho_and_leaves_it_the_rest() -> None:
    topic = b"motcua/v1/events/03390/k03390-q1"
    v3 = [
        _publish_packet(topic, b'{"a":1}', 1),
        _publish_packet(topic, b"x" * 300, 65535),  # two-byte remaining length
        _publish_packet(topic, b"dup", 7, header=0x3A),  # dup flag
        _publish_packet(topic, b"retained", 8, header=0x33),  # retain flag
        _publish_packet("tiếng Việt/ố".encode(), b"", 9),  # UTF-8 topic, empty payload
    ]
    buf, pos = bytearray(b"".join(v3)), 0
    for packet in v3:
        topic_s, payload, mid, pos = _parse_publish(buf, pos, False)
        assert (topic_s, payload, mid) == _paho_reads(packet, mqtt.MQTTv311)
    assert pos == len(buf)
    # v5: properties skipped (a subscription identifier and a user property), as paho does
    props = bytes([0x0B, 0x05]) + bytes([0x26, 0, 1]) + b"k" + bytes([0, 1]) + b"v"
    packet = _publish_packet(topic, b"five", 3, props=bytes([len(props)]) + props)
    assert _parse_publish(bytearray(packet), 0, True)[:3] == _paho_reads(packet, mqtt.MQTTv5)
    # left to paho: a packet cut by the buffer's end, a v5 topic alias (empty topic), bad UTF-8,
    # lengths that do not add up
    whole = _publish_packet(topic, b"p" * 200, 5)
    for cut in (1, 2, 3, 10, len(whole) - 1):
        assert _parse_publish(bytearray(whole[:cut]), 0, False) is None
    alias = _publish_packet(b"", b"p", 6, props=bytes([3, 0x23, 0, 1]))
    assert _parse_publish(bytearray(alias), 0, True) is None
    assert _parse_publish(bytearray(_publish_packet(b"\xff\xfe", b"p", 6)), 0, False) is None
    liar = bytearray(_publish_packet(topic, b"p", 6))
    liar[2:4] = (500).to_bytes(2, "big")  # topic length beyond the packet
    assert _parse_publish(liar, 0, False) is None


def test_take_publishes_stops_at_another_packet_and_keeps_it_buffered() -> None:
    c = _BufferedClient(mqtt.CallbackAPIVersion.VERSION2, manual_ack=True)
    got: list[tuple[str, bytes, int]] = []
    c.fast_message = lambda t, p, m: got.append((t, p, m))
    qos0 = bytes([0x30, 5, 0, 1]) + b"t" + b"qq"
    pingresp = bytes([0xD0, 0])
    tail = _publish_packet(b"a/b", b"later", 11)
    head = _publish_packet(b"a/b", b"one", 1) + _publish_packet(b"a/b", b"two", 2)
    c._rbuf += head + qos0 + pingresp + tail
    c._take_publishes(float("inf"))
    assert got == [("a/b", b"one", 1), ("a/b", b"two", 2)]
    assert bytes(c._rbuf) == qos0 + pingresp + tail  # paho reads these (QoS 0, PINGRESP) itself


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
    fast = {"n": 0}
    real_fast = m.client.fast_message

    def counting_fast(topic: str, payload: bytes, mid: int) -> None:
        fast["n"] += 1
        real_fast(topic, payload, mid)

    m.client.fast_message = counting_fast
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
    assert fast["n"] > n / 2, (fast["n"], n)  # most of the burst took the fast PUBLISH path
