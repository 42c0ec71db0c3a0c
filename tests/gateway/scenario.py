"""A reproducible day of traffic and its KPIs computed independently (numpy), for ingest tests."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from contract.payloads import Event, EventType
from tests.gateway.kiosk_sim import EventFactory

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
TARGET = 1200.0
# build_day stamps a whole office day of *today* (07:00-17:59 local), which can be hours ahead of the
# clock when the test runs; the gateway refuses events stamped ahead of its clock, so a gateway that
# replays such a day must allow it (its own tests check the clock window: tests/gateway/test_integrity_*)
WHOLE_DAY_AHEAD = {"max_clock_ahead_s": 86400.0}


@dataclass
class Expected:
    visits: list[dict[str, Any]] = field(default_factory=list)  # office, counter, wait, service, no_show, ...
    ratings: list[dict[str, Any]] = field(default_factory=list)
    windows: list[dict[str, Any]] = field(default_factory=list)


def build_day(day: date, seed: int = 7, per_counter: int = 25) -> tuple[list[Event], Expected]:
    """Visits on k03390-q1, k03390-q2 and k03405-q1 during local office hours of ``day``."""
    rng = random.Random(seed)
    events: list[Event] = []
    exp = Expected()
    for device, office, counter in (
        ("k03390-q1", "03390", 1),
        ("k03390-q2", "03390", 2),
        ("k03405-q1", "03405", 1),
    ):
        f = EventFactory(device, office, counter)
        for no in range(1, per_counter + 1):
            issued = datetime(
                day.year,
                day.month,
                day.day,
                rng.randint(7, 16),
                rng.randint(0, 59),
                rng.randint(0, 59),
                tzinfo=TZ,
            ).astimezone(UTC)
            wait = round(rng.uniform(30, 2400), 1)
            kind = rng.random()
            no_show = kind < 0.08
            waiting = 0.08 <= kind < 0.14  # still in the queue: issued only
            service = None if no_show else round(rng.uniform(60, 900), 1)
            officer = rng.choice(["cb-01", "cb-02"])
            if waiting:
                t = f.ticket(no, day)
                events.append(f.event(EventType.TICKET_ISSUED, {**t, "waiting_ahead": 1}, issued))
                exp.visits.append(
                    {
                        "office": office,
                        "counter": counter,
                        "issued": issued,
                        "wait": None,
                        "service": None,
                        "no_show": False,
                        "waiting": True,
                        "officer": None,
                    }
                )
                continue
            events.extend(f.visit(no, day, issued, wait, service, officer=officer, no_show=no_show))
            exp.visits.append(
                {
                    "office": office,
                    "counter": counter,
                    "issued": issued,
                    "wait": wait,
                    "service": service,
                    "no_show": no_show,
                    "waiting": False,
                    "officer": None if no_show else officer,
                }
            )
            if not no_show and rng.random() < 0.7:
                level = rng.choice([1, 2, 2, 3, 3, 3])
                events.append(
                    f.rating(no, day, level, issued + timedelta(seconds=wait + service + 5), officer=officer)
                )
                exp.ratings.append({"office": office, "counter": counter, "level": level, "officer": officer})
        for w in range(3):
            start = datetime(day.year, day.month, day.day, 8 + 2 * w, 0, tzinfo=TZ).astimezone(UTC)
            visits, score = rng.randint(5, 12), round(rng.uniform(-0.5, 0.9), 3)
            events.append(f.sentiment(start, visits, score))
            exp.windows.append({"office": office, "counter": counter, "visits": visits, "score": score})
    rng.shuffle(events)  # the gateway must not depend on order
    return events, exp


def nearest_rank_p90(values: list[float]) -> float | None:
    return float(np.percentile(values, 90, method="inverted_cdf")) if values else None


def expected_kpis(exp: Expected, office: str, counter: int | None = None) -> dict[str, Any]:
    vs = [v for v in exp.visits if v["office"] == office and (counter is None or v["counter"] == counter)]
    rs = [r for r in exp.ratings if r["office"] == office and (counter is None or r["counter"] == counter)]
    ws = [w for w in exp.windows if w["office"] == office and (counter is None or w["counter"] == counter)]
    waits = [v["wait"] for v in vs if v["wait"] is not None and not v["no_show"]]
    service = [v["service"] for v in vs if v["service"] is not None]
    rated = len(rs)
    lowest = sum(1 for r in rs if r["level"] == 1)
    sv = sum(w["visits"] for w in ws)
    return {
        "visits": len(vs),
        "served": sum(1 for v in vs if v["service"] is not None),
        "waiting_now": sum(1 for v in vs if v["waiting"]),
        "no_shows": sum(1 for v in vs if v["no_show"]),
        "avg_wait_s": float(np.mean(waits)),
        "p90_wait_s": nearest_rank_p90(waits),
        "over_target_share": float(np.mean([w > TARGET for w in waits])),
        "avg_service_s": float(np.mean(service)),
        "p90_service_s": nearest_rank_p90(service),
        "rated": rated,
        "ratings": {
            str(k): sum(1 for r in rs if r["level"] == k)
            for k in (1, 2, 3)
            if any(r["level"] == k for r in rs)
        },
        "satisfaction_rate": (rated - lowest) / rated,
        "sentiment_score": sum(w["score"] * w["visits"] for w in ws) / sv,
    }


def expected_hours(exp: Expected, office: str) -> dict[int, int]:
    out: dict[int, int] = {}
    for v in exp.visits:
        if v["office"] == office:
            h = v["issued"].astimezone(TZ).hour
            out[h] = out.get(h, 0) + 1
    return out


def assert_kpis_match(actual: dict[str, Any], expected: dict[str, Any]) -> None:
    for k, want in expected.items():
        got = actual[k]
        if isinstance(want, float):
            assert got is not None and abs(got - want) < 1e-6, f"{k}: got {got}, expected {want}"
        else:
            assert got == want, f"{k}: got {got!r}, expected {want!r}"


def bad_messages() -> list[tuple[str, str, bytes]]:
    """(expected reason, topic, payload): one of each rejection the contract knows."""
    f = EventFactory("k03390-q3", "03390", 3)
    good = json.loads(f.health().model_dump_json())
    spoof = dict(good, device_id="k03390-q1")
    return [
        ("bad_json", "motcua/v1/03390/k03390-q3/health", b"{not json"),
        ("bad_json", "motcua/v1/03390/k03390-q3/events", b"\xff\xfe\x00"),
        ("too_large", "motcua/v1/03390/k03390-q3/health", b"{" + b" " * (17 * 1024) + b"}"),
        ("unknown_version", "motcua/v1/03390/k03390-q3/health", json.dumps(dict(good, v=2)).encode()),
        ("invalid", "motcua/v1/03390/k03390-q3/health", json.dumps(dict(good, outbox_depth=-1)).encode()),
        (
            "invalid",
            "motcua/v1/03390/k03390-q3/events",
            json.dumps({"v": 1, "type": "ticket.issued"}).encode(),
        ),
        ("spoofed", "motcua/v1/03390/k03390-q3/health", json.dumps(spoof).encode()),
        ("bad_topic", "motcua/v1/03390/k03390-q3/telemetry", json.dumps(good).encode()),
    ]
