"""Rollups kept current by deltas: the contribution of the visits a batch changes, before and after.

The writer used to recompute every touched (office, day) from its raw rows in each batch, so a batch
cost grew with the size of the day (a busy office's 20,000 visits read again for every 2,000 new
events). Now a batch reads only the visits it changes:

1. :meth:`RollupDeltas.before` (before any derived row is written): lock the counter-days of the
   visit keys the batch can change (PostgreSQL), read those visits and their counted ratings, and
   compute their contribution to ``rollup_day``, ``rollup_hours``, ``rollup_reasons`` and
   ``rollup_kinds`` (with their ``visit_kinds`` rows) with the very functions a recomputation uses
   (:mod:`gateway.store.rollups`, :mod:`gateway.store.kind_rollup`);
2. the projectors and the rating rules write the derived rows;
3. :meth:`RollupDeltas.after`: read the same visits again (plus the visits whose counted rating only
   had its burst flag changed by the rating rules: their "before" is the same rows with the old
   flag), compute the contribution again, and add ``after - before`` to the rollup rows (an UPSERT
   adding each column). Rows left with no visit and no counted rating are deleted, as a
   recomputation would not produce them. New k-anonymous sentiment windows are added likewise
   (windows are never changed once stored; a window stored already, a replay whose raw event
   retention purged, is not added again). The same delta summed per month is added to the month
   rollups (:mod:`gateway.store.rollup_months`) in the same statements' transaction.

Exactness: every column is a count or a sum of values quantised to 2**-20 (``rollups.quantum``), so
sums are exact in binary floating point and independent of the order of additions and
subtractions: the rollup rows equal a recomputation bit for bit (tests/gateway/test_rollups.py).
Every change to a visit or a counted rating goes through this path or through
:func:`gateway.store.rollups.refresh` (an operator clearing a flag: a recomputation of the day).

Concurrency (several gateway processes on PostgreSQL): the counter-day advisory locks of
:mod:`gateway.store.ratings` (same key space) are taken before the "before" read, so no other
writer changes these visits, or the ratings and flags of their counter-days, between the two reads;
the office-day and office-month locks of :func:`gateway.store.rollups.refresh` are taken shared, so
a recomputation never interleaves with a delta. Day rows are per counter-day, so two processes never
add to one without holding its counter-day lock in turn; two deltas of different days can add to one
month row (the UPSERT adds, so the order does not matter): every process applies the tables in one
order and each table's rows in key order, so they wait for each other's row locks without a cycle.
A shared-line visit counts for its serving counter (locked under its line's counter-day): two
processes may then add to one day row, exact for the same reason (each adds in one UPSERT,
PostgreSQL locks the row until commit, and an emptied row is deleted under that row lock).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from contract.payloads import SentimentWindowEvent
from gateway.store import schema as s
from gateway.store.kind_rollup import kind_rows
from gateway.store.projectors import VisitKey, rows_by_key
from gateway.store.ratings import FlagChange
from gateway.store.rollup_months import month_delta, values
from gateway.store.rollups import day_rows, hour_rows, lock_names, reason_rows, sentiment_rows
from gateway.ticket_kinds import visit_kinds

Contribution = dict[Any, dict[tuple[Any, ...], dict[str, Any]]]  # table → primary key → columns

# A row a recomputation would not produce: no live visit and no counted rating (day), no arrival.
_EMPTY = {
    s.rollup_day: ("visits", *(f"r{i}" for i in s.RATING_LEVELS)),
    s.rollup_hours: ("arrivals",),
    s.rollup_reasons: ("n",),
    s.rollup_kinds: ("visits",),
    s.rollup_month: ("visits", *(f"r{i}" for i in s.RATING_LEVELS)),  # a month with no such day row
    s.rollup_month_reasons: ("n",),
}


@dataclass
class RollupDeltas:
    conn: Any
    dialect: str
    tz: ZoneInfo
    min_k: int
    keys: set[VisitKey] = field(default_factory=set)
    _before: Contribution = field(default_factory=dict)
    _stored_windows: set[str] = field(default_factory=set)

    def before(self, keys: set[VisitKey], events: Iterable[Any] = ()) -> None:
        """Lock (PostgreSQL) and read the contribution of ``keys`` before the batch changes them, and
        which of the batch's sentiment windows are stored already (a replay whose raw event retention
        purged: its window row stays, so it must not be added again)."""
        self.keys = set(keys)
        self._lock()
        visits, ratings, kinds = self._read(self.keys)
        self._before = _contribution(visits, ratings, kinds, self.tz)
        ids = [ev.event_id for ev in events if isinstance(ev, SentimentWindowEvent)]
        w = s.sentiment_windows
        for i in range(0, len(ids), 500):
            rows = self.conn.execute(select(w.c.event_id).where(w.c.event_id.in_(ids[i : i + 500])))
            self._stored_windows.update(r[0] for r in rows)

    def after(self, flag_changes: dict[str, FlagChange], windows: list[dict[str, Any]]) -> None:
        """Add ``after - before`` of the batch's visits (and of the visits whose counted rating only
        changed its burst flag), and the batch's new sentiment windows, to the rollup rows."""
        extra = {c.key for c in flag_changes.values()} - self.keys
        visits, ratings, kinds = self._read(self.keys | extra)
        after = _contribution(visits, ratings, kinds, self.tz)
        if extra:  # not otherwise changed by this batch: before = the same rows with the old flag
            old = [dict(r, flag=flag_changes[r["event_id"]].old_flag) if r["event_id"] in flag_changes
                   else r for r in ratings if _key(r) in extra]
            mine = [v for v in visits if _key(v) in extra]
            _add(self._before, _contribution(mine, old, kinds, self.tz), 1)
        _add(after, self._before, -1)
        shown = sentiment_rows([w for w in windows if w["event_id"] not in self._stored_windows], self.min_k)
        if shown:
            _add(after, {s.rollup_sentiment: {_pk(s.rollup_sentiment, r): r for r in shown}}, 1)
        after.update(month_delta(after))  # the day delta summed per month (rollup_months)
        for table, rows in after.items():
            self._apply(table, rows)

    def _lock(self) -> None:
        if self.dialect != "postgresql" or not self.keys:
            return
        office_days = lock_names({(o, d) for o, _c, d, _t in self.keys})  # and their office-months
        self.conn.exec_driver_sql(  # shared: deltas of one office-day never wait for each other
            "SELECT pg_advisory_xact_lock_shared(766470, hashtext(k)) "
            "FROM unnest(%s::text[]) AS k ORDER BY k",
            (office_days,),
        )
        counter_days = sorted({f"{o}|{c}|{d}" for o, c, d, _t in self.keys})
        self.conn.exec_driver_sql(  # the rating rules' counter-day locks (gateway.store.ratings._lock)
            "SELECT pg_advisory_xact_lock(766469, hashtext(k)) FROM unnest(%s::text[]) AS k ORDER BY k",
            (counter_days,),
        )

    def _read(self, keys: set[VisitKey]) -> tuple[list[dict[str, Any]], ...]:
        """The visits of ``keys``, their counted ratings and their kind rows."""
        if not keys:
            return [], [], []
        v, r, k = s.visits, s.ratings, visit_kinds
        visits = [dict(x._mapping) for x in rows_by_key(self.conn, v, list(v.c), keys)]
        counted = rows_by_key(self.conn, r, list(r.c), keys, "counted")
        ratings = [dict(x._mapping) for x in counted]
        kinds = [dict(x._mapping) for x in rows_by_key(self.conn, k, list(k.c), keys)]
        return visits, ratings, kinds

    def _apply(self, table: Any, rows: dict[tuple[Any, ...], dict[str, Any]]) -> None:
        """UPSERT adding each column; then delete the rows a recomputation would not have."""
        cols = _values(table)
        changed = [r for r in rows.values() if any(r[c] for c in cols)]
        if not changed:
            return
        changed.sort(key=lambda r: _pk(table, r))  # one order in every process: no deadlock
        pk = [c.name for c in table.primary_key]
        upsert, remove = _statements(table, "%s" if self.dialect == "postgresql" else "?")
        self.conn.exec_driver_sql(upsert, [tuple(r[c] for c in (*pk, *cols)) for r in changed])
        shrunk = [r for r in changed if any(r[c] < 0 for c in cols)]
        if remove and shrunk:
            self.conn.exec_driver_sql(remove, [tuple(r[c] for c in pk) for r in shrunk])


