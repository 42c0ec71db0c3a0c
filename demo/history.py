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
from gateway.forecast import holiday_name, in_tet_period

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
NAMESPACE = uuid.UUID("6f1c2a52-3b0e-4d47-9a57-4680c0de0468")
BOOT_ID = "demo-history"
LEVEL_LABELS = {1: "Không hài lòng", 2: "Hài lòng", 3: "Rất hài lòng"}
REASONS = ["waited_too_long", "staff_attitude", "unclear_guidance"]
SESSIONS = [(time(7, 30), time(11, 30)), (time(13, 30), time(17, 0))]
BUSY_OFFICES = frozenset({"03405"})  # Tả Lèng: also the busier office of demo.run's live citizens
MAX_IN_FLIGHT = 500  # paho loses QoS 1 messages past 65,535 in flight (PLATFORM-NOTES)
K = 5  # the kiosks' sentiment window minimum
TET_VOLUME = 0.5  # share of the usual visitors in the weeks around Tết
SUBSTITUTE_DAYS = 0.06  # days a substitute officer serves the counter
TRAINEE_DAYS = 30  # the trainee joined this many days ago ...
TRAINEE_SHARE = 0.05  # ... and serves this share of the visits since


@dataclass(frozen=True)
class CounterProfile:
    device_id: str
    office_code: str
    counter: int
    visits_per_day: float  # mean
    median_wait_min: float
    officer_id: str
    substitute_id: str  # serves the counter on a few days
    trainee_id: str  # joined a month ago, serves a few visits: a small sample the ranking must not reward


def profiles(devices: list[tuple[str, str, int]]) -> list[CounterProfile]:
    """A busy office (longer waits) and a quiet one, so the map shows the difference."""
    out = []
    for device_id, office, counter in devices:
        busy = office in BUSY_OFFICES
        out.append(CounterProfile(device_id, office, counter, visits_per_day=34 if busy else 24,
                                  median_wait_min=15 if busy else 7, officer_id=f"cb-{office}-{counter}",
                                  substitute_id=f"cb-{office}-tt{counter}",
                                  trainee_id=f"cb-{office}-tn{counter}"))
    return out


@dataclass
class SimVisit:
    """One simulated visit; ``service`` None = a no-show."""

    no: int
    issued: datetime
    wait: float
    service: float | None
    officer_id: str
    level: int | None
    reason: str | None
    waiting_ahead: int
    waiting_after: int


@dataclass
class SimWindow:
    start: datetime
    end: datetime
    visits: int
    shares: dict[str, float]
    score: float


class _Builder:
    def __init__(self, p: CounterProfile) -> None:
        self.p = p
        self.seq = 0

    def event(self, etype: EventType, data: dict, at: datetime, key: str) -> Event:
        self.seq += 1
        return Event(
            event_id=event_id(self.p.device_id, key, etype),
            device_id=self.p.device_id, office_code=self.p.office_code, seq=self.seq, type=etype,
            ts=at.astimezone(UTC), clock_synced=True, boot_id=BOOT_ID, mono_ms=self.seq, data=data,
        )


def event_id(device_id: str, key: str, etype: EventType) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{device_id}/{key}/{etype.value}"))


def closed(day: date) -> bool:
    """Weekends and Vietnamese public holidays (the forecast's calendar)."""
    return day.weekday() >= 5 or holiday_name(day) is not None


def working_days(today: date, days: int) -> list[date]:
    """The ``days`` open days before ``today``, oldest first."""
    out, d = [], today - timedelta(days=1)
    while len(out) < days:
        if not closed(d):
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


def simulate_day(p: CounterProfile, rng: random.Random, day: date, today: date,
                 time_scale: float = 1.0) -> tuple[list[SimVisit], list[SimWindow]]:
    """A counter's day: quieter around Tết, busier on Mondays, waits slowly improving over the
    year; waits and service times divided by the demo's ``time_scale`` (its compressed target)."""
    volume = (1.15 if day.weekday() == 0 else 1.0) * (TET_VOLUME if in_tet_period(day) else 1.0)
    n = max(3, int(rng.gauss(p.visits_per_day * volume, 4)))
    age = min(1.0, (today - day).days / 365)
    median_wait = p.median_wait_min * 60 * (0.85 + 0.35 * age)  # a year ago waits were ~40 % longer
    day_officer = p.substitute_id if rng.random() < SUBSTITUTE_DAYS else p.officer_id
    trainee = (today - day).days <= TRAINEE_DAYS
    visits = []
    for no, issued in enumerate(_arrivals(rng, day, n), start=1):
        officer = p.trainee_id if trainee and rng.random() < TRAINEE_SHARE else day_officer
        wait = min(5400.0, rng.lognormvariate(0, 0.55) * median_wait)
        scaled_wait = round(wait / time_scale, 1)  # as the kiosk sends it
        if rng.random() < 0.06:
            visits.append(SimVisit(no, issued, scaled_wait, None, officer, None, None, rng.randint(0, 6), 0))
            continue
        service = rng.uniform(240, 900)
        level = reason = None
        if rng.random() < 0.82:
            unhappy = 0.05 + 0.25 * min(1.0, wait / 2400) + (0.1 if officer != p.officer_id else 0)
            level = 1 if rng.random() < unhappy else (3 if rng.random() < 0.6 else 2)
            reason = rng.choice(REASONS) if level == 1 else None
        scaled_service = round(service / time_scale, 1)
        visits.append(SimVisit(no, issued, scaled_wait, scaled_service, officer, level, reason,
                               rng.randint(0, 6), rng.randint(0, 5)))
    return visits, _windows(day, visits, wait_scale=median_wait / time_scale)


