"""Real Mosquitto + the real gateway: events in → KPIs out, exactly once, bad input counted."""

from __future__ import annotations

from collections import Counter
from typing import Any

from tests.gateway.conftest import RunningGateway, wait_for
from tests.gateway.kiosk_sim import EventFactory, Publisher
from tests.gateway.scenario import (
    WHOLE_DAY_AHEAD,
    assert_kpis_match,
    bad_messages,
    build_day,
    expected_hours,
    expected_kpis,
)


def run_day_scenario(gw: RunningGateway, broker_port: int) -> dict[str, Any]:
    """Publish a day (shuffled), bad messages in between, then replay everything; check KPIs."""
    day = gw.app.state.kpi.today()
    events, exp = build_day(day)
    bad = bad_messages()
    pub = Publisher(broker_port)
    try:
        for i, ev in enumerate(events):
            pub.event(ev)
            if i % 20 == 0 and bad:
                _reason, topic, payload = bad.pop()
                pub.raw(topic, payload)
        for _reason, topic, payload in bad:
            pub.raw(topic, payload)
        pub.flush()
        wait_for(lambda: gw.stats()["accepted"] >= len(events), what="all events stored")
        for ev in events:  # replay: a kiosk resending its outbox
            pub.event(ev)
        pub.flush()
        wait_for(lambda: gw.stats()["duplicates"] >= len(events), what="replay counted")
    finally:
        pub.close()

    stats = gw.stats()
    assert stats["accepted"] == len(events)
    assert stats["stored_events"] == len(events)
    assert stats["duplicates"] == len(events)
    want = Counter(r for r, _t, _p in bad_messages())
    assert stats["rejected"] == dict(want)

    offices = {o["code"]: o for o in gw.public.get("/api/v1/offices").json()}
    for office in ("03390", "03405"):
        assert_kpis_match(offices[office]["kpi_today"], expected_kpis(exp, office))
    assert offices["03424"]["kpi_today"]["visits"] == 0

    detail = gw.public.get("/api/v1/offices/03390/kpis", params={"day": day.isoformat()}).json()
    assert_kpis_match(detail["kpi"], expected_kpis(exp, "03390"))
    for c in detail["counters"]:
        assert_kpis_match(c["kpi"], expected_kpis(exp, "03390", c["counter"]))
    assert {c["counter"] for c in detail["counters"]} == {1, 2}
    assert {h["hour"]: h["arrivals"] for h in detail["hours"]} == expected_hours(exp, "03390")
    assert len(detail["sentiment_windows"]) == 6
    assert detail["officers"] == []  # staff figures are for operators only
    detail = gw.ops.get("/api/v1/offices/03390/kpis", params={"day": day.isoformat()}).json()
    officers = {o["officer_id"]: o for o in detail["officers"]}
    assert set(officers) == {"cb-01", "cb-02"}
    assert sum(o["rated"] for o in officers.values()) == expected_kpis(exp, "03390")["rated"]

    csv_text = gw.public.get(
        "/api/v1/kpis.csv", params={"from": day.isoformat(), "to": day.isoformat(), "level": "counter"}
    ).text
    lines = csv_text.strip().splitlines()
    header = lines[0].split(",")
    rows = [dict(zip(header, line.split(","), strict=True)) for line in lines[1:]]
    assert len(rows) == 3
    for r in rows:
        e = expected_kpis(exp, r["office_code"], int(r["counter"]))
        assert int(r["visits"]) == e["visits"]
        assert abs(float(r["avg_wait_s"]) - e["avg_wait_s"]) < 1e-3
        assert int(r["rated"]) == e["rated"]

    geo = gw.public.get("/api/v1/map.geojson").json()
    assert geo["type"] == "FeatureCollection" and len(geo["features"]) == 6
    f = next(x for x in geo["features"] if x["id"] == "03390")
    assert f["properties"]["wait_class"] in ("ok", "warn", "bad")
    assert f["properties"]["kpi_today"]["visits"] == expected_kpis(exp, "03390")["visits"]
    return stats


def test_events_to_kpis_exactly_once_with_rejections(mosquitto, gateway_factory) -> None:
    gw = gateway_factory(mosquitto.url, integrity=WHOLE_DAY_AHEAD)
    run_day_scenario(gw, mosquitto.port)


