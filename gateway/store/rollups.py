"""Day rollups kept current at ingest: any period's KPIs become a small SQL aggregation.

Invariant: the rollup rows of an (office, service day) equal a recomputation from that day's derived
rows (``visits``, ``ratings`` with status ``counted``, k-anonymous ``sentiment_windows``). This module
holds that recomputation (:func:`refresh`: delete, then insert, per office-day; used by the
migrations' backfills and by an operator clearing a flag) and the contribution functions
(:func:`day_rows`, :func:`hour_rows`, :func:`reason_rows`, :func:`sentiment_rows`). The ingest
writer does not recompute: :mod:`gateway.store.rollup_deltas` applies, in the same transaction as
the derived rows and after the rating rules ran, the difference between the contribution of the
visits the batch changed after and before the batch, computed with these same functions. So every
correction the integrity rules make later (a pending rating decided, a duplicate demoted, a burst
flag raised, a visit completed after being called, a queue reset discarding waiting tickets) lands in
the rollup exactly, at a cost bounded by the batch, not by the size of the day. Sums add values
quantised to :data:`QUANTUM`, so they are exact whatever the order of additions and subtractions.

Month rows (:mod:`gateway.store.rollup_months`) are the day rows summed per month: :func:`refresh`
rebuilds those of the office-months it touched, the deltas add the month sums of their day delta.

PostgreSQL with several gateway processes: :func:`refresh` takes an advisory lock per (office, day)
and per (office, month) (exclusive; the deltas take them shared), so a recomputation never
interleaves with a delta.

Figures (docs/gateway.md#kpis): a visit is live unless a queue reset discarded it; waits exclude
no-shows never served; a rating counts for the officer recorded on its visit; staff (``staff_*``)
columns leave out visits flagged as implausible and not cleared, ``rf*`` count flagged ratings. The
``counter`` of every rollup row is the counter that served the visit (:func:`serving`: on a shared
line, the ``serving_counter`` that called it, not the entrance's line number), and a rating counts
for its visit's serving counter. ``rollup_kinds`` (by ticket kind and field) is
gateway/store/kind_rollup.py's.
"""

from __future__ import annotations

import json
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, delete, select, tuple_

from gateway.store import schema as s
from gateway.store.rollup_months import month_of, rebuild

OfficeDay = tuple[str, str]  # office code, service day (ISO)


QUANTUM = 2.0**-20  # sums add values rounded to this (≈ 1 µs): exact in any order (rollup_deltas)


def quantum(x: float) -> float:
    """``x`` rounded to a multiple of :data:`QUANTUM`: sums of such values (below 2**33) are exact in
    binary floating point, so adding and subtracting them in any order gives the same bits."""
    return round(x / QUANTUM) * QUANTUM


def serving(visit: dict[str, Any]) -> int:
    """The counter a visit counts for: the one that called it on a shared line, else its own."""
    return visit.get("serving_counter") or visit["counter"]


def bucket(seconds: float) -> int:
    """Histogram bucket of a wait or service time: bucket i holds (edge i, edge i+1], bucket 0 also 0
    (so "above the target" is exact at a bucket edge: waits > 1200 s start a bucket)."""
    return max(0, bisect_left(s.HIST_EDGES_S, seconds) - 1)


def lock_names(pairs: Iterable[OfficeDay]) -> list[str]:
    """The advisory lock names of office-days and of their office-months ("office|YYYY-MM-DD",
    "office|YYYY-MM"), sorted: one statement takes them in one global order (no deadlock)."""
    names = set()
    for o, d in pairs:
        names.add(f"{o}|{d}")
        names.add(f"{o}|{d[:7]}")
    return sorted(names)


def lock_office_days(conn: Any, dialect: str, pairs: list[OfficeDay]) -> None:
    """PostgreSQL: the exclusive advisory locks of the office-days and their office-months (the
    ingest deltas take them shared): taken before any row lock, all in one statement."""
    if dialect != "postgresql" or not pairs:
        return
    conn.exec_driver_sql(
        "SELECT pg_advisory_xact_lock(766470, hashtext(k)) FROM unnest(%s::text[]) AS k ORDER BY k",
        (lock_names(pairs),),
    )


