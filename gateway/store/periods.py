"""Reads over the rollup tables: sums grouped by keys over a day range (docs/gateway.md#rollups).

Every query is one ``SELECT key, SUM(...) ... GROUP BY key`` over the rollups of the offices asked
for, through the ``(office_code, service_day)`` / ``(office_code, month)`` indexes. The whole
calendar months of the range are read from the month rollups (gateway.store.rollup_months: each
month row is the sum of its day rows) and only the partial months at its edges from the day
rollups, in one ``UNION ALL`` summed again: the result is the same sums as over the day rows alone,
and a year costs offices × counters × 12 rows plus at most two partial months of day rows, not
offices × counters × ~250. A grouping by ``service_day`` (a series by day or week, the CSV) reads day
rows only; the key ``month`` ('YYYY-MM-01') groups by calendar month on either table. Tables
without a month table (``rollup_hours``) are always read by day.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import and_, bindparam, func, or_, select, true, union_all

from gateway.store import schema as s

DAY_SUMS = [c.name for c in s.rollup_day.c if not c.primary_key]
SENTIMENT_SUMS = [c.name for c in s.rollup_sentiment.c if not c.primary_key]
HOUR_SUMS = ["arrivals", "wait_n", "wait_sum"]


COLUMNS = {"rollup_day": DAY_SUMS, "rollup_sentiment": SENTIMENT_SUMS, "rollup_hours": HOUR_SUMS,
           "rollup_reasons": ["n"]}


NONE = ("~", "")  # an empty day range (from > to): a bound that matches no row


def split(day_from: str, day_to: str) -> tuple[tuple[str, str], tuple[str, str], tuple[str, str]]:
    """(head days, whole months as (first month, last month), tail days) of [day_from, day_to]; the
    day ranges NONE when the range starts (ends) on a month's edge, the months NONE when it holds no
    whole month (then the head is the whole range)."""
    f, t = date.fromisoformat(day_from), date.fromisoformat(day_to)
    first = f if f.day == 1 else _next_month(f)
    after = _next_month(t) if _next_month(t) - timedelta(days=1) == t else t.replace(day=1)  # 1st day past
    if first >= after:
        return (day_from, day_to), NONE, NONE
    head = (day_from, (first - timedelta(days=1)).isoformat()) if f < first else NONE
    tail = (after.isoformat(), day_to) if after <= t else NONE
    last = (after - timedelta(days=1)).replace(day=1)
    return head, (first.isoformat(), last.isoformat()), tail


def _next_month(d: date) -> date:
    return (d.replace(day=28) + timedelta(days=4)).replace(day=1)


def _key(table: Any, name: str) -> Any:
    """A grouping column: ``month`` on a day table is the month of its service day."""
    if name == "month" and "month" not in table.c:
        return func.substr(table.c.service_day, 1, 7).concat("-01").label("month")
    return table.c[name]


def _office_cond(table: Any, all_offices: bool, named_officers_only: bool) -> Any:
    cond = true()
    if not all_offices:
        cond = table.c.office_code.in_(bindparam("offices", expanding=True))
    if named_officers_only:
        cond = and_(cond, table.c.officer_id != "")
    return cond


@lru_cache(maxsize=64)
def _statement(table_name: str, keys: tuple[str, ...], named_officers_only: bool, all_offices: bool,
               columns: tuple[str, ...] | None = None) -> Any:
    """Day rows only. Built once per shape (a select of ~150 sums costs ~10 ms to build); offices and
    days are bound. ``columns``: only these sums (a query that needs no histogram skips ~130)."""
    table = s.metadata.tables[table_name]
    group = [_key(table, k) for k in keys]
    cond = and_(_office_cond(table, all_offices, named_officers_only),
                table.c.service_day >= bindparam("day_from"), table.c.service_day <= bindparam("day_to"))
    return (select(*group, *(func.sum(table.c[c]).label(c) for c in (columns or COLUMNS[table_name])))
            .where(cond).group_by(*group).order_by(*group))


@lru_cache(maxsize=64)
def _split_statement(table_name: str, keys: tuple[str, ...], named_officers_only: bool,
                     columns: tuple[str, ...] | None = None) -> Any:
    """Month rows of the whole months UNION ALL day rows of the edges, summed again by ``keys``."""
    day = s.metadata.tables[table_name]
    month = s.MONTH_OF[day]
    cols = columns or COLUMNS[table_name]
    edges = or_(and_(day.c.service_day >= bindparam("head_from"), day.c.service_day <= bindparam("head_to")),
                and_(day.c.service_day >= bindparam("tail_from"), day.c.service_day <= bindparam("tail_to")))
    parts = [
        select(*(_key(day, k) for k in keys), *(day.c[c] for c in cols))
        .where(_office_cond(day, False, named_officers_only), edges),
        select(*(_key(month, k) for k in keys), *(month.c[c] for c in cols))
        .where(_office_cond(month, False, named_officers_only),
               month.c.month >= bindparam("month_from"), month.c.month <= bindparam("month_to")),
    ]
    both = union_all(*parts).subquery()
    group = [both.c[k] for k in keys]
    return select(*group, *(func.sum(both.c[c]).label(c) for c in cols)).group_by(*group).order_by(*group)


def sums(conn: Any, table: Any, keys: list[str], offices: list[str], day_from: str, day_to: str,
         named_officers_only: bool = False, columns: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
    """One row per value of ``keys`` with the SUM of every figure column of ``table`` (or of
    ``columns``) over [day_from, day_to]: whole months from the month rollups when ``keys`` allow."""
    head, months, tail = split(day_from, day_to)
    if "service_day" in keys or table not in s.MONTH_OF or months == NONE:
        q = _statement(table.name, tuple(keys), named_officers_only, False, columns)
        params = {"offices": offices, "day_from": day_from, "day_to": day_to}
    else:
        q = _split_statement(table.name, tuple(keys), named_officers_only, columns)
        params = {"offices": offices, "head_from": head[0], "head_to": head[1], "tail_from": tail[0],
                  "tail_to": tail[1], "month_from": months[0], "month_to": months[1]}
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