def test_unregistered_device_is_quarantined_until_bound(mosquitto, gateway_factory) -> None:
    """Events of a device not in the registry are stored and marked, but held out of every figure
    until an admin binds the device and releases them (issue 8: forged events from an unregistered
    device moved the map)."""
    gw = gateway_factory(mosquitto.url)
    f = EventFactory("k-stranger-1", "03424", 1)
    pub = Publisher(mosquitto.port)
    day = gw.app.state.kpi.today()
    from datetime import UTC, datetime

    for ev in f.visit(1, day, datetime.now(UTC), 60.0, 30.0):
        pub.event(ev)
    pub.health(f.health())
    pub.flush()
    pub.close()
    wait_for(lambda: gw.stats()["accepted"] == 3, what="events stored")
    assert gw.stats()["quarantined"] == 3
    fleet = {d["device_id"]: d for d in gw.ops.get("/api/v1/fleet").json()}
    assert fleet["k-stranger-1"]["registered"] is False
    assert fleet["k-stranger-1"]["quarantined"] is True and fleet["k-stranger-1"]["held_events"] == 3
    assert fleet["k-stranger-1"]["state"] == "online"
    held = gw.ops.get("/api/v1/quarantine").json()
    assert [(q["device_id"], q["held_events"], q["office_codes"]) for q in held] == [
        ("k-stranger-1", 3, ["03424"])
    ]
    assert gw.public.get("/api/v1/offices/03424").json()["kpi_today"]["visits"] == 0
    # bound later by provisioning (admin), releasing what it held: then it counts in the office
    r = gw.admin.post(
        "/api/v1/devices",
        json={"device_id": "k-stranger-1", "office_code": "03424", "counter": 1, "release_held": True},
    )
    assert r.status_code == 201, r.text
    assert r.json()["released"]["released"] == 3 and r.json()["bound_by"] == "adm"
    fleet = {d["device_id"]: d for d in gw.ops.get("/api/v1/fleet").json()}
    assert fleet["k-stranger-1"]["registered"] is True and fleet["k-stranger-1"]["held_events"] == 0
    office = gw.public.get("/api/v1/offices/03424").json()
    assert office["devices_total"] == 1 and office["devices_online"] == 1
    assert office["kpi_today"]["visits"] == 1
    assert gw.ops.get("/api/v1/quarantine").json() == []


def test_access_control(mosquitto, gateway_factory) -> None:
    gw = gateway_factory(mosquitto.url)
    assert gw.public.get("/api/v1/offices").status_code == 200
    assert gw.public.get("/api/v1/map.geojson").status_code == 200
    assert gw.public.get("/api/v1/fleet").status_code == 401
    assert gw.public.get("/api/v1/stats/ingest").status_code == 401
    assert gw.ops.get("/api/v1/fleet").status_code == 200
    body = {"device_id": "k03424-q1", "office_code": "03424", "counter": 1}
    assert gw.ops.post("/api/v1/devices", json=body).status_code == 403
    assert gw.admin.post("/api/v1/devices", json=body).status_code == 201
    bad = gw.admin.post("/api/v1/devices", json={**body, "counter": 9})
    assert bad.status_code == 422 and "counters 1..2" in bad.text
    r = gw.admin.put("/api/v1/offices/03424", json={"lat": 22.3, "lon": 103.65})
    assert r.status_code == 200 and r.json()["lat"] == 22.3
    r = gw.admin.post(
        "/api/v1/offices",
        json={"code": "03424", "name": "x", "unit_code": "03424", "lat": 22.3, "lon": 103.6, "counters": 1},
    )
    assert r.status_code == 409
    assert gw.public.get("/healthz").json()["ok"] is True
    text = gw.public.get("/metrics").text
    assert "motcua_devices" in text and "motcua_ingest_database_messages_total" in text
    spec = gw.public.get("/openapi.json").json()
    for path in (
        "/api/v1/offices",
        "/api/v1/offices/{code}/kpis",
        "/api/v1/fleet",
        "/api/v1/map.geojson",
        "/api/v1/kpis.csv",
        "/api/v1/devices/{device_id}/commands",
        "/api/v1/stats/ingest",
    ):
        assert path in spec["paths"], path
    assert {"Office", "OfficeKpis", "FleetDevice", "Command", "IngestStats"} <= set(
        spec["components"]["schemas"]
    )
