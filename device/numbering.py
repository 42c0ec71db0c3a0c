"""The next ticket number of a service day, committed in the caller's ticket transaction.

Two series (docs/kiosk.md#ticket-numbers-days-and-clocks):

* a kiosk's own line: ``1, 2, 3 …`` per service day (table ``day_counter``; high-water key = the day);
* a shared line on the entrance kiosk (``[line] role = "entrance"``, device/config_line.py): per
  service field and day, ``i*block+1 …`` for the i-th field (table ``field_counter``; high-water key
  ``<day>#<field>``), so numbers of different fields never collide and a number names its field.

Either way the number is ``max(database, high-water + 1)`` (device/highwater.py), so a lost or
rolled-back database never issues a number twice.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from device.config_line import line_of
from device.config_queue import calling_of


def take_number(store: Any, cfg: Any, cur: sqlite3.Cursor, day: str, field: str | None) -> int | None:
    """Reserve the next number of ``day`` (of ``field``'s series on an entrance kiosk); None when the
    field's series of the day is used up (the press is refused, nothing is issued)."""
    series = line_of(cfg).series(calling_of(cfg).fields, field)
    if series is None:
        row = cur.execute("SELECT next_no FROM day_counter WHERE service_day=?", (day,)).fetchone()
        no = max(row[0] if row else 1, store.next_number_floor(day))
        store.note_number(day, no)
        cur.execute(
            "INSERT INTO day_counter(service_day, next_no) VALUES(?, ?) ON CONFLICT(service_day) "
            "DO UPDATE SET next_no=excluded.next_no", (day, no + 1))
        return no
    first, last = series
    key = f"{day}#{field}"
    row = cur.execute("SELECT next_no FROM field_counter WHERE service_day=? AND field=?",
                      (day, field)).fetchone()
    no = max(row[0] if row else first, store.next_number_floor(key), first)
    # A range reassigned during the day ([calling.fields] reordered and reloaded) may already hold
    # another field's numbers: skip them, a number is never issued twice (UNIQUE(service_day, ticket_no)).
    while no <= last and cur.execute("SELECT 1 FROM tickets WHERE service_day=? AND ticket_no=?",
                                     (day, no)).fetchone():
        no += 1
    if no > last:
        return None
    store.note_number(key, no)
    cur.execute(
        "INSERT INTO field_counter(service_day, field, next_no) VALUES(?, ?, ?) "
        "ON CONFLICT(service_day, field) DO UPDATE SET next_no=excluded.next_no", (day, field, no + 1))
    return no
