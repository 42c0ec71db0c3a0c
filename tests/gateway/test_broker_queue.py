"""The operator sees the broker's queue coming: $SYS depth and drops on /metrics, and alerts.

Real Mosquitto with the production limits (``limits_conf``), shrunk to a queue of 200 messages so
that a limit is reached in seconds, and ``sys_interval 1``.
"""

from __future__ import annotations

import re
import shutil
from datetime import UTC, datetime

import pytest

from provisioning.mosquitto_conf import QueueSizing
from tests.gateway.conftest import wait_for
from tests.gateway.kiosk_sim import EventFactory, Publisher
from tests.support.mosquitto import Mosquitto

QUEUE = 200


@pytest.fixture
def small_broker():
    broker = Mosquitto(sizing=QueueSizing(kiosks=1, events_per_kiosk_day=QUEUE), sys_interval_s=1).start()
    try:
        yield broker
    finally:
        broker.stop()
        shutil.rmtree(broker.workdir, ignore_errors=True)


def _metric(text: str, name: str) -> float | None:
    m = re.search(rf"^{name} (\S+)$", text, re.M)
    return float(m.group(1)) if m else None


def _open_alerts(gw, kind: str) -> list[dict]:
    return [a for a in gw.ops.get("/api/v1/alerts").json() if a["kind"] == kind and a["closed_at"] is None]


def test_queue_depth_drops_metrics_and_alerts(small_broker, gateway_factory) -> None:
    broker = small_broker
    cfg = {"broker_queue_high": 150, "sweep_interval_s": 0.3}
    gw = gateway_factory(broker.url, alerts=cfg)
    text = wait_for(
        lambda: (t := gw.public.get("/metrics").text) and "motcua_broker_stored_messages" in t and t,
        what="$SYS values on /metrics",
    )
    assert _metric(text, "motcua_broker_dropped_messages_total") == 0
    assert "motcua_ingest_database_messages_total" in text and 'motcua_devices{state="online"}' in text
    gw.stop()  # the gateway's persistent session stays at the broker

    f = EventFactory("k03390-q1", "03390", 1)
    day = datetime.now(UTC).date()
    pub = Publisher(broker.port)
    events = []
    for no in range(1, 101):
        events += f.visit(no, day, datetime.now(UTC), 60.0, 60.0)  # 300 events
    for ev in events:
        pub.event(ev)
    pub.flush()  # every one acknowledged to the "kiosk"
    pub.close()

    gw2 = gateway_factory(broker.url, alerts=cfg)  # same data dir, same client id: the session resumes
    s = wait_for(lambda: (x := gw2.stats())["accepted"] >= QUEUE and x, what="queued events stored")
    assert s["accepted"] == QUEUE  # the queue limit, not more: the rest was dropped by the broker
    text = wait_for(
        lambda: (
            (t := gw2.public.get("/metrics").text)
            and (_metric(t, "motcua_broker_dropped_messages_total") or 0) >= 100
            and t
        ),
        what="drops on /metrics",
    )
    assert _metric(text, "motcua_broker_dropped_messages_total") == len(events) - QUEUE
    assert "Outgoing messages are being dropped" in broker.log_text()
    alert = wait_for(lambda: _open_alerts(gw2, "broker_dropping"), what="broker_dropping alert")
    assert alert[0]["device_id"] == "broker" and "100 messages" in alert[0]["message"]


def test_queue_high_alert_opens_and_resolves(small_broker, gateway_factory) -> None:
    """A second persistent session that stays away (a forgotten gateway) fills the broker's store."""
    broker = small_broker
    gw = gateway_factory(broker.url, alerts={"broker_queue_high": 100, "sweep_interval_s": 0.3})
    away = Publisher(broker.port, client_id="forgotten-gateway", clean_session=False)
    away.client.subscribe("motcua/v1/#", qos=1)
    wait_for(lambda: "motcua_broker_stored_messages" in gw.public.get("/metrics").text, what="$SYS")
    away.close()
    f = EventFactory("k03405-q1", "03405", 1)
    pub = Publisher(broker.port)
    for no in range(1, 51):
        for ev in f.visit(no, datetime.now(UTC).date(), datetime.now(UTC), 60.0, 60.0):
            pub.event(ev)
    pub.flush()
    wait_for(lambda: gw.stats()["accepted"] == 150, what="the live gateway stored everything")
    a = wait_for(lambda: _open_alerts(gw, "broker_queue_high"), what="broker_queue_high alert")
    assert "hàng đợi broker cao" in a[0]["message"]
    assert not _open_alerts(gw, "broker_dropping")
    # the forgotten session comes back and drains: the alert resolves
    back = Publisher(broker.port, client_id="forgotten-gateway", clean_session=False)
    wait_for(lambda: not _open_alerts(gw, "broker_queue_high"), what="alert resolved after draining")
    back.close()
    pub.close()
