"""A database made by schema version 1 (before integrity) upgrades to versions 2 and 3 in place: the
new columns and the audit table appear, and the ratings already stored keep counting."""

from __future__ import annotations

import time

from sqlalchemy import Column, MetaData, Table, inspect, select

from gateway.store import Store
from gateway.store import schema as s
from gateway.store.migrations import _V2_COLUMNS, STEPS


def _v1_database(store: Store) -> None:
    """The v1 tables: today's tables without the columns step 2 adds, and no audit_log."""
    old = MetaData()
    for table in s.metadata.sorted_tables:
        if table.name in ("audit_log", "rollup_kinds"):  # rollup_kinds: schema v9
            continue
        dropped = set(_V2_COLUMNS.get(table.name, ())) | (
            {"served_seq", "serving_counter"} if table.name == "visits" else set())  # v3, v9
        cols = [Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable)
                for c in table.columns if c.name not in dropped]
        Table(table.name, old, *cols)
    with store.engine.begin() as conn:
        old.create_all(conn)
        conn.execute(s.schema_version.insert().values(version=1, applied_at=time.time(), description="v1"))
        conn.execute(old.tables["ratings"].insert().values(
            event_id="00000000-0000-4000-8000-000000000001", office_code="03390", counter=1,
            device_id="k03390-q1", service_day="2026-11-30", ticket_no=1, ts=1.0, level=3, scale=3))


def _check(url: str) -> None:
    store = Store(url)
    _v1_database(store)
    assert store.migrate() == [2, 3, 4, *(v for v, _d, _fn in STEPS if v > 4)]  # v4: rollups, backfilled
    assert store.migrate() == []
    insp = inspect(store.engine)
    for table, cols in _V2_COLUMNS.items():
        assert set(cols) <= {c["name"] for c in insp.get_columns(table)}, table
    assert insp.has_table("audit_log")
    assert {"served_seq", "serving_counter"} <= {c["name"] for c in insp.get_columns("visits")}  # steps 3, 9
    assert insp.has_table("rollup_kinds") and insp.has_table("visit_kinds")  # step 9 (created by step 4)
    assert "ix_ratings_visit" in {i["name"] for i in insp.get_indexes("ratings")}
    with store.engine.connect() as conn:
        assert conn.execute(select(s.ratings.c.status)).scalar_one() == "counted"
    store.close()


def test_v1_to_v2_sqlite(tmp_path) -> None:
    _check(f"sqlite:///{tmp_path / 'g.sqlite3'}")


def test_v1_to_v2_postgres(postgres) -> None:
    _check(postgres.url)
