"""Attacks on the public booking API: the per-client budget (guessing codes past it, a burst of
concurrent requests, IPv4-mapped addresses), late cancels that would move the no-show rate, and
phone numbers in other scripts' digits. The service runs on a real SQLite database; the budget
oracle is checked through the real gateway (uvicorn, real Mosquitto)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import create_engine

from gateway.booking import store as bs
from gateway.booking.config import BookingSettings
from gateway.booking.limits import ClientBudget
from gateway.booking.service import BookingRefused, BookingService, Choice
from tests.gateway.booking.test_booking_api import OFFICE, _book, _day, booking_section

TZ = ZoneInfo("Asia/Ho_Chi_Minh")


class Clock:
    """The office's local time, moved by the test."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _service(tmp_path: Path, clock: Clock, per_hour: int = 1000, budget_clock: Any = time.monotonic,
             **extra: Any) -> BookingService:
    engine = create_engine(f"sqlite:///{tmp_path / 'b.db'}", connect_args={"timeout": 30})
    bs.create_tables(engine)
    settings = BookingSettings.model_validate(booking_section(capacity=5, per_hour=per_hour, **extra))
    return BookingService(settings, engine, clock, ClientBudget(per_hour, clock=budget_clock))


def test_over_budget_a_right_code_is_refused_like_a_wrong_one(mosquitto, gateway_factory):
    """Before: past the budget a wrong code answered 429 and a right one 200 with its details, so a
    guesser kept guessing at full speed and learnt every hit (then redeemed or cancelled it)."""
    gw = gateway_factory(mosquitto.url, booking=booking_section(capacity=5, per_hour=3))
    code = _book(gw, _day(gw)).json()["code"]
    for guess in ("ZZZZZZ", "YYYYYY"):
        assert gw.public.get(f"/dat-lich/ma/{guess}").status_code == 404
    wrong, right = gw.public.get("/dat-lich/ma/XXXXXX"), gw.public.get(f"/dat-lich/ma/{code}")
    assert (wrong.status_code, right.status_code) == (429, 429)
    assert code not in right.text
    assert bs.find(gw.app.state.store.engine, code) is not None  # still booked, still findable in budget


def test_a_burst_of_concurrent_requests_cannot_all_pass_the_budget(tmp_path):
    """Before: the check and the count were two steps; 20 requests at once all passed the check."""
    def slow_clock() -> float:
        time.sleep(0.005)  # a busy machine: the thread is switched out between the two steps
        return time.monotonic()

    svc = _service(tmp_path, Clock(datetime.now(TZ)), per_hour=3, budget_clock=slow_clock)
    day = svc.days(OFFICE)[2]
    start = threading.Barrier(20)

    def book(i: int) -> str:
        start.wait()
        try:
            return svc.book(Choice(OFFICE, "land" if i % 2 else "civil", day, "08:00", None), "203.0.113.9")
        except BookingRefused as exc:
            return str(exc.status)

    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(book, range(20)))
    assert sum(len(r) == bs.CODE_LEN for r in results) == 3, results
    assert results.count("429") == 17


def test_ipv4_mapped_clients_do_not_share_one_budget():
    """Before: on a dual-stack listener every IPv4 client (::ffff:a.b.c.d) fell into the same /64,
    so one client's six actions locked the booking page for the whole IPv4 internet."""
    budget = ClientBudget(1)
    budget.spend("::ffff:198.51.100.7")
    assert budget.retry_after("::ffff:203.0.113.9") == 0
    assert budget.retry_after("198.51.100.7") > 0  # the same client, seen without the mapping
    budget.spend("2001:db8:1:2::5")
    assert budget.retry_after("2001:db8:1:2::6") > 0  # IPv6 still by /64
    assert budget.retry_after("2001:db8:1:3::5") == 0


