"""Bookings and slot capacity (own tables, created with the gateway's at start).

Invariant: a slot never holds more active bookings than its capacity, whatever the concurrency.
A booking is one transaction whose FIRST statement is a write: the slot's row is created if
missing (``INSERT .. ON CONFLICT DO NOTHING``), then ``UPDATE booking_slots SET booked = booked + 1
WHERE .. AND booked < capacity``. On PostgreSQL the UPDATE takes the row lock and re-checks the
condition after a concurrent commit; on SQLite the first write takes the database's write lock
(waiting up to ``busy_timeout``), so the check and the increment are serialised. An UPDATE that
matched no row means the slot is full; nothing else is written. A cancel decrements in the same
way, in the transaction that marks the booking cancelled (only once: ``cancelled_at IS NULL``), and
only before the slot starts (a kept or missed appointment is history, not a cancel).

Codes are six characters from an alphabet without look-alikes (no 0/O, 1/I), drawn with
``secrets`` (32**6 ≈ 10**9 codes): a code is unique for ever (primary key), not only per day.

Personal data: none is needed. An optional phone number is kept only with its purpose (reminder
of this appointment) and deleted ``phone_retention_days`` after the appointment's day
(:func:`purge_phones`, run before every booking) or at once when the booking is cancelled.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Column, Float, Integer, MetaData, String, Table, and_, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
CODE_LEN = 6

METADATA = MetaData()
booking_slots = Table(
    "booking_slots",
    METADATA,
    Column("office_code", String(32), primary_key=True),
    Column("service_field", String(32), primary_key=True),
    Column("day", String(10), primary_key=True),
    Column("slot", String(5), primary_key=True),
    Column("booked", Integer, nullable=False),
)
bookings = Table(
    "bookings",
    METADATA,
    Column("code", String(8), primary_key=True),
    Column("office_code", String(32), nullable=False, index=True),
    Column("service_field", String(32), nullable=False),
    Column("day", String(10), nullable=False, index=True),
    Column("slot", String(5), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("cancelled_at", Float, nullable=True),
    Column("phone", String(20), nullable=True),
    Column("phone_delete_after", String(10), nullable=True),  # local day after which it is deleted
)


def create_tables(engine: Engine) -> None:
    METADATA.create_all(engine, checkfirst=True)


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LEN))


def normalise_code(raw: str) -> str:
    """What a person types or a QR holds → the stored form (upper case, no spaces or dashes)."""
    return "".join(ch for ch in raw.upper() if ch.isalnum())[:16]


@dataclass(frozen=True)
class Booking:
    code: str
    office_code: str
    service_field: str
    day: str
    slot: str
    cancelled: bool


def _insert(engine: Engine, table: Table) -> Any:
    return (postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert)(table)


def _slot_key(office: str, field: str, day: str, slot: str) -> Any:
    t = booking_slots.c
    return and_(t.office_code == office, t.service_field == field, t.day == day, t.slot == slot)


def book(engine: Engine, office: str, field: str, day: str, slot: str, capacity: int,
         phone: str | None = None, retention_days: int = 7) -> str | None:
    """Book one place; the code, or None when the slot is full."""
    with engine.begin() as conn:
        conn.execute(_insert(engine, booking_slots).values(
            office_code=office, service_field=field, day=day, slot=slot, booked=0).on_conflict_do_nothing())
        taken = conn.execute(update(booking_slots).where(
            _slot_key(office, field, day, slot), booking_slots.c.booked < capacity)
            .values(booked=booking_slots.c.booked + 1)).rowcount
        if taken != 1:
            return None
        delete_after = (date.fromisoformat(day) + timedelta(days=retention_days)).isoformat()
        for _ in range(10):
            code = new_code()
            stored = conn.execute(_insert(engine, bookings).values(
                code=code, office_code=office, service_field=field, day=day, slot=slot,
                created_at=time.time(), cancelled_at=None, phone=phone,
                phone_delete_after=delete_after if phone else None).on_conflict_do_nothing()
                .returning(bookings.c.code)).first()
            if stored is not None:  # None: the code exists (drawn twice), draw again
                return code
    raise RuntimeError("no free booking code after 10 draws")  # 10**9 codes: not expected


def cancel(engine: Engine, code: str, today: str, now_hm: str) -> Booking | None:
    """Cancel an active booking whose slot has not started (after ``now_hm`` today, or a later
    day): its place is freed. None if there is none. A booking whose slot has started stays: it was
    kept or missed, and cancelling it afterwards would take a no-show out of the no-show rate."""
    b = bookings.c
    not_started = or_(b.day > today, and_(b.day == today, b.slot > now_hm))
    with engine.begin() as conn:
        row = conn.execute(update(bookings).where(b.code == code, b.cancelled_at.is_(None), not_started)
                           .values(cancelled_at=time.time(), phone=None, phone_delete_after=None)
                           .returning(b.office_code, b.service_field, b.day, b.slot)).first()
        if row is None:
            return None
        conn.execute(update(booking_slots).where(_slot_key(*row), booking_slots.c.booked > 0)
                     .values(booked=booking_slots.c.booked - 1))
    return Booking(code, row.office_code, row.service_field, row.day, row.slot, True)


def find(engine: Engine, code: str) -> Booking | None:
    b = bookings.c
    with engine.connect() as conn:
        row = conn.execute(select(b.code, b.office_code, b.service_field, b.day, b.slot, b.cancelled_at)
                           .where(b.code == code)).first()
    if row is None:
        return None
    cancelled = row.cancelled_at is not None
    return Booking(row.code, row.office_code, row.service_field, row.day, row.slot, cancelled)


def booked_counts(engine: Engine, office: str, field: str, day: str) -> dict[str, int]:
    t = booking_slots.c
    with engine.connect() as conn:
        rows = conn.execute(select(t.slot, t.booked).where(
            t.office_code == office, t.service_field == field, t.day == day))
        return {r.slot: r.booked for r in rows}


def day_list(engine: Engine, office: str, day: str) -> list[dict[str, str]]:
    """The office's active bookings of ``day`` as the kiosks need them (no phone number)."""
    b = bookings.c
    with engine.connect() as conn:
        rows = conn.execute(select(b.code, b.service_field, b.slot).where(
            b.office_code == office, b.day == day, b.cancelled_at.is_(None)).order_by(b.slot, b.code))
        return [{"code": r.code, "service_field": r.service_field, "slot": r.slot} for r in rows]


def purge_phones(engine: Engine, today: str) -> int:
    """Delete phone numbers past their retention (Law 91/2025: kept no longer than their purpose)."""
    b = bookings.c
    with engine.begin() as conn:
        return conn.execute(update(bookings).where(b.phone.is_not(None), b.phone_delete_after < today)
                            .values(phone=None, phone_delete_after=None)).rowcount