def counter_day(p: CounterProfile, b: _Builder, day: date, visits: list[SimVisit],
                windows: list[SimWindow]) -> Iterator[Event]:
    for v in visits:
        key = f"{day}/{v.no}"
        t = {"ticket_no": v.no, "label": f"{v.no:04d}", "counter": p.counter, "service_day": day.isoformat()}
        yield b.event(EventType.TICKET_ISSUED, {**t, "waiting_ahead": v.waiting_ahead}, v.issued, key)
        called = v.issued + timedelta(seconds=v.wait)
        if v.service is None:
            yield b.event(EventType.TICKET_NO_SHOW, {**t, "wait_s": v.wait}, called, key)
            continue
        yield b.event(EventType.TICKET_CALLED, {**t, "wait_s": v.wait, "waiting_after": v.waiting_after,
                                                "officer_id": v.officer_id}, called, key)
        done = called + timedelta(seconds=v.service)
        yield b.event(EventType.SERVICE_COMPLETED, {**t, "wait_s": v.wait, "service_s": v.service,
                                                    "officer_id": v.officer_id}, done, key)
        if v.level is not None:
            yield b.event(EventType.RATING_SUBMITTED, {
                "ticket_no": v.no, "service_day": day.isoformat(), "counter": p.counter, "level": v.level,
                "scale": 3, "level_label": LEVEL_LABELS[v.level], "reason": v.reason,
                "officer_id": v.officer_id}, done + timedelta(seconds=20), key)
    for w in windows:
        yield b.event(EventType.SENTIMENT_WINDOW, {
            "counter": p.counter, "window_start": w.start.isoformat(), "window_end": w.end.isoformat(),
            "visits": w.visits, "k": K, "frames": w.visits * 40, "class_shares": w.shares, "score": w.score,
        }, w.end, f"{day}/window/{w.start.hour}")


def _windows(day: date, visits: list[SimVisit], wait_scale: float) -> list[SimWindow]:
    """Hourly windows of the served visits' expressions; fewer than k visits carry over to the next
    window, as on the kiosk. Longer waits, fewer happy faces."""
    done = []
    for v in visits:
        if v.service is None:
            continue
        happy = max(0.05, 0.55 - 0.2 * v.wait / max(1.0, wait_scale))
        rest = (1 - happy) / (len(EXPRESSION_CLASSES) - 1)
        at = v.issued + timedelta(seconds=v.wait + v.service)
        done.append((at, {c: happy if c == "happy" else rest for c in EXPRESSION_CLASSES}))
    out: list[SimWindow] = []
    carried: list[dict[str, float]] = []
    start = datetime.combine(day, time(7, 0), TZ)
    for _hour in range(7, 18):
        end = start + timedelta(hours=1)
        carried += [s for at, s in done if start <= at < end]
        if len(carried) >= K:
            shares = {c: round(sum(v[c] for v in carried) / len(carried), 4) for c in EXPRESSION_CLASSES}
            negative = sum(shares[c] for c in ("angry", "disgust", "fear", "sad"))
            score = max(-1.0, min(1.0, shares["happy"] + 0.5 * shares["surprise"] - negative))
            out.append(SimWindow(start, end, len(carried), shares, round(score, 4)))
            carried = []
        start = end
    return out


def generate(devices: list[tuple[str, str, int]], days: int, seed: int,
             today: date | None = None, time_scale: float = 1.0) -> list[Event]:
    """Events of the last ``days`` open days for each device (published over MQTT by the demo)."""
    today = today or datetime.now(TZ).date()
    out: list[Event] = []
    for p in profiles(devices):
        b = _Builder(p)
        for day in working_days(today, days):
            rng = random.Random(f"{seed}/{p.device_id}/{day}")
            out.extend(counter_day(p, b, day, *simulate_day(p, rng, day, today, time_scale)))
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
