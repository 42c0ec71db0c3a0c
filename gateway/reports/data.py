"""The figures of one report: the period API's store function, renamed for the page and the files.

``build`` calls ``PeriodService.period`` (gateway/period.py) exactly as ``/api/v1/offices/{code}/period``
and ``/api/v1/units/{code}/period`` do, with the same office list and the report's period, and only
renames and orders its fields (plus names, labels, the forecast). It computes no figure: the page, the
PDF, the XLSX and the period API hold the same numbers (tests/gateway/web/test_reports.py checks it).
Officers are included because the caller was admitted by ``Principal.reads_reports_of``.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from fastapi import Request

from gateway.api_period import office_units, period_service
from gateway.reports import fmt, hub
from gateway.reports.periods import Period
from gateway.reports.scopes import Scope


def _figures(f: dict[str, Any]) -> dict[str, Any]:
    return {"visits": f["visits"], "served": f["served"], "no_shows": f["no_show"],
            "avg_wait_s": f["wait_avg_s"], "p90_wait_s": f["wait_p90_s"],
            "over_target_share": f["over_target_share"], "avg_service_s": f["service_avg_s"],
            "rated": f["n_ratings"], "ratings": f["ratings"], "not_satisfied": f["not_satisfied"],
            "satisfaction_rate": f["satisfaction"], "satisfaction_low": f["satisfaction_low"],
            "satisfaction_high": f["satisfaction_high"], "sentiment_score": f["sentiment_index"],
            "sentiment_visits": f["sentiment_visits"], "sentiment_windows": f["sentiment_windows"],
            "class_shares": f["class_shares"],
            "flagged_excluded": f["flagged_excluded"]}


def series_label(start: date, by: str) -> str:
    if by == "month":
        return f"{start.month:02d}/{start.year}"
    return f"{start.day:02d}/{start.month:02d}"  # a day, or the first day of a week


def _officer(o: dict[str, Any]) -> dict[str, Any]:
    return {"officer_id": o["officer_id"], "served": o["served"], "rated": o["n"],
            "satisfaction_rate": o["satisfaction"], "ci_low": o["satisfaction_low"],
            "ci_high": o["satisfaction_high"], "score": o["shrunk_score"], "rank": o["rank"],
            "enough_data": o["enough_data"], "flagged_excluded": o["flagged_excluded"]}


def period_offices(request: Request, scope: Scope) -> list[str]:
    """The offices the period API sums for this scope (a unit: with its merged old codes)."""
    if scope.kind == "office":
        return [scope.code]
    return sorted(o for o, u in office_units(request.app.state.store).items() if u == scope.code)


def build(request: Request, scope: Scope, period: Period) -> dict[str, Any]:
    st = request.app.state
    raw = period_service(request).period(scope.kind, scope.code, period_offices(request, scope), period.start,
                                         period.end, period.by, True)
    totals = _figures(raw["totals"])
    reasons = sorted(raw["totals"]["reasons"].items(), key=lambda kv: (-kv[1], kv[0]))
    forecast = st.kpi.forecast(scope.code, st.kpi.today()) if scope.kind == "office" else None
    report = {
        "scope": scope.as_dict(),
        "period": {**period.as_dict(), "slug": period.slug},
        "generated_at": datetime.now(st.kpi.tz).isoformat(timespec="seconds"),
        "wait_target_s": raw["method"]["wait_target_s"],
        "min_sample": raw["method"]["min_ratings"],
        "method": raw["method"],
        "totals": totals,
        "series": [{"label": series_label(p["start"], period.by), "start": p["start"].isoformat(),
                    "end": p["end"].isoformat(), **_figures(p)} for p in raw["series"]],
        "counters": [{"office_code": c["office_code"], "counter": c["counter"], **_figures(c)}
                     for c in raw["counters"]],
        "officers": [_officer(o) for o in raw["officers"]],
        "reasons": [{"reason": code, "label": fmt.reason(code), "count": n} for code, n in reasons],
        "agreement": _agreement(raw["agreement"]),
        "by_kind": raw["by_kind"], "appointments": raw["appointments"],
        "forecast": forecast, "source": "local",
    }
    if st.settings.hub.enabled and not totals["visits"]:
        _from_hub(request, scope, period, report)
    return report


def _from_hub(request: Request, scope: Scope, period: Period, report: dict[str, Any]) -> None:
    """On a province hub, offices heard only through the feed: totals and series from its records
    (gateway/reports/hub.py); the rest stays empty, as the feed does not carry it."""
    st = request.app.state
    got = hub.from_feed(st.store, list(scope.offices), report["series"], period.start, period.end, st.kpi.tz,
                        report["wait_target_s"], report["method"]["confidence"])
    if got is None:
        return
    report.update(totals=got["totals"], series=got["series"], source="hub", hub_offices=got["hub_offices"],
                  hub_hours=got["hours"])


def _agreement(a: dict[str, Any]) -> dict[str, Any]:
    """The period API's agreement block; counter-weeks with their Monday as text (the page's scatter)."""
    weeks = [{**w, "week_start": w["week_start"].isoformat()} for w in a["counter_weeks"]]
    return {**a, "counter_weeks": weeks}
