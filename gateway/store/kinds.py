"""Ticket kinds and service fields over a period: small SQL aggregations over the rollups.

Reads ``rollup_kinds`` (gateway/store/kind_rollup.py: per day, office, serving counter, kind and
field, kept by the writer in the batch's transaction) and ``bookings`` (gateway/booking/store.py), for
a list of offices and a day range: counts, wait sums and the wait histogram summed in the database,
turned here into the mean, the p90 (from the histogram, within ``P90_ERROR_S`` below an hour, as the
other period figures) and the share over the target (exact at a bucket edge: the 20-minute target is
one), and the mean punctuality of appointment tickets. The map's day (/api/v1/offices/{code}/kinds),
the period API, /reports, its PDF and XLSX, the period CSV and the unit KPIs all read these functions:
one definition (docs/gateway.md#ticket-kinds). Like every rollup, the figures outlive the visits
that retention purges, and a year costs what a week does.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

from sqlalchemy import and_, bindparam, case, func, select

from gateway.booking.store import bookings
from gateway.store import schema as s
from gateway.store.rollups import hist_p90, hist_share_over

WH = [f"wh{i}" for i in range(s.HIST_BUCKETS)]
SUMS = ["visits", "issued", "called", "served", "no_show", "wait_n", "wait_sum", *WH, "punct_n", "punct_sum"]


def _where(k: Any) -> Any:
    return and_(k.c.office_code.in_(bindparam("offices", expanding=True)),
                k.c.service_day >= bindparam("day_from"), k.c.service_day <= bindparam("day_to"))


def _sums(keys: tuple[str, ...]) -> Any:
    k = s.rollup_kinds
    group = [k.c[c] for c in keys]
    return (select(*group, *(func.sum(k.c[c]).label(c) for c in SUMS))
            .where(_where(k)).group_by(*group).order_by(*group))


COUNTS = _sums(("kind", "service_field"))


def figures_of(r: Any, target_s: float) -> dict[str, Any]:
    """The figures of one row of summed rollup_kinds columns (a mapping or a Row)."""
    get = r.get if isinstance(r, dict) else r._mapping.get
    wait_n, punct_n = int(get("wait_n") or 0), int(get("punct_n") or 0)
    wh = [int(get(c) or 0) for c in WH]
    return {"issued": int(get("issued") or 0), "called": int(get("called") or 0),
            "served": int(get("served") or 0), "no_show": int(get("no_show") or 0), "wait_n": wait_n,
            "mean_wait_s": float(get("wait_sum")) / wait_n if wait_n else None,
            "p90_wait_s": hist_p90(wh), "over_target_share": hist_share_over(wh, target_s),
            "mean_punctuality_min": float(get("punct_sum")) / punct_n / 60 if punct_n else None}


def kind_figures(conn: Any, offices: list[str], day_from: str, day_to: str,
                 target_s: float) -> list[dict[str, Any]]:
    """Per (kind, service field), sorted: issued, called, served, no_show, wait_n, mean and p90 wait,
    the share of waits over ``target_s`` and, for appointment tickets, the mean punctuality in minutes
    (redeem time − slot start; negative = early). ``service_field`` None: the ticket named none."""
    params = {"offices": offices, "day_from": day_from, "day_to": day_to}
    out = [{"kind": r.kind, "service_field": r.service_field or None, **figures_of(r, target_s)}
           for r in conn.execute(COUNTS, params) if r.visits]
    out.sort(key=lambda x: (x["kind"], x["service_field"] or ""))
    return out


def _booked() -> Any:
    b = bookings.c
    return (select(b.service_field, func.count().label("booked"),
                   func.sum(case((b.day < bindparam("today"), 1), else_=0)).label("booked_closed"))
            .where(b.office_code.in_(bindparam("offices", expanding=True)), b.day >= bindparam("day_from"),
                   b.day <= bindparam("day_to"), b.cancelled_at.is_(None))
            .group_by(b.service_field))


def _redeemed_closed() -> Any:
    k = s.rollup_kinds
    return (select(k.c.service_field, func.sum(k.c.issued).label("redeemed"))
            .where(_where(k), k.c.kind == "appointment", k.c.service_day < bindparam("today"))
            .group_by(k.c.service_field))


BOOKED, REDEEMED = _booked(), _redeemed_closed()


def appointment_figures(conn: Any, offices: list[str], day_from: str, day_to: str,
                        today: date) -> dict[str, Any]:
    """Bookings of the period (not cancelled) and, over the days already over, the appointment
    tickets redeemed against them: no-show rate = 1 − min(redeemed, booked) ÷ booked, per field and
    in all (a citizen too late who got a walk-in ticket counts as missed)."""
    params = {"offices": offices, "day_from": day_from, "day_to": day_to, "today": today.isoformat()}
    booked = {r.service_field: (int(r.booked), int(r.booked_closed or 0))
              for r in conn.execute(BOOKED, params)}
    redeemed = {r.service_field or None: int(r.redeemed)
                for r in conn.execute(REDEEMED, params) if r.redeemed}
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


# ---------------------------------------------------------------------------- per day, streamed (CSV)

def stream_kind_sums(engine: Any, keys: list[str], offices: list[str] | None, day_from: str,
                     day_to: str) -> Iterator[dict[str, Any]]:
    """rollup_kinds sums per ``keys`` + kind + service field, in key order (all offices when
    ``offices`` is None), from a server-side cursor: a year's CSV never sits in memory."""
    k = s.rollup_kinds
    group = [k.c[c] for c in (*keys, "kind", "service_field")]
    cond = and_(k.c.service_day >= day_from, k.c.service_day <= day_to)
    if offices is not None:
        cond = and_(cond, k.c.office_code.in_(offices))
    q = (select(*group, *(func.sum(k.c[c]).label(c) for c in SUMS))
         .where(cond).group_by(*group).order_by(*group))
    yield from _stream(engine, q)