_SQL: dict[tuple[str, str], tuple[str, str | None]] = {}


def _statements(table: Any, mark: str) -> tuple[str, str | None]:
    """The adding UPSERT and the delete of emptied rows of ``table``, as SQL text built once (a
    140-column statement costs more to build through SQLAlchemy each batch than to run)."""
    if (table.name, mark) not in _SQL:
        pk = [c.name for c in table.primary_key]
        cols = _values(table)
        names = ", ".join((*pk, *cols))
        upsert = (
            f"INSERT INTO {table.name} ({names}) VALUES ({', '.join([mark] * (len(pk) + len(cols)))}) "
            f"ON CONFLICT ({', '.join(pk)}) DO UPDATE SET "
            + ", ".join(f"{c} = {table.name}.{c} + excluded.{c}" for c in cols)
        )
        empty = _EMPTY.get(table)
        remove = None if empty is None else (
            f"DELETE FROM {table.name} WHERE "
            + " AND ".join([*(f"{c} = {mark}" for c in pk), *(f"{c} = 0" for c in empty)])
        )
        _SQL[(table.name, mark)] = (upsert, remove)
    return _SQL[(table.name, mark)]


def _key(row: dict[str, Any]) -> VisitKey:
    return (row["office_code"], row["counter"], row["service_day"], row["ticket_no"])


def _pk(table: Any, row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(row[c.name] for c in table.primary_key)


_values = values


def _contribution(visits: list[dict[str, Any]], ratings: list[dict[str, Any]], kinds: list[dict[str, Any]],
                  tz: ZoneInfo) -> Contribution:
    out: Contribution = {}
    for table, rows in ((s.rollup_day, day_rows(visits, ratings)), (s.rollup_hours, hour_rows(visits, tz)),
                        (s.rollup_reasons, reason_rows(ratings, visits)),
                        (s.rollup_kinds, kind_rows(visits, kinds, tz))):
        out[table] = {_pk(table, r): r for r in rows}
    return out


def _add(into: Contribution, other: Contribution, sign: int) -> None:
    """``into += sign * other``, column by column (primary key columns kept)."""
    for table, rows in other.items():
        mine = into.setdefault(table, {})
        cols = _values(table)
        for pk, row in rows.items():
            have = mine.get(pk)
            if have is None:
                mine[pk] = dict(row) if sign == 1 else {**row, **{c: -row[c] for c in cols}}
                continue
            for c in cols:
                have[c] += sign * row[c]


def visit_keys(events: Iterable[Any]) -> set[VisitKey]:
    """The visits a batch's events can change: their own (ticket steps, ratings naming a ticket)."""
    out: set[VisitKey] = set()
    for ev in events:
        d = ev.data
        ticket = getattr(d, "ticket_no", None)
        if ticket is not None and getattr(d, "counter", None) is not None:
            out.add((ev.office_code, d.counter, d.service_day.isoformat(), ticket))
    return out
