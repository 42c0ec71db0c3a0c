"""Rating rules are exact under any ingest order, batch split and replay (SQLite and PostgreSQL).

A day at counter 1 of 03390: served visits, one only called, one only issued, short (flagged)
visits, up to three ratings per visit (the first press by the device's seq counts), ratings of an
unknown visit and with no ticket, and a burst of top ratings. The same events are applied in random
orders and batch splits with replays; the rating statuses, flags and the duplicate counter must come
out the same as worked out here by hand.
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from contract.codec import decode, encode
from contract.topics import events_topic
from gateway.config import Settings
from gateway.registry import load_registry
from gateway.store import Store
from gateway.store import schema as s
from gateway.store.writer import Incoming, apply_batch
from tests.gateway.kiosk_sim import EventFactory

TZ = ZoneInfo("Asia/Ho_Chi_Minh")


def _day_of_events() -> tuple[list, dict[str, str], dict[str, str | None], int]:
    """(events, expected status by rating event_id, expected flag by rating event_id, duplicates)."""
    day = datetime.now(TZ).date()
    start = datetime.now(UTC) - timedelta(hours=5)
    f = EventFactory("k03390-q1", "03390", 1)
    events, status, flag = [], {}, {}
    duplicates = 0
    for no in range(1, 13):
        issued = start + timedelta(minutes=20 * no)
        short = no in (4, 5)
        events += f.visit(no, day, issued, 60.0, 3.0 if short else 300.0, officer="cb-01")
        burst = no >= 8  # visits 8-12: five top ratings 10 s apart, a burst
        for press in range(1 + no % 3):  # 1, 2 or 3 presses
            level = 3 if burst else 1 + no % 3
            late = start + timedelta(hours=4, seconds=10 * no)
            at = late if burst else issued + timedelta(seconds=400 + press)
            ev = f.rating(no, day, level, at, officer="cb-01")
            events.append(ev)
            status[ev.event_id] = "counted" if press == 0 else "duplicate"
            duplicates += press > 0
            first_flag = "top_rating_burst" if burst else None
            flag[ev.event_id] = "short_service" if short else (first_flag if press == 0 else None)
    called_only = f.visit(13, day, start, 60.0, None, officer="cb-01")  # called, not completed: counts
    waiting = f.visit(14, day, start, 60.0, None, officer="cb-01")[:1]  # issued only: rating pending
    events += called_only + waiting
    for no, want in ((13, "counted"), (14, "pending"), (99, "pending"), (None, "no_ticket")):
        ev = f.rating(no, day, 2, start + timedelta(hours=1), officer="cb-01")
        events.append(ev)
        status[ev.event_id], flag[ev.event_id] = want, None
    return events, status, flag, duplicates


def _reset(store: Store) -> None:
    with store.engine.begin() as conn:
        for t in (s.events, s.visits, s.ratings, s.sentiment_windows, s.ingest_counters):
            conn.execute(t.delete())


def _apply_shuffled(store: Store, events: list, rng: random.Random) -> None:
    msgs = [decode(events_topic(e.office_code, e.device_id), encode(e)) for e in events]
    msgs += rng.sample(msgs, len(msgs) // 3)  # replays (a kiosk resending its outbox)
    rng.shuffle(msgs)
    i = 0
    while i < len(msgs):
        n = rng.choice([1, 2, 5, 17, 60])
        apply_batch(store, [Incoming(m, time.time()) for m in msgs[i : i + n]], {}, TZ, set())
        i += n


def _check(store: Store, status: dict, flag: dict, duplicates: int) -> None:
    r = s.ratings
    with store.engine.connect() as conn:
        rows = conn.execute(select(r.c.event_id, r.c.status, r.c.flag))
        got = {x.event_id: (x.status, x.flag) for x in rows}
        v = s.visits
        short_visits = conn.execute(select(v.c.ticket_no).where(v.c.flag == "short_service")).all()
    assert {k: v[0] for k, v in got.items()} == status
    assert {k: v[1] for k, v in got.items()} == flag
    assert sorted(t for (t,) in short_visits) == [4, 5]
    assert store.counters().get("duplicate_rating", 0) == duplicates


def _run(url: str) -> None:
    store = Store(url)
    store.migrate()
    store.load_registry(load_registry(Settings().registry_file))
    events, status, flag, duplicates = _day_of_events()
    try:
        for seed in range(6):
            _reset(store)
            if seed == 0:
                for e in events:  # in order, one by one
                    msg = decode(events_topic(e.office_code, e.device_id), encode(e))
                    apply_batch(store, [Incoming(msg, time.time())], {}, TZ, set())
            else:
                _apply_shuffled(store, events, random.Random(seed))
            _check(store, status, flag, duplicates)
    finally:
        store.close()


def test_rating_rules_any_order_sqlite(tmp_path) -> None:
    _run(f"sqlite:///{tmp_path / 'g.sqlite3'}")


def test_rating_rules_any_order_postgres(postgres) -> None:
    _run(postgres.url)