def refresh(conn: Any, dialect: str, pairs: set[OfficeDay], min_k: int, tz: ZoneInfo | None,
            months: bool = True) -> None:
    """Recompute the rollup rows of ``pairs`` from the derived rows, then the month rows of their
    office-months from the day rows (``months`` False: only migrations v4 and v7, which run before
    the month tables exist). ``tz`` None: only the tables that do not depend on the local hour (an
    operator clearing a flag changes no arrival hour)."""
    ordered = sorted(pairs)
    if not ordered:
        return
    from gateway.store.kind_rollup import kind_rows  # it builds on this module's functions
    from gateway.ticket_kinds import visit_kinds

    lock_office_days(conn, dialect, ordered)
    tables = s.ROLLUP_TABLES if tz is not None else (s.rollup_day,)
    for i in range(0, len(ordered), 200):
        chunk = ordered[i : i + 200]
        for t in tables:
            conn.execute(delete(t).where(tuple_(t.c.office_code, t.c.service_day).in_(chunk)))
        visits = _read(conn, s.visits, chunk)
        ratings = _read(conn, s.ratings, chunk, s.ratings.c.status == "counted")
        rows = {s.rollup_day: day_rows(visits, ratings)}
        if tz is not None:
            rows[s.rollup_reasons] = reason_rows(ratings, visits)
            rows[s.rollup_hours] = hour_rows(visits, tz)
            rows[s.rollup_kinds] = kind_rows(visits, _read(conn, visit_kinds, chunk), tz)
            rows[s.rollup_sentiment] = sentiment_rows(_read(conn, s.sentiment_windows, chunk), min_k)
        for t, out in rows.items():
            if out:
                conn.execute(t.insert(), out)
    if months:
        rebuild(conn, {(o, month_of(d)) for o, d in ordered}, tuple(t for t in tables if t in s.MONTH_OF))


def _read(conn: Any, table: Any, pairs: list[OfficeDay], where: Any = None) -> list[dict[str, Any]]:
    by_office: dict[str, list[str]] = defaultdict(list)
    for o, d in pairs:
        by_office[o].append(d)
    out: list[dict[str, Any]] = []
    for office, days in by_office.items():
        q = select(table).where(and_(table.c.office_code == office, table.c.service_day.in_(days)))
        if where is not None:
            q = q.where(where)
        result = conn.execute(q)
        keys = list(result.keys())
        out.extend(dict(zip(keys, r, strict=True)) for r in result)  # ~2x faster than Row._mapping
    return out


def _flagged(row: dict[str, Any]) -> bool:
    return row.get("flag") is not None and row.get("flag_cleared_at") is None


def _zero_day() -> dict[str, Any]:
    return {c.name: 0 for c in s.rollup_day.c if not c.primary_key} | {
        "wait_sum": 0.0, "service_sum": 0.0, "staff_wait_sum": 0.0, "staff_service_sum": 0.0}


