"""A province hub's report of an office or unit whose figures arrive by the upward feed.

On a hub (``[hub] enabled``) the commune gateways' offices have no visits or rollups of the hub's own:
their figures are the feed's hourly records (``hub_records``, gateway/feed/hub_store.py). When the
scope's offices have no local visit in the period but the hub holds records for them, the report is
built from those records: totals and the series (each bucket = the UTC hours starting within its
local days), with the same Figures keys as the period API's. What the feed does not carry is empty
and says so: per counter and per officer figures, the reasons, ticket kinds, the agreement of
sentiment and ratings (no counter-level sentiment). p90 is the upper bound of the feed histogram's
bucket (5…120 min bounds), not the rollups' 1-minute one.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from gateway.fairness import wilson
from gateway.feed.hub_store import hub_period, kpi_block


def _span(start: date, end: date, tz: ZoneInfo) -> tuple[float, float]:
    """Epoch seconds of [start 00:00, end + 1 day 00:00) on the office's clock."""
    first = datetime.combine(start, time(0), tz).timestamp()
    return first, datetime.combine(end + timedelta(days=1), time(0), tz).timestamp()


def _sum(per_office: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    if not per_office:
        return None
    out: dict[str, Any] = {}
    for sums in per_office.values():
        for k, v in sums.items():
            out[k] = out.get(k, 0) + v
    return out


def figures(sums: dict[str, Any] | None, target_s: float, confidence: float) -> dict[str, Any]:
    """The report's figure block (gateway.reports.data._figures keys) from summed feed records."""
    k = kpi_block(sums, target_s)
    n, low = k["rated"], k["not_satisfied"]
    ci = wilson(n - low, n, confidence) if n else None
    z = sums or {}
    return {"visits": k["visits"], "served": k["served"], "no_shows": k["no_shows"],
            "avg_wait_s": k["avg_wait_s"], "p90_wait_s": k["p90_wait_s"],
            "over_target_share": k["over_target_share"], "avg_service_s": k["avg_service_s"],
            "rated": n, "ratings": k["ratings"], "not_satisfied": low,
            "satisfaction_rate": k["satisfaction_rate"],
            "satisfaction_low": ci[0] if ci else None, "satisfaction_high": ci[1] if ci else None,
            "sentiment_score": k["sentiment_score"], "sentiment_visits": k["sentiment_visits"],
            "sentiment_windows": z.get("sentiment_windows", 0), "class_shares": {},
            "flagged_excluded": {"visits": z.get("flagged_visits", 0),
                                 "ratings": z.get("flagged_ratings", 0)}}


def from_feed(store: Any, offices: list[str], series: list[dict[str, Any]], start: date, end: date,
              tz: ZoneInfo, target_s: float, confidence: float) -> dict[str, Any] | None:
    """Totals and series of ``offices`` from the hub's records, or None when it holds none for them."""
    total = hub_period(store, *_span(start, end, tz), offices)
    if not total:
        return None
    out_series = []
    for p in series:
        span = _span(date.fromisoformat(p["start"]), date.fromisoformat(p["end"]), tz)
        sums = _sum(hub_period(store, *span, offices))
        out_series.append({"label": p["label"], "start": p["start"], "end": p["end"],
                           **figures(sums, target_s, confidence)})
    return {"totals": figures(_sum(total), target_s, confidence), "series": out_series,
            "hub_offices": sorted(total), "hours": sum(s["hours"] for s in total.values())}
