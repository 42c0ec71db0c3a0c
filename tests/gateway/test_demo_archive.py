"""demo/archive.py writes the rows the real writer derives from the same simulated days, and the
rollups the writer keeps: the demo's year of history is what ingest would have made of it."""

from __future__ import annotations

import time
from datetime import date
from zoneinfo import ZoneInfo

from sqlalchemy import select

from contract.codec import decode, encode
from contract.topics import events_topic
from demo.archive import fill, open_days
from demo.history import generate, working_days
from gateway.config import Settings
from gateway.registry import load_registry
from gateway.store import Store
from gateway.store import schema as s
from gateway.store.writer import Incoming, apply_batch

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
DEVICES = [("k03390-q1", "03390", 1), ("k03405-q2", "03405", 2)]


def _store(path) -> Store:
    st = Store(f"sqlite:///{path}")
    st.migrate()
    st.load_registry(load_registry(Settings().registry_file))
    return st


def _dump(store: Store) -> dict[str, list[dict]]:
    out = {}
    with store.engine.connect() as conn:
        for t in (s.visits, s.ratings, s.sentiment_windows, *s.ROLLUP_TABLES):
            rows = [dict(r._mapping) for r in conn.execute(select(t))]
            out[t.name] = sorted(rows, key=lambda r: tuple(str(r[c.name]) for c in t.primary_key.columns))
    return out


def test_archive_rows_equal_the_writers(tmp_path) -> None:
    today = date.today()
    days = working_days(today, 12)  # includes no holiday gap issue: both paths skip closed days alike
    events = generate(DEVICES, 12, seed=11, today=today, time_scale=20)
    via_writer = _store(tmp_path / "w.sqlite3")
    msgs = [decode(events_topic(e.office_code, e.device_id), encode(e)) for e in events]
    for i in range(0, len(msgs), 1000):
        out = apply_batch(via_writer, [Incoming(m, time.time()) for m in msgs[i : i + 1000]], {}, TZ, set())
        assert not out.rejected and not out.held
    direct = _store(tmp_path / "d.sqlite3")
    written = fill(direct, DEVICES, days[0], days[-1], seed=11, time_scale=20, today=today)
    assert open_days(days[0], days[-1]) == days
    a, b = _dump(via_writer), _dump(direct)
    assert written == len(a["visits"]) > 300
    for table in a:
        assert a[table] == b[table], table
    assert len(a["ratings"]) > 200 and len(a["rollup_day"]) >= 2 * len(days)
    # a second run finds the rows and writes nothing
    assert fill(direct, DEVICES, days[0], days[-1], seed=11, time_scale=20, today=today) == 0


def _without_seq(dump: dict[str, list[dict]]) -> dict[str, list[dict]]:
    return {t: [{k: v for k, v in r.items() if k not in ("seq", "served_seq")} for r in rows]
            for t, rows in dump.items()}


def test_an_interrupted_archive_is_completed_by_the_next_run(tmp_path) -> None:
    """The demo stops the archive at Ctrl+C; the next start writes the days still missing (one
    transaction per chunk of days: a day is all there or not at all). Device sequence numbers
    restart with each run, so they are left out of the comparison."""
    today = date.today()
    days = working_days(today, 12)
    whole = _store(tmp_path / "whole.sqlite3")
    fill(whole, DEVICES, days[0], days[-1], seed=3, today=today)
    parts = _store(tmp_path / "parts.sqlite3")
    first = fill(parts, DEVICES, days[3], days[6], seed=3, today=today)
    rest = fill(parts, DEVICES, days[0], days[-1], seed=3, today=today)
    assert first > 0 and rest > first
    assert _without_seq(_dump(parts)) == _without_seq(_dump(whole))
