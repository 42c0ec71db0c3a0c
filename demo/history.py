"""Synthetic past weeks for the demo's counters, published over MQTT like any kiosk traffic.

The live kiosks of ``make demo`` start with an empty day, so without history the map's hourly
charts and next-week forecast would have nothing to show. This module publishes ``--days`` past
working days (Monday–Friday, office hours 07:30–11:30 and 13:30–17:00) for each demo counter:
tickets, calls, no-shows, completions, ratings and hourly sentiment windows (only when a window has
at least k visits, as a kiosk would). It is clearly demo data: every event's ``boot_id`` is
``demo-history``.

Event ids are derived deterministically (UUID 5) from the device, day and ticket, so running the
demo again on the same data folder re-sends the same events and the gateway, which stores by
``event_id``, counts them once.
"""

from __future__ import annotations

import random
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import paho.mqtt.client as mqtt

from contract import Event, EventType, encode
from contract.payloads import EXPRESSION_CLASSES
from contract.topics import events_topic

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
NAMESPACE = uuid.UUID("6f1c2a52-3b0e-4d47-9a57-4680c0de0468")
BOOT_ID = "demo-history"
LEVEL_LABELS = {1: "Không hài lòng", 2: "Hài lòng", 3: "Rất hài lòng"}
REASONS = ["waited_too_long", "staff_attitude", "unclear_guidance"]
SESSIONS = [(time(7, 30), time(11, 30)), (time(13, 30), time(17, 0))]
BUSY_OFFICES = frozenset({"03405"})  # Tả Lèng: also the busier office of demo.run's live citizens
MAX_IN_FLIGHT = 500  # paho loses QoS 1 messages past 65,535 in flight (PLATFORM-NOTES)


@dataclass(frozen=True)
class CounterProfile:
    device_id: str
    office_code: str
    counter: int
    visits_per_day: float  # mean
    median_wait_min: float
    officer_id: str


def profiles(devices: list[tuple[str, str, int]]) -> list[CounterProfile]:
    """A busy office (longer waits) and a quiet one, so the map shows the difference."""
    out = []
    for device_id, office, counter in devices:
        busy = office in BUSY_OFFICES
        out.append(CounterProfile(device_id, office, counter, visits_per_day=34 if busy else 24,
                                  median_wait_min=15 if busy else 7, officer_id=f"cb-{office}-{counter}"))
    return out


class _Builder:
    def __init__(self, p: CounterProfile) -> None:
        self.p = p
        self.seq = 0

    def event(self, etype: EventType, data: dict, at: datetime, key: str) -> Event:
        self.seq += 1
        return Event(
            event_id=str(uuid.uuid5(NAMESPACE, f"{self.p.device_id}/{key}/{etype.value}")),
            device_id=self.p.device_id, office_code=self.p.office_code, seq=self.seq, type=etype,
            ts=at.astimezone(UTC), clock_synced=True, boot_id=BOOT_ID, mono_ms=self.seq, data=data,
        )


def _working_days(today: date, days: int) -> list[date]:
    out, d = [], today - timedelta(days=1)
    while len(out) < days:
        if d.weekday() < 5:
            out.append(d)
        d -= timedelta(days=1)
    return sorted(out)


def _arrivals(rng: random.Random, day: date, n: int) -> list[datetime]:
    """Arrival times weighted to mid-morning and early afternoon."""
    out = []
    for _ in range(n):
        start, end = SESSIONS[0] if rng.random() < 0.62 else SESSIONS[1]
        a = datetime.combine(day, start, TZ)
        span = (datetime.combine(day, end, TZ) - a).total_seconds()
        out.append(a + timedelta(seconds=span * rng.betavariate(2.2, 2.8)))
    return sorted(out)


