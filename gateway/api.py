"""JSON API under /api/v1, plus /healthz (/metrics: gateway/metrics.py).

Public (no login): offices, office KPIs, map.geojson, kpis.csv: aggregates only, no citizen data.
Operator: fleet, commands, ingest stats, alerts. Admin: registry edits.
"""

from __future__ import annotations

import json
import time
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response

from gateway import api_models as m
from gateway.api_common import (
    AdminUser,
    IngestDep,
    KpiDep,
    MaybeUser,
    OperatorUser,
    SettingsDep,
    StoreDep,
    iso,
    parse_day,
)
from gateway.api_integrity import router as integrity_router
from gateway.api_period import router as period_router
from gateway.commands import IngestNotRunning, issue_command
from gateway.config import Settings
from gateway.feed.api import overlay_hub
from gateway.kpi import KpiService
from gateway.store import Store, integrity
from gateway.store import fleet as fleet_queries

router = APIRouter()


# ---------------------------------------------------------------------------- offices (public)


def _offices(store: Store, kpi: KpiService, settings: Settings, only: str | None = None
             ) -> list[dict[str, Any]]:
    offices = [o for o in store.offices() if only is None or o["code"] == only]
    units = store.units()
    # hub mode: offices with no visits of their own show the province's figures
    kpis = overlay_hub(settings, store, kpi.all_offices([o["code"] for o in offices]))
    devices = fleet_queries.devices_online(store)
    out = []
    for o in offices:
        unit = units.get(o["unit_code"], {})
        k = kpis[o["code"]]
        online, total = devices.get(o["code"], (0, 0))
        out.append(
            {
                **o,
                "unit_name": unit.get("name", ""),
                "province_code": unit.get("province_code", ""),
                "kpi_today": k,
                "wait_class": kpi.wait_class(k["avg_wait_s"]),
                "satisfaction_class": kpi.satisfaction_class(k["satisfaction_rate"]),
                "devices_online": online,
                "devices_total": total,
            }
        )
    return out


@router.get("/api/v1/offices", response_model=list[m.Office], tags=["public"])
def list_offices(store: StoreDep, kpi: KpiDep, settings: SettingsDep) -> list[dict[str, Any]]:
    """All one-stop offices with today's KPIs (local day, Asia/Ho_Chi_Minh)."""
    return _offices(store, kpi, settings)


@router.get("/api/v1/offices/{code}", response_model=m.Office, tags=["public"])
def get_office(code: str, store: StoreDep, kpi: KpiDep, settings: SettingsDep) -> dict[str, Any]:
    found = _offices(store, kpi, settings, only=code)
    if not found:
        raise HTTPException(404, f"office {code!r} not found")
    return found[0]


@router.get("/api/v1/offices/{code}/kpis", response_model=m.OfficeKpis, tags=["public"])
def office_kpis(code: str, request: Request, store: StoreDep, kpi: KpiDep, user: MaybeUser,
                day: str | None = None) -> dict[str, Any]:
    """One office and day: KPIs, per counter, per hour (arrivals, avg wait), sentiment windows, rating
    distribution, next week's arrivals forecast with its error, and per-officer aggregates. Officers
    are people too: ``officers`` is filled for signed-in operators only (empty for the public)."""
    if store.office(code) is None:
        raise HTTPException(404, f"office {code!r} not found")
    detail = kpi.office_detail(code, parse_day(day, request))
    if user is None or not user.has("operator"):
        detail["officers"] = []
    return detail


@router.get(
    "/api/v1/map.geojson",
    tags=["public"],
    responses={200: {"content": {"application/geo+json": {}}, "description": "GeoJSON FeatureCollection"}},
)
def map_geojson(store: StoreDep, kpi: KpiDep, settings: SettingsDep) -> Response:
    """GeoJSON FeatureCollection of offices (properties = the /offices fields) for national maps."""
    feats = []
    for o in _offices(store, kpi, settings):
        props = {k: v for k, v in o.items() if k not in ("lat", "lon")}
        feats.append(
            {
                "type": "Feature",
                "id": o["code"],
                "geometry": {"type": "Point", "coordinates": [o["lon"], o["lat"]]},
                "properties": props,
            }
        )
    body = json.dumps({"type": "FeatureCollection", "features": feats}, ensure_ascii=False)
    return Response(body, media_type="application/geo+json")


