"""Issue 8's attacks against a real Mosquitto and the real gateway (SQLite and PostgreSQL): each is
refused, held or flagged, with the counter that records it, and the figures do not move."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.gateway.attacks import ATTACKS, baseline
from tests.gateway.conftest import RunningGateway, wait_for
from tests.gateway.kiosk_sim import Publisher

FIGURES = ("visits", "served", "rated", "ratings", "satisfaction_rate", "sentiment_score", "sentiment_visits")


def _figures(gw: RunningGateway, office: str) -> dict[str, Any]:
    k = gw.public.get(f"/api/v1/offices/{office}").json()["kpi_today"]
    return {f: k[f] for f in FIGURES}


def _counts(gw: RunningGateway) -> dict[str, int]:
    st = gw.stats()
    out = {f"rejected:{k}": v for k, v in st["rejected"].items()}
    out.update(quarantined=st["quarantined"], duplicate_rating=st["duplicate_rating"])
    return out


def _send(pub: Publisher, messages: list[tuple[str, bytes]]) -> None:
    for topic, payload in messages:
        pub.raw(topic, payload)
    pub.flush()


def run_attacks(gw: RunningGateway, port: int) -> None:
    day = gw.app.state.kpi.today()
    start = datetime.now(UTC) - timedelta(hours=1)
    pub = Publisher(port)
    try:
        _send(pub, baseline(day, start))
        wait_for(lambda: _figures(gw, "03390")["rated"] == 5, what="baseline counted")
        before = {o: _figures(gw, o) for o in ("03390", "03405")}
        assert before["03390"]["satisfaction_rate"] == pytest.approx(0.6)
        officers_before = gw.ops.get("/api/v1/offices/03390/kpis").json()["officers"]
        for make in ATTACKS:
            attack = make(day, start)
            counts = _counts(gw)
            _send(pub, attack.messages)
            want = {k: v for k, v in attack.expect.items() if not k.startswith("flagged:")}
            wait_for(
                lambda c=counts, w=want: all(_counts(gw).get(k, 0) - c.get(k, 0) >= v for k, v in w.items()),
                what=attack.name,
            )
            after = _counts(gw)
            for k, v in want.items():
                assert after.get(k, 0) - counts.get(k, 0) == v, (attack.name, k)
            assert _figures(gw, "03390") == before["03390"], attack.name
    finally:
        pub.close()
    # the office head sees the flags; staff figures leave the flagged out; the office's show them
    flags = gw.ops.get("/api/v1/offices/03405/flags").json()
    assert flags["counts"] == {"visit:short_service": 20, "rating:short_service": 20,
                               "rating:top_rating_burst": 6}
    k05 = _figures(gw, "03405")
    assert k05["visits"] == 26 and k05["rated"] == 26  # kept: 20 farmed + 6 burst, flagged
    officers = {o["officer_id"]: o for o in gw.ops.get("/api/v1/offices/03405/kpis").json()["officers"]}
    assert "cb-farm" not in officers
    assert officers["cb-burst"]["rated"] == 0 and officers["cb-burst"]["served"] == 6
    assert gw.ops.get("/api/v1/offices/03390/kpis").json()["officers"] == officers_before
    dup = gw.ops.get("/api/v1/offices/03390/flags").json()
    assert dup["duplicate_ratings_by_device"] == {"k03390-q1": 30}
    assert dup["ratings_by_status"] == {"counted": 5, "duplicate": 30}
    # clearing is for signed-in staff, named and audited
    rating = flags["ratings"][-1]
    assert gw.public.post("/api/v1/offices/03405/flags/clear",
                          json={"kind": "rating", "event_id": rating["event_id"]}).status_code == 401
    clear = {"kind": "rating", "event_id": rating["event_id"]}
    r = gw.ops.post("/api/v1/offices/03405/flags/clear", json=clear)
    assert r.status_code == 200 and r.json()["by"] == "ops"
    assert gw.ops.post("/api/v1/offices/03405/flags/clear",
                       json={"kind": "rating", "event_id": rating["event_id"]}).status_code == 404
    officers = {o["officer_id"]: o for o in gw.ops.get("/api/v1/offices/03405/kpis").json()["officers"]}
    assert officers["cb-burst"]["rated"] == 1
    with gw.app.state.store.engine.connect() as conn:
        audit = conn.exec_driver_sql("SELECT actor, action FROM audit_log").all()
    assert ("ops", "clear_flag") in [tuple(a) for a in audit]
    assert gw.ops.get("/api/v1/offices/03405/flags").json()["counts"]["rating:top_rating_burst:cleared"] == 1
    # a farmed visit cleared by the office head: it (and its rating) counts for its officer again
    visit = flags["visits"][0]
    body = {"kind": "visit", **{k: visit[k] for k in ("counter", "service_day", "ticket_no")}}
    assert gw.ops.post("/api/v1/offices/03405/flags/clear", json=body).status_code == 200
    officers = {o["officer_id"]: o for o in gw.ops.get("/api/v1/offices/03405/kpis").json()["officers"]}
    assert officers["cb-farm"]["served"] == 1 and officers["cb-farm"]["rated"] == 1
    counts = gw.ops.get("/api/v1/offices/03405/flags").json()["counts"]
    assert counts["visit:short_service:cleared"] == 1 and counts["rating:short_service:cleared"] == 1


def test_attacks_are_refused_held_or_flagged_sqlite(mosquitto, gateway_factory) -> None:
    run_attacks(gateway_factory(mosquitto.url), mosquitto.port)


def test_attacks_are_refused_held_or_flagged_postgres(mosquitto, postgres, gateway_factory) -> None:
    run_attacks(gateway_factory(mosquitto.url, postgres.url), mosquitto.port)


def test_far_dates_and_small_windows_on_the_public_api(mosquitto, gateway_factory) -> None:
    gw = gateway_factory(mosquitto.url)
    for day in ("9999-12-31", "0001-01-01", "1999-12-31"):
        assert gw.public.get("/api/v1/offices/03390/kpis", params={"day": day}).status_code == 400
        r = gw.public.get("/api/v1/kpis.csv", params={"from": day, "to": day})
        assert r.status_code == 400
        assert gw.public.get("/api/v1/units/03390/kpis", params={"from": day}).status_code == 400
    assert gw.public.get("/api/v1/offices/03390/kpis", params={"day": "2026-02-30"}).status_code == 422
    # a window stored under a lower k (an older gateway, or min_k raised since) is never shown
    day = gw.app.state.kpi.today()
    store = gw.app.state.store
    from gateway.store import schema as s

    with store.engine.begin() as conn:
        conn.execute(s.sentiment_windows.insert().values(
            event_id="00000000-0000-4000-8000-000000000001", office_code="03390", counter=1,
            device_id="k03390-q1", service_day=day.isoformat(), window_start=0.0, window_end=1.0, visits=2,
            k=2, frames=10, score=1.0, class_shares={"happy": 1.0}))
    gw.app.state.kpi.invalidate(["03390"])
    detail = gw.public.get("/api/v1/offices/03390/kpis").json()
    assert detail["sentiment_windows"] == [] and detail["kpi"]["sentiment_visits"] == 0
