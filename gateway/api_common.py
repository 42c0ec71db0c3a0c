"""Helpers shared by the JSON API modules: role dependencies, day parsing, timestamps."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from fastapi import HTTPException, Request

from gateway.auth import optional_principal, require_role

OPERATOR = require_role("operator")
ADMIN = require_role("admin")
FIRST_DAY = date(2000, 1, 1)  # no one-stop office has figures before; forecasts look a year ahead at most

__all__ = ["ADMIN", "OPERATOR", "iso", "optional_principal", "parse_day"]


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