# ---------------------------------------------------------------------------- registry (admin)


@router.get("/api/v1/units", tags=["registry"])
def list_units(store: StoreDep) -> dict[str, Any]:
    """Commune-level units (post-2025 codes) and the old→new mapping (old_code null = unknown)."""
    return {"units": list(store.units().values()), "unit_mapping": store.unit_mapping()}


@router.post("/api/v1/offices", response_model=m.Office, status_code=201, tags=["registry"])
def create_office(body: m.OfficeIn, store: StoreDep, kpi: KpiDep, settings: SettingsDep,
                  _admin: AdminUser) -> dict[str, Any]:
    if body.unit_code not in store.units():
        raise HTTPException(422, f"unit_code {body.unit_code!r} is not a known unit")
    if store.office(body.code) is not None:
        raise HTTPException(409, f"office {body.code!r} exists; use PUT")
    store.upsert_office(body.model_dump())
    return get_office(body.code, store, kpi, settings)


@router.put("/api/v1/offices/{code}", response_model=m.Office, tags=["registry"])
def update_office(code: str, body: m.OfficeUpdate, store: StoreDep, kpi: KpiDep, settings: SettingsDep,
                  _admin: AdminUser) -> dict[str, Any]:
    cur = store.office(code)
    if cur is None:
        raise HTTPException(404, f"office {code!r} not found")
    new = {**cur, **body.model_dump(exclude_none=True)}
    if new["unit_code"] not in store.units():
        raise HTTPException(422, f"unit_code {new['unit_code']!r} is not a known unit")
    store.upsert_office(new)
    kpi.invalidate([code])
    return get_office(code, store, kpi, settings)


@router.post("/api/v1/devices", response_model=m.Device, status_code=201, tags=["registry"])
def register_device(body: m.DeviceIn, store: StoreDep, kpi: KpiDep, ingest: IngestDep,
                    admin: AdminUser) -> dict[str, Any]:
    """Bind a device to an office counter (provisioning calls this). Idempotent; audited.

    Events the device sent while unregistered were held (stored, never counted). With
    ``release_held`` they are counted now under the same rules as live events (its office and
    counter must match the binding; ratings must name known visits); without it they stay held."""
    office = store.office(body.office_code)
    if office is None:
        raise HTTPException(422, f"office_code {body.office_code!r} is not in the registry")
    if body.counter > office["counters"]:
        raise HTTPException(422, f"office {body.office_code} has counters 1..{office['counters']}")
    actor = admin.name or "admin"
    released = integrity.bind_device(
        store, body.device_id, body.office_code, body.counter, actor, body.release_held, kpi.tz
    )
    if ingest is not None:
        ingest.registered(body.device_id)
    if released:
        kpi.invalidate([body.office_code])
    return {**store.device(body.device_id), "released": released}


# ---------------------------------------------------------------------------- fleet (operator)


def fleet(store: StoreDep) -> list[dict[str, Any]]:
    now = time.time()
    open_alerts = fleet_queries.open_alert_kinds(store)
    held = integrity.held_counts(store)
    out = []
    for r in store.fleet_rows():
        h = r["health"] or {}
        state = r["state"] or "unknown"
        reason = r["reason"] if state == "offline" else None
        detail = None
        if reason == "no_health" and r["last_seen"]:
            detail = f"no health for {now - r['last_seen']:.0f} s (không nhận tín hiệu)"
        elif reason == "connection_lost":
            detail = "connection lost, Last Will (mất kết nối)"
        elif reason == "shutdown":
            detail = "shut down by the kiosk (tắt máy)"
        out.append(
            {
                "device_id": r["device_id"],
                "office_code": r["office_code"],
                "counter": r["counter"],
                "registered": bool(r["registered"]),
                "state": state,
                "since": iso(r["since"]),
                "last_seen": iso(r["last_seen"]),
                "offline_reason": reason,
                "offline_detail": detail,
                "sw_version": r["health_sw"] or r["status_sw"],
                "model_versions": h.get("model_versions", {}),
                "cpu_temp_c": r["cpu_temp_c"],
                "outbox_depth": r["outbox_depth"],
                "queue_waiting": h.get("queue_waiting"),
                "camera": h.get("camera"),
                "clock_synced": r["clock_synced"],
                "last_error": r["last_error"],
                "last_selftest": r["last_selftest"],
                "open_alerts": open_alerts.get(r["device_id"], []),
                "quarantined": not r["registered"],
                "held_events": held.get(r["device_id"], 0),
            }
        )
    return out


