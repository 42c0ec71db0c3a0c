"""Visits of past, closed hours for the feed tests, and the figures they must give (the oracle).

The oracle is computed here from what the test itself sends (arrival, wait, service, no-show,
rating, sentiment), independently of the gateway's SQL, so a wrong query cannot agree with itself.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from contract.feed import WAIT_BUCKETS_S
from contract.payloads import Event, EventType
from tests.gateway.kiosk_sim import EventFactory

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
TARGET_S = 1200.0


@dataclass
class Visit:
    office: str
    factory: EventFactory
    ticket_no: int
    issued: datetime
    wait_s: float
    service_s: float
    no_show: bool
    rating: int | None
    done: bool = False  # called/served (or no-show) events sent

    @property
    def day(self) -> Any:
        return self.issued.astimezone(TZ).date()

    def issue(self) -> list[Event]:
        t = self.factory.ticket(self.ticket_no, self.day)
        return [self.factory.event(EventType.TICKET_ISSUED, {**t, "waiting_ahead": 0}, self.issued)]

    def finish(self) -> list[Event]:
        """Called and served (or no-show), then the rating."""
        self.done = True
        evs = self.factory.visit(self.ticket_no, self.day, self.issued, self.wait_s, self.service_s,
                                 no_show=self.no_show)[1:]
        if self.rating is not None and not self.no_show:
            evs.append(self.factory.rating(self.ticket_no, self.day, self.rating, self.rating_ts))
        return evs

    @property
    def rating_ts(self) -> datetime:
        return self.issued + timedelta(seconds=self.wait_s + self.service_s + 20)


@dataclass
class Office:
    code: str
    factories: list[EventFactory]
    visits: list[Visit] = field(default_factory=list)
    windows: list[tuple[datetime, int, float]] = field(default_factory=list)  # end, visits, score
    next_ticket: dict[tuple[int, Any], int] = field(default_factory=lambda: defaultdict(int))

    def add_hour(self, hour: datetime, rng: random.Random, per_counter: int = 4) -> None:
        for f in self.factories:
            for i in range(per_counter):
                issued = hour + timedelta(seconds=90 + i * 780 + rng.randint(0, 60))
                key = (f.counter, issued.astimezone(TZ).date())
                self.next_ticket[key] += 1
                self.visits.append(Visit(
                    self.code, f, self.next_ticket[key], issued, wait_s=float(rng.randint(20, 2600)) + 0.25,
                    service_s=float(rng.randint(60, 400)), no_show=rng.random() < 0.15,
                    rating=rng.choice([None, 1, 2, 3, 3])))

    def sentiment(self, f: EventFactory, start: datetime, visits: int, score: float) -> Event:
        self.windows.append((start + timedelta(minutes=30), visits, score))
        return f.sentiment(start, visits, score)


def hour_of(t: datetime) -> int:
    return int(t.timestamp()) // 3600 * 3600


def expected(office: Office) -> dict[int, dict[str, Any]]:
    """Per hour start: the figures the hub must end with, from what was sent."""
    out: dict[int, dict[str, Any]] = defaultdict(lambda: {
        "visits": 0, "served": 0, "no_shows": 0, "wait_count": 0, "wait_sum_s": 0.0, "wait_over_target": 0,
        "hist": [0] * (len(WAIT_BUCKETS_S) + 1), "ratings": [0] * 5, "sentiment_visits": 0,
        "sentiment_score_sum": 0.0})
    for v in office.visits:
        e = out[hour_of(v.issued)]
        e["visits"] += 1
        if not v.done:
            continue
        if v.no_show:
            e["no_shows"] += 1
            continue
        e["served"] += 1
        e["wait_count"] += 1
        e["wait_sum_s"] += v.wait_s
        e["wait_over_target"] += v.wait_s > TARGET_S
        e["hist"][next((i for i, b in enumerate(WAIT_BUCKETS_S) if v.wait_s <= b), len(WAIT_BUCKETS_S))] += 1
        if v.rating is not None:
            out[hour_of(v.rating_ts)]["ratings"][v.rating - 1] += 1
    for end, n, score in office.windows:
        e = out[hour_of(end)]
        e["sentiment_visits"] += n
        e["sentiment_score_sum"] += n * score
    return dict(out)


def hub_figures(rows: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """hub_records rows of one office in the oracle's shape (hours with all zeros left out)."""
    out = {}
    for r in rows:
        fig = {"visits": r["visits"], "served": r["served"], "no_shows": r["no_shows"],
               "wait_count": r["wait_count"], "wait_sum_s": round(r["wait_sum_s"], 3),
               "wait_over_target": r["wait_over_target"],
               "hist": [r[f"wait_h{i}"] for i in range(len(WAIT_BUCKETS_S) + 1)],
               "ratings": [r[f"rating_{n}"] for n in range(1, 6)], "sentiment_visits": r["sentiment_visits"],
               "sentiment_score_sum": round(r["sentiment_score_sum"], 6)}
        if fig["visits"] or any(fig["ratings"]) or fig["sentiment_visits"]:
            out[int(r["hour_start"])] = fig
    return out


def normalised(exp: dict[int, dict[str, Any]]) -> dict[int, dict[str, Any]]:
    return {h: {**e, "wait_sum_s": round(e["wait_sum_s"], 3),
                "sentiment_score_sum": round(e["sentiment_score_sum"], 6)} for h, e in exp.items()}


def past_hours(n: int, now: datetime | None = None) -> list[datetime]:
    """The ``n`` whole UTC hours before the current one, oldest first (all closed)."""
    now = now or datetime.now(UTC)
    this = now.replace(minute=0, second=0, microsecond=0)
    return [this - timedelta(hours=i) for i in range(n, 0, -1)]
