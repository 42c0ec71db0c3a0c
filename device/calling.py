"""Which waiting ticket a counter's ``next`` calls: the policy of ``[calling]`` (device/config_queue.py).

Order, decided inside the ``next`` transaction from the ``tickets`` table alone (so a restart or a
power cut changes nothing: the interleave count is in ``meta`` and committed with the call):

1. ``appointments_first``: an appointment ticket whose slot has come (local time >= slot minus
   ``call_early_min``), earliest slot first. An appointment ticket redeemed early waits for its slot
   unless nobody else is waiting.
2. ``policy``:

   - ``fifo``: the oldest waiting ticket of any kind;
   - ``priority_first``: the oldest priority ticket, else the oldest regular one;
   - ``interleave``: after ``priority_every`` regular calls in a row, the oldest priority ticket;
     otherwise the oldest regular one (a priority ticket is called at once when no regular one waits).

Regular means walk-in (and an appointment ticket not yet due, as a last resort). Nothing here reads
the wall clock for durations; the slot comparison is between local "HH:MM" strings.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta

from device.config_queue import CallingConfig

INTERLEAVE_KEY = "calling.regular_since_priority"


def _oldest(cur: sqlite3.Cursor, where: str, args: tuple = (), order: str = "id",
            fields: tuple[str, ...] = ()) -> int | None:
    scope = f" AND service_field IN ({','.join('?' * len(fields))})" if fields else ""
    row = cur.execute(
        f"SELECT id FROM tickets WHERE state='waiting' AND {where}{scope} ORDER BY {order} LIMIT 1",
        (*args, *fields),
    ).fetchone()
    return int(row[0]) if row else None


def due_time(now_local: datetime, calling: CallingConfig) -> str:
    """The latest slot ("HH:MM") that is due now."""
    return (now_local + timedelta(minutes=calling.appointments.call_early_min)).strftime("%H:%M")


def choose_next(cur: sqlite3.Cursor, calling: CallingConfig, now_local: datetime, meta,
                fields: tuple[str, ...] = ()) -> int | None:
    """The id of the ticket to call now, or None. ``meta`` is the store (get_meta/set_meta on ``cur``).
    ``fields``: only tickets of these service fields (a counter calling from shared lines); the
    interleave count is then kept per set of fields."""
    def oldest(where: str, args: tuple = (), order: str = "id") -> int | None:
        return _oldest(cur, where, args, order, fields)

    if calling.appointments_first:
        due = oldest("kind='appointment' AND slot<=?", (due_time(now_local, calling),), "slot, id")
        if due is not None:
            return due
        regular = "kind='walk_in'"
    else:
        regular = "kind IN ('walk_in','appointment')"
    if calling.policy == "fifo":
        return oldest("1=1")
    prio = oldest("kind='priority'")
    reg = oldest(regular)
    if calling.policy == "priority_first":
        chosen = prio if prio is not None else reg
    else:
        key = INTERLEAVE_KEY + ("." + ",".join(sorted(fields)) if fields else "")
        since = int(meta.get_meta(key, "0", cur) or 0)
        if prio is not None and (reg is None or since >= calling.priority_every):
            chosen = prio
            meta.set_meta(cur, key, "0")
        else:
            chosen = reg
            if reg is not None:
                meta.set_meta(cur, key, str(since + 1))
    if chosen is None:  # only appointment tickets that are not due yet: nobody else waits
        chosen = oldest("kind='appointment'", (), "slot, id")
    return chosen
