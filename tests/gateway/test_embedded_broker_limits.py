"""The embedded demo broker (iotcore 0.4.0 = rumqttd 0.20 in a child process): its limits, tested.

* It keeps a persistent session's backlog (in RAM only: nothing survives its own restart), here
  5,000 events > Mosquitto's default queue of 1000, all delivered to the gateway that comes back.
* Its ``max_payload_size`` (20,480 bytes) is above the contract's ``MAX_PAYLOAD_BYTES`` (16 KiB), so
  every message a kiosk may send fits; a larger one costs the sender its connection and no PUBACK
  (the sender keeps it), while a 16-20 KiB one reaches the gateway and is counted ``too_large``.
"""

from __future__ import annotations

import inspect
import logging
import queue
import threading
import time
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
import pytest
from iotcore import IotCoreBroker
from paho.mqtt.enums import CallbackAPIVersion

from contract.payloads import MAX_PAYLOAD_BYTES
from gateway.config import BrokerSettings
from gateway.mqtt_client import GatewayMqtt
from tests.gateway.conftest import wait_for
from tests.gateway.kiosk_sim import EventFactory, Publisher

IOTCORE_MAX_PAYLOAD = 20_480


def test_payload_limit_is_above_the_contract() -> None:
    default = inspect.signature(IotCoreBroker.__init__).parameters.get("max_payload_size")
    assert default is None or default.default in (inspect.Parameter.empty, IOTCORE_MAX_PAYLOAD)
    assert MAX_PAYLOAD_BYTES < IOTCORE_MAX_PAYLOAD


def test_backlog_kept_for_the_gateway_and_payload_limits(iotcore_port, gateway_factory) -> None:
    port = iotcore_port
    url = f"mqtt://127.0.0.1:{port}"
    gw = gateway_factory(url)
    gw.stop()  # persistent session left at the broker
    f = EventFactory("k03390-q3", "03390", 3)
    pub = Publisher(port)
    sent = 0
    no = 0
    while sent < 5000:
        no += 1
        for ev in f.visit(no, datetime.now(UTC).date(), datetime.now(UTC), 60.0, 60.0):
            pub.event(ev)
            sent += 1
    pub.raw("motcua/v1/03390/k03390-q3/events", b"{" + b" " * (MAX_PAYLOAD_BYTES + 100) + b"}")
    pub.flush()
    pub.close()

    gw = gateway_factory(url)
    s = wait_for(
        lambda: (x := gw.stats())["accepted"] >= sent and x["rejected"] and x, timeout=120, what="backlog"
    )
    assert s["accepted"] == sent and s["rejected"] == {"too_large": 1}

    # above the broker's own limit: the connection is dropped and no PUBACK comes back
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="big-sender")
    c.connect("127.0.0.1", port)
    c.loop_start()
    info = c.publish("motcua/v1/03390/k03390-q3/events", b"x" * (IOTCORE_MAX_PAYLOAD + 1000), qos=1)
    with pytest.raises((RuntimeError, ValueError)):
        info.wait_for_publish(3)
        if not info.is_published():
            raise RuntimeError("not acknowledged")
    c.loop_stop()


def test_acks_of_an_earlier_connection_do_not_cut_the_next_one(iotcore_port, caplog) -> None:
    """rumqttd drops a connection that acknowledges a message id not in flight (Mosquitto ignores
    it). After a reconnect it resends the unacknowledged messages under their old ids; the writer's
    acks of the copies received before (stored after the cut) must not go out on the new connection,
    or the resent copy is acknowledged twice and the broker cuts again, in a loop (the demo under
    load: a reconnect every second, thousands of duplicates). gateway/mqtt_client.py drops them."""
    cfg = BrokerSettings(url=f"mqtt://127.0.0.1:{iotcore_port}", client_id="stale-acks", keepalive_s=30)
    inbox: queue.Queue[tuple[bytes, int]] = queue.Queue()
    m = GatewayMqtt(cfg, lambda _t, payload, token, _q: inbox.put((payload, token)))
    m.start()
    assert m.wait_connected(30)
    m.stop()  # persistent session: the backlog below waits at the broker
    n = 3000
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="stale-acks-pub")
    pub.connect("127.0.0.1", iotcore_port)
    pub.loop_start()
    infos = [pub.publish(f"motcua/v1/03390/k03390-q1/events/{i}", str(i).encode(), qos=1) for i in range(n)]
    for info in infos:
        info.wait_for_publish(30)
    pub.disconnect()
    pub.loop_stop()

    stored: set[bytes] = set()
    done, go, holding = threading.Event(), threading.Event(), threading.Event()
    go.set()

    def writer() -> None:  # as gateway/ingest.py: a batch "committed", then acknowledged at once
        while not done.is_set():
            batch = []
            try:
                batch.append(inbox.get(timeout=0.2))
                while len(batch) < 100:
                    batch.append(inbox.get_nowait())
            except queue.Empty:
                pass
            if batch and not go.is_set():
                holding.set()
                go.wait()  # a commit slower than paho's reconnect (1 s): seen at load > 20
            time.sleep(0.05)
            stored.update(p for p, _t in batch)
            m.ack_many([t for _p, t in batch])

    caplog.set_level(logging.WARNING, logger="motcua.gateway.mqtt")
    caplog.clear()
    m = GatewayMqtt(cfg, lambda _t, payload, token, _q: inbox.put((payload, token)))
    t = threading.Thread(target=writer, daemon=True)
    m.start()
    t.start()
    try:
        wait_for(lambda: len(stored) >= 300, timeout=60, what="the drain to start")
        go.clear()
        wait_for(holding.is_set, timeout=30, what="a batch held by the writer")
        m.client.ack(65000, 1)  # an id not in flight: the broker cuts the connection
        wait_for(lambda: not m.connected.is_set(), timeout=30, what="the cut")
        wait_for(m.connected.is_set, timeout=30, what="the reconnect (after 1 s)")
        go.set()  # the held batch is stored and acknowledged now, on the new connection
        wait_for(lambda: len(stored) >= n, timeout=120, what="the whole backlog")
        wait_for(lambda: m.connected.is_set() and inbox.empty(), timeout=30, what="a quiet connection")
        time.sleep(1.5)  # a reconnect loop would show here (paho reconnects after 1 s)
    finally:
        done.set()
        go.set()
        t.join(10)
        m.stop()
    cuts = [r.getMessage() for r in caplog.records if "MQTT disconnected" in r.getMessage()]
    assert len(cuts) == 2, cuts  # the one provoked above, and m.stop()'s
    assert m.stale_acks > 0  # acks of copies received before the cut were held back
