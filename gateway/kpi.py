"""KPIs from the derived tables: per counter / office / unit / officer / day / hour.

Definitions (docs/gateway.md#kpis):
* visit = a ticket of the day (issued, called, served or no-show) not discarded by a queue reset;
* wait = issued→called on the kiosk's monotonic clock (``wait_s``); no-shows are excluded from the
  wait figures and counted apart; p90 = nearest-rank 90th percentile;
* over_target_share = share of visits with a known wait whose wait exceeded the 20-minute target;
* satisfaction_rate = (rated − rated at the lowest level, "Không hài lòng") ÷ rated, in the spirit of
  Decision 766/QĐ-TTg; null when nothing was rated;
* sentiment_score = visit-weighted mean of the kiosks' k-anonymous sentiment windows.

Integrity (docs/gateway.md#integrity): only ratings with status ``counted`` enter any figure (one
per known visit, first press wins); sentiment windows below the gateway's ``min_k`` are never read
(so no share below k is shown); staff (officer) figures leave out visits and ratings flagged as
implausible until an office head clears the flag, and a rating counts for the officer recorded on
its visit (not the officer the rating event names).
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, select

from gateway.config import KpiSettings
from gateway.forecast import OFFICE_HOURS as OFFICE_HOURS  # re-exported: tests, benches
from gateway.forecast import forecast_for_office
from gateway.store import Store
from gateway.store import schema as s
from gateway.store.rollups import serving

CACHE_TTL_S = 2.0


def p90(values: list[float]) -> float | None:
    """Nearest-rank 90th percentile (the smallest value with >= 90 % of values at or below it)."""
    if not values:
        return None
    v = sorted(values)
    return v[max(0, math.ceil(0.9 * len(v)) - 1)]


def mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _live(v: dict[str, Any]) -> bool:
    return v["discarded_at"] is None


def _flagged(row: dict[str, Any]) -> bool:
    """Flagged as implausible and not cleared by an office head: out of staff figures."""
    return row.get("flag") is not None and row.get("flag_cleared_at") is None


def visit_summary(rows: Iterable[dict[str, Any]], target_s: float) -> dict[str, Any]:
    rows = [r for r in rows if _live(r)]
    no_shows = [r for r in rows if r["no_show_at"] is not None and r["completed_at"] is None]
    waits = [
        r["wait_s"]
        for r in rows
        if r["wait_s"] is not None and not (r["no_show_at"] is not None and r["completed_at"] is None)
    ]
    service = [r["service_s"] for r in rows if r["service_s"] is not None]
    waiting_now = sum(
        1 for r in rows if r["called_at"] is None and r["no_show_at"] is None and r["completed_at"] is None
    )
    return {
        "visits": len(rows),
        "served": sum(1 for r in rows if r["completed_at"] is not None),
        "waiting_now": waiting_now,
        "no_shows": len(no_shows),
        "avg_wait_s": mean(waits),
        "p90_wait_s": p90(waits),
        "over_target_share": (sum(1 for w in waits if w > target_s) / len(waits)) if waits else None,
        "avg_service_s": mean(service),
        "p90_service_s": p90(service),
    }


def rating_summary(rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    rows = list(rows)
    dist = Counter(str(r["level"]) for r in rows)
    lowest = sum(1 for r in rows if r["level"] == 1)
    rated = len(rows)
    scales = Counter(r["scale"] for r in rows)
    return {
        "rated": rated,
        "ratings": {k: dist[k] for k in sorted(dist, key=int)},
        "rating_scale": scales.most_common(1)[0][0] if scales else None,
        "not_satisfied": lowest,
        "satisfaction_rate": (rated - lowest) / rated if rated else None,
    }


def sentiment_summary(rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    rows = list(rows)
    visits = sum(r["visits"] for r in rows)
    score = sum(r["score"] * r["visits"] for r in rows) / visits if visits else None
    shares: dict[str, float] = defaultdict(float)
    for r in rows:
        for k, v in (r["class_shares"] or {}).items():
            shares[k] += v * r["visits"]
    return {
        "sentiment_score": score,
        "sentiment_windows": len(rows),
        "sentiment_visits": visits,
        "class_shares": {k: v / visits for k, v in sorted(shares.items())} if visits else {},
    }


def kpi_block(
    visits: list[dict[str, Any]],
    ratings: list[dict[str, Any]],
    windows: list[dict[str, Any]],
    target_s: float,
) -> dict[str, Any]:
    v = visit_summary(visits, target_s)
    r = rating_summary(ratings)
    sw = sentiment_summary(windows)
    return {**v, **r, "sentiment_score": sw["sentiment_score"], "sentiment_visits": sw["sentiment_visits"]}


class KpiService:
    """Reads derived rows and computes KPIs; caches today's figures per office until invalidated."""

    def __init__(self, store: Store, cfg: KpiSettings) -> None:
        self.store = store
        self.cfg = cfg
        self.tz = ZoneInfo(cfg.timezone)
        # (office, day) -> (computed at, generation, figures). This process's ingest invalidates an
        # office after each commit (bumping its generation, so a computation that raced the commit is
        # not cached). With PostgreSQL other gateway processes write too: entries also expire after
        # CACHE_TTL_S there.
        self._cache: dict[tuple[str, str], tuple[float, int, dict[str, Any]]] = {}
        self._gen: dict[str, int] = defaultdict(int)
        self.ttl_s: float | None = None if store.dialect == "sqlite" else CACHE_TTL_S
        self._lock = threading.Lock()

    def today(self) -> date:
        return datetime.now(self.tz).date()

    def invalidate(self, offices: Iterable[str]) -> None:
        with self._lock:
            for o in offices:
                self._gen[o] += 1
                for key in [k for k in self._cache if k[0] == o]:
                    del self._cache[key]

    def _fresh(self, key: tuple[str, str], now: float) -> dict[str, Any] | None:
        hit = self._cache.get(key)
        if hit is None or (self.ttl_s is not None and now - hit[0] >= self.ttl_s):
            return None
        return hit[2]

    # ------------------------------------------------------------------ row access

    def _rows(
        self, table: Any, day_from: str, day_to: str, office: str | None = None
    ) -> list[dict[str, Any]]:
        cond = and_(table.c.service_day >= day_from, table.c.service_day <= day_to)
        if table is s.ratings:
            cond = and_(cond, table.c.status == "counted")
        elif table is s.sentiment_windows:
            k = self.store.integrity.min_k
            cond = and_(cond, table.c.k >= k, table.c.visits >= k)
        if office is not None:
            cond = and_(cond, table.c.office_code == office)
        # straight through the DB-API cursor: building SQLAlchemy rows costs ~10 µs each, and the map
        # of a whole country reads a few hundred thousand visits
        compiled = select(table).where(cond).compile(dialect=self.store.engine.dialect)
        params: Any = compiled.params
        if compiled.positional:
            params = tuple(params[k] for k in compiled.positiontup or ())
        with self.store.engine.connect() as conn:
            cur = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            try:
                cur.execute(str(compiled), params)
                keys = [d[0] for d in cur.description]
                rows = [dict(zip(keys, r, strict=True)) for r in cur.fetchall()]
            finally:
                cur.close()
        for r in rows:
            if isinstance(r.get("class_shares"), str):  # JSON text on SQLite
                r["class_shares"] = json.loads(r["class_shares"])
        return rows

    # ------------------------------------------------------------------ office level

    def office_today(self, code: str, day: date | None = None) -> dict[str, Any]:
        return self.all_offices([code], day)[code]

    def all_offices(self, codes: list[str], day: date | None = None) -> dict[str, dict[str, Any]]:
        """Today's (or ``day``'s) KPI block per office code, from the cache where fresh."""
        day_s = (day or self.today()).isoformat()
        now = time.monotonic()
        with self._lock:
            out = {c: hit for c in codes if (hit := self._fresh((c, day_s), now)) is not None}
            missing = [c for c in codes if c not in out]
            gens = {c: self._gen[c] for c in missing}
        if not missing:
            return out
        one = missing[0] if len(missing) == 1 else None  # one office: read only its rows
        by: dict[str, dict[str, list[dict[str, Any]]]] = {k: defaultdict(list) for k in ("v", "r", "w")}
        for key, table in (("v", s.visits), ("r", s.ratings), ("w", s.sentiment_windows)):
            for row in self._rows(table, day_s, day_s, one):
                by[key][row["office_code"]].append(row)
        with self._lock:
            for c in missing:
                block = kpi_block(by["v"][c], by["r"][c], by["w"][c], self.cfg.wait_target_s)
                out[c] = block
                if self._gen[c] == gens[c]:
                    self._cache[(c, day_s)] = (now, gens[c], block)
            if len(self._cache) > 2 * len(codes) + 1000:  # past days (after midnight, history views)
                for key in [k for k in self._cache if k[1] != day_s]:
                    del self._cache[key]
        return out

    def wait_class(self, avg_wait_s: float | None) -> str:
        if avg_wait_s is None:
            return "none"
        if avg_wait_s > self.cfg.wait_target_s:
            return "bad"
        return "warn" if avg_wait_s > self.cfg.warn_share * self.cfg.wait_target_s else "ok"

    def satisfaction_class(self, rate: float | None) -> str:
        if rate is None:
            return "none"
        if rate >= self.cfg.satisfaction_ok:
            return "ok"
        return "warn" if rate >= self.cfg.satisfaction_warn else "bad"

    # ------------------------------------------------------------------ detail for one office and day

    def _local(self, ts: float | None) -> datetime | None:
        return datetime.fromtimestamp(ts, self.tz) if ts is not None else None

    def arrival_hour(self, v: dict[str, Any]) -> int | None:
        t = v["issued_at"] if v["issued_at"] is not None else v["called_at"]
        return self._local(t).hour if t is not None else None

    def office_detail(self, code: str, day: date) -> dict[str, Any]:
        day_s = day.isoformat()
        visits = self._rows(s.visits, day_s, day_s, code)
        ratings = self._rows(s.ratings, day_s, day_s, code)
        windows = self._rows(s.sentiment_windows, day_s, day_s, code)
        t = self.cfg.wait_target_s
        # per counter: the counter that served a visit (shared lines: its serving_counter), and a
        # rating counts for its visit's, as in the rollups (gateway.store.rollups.serving)
        counter_of = {(v["counter"], v["ticket_no"]): serving(v) for v in visits}
        rated_at = [counter_of.get((r["counter"], r["ticket_no"]), r["counter"]) for r in ratings]
        counters = sorted({serving(v) for v in visits} | set(rated_at) | {r["counter"] for r in windows})
        per_counter = []
        for c in counters:
            vs = [v for v in visits if serving(v) == c]
            block = kpi_block(
                vs, [r for r, at in zip(ratings, rated_at, strict=True) if at == c],
                [r for r in windows if r["counter"] == c], t
            )
            per_counter.append({"counter": c, "kpi": block, "hours": self._hours(vs)})
        officers = self._officers(visits, ratings)
        return {
            "office_code": code,
            "day": day_s,
            "wait_target_s": t,
            "kpi": kpi_block(visits, ratings, windows, t),
            "hours": self._hours(visits),
            "counters": per_counter,
            "officers": officers,
            "sentiment_windows": [
                {
                    "counter": w["counter"],
                    "window_start": self._local(w["window_start"]).isoformat(),
                    "window_end": self._local(w["window_end"]).isoformat(),
                    "visits": w["visits"],
                    "score": w["score"],
                    "class_shares": w["class_shares"],
                }
                for w in sorted(windows, key=lambda w: (w["window_start"], w["counter"]))
            ],
            "forecast": self.forecast(code, day),
        }

    def _hours(self, visits: list[dict[str, Any]]) -> list[dict[str, Any]]:
        by: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for v in visits:
            h = self.arrival_hour(v)
            if h is not None and _live(v):
                by[h].append(v)
        out = []
        for h in sorted(by):
            waits = [v["wait_s"] for v in by[h] if v["wait_s"] is not None and v["no_show_at"] is None]
            out.append({"hour": h, "arrivals": len(by[h]), "avg_wait_s": mean(waits)})
        return out

    def _officers(self, visits: list[dict[str, Any]], ratings: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Per officer of one office and day. A rating counts for the officer of the visit it rates, as
        the visit's own events recorded it, whatever officer the rating event claims."""
        def key(row: dict[str, Any]) -> tuple[Any, ...]:
            return row["counter"], row["service_day"], row["ticket_no"]

        served_by = {key(v): v["officer_id"] for v in visits}
        ratings = [{**r, "officer_id": served_by.get(key(r), r["officer_id"])} for r in ratings]
        if self.store.integrity.staff_figures_exclude_flagged:
            visits = [v for v in visits if not _flagged(v)]
            ratings = [r for r in ratings if not _flagged(r)]
        ids = sorted(
            {v["officer_id"] for v in visits if v["officer_id"]}
            | {r["officer_id"] for r in ratings if r["officer_id"]}
        )
        out = []
        for o in ids:
            vs = [v for v in visits if v["officer_id"] == o]
            vsum = visit_summary(vs, self.cfg.wait_target_s)
            rsum = rating_summary([r for r in ratings if r["officer_id"] == o])
            out.append(
                {
                    "officer_id": o,
                    "served": vsum["served"],
                    "avg_wait_s": vsum["avg_wait_s"],
                    "avg_service_s": vsum["avg_service_s"],
                    "p90_service_s": vsum["p90_service_s"],
                    "rated": rsum["rated"],
                    "ratings": rsum["ratings"],
                    "satisfaction_rate": rsum["satisfaction_rate"],
                }
            )
        return out

    # ------------------------------------------------------------------ forecast

    def arrivals_by_day_hour(self, code: str, first: date, last: date) -> dict[tuple[str, int], int]:
        counts: Counter[tuple[str, int]] = Counter()
        for v in self._rows(s.visits, first.isoformat(), last.isoformat(), code):
            h = self.arrival_hour(v)
            if h is not None and _live(v):
                counts[(v["service_day"], h)] += 1
        return counts

    def forecast(self, code: str, day: date, weeks: int = 4) -> dict[str, Any]:
        return forecast_for_office(self, code, day, weeks)  # gateway/forecast.py
