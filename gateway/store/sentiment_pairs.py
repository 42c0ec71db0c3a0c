"""Counter-days that carry both indicators: button ratings and the k-anonymous expression index.

One SQL statement over the rollups (docs/gateway.md#period-api): per (office, counter, service day)
the counted ratings (``r1..r5``, summed over the day's officers) joined with that counter-day's
sentiment rollup (only k-anonymous windows, gateway.store.rollups). The sums are returned, not
shares: gateway.period adds them into counter-weeks and applies the minimum windows and ratings
there, so a thin counter-day never shows an index of its own. The expression signal is never per
citizen or per officer. Cost: offices × days × counters rollup rows, as every period query.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, bindparam, func, select

from gateway.store import schema as s


def _statement() -> Any:
    d, w = s.rollup_day, s.rollup_sentiment
    key = [d.c.office_code, d.c.counter, d.c.service_day]
    in_range = and_(d.c.office_code.in_(bindparam("offices", expanding=True)),
                    d.c.service_day >= bindparam("day_from"), d.c.service_day <= bindparam("day_to"))
    rated = (select(*key, func.sum(d.c.r1 + d.c.r2 + d.c.r3 + d.c.r4 + d.c.r5).label("n"),
                    func.sum(d.c.r1).label("not_satisfied"))
             .where(in_range).group_by(*key).subquery())
    return (select(rated.c.office_code, rated.c.counter, rated.c.service_day, rated.c.n,
                   rated.c.not_satisfied, w.c.windows, w.c.visits, w.c.score_sum)
            .join_from(rated, w, and_(w.c.office_code == rated.c.office_code, w.c.counter == rated.c.counter,
                                      w.c.service_day == rated.c.service_day))
            .where(rated.c.n > 0, w.c.windows > 0, w.c.visits > 0)
            .order_by(rated.c.office_code, rated.c.counter, rated.c.service_day))


STATEMENT = _statement()


def counter_day_sums(conn: Any, offices: list[str], day_from: str, day_to: str) -> list[dict[str, Any]]:
    """``[{office_code, counter, service_day, n, not_satisfied, windows, visits, score_sum}]`` in key
    order, for counter-days with at least one rating and one window."""
    rows = conn.execute(STATEMENT, {"offices": offices, "day_from": day_from, "day_to": day_to})
    return [{"office_code": r.office_code, "counter": r.counter, "service_day": r.service_day, "n": int(r.n),
             "not_satisfied": int(r.not_satisfied), "windows": int(r.windows), "visits": int(r.visits),
             "score_sum": float(r.score_sum)} for r in rows]
