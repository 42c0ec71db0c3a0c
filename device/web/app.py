"""FastAPI app served inside the kiosk process.

``GET /`` display page · ``GET /healthz`` · ``GET /api/status`` · ``POST /api/rating/reason/{code}``
(touch screen) · ``GET /lay-so`` touch ticket page (on the entrance kiosk of shared lines, the entrance
page: a service field, then walk-in or priority, ``POST /api/line/ticket/{field}/{kind}``, device/web/
line_api.py; or an appointment code) · ``POST /api/touch/ticket/{kind}`` (walk_in or
priority, same pace rule as the buttons) and ``POST /api/appointment`` ``{"code": ...}`` (redeem a
booking, device/appointments.py) · with ``--simulate`` only: ``POST /api/sim/press/{button}[?pace=false]``,
which drives
the gpiozero mock pin (low then high), so everything above the pin runs as on the real kiosk; it first
waits as a person would (debounce and the human pace rule) unless ``pace=false``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from device.store import StoreError
from device.web.line_api import add_entrance_routes

STATIC = Path(__file__).resolve().parent / "static"


class AppointmentCode(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(min_length=1, max_length=40)


def create_app(kiosk: Any) -> FastAPI:
    app = FastAPI(title="MotCua kiosk", docs_url=None, redoc_url=None, openapi_url=None)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/")
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    @app.exception_handler(StoreError)
    async def storage_error(request: Request, exc: StoreError) -> JSONResponse:
        """A database failure answers 503 with the reason, never a 500 with a traceback."""
        message = f"Lỗi lưu trữ, vui lòng báo cán bộ (storage error: {exc})"[:200]
        return JSONResponse({"ok": False, "message": message}, status_code=503)

    @app.get("/healthz")
    def healthz() -> JSONResponse:
        ok = not kiosk.store.corrupt
        body = {"ok": ok, "device_id": kiosk.cfg.device.id, "broker_connected": kiosk.publisher.connected}
        return JSONResponse(body, status_code=200 if ok else 503)

    @app.get("/api/status")
    def status() -> dict[str, Any]:
        return kiosk.status()

    _add_touch_routes(app, kiosk)
    if kiosk.line_owner is not None:
        add_entrance_routes(app, kiosk)  # device/web/line_api.py
    if kiosk.simulate:
        _add_sim_routes(app, kiosk)
    return app


def _add_touch_routes(app: FastAPI, kiosk: Any) -> None:
    """The touch display's ticket page (walk-in, priority), typed appointment codes, rating reasons."""
    @app.get("/lay-so")
    def ticket_page() -> FileResponse:
        """The entrance kiosk of shared lines has its own page: a choice of service field first."""
        page = "entrance.html" if kiosk.entrance is not None else "ticket.html"
        return FileResponse(STATIC / page, headers={"Cache-Control": "no-cache"})

    @app.post("/api/touch/ticket/{kind}")
    async def touch_ticket(kind: str) -> JSONResponse:
        button = {"walk_in": "ticket", "priority": "priority"}.get(kind)
        if button is None:
            raise HTTPException(404, f"unknown ticket kind {kind!r}: walk_in or priority")
        out = await run_in_threadpool(kiosk.dispatch.press, button)
        return JSONResponse(out.as_dict(), status_code=200 if out.ok else 409)

    @app.post("/api/appointment")
    async def appointment(body: AppointmentCode) -> JSONResponse:
        out = await run_in_threadpool(kiosk.appointments.redeem, body.code, "typed")
        return JSONResponse(out.as_dict(), status_code=200 if out.ok else 409)

    @app.post("/api/rating/reason/{code}")
    async def reason(code: str) -> JSONResponse:
        out = await run_in_threadpool(kiosk.choose_reason, code)
        return JSONResponse(out.as_dict(), status_code=200 if out.ok else 409)


def _add_sim_routes(app: FastAPI, kiosk: Any) -> None:
    """With ``--simulate``: presses through the mock pin factory (gpiozero's MockFactory)."""

    @app.post("/api/sim/press/{button}")
    async def press(button: str, pace: bool = True) -> JSONResponse:
        """``pace=false`` presses at once, as a script would (the human pace rule then applies)."""
        if button not in kiosk.buttons.buttons:
            raise HTTPException(
                404, f"unknown button {button!r}; this kiosk has: {', '.join(kiosk.buttons.buttons)}"
            )
        if pace:
            await run_in_threadpool(kiosk.pacer.wait_quiet, button)
        out = await run_in_threadpool(kiosk.buttons.sim_press, button)
        if out is None:
            return JSONResponse(
                {"ok": False, "action": button, "message": "press ignored"}, status_code=409
            )
        return JSONResponse(out.as_dict())
