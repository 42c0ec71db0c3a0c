"""Fill a province-year through the real writer (gateway.store.writer.apply_batch), once, cached.

38 offices: the 6 real Lai Châu units of the bundled registry plus 32 bench-only offices (codes
``LC-B07`` …, clearly not Statistics Office codes: the real codes of the other 32 units are not in
the registry). Every working day (Monday–Friday, minus the fixed public holidays and the Tết week of
2026) each office gets about ``per_day`` visits spread over its counters, 07:00–17:00 local: issued,
then called and completed (or a no-show), a rating for about 60 % of the served (first press
counts), a few duplicate presses, and a sentiment window per counter and two hours. Events are built
as contract models and applied in batches of ``batch`` (20,000: a backlog drains in large batches,
``[database] batch_size`` allows up to 100,000) through ``apply_batch`` (screening, raw events,
projectors, rating rules, rollups: the same code path as live ingest, without the broker). The
integrity window is widened to 400 days (a kiosk's outbox never holds a year; a bench does).

The database is cached under build/bench-scale/ (gitignored) with a marker holding what was filled;
a second run reuses it.
"""

from __future__ import annotations

import json
import os
import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from contract.codec import Decoded
from contract.payloads import Event, EventType
from contract.topics import events_topic
from gateway.config import IntegritySettings, Settings
from gateway.registry import load_registry
from gateway.store import Store
from gateway.store.writer import Incoming, apply_batch

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
FIXED_HOLIDAYS = {(1, 1), (4, 30), (5, 1), (9, 2), (9, 1)}
TET_2026 = (date(2026, 2, 14), date(2026, 2, 22))
INTEGRITY = IntegritySettings(max_event_age_days=400)
BOOT = "bench-scale-boot"


def registry() -> dict:
    """The bundled registry (6 offices) plus 32 bench offices: 38 in all, 2-3 counters, one kiosk each."""
    reg = load_registry(Settings().registry_file)
    for i in range(7, 39):
        code = f"LC-B{i:02d}"
        reg["units"].append({"code": code, "name": f"Đơn vị thử tải {i:02d} (bench)", "kind": "commune"})
        reg["offices"].append({"code": code, "name": f"Bộ phận Một cửa thử tải {i:02d} (bench)",
                               "unit_code": code, "lat": 22.2 + i * 0.005, "lon": 103.45 + i * 0.005,
                               "counters": 2 + i % 2})
    reg["devices"] = [{"device_id": f"k{o['code'].lower()}-q{c}", "office_code": o["code"], "counter": c}
                      for o in reg["offices"] for c in range(1, o.get("counters", 1) + 1)]
    return reg


def working_days(first: date, last: date) -> list[date]:
    out, d = [], first
    while d <= last:
        if d.weekday() < 5 and (d.month, d.day) not in FIXED_HOLIDAYS and not TET_2026[0] <= d <= TET_2026[1]:
            out.append(d)
        d += timedelta(days=1)
    return out


@dataclass
class Kiosk:
    device_id: str
    office: str
    counter: int
    seq: int = 0

    def event(self, etype: EventType, data: dict, ts: datetime, rng: random.Random) -> Event:
        self.seq += 1
        return Event(device_id=self.device_id, office_code=self.office, ts=ts, clock_synced=True,
                     event_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)), seq=self.seq,
                     type=etype, boot_id=BOOT, mono_ms=self.seq * 1000, data=data)


