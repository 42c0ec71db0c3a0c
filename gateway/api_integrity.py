"""Integrity endpoints: held events of unregistered devices, plausibility flags and their clearing
(docs/gateway.md#integrity). Queries live in :mod:`gateway.store.integrity`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request

from gateway import api_models as m
from gateway.api_common import KpiDep, OperatorUser, StoreDep, iso, parse_day
from gateway.store import integrity

router = APIRouter()


@router.get("/api/v1/quarantine", response_model=list[m.QuarantinedDevice], tags=["fleet"])
def get_quarantine(store: StoreDep, _p: OperatorUser) -> list[dict[str, Any]]:
    """Devices not in the registry whose figure events are held (stored, counted as ``quarantined``,
    never in KPIs, the map or staff figures) until an admin binds them (POST /api/v1/devices)."""
    rows = integrity.quarantine(store)
    for r in rows:
        r["first_received"], r["last_received"] = iso(r["first_received"]), iso(r["last_received"])
    return rows


@router.get("/api/v1/offices/{code}/flags", response_model=m.OfficeFlags, tags=["fleet"])
def get_flags(
    code: str,
    request: Request,
    store: StoreDep,
    _p: OperatorUser,
    from_: str | None = Query(default=None, alias="from"),
    to: str | None = None,
) -> dict[str, Any]:
    """For the office head: visits and ratings flagged as implausible (kept, out of staff figures
    until cleared), ratings by status and duplicate ratings by device (docs/gateway.md#integrity)."""
    if store.office(code) is None:
        raise HTTPException(404, f"office {code!r} not found")
    d_from, d_to = parse_day(from_, request), parse_day(to or from_, request)
    if d_to < d_from or (d_to - d_from).days > 366:
        raise HTTPException(422, "need from <= to and at most 366 days")
    return integrity.office_flags(store, code, d_from.isoformat(), d_to.isoformat())


@router.post("/api/v1/offices/{code}/flags/clear", tags=["fleet"])
def clear_flag(code: str, body: m.FlagClear, store: StoreDep, kpi: KpiDep, p: OperatorUser) -> dict[str, Any]:
    """An office head clears one flag after checking it: the row then counts in staff figures.
    Audited (who, when, what) in the audit log."""
    if body.kind == "rating" and not body.event_id:
        raise HTTPException(422, "a rating is named by its event_id")
    if body.kind == "visit" and None in (body.counter, body.service_day, body.ticket_no):
        raise HTTPException(422, "a visit is named by counter, service_day and ticket_no")
    key = body.model_dump(exclude={"kind"}, exclude_none=True)
    actor = getattr(p, "name", None) or "operator"
    if not integrity.clear_flag(store, body.kind, code, key, actor):
        raise HTTPException(404, "no uncleared flag matches")
    kpi.invalidate([code])
    return {"cleared": True, "by": actor, **key}
