"""Issue 8's attacks on the gateway, as messages: used by tests/gateway/test_integrity_attacks.py
and bench/integrity (which replays them at volume). Each attack returns what it sent and the
counter that must record it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from contract.codec import encode
from contract.payloads import EventType
from contract.topics import events_topic
from hil.harness.kiosk_sim import EventFactory


@dataclass
class Attack:
    name: str
    messages: list[tuple[str, bytes]] = field(default_factory=list)  # (topic, payload)
    expect: dict[str, int] = field(default_factory=dict)  # counter name -> increase
    office: str = "03390"  # whose figures it tries to move


def _pub(ev) -> tuple[str, bytes]:
    return events_topic(ev.office_code, ev.device_id), encode(ev)


def baseline(day: date, start: datetime) -> list[tuple[str, bytes]]:
    """Genuine traffic at 03390 counter 1: five served visits rated 1, 1, 2, 3, 3 (satisfaction 0.6)."""
    f = EventFactory("k03390-q1", "03390", 1)
    out = []
    for no, level in enumerate((1, 1, 2, 3, 3), start=1):
        issued = start + timedelta(minutes=10 * no)
        for ev in f.visit(no, day, issued, 120.0, 300.0, officer="cb-01"):
            out.append(_pub(ev))
        out.append(_pub(f.rating(no, day, level, issued + timedelta(seconds=440), officer="cb-01")))
    out.append(_pub(EventFactory("k03390-q3", "03390", 3).sentiment(start, 10, 0.2)))  # one genuine window
    return out


def forged_unregistered(day: date, start: datetime, n: int = 150) -> Attack:
    """Top ratings from a device nobody registered (a third of them repeating ticket 1)."""
    f = EventFactory("k-forged-1", "03390", 1)
    msgs = [
        _pub(f.rating(1 if i % 3 == 0 else i + 100, day, 3, start + timedelta(seconds=i))) for i in range(n)
    ]
    return Attack("forged from unregistered device", msgs, {"quarantined": n})


def repeated_ratings(day: date, start: datetime, n: int = 30) -> Attack:
    """A registered kiosk's certificate sends n more ratings for ticket 1, already rated."""
    f = EventFactory("k03390-q1", "03390", 1)
    f.seq = 10_000
    msgs = [_pub(f.rating(1, day, 3, start + timedelta(seconds=600 + i), officer="cb-01")) for i in range(n)]
    return Attack("repeated ratings of one visit", msgs, {"duplicate_rating": n})


def foreign_office(day: date, start: datetime, n: int = 20) -> Attack:
    """Office 03390's kiosk publishes visits and ratings under office 03405's topic."""
    f = EventFactory("k03390-q1", "03405", 1)
    f.seq = 20_000
    msgs = []
    for no in range(1, n + 1):
        ev = f.rating(no, day, 3, start + timedelta(seconds=no))
        msgs.append(_pub(ev))
    return Attack("foreign office", msgs, {"rejected:foreign_office": n}, "03405")


def farmed_visits(day: date, start: datetime, n: int = 20) -> Attack:
    """An officer presses ticket, next, next, rate_3 twenty times in 7.4 s: visits of 0.08 s."""
    f = EventFactory("k03405-q3", "03405", 3)
    msgs = []
    for no in range(1, n + 1):
        t0 = start + timedelta(seconds=0.37 * no)
        for ev in f.visit(no, day, t0, 0.1, 0.08, officer="cb-farm"):
            msgs.append(_pub(ev))
        msgs.append(_pub(f.rating(no, day, 3, t0 + timedelta(seconds=0.2), officer="cb-farm")))
    return Attack("farmed visits (0.08 s, all top rated)", msgs, {"flagged:short_service": n}, "03405")


def rating_burst(day: date, start: datetime, n: int = 6) -> Attack:
    """Top ratings from one counter within a minute, on visits that claim a normal service time."""
    f = EventFactory("k03405-q2", "03405", 2)
    msgs = []
    for no in range(1, n + 1):
        issued = start - timedelta(hours=2, minutes=10 * no)
        for ev in f.visit(no, day, issued, 60.0, 300.0, officer="cb-burst"):
            msgs.append(_pub(ev))
    for no in range(1, n + 1):
        msgs.append(_pub(f.rating(no, day, 3, start + timedelta(seconds=10 * no), officer="cb-burst")))
    return Attack("burst of top ratings", msgs, {"flagged:top_rating_burst": n}, "03405")


def small_windows(day: date, start: datetime, n: int = 1) -> Attack:
    """Sentiment windows with k=1, visits=1; and windows claiming 100,000 visits in half an hour."""
    f = EventFactory("k03390-q2", "03390", 2)
    f.seq = 30_000
    topic = events_topic("03390", "k03390-q2")
    msgs = []
    for i in range(n):
        k1 = json.loads(encode(f.sentiment(start + timedelta(seconds=i), 5, 1.0)))
        k1["data"].update(k=1, visits=1)
        msgs.append((topic, json.dumps(k1).encode()))
        msgs.append(_pub(f.sentiment(start + timedelta(seconds=i), 100_000, 1.0)))
    return Attack("k=1 and implausible windows", msgs,
                  {"rejected:k_below_minimum": n, "rejected:visits_implausible": n})


