"""The booking API on the real gateway (uvicorn, real SQLite and PostgreSQL): capacity under 50
concurrent requests, the per-client budget, cancel, phone rules, bad input never a 500."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import httpx
import pytest

from gateway.booking import store as bs
from tests.gateway.conftest import RunningGateway

OFFICE = "03390"


def booking_section(capacity: int = 3, per_hour: int = 1000, **extra: Any) -> dict[str, Any]:
    base = {"enabled": True, "per_client_per_hour": per_hour, "phone": "optional"}
    return base | extra | {"offices": {OFFICE: {
        "fields": {"land": "Đất đai", "civil": "Hộ tịch"}, "hours": ["07:30-11:30", "13:30-16:30"],
        "slot_minutes": 30, "capacity": capacity, "days_ahead": 14, "weekdays": list(range(7))}}}


def _day(gw: RunningGateway, ahead: int = 2) -> str:
    return (gw.app.state.kpi.today() + timedelta(days=ahead)).isoformat()


def _book(gw: RunningGateway, day: str, slot: str = "08:00", field: str = "land", **extra: Any) -> Any:
    body = {"office": OFFICE, "service_field": field, "day": day, "slot": slot, **extra}
    with httpx.Client(base_url=gw.base, timeout=60) as c:
        return c.post("/api/v1/booking", json=body)


def _fifty_at_once(gw: RunningGateway) -> None:
    day = _day(gw)
    with ThreadPoolExecutor(50) as pool:
        results = list(pool.map(lambda _: _book(gw, day), range(50)))
    codes = [r.json()["code"] for r in results if r.status_code == 201]
    assert sorted(r.status_code for r in results) == [201] * 3 + [409] * 47
    assert len(set(codes)) == 3
    assert all("đủ người" in r.json()["detail"] for r in results if r.status_code == 409)
    slots = {s["slot"]: s for s in gw.public.get("/api/v1/booking/slots", params={
        "office": OFFICE, "service_field": "land", "day": day}).json()}
    assert slots["08:00"]["booked"] == 3 and slots["08:00"]["free"] == 0
    listed = bs.day_list(gw.app.state.store.engine, OFFICE, day)
    assert sorted(a["code"] for a in listed) == sorted(codes)
    # a cancel frees exactly one place, once
    assert gw.public.delete(f"/api/v1/booking/{codes[0]}").json() == {"code": codes[0], "cancelled": True}
    assert gw.public.delete(f"/api/v1/booking/{codes[0]}").status_code == 404
    with ThreadPoolExecutor(20) as pool:
        again = list(pool.map(lambda _: _book(gw, day), range(20)))
    assert sorted(r.status_code for r in again) == [201] + [409] * 19


@pytest.mark.slow  # 70 concurrent requests through the gateway
def test_capacity_holds_under_50_concurrent_requests_sqlite(mosquitto, gateway_factory):
    _fifty_at_once(gateway_factory(mosquitto.url, booking=booking_section()))


def test_capacity_holds_under_50_concurrent_requests_postgresql(mosquitto, postgres, gateway_factory):
    _fifty_at_once(gateway_factory(mosquitto.url, db_url=postgres.url, booking=booking_section()))


def test_per_client_budget_counts_bookings_cancels_and_wrong_codes(mosquitto, gateway_factory):
    gw = gateway_factory(mosquitto.url, booking=booking_section(capacity=5, per_hour=3))
    day = _day(gw)
    assert _book(gw, day).status_code == 201
    assert gw.public.get("/dat-lich/ma/ZZZZZZ").status_code == 404  # guessing a code costs budget
    assert gw.public.delete("/api/v1/booking/ZZZZZZ").status_code == 404
    r = _book(gw, day)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 3000
    # reading the page and the free slots is never limited
    assert gw.public.get("/dat-lich", params={"office": OFFICE}).status_code == 200


@pytest.mark.parametrize("change,status", [
    ({"office": "nope"}, 404),
    ({"service_field": "tax"}, 422),
    ({"slot": "08:10"}, 422),
    ({"slot": "12:00"}, 422),
    ({"day": "2026-02-30"}, 422),
    ({"day": "2099-01-01"}, 422),
    ({"phone": "12345", "phone_consent": True}, 422),
    ({"phone": "0912345678"}, 422),  # no consent
    ({"extra": 1}, 422),
    ({"slot": "x" * 500}, 422),
])
def test_bad_bookings_are_refused_with_a_reason(mosquitto, gateway_factory, change, status):
    gw = gateway_factory(mosquitto.url, booking=booking_section())
    body = {"office": OFFICE, "service_field": "land", "day": _day(gw), "slot": "08:00"} | change
    r = gw.public.post("/api/v1/booking", json=body)
    assert r.status_code == status, r.text
    assert bs.day_list(gw.app.state.store.engine, OFFICE, _day(gw)) == []


def test_phone_is_optional_kept_with_its_purpose_and_deleted(mosquitto, gateway_factory):
    gw = gateway_factory(mosquitto.url, booking=booking_section(phone_retention_days=0))
    engine = gw.app.state.store.engine
    r = _book(gw, _day(gw, 0), slot="16:00", phone="0912 345 678", phone_consent=True)
    if r.status_code == 409:  # after 16:00 local the slot has started: book tomorrow's instead
        r = _book(gw, _day(gw, 1), slot="16:00", phone="0912 345 678", phone_consent=True)
    assert r.status_code == 201
    with engine.connect() as conn:
        row = conn.execute(bs.bookings.select().where(bs.bookings.c.code == r.json()["code"])).first()
    assert row.phone == "0912345678"
    later = (gw.app.state.kpi.today() + timedelta(days=5)).isoformat()
    assert bs.purge_phones(engine, later) == 1
    assert "0912345678" not in str(bs.day_list(engine, OFFICE, row.day))  # never sent to kiosks
    page = gw.public.get("/dat-lich", params={"office": OFFICE, "field": "land", "day": _day(gw)}).text
    assert "Mục đích" in page and "91/2025" in page and "Thời gian lưu" in page


def test_booking_is_off_unless_enabled(mosquitto, gateway_factory):
    gw = gateway_factory(mosquitto.url)
    assert gw.public.get("/api/v1/booking/offices").json() == []
    r = gw.public.post("/api/v1/booking", json={"office": OFFICE, "service_field": "land",
                                                "day": _day(gw), "slot": "08:00"})
    assert r.status_code == 404


def test_phone_off_hides_the_field_and_refuses_a_number(mosquitto, gateway_factory):
    gw = gateway_factory(mosquitto.url, booking=booking_section(phone="off"))
    page = gw.public.get("/dat-lich", params={"office": OFFICE, "field": "land", "day": _day(gw)}).text
    assert 'name="phone"' not in page and 'name="slot"' in page
    assert _book(gw, _day(gw), phone="0912345678", phone_consent=True).status_code == 422
    assert _book(gw, _day(gw)).status_code == 201
