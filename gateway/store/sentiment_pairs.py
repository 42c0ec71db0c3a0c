"""Counter-weeks that carry both indicators: button ratings and the k-anonymous expression index.

One SQL statement over the rollups (docs/gateway.md#period-api): per (office, counter, service day)
the counted ratings (``r1..r5``, summed over the day's officers) joined with that counter-day's
sentiment rollup (only k-anonymous windows, gateway.store.rollups), keeping the counter-days with at
least one rating and one window, then summed per ISO week (Monday) within the period, in the
database. The sums are returned, not shares: gateway.period applies the minimum windows and ratings
per counter-week, so a thin counter-day never shows an index of its own. The expression signal is
never per citizen or per officer. Cost: the join reads offices × days × counters rollup rows; the
result is offices × counters × weeks rows (a province-year: ~10 k, not the ~50 k counter-days it
sent to Python before).
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from typing import Any

from sqlalchemy import Date, and_, bindparam, cast, func, select

from gateway.store import schema as s


def _monday(day: Any, dialect: str) -> Any:
    """The ISO week's Monday of an ISO day string, as an ISO day string."""
    if dialect == "postgresql":
        return func.to_char(func.date_trunc("week", cast(day, Date)), "YYYY-MM-DD")
    return func.date(day, "weekday 0", "-6 days")  # SQLite: the next Sunday (or itself), 6 days back


@lru_cache(maxsize=4)
def _statement(dialect: str) -> Any:
    d, w = s.rollup_day, s.rollup_sentiment
    key = [d.c.office_code, d.c.counter, d.c.service_day]
    in_range = and_(d.c.office_code.in_(bindparam("offices", expanding=True)),
                    d.c.service_day >= bindparam("day_from"), d.c.service_day <= bindparam("day_to"))
    rated = (select(*key, func.sum(d.c.r1 + d.c.r2 + d.c.r3 + d.c.r4 + d.c.r5).label("n"),
                    func.sum(d.c.r1).label("not_satisfied"))
             .where(in_range).group_by(*key).subquery())
    pairs = (select(rated.c.office_code, rated.c.counter, _monday(rated.c.service_day, dialect).label("week"),
                    rated.c.n, rated.c.not_satisfied, w.c.windows, w.c.visits, w.c.score_sum)
             .join_from(rated, w, and_(w.c.office_code == rated.c.office_code, w.c.counter == rated.c.counter,
                                       w.c.service_day == rated.c.service_day))
             .where(rated.c.n > 0, w.c.windows > 0, w.c.visits > 0)
             .subquery())
    group = [pairs.c.office_code, pairs.c.counter, pairs.c.week]
    return (select(*group, *(func.sum(pairs.c[c]).label(c)
                             for c in ("n", "not_satisfied", "windows", "visits", "score_sum")))
            .group_by(*group).order_by(*group))


def counter_week_sums(conn: Any, offices: list[str], day_from: str, day_to: str) -> list[dict[str, Any]]:
    """``[{office_code, counter, week_start, n, not_satisfied, windows, visits, score_sum}]`` in key
    order: per counter and ISO week, the sums over its counter-days in [day_from, day_to] that have at
    least one rating and one window."""
    rows = conn.execute(_statement(conn.dialect.name),
                        {"offices": offices, "day_from": day_from, "day_to": day_to})
    return [{"office_code": r.office_code, "counter": r.counter, "week_start": date.fromisoformat(r.week),
             "n": int(r.n), "not_satisfied": int(r.not_satisfied), "windows": int(r.windows),
             "visits": int(r.visits), "score_sum": float(r.score_sum)} for r in rows]