def poison(day: date, start: datetime, n: int = 10) -> Attack:
    """Events the contract refuses: seq = 2**70, "5" for a ticket, NaN, deep JSON; one clock far ahead,
    a service day of 9999-12-31, a counter the office does not have, another counter's figures."""
    f = EventFactory("k03390-q1", "03390", 1)
    f.seq = 40_000
    good = json.loads(encode(f.visit(900, day, start, 60.0, 300.0)[0]))
    topic = events_topic("03390", "k03390-q1")
    msgs = []
    for i in range(n):
        msgs.append((topic, json.dumps({**good, "seq": 2**70 + i}).encode()))
        msgs.append((topic, json.dumps({**good, "data": {**good["data"], "ticket_no": "5"}}).encode()))
    msgs.append((topic, encode(good_event(f, day, start + timedelta(days=2)))))
    for i, over in enumerate(({"service_day": "9999-12-31"}, {"counter": 9}, {"counter": 2}), start=1):
        bad = {**good, "event_id": _uuid(i), "data": {**good["data"], **over}}
        msgs.append((topic, json.dumps(bad).encode()))
    nested = json.dumps(good)[:-1] + ', "x": ' + "[" * 60 + "]" * 60 + "}"
    msgs.append((topic, nested.encode()))
    return Attack("poison and impossible events", msgs, {
        "rejected:invalid": 2 * n, "rejected:clock_out_of_window": 1, "rejected:day_out_of_window": 1,
        "rejected:unknown_counter": 1, "rejected:foreign_counter": 1, "rejected:bad_json": 1,
    })


def good_event(f: EventFactory, day: date, ts: datetime):
    return f.event(EventType.TICKET_ISSUED, {**f.ticket(901, day), "waiting_ahead": 0}, ts.astimezone(UTC))


def _uuid(i: int) -> str:
    return f"00000000-0000-4000-8000-{i:012d}"


def rate_ahead(day: date, start: datetime, n: int = 10) -> Attack:
    """A registered kiosk's certificate sends top ratings for the next n tickets before they are
    called; the visits then happen (no citizen rates). Before: each early rating counted."""
    f = EventFactory("k03405-q1", "03405", 1)
    f.seq = 50_000
    msgs = [_pub(f.rating(no, day, 3, start + timedelta(seconds=no))) for no in range(1, n + 1)]
    for no in range(1, n + 1):
        issued = start + timedelta(minutes=5, seconds=3 * no)
        msgs += [_pub(ev) for ev in f.visit(no, day, issued, 60.0, 300.0, officer="cb-a")]
    return Attack("ratings sent before their visit", msgs, {"status:before_visit": n}, "03405")


def restated_visits(day: date, start: datetime, n: int = 10) -> Attack:
    """n served visits, each then 'completed' again under another officer and issued again. Before:
    the later statement replaced the officer, the service time and the arrival."""
    f = EventFactory("k03405-q2", "03405", 2)
    f.seq = 60_000
    msgs = []
    tickets = range(1001, 1001 + n)  # clear of rating_burst's tickets at this counter
    for no in tickets:
        t0 = start + timedelta(seconds=2 * (no - 1000))
        msgs += [_pub(ev) for ev in f.visit(no, day, t0, 60.0, 300.0, officer="cb-a")]
    for no in tickets:
        t = f.ticket(no, day)
        again = {**t, "wait_s": 60.0, "service_s": 30.0, "officer_id": "cb-b"}
        msgs.append(_pub(f.event(EventType.SERVICE_COMPLETED, again, start + timedelta(hours=1))))
        msgs.append(_pub(f.event(EventType.TICKET_ISSUED, {**t, "waiting_ahead": 0}, start)))
    return Attack("visits restated (officer, service, issue)", msgs, {"rejected:conflicting_visit": 2 * n})


def overlapping_windows(day: date, start: datetime, n: int = 10) -> Attack:
    """n sentiment windows over the half hour of the genuine one at 03390 counter 3 (baseline)."""
    f = EventFactory("k03390-q3", "03390", 3)
    f.seq = 70_000
    msgs = [_pub(f.sentiment(start + timedelta(seconds=i), 10, 1.0)) for i in range(n)]
    return Attack("overlapping sentiment windows", msgs, {"rejected:window_overlap": n})


ADVERSARY = (rate_ahead, restated_visits, overlapping_windows)  # found attacking the gateway (bench)

ATTACKS = (forged_unregistered, repeated_ratings, foreign_office, farmed_visits, rating_burst, small_windows,
           poison)
