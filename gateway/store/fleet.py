"""Fleet queries for the API: devices online per office, open alerts, the alert list, database health.

Read-only and short: one statement each, so handlers stay free of SQL (gateway/api.py) and the same
answers serve the JSON API, the pages and /metrics.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from gateway.store import schema as s
from gateway.store.db import Store


def devices_online(store: Store) -> dict[str, tuple[int, int]]:
    """office code -> (registered devices online, registered devices)."""
    q = (
        select(s.devices.c.office_code, s.device_status.c.state)
        .select_from(
            s.devices.outerjoin(s.device_status, s.device_status.c.device_id == s.devices.c.device_id)
        )
        .where(s.devices.c.registered.is_(True))
    )
    out: dict[str, tuple[int, int]] = {}
    with store.engine.connect() as conn:
        for r in conn.execute(q):
            online, total = out.get(r.office_code, (0, 0))
            out[r.office_code] = (online + (r.state == "online"), total + 1)
    return out


def open_alert_kinds(store: Store) -> dict[str, list[str]]:
    """device id -> the kinds of its open alerts, sorted."""
    q = select(s.alerts.c.device_id, s.alerts.c.kind).where(s.alerts.c.closed_at.is_(None))
    out: dict[str, list[str]] = {}
    with store.engine.connect() as conn:
        for r in conn.execute(q):
            out.setdefault(r.device_id, []).append(r.kind)
    return {device: sorted(kinds) for device, kinds in out.items()}


def alert_rows(store: Store, open_only: bool, limit: int = 500) -> list[dict[str, Any]]:
    """The newest alerts first (open ones only when asked), as stored (timestamps in epoch seconds)."""
    q = select(s.alerts).order_by(s.alerts.c.id.desc()).limit(limit)
    if open_only:
        q = q.where(s.alerts.c.closed_at.is_(None))
    with store.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(q)]


def database_ok(store: Store) -> bool:
    """True when the database answers a trivial query (/healthz answers 503 when it does not)."""
    try:
        with store.engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except SQLAlchemyError:
        return False
    return True