@pytest.mark.parametrize("late_by", [timedelta(0), timedelta(minutes=1), timedelta(hours=6)])
def test_a_booking_cannot_be_cancelled_once_its_slot_has_started(tmp_path, late_by):
    """Before: a booking of today could be cancelled after its slot, so at the end of the day the
    missed appointments could be cancelled and the office's no-show rate dropped to zero."""
    morning = datetime(2026, 12, 7, 7, 0, tzinfo=TZ)  # a Monday
    clock = Clock(morning)
    svc = _service(tmp_path, clock)
    code = svc.book(Choice(OFFICE, "land", morning.date(), "08:00", None), "198.51.100.7")
    clock.now = morning.replace(hour=8) + late_by
    with pytest.raises(BookingRefused) as exc:
        svc.cancel(code, "198.51.100.7")
    assert exc.value.status == 409 and "đến giờ" in exc.value.message
    assert [a["code"] for a in bs.day_list(svc.engine, OFFICE, "2026-12-07")] == [code]
    assert bs.booked_counts(svc.engine, OFFICE, "land", "2026-12-07") == {"08:00": 1}


def test_a_booking_can_be_cancelled_until_its_slot_starts(tmp_path):
    clock = Clock(datetime(2026, 12, 7, 7, 0, tzinfo=TZ))
    svc = _service(tmp_path, clock)
    code = svc.book(Choice(OFFICE, "land", clock.now.date(), "08:00", None), "198.51.100.7")
    clock.now = clock.now.replace(hour=7, minute=59)
    assert svc.cancel(code, "198.51.100.7").cancelled
    assert bs.booked_counts(svc.engine, OFFICE, "land", "2026-12-07") == {"08:00": 0}
    with pytest.raises(BookingRefused) as exc:
        svc.cancel(code, "198.51.100.7")  # once only
    assert exc.value.status == 404


@pytest.mark.parametrize("phone", ["0٩١٢٣٤٥٦٧٨", "0９１２３４５６７８"])  # Arabic-Indic, full-width digits
def test_a_phone_number_takes_ascii_digits_only(tmp_path, phone):
    clock = Clock(datetime(2026, 12, 7, 7, 0, tzinfo=TZ))
    svc = _service(tmp_path, clock, phone="optional")
    with pytest.raises(BookingRefused) as exc:
        svc.book(Choice(OFFICE, "land", clock.now.date(), "08:00", phone), "198.51.100.7")
    assert exc.value.status == 422
    assert bs.day_list(svc.engine, OFFICE, "2026-12-07") == []


CROSS = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"}
IMAGE = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "image"}


def test_another_site_cannot_book_cancel_or_spend_a_visitors_budget(mosquitto, gateway_factory):
    """Before: a page on any site could post the booking form from its visitors' browsers (each from
    its own address, so past the per-client budget: an office's calendar filled by a popular page), or
    load six wrong code pages as images and lock a visitor out of booking for an hour."""
    gw = gateway_factory(mosquitto.url, booking=booking_section(capacity=5, per_hour=2))
    day = _day(gw)
    form = {"office": OFFICE, "field": "land", "day": day, "slot": "08:00"}
    for headers in (CROSS, IMAGE):
        r = gw.public.post("/dat-lich", data=form, headers=headers)
        assert r.status_code == 403 and "trang web khác" in r.text
    for _ in range(4):  # wrong codes from another site's images: refused, nothing spent
        assert gw.public.get("/dat-lich/ma/ZZZZZZ", headers=IMAGE).status_code == 403
    assert bs.day_list(gw.app.state.store.engine, OFFICE, day) == []
    same = {"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "navigate"}
    r = gw.public.post("/dat-lich", data=form, headers=same, follow_redirects=False)
    assert r.status_code == 303, r.text
    code = r.headers["location"].rsplit("/", 1)[1]
    assert gw.public.get(f"/dat-lich/ma/{code}", headers=CROSS).status_code == 200  # a link from a message
    assert gw.public.post("/dat-lich/huy", data={"code": code}, headers=CROSS).status_code == 403
    assert gw.public.delete(f"/api/v1/booking/{code}", headers=IMAGE).status_code == 403
    assert [a["code"] for a in bs.day_list(gw.app.state.store.engine, OFFICE, day)] == [code]
    assert gw.public.post("/dat-lich/huy", data={"code": code}, headers=same).status_code == 200
    assert bs.day_list(gw.app.state.store.engine, OFFICE, day) == []


def test_checking_the_budget_keeps_nothing():
    """Right-code look-ups check the budget; a flood of them from fresh IPv6 /64s must not grow memory."""
    budget = ClientBudget(3)
    for i in range(1000):
        assert budget.retry_after(f"2001:db8:{i:x}::1") == 0
    assert budget.tracked() == 0
    budget.spend("2001:db8:1::1")
    assert budget.tracked() == 1
