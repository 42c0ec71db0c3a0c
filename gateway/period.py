"""Period figures (a day range, by day/week/month) from the rollups: totals, series, counters, officers.

Every figure is a sum of rollup columns (gateway.store.periods: whole months from the month rollups)
turned into shares and averages here, so a year costs what a week does. Definitions are the KPIs'
(docs/gateway.md#kpis); p90 and the share over the target come from the wait histogram
(gateway.store.rollups: within 30 s below an hour).
Staff figures follow gateway.fairness and leave out flagged visits and ratings (counted apart).
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from gateway.config import IntegritySettings, KpiSettings, StaffFiguresSettings
from gateway.fairness import agreement, beta_binomial_prior, rank, wilson
from gateway.store import Store
from gateway.store import schema as s
from gateway.store.kinds import appointment_figures, kind_figures
from gateway.store.periods import DAY_SUMS, SENTIMENT_SUMS, sums
from gateway.store.rollups import hist_p90, hist_share_over
from gateway.store.sentiment_pairs import counter_week_sums

By = Literal["day", "week", "month"]
LEVELS = s.RATING_LEVELS
P90_ERROR_S = (s.HIST_EDGES_S[1] - s.HIST_EDGES_S[0]) / 2


def _add(into: dict[str, Any], row: dict[str, Any] | None, cols: list[str]) -> None:
    for c in cols:
        into[c] = into.get(c, 0) + ((row or {}).get(c) or 0)


def _div(a: float, b: float) -> float | None:
    return a / b if b else None


WH = [f"wh{i}" for i in range(s.HIST_BUCKETS)]
SH = [f"sh{i}" for i in range(s.HIST_BUCKETS)]
NAMED = ["visits", "served", "no_shows", "waiting", "wait_sum", "wait_n", "service_sum", "service_n",
         "flagged_visits", *(f"r{i}" for i in LEVELS), *(f"rf{i}" for i in LEVELS)]


# what PeriodService.officers reads: no histogram (an officer's figures have no p90)
OFFICER_SUMS = tuple(c for c in DAY_SUMS if not c.startswith(("wh", "sh")))


def _flagged(g: dict[str, Any]) -> dict[str, int]:
    return {"visits": g["flagged_visits"], "ratings": sum(g[f"rf{i}"] for i in LEVELS)}


def figures(d: dict[str, Any], sent: dict[str, Any], reasons: dict[str, int], target_s: float,
            confidence: float) -> dict[str, Any]:
    """The Figures model from summed rollup_day (``d``) and rollup_sentiment (``sent``) columns
    (a missing or NULL column counts 0). Called once per CSV row: kept lean."""
    get = d.get
    g = {c: get(c) or 0 for c in NAMED}
    sv = {c: sent.get(c) or 0 for c in SENTIMENT_SUMS} if sent else dict.fromkeys(SENTIMENT_SUMS, 0)
    n = g["r1"] + g["r2"] + g["r3"] + g["r4"] + g["r5"]
    low = g["r1"]
    ci = wilson(n - low, n, confidence) if n else None
    wh = [get(c) or 0 for c in WH]
    return {
        "visits": g["visits"], "served": g["served"], "no_show": g["no_shows"], "waiting": g["waiting"],
        "wait_avg_s": _div(g["wait_sum"], g["wait_n"]), "wait_p90_s": hist_p90(wh),
        "over_target_share": hist_share_over(wh, target_s),
        "service_avg_s": _div(g["service_sum"], g["service_n"]),
        "service_p90_s": hist_p90([get(c) or 0 for c in SH]),
        "n_ratings": n, "ratings": {str(i): g[f"r{i}"] for i in LEVELS if g[f"r{i}"]},
        "not_satisfied": low, "satisfaction": _div(n - low, n),
        "satisfaction_low": ci[0] if ci else None, "satisfaction_high": ci[1] if ci else None,
        "reasons": dict(sorted(reasons.items())),
        "sentiment_index": _div(sv["score_sum"], sv["visits"]),
        "sentiment_windows": sv["windows"], "sentiment_visits": sv["visits"],
        "class_shares": {c: sv[f"cs_{c}"] / sv["visits"] for c in s.EXPRESSION_COLUMNS if sv["visits"]},
        "flagged_excluded": _flagged(g),
    }


def bucket_start(day: date, by: By) -> date:
    if by == "week":
        return day - timedelta(days=day.weekday())
    if by == "month":
        return day.replace(day=1)
    return day


def buckets(start: date, end: date, by: By) -> list[tuple[date, date]]:
    """Consecutive (first, last) days of each day/week/month within [start, end]."""
    out: list[tuple[date, date]] = []
    day = start
    while day <= end:
        b = bucket_start(day, by)
        if by == "day":
            nxt = day + timedelta(days=1)
        elif by == "week":
            nxt = b + timedelta(days=7)
        else:
            nxt = (b.replace(day=28) + timedelta(days=4)).replace(day=1)
        out.append((day, min(end, nxt - timedelta(days=1))))
        day = nxt
    return out


class PeriodService:
    def __init__(self, store: Store, kpi: KpiSettings, staff: StaffFiguresSettings,
                 integrity: IntegritySettings) -> None:
        self.store, self.kpi, self.staff, self.integrity = store, kpi, staff, integrity
        self.tz = ZoneInfo(kpi.timezone)

    def _fig(self, d: dict[str, Any], sent: dict[str, Any], reasons: dict[str, int]) -> dict[str, Any]:
        return figures(d, sent, reasons, self.kpi.wait_target_s, self.staff.confidence)

    def period(self, scope: str, code: str, offices: list[str], start: date, end: date, by: By,
               staff: bool) -> dict[str, Any]:
        q = self._read(offices, start.isoformat(), end.isoformat(), staff, by)
        spans = buckets(start, end, by)
        acc: dict[date, tuple[dict[str, Any], dict[str, Any], dict[str, int]]] = {
            first: ({}, {}, defaultdict(int)) for first, _last in spans}
        for rows, slot, cols in ((q["days"], 0, DAY_SUMS), (q["sents"], 1, SENTIMENT_SUMS)):
            for day, row in rows.items():
                _add(acc[self._bucket(date.fromisoformat(day), start, by)][slot], row, cols)
        for r in q["why"]:
            acc[self._bucket(date.fromisoformat(r[q["day_key"]]), start, by)][2][r["reason"]] += r["n"]
        series, total_d, total_s, total_r = [], {}, {}, defaultdict(int)
        for first, last in spans:
            d_acc, s_acc, r_acc = acc[first]
            series.append({"start": first, "end": last, **self._fig(d_acc, s_acc, r_acc)})
            _add(total_d, d_acc, DAY_SUMS)
            _add(total_s, s_acc, SENTIMENT_SUMS)
            for k, v in r_acc.items():
                total_r[k] += v
        c_reasons: dict[tuple[str, int], dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for r in q["c_why"]:
            c_reasons[(r["office_code"], r["counter"])][r["reason"]] += r["n"]
        counter_out = [
            {"office_code": o, "counter": c, **self._fig(row, self._k_windows(q["c_sent"].get((o, c), {})),
                                                         c_reasons[(o, c)])}
            for (o, c), row in sorted(q["counters"].items())
        ]
        officer_out, prior = self.officers(q["officers"])
        strength = None if prior is None or math.isinf(prior.strength) else prior.strength
        return {
            "scope": scope, "code": code, "start": start, "end": end, "by": by, "offices": offices,
            "totals": self._fig(total_d, total_s, total_r), "series": series, "counters": counter_out,
            "officers": officer_out, "agreement": self.agreement(q["pairs"]),
            "by_kind": q["by_kind"], "appointments": q["appointments"],
            "method": {"wait_target_s": self.kpi.wait_target_s, "p90_error_s": P90_ERROR_S,
                       "confidence": self.staff.confidence, "min_ratings": self.staff.min_ratings,
                       "prior_mean": prior.mean if prior else None, "prior_strength": strength,
                       "staff_figures": staff},
        }

    @staticmethod
    def _bucket(day: date, start: date, by: By) -> date:
        """The first day of ``day``'s bucket as :func:`buckets` clips it to the range."""
        return max(start, bucket_start(day, by))

    def _read(self, offices: list[str], f: str, t: str, staff: bool, by: By) -> dict[str, Any]:
        """The small aggregations a period needs (officers only when ``staff``). A series by month
        groups by ``month`` (whole months read from the month rollups: gateway.store.periods); by day
        or week by ``service_day`` (day rollups)."""
        ck = ["office_code", "counter"]
        d = ["month" if by == "month" else "service_day"]

        def by_key(rows: list[dict[str, Any]], *keys: str) -> dict[Any, dict[str, Any]]:
            return {(r[keys[0]] if len(keys) == 1 else tuple(r[k] for k in keys)): r for r in rows}

        with self.store.engine.connect() as conn:
            return {
                "day_key": d[0],
                "days": by_key(sums(conn, s.rollup_day, d, offices, f, t), *d),
                "sents": by_key(sums(conn, s.rollup_sentiment, d, offices, f, t), *d),
                "why": sums(conn, s.rollup_reasons, [*d, "reason"], offices, f, t),
                "counters": by_key(sums(conn, s.rollup_day, ck, offices, f, t), *ck),
                "c_sent": by_key(sums(conn, s.rollup_sentiment, ck, offices, f, t), *ck),
                "c_why": sums(conn, s.rollup_reasons, [*ck, "reason"], offices, f, t),
                "officers": sums(conn, s.rollup_day, ["officer_id"], offices, f, t,
                                 named_officers_only=True, columns=OFFICER_SUMS) if staff else [],
                "pairs": counter_week_sums(conn, offices, f, t),
                "by_kind": kind_figures(conn, offices, f, t, self.kpi.wait_target_s),
                "appointments": appointment_figures(conn, offices, f, t, datetime.now(self.tz).date()),
            }

    def _k_windows(self, sent: dict[str, Any]) -> dict[str, Any]:
        """A counter's sentiment sums, or none below [integrity] min_k windows (never a thin figure)."""
        return sent if (sent.get("windows") or 0) >= self.integrity.min_k else {}

    def agreement(self, weeks: list[dict[str, Any]]) -> dict[str, Any]:
        """Sentiment index against satisfaction over counter-weeks (ISO weeks, Monday; the counter-days
        of the period summed in the database: gateway.store.sentiment_pairs), each with >= [integrity]
        min_k windows and >= ``agreement_min_ratings`` ratings (gateway.fairness.agreement); no
        coefficient below ``agreement_min_pairs`` of them."""
        pairs = [{"office_code": w["office_code"], "counter": w["counter"], "week_start": w["week_start"],
                  "n": w["n"], "satisfaction": (w["n"] - w["not_satisfied"]) / w["n"],
                  "sentiment_index": w["score_sum"] / w["visits"], "windows": w["windows"]}
                 for w in weeks
                 if w["windows"] >= self.integrity.min_k and w["n"] >= self.staff.agreement_min_ratings]
        enough = len(pairs) >= self.staff.agreement_min_pairs
        a = agreement([p["satisfaction"] for p in pairs], [p["sentiment_index"] for p in pairs],
                      self.staff.confidence) if enough else None
        coeffs = ("spearman", "spearman_low", "spearman_high", "pearson", "pearson_low", "pearson_high")
        return {"pairs": len(pairs), "enough_data": enough,
                **{c: getattr(a, c) if a else None for c in coeffs},
                "confidence": self.staff.confidence, "min_windows": self.integrity.min_k,
                "min_ratings": self.staff.agreement_min_ratings, "min_pairs": self.staff.agreement_min_pairs,
                "counter_weeks": pairs}

    def officers(self, rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], Any]:
        """Per officer: n, Wilson interval, empirical-Bayes score (prior over these officers), rank."""
        drop = self.integrity.staff_figures_exclude_flagged
        stats = []
        for r in rows:
            g = {c: r.get(c) or 0 for c in DAY_SUMS}
            by_level = {i: g[f"r{i}"] - (g[f"rf{i}"] if drop else 0) for i in LEVELS}
            n = sum(by_level.values())
            stats.append((r["officer_id"], n - by_level[1], n, g))
        prior = beta_binomial_prior([(k, n) for _o, k, n, _g in stats])
        out = []
        for officer, k, n, g in stats:
            ci = wilson(k, n, self.staff.confidence)
            pre = "staff_" if drop else ""
            out.append({
                "officer_id": officer, "n": n, "satisfied": k, "satisfaction": _div(k, n),
                "satisfaction_low": ci[0] if ci else None, "satisfaction_high": ci[1] if ci else None,
                "shrunk_score": prior.shrink(k, n) if prior else None, "rank": None,
                "enough_data": n >= self.staff.min_ratings,
                "served": g[f"{pre}served"] if drop else g["served"],
                "wait_avg_s": _div(g[f"{pre}wait_sum"], g[f"{pre}wait_n"]),
                "service_avg_s": _div(g[f"{pre}service_sum"], g[f"{pre}service_n"]),
                "flagged_excluded": _flagged(g),
            })
        ranks = rank({o["officer_id"]: o["shrunk_score"] for o in out if o["enough_data"]})
        for o in out:
            o["rank"] = ranks.get(o["officer_id"])
        out.sort(key=lambda o: (o["rank"] is None, o["rank"] or 0, o["officer_id"]))
        return out, prior