@router.get("/api/v1/fleet", response_model=list[m.FleetDevice], tags=["fleet"])
def get_fleet(store: StoreDep, _operator: OperatorUser) -> list[dict[str, Any]]:
    """Every device: online/offline since when and why, versions, temperature, outbox, clock, self-test."""
    return fleet(store)


@router.get("/api/v1/devices", response_model=list[m.FleetDevice], tags=["fleet"])
def get_devices(store: StoreDep, _operator: OperatorUser) -> list[dict[str, Any]]:
    """Same as /api/v1/fleet."""
    return fleet(store)


@router.get("/api/v1/alerts", response_model=list[m.Alert], tags=["fleet"])
def get_alerts(store: StoreDep, _operator: OperatorUser, open_only: bool = True) -> list[dict[str, Any]]:
    rows = fleet_queries.alert_rows(store, open_only)
    for r in rows:
        r["opened_at"], r["closed_at"] = iso(r["opened_at"]), iso(r["closed_at"])
    return rows


def _command_out(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "issued_at": iso(row["issued_at"]), "result_at": iso(row["result_at"])}


@router.post(
    "/api/v1/devices/{device_id}/commands", response_model=m.Command, status_code=202, tags=["fleet"]
)
def send_command(device_id: str, body: m.CommandIn, request: Request, store: StoreDep,
                 operator: OperatorUser) -> dict[str, Any]:
    """Publish a CommandRequest on ``.../cmd/<name>``; the result arrives as a cmd.result event."""
    dev = store.device(device_id)
    if dev is None:
        raise HTTPException(404, f"device {device_id!r} not known")
    issued_by = operator.name or "gateway"
    try:
        cmd_id = issue_command(request.app.state, device_id, dev["office_code"], body.name.value, body.args,
                               issued_by)
    except IngestNotRunning as exc:
        raise HTTPException(503, str(exc)) from None
    return _command_out(store.command(cmd_id))


@router.get("/api/v1/commands/{cmd_id}", response_model=m.Command, tags=["fleet"])
def get_command(cmd_id: str, store: StoreDep, _operator: OperatorUser) -> dict[str, Any]:
    row = store.command(cmd_id)
    if row is None:
        raise HTTPException(404, f"command {cmd_id!r} not found")
    return _command_out(row)


@router.get("/api/v1/stats/ingest", response_model=m.IngestStats, tags=["fleet"])
def ingest_stats(store: StoreDep, ingest: IngestDep, _operator: OperatorUser) -> dict[str, Any]:
    """Accepted, duplicates and rejections by reason (database totals over all gateway processes)."""
    c = store.counters()
    return {
        "accepted": c.get("accepted", 0),
        "duplicates": c.get("duplicates", 0),
        "status": c.get("status", 0),
        "health": c.get("health", 0),
        "rejected": {k.split(":", 1)[1]: v for k, v in sorted(c.items()) if k.startswith("rejected:")},
        "quarantined": c.get("quarantined", 0),
        "duplicate_rating": c.get("duplicate_rating", 0),
        "stored_events": store.event_count(),
        "process": ingest.snapshot() if ingest is not None else {},
    }


# ---------------------------------------------------------------------------- health and metrics


@router.get("/healthz", tags=["ops"])
def healthz(response: Response, store: StoreDep, ingest: IngestDep) -> dict[str, Any]:
    db_ok = fleet_queries.database_ok(store)
    mqtt_ok = bool(ingest and ingest.mqtt and ingest.mqtt.connected.is_set())
    ingest_running = ingest is not None and ingest.mqtt is not None
    ok = db_ok and (mqtt_ok or not ingest_running)
    if not ok:
        response.status_code = 503
    return {
        "ok": ok,
        "database": db_ok,
        "mqtt": mqtt_ok,
        "ingest": ingest_running,
        "queue_depth": ingest.queue.qsize() if ingest else 0,
    }


# integrity endpoints (quarantine, flags): their own module, served under this router
router.include_router(integrity_router)
router.include_router(period_router)
