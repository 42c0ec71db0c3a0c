"""The PostgreSQL hot path sends a batch as binary arrays (gateway/store/pgtypes.py).

A binary array holds one Python type, so a float column given ints (JSON ``300`` for a float
field), NULLs only, or text that needs quoting must still round-trip exactly.
"""

from __future__ import annotations

import psycopg
from sqlalchemy import select

from gateway.store import Store
from gateway.store import schema as s
from gateway.store.pgtypes import EVENT_COLS, insert_events, upsert_visits


def _visit(ticket: int, wait_s: float | int | None) -> dict[str, object]:
    return {
        "office_code": "03390", "counter": 1, "service_day": "2026-12-05", "ticket_no": ticket,
        "device_id": "kb-1", "label": f'A"{ticket},{{x}}\\', "issued_at": 1.0e9 + ticket, "called_at": None,
        "completed_at": None, "no_show_at": None, "wait_s": wait_s, "service_s": None, "officer_id": None,
        "recalls": None, "discarded_at": None, "flag": None, "served_seq": 2**40 + ticket,
        "serving_counter": ticket if ticket < 3 else None,
    }


def test_binary_arrays_round_trip(postgres) -> None:
    store = Store(postgres.url)
    try:
        store.migrate()
        with store.writer_engine.begin() as conn:
            upsert_visits(conn, "postgresql", [_visit(1, 300), _visit(2, 12.5), _visit(3, None)])
            data = '{"a": "é\\""}'
            row = ("e-1", "ticket.issued", "kb-1", "03390", 1_700_000_000, True, 1, "b", 5, 1.7e9, data, None)
            assert len(row) == len(EVENT_COLS)
            assert insert_events(conn, "postgresql", [row]) == {"e-1"}
            assert insert_events(conn, "postgresql", [row]) == set()  # a replay: not new
        with store.engine.connect() as conn:
            v = conn.execute(select(s.visits).order_by(s.visits.c.ticket_no)).all()
            e = conn.execute(select(s.events)).one()
        assert [x.wait_s for x in v] == [300.0, 12.5, None]
        assert [x.label for x in v] == [f'A"{t},{{x}}\\' for t in (1, 2, 3)]
        assert [x.served_seq for x in v] == [2**40 + t for t in (1, 2, 3)]
        assert [x.serving_counter for x in v] == [1, 2, None]
        assert (e.ts, e.data, e.held, e.seq) == (1_700_000_000.0, {"a": 'é"'}, None, 1)
    finally:
        store.close()


def test_sessions_commit_synchronously_whatever_the_server_default(postgres) -> None:
    """The test server runs with ``synchronous_commit=off``; the gateway's sessions turn it on (an
    event is acknowledged after its commit: the commit must be on disk by then)."""
    with psycopg.connect(postgres.url.replace("postgresql+psycopg://", "postgresql://")) as raw:
        server_default = raw.execute("SHOW synchronous_commit").fetchone()[0]
    store = Store(postgres.url)
    try:
        with store.engine.connect() as conn:
            session = conn.exec_driver_sql("SHOW synchronous_commit").scalar()
        assert (server_default, session) == ("off", "on")
    finally:
        store.close()
