"""What the booking page and its JSON API share: choices offered, validation, booking, cancelling.

Every refusal is a :class:`BookingRefused` with an HTTP status and a Vietnamese message (English
beside it): an unknown office or field, a day outside the bookable window or a closed day, a slot
that does not exist or has started, a malformed phone number, a full slot, a client over its hourly
budget. Nothing here trusts the page: the JSON API and a hand-made form get the same checks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from gateway.booking import store as bs
from gateway.booking.config import BookingSettings, OfficeBooking

PHONE_RE = re.compile(r"^0[0-9]{9,10}$")  # 10 digits (11 for old landlines), ASCII only: \d takes any script


class BookingRefused(Exception):
    def __init__(self, status: int, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.retry_after = status, message, retry_after


@dataclass(frozen=True)
class Choice:
    office: str
    field: str
    day: date
    slot: str
    phone: str | None


class BookingService:
    def __init__(self, settings: BookingSettings, engine: Any, now_local: Any, budget: Any) -> None:
        self.settings, self.engine, self.now_local, self.budget = settings, engine, now_local, budget
        self.changed: Any = None  # set by the pusher: called with (office, day) after a change

    # ------------------------------------------------------------------ choices

    def office(self, code: str) -> OfficeBooking:
        office = self.settings.offices.get(code) if self.settings.enabled else None
        if office is None:
            raise BookingRefused(404, f"Cơ quan không nhận đặt lịch (office {code!r} takes no appointments)")
        return office

    def days(self, code: str) -> list[date]:
        office, today = self.office(code), self.now_local().date()
        return [d for d in (today + timedelta(days=i) for i in range(office.days_ahead + 1))
                if office.open_on(d)]

    def slots(self, code: str, field: str, day: date) -> list[dict[str, Any]]:
        office = self._check(code, field, day)
        booked = bs.booked_counts(self.engine, code, field, day.isoformat())
        now = self.now_local()
        out = []
        for slot in office.slots():
            started = day == now.date() and slot <= now.strftime("%H:%M")
            taken = booked.get(slot, 0)
            out.append({"slot": slot, "capacity": office.capacity, "booked": taken,
                        "free": 0 if started else max(0, office.capacity - taken), "started": started})
        return out

    def _check(self, code: str, field: str, day: date) -> OfficeBooking:
        office = self.office(code)
        if field not in office.fields:
            raise BookingRefused(422, f"Lĩnh vực không hợp lệ (unknown service field {field!r})")
        if day not in self.days(code):
            raise BookingRefused(422, f"Ngày {day.isoformat()} không nhận đặt lịch (day not bookable)")
        return office

    # ------------------------------------------------------------------ actions

    def _spend(self, client: str) -> None:
        wait = self.budget.spend(client)
        if wait:
            raise self._over_budget(wait)

    def _check_budget(self, client: str) -> None:
        wait = self.budget.retry_after(client)
        if wait:
            raise self._over_budget(wait)

    @staticmethod
    def _over_budget(wait: int) -> BookingRefused:
        return BookingRefused(429, f"Quá nhiều yêu cầu, vui lòng thử lại sau {wait // 60 + 1} phút "
                              "(too many requests)", retry_after=wait)

    def book(self, c: Choice, client: str) -> str:
        office = self._check(c.office, c.field, c.day)
        if c.slot not in office.slots():
            raise BookingRefused(422, f"Khung giờ không hợp lệ (unknown slot {c.slot!r})")
        now = self.now_local()
        if c.day == now.date() and c.slot <= now.strftime("%H:%M"):
            raise BookingRefused(409, "Khung giờ này đã bắt đầu (slot has started)")
        if c.phone is not None and (self.settings.phone == "off" or not PHONE_RE.match(c.phone)):
            raise BookingRefused(422, "Số điện thoại không hợp lệ (phone: 10 digits starting with 0)")
        self._spend(client)
        bs.purge_phones(self.engine, now.date().isoformat())
        code = bs.book(self.engine, c.office, c.field, c.day.isoformat(), c.slot, office.capacity,
                       c.phone, self.settings.phone_retention_days)
        if code is None:
            raise BookingRefused(409, "Khung giờ đã đủ người, vui lòng chọn giờ khác (slot full)")
        self._notify(c.office, c.day.isoformat())
        return code

    def lookup(self, raw: str, client: str) -> bs.Booking:
        """The booking of a code. A wrong code costs budget; over budget every code is refused
        (429) before it is looked up, so the answer cannot tell a right code from a wrong one."""
        self._check_budget(client)
        code = bs.normalise_code(raw)
        found = bs.find(self.engine, code) if len(code) == bs.CODE_LEN else None
        if found is None:
            self._spend(client)  # a wrong code costs budget: guessing codes is limited
            raise BookingRefused(404, "Không tìm thấy mã hẹn (no such appointment code)")
        return found

    def cancel(self, raw: str, client: str) -> bs.Booking:
        """Cancel before the slot starts; after that the booking is kept or missed (409)."""
        self._spend(client)
        code, now = bs.normalise_code(raw), self.now_local()
        done = bs.cancel(self.engine, code, now.date().isoformat(), now.strftime("%H:%M"))
        if done is None:
            found = bs.find(self.engine, code) if len(code) == bs.CODE_LEN else None
            if found is not None and not found.cancelled:
                raise BookingRefused(409, "Lịch hẹn đã đến giờ, không huỷ được nữa (the slot has started: "
                                          "an appointment can be cancelled only before its time)")
            raise BookingRefused(404, "Không có lịch hẹn đang hiệu lực với mã này (no active appointment)")
        self._notify(done.office_code, done.day)
        return done

    def _notify(self, office: str, day: str) -> None:
        if self.changed is not None:
            self.changed(office, day)


def parse_day(raw: str) -> date:
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise BookingRefused(422, f"Ngày không hợp lệ (day {raw[:20]!r}: YYYY-MM-DD)") from None


def now_in(tz: Any) -> Any:
    return lambda: datetime.now(tz)