def stream_booked(engine: Any, offices: list[str] | None, day_from: str,
                  day_to: str) -> Iterator[dict[str, Any]]:
    """Bookings not cancelled per (day, office), in that order (``service_day`` names the day)."""
    b = bookings.c
    cond = and_(b.day >= day_from, b.day <= day_to, b.cancelled_at.is_(None))
    if offices is not None:
        cond = and_(cond, b.office_code.in_(offices))
    q = (select(b.day.label("service_day"), b.office_code, func.count().label("booked")).where(cond)
         .group_by(b.day, b.office_code).order_by(b.day, b.office_code))
    yield from _stream(engine, q)


def _stream(engine: Any, q: Any) -> Iterator[dict[str, Any]]:
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=500).execute(q)
        names = list(result.keys())
        for r in result:
            yield dict(zip(names, r, strict=True))


def add_sums(into: dict[str, Any], row: dict[str, Any]) -> None:
    for c in SUMS:
        into[c] = into.get(c, 0) + (row.get(c) or 0)


def day_kinds(raw: dict[tuple[str, str], dict[str, Any]], booked: int | None, day_over: bool,
              figures: dict[tuple[str, str], dict[str, Any]]) -> dict[str, Any]:
    """One day's figures by kind and field from summed rollup_kinds columns per (kind, field)
    (``figures``: their :func:`figures_of`), and the day's bookings (None: not known at this level,
    e.g. a counter): ``by_kind`` (as the period API's) and ``appointments`` (bookings, appointment
    tickets redeemed, the no-show rate once the day is over, as /api/v1/offices/{code}/kinds gives
    them)."""
    by_kind = [{"kind": kind, "service_field": field or None, **figures[(kind, field)]}
               for (kind, field), r in sorted(raw.items()) if r.get("visits")]
    redeemed = sum(r["issued"] for r in by_kind if r["kind"] == "appointment")
    rate = _rate(redeemed, booked) if booked is not None and day_over else None
    return {"by_kind": by_kind,
            "appointments": {"booked": booked, "redeemed": redeemed, "no_show_rate": rate}}
