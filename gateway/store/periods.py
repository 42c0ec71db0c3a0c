"""Reads over the rollup tables: sums grouped by one key over a day range (docs/gateway.md#rollups).

Every query is one ``SELECT key, SUM(...) ... GROUP BY key`` over the rollups of the offices asked
for, through the ``(office_code, service_day)`` indexes: its cost grows with offices × days × counters
(a province-year is ~40 k rollup rows), not with visits.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import and_, func, select

from gateway.store import schema as s

DAY_SUMS = [c.name for c in s.rollup_day.c if not c.primary_key]
SENTIMENT_SUMS = [c.name for c in s.rollup_sentiment.c if not c.primary_key]
HOUR_SUMS = ["arrivals", "wait_n", "wait_sum"]


def _where(table: Any, offices: list[str], day_from: str, day_to: str) -> Any:
    return and_(table.c.office_code.in_(offices), table.c.service_day >= day_from,
                table.c.service_day <= day_to)


def sums(conn: Any, table: Any, keys: list[str], offices: list[str], day_from: str, day_to: str,
         where: Any = None) -> list[dict[str, Any]]:
    """One row per value of ``keys`` with the SUM of every figure column of ``table``."""
    cols = {s.rollup_day: DAY_SUMS, s.rollup_sentiment: SENTIMENT_SUMS, s.rollup_hours: HOUR_SUMS,
            s.rollup_reasons: ["n"]}[table]
    group = [table.c[k] for k in keys]
    q = (select(*group, *(func.sum(table.c[c]).label(c) for c in cols))
         .where(_where(table, offices, day_from, day_to)).group_by(*group).order_by(*group))
    if where is not None:
        q = q.where(where)
    return [dict(r._mapping) for r in conn.execute(q)]


def stream_sums(engine: Any, table: Any, keys: list[str], offices: list[str] | None, day_from: str,
                day_to: str) -> Iterator[dict[str, Any]]:
    """Like :func:`sums` over all offices (``offices`` None), yielded row by row from a server-side
    cursor: a year's CSV never sits in memory."""
    cols = DAY_SUMS if table is s.rollup_day else SENTIMENT_SUMS
    group = [table.c[k] for k in keys]
    cond = and_(table.c.service_day >= day_from, table.c.service_day <= day_to)
    if offices is not None:
        cond = and_(cond, table.c.office_code.in_(offices))
    q = (select(*group, *(func.sum(table.c[c]).label(c) for c in cols))
         .where(cond).group_by(*group).order_by(*group))
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=500).execute(q)
        for r in result:
            yield dict(r._mapping)
