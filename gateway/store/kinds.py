"""Ticket kinds and service fields over a period: one SQL aggregation per figure group.

Reads ``visits`` joined with ``visit_kinds`` (gateway/ticket_kinds.py; a visit without a kind row is a
walk-in of no field) and ``bookings`` (gateway/booking/store.py), for a list of offices and a day
range, grouped by (kind, service field) in the database: counts, wait sums, the share over the
target, the nearest-rank p90 of the waits (a window function, SQLite ≥ 3.25 and PostgreSQL alike),
and for appointment tickets the sum of redeem (issue) times per (day, slot), which the caller turns
into the mean punctuality with the slot's start on the office's clock (only tickets issued with a
synchronised clock). Definitions are those of ``/api/v1/offices/{code}/kinds`` (docs/gateway.md#ticket-kinds),
which tests/gateway/test_kind_figures.py checks day by day. Cost grows with the period's visits (the
kind rollup would belong to gateway/store/rollups.py); an office-year is ~30 k visits.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, bindparam, case, func, literal, select

from gateway.booking.store import bookings
from gateway.store import schema as s
from gateway.ticket_kinds import visit_kinds

WALK_IN = "walk_in"


def _joined() -> tuple[Any, Any, Any]:
    v, k = s.visits, visit_kinds
    src = v.outerjoin(k, and_(k.c.office_code == v.c.office_code, k.c.counter == v.c.counter,
                              k.c.service_day == v.c.service_day, k.c.ticket_no == v.c.ticket_no))
    where = and_(v.c.office_code.in_(bindparam("offices", expanding=True)),
                 v.c.service_day >= bindparam("day_from"), v.c.service_day <= bindparam("day_to"),
                 v.c.discarded_at.is_(None))
    return src, where, func.coalesce(k.c.kind, literal(WALK_IN)).label("kind")


def _counts() -> Any:
    v, k = s.visits, visit_kinds
    src, where, kind = _joined()
    over = case((v.c.wait_s > bindparam("target_s"), 1), else_=0)
    return (select(kind, k.c.service_field, func.count(v.c.issued_at).label("issued"),
                   func.count(v.c.called_at).label("called"), func.count(v.c.completed_at).label("served"),
                   func.count(v.c.no_show_at).label("no_show"), func.count(v.c.wait_s).label("wait_n"),
                   func.sum(v.c.wait_s).label("wait_sum"), func.sum(over).label("over_target"))
            .select_from(src).where(where).group_by(kind, k.c.service_field))


def _p90() -> Any:
    """Nearest rank: the ((9 n) div 10 + 1)-th smallest wait of each group (Python's v[int(0.9 n)])."""
    v, k = s.visits, visit_kinds
    src, where, kind = _joined()
    part = (kind, k.c.service_field)
    ranked = (select(kind, k.c.service_field, v.c.wait_s,
                     func.row_number().over(partition_by=part, order_by=v.c.wait_s).label("rn"),
                     func.count().over(partition_by=part).label("n"))
              .select_from(src).where(where, v.c.wait_s.is_not(None)).subquery())
    return select(ranked.c.kind, ranked.c.service_field, ranked.c.wait_s).where(
        ranked.c.rn == (ranked.c.n * 9) // 10 + 1)  # SQLAlchemy 2: // is integer division


def _punctuality() -> Any:
    v, k = s.visits, visit_kinds
    src, where, kind = _joined()
    return (select(kind, k.c.service_field, v.c.service_day, k.c.slot, func.count().label("n"),
                   func.sum(v.c.issued_at).label("issued_sum"))
            .select_from(src)
            .where(where, k.c.slot.is_not(None), v.c.issued_at.is_not(None), k.c.issued_synced.is_(True))
            .group_by(kind, k.c.service_field, v.c.service_day, k.c.slot))


def _booked() -> Any:
    b = bookings.c
    return (select(b.service_field, func.count().label("booked"),
                   func.sum(case((b.day < bindparam("today"), 1), else_=0)).label("booked_closed"))
            .where(b.office_code.in_(bindparam("offices", expanding=True)), b.day >= bindparam("day_from"),
                   b.day <= bindparam("day_to"), b.cancelled_at.is_(None))
            .group_by(b.service_field))


def _redeemed_closed() -> Any:
    v, k = s.visits, visit_kinds
    src, where, _kind = _joined()
    return (select(k.c.service_field, func.count(v.c.issued_at).label("redeemed"))
            .select_from(src)
            .where(where, k.c.kind == "appointment", v.c.service_day < bindparam("today"))
            .group_by(k.c.service_field))


COUNTS, P90, PUNCTUALITY, BOOKED, REDEEMED = _counts(), _p90(), _punctuality(), _booked(), _redeemed_closed()


def _slot_start(day: str, slot: str, tz: ZoneInfo) -> float:
    return datetime.fromisoformat(f"{day}T{slot}").replace(tzinfo=tz).timestamp()


def kind_figures(conn: Any, offices: list[str], day_from: str, day_to: str, target_s: float,
                 tz: ZoneInfo) -> list[dict[str, Any]]:
    """Per (kind, service field), sorted: issued, called, served, no_show, mean and p90 wait, the
    share of waits over ``target_s`` and, for appointment tickets, the mean punctuality in minutes
    (redeem time − slot start; negative = early)."""
    params = {"offices": offices, "day_from": day_from, "day_to": day_to}
    p90 = {(r.kind, r.service_field): float(r.wait_s) for r in conn.execute(P90, params)}
    late: dict[tuple[str, str | None], list[float]] = {}
    for r in conn.execute(PUNCTUALITY, params):
        acc = late.setdefault((r.kind, r.service_field), [0.0, 0])
        acc[0] += float(r.issued_sum) - int(r.n) * _slot_start(r.service_day, r.slot, tz)
        acc[1] += int(r.n)
    out = []
    for r in conn.execute(COUNTS, {**params, "target_s": target_s}):
        key, wait_n = (r.kind, r.service_field), int(r.wait_n)
        punct = late.get(key)
        out.append({"kind": r.kind, "service_field": r.service_field, "issued": int(r.issued),
                    "called": int(r.called), "served": int(r.served), "no_show": int(r.no_show),
                    "wait_n": wait_n, "mean_wait_s": float(r.wait_sum) / wait_n if wait_n else None,
                    "p90_wait_s": p90.get(key),
                    "over_target_share": int(r.over_target) / wait_n if wait_n else None,
                    "mean_punctuality_min": punct[0] / punct[1] / 60 if punct else None})
    out.sort(key=lambda x: (x["kind"], x["service_field"] or ""))
    return out


def appointment_figures(conn: Any, offices: list[str], day_from: str, day_to: str,
                        today: date) -> dict[str, Any]:
    """Bookings of the period (not cancelled) and, over the days already over, the appointment
    tickets redeemed against them: no-show rate = 1 − min(redeemed, booked) ÷ booked, per field and
    in all (a citizen too late who got a walk-in ticket counts as missed)."""
    params = {"offices": offices, "day_from": day_from, "day_to": day_to, "today": today.isoformat()}
    booked = {r.service_field: (int(r.booked), int(r.booked_closed or 0))
              for r in conn.execute(BOOKED, params)}
    redeemed = {r.service_field: int(r.redeemed) for r in conn.execute(REDEEMED, params)}
    fields = []
    for field in sorted(set(booked) | {f for f in redeemed if f is not None}):
        b, closed = booked.get(field, (0, 0))
        red = redeemed.get(field, 0)
        fields.append({"service_field": field, "booked": b, "booked_closed_days": closed,
                       "redeemed_closed_days": red, "no_show_rate": _rate(red, closed)})
    closed_all = sum(c for _b, c in booked.values())
    red_all = sum(redeemed.values())
    return {"booked": sum(b for b, _c in booked.values()), "booked_closed_days": closed_all,
            "redeemed_closed_days": red_all, "no_show_rate": _rate(red_all, closed_all), "by_field": fields}


def _rate(redeemed: int, booked: int) -> float | None:
    return 1 - min(redeemed, booked) / booked if booked else None