def counter_day(p: CounterProfile, b: _Builder, rng: random.Random, day: date) -> Iterator[Event]:
    n = max(3, int(rng.gauss(p.visits_per_day * (1.15 if day.weekday() == 0 else 1.0), 4)))
    shares_by_visit: list[tuple[datetime, dict[str, float]]] = []
    for no, issued in enumerate(_arrivals(rng, day, n), start=1):
        key = f"{day}/{no}"
        t = {"ticket_no": no, "label": f"{no:04d}", "counter": p.counter, "service_day": day.isoformat()}
        yield b.event(EventType.TICKET_ISSUED, {**t, "waiting_ahead": rng.randint(0, 6)}, issued, key)
        wait = min(5400.0, rng.lognormvariate(0, 0.55) * p.median_wait_min * 60)
        if rng.random() < 0.06:
            yield b.event(EventType.TICKET_NO_SHOW, {**t, "wait_s": round(wait, 1)},
                          issued + timedelta(seconds=wait), key)
            continue
        called = issued + timedelta(seconds=wait)
        yield b.event(EventType.TICKET_CALLED, {**t, "wait_s": round(wait, 1),
                                                "waiting_after": rng.randint(0, 5),
                                                "officer_id": p.officer_id}, called, key)
        service = rng.uniform(240, 900)
        done = called + timedelta(seconds=service)
        yield b.event(EventType.SERVICE_COMPLETED, {**t, "wait_s": round(wait, 1),
                                                    "service_s": round(service, 1),
                                                    "officer_id": p.officer_id}, done, key)
        if rng.random() < 0.82:
            unhappy = 0.05 + 0.25 * min(1.0, wait / 2400)
            level = 1 if rng.random() < unhappy else (3 if rng.random() < 0.6 else 2)
            yield b.event(EventType.RATING_SUBMITTED, {
                "ticket_no": no, "service_day": day.isoformat(), "counter": p.counter, "level": level,
                "scale": 3, "level_label": LEVEL_LABELS[level],
                "reason": rng.choice(REASONS) if level == 1 else None, "officer_id": p.officer_id,
            }, done + timedelta(seconds=20), key)
        happy = max(0.05, 0.55 - wait / 7200)
        rest = (1 - happy) / (len(EXPRESSION_CLASSES) - 1)
        shares_by_visit.append((done, {c: happy if c == "happy" else rest for c in EXPRESSION_CLASSES}))
    yield from _sentiment_windows(p, b, day, shares_by_visit)


def _sentiment_windows(p: CounterProfile, b: _Builder, day: date,
                       visits: list[tuple[datetime, dict[str, float]]], k: int = 5) -> Iterator[Event]:
    """Hourly windows; fewer than k visits carry over to the next window, as on the kiosk."""
    carried: list[dict[str, float]] = []
    start = datetime.combine(day, time(7, 0), TZ)
    for hour in range(7, 18):
        end = start + timedelta(hours=1)
        carried += [s for at, s in visits if start <= at < end]
        if len(carried) >= k:
            shares = {c: round(sum(v[c] for v in carried) / len(carried), 4) for c in EXPRESSION_CLASSES}
            negative = sum(shares[c] for c in ("angry", "disgust", "fear", "sad"))
            score = max(-1.0, min(1.0, shares["happy"] + 0.5 * shares["surprise"] - negative))
            yield b.event(EventType.SENTIMENT_WINDOW, {
                "counter": p.counter, "window_start": start.isoformat(), "window_end": end.isoformat(),
                "visits": len(carried), "k": k, "frames": len(carried) * 40, "class_shares": shares,
                "score": round(score, 4),
            }, end, f"{day}/window/{hour}")
            carried = []
        start = end


def generate(devices: list[tuple[str, str, int]], days: int, seed: int,
             today: date | None = None) -> list[Event]:
    today = today or datetime.now(TZ).date()
    out: list[Event] = []
    for p in profiles(devices):
        rng = random.Random(f"{seed}/{p.device_id}")
        b = _Builder(p)
        for day in _working_days(today, days):
            out.extend(counter_day(p, b, rng, day))
    return out


def publish(broker_host: str, broker_port: int, events: list[Event], timeout: float = 120) -> int:
    """Publish with QoS 1 and at most MAX_IN_FLIGHT unacknowledged; returns how many were acked."""
    client_id = f"motcua-demo-history-{uuid.uuid4().hex[:6]}"
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
    slots = threading.BoundedSemaphore(MAX_IN_FLIGHT)
    acked = 0
    lock = threading.Lock()

    def on_publish(*_args: object) -> None:
        nonlocal acked
        with lock:
            acked += 1
        slots.release()

    client.on_publish = on_publish
    client.connect(broker_host, broker_port)
    client.loop_start()
    try:
        for ev in events:
            if not slots.acquire(timeout=timeout):
                raise TimeoutError("broker stopped acknowledging demo history")
            client.publish(events_topic(ev.office_code, ev.device_id), encode(ev), qos=1)
        for _ in range(MAX_IN_FLIGHT):
            if not slots.acquire(timeout=timeout):
                raise TimeoutError("broker stopped acknowledging demo history")
    finally:
        client.loop_stop()
        client.disconnect()
    return acked