def day_events(k: Kiosk, day: date, visits: int, rng: random.Random) -> list[Event]:
    """One counter's day: ``visits`` tickets in order, waits that grow through the morning rush."""
    out: list[Event] = []
    open_at = datetime(day.year, day.month, day.day, 7, 0, tzinfo=TZ).astimezone(UTC)
    officer = f"cb-{k.office}-{k.counter}-{rng.choice('ab') if rng.random() < 0.3 else 'a'}"
    for no in range(1, visits + 1):
        t = {"ticket_no": no, "label": f"{no:04d}", "counter": k.counter, "service_day": day.isoformat()}
        issued = open_at + timedelta(seconds=(no - 1) * 36_000 / visits + rng.uniform(0, 60))
        wait = max(5.0, rng.lognormvariate(6.3, 0.7))  # median ~9 min, a tail past 20 min
        out.append(k.event(EventType.TICKET_ISSUED, {**t, "waiting_ahead": 0}, issued, rng))
        if rng.random() < 0.05:
            gone = issued + timedelta(seconds=wait)
            out.append(k.event(EventType.TICKET_NO_SHOW, {**t, "wait_s": wait}, gone, rng))
            continue
        called = issued + timedelta(seconds=wait)
        service = max(15.0, rng.gauss(420, 150))
        out.append(k.event(EventType.TICKET_CALLED, {**t, "wait_s": wait, "waiting_after": 0,
                                                     "officer_id": officer}, called, rng))
        done = called + timedelta(seconds=service)
        out.append(k.event(EventType.SERVICE_COMPLETED, {**t, "wait_s": wait, "service_s": service,
                                                         "officer_id": officer}, done, rng))
        if rng.random() < 0.6:
            level = rng.choices((1, 2, 3), (0.08 if wait < 1200 else 0.25, 0.42, 0.5))[0]
            for press in range(2 if rng.random() < 0.03 else 1):
                out.append(k.event(EventType.RATING_SUBMITTED, {
                    "ticket_no": no, "service_day": day.isoformat(), "counter": k.counter, "level": level,
                    "scale": 3, "level_label": {1: "Không hài lòng", 2: "Hài lòng", 3: "Rất hài lòng"}[level],
                    "reason": "waited_too_long" if level == 1 else None, "officer_id": officer,
                }, done + timedelta(seconds=5 + press), rng))
    for w in range(5):
        start = open_at + timedelta(hours=2 * w)
        n = max(5, visits // 5)
        out.append(k.event(EventType.SENTIMENT_WINDOW, {
            "counter": k.counter, "window_start": start.isoformat(),
            "window_end": (start + timedelta(hours=2)).isoformat(), "visits": n, "k": 5, "frames": n * 20,
            "class_shares": {"happy": 0.3, "neutral": 0.6, "sad": 0.1},
            "score": round(rng.uniform(-0.2, 0.6), 3),
        }, start + timedelta(hours=2), rng))
    return out


def events(reg: dict, days: list[date], per_day: int, seed: int) -> Iterator[tuple[int, list[Event]]]:
    """(visits, events) per day, every kiosk of the province."""
    rng = random.Random(seed)
    kiosks = [Kiosk(d["device_id"], d["office_code"], d["counter"]) for d in reg["devices"]]
    counters = {o["code"]: o.get("counters", 1) for o in reg["offices"]}
    for day in days:
        evs: list[Event] = []
        visits = 0
        for k in kiosks:
            n = max(5, round(rng.gauss(per_day / counters[k.office], 6)))
            visits += n
            evs += day_events(k, day, n, rng)
        evs.sort(key=lambda e: e.ts)  # as kiosks send them, roughly in time order
        yield visits, evs


def fill(url: str, first: date, last: date, per_day: int, batch: int = 20_000, seed: int = 11) -> dict:
    store = Store(url, integrity=INTEGRITY)
    store.migrate()
    reg = registry()
    store.load_registry(reg)
    days = working_days(first, last)
    t0, n_visits, n_events = time.perf_counter(), 0, 0
    for i, (visits, evs) in enumerate(events(reg, days, per_day, seed)):
        now = time.time()
        items = [Incoming(Decoded(events_topic(e.office_code, e.device_id), e), now) for e in evs]
        for j in range(0, len(items), batch):
            apply_batch(store, items[j : j + batch], {}, TZ, set())
        n_visits += visits
        n_events += len(evs)
        if i % 10 == 0:
            rate = n_events / (time.perf_counter() - t0)
            load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
            print(f"  {days[i]}: {n_visits:,} visits, {n_events:,} events, {rate:,.0f} events/s "
                  f"(load average {load})", flush=True)
    store.close()
    return {"visits": n_visits, "events": n_events, "days": len(days), "offices": len(reg["offices"]),
            "fill_s": round(time.perf_counter() - t0, 1), "first": first.isoformat(),
            "last": last.isoformat(), "per_day": per_day, "load_at_end": os.getloadavg()}


def main() -> None:  # a quick look at the fill rate: python -m bench.scale.fill URL DAYS
    import sys

    url, n = sys.argv[1], int(sys.argv[2])
    last = date(2026, 11, 30)
    print(json.dumps(fill(url, last - timedelta(days=n - 1), last, 110)))


if __name__ == "__main__":
    main()
