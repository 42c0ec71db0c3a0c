"""``[booking]`` settings: which offices take appointments, their fields, hours, slot capacity.

Example (gateway.toml)::

    [booking]
    enabled = true
    phone = "off"                 # "off" | "optional": a phone number is never required
    phone_retention_days = 7      # deleted this many days after the appointment's day
    per_client_per_hour = 6       # bookings + cancels + failed code look-ups per client address

    [booking.offices.03390]
    fields = { land = "Đất đai", civil = "Hộ tịch", insurance = "Bảo hiểm xã hội" }
    hours = ["07:30-11:30", "13:30-16:30"]
    slot_minutes = 30
    capacity = 2                  # appointments per slot and field
    days_ahead = 14
    weekdays = [0, 1, 2, 3, 4]    # Monday = 0

The office's possible appointments per day (slots × fields × capacity) must fit one
``load_appointments`` command (``contract.payloads.MAX_APPOINTMENTS_PER_DAY``).
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from contract.payloads import MAX_APPOINTMENTS_PER_DAY

HOURS_RE = re.compile(r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$")
FIELD_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class OfficeBooking(_Section):
    fields: dict[str, Annotated[str, Field(min_length=1, max_length=60)]] = Field(
        min_length=1, max_length=20, description="service field code = label shown to citizens")
    hours: list[str] = Field(default_factory=lambda: ["07:30-11:30", "13:30-16:30"], min_length=1,
                             max_length=6, description="opening hours, local time, HH:MM-HH:MM")
    slot_minutes: int = Field(default=30, ge=5, le=240, description="length of one slot")
    capacity: int = Field(default=2, ge=1, le=50, description="appointments per slot and field")
    days_ahead: int = Field(default=14, ge=1, le=60, description="how far ahead citizens may book")
    weekdays: list[int] = Field(default_factory=lambda: [0, 1, 2, 3, 4], min_length=1, max_length=7)

    @field_validator("fields")
    @classmethod
    def _codes(cls, v: dict[str, str]) -> dict[str, str]:
        bad = [c for c in v if not FIELD_RE.match(c)]
        if bad:
            raise ValueError(f"field codes {bad}: lower-case letters, digits, '_' (1-32)")
        return v

    @field_validator("hours")
    @classmethod
    def _hours(cls, v: list[str]) -> list[str]:
        for h in v:
            if not HOURS_RE.match(h) or h[:5] >= h[6:]:
                raise ValueError(f"hours {h!r}: HH:MM-HH:MM with start before end")
        return v

    @model_validator(mode="after")
    def _fits_one_command(self) -> OfficeBooking:
        total = len(self.slots()) * len(self.fields) * self.capacity
        if total > MAX_APPOINTMENTS_PER_DAY:
            raise ValueError(f"{total} appointments a day (slots x fields x capacity) is more than one "
                             f"kiosk list carries ({MAX_APPOINTMENTS_PER_DAY})")
        if not set(self.weekdays) <= set(range(7)):
            raise ValueError("weekdays are 0 (Monday) .. 6 (Sunday)")
        return self

    def slots(self) -> list[str]:
        """Every slot start of a day, "HH:MM"."""
        out = []
        step = timedelta(minutes=self.slot_minutes)
        for h in self.hours:
            t = datetime.combine(date(2000, 1, 3), time.fromisoformat(h[:5]))
            end = datetime.combine(date(2000, 1, 3), time.fromisoformat(h[6:]))
            while t + step <= end:
                out.append(t.strftime("%H:%M"))
                t += step
        return out

    def open_on(self, day: date) -> bool:
        return day.weekday() in self.weekdays


class BookingSettings(_Section):
    enabled: bool = False
    phone: Literal["off", "optional"] = Field(
        default="off", description="offer an optional phone field (never required); keep off until the "
        "office sends reminders: a number may be kept only for a purpose that is carried out")
    phone_retention_days: int = Field(default=7, ge=0, le=90,
                                      description="a phone number is deleted this long after its day")
    per_client_per_hour: int = Field(default=6, ge=1, le=1000,
                                     description="bookings, cancels and failed look-ups per client")
    push_interval_s: float = Field(default=600.0, ge=5, le=86_400,
                                   description="re-send today's and tomorrow's lists to kiosks")
    offices: dict[str, OfficeBooking] = Field(default_factory=dict, max_length=500)
