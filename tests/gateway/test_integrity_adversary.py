"""A registered kiosk's certificate in an adversary's hands, against a real Mosquitto and the real
gateway (SQLite and PostgreSQL): each attack below moved a figure before the fix; now each is refused
or left uncounted, with the counter or status that records it (docs/threat-model.md)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from contract.codec import encode
from contract.payloads import EventType
from contract.topics import events_topic
from tests.gateway.conftest import RunningGateway, wait_for
from tests.gateway.kiosk_sim import EventFactory, Publisher

OFFICE = "03390"


def _processed(gw: RunningGateway) -> int:
    st = gw.stats()  # a restated visit step is stored (accepted) *and* counted as conflicting_visit
    rejected = sum(n for reason, n in st["rejected"].items() if reason != "conflicting_visit")
    return st["accepted"] + st["duplicates"] + rejected


def _send(gw: RunningGateway, pub: Publisher, messages: list[Any]) -> None:
    """Publish events (or raw (topic, payload) pairs) and wait until the gateway has decided each."""
    before = _processed(gw)
    for m in messages:
        pub.raw(*m) if isinstance(m, tuple) else pub.event(m)
    pub.flush()
    wait_for(lambda: _processed(gw) - before >= len(messages), what="messages processed")


def _kpi(gw: RunningGateway) -> dict[str, Any]:
    return gw.public.get(f"/api/v1/offices/{OFFICE}").json()["kpi_today"]


def _officers(gw: RunningGateway) -> dict[str, dict[str, Any]]:
    detail = gw.ops.get(f"/api/v1/offices/{OFFICE}/kpis").json()
    return {o["officer_id"]: o for o in detail["officers"]}


def _rejected(gw: RunningGateway, reason: str) -> int:
    return gw.stats()["rejected"].get(reason, 0)


def _statuses(gw: RunningGateway) -> dict[str, int]:
    return gw.ops.get(f"/api/v1/offices/{OFFICE}/flags").json()["ratings_by_status"]


def run_adversary(gw: RunningGateway, port: int) -> None:
    day = gw.app.state.kpi.today()
    t0 = datetime.now(UTC) - timedelta(hours=2)
    f = EventFactory("k03390-q1", OFFICE, 1)
    pub = Publisher(port)
    try:
        # genuine traffic: five visits served by cb-01, rated 1, 1, 2, 3, 3
        msgs: list[Any] = []
        for no, level in enumerate((1, 1, 2, 3, 3), start=1):
            issued = t0 + timedelta(minutes=10 * no)
            msgs += f.visit(no, day, issued, 120.0, 300.0, officer="cb-01")
            msgs.append(f.rating(no, day, level, issued + timedelta(seconds=440), officer="cb-01"))
        _send(gw, pub, msgs)
        assert _kpi(gw)["satisfaction_rate"] == pytest.approx(0.6)
        assert _officers(gw)["cb-01"]["rated"] == 5

        # 1. a rating that names another officer than the one who served the visit
        issued = t0 + timedelta(minutes=60)
        _send(gw, pub, [*f.visit(6, day, issued, 60.0, 300.0, officer="cb-01"),
                        f.rating(6, day, 3, issued + timedelta(seconds=380), officer="cb-evil")])
        officers = _officers(gw)
        assert "cb-evil" not in officers  # was: cb-evil rated 1, satisfaction 1.0
        assert officers["cb-01"]["rated"] == 6 and _kpi(gw)["rated"] == 6

        # 2. a visit restated: completed again under another officer; ticket 2 issued again
        service_before = _kpi(gw)["avg_service_s"]
        t = f.ticket(1, day)
        restated = {**t, "wait_s": 120.0, "service_s": 30.0, "officer_id": "cb-02"}
        again = f.event(EventType.SERVICE_COMPLETED, restated, t0 + timedelta(minutes=70))
        reissued = f.event(EventType.TICKET_ISSUED, {**f.ticket(2, day), "waiting_ahead": 9},
                           t0 + timedelta(minutes=71))
        _send(gw, pub, [again, reissued])
        assert _rejected(gw, "conflicting_visit") == 2
        assert "cb-02" not in _officers(gw)  # was: cb-02 served 1, cb-01 served 5
        assert _officers(gw)["cb-01"]["served"] == 6 and _kpi(gw)["avg_service_s"] == service_before
        with gw.app.state.store.engine.connect() as conn:
            held = conn.exec_driver_sql("SELECT event_id, held FROM events WHERE held IS NOT NULL").all()
        assert sorted(held) == sorted((e.event_id, "conflicting_visit") for e in (again, reissued))

        # 3. top ratings sent ahead for tickets 7-9, before they are called: the citizens' own count
        pre = [f.rating(no, day, 3, t0 + timedelta(minutes=75, seconds=no)) for no in (7, 8, 9)]
        _send(gw, pub, pre)
        later: list[Any] = []
        for no in (7, 8, 9):
            issued = t0 + timedelta(minutes=10 * no)
            later += f.visit(no, day, issued, 60.0, 300.0, officer="cb-01")
            later.append(f.rating(no, day, 1, issued + timedelta(seconds=380), officer="cb-01"))
        _send(gw, pub, later)
        k = _kpi(gw)
        assert k["rated"] == 9 and k["not_satisfied"] == 5  # was: the early 3s counted, the 1s duplicates
        assert _statuses(gw).get("before_visit") == 3 and "duplicate" not in _statuses(gw)

        # 4. a rating for a ticket called but never served (no-show)
        issued = t0 + timedelta(minutes=100)
        no_show = f.visit(10, day, issued, 60.0, None, officer="cb-01")  # issued, called
        no_show.append(f.event(EventType.TICKET_NO_SHOW, {**f.ticket(10, day), "wait_s": 60.0},
                               issued + timedelta(seconds=200)))
        _send(gw, pub, [*no_show, f.rating(10, day, 3, issued + timedelta(seconds=260), officer="cb-01")])
        assert _kpi(gw)["rated"] == 9  # was 10

        # 5. a reason code after a top rating: the contract refuses it
        bad = json.loads(encode(f.rating(6, day, 3, t0 + timedelta(minutes=110))))
        bad["data"]["reason"] = "waited_too_long"
        invalid = gw.stats()["rejected"].get("invalid", 0)
        _send(gw, pub, [(events_topic(OFFICE, f.device_id), json.dumps(bad).encode())])
        assert gw.stats()["rejected"]["invalid"] == invalid + 1

        # 6. sentiment windows: one over the same half hour again, one in the future
        s2, s3 = EventFactory("k03390-q2", OFFICE, 2), EventFactory("k03390-q3", OFFICE, 3)
        start = datetime.now(UTC) - timedelta(minutes=50)
        first = s2.sentiment(start, 10, 0.5)
        _send(gw, pub, [first])
        assert _kpi(gw)["sentiment_visits"] == 10
        overlap = s2.sentiment(start + timedelta(minutes=10), 10, 1.0)
        future = s3.sentiment(datetime.now(UTC) + timedelta(days=1), 10, 1.0)
        future = future.model_copy(update={"ts": datetime.now(UTC)})
        clock = _rejected(gw, "clock_out_of_window")
        _send(gw, pub, [overlap, future])
        assert _rejected(gw, "window_overlap") == 1  # was: both stored, 20 visits, score 0.75
        assert _rejected(gw, "clock_out_of_window") == clock + 1  # was: stored under tomorrow
        dups = gw.stats()["duplicates"]
        _send(gw, pub, [first])  # a resend of the first window is a duplicate, not an overlap
        assert gw.stats()["duplicates"] == dups + 1 and _rejected(gw, "window_overlap") == 1
        k = _kpi(gw)
        assert k["sentiment_visits"] == 10 and k["sentiment_score"] == pytest.approx(0.5)

        # 7. already stopped (regression guards): a window from an unregistered device is held; the
        # counter-1 kiosk rating a visit of counter 2 is refused
        stranger = EventFactory("k-stranger-1", OFFICE, 3).sentiment(start - timedelta(hours=1), 10, 1.0)
        other = EventFactory("k03390-q1", OFFICE, 2)
        other.seq = f.seq
        held, foreign = gw.stats()["quarantined"], _rejected(gw, "foreign_counter")
        _send(gw, pub, [stranger, other.rating(1, day, 3, t0 + timedelta(minutes=115))])
        assert gw.stats()["quarantined"] == held + 1 and _rejected(gw, "foreign_counter") == foreign + 1
        assert _kpi(gw) == k
    finally:
        pub.close()


def test_adversary_with_a_registered_kiosk_sqlite(mosquitto, gateway_factory) -> None:
    run_adversary(gateway_factory(mosquitto.url), mosquitto.port)


def test_adversary_with_a_registered_kiosk_postgres(mosquitto, postgres, gateway_factory) -> None:
    run_adversary(gateway_factory(mosquitto.url, postgres.url), mosquitto.port)
