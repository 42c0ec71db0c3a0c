"""National volume on PostgreSQL: how the rollup queries grow with offices (issue 11).

    python -m bench.scale.national [--offices 38,380,3321]

Vietnam has 3,321 commune-level units since July 2025; about 200,000 visits a working day is ~60
per office. Filling 50 M visits a year through the writer is out of reach on one small machine, so
this bench **generates the rollup rows directly** in PostgreSQL (``INSERT … SELECT`` over
``generate_series``: 250 working days × 2 counters × 1 officer per office, histogram and rating
columns filled with random counts of the right size), then times, median of 3, in-process:

* one office's year (``PeriodService.period``, by month, with officers);
* one province's year (100 offices, or all when fewer, by month);
* the nation's year (every office, by month, no officers: one ``IN`` list of all offices);
* the year's KPI rows of every office (``periods.stream_sums`` + ``api_period.kpi_row``: what the
  streamed CSV does), with the rows it yields.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
from datetime import date
from typing import Any

import psutil
from sqlalchemy import text

from gateway.api_period import kpi_row
from gateway.config import Settings
from gateway.period import PeriodService
from gateway.store import Store
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
        for t in s.ROLLUP_TABLES:
            conn.execute(t.delete())
        conn.execute(text(sql), {"offices": offices})
        conn.exec_driver_sql("ANALYZE rollup_day")
        return int(conn.exec_driver_sql("SELECT count(*) FROM rollup_day").scalar_one())


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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--offices", default="38,380,3321")
    ap.add_argument("--csv-max-offices", type=int, default=100_000)
    args = ap.parse_args()
    pg = PostgresServer().start()
    store = Store(pg.url)
    store.migrate()
    cfg = Settings()
    svc = PeriodService(store, cfg.kpi, cfg.staff_figures, store.integrity)
    print("| offices | rollup_day rows | visits a year (≈) | office year | province year (≤100 offices) "
          "| national year | every office's year (CSV rows) | rows | RSS after / peak |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    try:
        for n in (int(x) for x in args.offices.split(",")):
            t0 = time.perf_counter()
            rows = generate(store, n)
            gen_s = time.perf_counter() - t0
            province = [f"N{o:04d}" for o in range(1, min(n, 100) + 1)]
            one = median_ms(lambda: svc.period("office", "N0001", ["N0001"], FIRST, LAST, "month", True))
            prov = median_ms(lambda p=province: svc.period("unit", "P", p, FIRST, LAST, "month", True))
            nation = [f"N{o:04d}" for o in range(1, n + 1)]
            nat = median_ms(lambda p=nation: svc.period("unit", "VN", p, FIRST, LAST, "month", False))
            csv_rows, every = 0, None
            if n <= args.csv_max_offices:
                csv_rows = all_rows(store, cfg.kpi.wait_target_s)
                every = median_ms(lambda: all_rows(store, cfg.kpi.wait_target_s), 1 if n > 1000 else 3)
            rss = psutil.Process().memory_info().rss / 2**20
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            every_txt = f"{every:,.0f} ms" if every is not None else "not run"
            print(f"| {n:,} | {rows:,} | {rows * 30:,} | {one:,.0f} ms | {prov:,.0f} ms | {nat:,.0f} ms "
                  f"| {every_txt} | {csv_rows:,} | {rss:,.0f} / {peak:,.0f} MB "
                  f"| (generated in {gen_s:,.0f} s)", flush=True)
    finally:
        store.close()
        pg.stop()


if __name__ == "__main__":
    main()
