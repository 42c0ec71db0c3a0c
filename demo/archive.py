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

from sqlalchemy import select

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
    """Write the open days ``first``..``last`` of every device that have no visit of that counter yet,
    a chunk of days per transaction (so an interrupted run is completed by the next).
    Returns how many visits were written."""
    today = today or datetime.now(TZ).date()
    written = 0
    for p in profiles(devices):
        have = _days_written(store, p, first, last)
        days = [d for d in open_days(first, last) if d.isoformat() not in have]
        for i in range(0, len(days), CHUNK_DAYS):
            written += _write_days(store, p, days[i : i + CHUNK_DAYS], seed, time_scale, today)
    return written


def _days_written(store: Store, p: CounterProfile, first: date, last: date) -> set[str]:
    with store.engine.connect() as conn:
        return set(conn.execute(select(s.visits.c.service_day).distinct().where(
            s.visits.c.office_code == p.office_code, s.visits.c.counter == p.counter,
            s.visits.c.service_day >= first.isoformat(), s.visits.c.service_day <= last.isoformat(),
        )).scalars())


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


def main(argv: list[str] | None = None) -> int:
    """``python -m demo.archive``: what ``make demo`` runs in the background, at the lowest CPU
    priority so that the live kiosks start as fast as without it."""
    import argparse
    import os
    import time

    from demo.run import demo_devices

    ap = argparse.ArgumentParser(prog="python -m demo.archive", description=__doc__)
    ap.add_argument("--db", required=True, help="the gateway's SQLite file")
    ap.add_argument("--kiosks", type=int, default=6)
    ap.add_argument("--first", type=date.fromisoformat, required=True)
    ap.add_argument("--last", type=date.fromisoformat, required=True)
    ap.add_argument("--seed", type=int, default=468)
    ap.add_argument("--time-scale", type=float, default=1.0)
    ap.add_argument("--nice", type=int, default=19)
    args = ap.parse_args(argv)
    os.nice(args.nice)
    started = time.monotonic()
    store = Store(f"sqlite:///{args.db}")
    try:
        n = fill(store, demo_devices(args.kiosks), args.first, args.last, args.seed, args.time_scale)
    finally:
        store.close()
    print(f"• Older history: {n} visits from {args.first} to {args.last} written in "
          f"{time.monotonic() - started:.0f} s (synthetic, as the writer derives them; see /reports)",
          flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
