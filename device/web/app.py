"""FastAPI app served inside the kiosk process.

``GET /`` display page · ``GET /healthz`` · ``GET /api/status`` · ``POST /api/rating/reason/{code}``
(touch screen) · with ``--simulate`` only: ``POST /api/sim/press/{button}`` which drives the gpiozero
mock pin (low then high), so everything above the pin runs as on the real kiosk.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

STATIC = Path(__file__).resolve().parent / "static"


def create_app(kiosk: Any) -> FastAPI:
    app = FastAPI(title="MotCua kiosk", docs_url=None, redoc_url=None, openapi_url=None)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/")
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {"ok": True, "device_id": kiosk.cfg.device.id, "broker_connected": kiosk.publisher.connected}

    @app.get("/api/status")
    def status() -> dict[str, Any]:
        return kiosk.status()

    @app.post("/api/rating/reason/{code}")
    async def reason(code: str) -> JSONResponse:
        out = await run_in_threadpool(kiosk.choose_reason, code)
        return JSONResponse(out.as_dict(), status_code=200 if out.ok else 409)

    if kiosk.simulate:

        @app.post("/api/sim/press/{button}")
        async def press(button: str) -> JSONResponse:
            if button not in kiosk.buttons.buttons:
                raise HTTPException(
                    404, f"unknown button {button!r}; this kiosk has: {', '.join(kiosk.buttons.buttons)}"
                )
            out = await run_in_threadpool(kiosk.buttons.sim_press, button)
            if out is None:
                return JSONResponse(
                    {"ok": False, "action": button, "message": "press ignored"}, status_code=409
                )
            return JSONResponse(out.as_dict())

    return app
