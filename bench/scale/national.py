"""National volume on PostgreSQL: how the rollup queries grow with offices (issue 11).

    python -m bench.scale.national [--offices 38,380,3321] [--before]

Vietnam has 3,321 commune-level units since July 2025; about 200,000 visits a working day is ~60
per office. Filling 50 M visits a year through the writer is out of reach on one small machine, so
this bench **generates the rollup rows directly** in PostgreSQL (``INSERT … SELECT`` over
``generate_series``: 250 working days × 2 counters × 1 officer per office, histogram and rating
columns filled with random counts of the right size; the month rows built from them by the
gateway's own rebuild, as migration v8 does), then times, median of 3, in-process:

* one office's year (``PeriodService.period``, by month, with officers);
* one province's year (100 offices, or all when fewer, by month);
* the nation's year (every office, by month, no officers: one ``IN`` list of all offices);
* the year's KPI rows of every office (``periods.stream_sums`` + ``api_period.kpi_row``: what the
  streamed CSV does), with the rows it yields.

``--before`` times the same calls a second time with the month rollups ignored (``periods.split``
replaced for the call by one that finds no whole month: every sum over day rows, as before v8), in
the same process under the same load: the before/after pair.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any

import psutil
from sqlalchemy import text

from gateway.api_period import kpi_row
from gateway.config import Settings
from gateway.period import PeriodService
from gateway.store import Store, periods, rollup_months
from gateway.store import schema as s
from gateway.store.periods import stream_sums
from hil.harness.pg import PostgresServer

FIRST, LAST = date(2025, 12, 1), date(2026, 11, 30)


def _column_sql(name: str) -> str:
    """A plausible value for a rollup_day column of one counter-day with ~30 visits."""
    fixed = {"visits": "30", "served": "28", "waiting": "0", "no_shows": "2", "wait_n": "28",
             "wait_sum": "28 * (300 + random() * 900)", "service_n": "28", "service_sum": "28 * 420.0",
             "flagged_visits": "(random() < 0.05)::int", "staff_served": "27", "staff_wait_n": "27",
             "staff_wait_sum": "27 * 700.0", "staff_service_n": "27", "staff_service_sum": "27 * 420.0",
             "r1": "(random() * 3)::int", "r2": "(random() * 7)::int", "r3": "(random() * 9)::int",
             "rf1": "0", "rf2": "0", "rf3": "(random() < 0.05)::int", "r4": "0", "r5": "0", "rf4": "0",
             "rf5": "0", "scale5": "0"}
    if name in fixed:
        return fixed[name]
    i = int(name[2:])
    if name.startswith("wh"):
        return "(random() * 3)::int" if 2 <= i <= 30 else "0"
    return "(random() * 4)::int" if 4 <= i <= 12 else "0"  # sh: service 4-12 minutes


def generate(store: Store, offices: int) -> int:
    cols = [c.name for c in s.rollup_day.c if not c.primary_key]
    sql = f"""
        INSERT INTO rollup_day (service_day, office_code, counter, officer_id, {", ".join(cols)})
        SELECT to_char(d, 'YYYY-MM-DD'), 'N' || lpad(o::text, 4, '0'), c, 'cb-' || o || '-' || c,
               {", ".join(_column_sql(c) for c in cols)}
        FROM generate_series(DATE '{FIRST}', DATE '{LAST}', INTERVAL '1 day') AS d,
             generate_series(1, :offices) AS o, generate_series(1, 2) AS c
        WHERE extract(isodow FROM d) < 6
    """
    with store.engine.begin() as conn:
        for t in (*s.ROLLUP_TABLES, *s.MONTH_OF.values()):
            conn.execute(t.delete())
        conn.execute(text(sql), {"offices": offices})
        rollup_months.rebuild_all(conn)
        for t in ("rollup_day", "rollup_month"):
            conn.exec_driver_sql(f"ANALYZE {t}")
        return int(conn.exec_driver_sql("SELECT count(*) FROM rollup_day").scalar_one())


@contextmanager
def day_rows_only() -> Iterator[None]:
    """Periods read as before v8: no whole month found, every sum over day rows."""
    split = periods.split
    periods.split = lambda f, t: ((f, t), periods.NONE, periods.NONE)
    try:
        yield
    finally:
        periods.split = split


def median_ms(fn: Any, calls: int = 3) -> float:
    took = []
    for _ in range(calls):
        t0 = time.perf_counter()
        fn()
        took.append((time.perf_counter() - t0) * 1000)
    return statistics.median(took)


def all_rows(store: Store, target: float) -> int:
    n = 0
    for row in stream_sums(store.engine, s.rollup_day, ["service_day", "office_code"], None,
                           FIRST.isoformat(), LAST.isoformat()):
        kpi_row(row, {}, target)
        n += 1
    return n


def calls(svc: PeriodService, n: int) -> tuple[float, float, float]:
    """(one office's year, one province's year, the nation's year), median ms."""
    province = [f"N{o:04d}" for o in range(1, min(n, 100) + 1)]
    nation = [f"N{o:04d}" for o in range(1, n + 1)]
    one = median_ms(lambda: svc.period("office", "N0001", ["N0001"], FIRST, LAST, "month", True))
    prov = median_ms(lambda: svc.period("unit", "P", province, FIRST, LAST, "month", True))
    nat = median_ms(lambda: svc.period("unit", "VN", nation, FIRST, LAST, "month", False),
                    3 if n < 1000 else 1)
    return one, prov, nat


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--offices", default="38,380,3321")
    ap.add_argument("--csv-max-offices", type=int, default=100_000)
    ap.add_argument("--before", action="store_true", help="also time with day rows only (before v8)")
    args = ap.parse_args()
    pg = PostgresServer().start()
    store = Store(pg.url)
    store.migrate()
    cfg = Settings()
    svc = PeriodService(store, cfg.kpi, cfg.staff_figures, store.integrity)
    print("| offices | rollup_day / rollup_month rows | visits a year (≈) | reads | office year "
          "| province year (≤100 offices) | national year | every office's year (CSV rows) | rows "
          "| RSS after / peak | load average |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    try:
        for n in (int(x) for x in args.offices.split(",")):
            t0 = time.perf_counter()
            rows = generate(store, n)
            gen_s = time.perf_counter() - t0
            with store.engine.connect() as conn:
                months = int(conn.exec_driver_sql("SELECT count(*) FROM rollup_month").scalar_one())
            runs = [("month rows (v8)", calls(svc, n))]
            if args.before:
                with day_rows_only():
                    runs.append(("day rows only (before)", calls(svc, n)))
            csv_rows, every = 0, None
            if n <= args.csv_max_offices:
                csv_rows = all_rows(store, cfg.kpi.wait_target_s)
                every = median_ms(lambda: all_rows(store, cfg.kpi.wait_target_s), 1 if n > 1000 else 3)
            rss = psutil.Process().memory_info().rss / 2**20
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            every_txt = f"{every:,.0f} ms" if every is not None else "not run"
            load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
            for name, (one, prov, nat) in runs:
                print(f"| {n:,} | {rows:,} / {months:,} | {rows * 30:,} | {name} | {one:,.0f} ms "
                      f"| {prov:,.0f} ms | {nat:,.0f} ms | {every_txt} | {csv_rows:,} "
                      f"| {rss:,.0f} / {peak:,.0f} MB | {load} | (generated in {gen_s:,.0f} s)", flush=True)
    finally:
        store.close()
        pg.stop()


if __name__ == "__main__":
    main()
