"""The kiosk database's tables (device/store.py) and their upgrade at open.

``SCHEMA`` creates what is missing; ``COLUMNS_ADDED`` lists the columns added to a table after its
first release, which an older database gets by ``ALTER TABLE`` at open (nothing is ever dropped or
renamed, so a kiosk rolled back to an older release still reads the database).
"""

from __future__ import annotations

import sqlite3

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS day_counter (service_day TEXT PRIMARY KEY, next_no INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS tickets (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    service_day TEXT NOT NULL,
    ticket_no INTEGER NOT NULL,
    label TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('waiting','called','completed','no_show','discarded')),
    issued_mono REAL NOT NULL, issued_boot TEXT NOT NULL, issued_ts TEXT NOT NULL,
    called_mono REAL, called_boot TEXT,
    ended_mono REAL, ended_boot TEXT,
    recall_count INTEGER NOT NULL DEFAULT 0,
    kind TEXT NOT NULL DEFAULT 'walk_in', service_field TEXT, slot TEXT, appointment_code TEXT,
    called_counter INTEGER,
    UNIQUE (service_day, ticket_no)
);
CREATE INDEX IF NOT EXISTS tickets_state ON tickets(state, id);
CREATE TABLE IF NOT EXISTS appointments (
    service_day TEXT NOT NULL,
    code TEXT NOT NULL,
    service_field TEXT NOT NULL,
    slot TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'booked' CHECK (state IN ('booked','redeemed','no_show')),
    PRIMARY KEY (service_day, code)
);
-- shared lines: per-field numbers and answered requests (entrance), ratings to forward (counter)
CREATE TABLE IF NOT EXISTS field_counter (service_day TEXT NOT NULL, field TEXT NOT NULL,
    next_no INTEGER NOT NULL, PRIMARY KEY (service_day, field));
CREATE TABLE IF NOT EXISTS line_requests (request_id TEXT PRIMARY KEY, counter INTEGER NOT NULL,
    response TEXT NOT NULL, created_ts TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS line_outbox (id INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id TEXT NOT NULL UNIQUE, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    low_priority INTEGER NOT NULL,
    size INTEGER NOT NULL,
    payload BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_low ON outbox(low_priority, seq);
CREATE TABLE IF NOT EXISTS pending_rating (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    data TEXT NOT NULL,
    created_mono REAL NOT NULL,
    boot TEXT NOT NULL
);
"""

# Columns added after a table's first release (ticket kinds, docs/kiosk.md#ticket-kinds; the shared
# line's request hash): an older database gets them at open, its tickets read as walk-in.
COLUMNS_ADDED = {"tickets": ("kind TEXT NOT NULL DEFAULT 'walk_in'", "service_field TEXT", "slot TEXT",
                             "appointment_code TEXT", "called_counter INTEGER"),
                 "line_requests": ("request_sha TEXT",)}


def ensure_schema(db: sqlite3.Connection) -> None:
    """Create missing tables and add missing columns (idempotent)."""
    db.executescript(SCHEMA)
    for table, columns in COLUMNS_ADDED.items():
        have = {r[1] for r in db.execute(f"PRAGMA table_info({table})")}
        for column in columns:
            if column.split()[0] not in have:
                db.execute(f"ALTER TABLE {table} ADD COLUMN {column}")
