"""The demo's older history (about 13 months), written straight into the derived tables.

``make demo`` publishes its recent weeks over MQTT like any kiosk traffic (demo.history), but a year
through the real writer costs minutes on a small machine, too long before the map shows. So the
months before that are simulated by the same ``demo.history.simulate_day`` and written here as the
rows the writer's projectors would have made (visits, counted ratings, k-anonymous sentiment windows;
tests/demo/test_archive.py checks they are identical to the writer's for the same days), then the
rollups are recomputed by ``gateway.store.rollups.refresh``, the writer's own function. There are no
raw events for these days, as after the gateway's raw-event retention. Deterministic: a second run on
the same data folder finds the rows and writes nothing.
"""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from contract import EventType
from demo.history import TZ, CounterProfile, SimVisit, SimWindow, closed, event_id, profiles, simulate_day
from gateway.store import Store
from gateway.store import schema as s
from gateway.store.rollups import refresh

CHUNK_DAYS = 20  # one transaction: short enough not to hold up the running gateway's writer


def rows_of_day(p: CounterProfile, day: date, visits: list[SimVisit], windows: list[SimWindow],
                seq: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]], int]:
    """(visits, ratings, windows) rows as the projectors write them; ``seq`` = the device's last seq."""
    base = {"office_code": p.office_code, "counter": p.counter, "service_day": day.isoformat()}
    v_rows, r_rows, w_rows = [], [], []
    for v in visits:
        key = f"{day}/{v.no}"
        called = v.issued + timedelta(seconds=v.wait)
        row = {**base, "ticket_no": v.no, "device_id": p.device_id, "label": f"{v.no:04d}",
               "issued_at": v.issued.timestamp(), "called_at": None, "completed_at": None, "no_show_at": None,
               "discarded_at": None, "wait_s": v.wait, "service_s": None, "officer_id": None, "recalls": None,
               "flag": None, "flag_cleared_by": None, "flag_cleared_at": None, "served_seq": None}
        seq += 1  # ticket.issued
        if v.service is None:
            seq += 1
            v_rows.append({**row, "no_show_at": called.timestamp()})
            continue
        seq += 1  # ticket.called
        done = called + timedelta(seconds=v.service)
        v_rows.append({**row, "called_at": called.timestamp(), "completed_at": done.timestamp(),
                       "service_s": v.service, "officer_id": v.officer_id, "served_seq": seq})
        seq += 1  # service.completed
        if v.level is not None:
            seq += 1
            r_rows.append({**base, "event_id": event_id(p.device_id, key, EventType.RATING_SUBMITTED),
                           "device_id": p.device_id, "ticket_no": v.no,
                           "ts": (done + timedelta(seconds=20)).timestamp(), "level": v.level, "scale": 3,
                           "reason": v.reason, "officer_id": v.officer_id, "seq": seq, "status": "counted",
                           "flag": None, "flag_cleared_by": None, "flag_cleared_at": None})
    for w in windows:
        seq += 1
        w_rows.append({**base, "event_id": event_id(p.device_id, f"{day}/window/{w.start.hour}",
                                                    EventType.SENTIMENT_WINDOW),
                       "device_id": p.device_id, "window_start": w.start.timestamp(),
                       "window_end": w.end.timestamp(), "visits": w.visits, "k": 5, "frames": w.visits * 40,
                       "score": w.score, "class_shares": w.shares})
    return v_rows, r_rows, w_rows, seq


def open_days(first: date, last: date) -> list[date]:
    out, d = [], first
    while d <= last:
        if not closed(d):
            out.append(d)
        d += timedelta(days=1)
    return out


def fill(store: Store, devices: list[tuple[str, str, int]], first: date, last: date, seed: int,
         time_scale: float = 1.0, today: date | None = None) -> int:
    """Write the open days ``first``..``last`` of every device, unless its rows are there already.
    Returns how many visits were written."""
    today = today or datetime.now(TZ).date()
    days = open_days(first, last)
    written = 0
    for p in profiles(devices):
        with store.engine.connect() as conn:
            have = conn.execute(select(func.count()).select_from(s.visits).where(
                s.visits.c.office_code == p.office_code, s.visits.c.counter == p.counter,
                s.visits.c.service_day >= first.isoformat(), s.visits.c.service_day <= last.isoformat(),
            )).scalar_one()
        if have:
            continue
        for i in range(0, len(days), CHUNK_DAYS):
            written += _write_days(store, p, days[i : i + CHUNK_DAYS], seed, time_scale, today)
    return written


def _write_days(store: Store, p: CounterProfile, days: list[date], seed: int, time_scale: float,
                today: date) -> int:
    v_all: list[dict[str, Any]] = []
    r_all: list[dict[str, Any]] = []
    w_all: list[dict[str, Any]] = []
    seq = 0
    for day in days:
        rng = random.Random(f"{seed}/{p.device_id}/{day}")
        v, r, w, seq = rows_of_day(p, day, *simulate_day(p, rng, day, today, time_scale), seq)
        v_all += v
        r_all += r
        w_all += w
    with store.engine.begin() as conn:
        for table, rows in ((s.visits, v_all), (s.ratings, r_all), (s.sentiment_windows, w_all)):
            if rows:
                conn.execute(table.insert(), rows)
        pairs = {(p.office_code, d.isoformat()) for d in days}
        refresh(conn, store.dialect, pairs, store.integrity.min_k, TZ)
    return len(v_all)
