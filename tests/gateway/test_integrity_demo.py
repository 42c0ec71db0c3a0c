"""demo/history.py's synthetic weeks still count under the integrity rules: its kiosks are in the
bundled registry, its ratings name their visits, its windows have k >= 5 (nothing held or refused)."""

from __future__ import annotations

import time
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from contract.codec import decode, encode
from contract.payloads import EventType
from contract.topics import events_topic
from demo.history import generate
from demo.run import demo_devices
from gateway.config import Settings
from gateway.registry import load_registry
from gateway.store import Store
from gateway.store import schema as s
from gateway.store.writer import Incoming, apply_batch


def test_demo_history_is_counted(tmp_path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'g.sqlite3'}")
    store.migrate()
    store.load_registry(load_registry(Settings().registry_file))
    events = generate(demo_devices(6), days=10, seed=7)
    msgs = [decode(events_topic(e.office_code, e.device_id), encode(e)) for e in events]
    tz = ZoneInfo("Asia/Ho_Chi_Minh")
    for i in range(0, len(msgs), 500):
        apply_batch(store, [Incoming(m, time.time()) for m in msgs[i : i + 500]], {}, tz, set())
    counters = store.counters()
    assert counters["accepted"] == len(events)
    assert not [k for k in counters if k.startswith("rejected:")] and "quarantined" not in counters
    ratings = sum(1 for e in events if e.type is EventType.RATING_SUBMITTED)
    windows = sum(1 for e in events if e.type is EventType.SENTIMENT_WINDOW)
    with store.engine.connect() as conn:
        counted = conn.execute(select(func.count()).where(s.ratings.c.status == "counted")).scalar_one()
        stored_windows = conn.execute(select(func.count()).select_from(s.sentiment_windows)).scalar_one()
    assert counted == ratings > 100 and stored_windows == windows > 10
    store.close()
