"""A small versioned migration table of our own: each step runs once, in order, in a transaction.

Add a step by appending ``(version, description, function)`` to :data:`STEPS`; never edit a
released step. Works on SQLite and PostgreSQL.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, Index, inspect, select

from gateway.config import IntegritySettings, KpiSettings
from gateway.store import rollup_months, rollups, schema

Step = tuple[int, str, Callable[[Connection], None]]


def _v1(conn: Connection) -> None:
    tables = [t for t in schema.metadata.sorted_tables if t.name != "schema_version"]
    schema.metadata.create_all(conn, tables=tables)


# Columns added by step 2 (integrity). Step 1 creates tables from the current metadata, so on a new
# database they exist already: step 2 adds only what is missing.
_V2_COLUMNS = {
    "devices": ("bound_by", "bound_at"),
    "events": ("held",),
    "visits": ("flag", "flag_cleared_by", "flag_cleared_at"),
    "ratings": ("seq", "status", "flag", "flag_cleared_by", "flag_cleared_at"),
}


def _v2(conn: Connection) -> None:
    insp = inspect(conn)
    for table_name, cols in _V2_COLUMNS.items():
        have = {c["name"] for c in insp.get_columns(table_name)}
        table = schema.metadata.tables[table_name]
        for name in cols:
            if name in have:
                continue
            col = table.c[name]
            ddl = f"ALTER TABLE {table_name} ADD COLUMN {name} {col.type.compile(dialect=conn.dialect)}"
            if not col.nullable:  # the only one is ratings.status: existing ratings counted as before
                ddl += " NOT NULL DEFAULT 'counted'"
            conn.exec_driver_sql(ddl)
    schema.audit_log.create(conn, checkfirst=True)
    for table_name in ("events", "ratings"):
        existing = {i["name"] for i in inspect(conn).get_indexes(table_name)}
        for index in schema.metadata.tables[table_name].indexes:
            if isinstance(index, Index) and index.name not in existing:
                index.create(conn)


def _v3(conn: Connection) -> None:
    """visits.served_seq (a rating sent before its visit was called never counts); NULL on old visits,
    whose ratings are decided as before. Index ix_ratings_status (counted ratings of a counter-day)."""
    if "served_seq" not in {c["name"] for c in inspect(conn).get_columns("visits")}:
        col_type = schema.visits.c.served_seq.type.compile(dialect=conn.dialect)
        conn.exec_driver_sql(f"ALTER TABLE visits ADD COLUMN served_seq {col_type}")
    if "ix_ratings_status" not in {i["name"] for i in inspect(conn).get_indexes("ratings")}:
        next(i for i in schema.ratings.indexes if i.name == "ix_ratings_status").create(conn)


def _v4(conn: Connection) -> None:
    """Rollup tables (gateway.store.rollups), backfilled from the derived rows already stored. Arrival
    hours are local to the default KPI timezone (a gateway configured with another one recomputes a
    day's hours at its next event)."""
    _v9_schema(conn)  # the recomputation reads today's tables (see _v9)
    for table in schema.ROLLUP_TABLES:
        table.create(conn, checkfirst=True)
        for index in table.indexes:
            if index.name not in {i["name"] for i in inspect(conn).get_indexes(table.name)}:
                index.create(conn)
    rollups.refresh(conn, conn.dialect.name, rollups.all_office_days(conn), IntegritySettings().min_k,
                    ZoneInfo(KpiSettings().timezone), months=False)  # the month tables come at v8


STEPS: list[Step] = [
    (1, "initial schema: registry, events, visits, ratings, sentiment, fleet, commands, alerts", _v1),
    (2, "integrity: held events, rating status, plausibility flags, device binding, audit log", _v2),
    (3, "integrity: visits.served_seq (ratings sent before their visit was called never count)", _v3),
    (4, "rollups: day aggregates per office, counter and officer, hours, sentiment, reasons", _v4),
]


def current_version(engine: Engine) -> int:
    with engine.connect() as conn:
        if not inspect(conn).has_table("schema_version"):
            return 0
        versions = conn.execute(select(schema.schema_version.c.version)).scalars().all()
        return max(versions, default=0)


def migrate(engine: Engine) -> list[int]:
    """Apply pending steps; returns the versions applied (empty if up to date)."""
    applied: list[int] = []
    with engine.begin() as conn:
        schema.schema_version.create(conn, checkfirst=True)
    for version, description, fn in STEPS:
        with engine.begin() as conn:
            if engine.dialect.name == "postgresql":  # two gateways starting at once: one migrates
                conn.exec_driver_sql("SELECT pg_advisory_xact_lock(766468)")
            done = conn.execute(
                select(schema.schema_version.c.version).where(schema.schema_version.c.version == version)
            ).first()
            if done:
                continue
            fn(conn)
            conn.execute(
                schema.schema_version.insert().values(
                    version=version, applied_at=time.time(), description=description
                )
            )
            applied.append(version)
    return applied


def _v6(conn: Connection) -> None:
    """Upward feed and province hub tables (their own metadata: gateway/feed/schema.py says why)."""
    from gateway.feed.schema import create_tables

    create_tables(conn)


STEPS.append((6, "upward feed: feed records, push marks, province hub records and pull cursors", _v6))


def _v7(conn: Connection) -> None:
    """Rollup sums rebuilt once with quantised values (gateway.store.rollups.quantum): ingest now adds
    and subtracts each visit's contribution (gateway.store.rollup_deltas), exact only if every stored
    sum is a sum of quantised values."""
    _v9_schema(conn)  # the recomputation reads today's tables (see _v9)
    for table in schema.ROLLUP_TABLES:
        conn.execute(table.delete())
    rollups.refresh(conn, conn.dialect.name, rollups.all_office_days(conn), IntegritySettings().min_k,
                    ZoneInfo(KpiSettings().timezone), months=False)  # the month tables come at v8


STEPS.append((7, "rollups: sums of quantised values, kept by deltas at ingest (rebuilt once)", _v7))


def _v8(conn: Connection) -> None:
    """Month rollups (gateway.store.rollup_months): created, then built from the day rollups already
    stored (the day rows are exact since v7; a month row is their sum)."""
    for table in schema.MONTH_OF.values():
        table.create(conn, checkfirst=True)
        for index in table.indexes:
            if index.name not in {i["name"] for i in inspect(conn).get_indexes(table.name)}:
                index.create(conn)
    rollup_months.rebuild_all(conn)


STEPS.append((8, "rollups: month sums of the day rollups (whole months of a period read them)", _v8))


def _v9_schema(conn: Connection) -> None:
    """What step 9 adds, created if missing (idempotent): ``visits.serving_counter``, ``visit_kinds``
    (gateway/ticket_kinds.py, created at start until now) and ``rollup_kinds`` with its index. Steps 4
    and 7 call it first: their recomputation (gateway.store.rollups.refresh) reads and writes the
    current tables, so a database from before step 4 still upgrades in one go."""
    from gateway.ticket_kinds import create_tables as kind_tables

    if "serving_counter" not in {c["name"] for c in inspect(conn).get_columns("visits")}:
        col_type = schema.visits.c.serving_counter.type.compile(dialect=conn.dialect)
        conn.exec_driver_sql(f"ALTER TABLE visits ADD COLUMN serving_counter {col_type}")
    kind_tables(conn)
    schema.rollup_kinds.create(conn, checkfirst=True)
    for index in schema.rollup_kinds.indexes:
        if index.name not in {i["name"] for i in inspect(conn).get_indexes("rollup_kinds")}:
            index.create(conn)


def _v9(conn: Connection) -> None:
    """Ticket kinds in the rollups (``rollup_kinds``) and shared lines' serving counters. The day
    rollups of every office-day that still has derived rows are recomputed (per-counter rows move to
    the serving counter; kind rows appear); the rollups of days whose rows retention purged are kept
    as they are (their kinds were never rolled up and cannot be any more)."""
    _v9_schema(conn)
    rollups.refresh(conn, conn.dialect.name, rollups.all_office_days(conn), IntegritySettings().min_k,
                    ZoneInfo(KpiSettings().timezone))


STEPS.append((9, "rollups: by ticket kind and service field; shared lines count for their serving counter",
              _v9))
