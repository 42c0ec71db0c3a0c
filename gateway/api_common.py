"""Helpers shared by the JSON API modules: typed dependencies (the store, the KPI service, the
signed-in user by role, as in FastAPI's full-stack template), day parsing, timestamps.

Handlers take ``store: StoreDep``, ``kpi: KpiDep``, ``user: OperatorUser`` and so on instead of
reaching into ``request.app.state``; queries live in gateway/store/, not in handlers.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from gateway.auth import Principal, optional_principal, require_role
from gateway.config import Settings
from gateway.ingest import Ingest
from gateway.kpi import KpiService
from gateway.store import Store

OPERATOR = require_role("operator")
ADMIN = require_role("admin")
FIRST_DAY = date(2000, 1, 1)  # no one-stop office has figures before; forecasts look a year ahead at most

__all__ = [
    "ADMIN", "OPERATOR", "AdminUser", "IngestDep", "KpiDep", "MaybeUser", "OperatorUser", "SettingsDep",
    "StoreDep", "get_ingest", "get_kpi", "get_settings", "get_store", "iso", "optional_principal",
    "parse_day",
]


def get_store(request: Request) -> Store:
    return request.app.state.store


def get_kpi(request: Request) -> KpiService:
    return request.app.state.kpi


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_ingest(request: Request) -> Ingest | None:
    """This process's ingest (None when the gateway serves pages only: ``--no-ingest``)."""
    return request.app.state.ingest


StoreDep = Annotated[Store, Depends(get_store)]
KpiDep = Annotated[KpiService, Depends(get_kpi)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
IngestDep = Annotated[Ingest | None, Depends(get_ingest)]
AdminUser = Annotated[Principal, Depends(ADMIN)]
OperatorUser = Annotated[Principal, Depends(OPERATOR)]
MaybeUser = Annotated[Principal | None, Depends(optional_principal)]


def iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, UTC).isoformat() if ts is not None else None


def parse_day(day: str | None, request: Request) -> date:
    """A local day within [2000-01-01, today + 366 days]: far dates answer 400, never a 500 from
    date arithmetic (the forecast adds weeks to the day)."""
    today = request.app.state.kpi.today()
    if day is None:
        return today
    try:
        parsed = date.fromisoformat(day)
    except ValueError:
        raise HTTPException(422, f"day={day!r}: expected YYYY-MM-DD") from None
    if not FIRST_DAY <= parsed <= today + timedelta(days=366):
        raise HTTPException(400, f"day={day!r}: outside {FIRST_DAY} .. one year from today")
    return parsed
