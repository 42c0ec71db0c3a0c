"""Reads over the rollup tables: sums grouped by one key over a day range (docs/gateway.md#rollups).

Every query is one ``SELECT key, SUM(...) ... GROUP BY key`` over the rollups of the offices asked
for, through the ``(office_code, service_day)`` indexes: its cost grows with offices × days × counters
(a province-year is ~40 k rollup rows), not with visits.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from typing import Any

from sqlalchemy import and_, bindparam, func, select

from gateway.store import schema as s

DAY_SUMS = [c.name for c in s.rollup_day.c if not c.primary_key]
SENTIMENT_SUMS = [c.name for c in s.rollup_sentiment.c if not c.primary_key]
HOUR_SUMS = ["arrivals", "wait_n", "wait_sum"]


COLUMNS = {"rollup_day": DAY_SUMS, "rollup_sentiment": SENTIMENT_SUMS, "rollup_hours": HOUR_SUMS,
           "rollup_reasons": ["n"]}


@lru_cache(maxsize=64)
def _statement(table_name: str, keys: tuple[str, ...], named_officers_only: bool, all_offices: bool,
               columns: tuple[str, ...] | None = None) -> Any:
    """Built once per shape (a select of ~150 sums costs ~10 ms to build); offices and days are bound.
    ``columns``: only these sums (a query that needs no histogram skips ~130 of them)."""
    table = s.metadata.tables[table_name]
    group = [table.c[k] for k in keys]
    cond = and_(table.c.service_day >= bindparam("day_from"), table.c.service_day <= bindparam("day_to"))
    if not all_offices:
        cond = and_(cond, table.c.office_code.in_(bindparam("offices", expanding=True)))
    if named_officers_only:
        cond = and_(cond, table.c.officer_id != "")
    return (select(*group, *(func.sum(table.c[c]).label(c) for c in (columns or COLUMNS[table_name])))
            .where(cond).group_by(*group).order_by(*group))


def sums(conn: Any, table: Any, keys: list[str], offices: list[str], day_from: str, day_to: str,
         named_officers_only: bool = False, columns: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
    """One row per value of ``keys`` with the SUM of every figure column of ``table`` (or of ``columns``)."""
    q = _statement(table.name, tuple(keys), named_officers_only, False, columns)
    params = {"offices": offices, "day_from": day_from, "day_to": day_to}
    return [dict(r._mapping) for r in conn.execute(q, params)]


def stream_sums(engine: Any, table: Any, keys: list[str], offices: list[str] | None, day_from: str,
                day_to: str) -> Iterator[dict[str, Any]]:
    """Like :func:`sums` (all offices when ``offices`` is None), yielded row by row from a server-side
    cursor: a year's CSV never sits in memory."""
    q = _statement(table.name, tuple(keys), False, offices is None)
    params: dict[str, Any] = {"day_from": day_from, "day_to": day_to}
    if offices is not None:
        params["offices"] = offices
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=500).execute(q, params)
        keys = list(result.keys())
        for r in result:
            yield dict(zip(keys, r, strict=True))
