"""Reads and writes behind the integrity API: quarantine, flags and their clearing, device binding.

Every write here is audited in ``audit_log`` (who, when, what) in the same transaction.
"""

from __future__ import annotations

import time
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, select, update

from gateway.store import schema as s
from gateway.store.db import Store
from gateway.store.rollups import lock_office_days, refresh
from gateway.store.screening import HELD_UNREGISTERED
from gateway.store.writer import release_held

FLAG_TABLES = {"visit": s.visits, "rating": s.ratings}


def _audit(conn: Any, actor: str, action: str, office: str | None, target: dict[str, Any]) -> None:
    conn.execute(s.audit_log.insert().values(at=time.time(), actor=actor, action=action, office_code=office,
                                             target=target))


def held_counts(store: Store) -> dict[str, int]:
    """device_id → events held because the device is not registered."""
    e = s.events
    q = select(e.c.device_id, func.count()).where(e.c.held == HELD_UNREGISTERED).group_by(e.c.device_id)
    with store.engine.connect() as conn:
        return {r[0]: int(r[1]) for r in conn.execute(q)}


def quarantine(store: Store) -> list[dict[str, Any]]:
    """Devices with held events: office claimed, counts by event type, first and last received."""
    e = s.events
    q = (
        select(e.c.device_id, e.c.office_code, e.c.type, func.count(), func.min(e.c.received_at),
               func.max(e.c.received_at))
        .where(e.c.held == HELD_UNREGISTERED)
        .group_by(e.c.device_id, e.c.office_code, e.c.type)
    )
    out: dict[str, dict[str, Any]] = {}
    with store.engine.connect() as conn:
        for dev, office, etype, n, first, last in conn.execute(q):
            row = out.setdefault(dev, {"device_id": dev, "office_codes": [], "held_events": 0, "by_type": {},
                                       "first_received": first, "last_received": last})
            if office not in row["office_codes"]:
                row["office_codes"].append(office)
            row["held_events"] += int(n)
            row["by_type"][etype] = int(n)
            row["first_received"] = min(row["first_received"], first)
            row["last_received"] = max(row["last_received"], last)
    return sorted(out.values(), key=lambda r: r["device_id"])


def bind_device(
    store: Store, device_id: str, office_code: str, counter: int, actor: str, release: bool, tz: ZoneInfo
) -> dict[str, int]:
    """Register (bind) a device to an office counter; with ``release`` its held events are projected
    under the same rules as live ones. Without it they stay held (stored, never counted)."""
    with store.engine.begin() as conn:
        store.upsert_device(conn, device_id, office_code, counter, time.time())
        d = s.devices
        conn.execute(update(d).where(d.c.device_id == device_id).values(bound_by=actor, bound_at=time.time()))
        _audit(conn, actor, "bind_device", office_code, {"device_id": device_id, "counter": counter})
    if not release:
        return {}
    result = release_held(store, device_id, tz)
    with store.engine.begin() as conn:
        _audit(conn, actor, "release_held", office_code, {"device_id": device_id, **result})
    return result


def office_flags(store: Store, office: str, day_from: str, day_to: str) -> dict[str, Any]:
    """What an office head reviews: flagged visits and ratings, duplicate ratings by device, counts."""
    v, r = s.visits, s.ratings
    in_range = and_(v.c.office_code == office, v.c.service_day >= day_from, v.c.service_day <= day_to)
    r_range = and_(r.c.office_code == office, r.c.service_day >= day_from, r.c.service_day <= day_to)
    with store.engine.connect() as conn:
        visits = [dict(x._mapping) for x in conn.execute(
            select(v.c.counter, v.c.service_day, v.c.ticket_no, v.c.device_id, v.c.officer_id, v.c.service_s,
                   v.c.flag, v.c.flag_cleared_by, v.c.flag_cleared_at)
            .where(in_range & v.c.flag.is_not(None)).order_by(v.c.service_day, v.c.counter, v.c.ticket_no)
        )]
        ratings = [dict(x._mapping) for x in conn.execute(
            select(r.c.event_id, r.c.counter, r.c.service_day, r.c.ticket_no, r.c.device_id, r.c.officer_id,
                   r.c.level, r.c.scale, r.c.ts, r.c.flag, r.c.flag_cleared_by, r.c.flag_cleared_at)
            .where(r_range & r.c.flag.is_not(None) & (r.c.status == "counted")).order_by(r.c.ts)
        )]
        statuses = conn.execute(select(r.c.status, r.c.device_id, func.count()).where(r_range)
                                .group_by(r.c.status, r.c.device_id)).all()
    counts: dict[str, int] = {}
    for kind, rows in (("visit", visits), ("rating", ratings)):
        for row in rows:
            key = f"{kind}:{row['flag']}{':cleared' if row['flag_cleared_at'] else ''}"
            counts[key] = counts.get(key, 0) + 1
    by_status: dict[str, int] = {}
    duplicates_by_device: dict[str, int] = {}
    for status, device, n in statuses:
        by_status[status] = by_status.get(status, 0) + int(n)
        if status == "duplicate":
            duplicates_by_device[device] = int(n)
    return {"office_code": office, "day_from": day_from, "day_to": day_to, "counts": counts,
            "ratings_by_status": by_status, "duplicate_ratings_by_device": duplicates_by_device,
            "visits": visits, "ratings": ratings}


def clear_flag(store: Store, kind: str, office: str, key: dict[str, Any], actor: str) -> bool:
    """An office head clears a flag (the row then counts in staff figures). Audited. False if no
    flagged row matches."""
    t = FLAG_TABLES[kind]
    if kind == "rating":
        cond = and_(t.c.event_id == key["event_id"], t.c.office_code == office)
    else:
        cond = and_(t.c.office_code == office, t.c.counter == key["counter"],
                    t.c.service_day == key["service_day"], t.c.ticket_no == key["ticket_no"])
    cond = and_(cond, t.c.flag.is_not(None), t.c.flag_cleared_at.is_(None))
    now = time.time()
    with store.engine.begin() as conn:
        days = _office_days(conn, kind, office, key)
        lock_office_days(conn, store.dialect, sorted(days))  # before any row lock (ingest: shared)
        n = conn.execute(update(t).where(cond).values(flag_cleared_by=actor, flag_cleared_at=now)).rowcount
        if n:
            _audit(conn, actor, "clear_flag", office, {"kind": kind, **key})
            if kind == "visit":  # the visit's rating carries the flag: clear it too
                r = s.ratings
                same_visit = and_(r.c.office_code == office, r.c.counter == key["counter"],
                                  r.c.service_day == key["service_day"], r.c.ticket_no == key["ticket_no"])
                conn.execute(
                    update(r).where(same_visit & r.c.flag.is_not(None) & r.c.flag_cleared_at.is_(None))
                    .values(flag_cleared_by=actor, flag_cleared_at=now)
                )
            refresh(conn, store.dialect, days, store.integrity.min_k, None)
    return bool(n)


def _office_days(conn: Any, kind: str, office: str, key: dict[str, Any]) -> set[tuple[str, str]]:
    """The (office, day) whose staff figures a cleared flag changes (rollups recomputed)."""
    if kind == "visit":
        return {(office, key["service_day"])}
    r = s.ratings
    day = conn.execute(select(r.c.service_day).where(r.c.event_id == key["event_id"])).scalar()
    return {(office, day)} if day is not None else set()  # no such rating: nothing to clear
