"""The entrance kiosk's LAN listener for shared lines (``[line] listen_host``/``listen_port``).

It serves only the line API, never the display, touch or simulation routes, so opening it to the
office LAN exposes nothing else; every request must carry ``Authorization: Bearer <counter token>``
(device/line_tokens.py: derived from the office's line secret, compared in constant time), else 401;
a request for another counter than the token's is 403. Bodies over 16 KiB are refused (413) before
anything reads them (contract/body_limit.py): FastAPI reads a JSON body before the token check runs,
and a 300 MB anonymous POST from the LAN grew the entrance kiosk by ~600 MB (out of memory on a Pi:
the office's lines down).

``POST /api/line/request`` (device/line_owner.py ``LineRequest``): a counter's ``next``, ``recall``,
``no_show`` or ``rate``; 200 with the answer (the stored answer for a request seen before), 422 for a
malformed request or an unknown field, 503 when the entrance's storage refused (nothing committed:
the counter sends the same request again). ``GET /api/line/status``: waiting per field, latest calls.

The entrance's own touch choice ``POST /api/line/ticket/{field}/{kind}`` is on the display app
(loopback, its own screen), added by :func:`add_entrance_routes`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, HTTPException, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from contract.body_limit import BodyLimitMiddleware
from device.config_line import line_of
from device.line_owner import LineRequest
from device.line_tokens import counter_of

MAX_BODY_BYTES = 16 * 1024  # a line request is a few hundred bytes


def token_counter(request: Request, authorization: Annotated[str, Header()] = "") -> int:
    """The counter whose token the request carries (401 without a valid one)."""
    scheme, _, presented = authorization.partition(" ")
    secret = line_of(request.app.state.kiosk.cfg).token
    counter = counter_of(secret, presented) if scheme == "Bearer" else None
    if counter is None:
        raise HTTPException(401, "line token missing or wrong")
    return counter


TokenCounter = Annotated[int, Depends(token_counter)]


def create_line_app(kiosk: Any) -> FastAPI:
    app = FastAPI(title="MotCua entrance line API", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(BodyLimitMiddleware, limit=MAX_BODY_BYTES)
    app.state.kiosk = kiosk

    @app.post("/api/line/request")
    async def request(body: LineRequest, counter: TokenCounter) -> JSONResponse:
        if body.counter != counter:
            raise HTTPException(403, f"this token is counter {counter}'s, not counter {body.counter}'s")
        status, answer = await run_in_threadpool(kiosk.line_owner.handle, body)
        return JSONResponse(answer, status_code=status)

    @app.get("/api/line/status")
    def status(_counter: TokenCounter) -> dict[str, Any]:
        return kiosk.line_owner.status()

    return app


def add_entrance_routes(app: FastAPI, kiosk: Any) -> None:
    """The entrance kiosk's touch choices: a ticket of ``kind`` (walk_in, priority) in ``field``."""

    @app.post("/api/line/ticket/{field}/{kind}")
    async def ticket(field: str, kind: str) -> JSONResponse:
        out = await run_in_threadpool(kiosk.entrance.issue, field, kind)  # device/entrance.py
        return JSONResponse(out.as_dict(), status_code=200 if out.ok else 409)
