"""Periods read whole months from the month rollups and the edges from the day rollups: the sums must
equal those of the day rollups alone, for any range (month edges, one day, across months), every
grouping the period API uses, on SQLite and PostgreSQL; and a period by month equals one by day.

The data: test_rollups' day of two offices plus earlier days in this month and the previous one,
ingested in a random order with replays through the real writer (so the month rows are the ones
ingest keeps, not a rebuild).
"""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta

from gateway.config import Settings
from gateway.period import PeriodService
from gateway.registry import load_registry
from gateway.store import Store, periods
from gateway.store import schema as s
from tests.gateway.test_integrity_order import TZ, _day_of_events
from tests.gateway.test_rollups import _apply, _earlier_days, _earlier_events, _more_events

OFFICES = ["03390", "03405"]
SHAPES = {s.rollup_day: [[], ["office_code", "counter"], ["officer_id"], ["month"]],
          s.rollup_sentiment: [[], ["office_code", "counter"], ["month"]],
          s.rollup_reasons: [["reason"], ["office_code", "counter", "reason"], ["month", "reason"]]}


def _filled(url: str) -> tuple[Store, date]:
    store = Store(url)
    store.migrate()
    store.load_registry(load_registry(Settings().registry_file))
    today = datetime.now(TZ).date()  # as test_rollups: today in the gateway's time zone
    _apply(store, _day_of_events()[0] + _more_events(today) + _earlier_events(), random.Random(8))
    return store, today


def _ranges(today: date) -> list[tuple[date, date]]:
    """Month edges around the earlier days, one-day ranges, and random ranges."""
    first = _earlier_days()[0].replace(day=1)
    edges = [first, first - timedelta(days=1), today.replace(day=1), today.replace(day=1) - timedelta(days=1),
             today, first + timedelta(days=3)]
    out = [(a, b) for a in edges for b in edges if a <= b]
    rng = random.Random(2)
    span = (today - first).days + 40
    for _ in range(25):
        a = first - timedelta(days=20) + timedelta(days=rng.randrange(span))
        out.append((a, a + timedelta(days=rng.randrange(70))))
    return out


def _check(url: str) -> None:
    store, today = _filled(url)
    try:
        whole_months = 0
        with store.engine.connect() as conn:
            for a, b in _ranges(today):
                f, t = a.isoformat(), b.isoformat()
                whole_months += periods.split(f, t)[1] != periods.NONE
                for table, shapes in SHAPES.items():
                    for keys in shapes:
                        named = keys == ["officer_id"]
                        day_only = periods._statement(table.name, tuple(keys), named, False)
                        want = [dict(r._mapping) for r in conn.execute(
                            day_only, {"offices": OFFICES, "day_from": f, "day_to": t})]
                        got = periods.sums(conn, table, keys, OFFICES, f, t, named_officers_only=named)
                        assert got == want, (table.name, keys, f, t)
        assert whole_months >= 10  # the month rows were read
        cfg = Settings()
        svc = PeriodService(store, cfg.kpi, cfg.staff_figures, store.integrity)
        start = _earlier_days()[0].replace(day=1)
        by_month = svc.period("unit", "U", OFFICES, start, today, "month", True)
        by_day = svc.period("unit", "U", OFFICES, start, today, "day", True)
        assert by_month["totals"] == by_day["totals"] and by_month["totals"]["visits"] > 0
        assert by_month["counters"] == by_day["counters"] and by_month["officers"] == by_day["officers"]
        assert sum(x["visits"] for x in by_month["series"]) == by_month["totals"]["visits"]
        assert [x["start"] for x in by_month["series"]][0] == start
    finally:
        store.close()


def test_month_split_equals_day_sums_sqlite(tmp_path) -> None:
    _check(f"sqlite:///{tmp_path / 'g.sqlite3'}")


def test_month_split_equals_day_sums_postgres(postgres) -> None:
    _check(postgres.url)