def day_rows(visits: list[dict[str, Any]], ratings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """rollup_day rows (per office, day, counter, officer) from derived rows of whole office-days."""
    acc: dict[tuple[str, str, int, str], dict[str, Any]] = defaultdict(_zero_day)
    served_by: dict[tuple[Any, ...], tuple[int, str]] = {}  # visit key → serving counter, officer
    for v in visits:
        served_by[_visit_key(v)] = (serving(v), v["officer_id"] or "")
        if v["discarded_at"] is not None:
            continue
        a = acc[(v["service_day"], v["office_code"], serving(v), v["officer_id"] or "")]
        staff = not _flagged(v)
        no_show = v["no_show_at"] is not None and v["completed_at"] is None
        a["visits"] += 1
        a["flagged_visits"] += not staff
        a["served"] += v["completed_at"] is not None
        a["staff_served"] += staff and v["completed_at"] is not None
        a["no_shows"] += no_show
        a["waiting"] += v["called_at"] is None and v["no_show_at"] is None and v["completed_at"] is None
        if v["wait_s"] is not None and not no_show:
            a["wait_n"] += 1
            a["wait_sum"] += quantum(v["wait_s"])
            a[f"wh{bucket(v['wait_s'])}"] += 1
            if staff:
                a["staff_wait_n"] += 1
                a["staff_wait_sum"] += quantum(v["wait_s"])
        if v["service_s"] is not None:
            a["service_n"] += 1
            a["service_sum"] += quantum(v["service_s"])
            a[f"sh{bucket(v['service_s'])}"] += 1
            if staff:
                a["staff_service_n"] += 1
                a["staff_service_sum"] += quantum(v["service_s"])
    for r in ratings:
        counter, officer = served_by.get(_visit_key(r), (r["counter"], r["officer_id"] or ""))
        a = acc[(r["service_day"], r["office_code"], counter, officer)]
        a[f"r{r['level']}"] += 1
        a[f"rf{r['level']}"] += _flagged(r)
        a["scale5"] += r["scale"] == 5
    return [
        {"service_day": d, "office_code": o, "counter": c, "officer_id": off, **a}
        for (d, o, c, off), a in sorted(acc.items())
    ]


def _visit_key(row: dict[str, Any]) -> tuple[Any, ...]:
    return row["office_code"], row["counter"], row["service_day"], row["ticket_no"]


def reason_rows(ratings: list[dict[str, Any]], visits: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Reasons per counter: the rated visit's serving counter (``visits``: the rated visits)."""
    counter_of = {_visit_key(v): serving(v) for v in visits}
    n: dict[tuple[str, str, int, str], int] = defaultdict(int)
    for r in ratings:
        if r["reason"]:
            counter = counter_of.get(_visit_key(r), r["counter"])
            n[(r["service_day"], r["office_code"], counter, r["reason"])] += 1
    return [{"service_day": d, "office_code": o, "counter": c, "reason": why, "n": k}
            for (d, o, c, why), k in sorted(n.items())]


def hour_rows(visits: list[dict[str, Any]], tz: ZoneInfo) -> list[dict[str, Any]]:
    acc: dict[tuple[str, str, int, int], dict[str, Any]] = defaultdict(
        lambda: {"arrivals": 0, "wait_n": 0, "wait_sum": 0.0})
    for v in visits:
        t = v["issued_at"] if v["issued_at"] is not None else v["called_at"]
        if t is None or v["discarded_at"] is not None:
            continue
        a = acc[(v["service_day"], v["office_code"], serving(v), datetime.fromtimestamp(t, tz).hour)]
        a["arrivals"] += 1
        if v["wait_s"] is not None and not (v["no_show_at"] is not None and v["completed_at"] is None):
            a["wait_n"] += 1
            a["wait_sum"] += quantum(v["wait_s"])
    return [{"service_day": d, "office_code": o, "counter": c, "hour": h, **a}
            for (d, o, c, h), a in sorted(acc.items())]


def sentiment_rows(windows: list[dict[str, Any]], min_k: int) -> list[dict[str, Any]]:
    """Only k-anonymous windows (k and visits >= min_k), as the KPIs have always read them."""
    acc: dict[tuple[str, str, int], dict[str, Any]] = {}
    for w in windows:
        if w["k"] < min_k or w["visits"] < min_k:
            continue
        shares = w["class_shares"]
        if isinstance(shares, str):  # JSON text on SQLite
            shares = json.loads(shares)
        a = acc.setdefault((w["service_day"], w["office_code"], w["counter"]),
                           {"windows": 0, "visits": 0, "score_sum": 0.0,
                            **{f"cs_{c}": 0.0 for c in s.EXPRESSION_COLUMNS}})
        a["windows"] += 1
        a["visits"] += w["visits"]
        a["score_sum"] += quantum(w["score"] * w["visits"])
        for c in s.EXPRESSION_COLUMNS:
            a[f"cs_{c}"] += quantum((shares or {}).get(c, 0.0) * w["visits"])
    return [{"service_day": d, "office_code": o, "counter": c, **a} for (d, o, c), a in sorted(acc.items())]


def all_office_days(conn: Any) -> set[OfficeDay]:
    """Every (office, day) with derived rows: what a backfill recomputes."""
    out: set[OfficeDay] = set()
    for t in (s.visits, s.ratings, s.sentiment_windows):
        out.update((r[0], r[1]) for r in conn.execute(select(t.c.office_code, t.c.service_day).distinct()))
    return out


def hist_p90(hist: list[int]) -> float | None:
    """Nearest-rank p90 read from summed histogram buckets: the midpoint of the bucket holding it (the
    open last bucket: its lower edge). Within half a bucket (30 s below 60 min) of the exact p90."""
    n = sum(hist)
    if n == 0:
        return None
    rank = max(1, -(-9 * n // 10))  # ceil(0.9 n), integer arithmetic
    seen = 0
    for i, k in enumerate(hist):
        seen += k
        if seen >= rank:
            return _MIDPOINTS[i]
    raise AssertionError("unreachable: ranks are within the histogram")


_MIDPOINTS = [(lo + hi) / 2 for lo, hi in zip(s.HIST_EDGES_S, s.HIST_EDGES_S[1:], strict=False)] + [
    s.HIST_EDGES_S[-1]]


def hist_share_over(hist: list[int], target_s: float) -> float | None:
    """Share of the histogram above ``target_s``: exact when the target is a bucket edge (the 20-minute
    target is), else the bucket holding it is split in proportion."""
    n = sum(hist)
    if n == 0:
        return None
    edges = s.HIST_EDGES_S
    i = bisect_left(edges, target_s)  # first bucket whose lower edge >= target: all above
    over = float(sum(hist[i:]))
    if i > 0 and edges[i - 1] < target_s:  # the bucket (lower, upper] holding the target
        upper = edges[i] if i < len(edges) else None
        part = hist[i - 1]
        over += part if upper is None else part * (upper - target_s) / (upper - edges[i - 1])
    return over / n
