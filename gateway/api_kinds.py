"""``/api/v1/offices/{code}/kinds``: one office's day by ticket kind and service field (the figures
are gateway/ticket_kinds.py's; this module only serves them)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request

from gateway.api_common import KpiDep, StoreDep, parse_day
from gateway.ticket_kinds import appointment_figures, kind_kpis

router = APIRouter()


@router.get("/api/v1/offices/{code}/kinds", tags=["public"])
def office_kinds(code: str, request: Request, store: StoreDep, kpi: KpiDep,
                 day: str | None = None) -> dict[str, Any]:
    """Wait, calls and no-shows of one office's day by ticket kind and service field."""
    if store.office(code) is None:
        raise HTTPException(404, f"unknown office {code!r}")
    parsed = parse_day(day, request)
    with store.engine.connect() as conn:
        rows = kind_kpis(conn, code, parsed, kpi.tz)
    return {"office_code": code, "day": parsed.isoformat(), "by_kind": rows,
            "appointments": appointment_figures(store.engine, code, parsed, rows,
                                                parsed < kpi.today())}
