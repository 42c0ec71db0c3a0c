"""Month rollups: the day rollups summed per calendar month, kept in the same transaction.

Invariant: a row of ``rollup_month`` (``rollup_month_sentiment``, ``rollup_month_reasons``) equals
the sum of the rows of ``rollup_day`` (``rollup_sentiment``, ``rollup_reasons``) with the same key
whose service day falls in that month, and exists exactly when such day rows exist. Two paths keep
it, both in the transaction that changes the day rows:

* ingest (:mod:`gateway.store.rollup_deltas`): the batch's day delta (*after − before*) summed per
  month (:func:`month_delta`) is added to the month rows with the same adding UPSERT, and month rows
  left with no visit and no counted rating are deleted. The delta is linear, so the month delta is the
  sum of the day deltas; every value is a count or a sum of values quantised to 2**-20, so the sums are
  exact in any order (a month of a counter stays far below 2**33 seconds).
* a recomputation (:func:`gateway.store.rollups.refresh`: an operator clearing a flag, the demo
  archive) and migration v8: the office-months touched are rebuilt from their day rows by one
  ``INSERT … SELECT … GROUP BY`` (:func:`rebuild`).

Why: a period of whole months (a quarter, a year) reads 12 rows per counter and officer a year
instead of ~250 (gateway.store.periods); series by day or week still read the day rows.

Concurrency (PostgreSQL): the office-month advisory lock sits in the office-day key space
(:func:`gateway.store.rollups.lock_names`): a rebuild holds it exclusively, ingest deltas share it,
so a rebuild never reads day rows that a delta of the same month is changing.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, delete, func, or_, select

from gateway.store import schema as s

Contribution = dict[Any, dict[tuple[Any, ...], dict[str, Any]]]  # table → primary key → columns


def month_of(day: str) -> str:
    """The month key of an ISO service day: its first day, 'YYYY-MM-01'."""
    return day[:7] + "-01"


def last_day_key(month: str) -> str:
    """An ISO string >= every day of ``month`` and < the next month's first day ('YYYY-MM-31')."""
    return month[:7] + "-31"


_VALUES: dict[Any, tuple[str, ...]] = {}


def values(table: Any) -> tuple[str, ...]:
    """The summed (non-key) columns of a rollup table."""
    if table not in _VALUES:
        _VALUES[table] = tuple(c.name for c in table.c if not c.primary_key)
    return _VALUES[table]


def month_delta(day: Contribution) -> Contribution:
    """The rows of the month tables that ``day`` (day table → key → row) adds up to."""
    out: Contribution = {}
    for day_table, rows in day.items():
        table = s.MONTH_OF.get(day_table)
        if table is None:
            continue
        acc = out.setdefault(table, {})
        cols = values(table)
        pk = [c.name for c in table.primary_key]
        for row in rows.values():
            m = {k: v for k, v in row.items() if k != "service_day"}
            m["month"] = month_of(row["service_day"])
            key = tuple(m[c] for c in pk)
            have = acc.get(key)
            if have is None:
                acc[key] = m
                continue
            for c in cols:
                have[c] += m[c]
    return out


def _grouped(day_table: Any, where: Any = None) -> Any:
    """SELECT month, keys, SUM(values) of ``day_table`` grouped by month and key."""
    table = s.MONTH_OF[day_table]
    month = func.substr(day_table.c.service_day, 1, 7).concat("-01")
    keys = [day_table.c[c.name] for c in table.primary_key if c.name != "month"]
    q = select(month.label("month"), *keys, *(func.sum(day_table.c[c]).label(c) for c in values(table)))
    if where is not None:
        q = q.where(where)
    return q.group_by(month, *keys)


def rebuild(conn: Any, office_months: set[tuple[str, str]], day_tables: tuple[Any, ...]) -> None:
    """Recompute the month rows of ``office_months`` ((office, 'YYYY-MM-01')) of the month tables of
    ``day_tables`` from the day rows (the caller holds their office-month locks: rollups.refresh)."""
    ordered = sorted(office_months)
    for i in range(0, len(ordered), 200):
        chunk = ordered[i : i + 200]
        for day_table in day_tables:
            table = s.MONTH_OF[day_table]
            conn.execute(delete(table).where(or_(*(
                and_(table.c.office_code == o, table.c.month == m) for o, m in chunk))))
            days = or_(*(and_(day_table.c.office_code == o, day_table.c.service_day >= m,
                              day_table.c.service_day <= last_day_key(m)) for o, m in chunk))
            sums = _grouped(day_table, days)
            conn.execute(table.insert().from_select(["month", *_keys_values(table)], sums))


def rebuild_all(conn: Any) -> None:
    """Every month row again from every day row (migration v8: an existing database's months)."""
    for day_table, table in s.MONTH_OF.items():
        conn.execute(delete(table))
        conn.execute(table.insert().from_select(["month", *_keys_values(table)], _grouped(day_table)))


def _keys_values(table: Any) -> list[str]:
    return [c.name for c in table.primary_key if c.name != "month"] + list(values(table))
