"""A failing handler is counted, never stops ingest; the embedded broker (no [broker] url) works."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import gateway.ingest
from contract.payloads import Event
from tests.gateway.conftest import wait_for
from tests.gateway.kiosk_sim import EventFactory, Publisher
from tests.support.mosquitto import free_port


def test_handler_exception_is_counted_and_ingest_continues(mosquitto, gateway_factory, monkeypatch) -> None:
    real = gateway.ingest.apply_batch

    def flaky(store: Any, items: list, *a: Any, **kw: Any) -> Any:
        if any(
            isinstance(i.decoded.message, Event) and i.decoded.message.device_id == "k03424-bug"
            for i in items
        ):
            raise RuntimeError("simulated handler bug")
        return real(store, items, *a, **kw)

    monkeypatch.setattr(gateway.ingest, "apply_batch", flaky)
    gw = gateway_factory(mosquitto.url)
    day = gw.app.state.kpi.today()
    good, bad = EventFactory("k03390-q1", "03390", 1), EventFactory("k03424-bug", "03424", 1)
    pub = Publisher(mosquitto.port)
    for i in range(1, 31):
        for e in good.visit(i, day, datetime.now(UTC), 60.0, 60.0):
            pub.event(e)
        if i % 10 == 0:
            pub.event(bad.visit(i, day, datetime.now(UTC), 60.0, 60.0)[0])
    pub.flush()
    pub.close()
    s = wait_for(
        lambda: (x := gw.stats())["accepted"] >= 90 and x["rejected"].get("handler_error", 0) >= 3 and x,
        what="good stored, bad counted",
    )
    assert s["accepted"] == 90 and s["rejected"] == {"handler_error": 3}
    assert gw.public.get("/api/v1/offices/03390").json()["kpi_today"]["visits"] == 30


def test_embedded_broker_when_no_url(gateway_factory) -> None:
    port = free_port()
    gw = gateway_factory("", broker={"embedded_port": port})
    assert gw.app.state.broker is not None
    pub = Publisher(port)
    f = EventFactory("k03405-q3", "03405", 3)
    for e in f.visit(1, gw.app.state.kpi.today(), datetime.now(UTC), 90.0, 30.0):
        pub.event(e)
    pub.flush()
    pub.close()
    wait_for(lambda: gw.stats()["accepted"] == 3, what="stored via embedded broker")
    assert gw.public.get("/api/v1/offices/03405").json()["kpi_today"]["served"] == 1


def test_selftest_and_start_reports_of_a_device_never_seen_before(mosquitto, gateway_factory) -> None:
    from contract.payloads import EventType

    gw = gateway_factory(mosquitto.url)
    f = EventFactory("k03394-q1", "03394", 1)
    pub = Publisher(mosquitto.port)
    pub.event(
        f.event(
            EventType.DEVICE_STARTED,
            {
                "sw_version": "1.2.0",
                "boot_id": "b1",
                "restart": "boot",
                "config_sha256": "0" * 64,
                "model_versions": {},
            },
        )
    )
    pub.event(
        f.event(
            EventType.SELFTEST_REPORT,
            {
                "passed": False,
                "components": [{"name": "printer", "ok": False, "detail": "hết giấy / out of paper"}],
            },
        )
    )
    pub.flush()
    pub.close()
    d = wait_for(
        lambda: next(
            (
                x
                for x in gw.ops.get("/api/v1/fleet").json()
                if x["device_id"] == "k03394-q1" and x["last_selftest"]
            ),
            None,
        ),
        what="self-test",
    )
    assert d["last_selftest"]["passed"] is False
    assert d["last_selftest"]["components"][0]["detail"] == "hết giấy / out of paper"
    assert d["state"] == "online"
