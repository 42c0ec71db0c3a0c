"""Ticket kinds and service fields at the gateway: stored per visit.

``visit_kinds`` holds one row per visit that is not a plain walk-in (kind ``priority`` or
``appointment``, or any ticket naming a service field), keyed like ``visits``; a visit without a
row is a walk-in of no particular field, which is how every event from before kinds existed reads.
The writer calls :func:`record_kinds` in the batch's transaction after the projectors
(gateway/store/writer.py), so a visit and its kind commit together; the first statement of a
visit's kind wins (a later event cannot relabel it).

The table is this module's own (``METADATA``), created by :func:`create_tables` at start (from
``Store.migrate``) and by migration v9 before it builds the kind rollup from it. The writer's rollup
deltas read a batch's rows of it (``rollup_kinds``, gateway/store/kind_rollup.py); retention
deletes them with their visits.

The figures by kind and field (any office list and day range, the map's day included) are
gateway/store/kinds.py's, over the kind rollup.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Boolean, Column, Integer, MetaData, String, Table
from sqlalchemy.dialects import postgresql, sqlite

from contract.payloads import TICKET_EVENT_TYPES, Event, TicketKind

METADATA = MetaData()
visit_kinds = Table(
    "visit_kinds",
    METADATA,
    Column("office_code", String(32), primary_key=True),
    Column("counter", Integer, primary_key=True),
    Column("service_day", String(10), primary_key=True),
    Column("ticket_no", Integer, primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("service_field", String(32), nullable=True),
    Column("slot", String(5), nullable=True),
    Column("issued_synced", Boolean, nullable=True),  # the ticket.issued event's clock_synced
)


def create_tables(engine: Any) -> None:
    METADATA.create_all(engine, checkfirst=True)


def _insert(dialect: str) -> Any:
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(visit_kinds)


def record_kinds(conn: Any, dialect: str, events: list[Event], conflicts: set[str] = frozenset()) -> int:
    """Store the kind and field of the batch's ticket events that are not plain walk-ins; events held
    as restated visit steps (``conflicts``, gateway/store/projectors.py) never set a kind."""
    rows: dict[tuple, dict[str, Any]] = {}
    for ev in events:
        if ev.type not in TICKET_EVENT_TYPES or ev.event_id in conflicts:
            continue
        d = ev.data
        if d.kind == TicketKind.WALK_IN and d.service_field is None:
            continue
        key = (ev.office_code, d.counter, d.service_day.isoformat(), d.ticket_no)
        rows.setdefault(key, {"office_code": key[0], "counter": key[1], "service_day": key[2],
                              "ticket_no": key[3], "kind": d.kind.value, "service_field": d.service_field,
                              "slot": d.slot, "issued_synced": None})
        if ev.type == "ticket.issued":
            rows[key]["issued_synced"] = ev.clock_synced
    if rows:
        conn.execute(_insert(dialect).on_conflict_do_nothing(), list(rows.values()))
    return len(rows)
