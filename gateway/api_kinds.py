"""``/api/v1/offices/{code}/kinds``: one office's day by ticket kind and service field.

The figures are the period's (gateway/store/kinds.py) over a one-day period, so the map panel, the
period API, /reports, its PDF and XLSX read one definition; this module only serves them.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request

from gateway.api_common import KpiDep, StoreDep, parse_day
from gateway.store.kinds import appointment_figures, kind_figures

router = APIRouter()


@router.get("/api/v1/offices/{code}/kinds", tags=["public"])
def office_kinds(code: str, request: Request, store: StoreDep, kpi: KpiDep,
                 day: str | None = None) -> dict[str, Any]:
    """Wait, calls and no-shows of one office's day by ticket kind and service field; the day's
    bookings against the appointment tickets redeemed (no-show rate once the day is over)."""
    if store.office(code) is None:
        raise HTTPException(404, f"unknown office {code!r}")
    parsed = parse_day(day, request)
    one = parsed.isoformat()
    with store.engine.connect() as conn:
        rows = kind_figures(conn, [code], one, one, kpi.cfg.wait_target_s)
        booked = appointment_figures(conn, [code], one, one, kpi.today())
    redeemed = sum(r["issued"] for r in rows if r["kind"] == "appointment")
    return {"office_code": code, "day": one, "by_kind": rows,
            "appointments": {"booked": booked["booked"], "redeemed": redeemed,
                             "no_show_rate": booked["no_show_rate"], "by_field": booked["by_field"]}}
