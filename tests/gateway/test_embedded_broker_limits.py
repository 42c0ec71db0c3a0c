"""The embedded demo broker (iotcore 0.4.0 = rumqttd 0.20 in a child process): its limits, tested.

* It keeps a persistent session's backlog (in RAM only: nothing survives its own restart), here
  5,000 events > Mosquitto's default queue of 1000, all delivered to the gateway that comes back.
* Its ``max_payload_size`` (20,480 bytes) is above the contract's ``MAX_PAYLOAD_BYTES`` (16 KiB), so
  every message a kiosk may send fits; a larger one costs the sender its connection and no PUBACK
  (the sender keeps it), while a 16-20 KiB one reaches the gateway and is counted ``too_large``.
"""

from __future__ import annotations

import inspect
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
import pytest
from iotcore import IotCoreBroker
from paho.mqtt.enums import CallbackAPIVersion

from contract.payloads import MAX_PAYLOAD_BYTES
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
