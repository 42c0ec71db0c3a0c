"""Ticket kinds and service fields at the gateway: stored per visit, KPIs by kind and field.

``visit_kinds`` holds one row per visit that is not a plain walk-in (kind ``priority`` or
``appointment``, or any ticket naming a service field), keyed like ``visits``; a visit without a
row is a walk-in of no particular field, which is how every event from before kinds existed reads.
The writer calls :func:`record_kinds` in the batch's transaction after the projectors
(gateway/store/writer.py), so a visit and its kind commit together; the first statement of a
visit's kind wins (a later event cannot relabel it).

The table is this module's own (``METADATA``), created by :func:`create_tables` at start (from
``Store.migrate``), so it needs no step in the shared migration list.

Figures (:func:`kind_kpis`; bookings against redeemed: :func:`appointment_figures`; served by
gateway/api_kinds.py): per (kind, field) the tickets issued, called, served and no-show, the mean
and 90th-percentile wait (issued → called, the kiosk's monotonic ``wait_s``), and for appointment
tickets the punctuality: minutes between the slot's start and the redeem (issue) time on the
office's local clock, only for tickets whose kiosk clock was synchronised when issued.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Boolean, Column, Integer, MetaData, String, Table, and_, select
from sqlalchemy.dialects import postgresql, sqlite

from contract.payloads import TICKET_EVENT_TYPES, Event, TicketKind
from gateway.store import schema as s

METADATA = MetaData()
visit_kinds = Table(
    "visit_kinds",
    METADATA,
    Column("office_code", String(32), primary_key=True),
    Column("counter", Integer, primary_key=True),
    Column("service_day", String(10), primary_key=True),
    Column("ticket_no", Integer, primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("service_field", String(32), nullable=True),
    Column("slot", String(5), nullable=True),
    Column("issued_synced", Boolean, nullable=True),  # the ticket.issued event's clock_synced
)


def create_tables(engine: Any) -> None:
    METADATA.create_all(engine, checkfirst=True)


def _insert(dialect: str) -> Any:
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(visit_kinds)


def record_kinds(conn: Any, dialect: str, events: list[Event], conflicts: set[str] = frozenset()) -> int:
    """Store the kind and field of the batch's ticket events that are not plain walk-ins; events held
    as restated visit steps (``conflicts``, gateway/store/projectors.py) never set a kind."""
    rows: dict[tuple, dict[str, Any]] = {}
    for ev in events:
        if ev.type not in TICKET_EVENT_TYPES or ev.event_id in conflicts:
            continue
        d = ev.data
        if d.kind == TicketKind.WALK_IN and d.service_field is None:
            continue
        key = (ev.office_code, d.counter, d.service_day.isoformat(), d.ticket_no)
        rows.setdefault(key, {"office_code": key[0], "counter": key[1], "service_day": key[2],
                              "ticket_no": key[3], "kind": d.kind.value, "service_field": d.service_field,
                              "slot": d.slot, "issued_synced": None})
        if ev.type == "ticket.issued":
            rows[key]["issued_synced"] = ev.clock_synced
    if rows:
        conn.execute(_insert(dialect).on_conflict_do_nothing(), list(rows.values()))
    return len(rows)


def _p90(values: list[float]) -> float | None:
    if not values:
        return None
    v = sorted(values)
    return round(v[min(len(v) - 1, int(0.9 * len(v)))], 1)


def _punctuality_min(issued_at: float, day: str, slot: str, tz: ZoneInfo) -> float:
    start = datetime.fromisoformat(f"{day}T{slot}").replace(tzinfo=tz)
    return round((issued_at - start.timestamp()) / 60, 1)


def kind_kpis(conn: Any, office: str, day: date, tz: ZoneInfo) -> list[dict[str, Any]]:
    """One row per (kind, field) of the office's day (see the module docstring)."""
    v, k = s.visits, visit_kinds
    q = (
        select(v.c.issued_at, v.c.called_at, v.c.completed_at, v.c.no_show_at, v.c.wait_s,
               k.c.kind, k.c.service_field, k.c.slot, k.c.issued_synced)
        .select_from(v.outerjoin(k, and_(k.c.office_code == v.c.office_code, k.c.counter == v.c.counter,
                                         k.c.service_day == v.c.service_day, k.c.ticket_no == v.c.ticket_no)))
        .where(v.c.office_code == office, v.c.service_day == day.isoformat(), v.c.discarded_at.is_(None))
    )
    groups: dict[tuple[str, str | None], dict[str, Any]] = defaultdict(
        lambda: {"issued": 0, "called": 0, "served": 0, "no_show": 0, "waits": [], "punctuality": []})
    for r in conn.execute(q):
        g = groups[(r.kind or TicketKind.WALK_IN.value, r.service_field)]
        g["issued"] += r.issued_at is not None
        g["called"] += r.called_at is not None
        g["served"] += r.completed_at is not None
        g["no_show"] += r.no_show_at is not None
        if r.wait_s is not None:
            g["waits"].append(r.wait_s)
        if r.slot and r.issued_at is not None and r.issued_synced:
            g["punctuality"].append(_punctuality_min(r.issued_at, day.isoformat(), r.slot, tz))
    out = []
    for (kind, field), g in sorted(groups.items(), key=lambda x: (x[0][0], x[0][1] or "")):
        waits, punct = g.pop("waits"), g.pop("punctuality")
        out.append({"kind": kind, "service_field": field, **g,
                    "mean_wait_s": round(sum(waits) / len(waits), 1) if waits else None,
                    "p90_wait_s": _p90(waits),
                    "mean_punctuality_min": round(sum(punct) / len(punct), 1) if punct else None})
    return out


def appointment_figures(engine: Any, office: str, day: date, rows: list[dict[str, Any]],
                        day_over: bool) -> dict[str, Any]:
    """Bookings of the day (not cancelled) against appointment tickets issued. The no-show rate is
    given once the day is over; a citizen too late for the slot gets a walk-in ticket
    (``late_policy = "walk_in"``) and counts as a missed appointment here."""
    from gateway.booking.store import day_list

    booked = len(day_list(engine, office, day.isoformat()))
    redeemed = sum(r["issued"] for r in rows if r["kind"] == TicketKind.APPOINTMENT.value)
    rate = round(1 - min(redeemed, booked) / booked, 3) if booked and day_over else None
    return {"booked": booked, "redeemed": redeemed, "no_show_rate": rate}
