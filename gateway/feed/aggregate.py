"""Hourly anonymous figures per office, from the derived rows (visits, ratings, sentiment windows).

:func:`hour_figures` is the one query (three ``GROUP BY`` selects over the days asked for) that
turns the hour's rows into a :class:`contract.feed.FeedRecord`'s figures; when the rollup tables
land (gateway/store/rollups.py) it is the one function to point at them.

Definitions, as ``gateway.kpi`` counts a day:
* a visit belongs to the UTC hour of its arrival: ticket issued, else called, else no-show, else
  completed (the first step the gateway knows); discarded visits (queue reset) are not visits;
* waits: ``wait_s`` of visits that were not no-shows, in a fixed histogram (``WAIT_BUCKETS_S``),
  counted over the target when above ``wait_target_s``;
* ratings: ``status = 'counted'`` only (one per visit), by the hour of their own stamp;
* sentiment: windows with ``k >= min_k`` and ``visits >= min_k`` (the gateway's k), by the hour their
  window ended; an hour's block is dropped unless its visits reach k (they always do when each window
  does; the check stays so that no future change can publish a share below k);
* flags: visits and ratings flagged implausible and not cleared (kept in the figures, counted apart).
Local days map to whole UTC hours (Vietnam's offset is whole hours), so asking for service days
``[d0, d1]`` gives complete hours.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from sqlalchemy import BigInteger, Connection, and_, case, cast, func, select
from sqlalchemy.sql import ColumnElement

from contract.feed import WAIT_BUCKETS_S
from gateway.store import schema as s

Key = tuple[str, int]  # office code, hour start (epoch s, UTC)
VISIT_FIGURES = ("visits", "served", "no_shows", "wait_count", "wait_sum_s", "wait_over_target",
                 "service_count", "service_sum_s", "flagged_visits")  # the visit query's columns, in order


def _hour(ts: ColumnElement[Any], dialect: str) -> ColumnElement[Any]:
    """Epoch seconds → the start of its UTC hour (SQLite CAST truncates: stamps are positive)."""
    if dialect == "postgresql":
        return cast(func.floor(ts / 3600), BigInteger) * 3600
    return cast(ts / 3600, BigInteger) * 3600


def _count(cond: ColumnElement[bool]) -> ColumnElement[Any]:
    return func.coalesce(func.sum(case((cond, 1), else_=0)), 0)


def empty_figures() -> dict[str, Any]:
    return {
        "visits": 0, "served": 0, "no_shows": 0, "wait_count": 0, "wait_sum_s": 0.0,
        "wait_over_target": 0, "wait_histogram": [0] * (len(WAIT_BUCKETS_S) + 1), "service_count": 0,
        "service_sum_s": 0.0, "ratings_by_level": [0] * 5, "flagged_visits": 0, "flagged_ratings": 0,
        "sentiment": None,
    }


def hour_figures(conn: Connection, dialect: str, day_from: str, day_to: str, target_s: float,
                 min_k: int, closed_before: float) -> dict[Key, dict[str, Any]]:
    """Figures per (office, hour) for the service days ``[day_from, day_to]``, hours that ended
    before ``closed_before`` only. Hours with no row are absent (all zero)."""
    out: dict[Key, dict[str, Any]] = defaultdict(empty_figures)
    v = s.visits
    arrival = func.coalesce(v.c.issued_at, v.c.called_at, v.c.no_show_at, v.c.completed_at)
    hour = _hour(arrival, dialect).label("hour")
    no_show = and_(v.c.no_show_at.is_not(None), v.c.completed_at.is_(None))
    waited = and_(v.c.wait_s.is_not(None), ~no_show)
    lows = (-1.0, *WAIT_BUCKETS_S[:-1])  # waits are >= 0: the first bucket is [0, 300]
    buckets = [_count(and_(waited, v.c.wait_s > lo, v.c.wait_s <= hi))
               for lo, hi in zip(lows, WAIT_BUCKETS_S, strict=True)]
    buckets.append(_count(and_(waited, v.c.wait_s > WAIT_BUCKETS_S[-1])))
    q = (select(v.c.office_code, hour, func.count().label("visits"), _count(v.c.completed_at.is_not(None)),
                _count(no_show), _count(waited), func.coalesce(func.sum(case((waited, v.c.wait_s))), 0.0),
                _count(and_(waited, v.c.wait_s > target_s)), _count(v.c.service_s.is_not(None)),
                func.coalesce(func.sum(v.c.service_s), 0.0),
                _count(and_(v.c.flag.is_not(None), v.c.flag_cleared_at.is_(None))), *buckets)
         .where(v.c.service_day.between(day_from, day_to), v.c.discarded_at.is_(None), arrival.is_not(None))
         .group_by(v.c.office_code, hour))
    for r in conn.execute(q):
        if r[1] + 3600 > closed_before:
            continue
        f = out[(r[0], int(r[1]))]
        for name, x in zip(VISIT_FIGURES, r[2:11], strict=True):
            f[name] = round(float(x), 3) if name.endswith("_s") else int(x)
        f["wait_histogram"] = [int(x) for x in r[11:]]
    ra = s.ratings
    rhour = _hour(ra.c.ts, dialect).label("hour")
    q = (select(ra.c.office_code, rhour, ra.c.level, func.count(),
                _count(and_(ra.c.flag.is_not(None), ra.c.flag_cleared_at.is_(None))))
         .where(ra.c.service_day.between(day_from, day_to), ra.c.status == "counted",
                ra.c.level.between(1, 5))
         .group_by(ra.c.office_code, rhour, ra.c.level))
    for office, h, level, n, flagged in conn.execute(q):
        if h + 3600 <= closed_before:
            f = out[(office, int(h))]
            f["ratings_by_level"][level - 1] += int(n)
            f["flagged_ratings"] += int(flagged)
    w = s.sentiment_windows
    q = (select(w.c.office_code, _hour(w.c.window_end, dialect), w.c.visits, w.c.score, w.c.class_shares)
         .where(w.c.service_day.between(day_from, day_to), w.c.k >= min_k, w.c.visits >= min_k))
    windows: dict[Key, list[Any]] = defaultdict(list)
    for office, h, visits, score, shares in conn.execute(q):
        if h + 3600 <= closed_before:
            windows[(office, int(h))].append((visits, score, json.loads(shares) if isinstance(shares, str)
                                              else shares))
    for key, rows in windows.items():
        out[key]["sentiment"] = sentiment_block(rows, min_k)
    return dict(out)


def sentiment_block(rows: list[tuple[int, float, dict[str, float]]], k: int) -> dict[str, Any] | None:
    """Visit-weighted sums of k-anonymous windows; ``None`` below k (never published)."""
    visits = sum(r[0] for r in rows)
    if visits < k or any(r[0] < k for r in rows):
        return None
    shares: dict[str, float] = defaultdict(float)
    for n, _score, cls in rows:
        for name, share in (cls or {}).items():
            shares[name] += share * n
    return {"k": k, "windows": len(rows), "visits": visits,
            "score_sum": round(sum(n * score for n, score, _ in rows), 6),
            "class_share_sums": {name: round(v, 6) for name, v in sorted(shares.items())}}
